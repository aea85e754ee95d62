"""MkDocs hook: every page links the report's PDF (issue 13, item 3): an icon in the header, beside
search, and a line in the footer.

`invoke pdf` prints the built site to site/report.pdf (pipeline/pdf.py) after the build, so the
file does not exist while MkDocs builds: the link is a plain relative URL written into the page's
HTML (on_post_page), not a Markdown link that `mkdocs build --strict` would check. The header and
footer are hidden in print, so the PDF does not link itself.
"""
import html
import posixpath

from mkdocs.exceptions import PluginError

PDF = "report.pdf"  # pipeline/pdf.py's PDF_NAME, at the site root
TITLE = "The whole report as one PDF (made by invoke pdf)"
# Material's bundled icon material/file-pdf-box (Material Design Icons, Apache 2.0), inline as the
# theme inlines its own icons: no request for it.
ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M19 3H5c-1.1 0-2 .9-2 2v14c0 '
        '1.1.9 2 2 2h14c1.1 0 2-.9 2-2V5c0-1.1-.9-2-2-2m-9.5 8.5c0 .8-.7 1.5-1.5 1.5H7v2H5.5V9H8c.8 0 1.5.7 1.5 '
        '1.5zm5 2c0 .8-.7 1.5-1.5 1.5h-2.5V9H13c.8 0 1.5.7 1.5 1.5zm4-3H17v1h1.5V13H17v2h-1.5V9h3zm-6.5 0h1v3h-1zm-5 '
        '0h1v1H7z"/></svg>')
HEADER_MARK = '<label class="md-header__button md-icon" for="__search">'
FOOTER_MARK = '<div class="md-copyright">'


def href(page_url: str) -> str:
    """report.pdf relative to a page's URL: '' -> 'report.pdf', 'lenet/data/' -> '../../report.pdf'."""
    folder = posixpath.dirname(page_url) if not page_url.endswith("/") else page_url.rstrip("/")
    return posixpath.relpath(PDF, folder or ".")


def on_post_page(output, page, config):
    url = html.escape(href(page.url))  # (Material's 404 page is a template: no hook sees it)
    for mark in (HEADER_MARK, FOOTER_MARK):
        if output.count(mark) != 1:
            raise PluginError(f"hooks/pdf_link.py: {page.file.src_uri} has {output.count(mark)} "
                              f"of {mark!r} (one expected); has the theme's template changed?")
    button = (f'<a href="{url}" class="md-header__button md-icon" title="{TITLE}" '
              f'aria-label="{TITLE}">{ICON}</a>')
    line = f'<div class="md-copyright__highlight"><a href="{url}">The whole report as one PDF</a></div>'
    return (output.replace(HEADER_MARK, button + HEADER_MARK)
                  .replace(FOOTER_MARK, FOOTER_MARK + line))
