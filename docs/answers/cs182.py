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
# # CS182 HW3: convolutional networks
#
# Six questions: batch norm applied to distributions; convolution as a finite impulse response
# filter, in one and two dimensions; the feature dimensions, parameters and receptive fields of a
# CNN, and what circular padding does to its equivariance; hand-designed filters and the coding
# exercises (NumPy layers, a dropout experiment, a network of our own); and the homework-process
# questions. The coding questions are worked out on their own pages, linked from their answers
# here.
#
# Several givens were lost with the homework's figures (the impulse response of 2(a), the images
# of 3(f)); each affected answer states the assumption it makes, and the code computes the answer
# for any value of the missing given. Each answer is checked by an independent computation
# (expand *Independent check* under it).

# %% tags=["hide-input"]
import sys
from pathlib import Path

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderer
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers.render import AnswerPage  # noqa: E402

page = AnswerPage(root, "cs182")
page.overview()

# %% [markdown]
# ## Question 1: normalisation layers
#
# <a id="q1a"></a>
#
# ### 1(a) A 1-D Gaussian through batch norm

# %% tags=["hide-input"]
page.solve("1(a)")

# %% [markdown]
# <a id="q1b"></a>
#
# ### 1(b) A 2-D Gaussian through batch norm
#
# Batch norm standardises each coordinate on its own; it does not whiten. The correlation
# survives, so the contours stay tilted ellipses (Figure 1, right).

# %% tags=["hide-input"]
page.solve("1(b)")
page.figure("bn_distributions",
            "Left, 1(a): the input density N(1.5, 0.16) and, after batch norm with beta = 3 and "
            "gamma = 1, N(3, 1): the same bell shape, centred at beta and 2.5 times wider. Right, 1(b): "
            "the 1- and 2-SD contours before (blue) and after (orange) batch norm without scale or "
            "shift: centred at the origin, unit variance on each axis, still tilted.",
            "Two panels: two Gaussian density curves, the wider one centred at 3; and two pairs of "
            "tilted ellipses, the orange pair smaller and centred at the origin.")

# %% [markdown]
# ## Question 2: convolution as a finite impulse response filter
#
# <a id="q2a"></a>
#
# ### 2(a) Convolving the boxcar

# %% tags=["hide-input"]
page.solve("2(a)")

# %% [markdown]
# <a id="q2b"></a>
#
# ### 2(b) Shifting the input

# %% tags=["hide-input"]
page.solve("2(b)")
page.figure("fir_1d",
            "Left, 2(a): the boxcar x(n) of length 7 and y = x * h with h assumed equal to x: a "
            "triangle rising from 1 at n = 0 to 7 at n = 6 and back to 1 at n = 12. Right, 2(b): "
            "the input delayed by N = 5 gives the same triangle delayed by 5.",
            "Two stem plots: a triangle of heights 1 to 7 and back to 1 over n = 0 to 12, and the "
            "same triangle starting at n = 5.")

# %% [markdown]
# <a id="q2c"></a>
#
# ### 2(c) A 2-D convolution
#
# The homework defines the 2-D convolution with the kernel flipped (its equation 2); deep-learning
# libraries compute a cross-correlation instead. For this kernel the two differ in sign only.

# %% tags=["hide-input"]
page.solve("2(c)")

# %% [markdown]
# ### 2(d) Stride and padding
#
# <a id="q2d-i"></a>
#
# #### 2(d) i. Stride 1, padding 1

# %% tags=["hide-input"]
page.solve("2(d) i")

# %% [markdown]
# <a id="q2d-ii"></a>
#
# #### 2(d) ii. Stride 2, padding 1

# %% tags=["hide-input"]
page.solve("2(d) ii")
page.figure("conv_sliding_window",
            "How one output of 2(d) ii is computed: the zero-padded input with the window of "
            "output (0, 1) outlined (red dots mark the window corners of stride 2), the kernel "
            "rotated by 180 degrees as equation 2 asks, and the 3 x 3 output with that entry outlined.",
            "The padded 7 by 7 input grid with a red 3 by 3 window, the flipped kernel, and the 3 by 3 "
            "output grid with one outlined cell.")

# %% [markdown]
# ## Question 3: feature dimensions of a CNN
#
# The formulas are produced by the same code that computes the numbers (with symbols in place of
# numbers) and checked at several settings against `torch.nn.Conv2d` and `torch.nn.MaxPool2d`.
#
# <a id="q3a"></a>
#
# ### 3(a) A convolutional layer

# %% tags=["hide-input"]
page.solve("3(a)")

# %% [markdown]
# <a id="q3b"></a>
#
# ### 3(b) A max-pooling layer

# %% tags=["hide-input"]
page.solve("3(b)")

# %% [markdown]
# <a id="q3c"></a>
#
# ### 3(c) Receptive field of $L$ stacked convolutions

# %% tags=["hide-input"]
page.solve("3(c)")
page.figure("receptive_field",
            "Receptive field against the number of stride-1 convolutions L for kernel sizes 2, 3, 5 "
            "and 7: the lines are the formula 1 + L(K - 1), the circles the receptive field measured "
            "with autograd; the square is conv3-pool2-conv3 (8 pixels, against 5 without the pool).",
            "Four straight lines rising with L, circles on every line, and one square marker at L = 2.",
            width=650)

# %% [markdown]
# <a id="q3d"></a>
#
# ### 3(d) Downsampling

# %% tags=["hide-input"]
page.solve("3(d)")

# %% [markdown]
# <a id="q3e"></a>
#
# ### 3(e) The parameter and activation table

# %% tags=["hide-input"]
page.table(["cs182.q3.e.expressions", "cs182.q3.e.params", "cs182.q3.e.activations"],
           rows_from="cs182.q3.e.params",
           headers=["parameters (as a computation)", "parameters", "activations"])
page.solve("3(e)")

# %% [markdown]
# <a id="q3f"></a>
#
# ### 3(f) Circular padding and equivariance

# %% tags=["hide-input"]
page.solve("3(f)")

# %% [markdown]
# ## Question 4: hand-designed filters
#
# Worked out on the [filters page](../../cs182/filters/), which shows the images the notebook asks
# for.
#
# <a id="q4a"></a>
#
# ### 4(a) A blurring filter

# %% tags=["hide-input"]
page.result("4(a)")

# %% [markdown]
# <a id="q4b"></a>
#
# ### 4(b) An edge-detection filter

# %% tags=["hide-input"]
page.result("4(b)")

# %% [markdown]
# ## Question 5: batch norm, dropout and convolutions
#
# The three coding parts (NumPy forward and backward passes of batch norm, dropout and
# convolution; the same network in PyTorch) are on the [NumPy layers](../../cs182/layers/),
# [dropout](../../cs182/dropout/) and [own CNN](../../cs182/own_cnn/) pages.
#
# <a id="q5a"></a>
#
# ### 5(a) The computational graph of batch norm

# %% tags=["hide-input"]
page.result("5(a)")

# %% [markdown]
# <a id="q5b"></a>
#
# ### 5(b) (optional) The backward pass in closed form

# %% tags=["hide-input"]
page.solve("5(b)")
page.result("5(b)")

# %% [markdown]
# <a id="q5c"></a>
#
# ### 5(c) The dropout experiment

# %% tags=["hide-input"]
page.result("5(c)")

# %% [markdown]
# <a id="q5d"></a>
#
# ### 5(d) A network of our own design

# %% tags=["hide-input"]
page.result("5(d)")

# %% [markdown]
# ## Question 6: homework process
#
# This report is generated by code, so the answers describe how it was made.
#
# <a id="q6a"></a>
#
# ### 6(a) Sources

# %% tags=["hide-input"]
page.result("6(a)")

# %% [markdown]
# <a id="q6b"></a>
#
# ### 6(b) Collaborators

# %% tags=["hide-input"]
page.result("6(b)")

# %% [markdown]
# <a id="q6c"></a>
#
# ### 6(c) Time spent
#
# The compute time is the sum of the training seconds recorded with every published run (the
# reference and seed runs, the ablation and dropout sweeps, the own CNN), on the CPU each ran on.

# %% tags=["hide-input"]
page.result("6(c)")
