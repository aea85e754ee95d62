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
# Slips in the worked solutions that came with the homeworks: the COM S 573 solutions (seed 002)
# and the CSCE-421 walkthrough (seed 000). Each was found by comparing the text with a computed
# answer, and each is decided by a computation, listed with the numbers it produced (read from
# `artifacts/answers.json`, produced by `pipeline/answers/slips.py`). Kinds: *slip* (a wrong
# number or symbol), *imprecise* (true only in part), *deviation* (does something other than
# the question asks), *extraction* (damage done when the text was extracted).

# %% tags=["hide-input"]
import sys
from pathlib import Path

# Built from the repository root: find it (the folder with mkdocs.yml) to import the renderer
# and read artifacts/, wherever the kernel starts.
root = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "mkdocs.yml").is_file())
sys.path.insert(0, str(root))
from pipeline.answers.render import AnswerPage  # noqa: E402

page = AnswerPage(root)

# %% tags=["hide-input"]
page.errata()
