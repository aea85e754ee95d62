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
# # Errata
#
# Two of the homeworks came with worked solutions: the COM S 573 HW5 solutions (seed 002) and the
# CSCE-421 HW3 walkthrough (seed 000). Both were read line by line against the computed answers,
# and every slip of their authors found is listed here. Each is decided by a computation that
# could have gone the other way: fed the value the text prints, the same check fails. Each row of
# the table links to the slip's section below and to the answer it affects; the numbers come from
# `artifacts/answers.json`, written by `pipeline/answers/slips.py`. Kinds: *slip* (a wrong number,
# symbol, label or formula), *wrong claim* (a statement the computation refutes), *imprecise*
# (true only in part), *deviation* (does something other than the question asks).

# %% tags=["hide-input"]
import sys
from pathlib import Path

from IPython.display import Markdown, display

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderers
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers import errata_page  # noqa: E402
from pipeline.answers.render import AnswerPage  # noqa: E402

errata = AnswerPage(root)["errata"]
display(Markdown(errata_page.summary_md(errata["value"])))

# %% [markdown]
# **Not counted: damage done by the extraction.** Seed 000 lost minus signs, square roots and
# fraction bars wherever its maths was rendered. A printed oddity that such a loss explains,
# judged against seed 001 (another rendering of the same page), against COM S 573 (which prints
# the same batch-norm question) or against the walkthrough's own numbers, is not an author's slip:

# %% tags=["hide-input"]
display(Markdown(errata_page.extraction_md(errata["extraction"])))

# %% [markdown]
# Where the maths is lost in both renderings (the output-size step of Question 2 Part 1), nothing
# can be decided and nothing is listed.
#
# ## The slips

# %% tags=["hide-input"]
display(Markdown(errata_page.entries_md(errata["value"])))
