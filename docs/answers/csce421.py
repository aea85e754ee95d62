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
# # CSCE-421 HW3: written questions
#
# Questions 1-3 of the homework, each answered by a function in `pipeline/answers/csce421.py`
# and checked by an independent computation (a real `torch.nn` layer). Every number, matrix and
# check result on this page is read from `artifacts/answers.json`, written by `invoke answers`;
# the figures are `artifacts/answers/*.png` from the same task. Where the homework's figure was
# lost, the answer says what it assumes. Slips in the walkthrough are on the [errata](../errata/) page.

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
# ## Question 1: one convolutional layer
#
# The output depth is the number of filters; height and width follow the output-size formula.
# Each filter spans the full input depth and has one bias.

# %% tags=["hide-input"]
page.show("csce421.q1.output_shape", "csce421.q1.params")

# %% [markdown]
# ## Question 2: the projection shortcut of a residual block
#
# The main path halves the spatial size and changes the depth, so the identity shortcut cannot be
# added to it; a strided 1x1 convolution on the skip connection fixes both.

# %% tags=["hide-input"]
page.show("csce421.q2.shortcut")
page.demo("csce421.q2.shortcut")
page.show("csce421.q2.params", "csce421.q2.params_by_layer")

# %% [markdown]
# ## Question 3: batch normalisation
#
# ### Parts 1 and 2: the arithmetic
#
# Batch norm works on each unit (row) separately, over the examples of the mini-batch (columns).

# %% tags=["hide-input"]
page.show("csce421.q3.mu", "csce421.q3.var", "csce421.q3.z_hat", "csce421.q3.z_tilde")

# %% [markdown]
# ### Part 3: training versus testing
#
# The demonstration runs `torch.nn.BatchNorm1d` on the question's own batch: training mode
# reproduces the hand computation; evaluation mode uses running statistics, which start far from
# the batch's and converge to the mean and the *unbiased* variance. A batch of one example cannot
# be normalised in training mode.

# %% tags=["hide-input"]
page.show("csce421.q3.train_vs_test")
page.demo("csce421.q3.train_vs_test")

# %% [markdown]
# How the running statistics converge when batches of the same size are drawn from a population
# with the batch's per-unit mean and variance:

# %% tags=["hide-input"]
page.figure("bn_running_stats")

# %% [markdown]
# ### Part 4: the test batch size

# %% tags=["hide-input"]
page.show("csce421.q3.test_batch_size")
page.demo("csce421.q3.test_batch_size")
