"""hooks/maths.py: the site's maths as MathML, written at build time.

Three levels. Each TeX construct the site uses converts to the MathML structure that lays it out
(a matrix is a table between stretchy brackets, a fraction has two parts, ...), checked on the
parsed output; formulas the converter would pass over silently are errors. The page converters
touch maths only where the renderers leave it (arithmatex's wrappers; nbconvert's rendered
Markdown, never code or scripts) and remove the notebook template's MathJax block. A build with
one broken formula fails and names the page and the formula (Markdown page and notebook page,
each a tiny project in a temporary folder); and the real site, built from the committed
artifacts, holds no formula left as TeX and only MathML that its annotation converts to.
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("maths_hook", ROOT / "hooks" / "maths.py")
M = importlib.util.module_from_spec(spec)
spec.loader.exec_module(M)

BUILD_TIMEOUT_S = 240
TEX = "application/x-tex"
# Pages that must hold maths (a check that it did not vanish), and the answers pages.
MATHS_PAGES = ("answers/csce421/", "answers/coms573/", "answers/cs182/", "cs182/layers/")
# What a reader would see if a formula were left as TeX (outside code).
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\frac|\\begin\{|\\end\{")
MINUS = "\u2212"


def parse(tex: str, display: bool = False) -> ET.Element:
    return ET.fromstring(M.tex_to_mathml(tex, display))


def first(el: ET.Element, tag: str) -> ET.Element:
    found = el.find(f".//{tag}")
    assert found is not None, f"no <{tag}> in {ET.tostring(el, encoding='unicode')}"
    return found


def texts(el: ET.Element, tag: str) -> list[str]:
    return [e.text or "" for e in el.iter(tag)]


# ------------------------------------------------------------------------------------------ one formula

def test_math_element_keeps_the_tex_as_annotation():
    tex = r"\frac{1}{m}\sum_i z_i"
    math = parse(tex, display=True)
    assert math.tag == "math" and math.get("display") == "block"
    semantics = list(math)
    assert [e.tag for e in semantics] == ["semantics"]
    mrow, annotation = list(semantics[0])
    assert mrow.tag == "mrow" and annotation.get("encoding") == TEX and annotation.text == tex
    assert parse("x").get("display") is None  # inline is MathML's default


def test_bmatrix_is_a_table_between_stretchy_brackets():
    math = parse(r"\begin{bmatrix} w_{1}^{11} & 0 \\ -1 & 12 \end{bmatrix}", display=True)
    table = first(math, "mtable")
    assert [[len(c) and "".join(c.itertext()) for c in row] for row in table] == [["w111", "0"], [MINUS + "1", "12"]]
    row = first(math, "mrow")
    fence = [c for c in row.iter("mrow") if table in list(c)][0]
    assert (fence[0].tag, fence[0].text, fence[-1].tag, fence[-1].text) == ("mo", "[", "mo", "]")
    assert fence[0].get("stretchy") != "false" and fence[-1].get("stretchy") != "false"


@pytest.mark.parametrize("tex, tag, parts", [
    (r"\frac{1}{m}", "mfrac", ["1", "m"]),
    (r"\tfrac{1}{16}", "mfrac", ["1", "16"]),
    (r"\sqrt{\sigma^2 + \epsilon}", "msqrt", None),
    (r"w_{1}^{21}", "msubsup", ["w", "1", "21"]),
    (r"\sigma_B^2", "msubsup", ["\u03c3", "B", "2"]),
    (r"\left\lfloor{\frac{H - K}{S}}\right\rfloor", "mfrac", ["H\u2212K", "S"]),
])
def test_fractions_roots_and_scripts_have_their_parts(tex, tag, parts):
    el = first(parse(tex), tag)
    if parts is not None:
        assert ["".join(c.itertext()) for c in el] == parts


def test_sums_take_limits_below_and_above_in_display_and_beside_inline():
    assert [c.tag for c in first(parse(r"\sum_{i=1}^{N} x_i", display=True), "munderover")][:1] == ["mo"]
    assert first(parse(r"\sum_{k=1}^{n} x_k"), "msubsup")[0].text == "\u2211"


@pytest.mark.parametrize("tex, accent", [(r"\hat{x}", "\u02c6"), (r"\hat z", "\u02c6"), (r"\tilde z", "\u02dc"),
                                         (r"\tilde{Y}", "\u02dc"), (r"\bar x", "\u00af")])
def test_accents_sit_over_their_letter(tex, accent):
    over = first(parse(tex), "mover")
    assert over[1].text == accent and over.get("accent") == "true"


def test_upper_case_greek_is_upright_and_lower_case_italic():
    mi = {e.text: e.get("mathvariant") for e in parse(r"\Sigma \sigma \Delta x").iter("mi")}
    assert mi == {"\u03a3": "normal", "\u03c3": None, "\u0394": "normal", "x": None}


@pytest.mark.parametrize("tex, lspace, rspace", [
    (r"D = \operatorname{diag}(\Sigma)", "0", "0"),   # after a relation, before a bracket: no space
    (r"\max\left(\sigma, 1\right)", "0", "0"),
    (r"2 \max_i x_i", "0.1667em", "0.1667em"),         # between letters: a thin space each side
])
def test_named_operators_are_spaced_as_in_tex(tex, lspace, rspace):
    name = [e for e in parse(tex).iter("mo") if e.text in ("diag", "max")][0]
    assert (name.get("lspace"), name.get("rspace")) == (lspace, rspace)


def test_limits_of_named_operators_go_below_in_display():
    under = first(parse(r"\lim_{x \to 0} f(x) + \max_i x_i", display=True), "munder")
    assert under[0].text == "lim" and under[0].get("movablelimits") == "true"


def test_text_spaces_and_stretchy_parentheses():
    math = parse(r"\text{kernel 1:}\quad \left(\frac{a}{b}\right)")
    assert texts(math, "mtext") == ["kernel\u00a01:"] and first(math, "mspace").get("width") == "1em"
    fences = [e for e in math.iter("mo") if e.text in "()"]
    assert [e.get("stretchy") for e in fences] == ["true", "true"]


def test_aligned_is_a_table_of_right_and_left_columns():
    math = parse(r"\begin{aligned} \mu &= 1, & \sigma &= 2 \\ x &= 3, & y &= 4 \end{aligned}", display=True)
    table = first(math, "mtable")
    assert len(table) == 2
    assert [c.get("columnalign") for c in table[0]] == ["right", "left", "right", "left"]
    assert "&" not in "".join(first(math, "mrow").itertext())  # no stray & left as a symbol


def test_cases_is_a_brace_and_a_left_aligned_table():
    math = parse(r"f = \begin{cases} 1 & x \gt 0 \\ 0 & \text{else} \end{cases}")
    assert first(math, "mtable").find("mtr/mtd").get("columnalign") == "left"
    assert "{" in texts(math, "mo")


@pytest.mark.parametrize("tex, operator", [
    (r"\partial L", "\u2202"), (r"a \times b", "\u00d7"), (r"a \cdot b", "\u22c5"), (r"x \implies y", "\u27f9"),
    (r"\hat z \sim N(0, 1)", "\u223c"), (r"a \lt b", "<"), (r"a \gt b", ">"), (r"\lfloor x \rfloor", "\u230a"),
    (r"a \pm b", "\u00b1"), (r"0 \le n", "\u2264"),
])
def test_operators_are_operators_with_the_right_character(tex, operator):
    assert operator in texts(parse(tex), "mo")


def test_letters_from_other_alphabets():
    assert texts(parse(r"\mathbb{R}^n"), "mi")[0] == "\u211d"
    assert texts(parse(r"\mathbf{x}"), "mi") == ["\U0001d431"]


@pytest.mark.parametrize("tex, prefix", [
    ("a = -19", True), ("(-1)", True), ("[-1, 1]", True), ("[1, -1]", True), ("-K + W", True),
    ("a - b", False), ("(a) - b", False), ("x^2 - 1", False),
])
def test_a_sign_after_an_operator_has_no_space(tex, prefix):
    minus = [e for e in parse(tex).iter("mo") if e.text == MINUS]
    assert minus and (minus[0].get("form") == "prefix") == prefix


def test_slash_is_set_without_spaces():
    slash = [e for e in parse("(a + b)/2").iter("mo") if e.text == "/"][0]
    assert (slash.get("lspace"), slash.get("rspace")) == ("0", "0")


@pytest.mark.parametrize("tex, reason", [
    (r"\frac{1}", "parts"),
    (r"x^", "MissingSuperScriptOrSubscript"),
    (r"\left( x", "ExtraLeftOrMissingRight"),
    (r"{x", "not closed"),
    (r"x}", "closes no"),
    (r"\badmacro{x}", "unknown command"),
    (r"\text{\bad}", "unknown command"),
    (r"\begin{foo} x \end{foo}", "not supported"),
    (r"\begin{gathered} a \\ b \end{gathered}", "not supported"),
    (r"a & b", "'&' outside"),
    (r"a \\ b", "line"),
    (r"\sqrt", "NoAvailableTokens"),
    ("  ", "empty"),
])
def test_broken_formulas_are_errors_naming_the_formula(tex, reason):
    with pytest.raises(M.MathsError, match=re.escape(reason)) as e:
        M.tex_to_mathml(tex, display=False)
    assert repr(tex.strip()) in str(e.value)


# ------------------------------------------------------------------------------------------ pages

def test_arithmatex_wrappers_keep_their_element_and_get_mathml():
    page = ('<p>a <span class="arithmatex">\\(x &lt; 1\\)</span></p>\n'
            '<div class="arithmatex">\\[\\begin{bmatrix} 1 &amp; 2 \\end{bmatrix}\\]</div>'
            '<pre><code>\\(kept\\)</code></pre>')
    out, found = M.convert_arithmatex(page)
    assert found == ["x < 1", r"\begin{bmatrix} 1 & 2 \end{bmatrix}"]
    assert '<span class="arithmatex"><math alttext="x &lt; 1"><semantics>' in out  # alttext: read aloud
    assert '<div class="arithmatex"><math display="block" alttext="\\begin{bmatrix} 1 &amp; 2 \\end{bmatrix}"><semantics>' in out
    assert "<annotation encoding=\"application/x-tex\">x &lt; 1</annotation>" in out
    assert out.endswith("<pre><code>\\(kept\\)</code></pre>")


NOTEBOOK = """\
<!-- Load mathjax -->
    <script src="../../assets/x/MathJax.js"> </script>
    <script type="text/x-mathjax-config">init_mathjax = function() {}</script>
    <!-- End of mathjax configuration -->
<script>const s = `${SVG_XML_HEADER}$`;</script>
<div class="jp-Cell"><div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput" data-mime-type="text/markdown">
<p>Inline $\\mu = \\frac{1}{m}$ and $a \\lt b$.</p>
<div class="inner"><p>$$ \\begin{bmatrix} 1 &amp; 2 \\\\ 3 &amp; 4 \\end{bmatrix} $$</p></div>
<p><code>$not maths$</code></p><pre><code>$$ also not $$</code></pre>
\\begin{cases} 1 &amp; x \\end{cases}
</div></div>
<div class="jp-OutputArea-output"><pre>$5 and $6</pre><p>price $5 and $6</p></div>
"""


def test_notebook_maths_is_converted_only_in_rendered_markdown():
    out, found = M.convert_notebook(NOTEBOOK)
    assert found == [r"\mu = \frac{1}{m}", r"a \lt b", r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}",
                     r"\begin{cases} 1 & x \end{cases}"]
    assert "mathjax" not in out.lower() and "<script>const s = `${SVG_XML_HEADER}$`;</script>" in out
    assert out.count("<math alttext=") == 2 and out.count('<math display="block" alttext=') == 2
    assert "<p><code>$not maths$</code></p><pre><code>$$ also not $$</code></pre>" in out
    assert '<pre>$5 and $6</pre><p>price $5 and $6</p>' in out  # not rendered Markdown: left alone
    matrix = ET.fromstring(re.search(r'<math display="block" .*?</math>', out, re.S).group(0))
    assert [len(row) for row in first(matrix, "mtable")] == [2, 2]  # &amp; was TeX's &


def test_render_py_output_through_nbconvert_converts():
    """A matrix answer and an escaped formula as the answer pages write them (pipeline/answers/
    render.py), rendered by nbconvert's Markdown renderer as the notebook pages are, then converted."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    from pipeline.answers.render import escape, value_md
    md = value_md({"value": [[1, -2], ["w1^21", 0]]}) + "\n\n" + escape("if $a < b$ and $c > d$ then <b>")
    region = f'<div class="jp-RenderedMarkdown">{markdown2html_mistune(md)}</div>'
    out, found = M.convert_notebook(region)
    assert found[0] == r"\begin{bmatrix} 1 & -2 \\ w_{1}^{21} & 0 \end{bmatrix}"
    assert found[1:] == [r"a \lt  b", r"c \gt  d"]
    assert "&lt;b&gt;" in out  # the escaped text stays text
    tables = [ET.fromstring(m).find(".//mtable") for m in re.findall(r"<math.*?</math>", out, re.S)]
    assert len(tables[0]) == 2 and tables[1] is None


def test_a_page_that_still_loads_mathjax_fails():
    class Page:
        file = type("F", (), {"src_uri": "answers/x.py"})()
    assert M.on_post_page("<p>x</p>", Page(), None) == "<p>x</p>"
    for script in ('<script src="../../assets/mathjax/MathJax.js?config=x"></script>',
                   '<script type="text/x-mathjax-config">MathJax.Hub.Config({})</script>'):
        with pytest.raises(M.PluginError, match="still loads MathJax"):
            M.on_post_page(f"<p>x</p>{script}", Page(), None)


# ------------------------------------------------------------------------------------------ builds

def build(project: Path, dest: Path) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "LENET_ARTIFACTS"}, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(dest)], cwd=project,
                          env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)


def tiny_project(tmp_path: Path, page: str, text: str) -> Path:
    """A site of one page, with this hook, arithmatex as the site configures it and mkdocs-jupyter
    (not executing: nbconvert's Markdown rendering is what matters here)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / page).write_text(text + "\n")
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: maths
        hooks: [{ROOT / 'hooks' / 'maths.py'}]
        plugins: [{{mkdocs-jupyter: {{include: ["*.py"], execute: false}}}}]
        markdown_extensions: [{{pymdownx.arithmatex: {{generic: true}}}}]
        """))
    return tmp_path


NOTEBOOK_PAGE = """\
# %% [markdown]
# Good: $\\frac{{1}}{{2}}$. {formula}
"""


@pytest.mark.slow
@pytest.mark.parametrize("page, text, shown", [
    ("index.md", "One half is \\(\\frac{1}{2}\\), broken is \\(\\frac{1}\\).", r"\\frac{1}"),
    ("page.py", NOTEBOOK_PAGE.format(formula="Bad: $\\badcommand x$."), r"\\badcommand x"),
])
def test_a_broken_formula_fails_the_build_naming_page_and_formula(tmp_path, page, text, shown):
    result = build(tiny_project(tmp_path, page, text), tmp_path / "site")
    assert result.returncode != 0
    assert re.search(rf"{re.escape(page)}: cannot typeset a formula: .*{shown}", result.stdout + result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("page, text", [
    ("index.md", "One half is \\(\\frac{1}{2}\\)."),
    ("page.py", NOTEBOOK_PAGE.format(formula="And $$ \\begin{bmatrix} 1 & 2 \\end{bmatrix} $$")),
])
def test_the_same_site_without_the_broken_formula_builds(tmp_path, page, text):
    result = build(tiny_project(tmp_path, page, text), tmp_path / "site")
    assert result.returncode == 0, result.stderr[-2000:]
    out = (tmp_path / "site" / (page.removesuffix(".md").removesuffix(".py").replace("index", "")) / "index.html").read_text()
    assert "<math" in out and "mathjax" not in out.lower()


@pytest.fixture(scope="module")
def real_site(tmp_path_factory) -> Path:
    """The site built from the repository and the committed artifacts."""
    dest = tmp_path_factory.mktemp("site")
    result = build(ROOT, dest)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dest


def article_of(page_html: str) -> str:
    return page_html[page_html.find("<article"):page_html.rfind("</article>")]


@pytest.mark.slow
def test_every_formula_on_the_built_site_is_mathml_from_its_tex(real_site):
    """Each <math> on the real site is exactly what its annotated TeX converts to (so the hook
    converted it and it passed the checks); no page shows TeX outside code; no page loads a maths
    script or asset; the pages that hold maths still do."""
    counts = {}
    for path in sorted(real_site.rglob("*.html")):
        page = path.read_text(encoding="utf-8")
        rel = path.relative_to(real_site).parent.as_posix() + "/"
        maths = re.findall(r"<math\b.*?</math>", page, re.S)
        for m in maths:
            tex = html.unescape(re.search(r'<annotation encoding="application/x-tex">(.*?)</annotation>', m, re.S).group(1))
            assert m == M.tex_to_mathml(tex, display='display="block"' in m[:30]), (rel, tex)
        counts[rel] = len(maths)
        text = re.sub(r"<(pre|code|script|style|math)\b.*?</\1>", " ", article_of(page), flags=re.S | re.I)
        assert not RAW_TEX.search(html.unescape(re.sub(r"<[^>]+>", " ", text))), rel
        assert not re.search(r"<script[^>]*(mathjax|katex)", page, re.I), rel
    assert all(counts.get(p, 0) >= 5 for p in MATHS_PAGES), counts
    assert 0 in counts.values()  # and pages without maths (checked above: no maths script either)
    assert not (real_site / "assets" / "mathjax").exists()


@pytest.mark.parametrize("tex", [
    r"x + \style{position:fixed;top:0;background:url(http://evil.example/a.png)}{y}",
    r"\href{javascript:alert(1)}{x}", r"\class{md-header}{x}", r"\cssId{x}{y}", r"\unicode{x41}",
    r"\mathtip{x}{y}", r"\bbox[background:url(http://evil.example)]{x}",
])
def test_tex_that_would_be_markup_is_refused(tex):
    """Issue 23: TeX inside $...$ passed through: \\style drew a full-page overlay loading a picture
    from another address, \\href{javascript:...} made a live MathML link."""
    with pytest.raises(M.MathsError, match="is not allowed in the site's maths"):
        M.tex_to_mathml(tex, display=False)


def test_markup_attributes_in_the_converters_output_are_refused(monkeypatch):
    """The second layer: whatever command made it, an href, style or on* attribute never reaches a page."""
    for attrs in ({"href": "javascript:alert(1)"}, {"style": "position:fixed"}, {"onclick": "x()"}):
        fake = ET.Element("mrow")
        ET.SubElement(fake, "mi", attrs).text = "x"
        monkeypatch.setattr(M, "converter", lambda: (lambda source, display: fake))
        with pytest.raises(M.MathsError, match="which the site's maths may not"):
            M.tex_to_mathml("x", display=False)
