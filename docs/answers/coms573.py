# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # COM S 573 HW5: written questions
#
# Questions 1-3, each answered by a function in `pipeline/answers/coms573.py` and checked by an
# independent computation (torch layers, torch's FLOP counter, autograd). Every number, matrix and
# symbol on this page is read from `artifacts/answers.json`, written by `invoke answers`. The
# worked solutions that came with the homework contain slips; the [errata](../errata/) page lists
# each one with the computation that decides it.

# %% tags=["hide-input"]
import sys
from pathlib import Path

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderer
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers.render import AnswerPage  # noqa: E402

page = AnswerPage(root)

# %% [markdown]
# ## Question 1: parameters, multiply-adds and memory of a two-convolution block

# %% tags=["hide-input"]
page.show("coms573.q1.output_shapes", "coms573.q1.params", "coms573.q1.params_by_layer",
          "coms573.q1.mult_adds", "coms573.q1.mult_adds_by_layer", "coms573.q1.memory_change_percent")
page.demo("coms573.q1.memory_change_percent")

# %% [markdown]
# ## Question 2: batch normalisation
#
# The same questions as CSCE-421 question 3, computed by the same code.

# %% tags=["hide-input"]
page.show("coms573.q2.mu", "coms573.q2.var", "coms573.q2.z_hat", "coms573.q2.z_tilde",
          "coms573.q2.train_vs_test", "coms573.q2.test_batch_size")

# %% [markdown]
# ## Question 3: the convolution as a matrix, and its backward pass
#
# ### (a) Y~ = A X~
#
# Each row of A is one output value; it holds one kernel per input channel, shifted one column
# per output position. The symbols are built from index arithmetic and checked by substituting
# random numbers and comparing with `torch.nn.functional.conv1d`.

# %% tags=["hide-input"]
page.show("coms573.q3.A")
page.figure("conv_matrix_A", width=700)

# %% [markdown]
# ### (b) dL/dX~ = B dL/dY~

# %% tags=["hide-input"]
page.show("coms573.q3.B", "coms573.q3.relation")

# %% [markdown]
# ### (c) Is the backward pass a convolution?
#
# Yes: B is the matrix of a convolution of dL/dY with each kernel reversed and the roles of input
# and output channels swapped, padded so every input position is reached. The claim is checked
# symbol by symbol (B against the matrix of that convolution) and numerically against autograd.

# %% tags=["hide-input"]
page.show("coms573.q3.is_convolution", "coms573.q3.backward_kernels", "coms573.q3.backward_padding")

# %% [markdown]
# ### Beyond the question: a strided convolution
#
# With a stride the backward pass is a *transposed* convolution: the upstream gradient is spread
# out with zeros between its samples before the same reversed-kernel convolution. Three
# constructions are compared with autograd.

# %% tags=["hide-input"]
page.show("coms573.q3.strided_backward")
page.demo("coms573.q3.strided_backward")
