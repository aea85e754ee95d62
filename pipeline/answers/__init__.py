"""The "answers" stage: every written question of the three homeworks, answered by computation.

`compute_all()` returns the whole answers.json object: {id: answer}, where an answer holds `value`,
`question`, `check` (the independent computation, in words) and `check_result` (what it gave),
plus `givens`, `method`, `steps`, `unit`, `assumption`, `demonstration` where useful (see
`record.py`). The errata are included under the id "errata" in the same shape, with the list of
errata as the value; `errata()` returns the list alone. One module per assignment (`csce421`,
`coms573`, `cs182`), shared maths in `conv` and `batchnorm`, errata in `slips`, figures in
`figures` (built from the answers dict, never saved here), page rendering in `render`. Nothing in
this package writes a file; `invoke answers` does. The computing modules (and torch) are imported
on first use, so the site's pages can import `render` without loading them.
"""
from __future__ import annotations

from contextlib import contextmanager

__all__ = ["compute_all", "errata", "single_thread"]


@contextmanager
def single_thread():
    """Run torch on one thread, then restore the setting. Every tensor here is tiny: on a busy
    2-core machine torch's thread pool made compute_all take 90 s instead of 2 s."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def errata() -> list[dict]:
    """Every slip found in the worked solutions, each decided by a computation (see `slips`)."""
    from pipeline.answers import slips

    with single_thread():
        return slips.errata()


def compute_all() -> dict:
    """{answer id: answer} for CSCE-421 Q1-Q3, COM S 573 Q1-Q3, CS182 Q1-Q3 (+5(b)) and "errata"."""
    from pipeline.answers import coms573, cs182, csce421, slips
    from pipeline.answers.record import answer

    with single_thread():
        out = csce421.answers() | coms573.answers() | cs182.answers()
    found = errata()
    out["errata"] = answer(
        found, "Which steps of the worked solutions (COM S 573 seed 002, CSCE-421 walkthrough seed 000) "
        "are wrong, and what is right?",
        "one computation per erratum, listed in its check / check_result",
        {"agrees": all(e["check_result"]["agrees"] for e in found), "count": len(found)},
        extraction=slips.extraction_notes())  # damage judged the extraction's, not the authors'
    return out
