"""MkDocs hook: the site's maths typeset at build time, as MathML the browser lays out itself; and a
time limit for each notebook cell.

Maths. MathJax 2 in the browser took 4-6 s to typeset the answer pages. Instead every formula is
converted here, once, from TeX to MathML (`latex2mathml`, pure Python): Chromium, Firefox and
Safari render MathML Core natively, so the pages load no maths script at all and the maths is laid
out with the text. Two kinds of page hold maths:

- Markdown pages: `pymdownx.arithmatex` (generic mode) leaves `<span class="arithmatex">\\(...\\)</span>`
  and `<div class="arithmatex">\\[...\\]</div>`; the wrapper stays (Material styles it: wide
  display maths scrolls inside it), its TeX becomes a <math> element.
- notebook pages (mkdocs-jupyter): nbconvert's Markdown renderer leaves `$...$`, `$$...$$` and bare
  `\\begin{env}...\\end{env}` in the HTML of rendered Markdown (cells and `display(Markdown(...))`
  outputs, class `jp-RenderedMarkdown`); only there, never in code, `<pre>` or scripts, each
  becomes a <math> element. The plugin's template always writes a MathJax <script> block (no option
  turns it off; `custom_mathjax_url` only changes its URL); it is removed.

The TeX stays in each <math> as `<annotation encoding="application/x-tex">`, for copying and for
tools. Entities are decoded first (`&amp;` in a matrix is TeX's `&`). A formula the converter
cannot handle fails the build with the page and the formula: an exception, an unknown command
(latex2mathml keeps it as `<mi>\\cmd</mi>`), unbalanced braces or an unknown environment (both
silently dropped by latex2mathml), a script or fraction missing a part, a stray `&`, a line
break outside a table (browsers do not break MathML lines).

Fixes to latex2mathml's output, found on the site's own formulas, each tested in
tests/test_maths.py (the constants below say why): `aligned` converted as `align*`; `\\sim` and
nine other commands given the character their own line of latex2mathml's symbol table gives;
relations and arrows written as identifiers made operators; accents marked as accents, `\\hat`
and `\\tilde` with TeX's accent characters; upper-case Greek upright; a sign after an operator
set as a sign (no space in "= -19"); `/` without spaces; named operators (`\\max`,
`\\operatorname`) spaced as TeX spaces them, their limits below in display maths. Layout that
MathML Core leaves to CSS (column alignment in `align*`/`cases`, the maths font) is in
docs/stylesheets/extra.css.

Cell time limit. mkdocs-jupyter (0.26) has no option for it and nbclient's default is no limit,
so a hanging cell would hang the build. `on_config` wraps the plugin's nbconvert set-up to give
every cell `CELL_TIMEOUT_S` seconds; a cell that takes longer fails the build.
"""
from __future__ import annotations

import functools
import html
import re
from xml.etree.ElementTree import Element, SubElement, tostring

from mkdocs.exceptions import PluginError

CELL_TIMEOUT_S = 120  # each answer page runs in a few seconds; this only stops a hang
TEX = "application/x-tex"  # the annotation's encoding, as MathML and MathJax name TeX

# Markdown pages: pymdownx.arithmatex, generic mode (its content is escaped text, no tags).
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)
# Notebook pages: the regions nbconvert rendered from Markdown, and within them the tags and the
# elements whose text is never maths (a `<pre>` holds a `<code>`; neither nests in itself).
RENDERED_MARKDOWN = re.compile(r'<div\b[^>]*\bclass="[^"]*\bjp-RenderedMarkdown\b[^"]*"[^>]*>')
DIV = re.compile(r"<div\b[^>]*>|</div\s*>", re.I)
NOT_TEXT = re.compile(r"<!--.*?-->|<(pre|code|script|style|textarea|math)\b[^>]*>.*?</\1\s*>|<[^>]*>", re.S | re.I)
# nbconvert's delimiters (nbconvert/filters/markdown_mistune.py): it writes \[ \] as $$ $$ and
# \( \) as $ $, and a bare environment as itself; an escaped \$ is not a delimiter.
DOLLARS = re.compile(r"(?<![\\$])\$\$(?P<block>.+?)(?<!\\)\$\$"
                     r"|(?<![\\$])\$(?P<inline>[^$]+?)(?<![\\$])\$"
                     r"|(?P<env>\\begin\{(?P<name>[a-zA-Z]+\*?)\}.*?\\end\{(?P=name)\})", re.S)
# The MathJax block of nbconvert's base/mathjax.html.j2 macro, which mkdocs-jupyter's template calls.
MATHJAX_BLOCK = re.compile(r"\s*<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
MATHJAX_LEFT = re.compile(r"<script[^>]*mathjax[^>]*>|text/x-mathjax-config", re.I)

# Environments latex2mathml lays out as tables (checked in tests/test_maths.py); any other is an
# error, since it would drop the environment silently. `aligned` is converted as `align*`.
ENVIRONMENTS = {"matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "array", "cases",
                "align*", "split", "aligned"}
ENV_AS = {"aligned": "align*"}
BEGIN_END = re.compile(r"\\(begin|end)\{([^}]*)\}")
# Elements that need exactly this many children (MathML Core); latex2mathml leaves `\frac{1}` as a
# one-child <mfrac>.
ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "mover": 2, "munder": 2, "munderover": 3, "mroot": 2}
# Characters latex2mathml writes as <mi> that are operators (relations, arrows, floor and ceiling):
# as <mo> they get operator spacing and, for fences, stretching.
OPERATOR_RANGES = ((0x00B1, 0x00B1), (0x00D7, 0x00D7), (0x00F7, 0x00F7), (0x2190, 0x21FF), (0x2200, 0x22FF),
                   (0x2308, 0x230B), (0x27F0, 0x27FF), (0x2900, 0x297F), (0x2A00, 0x2AFF))
# TeX's unary signs: a + or - right after an operator, a relation, an opening bracket or a comma,
# or first in its row, is a sign, set with no space (TeX's rule for a Bin atom after Op, Bin,
# Rel, Open or Punct). Browsers infer the form from the position in the row only, so "= -19" and
# "(-1)" came out as binary minus with a space on each side.
SIGNS = {"+", "-", "\u2212", "\u00b1", "\u2213"}
CLOSING = {")", "]", "}", "|", "\u2016", "\u2309", "\u230b", "\u27e9"}
ROWS = {"mrow", "mtd", "mstyle", "msqrt", "menclose", "mpadded", "mphantom"}
# What latex2mathml puts over a letter for \hat, \tilde, \bar, \dot, \ddot, \check, \breve, \acute,
# \grave, \vec, \overline (and the combining forms): marked as accents, so the browser sets them
# close to the letter, as TeX does, not one script-gap above it.
ACCENTS = set("^~\u00af\u02c6\u02dc\u02d9\u00a8\u02c7\u02d8\u00b4`\u2192\u2015\u203e\u0302\u0303")
# \hat and \tilde: latex2mathml writes ASCII ^ and ~, which Chromium stretches over the whole base
# (^) or draws as a doubled wave (~, in DejaVu Math TeX Gyre); TeX's accents, as MathJax writes
# them, are U+02C6 and U+02DC. (\widehat and \widetilde stay stretchy.)
ACCENT_CHARACTER = {"^": "\u02c6", "~": "\u02dc"}
# Upper-case Greek is upright in TeX (\Sigma); a one-letter <mi> is italic unless told otherwise.
UPRIGHT = range(0x0391, 0x03AA)
# Named operators (\max, \lim, \det, \operatorname{diag}) come as <mo>name</mo>, which browsers
# space like an unknown operator, a thick space each side: "diag (Sigma)". TeX puts a thin space
# between the name and a letter, none before an opening bracket.
NAMED_OPERATOR = re.compile(r"[A-Za-z]{2,}")
OPENING = {"(", "[", "{", "|", "\u2016", "\u2308", "\u230a", "\u27e8"}
SCRIPTED = {"msub", "msup", "msubsup", "munder", "mover", "munderover"}
# Named operators whose subscript TeX sets below them in display maths (\max_i, \lim_{x \to 0}):
# latex2mathml writes a plain subscript; as <munder> with movablelimits the browser sets it below in
# display maths and beside in text, as TeX does.
LIMITS = {"lim", "max", "min", "sup", "inf", "det", "gcd", "Pr", "argmax", "argmin", "liminf", "limsup"}
UNDER = {"msub": "munder", "msubsup": "munderover"}
THIN = "0.1667em"
ENTITY = re.compile(r"&#x([0-9A-Fa-f]+);")


class MathsError(ValueError):
    """A formula that does not convert, with the reason in one sentence."""


# ------------------------------------------------------------------------------------------ TeX -> MathML

def fix_symbol_table() -> None:
    """Let each command of latex2mathml's symbol table mean what its own line says.

    latex2mathml.symbols_parser reads unimathsymbols.txt and also takes commands named in other
    lines' comments ("# \\sim"), first come first served, so a comment can shadow the real entry:
    `\\sim` became U+007E (~) instead of U+223C, `\\cdot` U+00B7 instead of U+22C5 (MathJax's)."""
    from latex2mathml import symbols_parser
    own: dict[str, str] = {}
    with open(symbols_parser.SYMBOLS_FILE, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                cols = line.strip().split("^")
                for command in (cols[2], cols[3]):
                    if command:
                        own.setdefault(command, cols[0])
    symbols_parser.SYMBOLS.update({c: u for c, u in own.items() if symbols_parser.SYMBOLS.get(c) != u})


# TeX that reaches the page as markup rather than maths (issue 23): \style{...} drew a full-page
# overlay that loaded a picture from another address, \href{javascript:...} made a live link. Refused
# in the source, and any such attribute refused in the converter's output (UNSAFE_ATTRIBUTES).
UNSAFE_COMMANDS = re.compile(r"\\(style|href|url|class|cssId|htmlClass|htmlId|htmlStyle|htmlData|html|"
                             r"unicode|require|includegraphics|toggle|mathtip|texttip|bbox)(?![a-zA-Z])")
UNSAFE_ATTRIBUTES = ("style", "href", "class", "id", "src", "xlink:href", "actiontype")


def check_tex(tex: str) -> None:
    """The faults latex2mathml passes over silently: unbalanced braces, unknown environments; and
    commands that would carry markup (UNSAFE_COMMANDS)."""
    unsafe = UNSAFE_COMMANDS.search(tex)
    if unsafe:
        raise MathsError(f"the command \\{unsafe.group(1)} is not allowed in the site's maths (it would reach "
                         "the page as a link, style or markup)")
    depth = 0
    for m in re.finditer(r"\\.|[{}]", tex, re.S):
        depth += {"{": 1, "}": -1}.get(m.group(0), 0)
        if depth < 0:
            raise MathsError("a '}' closes no '{'")
    if depth:
        raise MathsError(f"{depth} '{{' not closed")
    for kind, name in BEGIN_END.findall(tex):
        if name not in ENVIRONMENTS:
            raise MathsError(f"environment {name!r} is not supported (supported: {', '.join(sorted(ENVIRONMENTS))})")


def _decode(text: str | None) -> str | None:
    """latex2mathml writes characters as entity references in the element text: make them characters."""
    return None if text is None else ENTITY.sub(lambda m: chr(int(m.group(1), 16)), text)


def _is_operator(text: str | None) -> bool:
    return bool(text) and len(text) == 1 and any(lo <= ord(text) <= hi for lo, hi in OPERATOR_RANGES)


def _tidy(el: Element) -> None:
    """Decode the text; then the fixes the module docstring lists: identifiers that are operators,
    accents, the slash, signs."""
    for node in el.iter():
        node.text, node.tail = _decode(node.text), _decode(node.tail)
    for node in el.iter():
        if node.tag == "mi" and _is_operator(node.text):
            node.tag = "mo"
        if node.tag == "mi" and node.text and len(node.text) == 1 and ord(node.text) in UPRIGHT:
            node.set("mathvariant", "normal")
        if node.tag == "mover" and len(node) == 2 and node[1].tag == "mo" and node[1].text in ACCENT_CHARACTER:
            mo = node[1]
            if (mo.text == "^" and node.get("accent") == "true") or (mo.text == "~" and mo.get("stretchy") == "false"):
                mo.text = ACCENT_CHARACTER[mo.text]
                mo.set("stretchy", "false")
        if node.tag in UNDER and len(node) and node[0].tag == "mo" and (node[0].text or "").replace("\u2009", "") in LIMITS:
            node.tag = UNDER[node.tag]
            node[0].set("movablelimits", "true")
        if node.tag in ("mover", "munder") and len(node) == 2 and node[1].tag == "mo" and (node[1].text or "") in ACCENTS:
            node.set("accentunder" if node.tag == "munder" else "accent", "true")
        if node.tag == "mo" and node.text == "/":  # TeX's / is an ordinary symbol: no space around it
            node.set("lspace", "0")
            node.set("rspace", "0")
    for row in el.iter():
        if row.tag in ROWS:
            nodes = list(row)
            for i, node in enumerate(nodes):
                before = nodes[i - 1] if i else None
                after = nodes[i + 1] if i + 1 < len(nodes) else None
                if (node.tag == "mo" and node.text in SIGNS and "form" not in node.attrib
                        and (before is None or before.tag == "mo" and before.text not in CLOSING)):
                    node.set("form", "prefix")
                core = node[0] if node.tag in SCRIPTED and len(node) else node  # \max_i: the max
                if core.tag == "mo" and NAMED_OPERATOR.fullmatch(core.text or ""):
                    opens = after is not None and (after if after.tag == "mo" or not len(after) else after[0]).text in OPENING
                    core.set("lspace", "0" if before is None or before.tag == "mo" else THIN)
                    core.set("rspace", "0" if after is None or opens else THIN)


def _check(el: Element) -> None:
    """The converter's silent failures, found in its output."""
    for node in el.iter():
        bad = [a for a in node.attrib if a.lower() in UNSAFE_ATTRIBUTES or a.lower().startswith("on")]
        if bad or node.tag in ("maction", "semantics"):
            raise MathsError(f"<{node.tag}> carries {', '.join(bad) or 'markup'}, which the site's maths may not")
        text = (node.text or "").strip()
        if "\\" in text:
            raise MathsError(f"unknown command {text!r}")
        if node.tag in ("mi", "mo") and text == "&":
            raise MathsError("'&' outside a matrix or an aligned environment")
        if node.tag == "merror":
            raise MathsError("the converter reported an error")
        if node.tag == "mspace" and node.get("linebreak"):
            raise MathsError(r"'\\' outside a matrix or an aligned environment (browsers do not break maths lines)")
        if node.tag in ARITY and len(node) != ARITY[node.tag]:
            raise MathsError(f"<{node.tag}> has {len(node)} parts, not {ARITY[node.tag]} (a missing argument?)")


@functools.cache
def converter():
    """latex2mathml's convert_to_element, with its symbol table fixed (once per process)."""
    try:
        from latex2mathml.converter import convert_to_element
    except ImportError as e:
        raise PluginError("latex2mathml is not installed; run "
                          "`python -m pip install -r requirements.txt`.") from e
    fix_symbol_table()
    return convert_to_element


def _convert(tex: str, display: bool) -> Element:
    if not tex:
        raise MathsError("empty formula")
    check_tex(tex)
    source = BEGIN_END.sub(lambda m: f"\\{m.group(1)}{{{ENV_AS.get(m.group(2), m.group(2))}}}", tex)
    try:
        converted = converter()(source, display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises its own classes, with no message for most
        raise MathsError(f"{type(e).__name__} {e}".strip()) from None
    _tidy(converted)
    _check(converted)
    return converted


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula (TeX, entities already decoded) as a <math> element with the TeX annotated.
    Raises MathsError, naming the formula, if it does not convert cleanly."""
    tex = tex.strip()
    try:
        converted = _convert(tex, display)
    except MathsError as e:
        raise MathsError(f"{e}, in {tex!r}") from None
    # alttext: what a screen reader without MathML support reads (WCAG 1.1.1), the formula's TeX
    math = Element("math", {**({"display": "block"} if display else {}), "alttext": tex})
    semantics = SubElement(math, "semantics")
    semantics.extend(list(converted))  # latex2mathml's one <mrow>
    SubElement(semantics, "annotation", {"encoding": TEX}).text = tex
    return tostring(math, encoding="unicode")


# ------------------------------------------------------------------------------------------ pages

def convert_arithmatex(page_html: str) -> tuple[str, list[str]]:
    """A Markdown page's arithmatex output with MathML inside each wrapper; and the TeX converted."""
    found = []

    def one(m):
        tag, body = m.group(1), html.unescape(m.group(2)).strip()
        delims = ("\\[", "\\]") if tag == "div" else ("\\(", "\\)")
        if body.startswith(delims[0]) and body.endswith(delims[1]):
            body = body[2:-2]
        elif tag == "span" or not body.startswith("\\begin{"):
            raise MathsError(f"arithmatex output without its delimiters: {body!r}")
        found.append(body.strip())
        return f'<{tag} class="arithmatex">{tex_to_mathml(body, display=tag == "div")}</{tag}>'

    return ARITHMATEX.sub(one, page_html), found


def markdown_regions(page_html: str) -> list[tuple[int, int]]:
    """(start, end) of the content of each element nbconvert rendered from Markdown."""
    regions, pos = [], 0
    while (m := RENDERED_MARKDOWN.search(page_html, pos)) is not None:
        depth, end = 1, m.end()
        for tag in DIV.finditer(page_html, m.end()):
            depth += -1 if tag.group(0).startswith("</") else 1
            if depth == 0:
                end = tag.start()
                break
        else:
            raise MathsError("a rendered Markdown <div> is not closed")
        regions.append((m.end(), end))
        pos = end
    return regions


def convert_dollars(fragment: str, found: list[str]) -> str:
    """nbconvert's maths in one rendered Markdown fragment as MathML, outside code and tags."""
    def one(m):
        tex = html.unescape(m.group("block") or m.group("inline") or m.group("env"))
        found.append(tex.strip())
        return tex_to_mathml(tex, display=m.group("inline") is None)

    out, pos = [], 0
    for tag in NOT_TEXT.finditer(fragment):
        out += [DOLLARS.sub(one, fragment[pos:tag.start()]), tag.group(0)]
        pos = tag.end()
    out.append(DOLLARS.sub(one, fragment[pos:]))
    return "".join(out)


def convert_notebook(page_html: str) -> tuple[str, list[str]]:
    """A notebook page without the template's MathJax block, its Markdown maths as MathML."""
    page_html = MATHJAX_BLOCK.sub("", page_html)
    found: list[str] = []
    out, pos = [], 0
    for start, end in markdown_regions(page_html):
        out += [page_html[pos:start], convert_dollars(page_html[start:end], found)]
        pos = end
    out.append(page_html[pos:])
    return "".join(out), found


def is_notebook(page) -> bool:
    return page.file.src_uri.endswith((".py", ".ipynb"))


# ------------------------------------------------------------------------------------------ cell time limit

def set_cell_timeout(seconds: int) -> None:
    """Make mkdocs-jupyter's nbconvert app give each cell `seconds` (nbclient's `timeout`)."""
    try:
        from mkdocs_jupyter import nbconvert2
    except ImportError as e:
        raise PluginError("mkdocs-jupyter is not installed; run "
                          "`python -m pip install -r requirements.txt`.") from e
    make_app = getattr(nbconvert2, "get_nbconvert_app", None)
    if make_app is None:
        raise PluginError("mkdocs-jupyter has no nbconvert2.get_nbconvert_app any more, so "
                          "hooks/maths.py cannot set the cell time limit; update the hook.")
    make_app = getattr(make_app, "__wrapped__", make_app)  # `mkdocs serve` rebuilds: wrap once

    def get_nbconvert_app(*args, **kwargs):
        app = make_app(*args, **kwargs)
        app.config.NotebookClient.timeout = seconds  # ExecutePreprocessor is a NotebookClient
        return app

    get_nbconvert_app.__wrapped__ = make_app
    nbconvert2.get_nbconvert_app = get_nbconvert_app


# ------------------------------------------------------------------------------------------ mkdocs events

def on_config(config):
    converter()  # fails now if latex2mathml is missing, not at the first formula
    set_cell_timeout(CELL_TIMEOUT_S)
    return config


def on_page_content(page_html, page, config, files):
    try:
        page_html, _ = (convert_notebook if is_notebook(page) else convert_arithmatex)(page_html)
    except MathsError as e:
        raise PluginError(f"{page.file.src_uri}: cannot typeset a formula: {e}") from None
    return page_html


def on_post_page(output, page, config):
    """No page loads a maths script: the maths is already MathML."""
    left = MATHJAX_LEFT.search(output)
    if left:
        raise PluginError(f"{page.file.src_uri} still loads MathJax ({left.group(0)!r}); the maths is "
                          "MathML written by hooks/maths.py. Remove the script, or if mkdocs-jupyter's "
                          "template changed, update MATHJAX_BLOCK in hooks/maths.py.")
    return output
