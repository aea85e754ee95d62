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
# # CS182 HW3: written questions
#
# Questions 1-3 (and the optional 5(b)), each answered by a function in
# `pipeline/answers/cs182.py` and checked by an independent computation (torch layers, SciPy,
# autograd). Every number, matrix and formula on this page is read from `artifacts/answers.json`,
# written by `invoke answers`. Several givens were lost with the homework's figures; each
# affected answer states the assumption it makes, and the code computes it for any value of the
# missing given.

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
# ## Question 1: normalisation layers
#
# ### (a) A 1-D Gaussian through batch norm

# %% tags=["hide-input"]
page.show("cs182.q1.a.distribution", "cs182.q1.a.mean", "cs182.q1.a.std")

# %% [markdown]
# ### (b) A 2-D Gaussian through batch norm
#
# Batch norm standardises each coordinate on its own; it does not whiten. The correlation
# survives, so the contours stay tilted ellipses.

# %% tags=["hide-input"]
page.show("cs182.q1.b.mean", "cs182.q1.b.cov")
page.figure("bn_distributions")

# %% [markdown]
# ## Question 2: convolution as a finite impulse response filter
#
# ### (a), (b) The boxcar

# %% tags=["hide-input"]
page.show("cs182.q2.a.y", "cs182.q2.b.y2", "cs182.q2.b.property")
page.figure("fir_1d")

# %% [markdown]
# ### (c), (d) Two dimensions, stride and padding
#
# The homework defines the 2-D convolution with the kernel flipped (eq. 2); deep-learning
# libraries compute a cross-correlation instead. For this kernel the two differ in sign only.

# %% tags=["hide-input"]
page.show("cs182.q2.c.y", "cs182.q2.d.stride1_pad1", "cs182.q2.d.stride2_pad1")
page.figure("conv_sliding_window")

# %% [markdown]
# ## Question 3: feature dimensions of a CNN
#
# ### (a), (b) Counts and shapes as formulas
#
# The formulas are produced by the same code that computes the numbers (with symbols in place of
# numbers) and checked at several settings against `torch.nn.Conv2d` and `torch.nn.MaxPool2d`.

# %% tags=["hide-input"]
page.show("cs182.q3.a.weights", "cs182.q3.a.biases", "cs182.q3.a.output_shape", "cs182.q3.b.output_shape")

# %% [markdown]
# ### (c), (d) Receptive field

# %% tags=["hide-input"]
page.show("cs182.q3.c.receptive_field")
page.figure("receptive_field", width=650)
page.show("cs182.q3.d.receptive_field", "cs182.q3.d.compute_ratio")

# %% [markdown]
# ### (e) The parameter and activation table

# %% tags=["hide-input"]
page.table(["cs182.q3.e.expressions", "cs182.q3.e.params", "cs182.q3.e.activations"],
           rows_from="cs182.q3.e.params")
page.show("cs182.q3.e.params", "cs182.q3.e.activations")

# %% [markdown]
# ### (f) Circular padding and invariance

# %% tags=["hide-input"]
page.show("cs182.q3.f.g3", "cs182.q3.f.g4", "cs182.q3.f.seam_caveat")

# %% [markdown]
# ## Question 5(b) (optional): the batch-norm backward pass

# %% tags=["hide-input"]
page.show("cs182.q5.b.dx")
