"""The report as one PDF, printed by Chromium from the built site (issue 13, item 3).

The built site is served on 127.0.0.1 (a free port) and Chromium, driven by Playwright, prints
every page of mkdocs.yml's `nav` in order (`page.pdf`: A4, backgrounds, margins, a header with
the section number and page title). Before a page is printed, the content a reader needs is made
visible: collapsed blocks are opened (provenance, run histories, the independent checks; the
print stylesheet keeps only the code listings shut), every tab of a tabbed block is shown under
its own label (Material's print stylesheet), figures are kept whole, and lazy images are loaded. pypdf then merges a cover (title, the three homeworks,
the commit, a numbered table of contents with page numbers) with the pages, stamps continuous
page numbers ("page 7 of 95") from a one-print overlay, adds a bookmark outline numbered as the
contents are, and turns links into the PDF's own pages into internal links. Nothing outside
127.0.0.1 is requested: the print is offline.

Every page of the site links the PDF (an icon in the header, a line in the footer) only once the
PDF is there (issue 22, item 5): MkDocs writes no link; `publish` puts report.pdf into the built
site and then inserts the link into every page (`link_site`). The print is costly (about a
minute), so `publish` keeps the last PDF outside the site, which `mkdocs build` empties, keyed by
what it was printed from (`site_key`), and copies it when the key matches.

Pure functions (the page order, the numbering, the outline plan, the cover, the link) need no
browser and are unit-tested; `build` prints, and `publish` is the one entry point that writes.
"""
from __future__ import annotations

import functools
import hashlib
import html
import http.server
import importlib.util
import io
import json
import posixpath
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

from pipeline.errors import UserError

CHROMIUM = Path("/usr/bin/chromium")  # Debian's Chromium: Playwright's own download does not work here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
PDF_NAME = "report.pdf"  # written into the site folder; every page then links it (link_site)
PAPER = "A4"
# Room above and below for the header (section and title) and the footer (page number).
MARGIN = {"top": "18mm", "bottom": "16mm", "left": "14mm", "right": "14mm"}
SCALE = 0.8  # the screen layout at 80 %: body text about 10 pt on paper, as a printed report has
IMAGE_TIMEOUT_MS = 20_000  # all images of one page loaded, or print what there is
NAV_TIMEOUT_MS = 60_000    # the longest notebook page loads in a few seconds on a loaded 2-core machine
HEADER_STYLE = "font-size:7.5px; color:#555; width:100%; margin:0 14mm; display:flex; justify-content:space-between;"


# --- the page order ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One row of the report's table of contents: a nav section or a page."""
    number: str        # "2", "1.3"; "" for the unnumbered home page
    title: str         # as the nav names it
    depth: int         # 0 for top-level items, 1 inside a section
    url: str | None    # the page's URL relative to the site root ("lenet/data/"); None for a section

    @property
    def heading(self) -> str:
        if not self.number:
            return self.title
        # "1.2 · 4.1 Loading CIFAR-10": a dot between our number and a question number in the title
        return f"{self.number}{' · ' if self.title[:1].isdigit() else ' '}{self.title}"


def url_of(src: str, use_directory_urls: bool = True) -> str:
    """A docs path's URL relative to the site root: lenet/data.md -> lenet/data/, index.md -> ''
    (mkdocs' use_directory_urls; notebooks, .py and .ipynb, become pages the same way)."""
    stem = re.sub(r"\.(md|py|ipynb)$", "", src)
    if not use_directory_urls:
        return stem + ".html"
    if stem == "index":
        return ""
    return stem[: -len("index")] if stem.endswith("/index") else stem + "/"


def entries(nav: list, use_directory_urls: bool = True) -> list[Entry]:
    """The nav as numbered entries, in reading order. Top-level items are numbered 1, 2, ...,
    except a home page first in the nav (index.md), which is the unnumbered introduction; pages in
    a section are numbered 1.1, 1.2, ... A section's page without a title takes its file name."""
    out: list[Entry] = []

    def walk(items, prefix: str, depth: int):
        n = 0
        for item in items:
            title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
            if isinstance(value, str) and re.match(r"[a-z]+://", value):
                continue  # an external link in the nav is no page of the report
            if depth == 0 and not out and isinstance(value, str) and url_of(value) == "":
                out.append(Entry("", title or "Home", 0, ""))
                continue
            n += 1
            number = f"{prefix}{n}"
            if isinstance(value, list):
                out.append(Entry(number, title or number, depth, None))
                walk(value, number + ".", depth + 1)
            else:
                out.append(Entry(number, title or posixpath.basename(url_of(value).rstrip("/")), depth,
                                 url_of(value, use_directory_urls)))

    walk(nav, "", 0)
    return out


def read_config(config_file: Path) -> dict:
    """mkdocs.yml read with mkdocs' own YAML loader (it knows !ENV and !relative)."""
    from mkdocs.utils.yaml import yaml_load
    with open(config_file, encoding="utf-8") as f:
        return yaml_load(f)


def published_url(citation_cff: Path) -> str | None:
    """The site's address when mkdocs.yml leaves `site_url` to a hook: CITATION.cff's `url`, the one
    place it is set (issue 13, item 4); None without one."""
    import yaml
    try:
        return (yaml.safe_load(citation_cff.read_text(encoding="utf-8")) or {}).get("url") or None
    except (OSError, yaml.YAMLError):
        return None


def pages(items: list[Entry]) -> list[Entry]:
    """The entries that are pages (printed), in order."""
    return [e for e in items if e.url is not None]


# --- the outline and the contents ---------------------------------------------------------------

def start_pages(items: list[Entry], page_counts: list[int], first: int) -> dict[str, int]:
    """The 0-based PDF page each entry starts on, keyed by its heading: the pages are printed in
    order from `first` (after the cover) with `page_counts` pages each; a section starts where its
    first page does."""
    printed = pages(items)
    if len(page_counts) != len(printed):
        raise ValueError(f"{len(page_counts)} page counts for {len(printed)} pages")
    at, start = first, {}
    for e, count in zip(printed, page_counts):
        start[e.heading] = at
        at += count
    for i, e in enumerate(items):
        if e.url is None:
            later = next((x for x in items[i + 1:] if x.url is not None), None)
            start[e.heading] = start[later.heading] if later else at
    return start


def outline_plan(items: list[Entry], page_counts: list[int], first: int) -> list[tuple[int, str, int]]:
    """(depth, heading, 0-based page) per entry, in order: the PDF's bookmarks, a section's pages
    nested under it."""
    start = start_pages(items, page_counts, first)
    return [(e.depth, e.heading, start[e.heading]) for e in items]


def cover_html(title: str, homeworks: list[str], commit: str, items: list[Entry],
               start: dict[str, int] | None, site_url: str | None = None) -> str:
    """The cover: title, the homeworks, the commit, and the numbered contents with the page each
    entry starts on (1-based, as the footer counts; blank while the pages are not yet counted)."""
    def row(e: Entry) -> str:
        page = str(start[e.heading] + 1) if start else ""
        pad = 1.4 * e.depth
        weight = "bold" if e.depth == 0 else "normal"
        return (f'<tr><td style="padding-left:{pad}em;font-weight:{weight}">{html.escape(e.heading)}</td>'
                f'<td class="p">{page}</td></tr>')
    hw = "".join(f"<li>{html.escape(h)}</li>" for h in homeworks)
    url = f'<p class="meta">Online: {html.escape(site_url)}</p>' if site_url else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
  body {{ font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 0; }}
  h1 {{ font-size: 24px; margin: 30mm 0 6mm; color: #303f9f; }}
  .meta {{ font-size: 11px; color: #555; margin: 1mm 0; }}
  ul {{ font-size: 14px; margin: 4mm 0 10mm; }}
  h2 {{ font-size: 15px; margin: 8mm 0 3mm; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 11.5px; }}
  td {{ padding: 1.2mm 0; border-bottom: 0.2mm solid #ddd; }}
  td.p {{ text-align: right; width: 12mm; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">The worked homeworks:</p><ul>{hw}</ul>
<p class="meta">Printed from the site built at commit <code>{html.escape(commit)}</code>.
Every number is read from the artifacts the pages name; the provenance blocks give each
artifact's task, commit and sha256.</p>{url}
<h2>Contents</h2><table>{"".join(row(e) for e in items)}</table>
</body></html>"""


def header_template(report: str, heading: str) -> str:
    """Chromium's header for one printed page: the report on the left, section and title on the right."""
    return (f'<div style="{HEADER_STYLE}"><span>{html.escape(report)}</span>'
            f'<span>{html.escape(heading)}</span></div>')


def footer_template() -> str:
    """The page number, continuous over the whole PDF: printed once, on a blank overlay as long as
    the report (its own page count is the report's), and stamped onto every page."""
    return ('<div style="font-size:8px;color:#555;width:100%;text-align:center;">'
            'page <span class="pageNumber"></span> of <span class="totalPages"></span></div>')


# --- the link on every page ---------------------------------------------------------------------

LINK_TITLE = "The whole report as one PDF (made by invoke pdf)"
# Material's bundled icon material/file-pdf-box (Material Design Icons, Apache 2.0), inline as the
# theme inlines its own icons: no request for it.
ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M19 3H5c-1.1 0-2 .9-2 2v14c0 '
        '1.1.9 2 2 2h14c1.1 0 2-.9 2-2V5c0-1.1-.9-2-2-2m-9.5 8.5c0 .8-.7 1.5-1.5 1.5H7v2H5.5V9H8c.8 0 1.5.7 1.5 '
        '1.5zm5 2c0 .8-.7 1.5-1.5 1.5h-2.5V9H13c.8 0 1.5.7 1.5 1.5zm4-3H17v1h1.5V13H17v2h-1.5V9h3zm-6.5 0h1v3h-1zm-5 '
        '0h1v1H7z"/></svg>')
# Where Material's page template takes the link: before the search button, and first in the
# footer's copyright block. A page with neither is no theme page (an HTML file among the assets).
HEADER_MARK = '<label class="md-header__button md-icon" for="__search">'
FOOTER_MARK = '<div class="md-copyright">'
# The inserted HTML sits between these comments, so it can be found and taken out again whatever
# it looked like when it went in: linking twice leaves one link, and the key sees the page as
# MkDocs wrote it.
LINK_OPEN, LINK_CLOSE = "<!-- report.pdf -->", "<!-- /report.pdf -->"
LINKED_NOT = ("404.html",)  # Material's 404 page is served at any URL: a relative link there would be dead


def href(page_path: str) -> str:
    """report.pdf relative to a built page, named by its path in the site: 'index.html' ->
    'report.pdf', 'lenet/data/index.html' -> '../../report.pdf'."""
    return posixpath.relpath(PDF_NAME, posixpath.dirname(page_path) or ".")


def without_pdf_link(page: str) -> str:
    """A page's HTML with the PDF link taken out: as MkDocs wrote it."""
    return re.sub(f"{re.escape(LINK_OPEN)}.*?{re.escape(LINK_CLOSE)}", "", page, flags=re.S)


def with_pdf_link(page: str, page_path: str) -> str:
    """A built page's HTML linking the PDF once: an icon in the header, beside search, and a line
    in the footer (both hidden in print by Material, so the PDF never links itself). A page with
    neither mark is returned without the link."""
    page = without_pdf_link(page)
    counts = (page.count(HEADER_MARK), page.count(FOOTER_MARK))
    if counts == (0, 0):
        return page
    if counts != (1, 1):
        raise ValueError(f"{page_path} has {counts[0]} of {HEADER_MARK!r} and {counts[1]} of {FOOTER_MARK!r} "
                         "(one of each expected); has the theme's template changed?")
    url = html.escape(href(page_path))
    button = (f'{LINK_OPEN}<a href="{url}" class="md-header__button md-icon" title="{LINK_TITLE}" '
              f'aria-label="{LINK_TITLE}">{ICON}</a>{LINK_CLOSE}')
    line = (f'{LINK_OPEN}<div class="md-copyright__highlight"><a href="{url}">The whole report as one PDF</a>'
            f'</div>{LINK_CLOSE}')
    return page.replace(HEADER_MARK, button + HEADER_MARK).replace(FOOTER_MARK, FOOTER_MARK + line)


# --- printing -----------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path):
    """The built site on http://127.0.0.1:PORT/ (a free port) for as long as the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# Run in the page before it is printed: every collapsed block opened (Material does the same when
# a browser prints; the print stylesheet, docs/stylesheets/extra.css, keeps the code listings
# shut and figures whole), lazy images made eager and waited for. Tabbed blocks need nothing:
# Material's print stylesheet already shows every tab under its label.
PREPARE_JS = """async ms => {
  for (const d of document.querySelectorAll("details")) d.open = true;
  const images = [...document.images];
  images.forEach(i => { i.loading = "eager"; });
  await Promise.race([
    new Promise(done => setTimeout(done, ms)),
    Promise.all(images.map(i => i.complete ? null : new Promise(done => {
      i.addEventListener("load", done); i.addEventListener("error", done); })))]);
  return images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.currentSrc || i.src);
}"""


def print_page(page, url: str, header: str) -> tuple[bytes, list[str]]:
    """One site page as PDF bytes, and the images it could not load."""
    page.goto(url, wait_until="load", timeout=NAV_TIMEOUT_MS)
    broken = page.evaluate(PREPARE_JS, IMAGE_TIMEOUT_MS)
    pdf = page.pdf(format=PAPER, print_background=True, margin=MARGIN, scale=SCALE, display_header_footer=True,
                   header_template=header, footer_template="<span></span>")
    return pdf, broken


def offline(base: str):
    """A route handler: only the site's own server at `base` (and data:/blob: URLs) is reached,
    not another port on 127.0.0.1 (a local service a page's script could talk to) and nothing
    beyond: the print is offline and the same everywhere."""
    own = urlparse(base)

    def route_(route):
        url = urlparse(route.request.url)
        if route.request.url.startswith(("data:", "blob:")) or (url.hostname, url.port) == (own.hostname, own.port):
            return route.continue_()
        return route.abort()
    return route_


def overlay(browser, count: int) -> bytes:
    """`count` blank A4 pages with the page-number footer: stamped onto the report's pages."""
    page = browser.new_page()
    page.set_content("<style>@page{size:A4} div{break-after:page;height:1px}</style>" + "<div></div>" * count)
    pdf = page.pdf(format=PAPER, print_background=False, margin=MARGIN, display_header_footer=True,
                   header_template="<span></span>", footer_template=footer_template())
    page.close()
    return pdf


def print_site(base: str, items: list[Entry], report: str, cover, log=print) -> tuple[list[bytes], bytes, bytes, list[str]]:
    """Print every page of `items` from the site at `base`; then the cover (`cover(start)` -> HTML,
    printed until its own length is stable) and the page-number overlay. Returns (pages, cover,
    overlay, problems)."""
    import time

    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader
    problems, parts = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(color_scheme="light")
        context.route("**/*", offline(base))
        page = context.new_page()
        # A request cut short by the next navigation (the favicon) is no problem; a refused one is.
        page.on("requestfailed", lambda r: None if r.failure == "net::ERR_ABORTED"
                else problems.append(f"request failed: {r.url} ({r.failure})"))
        for e in pages(items):
            t0 = time.perf_counter()
            pdf, broken = print_page(page, urljoin(base, e.url), header_template(report, e.heading))
            problems += [f"{e.heading}: image not loaded: {src}" for src in broken]
            parts.append(pdf)
            log(f"pdf: {e.heading:<45} {len(PdfReader(io.BytesIO(pdf)).pages):3d} pages {time.perf_counter() - t0:5.1f} s")
        counts = [len(PdfReader(io.BytesIO(b)).pages) for b in parts]
        cover_pdf, cover_pages = b"", 1
        for _ in range(3):  # the contents' page numbers depend on the cover's own length
            page.set_content(cover(start_pages(items, counts, cover_pages)))
            cover_pdf = page.pdf(format=PAPER, print_background=True, margin=MARGIN)
            n = len(PdfReader(io.BytesIO(cover_pdf)).pages)
            if n == cover_pages:
                break
            cover_pages = n
        stamp = overlay(browser, cover_pages + sum(counts))
        browser.close()
    return parts, cover_pdf, stamp, problems


# --- merging ------------------------------------------------------------------------------------

def _relink(annot, writer, by_url: dict[str, int], base: str, site_url: str | None) -> bool:
    """A link to the local server that names a page of the report goes to that page's first PDF
    page; any other local link (a download, a file) goes to the published site, or is dropped
    (False) when there is none. Links elsewhere stay as they are."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NullObject, NumberObject, TextStringObject
    action = annot.get("/A")
    uri = str(action.get_object().get("/URI", "")) if action is not None else ""
    if not uri.startswith(base):
        return True
    target = by_url.get(urldefrag(uri)[0])
    if target is not None:
        annot[NameObject("/A")] = DictionaryObject({
            NameObject("/S"): NameObject("/GoTo"),
            NameObject("/D"): ArrayObject([writer.pages[target].indirect_reference, NameObject("/XYZ"),
                                           NullObject(), NullObject(), NumberObject(0)])})
        return True
    if not site_url:
        return False
    action.get_object()[NameObject("/URI")] = TextStringObject(site_url.rstrip("/") + "/" + uri[len(base):])
    return True


def merge(items: list[Entry], parts: list[bytes], cover: bytes, stamp: bytes, base: str,
          site_url: str | None = None) -> bytes:
    """Cover + pages, numbered by the overlay, with the bookmark outline and the links mended
    (`_relink`): nothing in the PDF points at the local server that printed it."""
    from pypdf import PdfReader, PdfWriter
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(cover)))
    first = len(writer.pages)
    counts = []
    for part in parts:
        reader = PdfReader(io.BytesIO(part))
        counts.append(len(reader.pages))
        writer.append(reader, import_outline=False)
    numbers = PdfReader(io.BytesIO(stamp))
    for page, number in zip(writer.pages, numbers.pages):
        page.merge_page(number, over=True)
    start = start_pages(items, counts, first)
    by_url = {urljoin(base, e.url): start[e.heading] for e in pages(items)}
    for page in writer.pages:
        annots = page.get("/Annots")
        if annots:
            kept = [a for a in annots if _relink(a.get_object(), writer, by_url, base, site_url)]
            annots.clear()
            annots.extend(kept)
    parents: dict[int, object] = {}
    for depth, heading, at in outline_plan(items, counts, first):
        parents[depth] = writer.add_outline_item(title=heading, page_number=at, parent=parents.get(depth - 1))
    writer.page_mode = "/UseOutlines"
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- the entry point ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    pdf: bytes
    pages: int
    printed: list[str]   # the headings printed, in order
    problems: list[str]  # images not loaded, requests refused (empty when all is well)


def missing_pages(site_dir: Path, items: list[Entry]) -> list[str]:
    """The nav's pages whose HTML the built site lacks (site-relative paths)."""
    files = [(e.url if e.url.endswith(".html") else e.url + "index.html") for e in pages(items)]
    return [f for f in files if not (Path(site_dir) / f).is_file()]


def build(site_dir: Path, config_file: Path, commit: str, log=print) -> Report:
    """The report's PDF from the built site in `site_dir`, in the order of `config_file`'s nav."""
    from pypdf import PdfReader
    config = read_config(config_file)
    items = entries(config["nav"], config.get("use_directory_urls", True))
    missing = missing_pages(site_dir, items)
    if missing:  # a half-built site would print "Error code: 404" chapters
        raise UserError(f"{len(missing)} page(s) of the nav are not in {site_dir} (first: {missing[0]}); the site "
                        "is not fully built: run `invoke docs` first")
    title = config.get("site_name", "Report")
    site_url = config.get("site_url") or published_url(Path(config_file).parent / "CITATION.cff")
    homeworks = [e.title for e in items if e.depth == 0 and e.url is None and re.search(r"\bHW\d", e.title)]
    short = title.split(":")[0]
    with serve(site_dir) as base:
        parts, cover, stamp, problems = print_site(
            base, items, short, lambda start: cover_html(title, homeworks, commit, items, start, site_url), log)
        pdf = merge(items, parts, cover, stamp, base, site_url)
    return Report(pdf, len(PdfReader(io.BytesIO(pdf)).pages), [e.heading for e in pages(items)], problems)


# --- into the site, once: the link and the cache -----------------------------------------------

CACHE_RECORD = "report.json"  # beside the cached PDF: the key it was printed for and its sha256
# Nothing prints these: the PDF itself, and the sitemap (it carries the build date).
UNHASHED = (PDF_NAME, "sitemap.xml", "sitemap.xml.gz")
# A notebook page's cells get new random ids at every build (nbformat draws them when jupytext
# reads the .py); nothing prints or links them, so they are blanked before hashing.
CELL_ID = re.compile(r'id="cell-id=[\w-]+"')


class NoBrowser(UserError):
    """The PDF must be printed and cannot be here (no Chromium, or no Playwright)."""


@dataclass(frozen=True)
class Published:
    printed: bool        # False: copied from the cache, printed earlier from the same pages
    pages: int
    size: int            # bytes
    problems: list[str]  # the print's warnings (a print with any is not cached)
    linked: int          # pages of the site that now link the PDF


def unavailable() -> str | None:
    """Why the PDF cannot be printed on this machine, or None."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (python -m pip install -r requirements.txt)"
    return None


def site_key(site_dir: Path, commit: str, sources=()) -> str:
    """sha256 of what the PDF is printed from: every file of the built site but those in UNHASHED
    (pages as MkDocs wrote them: without the PDF link, cell ids blanked), the commit the cover
    names, and `sources` (the code and config that lay the PDF out)."""
    site_dir = Path(site_dir)
    h = hashlib.sha256(commit.encode() + b"\0")
    for path in sorted(p for p in site_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(site_dir).as_posix()
        if rel in UNHASHED or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue  # (.NAME.*.tmp: a killed atomic write's litter)
        data = path.read_bytes()
        if path.suffix == ".html":
            data = CELL_ID.sub('id="cell-id="', without_pdf_link(data.decode("utf-8"))).encode("utf-8")
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    for path in sources:
        h.update(b"\0" + hashlib.sha256(Path(path).read_bytes()).digest())
    return h.hexdigest()


def link_site(site_dir: Path, linked: bool = True) -> int:
    """Every page of the built site made to link the PDF (linked=False: not to), each page
    rewritten atomically and only if it changes; returns how many pages link it."""
    from pipeline.store import write_bytes_atomic
    site_dir = Path(site_dir)
    if linked and not (site_dir / PDF_NAME).is_file():
        raise RuntimeError(f"{site_dir / PDF_NAME} is not there: the pages would link a missing file")
    count = 0
    for path in sorted(site_dir.rglob("*.html")):
        rel = path.relative_to(site_dir).as_posix()
        page = path.read_bytes().decode("utf-8")  # bytes, not read_text: line endings stay as written
        page = with_pdf_link(page, rel) if linked and rel not in LINKED_NOT else without_pdf_link(page)
        write_bytes_atomic(path, page.encode("utf-8"))
        count += LINK_OPEN in page
    if linked and not count:
        raise RuntimeError(f"no page in {site_dir} has {HEADER_MARK!r} and {FOOTER_MARK!r}; "
                           "has the theme's template changed?")
    return count


def cached(cache_dir: Path, key: str) -> tuple[bytes, dict] | None:
    """The PDF kept in `cache_dir` and its record, if it was printed for `key` and is whole."""
    try:
        record = json.loads((Path(cache_dir) / CACHE_RECORD).read_text(encoding="utf-8"))
        pdf = (Path(cache_dir) / PDF_NAME).read_bytes()
    except (OSError, ValueError):
        return None
    if record.get("key") != key or record.get("sha256") != hashlib.sha256(pdf).hexdigest():
        return None
    return pdf, record


def publish(site_dir: Path, config_file: Path, commit: str, cache_dir: Path, force: bool = False,
            log=print) -> Published:
    """The report's PDF put into the built site at `site_dir`, then linked from every page. The
    PDF in `cache_dir` is copied if it was printed from these same pages (`site_key`); otherwise
    the site is printed (`build`) and the new PDF kept in `cache_dir`. Raises NoBrowser when a
    print is needed and this machine cannot make one; the pages are then left as they are."""
    from pipeline.store import json_bytes, write_bytes_atomic
    site_dir, cache_dir = Path(site_dir), Path(cache_dir)
    citation = Path(config_file).parent / "CITATION.cff"  # the published address the PDF's links use
    key = site_key(site_dir, commit, [Path(__file__), config_file, *([citation] if citation.is_file() else [])])
    hit = None if force else cached(cache_dir, key)
    if hit:
        pdf, record = hit
        problems = []
    else:
        reason = unavailable()
        if reason:
            raise NoBrowser(reason)
        link_site(site_dir, linked=False)  # printed from the pages as MkDocs wrote them
        report = build(site_dir, config_file, commit, log)
        pdf, problems = report.pdf, report.problems
        record = {"key": key, "sha256": hashlib.sha256(pdf).hexdigest(), "pages": report.pages, "commit": commit}
        if not problems:  # an image that timed out on a loaded machine may load next time
            # The PDF first, then the record naming its sha256: a run killed in between leaves a
            # record that matches no PDF, never a wrong PDF under a right key.
            write_bytes_atomic(cache_dir / PDF_NAME, pdf)
            write_bytes_atomic(cache_dir / CACHE_RECORD, json_bytes(record))
    write_bytes_atomic(site_dir / PDF_NAME, pdf)
    return Published(not hit, record["pages"], len(pdf), problems, link_site(site_dir))
