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
    """The answer itself: shapes as H x W x C, vectors and matrices as maths, formulas from
    `latex`, dicts as small tables (keys humanised)."""
    v, latex, unit = entry["value"], entry.get("latex"), entry.get("unit")
    if latex is not None:
        body = (r" \times ".join(rf"\left({t}\right)" if "+" in t else t for t in latex)
                if isinstance(latex, list) else latex)
        return f"$$ {body} $$"
    if isinstance(v, bool):
        return "**Yes**" if v else "**No**"
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, dict):
        cols = [k for k, x in v.items() if isinstance(x, list) and x]
        n = {len(v[k]) for k in cols}
        if len(cols) > 1 and len(n) == 1:  # parallel lists (layers, shapes, counts): one row each
            def cell(x):  # a layer's name as code, a shape as C x H x W, a count as a number
                if isinstance(x, str):
                    return code_span(x).replace("|", "\\|")
                if isinstance(x, list):
                    return "$" + r" \times ".join(number(y) for y in x) + "$"
                return number(x)
            head = "| " + " | ".join(escape(k.replace("_", " ")) for k in cols) + " |\n" + "|---" * len(cols) + "|"
            rows = ["| " + " | ".join(cell(v[k][i]) for k in cols) + " |" for i in range(n.pop())]
            rest = [f"{escape(k.replace('_', ' '))}: **{escape(compact(x))}**" for k, x in v.items() if k not in cols]
            return "\n\n" + head + "\n" + "\n".join(rows) + ("\n\n" + "; ".join(rest) if rest else "")
        return "\n\n| quantity | value |\n|---|---|\n" + "\n".join(
            f"| {escape(k.replace('_', ' '))} | {escape(compact(x))} |" for k, x in v.items())
    if _depth(v) == 3 and all(isinstance(r, list) and r and isinstance(r[0], list) for r in v):
        return "\n\n".join(f"$$ \\text{{kernel {n}:}}\\quad {matrix_tex(K)} $$" for n, K in enumerate(v, 1))
    if _depth(v) == 2 and all(isinstance(r, list) and all(not isinstance(x, list) for x in r) for r in v):
        return f"$$ {matrix_tex(v)} $$"
    if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        if unit and (" x " in unit or r"\times" in unit):  # a shape: 15 x 15 x 28 (H x W x C)
            u = unit if "$" in unit else "$" + unit.replace(" x ", r" \times ") + "$"
            return "$" + r" \times ".join(number(x) for x in v) + f"$ ({escape(u)})"
        return "$(" + ", ".join(number(x) for x in v) + ")$"
    if isinstance(v, list):
        return escape(compact(v)) + (f" ({escape(unit)})" if unit else "")
    return f"**{number(v)}**" + (f" {escape(unit)}" if unit else "")


def check_md(entry: dict) -> str:
    r = entry.get("check_result", {})
    verdict = "agrees" if r.get("agrees") else "DOES NOT AGREE"
    err = r.get("max_abs_error")
    extra = f" (largest difference {err:.2g})" if isinstance(err, (int, float)) else ""
    return f"{escape(entry['check'])}: **{verdict}**{extra}."


def givens_md(entry: dict) -> str:
    givens = entry.get("givens") or {}
    items = [f"{escape(k.replace('_', ' '))} = {escape(compact(v))}" if _count(v) <= MAX_GIVEN_VALUES
             else f"{escape(k.replace('_', ' '))}: {_count(v)} values" for k, v in givens.items()]
    return "; ".join(items)


def working_md(entry: dict) -> str:
    """The method in a sentence and the steps as a numbered list: the reading path's working."""
    out = [escape(entry["method"])] if entry.get("method") else []
    if entry.get("steps"):
        out.append("\n".join(f"{n}. {escape(s)}" for n, s in enumerate(entry["steps"], 1)))
    return "\n\n".join(out)


def code_span(value) -> str:
    """A value as an inline code span, with a fence longer than any run of backticks inside."""
    s = str(value).replace("\n", " ")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if "`" in s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def answer_box(body: str, label: str = "Answer") -> str:
    """The final answer set apart (styled by .answer in docs/stylesheets/extra.css). The blank lines
    make CommonMark (nbconvert's mistune) parse the Markdown between the tags."""
    return f'<div class="answer" markdown="1">\n\n**{label}.** {body}\n\n</div>'


def collapsed(summary: str, body: str, cls: str = "check") -> str:
    return f'<details class="{cls}"><summary>{summary}</summary>\n\n{body}\n\n</details>'


def check_block(items: list[tuple[str, dict]]) -> str:
    """One collapsed block per sub-part: each answer's independent check, its givens and the
    record it is stored as. Machine names (ids, raw text forms) live only here."""
    lines = []
    for key, e in items:
        lines.append(f"- {check_md(e)}")
        g = givens_md(e)
        if g:
            lines.append(f"    Givens: {g}.")
        text = e["value"] if e.get("latex") is not None else None
        if text is not None:
            t = " x ".join(f"({x})" if "+" in x else x for x in text) if isinstance(text, list) else text
            lines.append(f"    As text: {code_span(t)}.")
        lines.append(f"    Stored as `{key}` in `artifacts/answers.json`.")
    verdicts = [e.get("check_result", {}).get("agrees") for _, e in items]
    summary = "Independent check: " + ("agrees" if all(verdicts) else "DOES NOT AGREE")
    return collapsed(summary, "\n".join(lines))


def erratum_note(slip: dict, errata_url: str = "../errata/") -> str:
    return (f'<div class="erratum-note" markdown="1">\n\n**A slip in the printed solution.** '
            f"{escape(slip['source'])} ({escape(slip['where'])}) prints “{escape(slip['says'].strip())}”; "
            f"correct: {escape(slip['right'].strip().rstrip('.'))}. See [the erratum]({errata_url}#{slip['id']}).\n\n</div>")


def _sentences(text: str) -> list[str]:
    return [t for t in re.split(r"(?<=[.?!])\s+(?=[A-Z(])", text.strip()) if t]


def split_questions(texts: list[str]) -> tuple[list[str], list[list[str]]]:
    """The sentences all of a sub-part's questions share (the setting) and each one's own tail
    ("What is the number of parameters?"), so the setting is printed once."""
    split = [_sentences(t) for t in texts]
    n = 0
    while all(len(x) > n + 1 for x in split) and len({x[n] for x in split}) == 1:
        n += 1
    return split[0][:n], [x[n:] for x in split]


def solution_md(items: list[tuple[str, dict]], assumption_seen: dict, slips=(), here: str = "") -> str:
    """One sub-part as a worked solution: the question, the assumption where a given was lost (in
    full the first time on a page, later a link back), the working, the answer set apart, and the
    independent check collapsed. Several entries (a sub-part asking for two things, or an
    intermediate result and the answer) share the question's setting, printed once; each entry's
    own question heads its working. `assumption_seen` maps an assumption's text to the anchor where
    the page first stated it; this call adds to it."""
    out = [erratum_note(s) for s in slips]
    texts = [e["question"] for _, e in items]
    setting, tails = split_questions(texts)
    asked = [" ".join(t) for t in tails if t and t[-1].endswith("?")] or [" ".join(tails[-1])]
    seen_here = []
    # no shared setting: the sub-part's own question is the first entry's; later entries are
    # parts of the answer, each headed by its own question
    question = " ".join(setting + list(dict.fromkeys(asked))) if setting else texts[0]
    out.append(f"> **Question.** {escape(question)}")
    for _, e in items:
        a = e.get("assumption")
        if not a or a in seen_here:
            continue
        seen_here.append(a)
        first = assumption_seen.setdefault(a, here)
        if first == here:
            out.append(f"*Assumption (a given was lost in the text).* {escape(a)}")
        else:
            label = first[1:].replace("-", ".") if re.fullmatch(r"q\d+(-\d+)*", first) else first[1:]
            out.append(f"*Assumption:* the same as in [{escape(label)}](#{first}) above.")
    several, shown = len(items) > 1, set()
    for n, ((key, e), tail) in enumerate(zip(items, tails)):
        if several and (setting or n > 0):
            out.append(f"**{escape(' '.join(tail))}**")
        w = working_md(e)
        if w and w not in shown:  # entries of one sub-part often share their working: once
            out.append(w)
            shown.add(w)
        out.append(answer_box(value_md(e)))
    out.append(check_block(items))
    return "\n\n".join(out)


def demo_value(v, fmt: str | None = None) -> str:
    """A demonstration number: `shape` -> $32 \times 32 \times 128$, lists of numbers -> $(13, 5, 0)$,
    dicts of numbers -> 'key: value' pairs, scalars to 4 significant digits."""
    if fmt == "shape":
        return "$" + r" \times ".join(number(x) for x in v) + "$"
    if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return "$(" + ", ".join(f"{x:.4g}" if isinstance(x, float) else number(x) for x in v) + ")$"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(compact(v))


def demo_table(entry: dict, rows: list[tuple], columns=("quantity", "value")) -> str:
    """A demonstration's chosen numbers as a small table: `rows` are (label, path) or (label, path,
    fmt) with path a '/'-separated key path into entry['demonstration']; labels may hold $...$
    maths."""
    def get(path):
        v = entry["demonstration"]
        for part in path.split("/"):
            v = v[int(part)] if isinstance(v, list) else v[part]
        return v
    head = f"| {columns[0]} | {columns[1]} |\n|---|---|"
    return head + "\n" + "\n".join(f"| {r[0]} | {demo_value(get(r[1]), r[2] if len(r) > 2 else None)} |"
                                   for r in rows)


def table_md(answers: dict, keys: list[str], row_names: list[str], headers: list[str] | None = None) -> str:
    """Several list-valued answers side by side, one row per element (CS182 3(e)'s table)."""
    headers = headers or [f"`{k}`" for k in keys]
    head = "| layer | " + " | ".join(headers) + " |\n" + "|---" * (len(keys) + 1) + "|"
    def cell(v):  # a shape [7, 7, 10] as 7 x 7 x 10, as the homework's table writes it
        if isinstance(v, list):
            return "$" + r" \times ".join(number(x) for x in v) + "$"
        if isinstance(v, str) and " x " in v:
            return escape("$" + v.replace(" x ", r" \times ").replace("$", "") + "$")
        return escape(number(v))
    rows = [f"| {escape(name)} | " + " | ".join(cell(answers[k]["value"][n]) for k in keys) + " |"
            for n, name in enumerate(row_names)]
    return head + "\n" + "\n".join(rows)


def figure_html(src: str, number: int, caption: str, alt: str, width: int = 900) -> str:
    """A numbered figure with its caption and alt text. `src` is the image's URL as the site
    publishes it (hooks/artifacts.py publishes artifacts/answers/ as assets/answers/), loaded lazily
    so the page's text and maths come first; caption and alt are HTML-escaped text."""
    import html
    return (f'<figure class="report-figure"><a href="{html.escape(src, quote=True)}"><img '
            f'src="{html.escape(src, quote=True)}" loading="lazy" alt="{html.escape(alt, quote=True)}" '
            f'style="max-width: 100%; width: {int(width)}px"></a>'
            f"<figcaption><strong>Figure {number}.</strong> {html.escape(caption)}</figcaption></figure>")


# --- the page object -----------------------------------------------------------------------------

class AnswerPage:
    """What a homework page uses. `page.overview()` prints its table of questions, `page.solve(label)`
    one sub-part as a worked solution, `page.demo(...)` a demonstration as a small table,
    `page.figure(name, caption, alt)` a numbered figure; `page.result(label, text)` the answer of a
    question worked out on another page. Headings and anchors are in the page's Markdown cells."""

    def __init__(self, root: Path | None = None, homework: str | None = None):
        self.store = store(repo_root() if root is None else root)
        self.answers = self.store.read_json(ANSWERS_JSON)
        self.homework = homework
        self.assumptions: dict[str, str] = {}  # assumption text -> anchor where it was stated
        self.figures = 0

    def __getitem__(self, key: str) -> dict:
        if key not in self.answers:
            raise KeyError(f"{key} is not in answers.json; rerun `invoke answers`.")
        return self.answers[key]

    def markdown(self, text: str):
        from IPython.display import Markdown, display
        display(Markdown(text))

    def question(self, label: str):
        from pipeline.answers import questions
        for q in questions.of(self.homework):
            if q.label == label:
                return q
        raise KeyError(f"{self.homework} has no question {label!r} in pipeline/answers/questions.py")

    def slips(self, q) -> list[dict]:
        """The errata entries whose affected answer is this question's anchor."""
        return [e for e in self.answers.get("errata", {}).get("value", [])
                if e.get("answer") == f"{q.homework}#{q.anchor}"]

    def solve(self, label: str, keys: tuple | None = None):
        q = self.question(label)
        items = [(k, self[k]) for k in (keys or q.keys)]
        self.markdown(solution_md(items, self.assumptions, self.slips(q), q.anchor))

    def overview(self):
        """The homework's questions: label (linking to its heading), topic, final answer."""
        from pipeline.answers import questions
        answers, artifacts = questions.gather(self.store)
        rows = questions.rows(answers, artifacts, self.homework)
        self.markdown(questions.table_md(rows, homework_column=False, in_page=True))

    def result(self, label: str, extra: str = ""):
        """A question worked out on another page: its final answer set apart, and the link."""
        from pipeline.answers import questions
        q = self.question(label)
        answers, artifacts = questions.gather(self.store)
        md, _ = questions.final_answer(q, answers, artifacts)
        notes = [erratum_note(s) for s in self.slips(q)]
        more = [f"The full working: [{questions.page_title(q.page)}](../../{q.page.removesuffix('.md')}/)."
                + extra] if q.page else ([extra.strip()] if extra else [])
        self.markdown("\n\n".join(notes + [answer_box(md)] + more))

    def demo(self, key: str, rows: list[tuple[str, str]], columns=("quantity", "value")):
        self.markdown(demo_table(self[key], rows, columns))

    def table(self, keys: list[str], rows_from: str, headers: list[str] | None = None):
        self.markdown(table_md(self.answers, keys, self[rows_from]["givens"]["rows"], headers))

    def figure(self, name: str, caption: str, alt: str, width: int = 900):
        from IPython.display import HTML, display
        self.figures += 1
        self.store.path(f"{FIGURES_DIR}/{name}.png")  # it must exist and match the manifest
        # every notebook page sits at answers/NAME/, two levels below the site root
        display(HTML(figure_html(f"../../assets/{FIGURES_DIR}/{name}.png", self.figures, caption, alt, width)))
