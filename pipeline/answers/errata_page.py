"""Markdown for the errata page (docs/answers/errata.py), built from answers.json's "errata" entry.

Pure functions, entries in, Markdown string out: the summary table (one row per slip, linking to
its section below and to the affected answer), one section per slip, the note on what was judged
extraction damage, and the "errata for this answer" line an answer page can show. The Markdown is
rendered by nbconvert (mistune), not Python-Markdown: plain tables and links, raw HTML for anchors
and `<details>`, maths in `$...$`. Every value read from answers.json goes through `render.escape`;
ids and answer anchors go into links and `id` attributes unescaped, so they must match ID / ANSWER
(a value that does not is our bug and raises). Imports neither torch nor the computing modules.
"""
from __future__ import annotations

import re

from pipeline.answers.render import compact, escape

ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")                         # an entry's anchor
ANSWER = re.compile(r"(csce421|coms573|cs182)#(q[a-z0-9]+(?:-[a-z0-9]+)*)")  # "<page>#<anchor>"
COURSE = {"csce421": "CSCE-421", "coms573": "COM S 573", "cs182": "CS182"}
SUMMARY = "summary"                # the anchor of the summary table, which every section links back to
MATHS = re.compile(r"(\$\$.*?\$\$|\$[^$]*\$)", re.S)                 # the maths spans escape() leaves alone


def entry_id(e: dict) -> str:
    if not isinstance(e.get("id"), str) or not ID.fullmatch(e["id"]):
        raise ValueError(f"erratum id {e.get('id')!r} is not a plain anchor ({ID.pattern})")
    return e["id"]


def answer_parts(answer: str) -> tuple[str, str]:
    """"coms573#q1b" -> ("coms573", "q1b")."""
    m = ANSWER.fullmatch(answer) if isinstance(answer, str) else None
    if not m:
        raise ValueError(f"answer {answer!r} is not '<page>#<anchor>' ({ANSWER.pattern})")
    return m.group(1), m.group(2)


def answer_href(answer: str) -> str:
    """The errata page is served at answers/errata/, the answer pages beside it:
    "csce421#q3-2" -> "../csce421/#q3-2"."""
    page, frag = answer_parts(answer)
    return f"../{page}/#{frag}"


def cell(text) -> str:
    """A value as one table cell: on one line, escaped, and with no "|" left in its maths (a pipe
    there would end the cell before TeX sees it)."""
    one_line = " ".join(str(text).split())
    return escape(MATHS.sub(lambda m: m.group(0).replace("|", r"\vert "), one_line))


def label(e: dict) -> str:
    """ "COM S 573 Q1(b)", "CSCE-421 Q3.2": the course of the affected answer and the question label."""
    page, _ = answer_parts(e["answer"])
    return f"{COURSE[page]} Q{e['where']}"


def verdict(e: dict) -> str:
    return ("The computation confirms the correction." if e["check_result"].get("agrees") is True
            else "**The computation does not confirm the correction.**")


def summary_md(entries: list[dict]) -> str:
    """The summary table: source, where (a link to the entry's section below, and one to the
    affected answer), as printed, correct, and how it was decided."""
    head = (f'<a id="{SUMMARY}"></a>\n\n'
            "| Source | Where | As printed | Correct | Decided by |\n|---|---|---|---|---|")
    rows = [f"| {cell(e['source'])} | [{cell(e['where'])}](#{entry_id(e)})<br>[answer]({answer_href(e['answer'])}) | "
            f"{cell(e['says'])} | {cell(e['right'])} | {cell(e['check'])}"
            f"{'' if e['check_result'].get('agrees') is True else ' (NOT confirmed)'} |" for e in entries]
    return "\n".join([head, *rows])


def numbers_md(result: dict) -> str:
    """The check's raw numbers, one bullet each, in a collapsed block."""
    items = "\n".join(f"- {escape(str(k).replace('_', ' '))}: {escape(compact(v))}"
                      for k, v in result.items() if k != "agrees")
    return f"<details><summary>The check's numbers</summary>\n\n{items}\n\n</details>"


def entry_md(e: dict) -> str:
    """One slip: heading (anchored at its id), where it is, what the text says, what is right and
    why, how that was decided, and the numbers behind it."""
    return "\n\n".join([
        f'### <a id="{entry_id(e)}"></a>{escape(label(e))}: {escape(e["title"])}',
        f"*{escape(e['kind'])}* in {escape(e['source'])}. Affected answer: "
        f"[{escape(label(e))}]({answer_href(e['answer'])}). [Back to the summary](#{SUMMARY})",
        f"**As printed:** {escape(e['says'])}",
        f"**Correct:** {escape(e['right'])}",
        escape(e["explanation"]),
        f"**Decided by:** {escape(e['check'])}. {verdict(e)}",
        numbers_md(e["check_result"])])


def entries_md(entries: list[dict]) -> str:
    return "\n\n".join(entry_md(e) for e in entries)


def extraction_md(notes: list[dict]) -> str:
    """The note on damage judged the extraction's, not the authors': one bullet per place."""
    def bullet(n):
        return (f"- [{escape(label(n))}]({answer_href(n['answer'])}): printed "
                f"\u201c{escape(n['printed'])}\u201d, read as {escape(n['reading'])}: {escape(n['why'])}."
                + ("" if n["check_result"].get("agrees") is True else " **Not confirmed by its check.**"))
    return "\n".join(bullet(n) for n in notes)


def links_md(entries: list[dict], answer: str) -> str:
    """For an answer page: links to the errata that concern the answer at `answer`
    ("coms573#q3c"), or "" when there are none."""
    answer_parts(answer)
    hits = [e for e in entries if e["answer"] == answer]
    if not hits:
        return ""
    return "Errata for this answer: " + "; ".join(
        f"[{escape(e['title'])}](../errata/#{entry_id(e)})" for e in hits) + "."
