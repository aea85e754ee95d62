"""The report's tables as LaTeX: one formatting of the rows, two renderings.

A table placeholder of the site (hooks/artifacts.py) formats every cell once, as the page shows it
(rounding, percent signs, bold, code names), and returns a `Table`: its Markdown, which remembers
those cells. `to_latex` renders the same cells as a booktabs `tabular` (pandas' `Styler.to_latex`),
so the page and its `.tex` download cannot disagree on a number: only the markup is translated
(`**x**` to `\\textbf{x}`, a code span to `\\texttt`, a tooltip to its visible name, HTML entities to
characters, then LaTeX's special characters escaped; maths, `\\( \\)` or `$ $`, is kept as it is).
Pure functions of strings; the hook writes nothing but the site.
"""
from __future__ import annotations

import html
import re

import pandas as pd

# Characters LaTeX would act on, and the few non-ASCII ones the pages use that pdflatex's default
# input encoding does not know; everything else (é, –) passes as UTF-8.
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "\u2212": "$-$", "\u00d7": r"$\times$", "\u00b1": r"$\pm$",
    "\u00a0": "~", "\u2026": r"\dots{}", "\u2264": r"$\le$", "\u2265": r"$\ge$", "\u2713": "yes", "\u2717": "no",
}
# A code span, or maths as arithmatex reads it (\( \), $$ $$, $ $ with no space inside the dollars);
# a value's own $ or ` reaches the cell as an entity (hooks/artifacts.py: text), so these are markup.
_PROTECTED = re.compile(r"(`+)(.+?)\1|\\\((.+?)\\\)|\$\$(.+?)\$\$|(?<!\\)\$(?!\s)(.+?)(?<!\s)(?<!\\)\$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\([^)]*\)(\{[^}]*\})?")  # [text](target){ attrs } -> text
_TAG = re.compile(r"<[^>]+>")
_ESCAPED_PIPE = re.compile(r"\\\|")


class Table(str):
    """A Markdown table (the str) that keeps the cells it was made from: `header`, `rows` (lists
    of Markdown strings, as the page shows them) and `align` (one of l / r per column)."""
    header: list[str]
    rows: list[list[str]]
    align: str

    def __new__(cls, header, rows, align: str | None = None):
        align = align or "l" * len(header)
        rule = ["---:" if a == "r" else "---" for a in align]
        lines = [header, rule, *rows]
        self = super().__new__(cls, "\n".join(
            "| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |" for line in lines))
        self.header, self.rows, self.align = [str(c) for c in header], [[str(c) for c in r] for r in rows], align
        return self

    @classmethod
    def from_markdown(cls, markdown: str) -> Table:
        """The cells of a Markdown table written elsewhere (a header, a rule, rows)."""
        lines = [line.strip() for line in markdown.strip().split("\n")]
        split = [[_ESCAPED_PIPE.sub("|", c).strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
                 for line in lines]
        align = "".join("r" if c.endswith(":") and not c.startswith(":") else "l" for c in split[1])
        return cls(split[0], split[2:], align)


def latex_text(text: str) -> str:
    """Plain text (no markup) with LaTeX's special characters escaped."""
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text)).replace("\n", " ")


def md_to_latex(cell: str) -> str:
    """One Markdown table cell as LaTeX: the same characters and digits, other markup."""
    cell = _LINK.sub(lambda m: m.group(1), str(cell))
    stash: list[str] = []

    def keep(latex: str) -> str:  # a finished piece of LaTeX, out of the way of the escaping below
        stash.append(latex)
        return f"\x00{len(stash) - 1}\x00"

    def protect(m: re.Match) -> str:
        if m.group(1):
            return keep(rf"\texttt{{{latex_text(m.group(2).strip())}}}")
        return keep(f"${m.group(4)}$" if m.group(4) is not None else m.group(0))  # no display maths in a cell
    cell = _PROTECTED.sub(protect, cell)
    cell = _BOLD.sub(lambda m: "\x01" + m.group(1) + "\x02", cell)  # markup ** only: a value's * is &#42;
    cell = html.unescape(_TAG.sub("", cell))  # <abbr title=...>Model 1</abbr> -> Model 1
    cell = latex_text(cell).replace("\x01", r"\textbf{").replace("\x02", "}")
    return re.sub("\x00(\\d+)\x00", lambda m: stash[int(m.group(1))], cell)


def to_latex(table: Table, comments: list[str] = ()) -> str:
    """A booktabs tabular of the table's cells (needs \\usepackage{booktabs}), after `%` comment
    lines (provenance)."""
    header = [md_to_latex(c) for c in table.header]
    body = pd.DataFrame([[md_to_latex(c) for c in row] for row in table.rows], columns=header, dtype=object)
    tex = body.style.hide(axis="index").to_latex(hrules=True, column_format=table.align)
    return "".join(f"% {latex_comment(c)}\n" for c in comments) + tex


def latex_comment(text: str) -> str:
    return str(text).replace("\n", " ")
