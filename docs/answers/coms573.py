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
# # COM S 573 HW5: convolutional networks
#
# Four questions: the parameters, multiply-adds and memory of a block of two convolutions; the
# arithmetic of batch normalisation (the same as CSCE-421's question 3); a one-dimensional
# convolution written as a matrix, with its backward pass; and LeNet on CIFAR-10 (a coding
# question). The homework came with worked solutions; where they slip, a note at the answer links
# to the [erratum](../errata/).
#
# Each answer is worked out the way one would on paper, then checked by an independent
# computation with PyTorch (expand *Independent check* under an answer to see it).

# %% tags=["hide-input"]
import sys
from pathlib import Path

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderer
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers.render import AnswerPage  # noqa: E402

page = AnswerPage(root, "coms573")
page.overview()

# %% [markdown]
# ## Question 1: a block of two convolutions
#
# The block's figure was lost with the text; its layers are read off the worked solution, as the
# assumption under 1(a) says.
#
# <a id="q1a"></a>
#
# ### 1(a) Parameters

# %% tags=["hide-input"]
page.solve("1(a)")

# %% [markdown]
# <a id="q1b"></a>
#
# ### 1(b) Multiply-adds

# %% tags=["hide-input"]
page.solve("1(b)")

# %% [markdown]
# <a id="q1c"></a>
#
# ### 1(c) Memory of the input and output features

# %% tags=["hide-input"]
page.solve("1(c)")
page.demo("coms573.q1.memory_change_percent", [
    ("input", "elements_by_stage/0"), ("after the first convolution", "elements_by_stage/1"),
    ("after the second convolution (the output)", "elements_by_stage/2")], ("feature map", "values stored"))

# %% [markdown]
# The first convolution halves the memory (stride 2, twice the channels), the second doubles it
# again: the block's output needs exactly as much memory as its input.
#
# ## Question 2: batch normalisation
#
# The same questions as CSCE-421's question 3, computed by the same code.
#
# <a id="q2a"></a>
#
# ### 2(a) The normalised batch

# %% tags=["hide-input"]
page.solve("2(a)")

# %% [markdown]
# <a id="q2b"></a>
#
# ### 2(b) Scale and shift

# %% tags=["hide-input"]
page.solve("2(b)")

# %% [markdown]
# <a id="q2c"></a>
#
# ### 2(c) Training versus testing
#
# The measurements behind this answer are on the [CSCE-421 page](../csce421/#q3-3).

# %% tags=["hide-input"]
page.solve("2(c)")

# %% [markdown]
# <a id="q2d"></a>
#
# ### 2(d) The batch size at test time
#
# The measurements behind this answer are on the [CSCE-421 page](../csce421/#q3-4).

# %% tags=["hide-input"]
page.solve("2(d)")

# %% [markdown]
# ## Question 3: the convolution as a matrix, and its backward pass
#
# A 1-D convolution with kernel size 3 maps two input channels of length 4 to two output
# channels of length 2; $W^{ij}$ is the kernel from input channel $i$ to output channel $j$.
#
# <a id="q3a"></a>
#
# ### 3(a) $\tilde{Y} = A\tilde{X}$
#
# Each row of $A$ is one output value: it holds one kernel per input channel, shifted one column
# per output position. The symbols are built from index arithmetic and checked by substituting
# random numbers and comparing with `torch.nn.functional.conv1d`.

# %% tags=["hide-input"]
page.solve("3(a)")
page.figure("conv_matrix_A",
            "The matrix A: rows are the outputs y11 to y22, columns the inputs x11 to x24. Each colour "
            "is one kernel tap; it repeats along a diagonal, one column to the right per output "
            "position, and white cells are zeros.",
            "A 4 by 8 grid of the matrix A with one colour per kernel tap w, repeated along diagonals, "
            "and white zero cells.",
            width=700)

# %% [markdown]
# <a id="q3b"></a>
#
# ### 3(b) $\partial L/\partial \tilde{X} = B\,\partial L/\partial \tilde{Y}$

# %% tags=["hide-input"]
page.solve("3(b)")

# %% [markdown]
# <a id="q3c"></a>
#
# ### 3(c) Is the backward pass a convolution?
#
# Yes: $B$ is the matrix of a convolution of $\partial L/\partial Y$ with each kernel reversed and
# the roles of input and output channels swapped, padded so every input position is reached. The
# claim is checked symbol by symbol ($B$ against the matrix of that convolution) and numerically
# against autograd.

# %% tags=["hide-input"]
page.solve("3(c)")

# %% [markdown]
# #### Beyond the question: a strided convolution
#
# With a stride the backward pass is a *transposed* convolution: the upstream gradient is spread
# out with zeros between its samples before the same reversed-kernel convolution. The table
# compares three constructions with autograd on a random example.

# %% tags=["hide-input"]
page.demo("coms573.q3.strided_backward", [
    ("1-D: spread with zeros, then convolve", "max_abs_error_1d_spread_and_convolve_vs_autograd"),
    ("1-D: `conv_transpose1d`", "max_abs_error_1d_conv_transpose_vs_autograd"),
    ("2-D: `conv_transpose2d`", "max_abs_error_2d_conv_transpose_vs_autograd"),
    ("2-D: dilate, pad, convolve", "max_abs_error_2d_dilate_pad_conv_vs_autograd"),
], ("construction", "largest difference from autograd"))

# %% [markdown]
# All four agree with autograd to rounding error.
#
# ## Question 4: LeNet on CIFAR-10
#
# <a id="q4a"></a>
#
# ### 4(a) The LeNet class
#
# COM S 573 asks for LeNet with ReLU activations and max pooling and neither batch norm nor
# dropout: exactly the project's second reference model, so that run answers it. The layers it
# asks for are built from the question's description and compared with that model:

# %% tags=["hide-input"]
page.solve("4(a)")
page.result("4(a)")
