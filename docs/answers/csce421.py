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
# # CSCE-421 HW3: Convolutional Networks
#
# The homework has four questions: the output volume and parameters of a convolutional layer,
# the projection shortcut of a residual block, the arithmetic of batch normalisation, and LeNet on
# CIFAR-10 (a coding question with two trained models). CSCE-421 numbers the parts of a question
# "Part 1", "Part 2", …; below, 3.2 means question 3, part 2.
#
# Each answer is worked out the way one would on paper, then checked by an independent
# computation with PyTorch (expand *Independent check* under an answer to see it). Where the
# walkthrough printed with the homework gets something wrong, a note at the answer links to its
# [erratum](../errata/). The table gives every question with its final answer.

# %% tags=["hide-input"]
import sys
from pathlib import Path

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderer
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers.render import AnswerPage  # noqa: E402

page = AnswerPage(root, "csce421")
page.overview()

# %% [markdown]
# ## Question 1: one convolutional layer
#
# The output depth is the number of filters; height and width follow from the output-size
# formula. Each filter spans the whole input depth and has one bias. The walkthrough answers the
# question in two parts, as here.
#
# <a id="q1-1"></a>
#
# ### 1.1 The output volume

# %% tags=["hide-input"]
page.solve("1.1")

# %% [markdown]
# <a id="q1-2"></a>
#
# ### 1.2 The number of parameters

# %% tags=["hide-input"]
page.solve("1.2")

# %% [markdown]
# ## Question 2: a residual block
#
# <a id="q2-1"></a>
#
# ### 2.1 The projection shortcut
#
# The main path halves the height and width and doubles the depth, so the input cannot be added
# to its output as it is: the skip connection needs a projection that does the same.

# %% tags=["hide-input"]
page.solve("2.1")
page.demo("csce421.q2.shortcut", [("input $x$", "input", "shape"), ("main path $F(x)$", "main_path_out", "shape"),
                                   ("shortcut $W_s x$", "shortcut_out", "shape")], ("tensor", "shape $H \\times W \\times C$"))

# %% [markdown]
# The table shows the shapes measured by running the block: with the strided $1 \times 1$
# convolution on the skip connection both paths end at the same shape, so the addition is defined.
#
# <a id="q2-2"></a>
#
# ### 2.2 Trainable parameters of the block

# %% tags=["hide-input"]
page.solve("2.2")

# %% [markdown]
# ## Question 3: batch normalisation
#
# Batch norm works on each unit (a row of the matrix) separately, over the examples of the
# mini-batch (its columns).
#
# <a id="q3-1"></a>
#
# ### 3.1 The normalised batch

# %% tags=["hide-input"]
page.solve("3.1")

# %% [markdown]
# <a id="q3-2"></a>
#
# ### 3.2 Scale and shift

# %% tags=["hide-input"]
page.solve("3.2")

# %% [markdown]
# <a id="q3-3"></a>
#
# ### 3.3 Training versus testing

# %% tags=["hide-input"]
page.solve("3.3")
page.demo("csce421.q3.train_vs_test", [
    ("batch mean $\\mu_B$", "train_vs_eval/batch_mean"),
    ("batch variance $\\sigma_B^2$ (divides by $m$)", "train_vs_eval/batch_var_biased"),
    ("unbiased variance (divides by $m - 1$)", "train_vs_eval/batch_var_unbiased"),
    ("running mean after one training step", "train_vs_eval/after_one_step/running_mean"),
    ("running variance after one training step", "train_vs_eval/after_one_step/running_var"),
    ("running mean after 200 steps", "train_vs_eval/running_mean_converged"),
    ("running variance after 200 steps", "train_vs_eval/running_var_converged"),
    ("evaluation output / training output after 200 steps", "train_vs_eval/eval_over_train_ratio"),
    ("$\\sqrt{(m-1)/m}$ for $m = 4$", "train_vs_eval/sqrt_m_minus_1_over_m"),
])

# %% [markdown]
# The table runs `torch.nn.BatchNorm1d` on the question's own batch. In training mode it
# reproduces the hand computation. The running statistics start far from the batch's and move
# towards the batch mean and the *unbiased* variance, so once they have converged the evaluation
# output is the training output times $\sqrt{(m-1)/m}$. Figure 1 shows how fast they get there
# when batches of the same size are drawn from a population with these statistics.

# %% tags=["hide-input"]
page.figure("bn_running_stats",
            "Running mean (left) and running variance (right) of the three units over training "
            "steps, each batch of the question's size drawn from a population with the batch's "
            "mean and unbiased variance (dashed lines): how far from them the statistics start, and "
            "how they approach them.",
            "Line plots of running mean and running variance per unit converging to the dashed "
            "population values as training steps increase.")

# %% [markdown]
# <a id="q3-4"></a>
#
# ### 3.4 The batch size at test time

# %% tags=["hide-input"]
page.solve("3.4")
page.demo("csce421.q3.test_batch_size", [
    ("evaluation mode, batch of 1", "eval_max_abs_difference_vs_full_batch/1"),
    ("evaluation mode, batch of 8", "eval_max_abs_difference_vs_full_batch/8"),
    ("training mode, batch of 2", "train_mode_max_abs_difference_vs_eval/2"),
    ("training mode, batch of 8", "train_mode_max_abs_difference_vs_eval/8"),
    ("training mode, batch of 64", "train_mode_max_abs_difference_vs_eval/64"),
], ("64 test examples, split into batches of", "largest change of an output"))

# %% [markdown]
# The table evaluates the same test examples in batches of different sizes: in evaluation mode no output
# changes at all; had the layer used the batch's own statistics (training mode), every output
# would depend on the batch size.
#
# ## Question 4: LeNet on CIFAR-10
#
# The coding question is worked out on its own pages, one per part, with the code, the runs and
# the results; each part's answer is below with a link to its page.
#
# <a id="q4-1"></a>
#
# ### 4.1 Loading CIFAR-10

# %% tags=["hide-input"]
page.result("4.1")

# %% [markdown]
# <a id="q4-2"></a>
#
# ### 4.2 Preprocessing

# %% tags=["hide-input"]
page.result("4.2")

# %% [markdown]
# <a id="q4-3"></a>
#
# ### 4.3 The LeNet class

# %% tags=["hide-input"]
page.result("4.3")

# %% [markdown]
# <a id="q4-4"></a>
#
# ### 4.4 Training and comparing the two models

# %% tags=["hide-input"]
page.result("4.4", " Which of the differences between the two models matters is measured by the "
            "[ablation](../../ablation/).")
