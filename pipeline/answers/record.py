"""The shape of one entry of answers.json, and the conversion of numbers to plain JSON.

An answer is a dict: `value` (the answer itself), `question` (the text it answers), `check` (how an
independent computation verified it, in words) and `check_result` (what that computation gave and
whether it agrees), plus, where useful, `givens`, `method`, `steps` (Markdown with LaTeX, every
number interpolated from a computed value), `unit`, `assumption` (a given the source text lost) and
`demonstration` (numbers behind a "why" answer). Pages render these fields and nothing else.
"""
from __future__ import annotations

import math

import numpy as np


def plain(obj):
    """obj with numpy arrays/scalars and tuples turned into lists, ints and floats (JSON-safe).

    Floats that are whole numbers stay floats; -0.0 becomes 0.0 so pages never print "-0".
    """
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            raise ValueError(f"non-finite number {f} in an answer; an answer must be a real value")
        return f + 0.0  # -0.0 -> 0.0
    return obj


def agreement(value, reference, atol: float = 1e-9) -> dict:
    """check_result for a numeric answer: the reference value, the largest difference, agrees."""
    if isinstance(value, (str, bool)) or isinstance(reference, (str, bool)):
        return {"value": plain(reference), "agrees": value == reference}
    a = np.asarray(value, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return {"value": plain(reference), "agrees": False, "max_abs_error": None}
    err = float(np.abs(a - b).max()) if a.size else 0.0
    return {"value": plain(reference), "max_abs_error": err, "agrees": err <= atol}


def answer(value, question: str, check: str, check_result: dict, **extra) -> dict:
    """One answers.json entry; `extra` fields that are None are left out."""
    entry = {"value": value, "question": question, "check": check, "check_result": check_result}
    entry.update({k: v for k, v in extra.items() if v is not None})
    return plain(entry)


def fmt(x, digits: int = 6) -> str:
    """A number for prose and steps: whole numbers without ".0", others to `digits` significant
    digits; lists and arrays element-wise, as "[a, b, c]"."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[" + ", ".join(fmt(v, digits) for v in (x.tolist() if isinstance(x, np.ndarray) else x)) + "]"
    f = float(x)
    if abs(f - round(f)) < 1e-9 * max(1.0, abs(f)):
        return str(int(round(f)))
    return f"{f:.{digits}g}"
