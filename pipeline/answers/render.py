"""Markdown for the answer pages, built from artifacts/answers.json and nothing else.

The site's pages (docs/answers/*.py, executed by mkdocs-jupyter) hold headings and prose; every
number, matrix and formula they show comes through here from the JSON file that `invoke answers`
wrote, and every figure from artifacts/answers/<name>.png. Both are read through the artifacts
store (pipeline/store.py), as the site hook reads its files: a missing, changed (sha256 against the
manifest) or malformed file raises a StoreError saying which command rewrites it, so the build
fails instead of showing stale or invented numbers. The formatting functions are pure (entry in,
Markdown string out); `AnswerPage` adds the IPython display calls. Imports neither torch nor the
computing modules.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from pipeline.store import Store, resolve_root

ANSWERS_JSON = "answers.json"   # paths inside the artifacts folder, as the contract names them
FIGURES_DIR = "answers"
SYMBOL = re.compile(r"^w(\d+)\^(\d+),?(\d+)$")  # "w1^21" / "w1^10,3" (conv.weight_symbol)
MAX_GIVEN_VALUES = 40  # givens with more numbers than this are summarised, not printed


# --- files -------------------------------------------------------------------------------------

def repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) that holds
    mkdocs.yml: the repository root when the site is built."""
    start = Path.cwd() if start is None else Path(start)
    for folder in (start, *start.parents):
        if (folder / "mkdocs.yml").is_file():
            return folder
    raise FileNotFoundError(f"no mkdocs.yml at or above {start}; build the site from the repository.")


def store(root: Path) -> Store:
    """The artifacts of the repository at `root` ($LENET_ARTIFACTS if set): the tree the hook
    reads. Not Store()'s default: that is the repository this module was imported from, and a
    page may be built from a copy that links to it."""
    return Store(resolve_root(root))


def load_answers(root: Path) -> dict:
    return store(root).read_json(ANSWERS_JSON)


def figure_path(root: Path, name: str) -> Path:
    return store(root).path(f"{FIGURES_DIR}/{name}.png")


# --- formatting --------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Text from answers.json as Markdown that shows exactly its characters: outside $...$ maths
    and `code` spans, every character Markdown or HTML could act on (emphasis, tables, links, tags,
    entities, backslashes) is backslash-escaped, so "w2^11*x12" and "z_hat_i" print as written and
    a value holding markup shows as text."""
    parts = re.split(r"(\$\$.*?\$\$|\$[^$]*\$|`[^`\n]+`)", str(text), flags=re.S)
    def maths(p):  # TeX needs no raw < or >: as \lt and \gt they cannot open a tag
        return p.replace("<", r"\lt ").replace(">", r"\gt ")
    return "".join(maths(p) if p[:1] == "$" and len(p) > 1 else p if p[:1] == "`" and len(p) > 1
                   else re.sub(r"([\\`*_|<>\[\]&!{}])", r"\\\1", p) for p in parts)


def number(v) -> str:
    """A scalar as text: whole numbers without ".0" (thousands separated), others to 6 digits."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if v is None:
        return "-"
    f = float(v)
    if math.isfinite(f) and abs(f - round(f)) < 1e-9 * max(1.0, abs(f)):
        i = int(round(f))
        return f"{i:,}" if abs(i) >= 10_000 else str(i)
    return f"{f:.6g}"


def symbol_tex(s) -> str:
    """'w1^21' -> 'w_{1}^{21}' (kernel tap 1 of W^{21}); numbers via `number`."""
    if isinstance(s, str):
        m = SYMBOL.match(s)
        if m:
            k, i, j = m.groups()
            return f"w_{{{k}}}^{{{i}{j}}}"
        return r"\text{" + s + "}" if not re.fullmatch(r"-?[\d.]+", s) else s
    return number(s).replace(",", "{,}")


def _depth(v) -> int:
    return 1 + _depth(v[0]) if isinstance(v, list) and v else 0


def matrix_tex(M) -> str:
    rows = [" & ".join(symbol_tex(x) for x in row) for row in M]
    return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"


def compact(v) -> str:
    """Short inline text for a given or a demonstration number."""
    if isinstance(v, list):
        return "[" + ", ".join(compact(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {compact(x)}" for k, x in v.items()) + "}"
    return number(v)


def _count(v) -> int:
    if isinstance(v, list):
        return sum(_count(x) for x in v)
    if isinstance(v, dict):
        return sum(_count(x) for x in v.values())
    return 1


def value_md(entry: dict) -> str:
    """The answer itself: matrices and kernels as LaTeX, formulas from `latex`, dicts as tables."""
    v, latex = entry["value"], entry.get("latex")
    if latex is not None:
        body = (r" \times ".join(rf"\left({t}\right)" if "+" in t else t for t in latex)
                if isinstance(latex, list) else latex)
        code = " x ".join(f"({t})" if "+" in t else t for t in v) if isinstance(v, list) else v
        return f"$$ {body} $$\n\n(as text: `{code}`)"
    if isinstance(v, bool):
        return "**Yes**" if v else "**No**"
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, dict):
        return "| quantity | value |\n|---|---|\n" + "\n".join(f"| {escape(k)} | {escape(compact(x))} |" for k, x in v.items())
    if _depth(v) == 3 and all(isinstance(r, list) and r and isinstance(r[0], list) for r in v):
        return "\n\n".join(f"$$ \\text{{kernel {n}:}}\\quad {matrix_tex(K)} $$" for n, K in enumerate(v, 1))
    if _depth(v) == 2 and all(isinstance(r, list) and all(not isinstance(x, list) for x in r) for r in v):
        return f"$$ {matrix_tex(v)} $$"
    unit = entry.get("unit")
    if isinstance(v, list):
        return escape(compact(v)) + (f" ({escape(unit)})" if unit else "")
    return f"**{number(v)}**" + (f" {escape(unit)}" if unit else "")


def check_md(entry: dict) -> str:
    r = entry.get("check_result", {})
    verdict = "agrees" if r.get("agrees") else "DOES NOT AGREE"
    err = r.get("max_abs_error")
    extra = f" (largest difference {err:.2g})" if isinstance(err, (int, float)) else ""
    return f"**Check.** {escape(entry['check'])}: {verdict}{extra}."


def entry_md(key: str, entry: dict, heading: str | None = None) -> str:
    """One answer as Markdown: question, givens, assumption, method, steps, answer, check."""
    out = ["---", f"#### {escape(heading)}" if heading else "", f"**Question.** {escape(entry['question'])}"]
    givens = entry.get("givens")
    if givens:
        items = [f"{escape(k)} = {escape(compact(v))}" if _count(v) <= MAX_GIVEN_VALUES
                 else f"{escape(k)}: {_count(v)} values" for k, v in givens.items()]
        out.append("**Givens.** " + "; ".join(items) + ".")
    if entry.get("assumption"):
        out.append(f"> **Assumption (a given was lost).** {escape(entry['assumption'])}")
    if entry.get("method"):
        out.append(f"**Method.** {escape(entry['method'])}")
    if entry.get("steps"):
        out.append("**Steps.**\n\n" + "\n".join(f"1. {escape(s)}" for s in entry["steps"]))
    out.append(f"**Answer** (`{key}`)**.**\n\n{value_md(entry)}")
    out.append(check_md(entry))
    return "\n\n".join(x for x in out if x)


def demonstration_md(entry: dict, keys=None) -> str:
    """The short numbers of a demonstration (scalars, short lists) as a bullet list."""
    lines = []

    def walk(prefix, d):
        for k, v in d.items():
            if keys is not None and not prefix and k not in keys:
                continue
            name = f"{prefix}{k}".replace("_", " ")
            if isinstance(v, dict):
                walk(f"{prefix}{k} / ", v)
            elif _count(v) <= 12:
                lines.append(f"- {escape(name)}: {escape(compact(v))}")
    walk("", entry.get("demonstration", {}))
    return "\n".join(lines)


def table_md(answers: dict, keys: list[str], row_names: list[str]) -> str:
    """Several list-valued answers side by side, one row per element (CS182 3(e)'s table)."""
    head = "| layer | " + " | ".join(f"`{k}`" for k in keys) + " |\n" + "|---" * (len(keys) + 1) + "|"
    def cell(v):  # a shape [7, 7, 10] as 7 x 7 x 10, as the homework's table writes it
        return escape(compact(v).replace("[", "").replace("]", "").replace(", ", " x "))
    rows = [f"| {escape(name)} | " + " | ".join(cell(answers[k]["value"][n]) for k in keys) + " |"
            for n, name in enumerate(row_names)]
    return head + "\n" + "\n".join(rows)


def errata_md(entries: list[dict]) -> str:
    """The errata as sections: where, what it says, what is right, and the deciding check."""
    out = []
    for e in entries:
        r = {k: v for k, v in e["check_result"].items() if k != "agrees"}
        out.append("\n\n".join([
            f"### {escape(e['source'])}: {escape(e['where'])}",
            f"*{escape(e['kind'])}* (`{e['id']}`)",
            f"**The text says:** {escape(e['says'])}",
            f"**Right:** {escape(e['right'])}",
            f"**Decided by:** {escape(e['check'])}. "
            + ("The computation confirms the correction." if e["check_result"].get("agrees")
               else "**The computation does not confirm the correction.**"),
            "\n".join(f"- {escape(k.replace('_', ' '))}: {escape(compact(v))}" for k, v in r.items())]))
    return "\n\n".join(out)


# --- the page object -----------------------------------------------------------------------------

class AnswerPage:
    """What a notebook page uses: `page.show(id, ...)`, `page.figure(name)`, `page.errata()`."""

    def __init__(self, root: Path | None = None):
        self.store = store(repo_root() if root is None else root)
        self.answers = self.store.read_json(ANSWERS_JSON)

    def __getitem__(self, key: str) -> dict:
        if key not in self.answers:
            raise KeyError(f"{key} is not in answers.json; rerun `invoke answers`.")
        return self.answers[key]

    def markdown(self, text: str):
        from IPython.display import Markdown, display
        display(Markdown(text))

    def show(self, *keys: str, heading: str | None = None):
        for key in keys:
            self.markdown(entry_md(key, self[key], heading))

    def demo(self, key: str, keys=None):
        self.markdown(demonstration_md(self[key], keys))

    def table(self, keys: list[str], rows_from: str):
        self.markdown(table_md(self.answers, keys, self[rows_from]["givens"]["rows"]))

    def figure(self, name: str, width: int = 900):
        from IPython.display import Image, display
        display(Image(filename=str(self.store.path(f"{FIGURES_DIR}/{name}.png")), width=width))

    def errata(self):
        self.markdown(errata_md(self["errata"]["value"]))
