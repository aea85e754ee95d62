"""The report's PDF (issue 13, item 3; pipeline/pdf.py, `invoke pdf`, `invoke all`).

Without a browser: the page order from mkdocs.yml's nav, the numbering, the outline plan, the
cover, the merge (page numbers stamped, bookmarks, links into the PDF mended) on PDFs made by
pypdf; the link on every page (issue 22, item 5: only once the PDF is there, once, resolving to
it), the cache key, `publish` with the print stubbed, and `invoke all`'s one line without
Chromium. With Chromium (marked `browser`, skipped when Chromium or
Playwright is missing unless REQUIRE_BROWSER=1, as in tests/test_browser.py): the site is built
from the committed artifacts into a temporary folder and published (printed, linked), and the PDF's extracted text
must hold every question label of the three homeworks (pipeline/answers/questions.py) in its
homework's pages, no raw TeX, the pages in nav order, every numbered figure and the raster images.
"""
from __future__ import annotations

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

SMALL_SITE = ("index.html", "lenet/data/index.html", "questions/index.html", "404.html")
LINKED = ("index.html", "lenet/data/index.html", "questions/index.html")  # not the 404 page: served at any URL


def page_html(title: str, cell: str = "a1b2c3d4") -> str:
    """A built page as Material lays one out, reduced to the two places the link goes (and one
    notebook cell id, which nbformat draws anew at every build)."""
    return (f"<html><head><title>{title}</title></head><body>\n<header>{P.HEADER_MARK}</label></header>\n"
            f'<article><div class="jp-Cell" id="cell-id={cell}">{title}</div></article>\n'
            f'<footer>{P.FOOTER_MARK}<div class="md-copyright__highlight">(c)</div></div></footer></body></html>\n')


def write_small_site(site: Path, text: str = "") -> Path:
    """Four pages as MkDocs writes them, no PDF, and assets (an HTML one without the theme)."""
    for rel in SMALL_SITE:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(page_html(rel + text), encoding="utf-8")
    (site / "assets").mkdir()
    (site / "assets" / "plot.html").write_text("<html><body>a plot</body></html>\n")
    (site / "assets" / "plot.png").write_bytes(b"\x89PNG")
    (site / ".lenet-site").write_text("built by `invoke docs`\n")  # tasks.SITE_MARK: a folder the build made
    return site


@pytest.fixture
def small_site(tmp_path) -> Path:
    return write_small_site(tmp_path / "site")


def pdf_links(site: Path) -> dict[str, list[Path]]:
    """Every HTML file of a built site -> the files its links to report.pdf point at."""
    def targets(page: Path) -> list[Path]:
        return [(page.parent / h).resolve() for h in re.findall(r'href="([^"]*report\.pdf)"', page.read_text())]
    return {p.relative_to(site).as_posix(): targets(p) for p in site.rglob("*.html")}


def site_bytes(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("page, href", [("index.html", "report.pdf"), ("lenet/data/index.html", "../../report.pdf"),
                                        ("questions/index.html", "../report.pdf"), ("page.html", "report.pdf")])
def test_every_page_links_the_pdf_relatively(page, href):
    assert P.href(page) == href


def test_the_link_goes_in_once_and_comes_out_whole():
    page = page_html("Data")
    linked = P.with_pdf_link(page, "lenet/data/index.html")
    assert linked.count('href="../../report.pdf"') == 2  # the header's icon and the footer's line
    assert linked.index("../../report.pdf") < linked.index(P.HEADER_MARK)  # beside search
    assert linked.index(P.FOOTER_MARK) < linked.rindex("The whole report as one PDF")
    assert P.with_pdf_link(linked, "lenet/data/index.html") == linked  # twice: still one link
    assert P.without_pdf_link(linked) == page  # taken out: as MkDocs wrote it
    assert P.with_pdf_link("<p>no theme</p>", "assets/x.html") == "<p>no theme</p>"
    with pytest.raises(ValueError, match="theme's template"):
        P.with_pdf_link(page.replace(P.FOOTER_MARK, P.FOOTER_MARK * 2), "x/index.html")


def test_pages_link_the_pdf_only_once_it_is_there(small_site):
    before = site_bytes(small_site)
    with pytest.raises(RuntimeError, match="missing file"):
        P.link_site(small_site)
    assert site_bytes(small_site) == before and not any(pdf_links(small_site).values())
    (small_site / P.PDF_NAME).write_bytes(b"%PDF-1.7 stand-in")
    assert P.link_site(small_site) == len(LINKED)
    links = pdf_links(small_site)
    for rel in LINKED:
        assert links[rel] == [(small_site / P.PDF_NAME).resolve()] * 2, rel  # both resolve to the file
    assert links["404.html"] == [] and links["assets/plot.html"] == []
    linked = site_bytes(small_site)
    assert P.link_site(small_site) == len(LINKED) and site_bytes(small_site) == linked  # idempotent
    P.link_site(small_site, linked=False)
    assert site_bytes(small_site) == {**before, P.PDF_NAME: b"%PDF-1.7 stand-in"}


def test_site_key_sees_what_is_printed_and_nothing_else(small_site, tmp_path):
    source = tmp_path / "layout.py"
    source.write_text("SCALE = 0.8\n")
    key = P.site_key(small_site, "abc123", [source])
    assert len(key) == 64
    (small_site / P.PDF_NAME).write_bytes(b"%PDF")
    P.link_site(small_site)
    (small_site / "sitemap.xml").write_text("<lastmod>today</lastmod>")
    rebuilt = (small_site / "index.html").read_text().replace("cell-id=a1b2c3d4", "cell-id=9f8e7d6c")
    (small_site / "index.html").write_text(rebuilt)  # a rebuild draws new cell ids
    assert P.site_key(small_site, "abc123", [source]) == key  # the link, the PDF, the ids, the sitemap: no change
    assert P.site_key(small_site, "abc124", [source]) != key  # the cover names the commit
    (small_site / "assets" / "plot.png").write_bytes(b"\x89PNG2")
    changed = P.site_key(small_site, "abc123", [source])
    assert changed != key  # a figure is printed
    source.write_text("SCALE = 0.9\n")
    assert P.site_key(small_site, "abc123", [source]) != changed  # the layout's code


@pytest.fixture
def fake_print(monkeypatch):
    """P.build stubbed (a 3-page PDF naming the commit) and Chromium taken as present; the calls
    are counted, and each checks it prints pages that do not link the PDF."""
    calls = []

    def build(site_dir, config_file, commit, log=print):
        assert not any(pdf_links(Path(site_dir)).values()), "printed from pages that link the PDF"
        calls.append(commit)
        return P.Report(blank_pdf(3) + commit.encode(), 3, [], list(problems))
    problems = []
    monkeypatch.setattr(P, "build", build)
    monkeypatch.setattr(P, "unavailable", lambda: None)
    return calls, problems


def test_publish_prints_once_then_copies(small_site, tmp_path, fake_print):
    calls, _ = fake_print
    cache = tmp_path / "cache"
    done = P.publish(small_site, ROOT / "mkdocs.yml", "c1", cache, log=None)
    assert done.printed and done.pages == 3 and done.linked == len(LINKED) and calls == ["c1"]
    pdf = (small_site / P.PDF_NAME).read_bytes()
    assert (cache / P.PDF_NAME).read_bytes() == pdf
    assert all(links == [(small_site / P.PDF_NAME).resolve()] * 2 for rel, links in pdf_links(small_site).items()
               if rel in LINKED)
    # The same pages, linked already: copied, not printed. A new build (MkDocs empties the site): copied.
    assert not P.publish(small_site, ROOT / "mkdocs.yml", "c1", cache, log=None).printed
    fresh = write_small_site(tmp_path / "fresh")
    again = P.publish(fresh, ROOT / "mkdocs.yml", "c1", cache, log=None)
    assert not again.printed and again.linked == len(LINKED) and (fresh / P.PDF_NAME).read_bytes() == pdf
    assert calls == ["c1"]
    # Another commit, or --force: printed again.
    assert P.publish(fresh, ROOT / "mkdocs.yml", "c2", cache, log=None).printed
    assert P.publish(fresh, ROOT / "mkdocs.yml", "c2", cache, force=True, log=None).printed
    assert calls == ["c1", "c2", "c2"]
    # A cached PDF that is not whole is printed again, never copied.
    (cache / P.PDF_NAME).write_bytes(b"%PDF cut short")
    assert P.publish(fresh, ROOT / "mkdocs.yml", "c2", cache, log=None).printed


def test_a_print_with_problems_is_not_kept(small_site, tmp_path, fake_print):
    calls, problems = fake_print
    problems.append("1.1 Questions: image not loaded: x.png")
    for _ in range(2):
        done = P.publish(small_site, ROOT / "mkdocs.yml", "c1", tmp_path / "cache", log=None)
        assert done.printed and done.problems == problems
    assert len(calls) == 2 and not (tmp_path / "cache" / P.PDF_NAME).exists()


def test_without_chromium_no_pdf_and_no_link(small_site, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(P.NoBrowser, match="no-chromium is missing"):
        P.publish(small_site, ROOT / "mkdocs.yml", "c1", tmp_path / "cache", log=None)
    assert not (small_site / P.PDF_NAME).exists() and not any(pdf_links(small_site).values())


@pytest.fixture
def all_workspace(tmp_path, monkeypatch):
    """tasks.py rooted in tmp_path, every stage of `invoke all` stubbed: `docs` writes the small
    site, the others do nothing; Chromium is missing."""
    import tasks
    (tmp_path / "mkdocs.yml").write_bytes((ROOT / "mkdocs.yml").read_bytes())
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.setattr(tasks, "ART", tmp_path / "artifacts")
    for name in ("data", "train", "plots", "answers", "layers", "filters"):
        monkeypatch.setattr(tasks, name, lambda c, **kw: None)
    monkeypatch.setattr(tasks, "docs", lambda c, **kw: write_small_site(tmp_path / "site") and None)
    monkeypatch.setattr(P, "CHROMIUM", tmp_path / "no-chromium")
    return tasks, tmp_path


def test_invoke_all_without_chromium_says_it_skipped_the_pdf(all_workspace, capsys):
    from invoke import Context
    tasks, root = all_workspace
    tasks.all_(Context())
    out = capsys.readouterr().out
    assert (f"pdf: skipped: {root / 'no-chromium'} is missing (apt-get install -y chromium); "
            "the site links no PDF\n") in out
    assert '"pdf": ' in out.splitlines()[-1]  # timed as a stage
    assert not (root / "site" / P.PDF_NAME).exists() and not any(pdf_links(root / "site").values())


def test_invoke_pdf_without_chromium_is_one_line(all_workspace):
    from invoke import Context
    from invoke.exceptions import Exit
    tasks, root = all_workspace
    write_small_site(root / "site")
    with pytest.raises(Exit) as e:
        tasks.pdf(Context())
    assert e.value.code == 1
    assert e.value.message == f"error: {root / 'no-chromium'} is missing (apt-get install -y chromium)"


def test_the_build_writes_no_pdf_link():
    """MkDocs' build links no PDF (there is none yet): no hook in mkdocs.yml, none that names it."""
    hooks = P.read_config(ROOT / "mkdocs.yml")["hooks"]
    assert hooks and not any(P.PDF_NAME in (ROOT / h).read_text() for h in hooks)


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
    """The site built from the committed artifacts, published as `invoke pdf` does (printed, the
    PDF kept in a temporary cache, every page linked): (site folder, what publish says, reader,
    page texts)."""
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
    assert not any(pdf_links(folder).values())  # no PDF yet: no page links one
    report = P.publish(folder, ROOT / "mkdocs.yml", "test", folder.parent / "cache", log=lambda *_: None)
    reader = PdfReader(io.BytesIO((folder / P.PDF_NAME).read_bytes()))
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


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_links_the_printed_pdf(printed):
    folder, report, reader, _ = printed
    nav = P.pages(P.entries(P.read_config(ROOT / "mkdocs.yml")["nav"]))
    assert report.printed and report.pages == len(reader.pages) and report.linked == len(nav)
    for rel, links in pdf_links(folder).items():
        want = [] if rel == "404.html" else [(folder / P.PDF_NAME).resolve()] * 2
        assert links == want, rel
    # The same pages again (`invoke all` with nothing to redo): the kept PDF, not a second print.
    again = P.publish(folder, ROOT / "mkdocs.yml", "test", folder.parent / "cache", log=None)
    assert not again.printed and again.linked == report.linked


def test_a_half_built_site_is_refused_before_printing(tmp_path):
    """Issue 23: `invoke pdf` printed 16 chapters of "Error code: 404" and exited 0."""
    items = P.entries(["index.md", {"A": ["lenet/data.md", "questions.md"]}])
    site = tmp_path / "site"
    (site / "lenet" / "data").mkdir(parents=True)
    (site / "index.html").write_text("x")
    (site / "lenet" / "data" / "index.html").write_text("x")
    assert P.missing_pages(site, items) == ["questions/index.html"]
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\nnav:\n  - index.md\n  - A:\n    - lenet/data.md\n    - questions.md\n")
    with pytest.raises(P.UserError, match=r"1 page\(s\) of the nav are not in .* \(first: questions/index.html\)"):
        P.build(site, config, "0123")
    (site / "questions").mkdir()
    (site / "questions" / "index.html").write_text("x")
    assert P.missing_pages(site, items) == []


def test_the_print_reaches_only_its_own_server():
    """Issue 23: the "offline" filter let every port on 127.0.0.1 through."""
    class Route:
        def __init__(self, url):
            self.request, self.done = type("R", (), {"url": url})(), None

        def continue_(self):
            self.done = "continued"

        def abort(self):
            self.done = "aborted"
    handler = P.offline("http://127.0.0.1:8123/")
    for url, want in [("http://127.0.0.1:8123/lenet/", "continued"), ("data:image/png;base64,AA", "continued"),
                      ("http://127.0.0.1:6379/", "aborted"), ("http://localhost:8123/", "aborted"),
                      ("https://example.com/x.png", "aborted")]:
        route = Route(url)
        handler(route)
        assert route.done == want, url
