"""The report's PDF (issue 13, item 3; pipeline/pdf.py, `invoke pdf`, hooks/pdf_link.py).

Without a browser: the page order from mkdocs.yml's nav, the numbering, the outline plan, the
cover, the merge (page numbers stamped, bookmarks, links into the PDF mended) on PDFs made by
pypdf, and the hook's relative link. With Chromium (marked `browser`, skipped when Chromium or
Playwright is missing unless REQUIRE_BROWSER=1, as in tests/test_browser.py): the site is built
from the committed artifacts into a temporary folder and printed, and the PDF's extracted text
must hold every question label of the three homeworks (pipeline/answers/questions.py) in its
homework's pages, no raw TeX, the pages in nav order, every numbered figure and the raster images.
"""
from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from pipeline import pdf as P
from pipeline.answers import questions as Q
from tests.test_browser import nav_sources  # the nav flattening the browser tests read the site order with

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 240
RAW_TEX = ("\\frac", "$$", "\\begin", "\\end{", "\\(", "\\[")
NAV = [
    {"Home": "index.md"},
    {"HW A": [{"Questions": "answers/a.py"}, {"4.1 Data": "lenet/data.md"}]},
    {"Index": "questions.md"},
    {"Appendix": [{"Methods": "reproducibility.md"}, {"Sub": "sub/index.md"}]},
]


# --- the page order and numbering ----------------------------------------------------------------

@pytest.mark.parametrize("src, url", [("index.md", ""), ("lenet/data.md", "lenet/data/"),
                                      ("answers/cs182.py", "answers/cs182/"), ("sub/index.md", "sub/")])
def test_url_of(src, url):
    assert P.url_of(src) == url


def test_entries_number_the_nav_in_order():
    got = [(e.number, e.title, e.depth, e.url) for e in P.entries(NAV)]
    assert got == [("", "Home", 0, ""), ("1", "HW A", 0, None), ("1.1", "Questions", 1, "answers/a/"),
                   ("1.2", "4.1 Data", 1, "lenet/data/"), ("2", "Index", 0, "questions/"),
                   ("3", "Appendix", 0, None), ("3.1", "Methods", 1, "reproducibility/"), ("3.2", "Sub", 1, "sub/")]
    headings = [e.heading for e in P.entries(NAV)]
    assert headings[3] == "1.2 · 4.1 Data"  # our number and the question's, kept apart
    assert headings[2] == "1.1 Questions"


def test_the_real_nav_prints_every_page_once_in_order():
    config = P.read_config(ROOT / "mkdocs.yml")
    printed = [e.url for e in P.pages(P.entries(config["nav"]))]
    assert printed == [P.url_of(s) for s in nav_sources(config["nav"])]
    assert len(set(printed)) == len(printed)
    for _, (name, _, _, page) in Q.HOMEWORKS.items():  # every homework and its answers page is in it
        assert P.url_of(page) in printed


def test_start_pages_and_outline_plan():
    items = P.entries(NAV)
    counts = [2, 5, 3, 1, 4, 6]  # Home, Questions, 4.1 Data, Index, Methods, Sub
    plan = P.outline_plan(items, counts, first=1)  # one cover page first
    assert plan == [(0, "Home", 1), (0, "1 HW A", 3), (1, "1.1 Questions", 3), (1, "1.2 · 4.1 Data", 8),
                    (0, "2 Index", 11), (0, "3 Appendix", 12), (1, "3.1 Methods", 12), (1, "3.2 Sub", 16)]
    with pytest.raises(ValueError):
        P.outline_plan(items, counts[:-1], first=1)


def test_cover_lists_the_homeworks_commit_and_contents():
    items = P.entries(NAV)
    start = P.start_pages(items, [2, 5, 3, 1, 4, 6], first=1)
    page = P.cover_html("A <report>", ["HW A", "HW B"], "abc123", items, start, "https://x.example/r/")
    assert "A &lt;report&gt;" in page and "<li>HW A</li>" in page and "abc123" in page
    assert re.search(r"1\.2 · 4\.1 Data</td><td class=\"p\">9<", page)  # 1-based, as the footer counts
    assert "https://x.example/r/" in page
    assert '<td class="p"></td>' in P.cover_html("t", [], "c", items, None)  # not yet counted: blank


# --- the merge, on PDFs made by pypdf ----------------------------------------------------------

def blank_pdf(n: int, links: list[str] = ()) -> bytes:
    from pypdf import PdfWriter
    from pypdf.annotations import Link
    w = PdfWriter()
    for _ in range(n):
        w.add_blank_page(595, 842)
    for i, url in enumerate(links):
        w.add_annotation(0, Link(rect=(10, 10 + 30 * i, 100, 30 + 30 * i), url=url))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_merge_numbers_outlines_and_mends_links():
    from pypdf import PdfReader
    base = "http://127.0.0.1:5555/"
    items = P.entries(NAV)
    counts = [2, 5, 3, 1, 4, 6]
    parts = [blank_pdf(n) for n in counts]
    parts[0] = blank_pdf(2, [base + "lenet/data/#anchor", base + "assets/x.csv", "https://pytorch.org/"])
    pdf = P.merge(items, parts, blank_pdf(1), blank_pdf(1 + sum(counts)), base, "https://x.example/r/")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1 + sum(counts)

    def flat(outline, depth=0):
        for o in outline:
            yield from flat(o, depth + 1) if isinstance(o, list) else [(depth, o.title, reader.get_destination_page_number(o))]
    assert list(flat(reader.outline)) == P.outline_plan(items, counts, first=1)

    links = [a.get_object() for a in reader.pages[1]["/Annots"]]
    goto = [a["/A"] for a in links if a["/A"]["/S"] == "/GoTo"]
    assert len(goto) == 1 and reader.get_page_number(goto[0]["/D"][0].get_object()) == 8  # "4.1 Data" starts there
    uris = sorted(str(a["/A"]["/URI"]) for a in links if a["/A"]["/S"] == "/URI")
    assert uris == ["https://pytorch.org/", "https://x.example/r/assets/x.csv"]
    # Without a published URL, a local link that is no page of the report is dropped.
    pdf = P.merge(items, parts, blank_pdf(1), blank_pdf(1 + sum(counts)), base, None)
    kept = [a.get_object()["/A"] for a in PdfReader(io.BytesIO(pdf)).pages[1]["/Annots"]]
    assert not any(str(a.get("/URI", "")).startswith(base) for a in kept) and len(kept) == 2


# --- the link on every page ------------------------------------------------------------------------

def pdf_link_hook():
    spec = importlib.util.spec_from_file_location("pdf_link", ROOT / "hooks" / "pdf_link.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("url, href", [("", "report.pdf"), ("lenet/data/", "../../report.pdf"),
                                       ("questions/", "../report.pdf"), ("page.html", "report.pdf")])
def test_every_page_links_the_pdf_relatively(url, href):
    hook = pdf_link_hook()
    assert hook.PDF == P.PDF_NAME
    assert hook.href(url) == href


def test_hook_registered_in_mkdocs_yml():
    assert "hooks/pdf_link.py" in P.read_config(ROOT / "mkdocs.yml")["hooks"]


# --- the printed report -----------------------------------------------------------------------------

def why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: python -m pip install -r requirements.txt"
    if not P.CHROMIUM.is_file():
        return f"{P.CHROMIUM} is missing: apt-get install -y chromium"
    return None


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """The site built from the committed artifacts, printed: (site folder, report, page texts)."""
    reason = why_no_browser()
    if reason and os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    from pypdf import PdfReader
    folder = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if k != "LENET_ARTIFACTS"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(folder)], cwd=ROOT,
                            env={**env, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = P.build(folder, ROOT / "mkdocs.yml", "test", log=lambda *_: None)
    reader = PdfReader(io.BytesIO(report.pdf))
    # NFKC: the PDF's fonts write "fi" as the ligature "ﬁ"
    texts = [re.sub(r"\s+", " ", unicodedata.normalize("NFKC", p.extract_text())) for p in reader.pages]
    return folder, report, reader, texts


def page_ranges(reader) -> dict[str, range]:
    """Outline heading -> the PDF pages (0-based) from it to the next bookmark."""
    flat = []

    def walk(outline):
        for o in outline:
            walk(o) if isinstance(o, list) else flat.append((o.title, reader.get_destination_page_number(o)))
    walk(reader.outline)
    out = {}
    for i, (title, start) in enumerate(flat):
        end = next((s for _, s in flat[i + 1:] if s > start), len(reader.pages))
        out[title] = range(start, end)
    return out



@pytest.mark.browser
@pytest.mark.slow
def test_pdf_pages_in_nav_order_with_their_headers(printed):
    _, report, reader, texts = printed
    assert not report.problems, report.problems
    items = P.entries(P.read_config(ROOT / "mkdocs.yml")["nav"])
    ranges = page_ranges(reader)
    assert list(ranges) == [e.heading for e in items]  # the bookmarks: every nav entry, in order
    starts = [ranges[e.heading].start for e in P.pages(items)]
    assert starts == sorted(starts) and starts[0] >= 1  # the cover first, then the pages in nav order
    for e in P.pages(items):
        for i in ranges[e.heading]:  # each page's header names the page it belongs to
            assert e.heading in texts[i], (e.heading, i)
    assert re.search(rf"page 1 of {len(reader.pages)}\b", texts[0])


@pytest.mark.browser
@pytest.mark.slow
def test_pdf_holds_every_question_label_in_its_homework(printed):
    _, _, reader, texts = printed
    ranges = page_ranges(reader)
    assert "CSCE-421 HW3" in texts[0] and "COM S 573 HW5" in texts[0] and "CS182 HW3" in texts[0]
    for hw, (name, _, _, page) in Q.HOMEWORKS.items():
        heading = next(h for h in ranges if h.endswith(name))  # the homework's section ...
        section = next(h for h in list(ranges)[list(ranges).index(heading) + 1:])  # ... its answers page
        text = " ".join(texts[i] for i in ranges[section])
        missing = [q.label for q in Q.of(hw) if not re.search(rf"(?<![\w.(]){re.escape(q.label)}(?![\w)])", text)]
        assert not missing, f"{name}: {missing}"


@pytest.mark.browser
@pytest.mark.slow
def test_pdf_has_no_raw_tex(printed):
    _, _, _, texts = printed
    found = {i + 1: [t for t in RAW_TEX if t in text] for i, text in enumerate(texts)}
    assert not {k: v for k, v in found.items() if v}


@pytest.mark.browser
@pytest.mark.slow
def test_pdf_has_every_figure(printed):
    """Every numbered figure's caption is in its page's part of the PDF, and every raster image
    of the site's pages (outside the code listings, which stay shut) is embedded."""
    folder, _, reader, texts = printed
    items = P.entries(P.read_config(ROOT / "mkdocs.yml")["nav"])
    ranges = page_ranges(reader)
    rasters = 0
    for e in P.pages(items):
        html = (folder / e.url / "index.html").read_text(encoding="utf-8")
        article = html[html.find("<article"):html.rfind("</article>")]
        captions = re.findall(r"<strong>(Figure \d+)\.</strong>", article)
        text = " ".join(texts[i] for i in ranges[e.heading])
        assert all(f"{c}." in text for c in captions), (e.heading, captions)
        rasters += len(re.findall(r'<img [^>]*src="[^"]+\.(?:png|jpe?g)"', article))
    embedded = sum(len(p.images) for p in reader.pages)
    assert rasters > 0 and embedded >= rasters, (embedded, rasters)
