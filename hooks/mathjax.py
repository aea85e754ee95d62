"""MkDocs hook: MathJax served from the site itself, so math renders offline, and a time limit
for each notebook cell.

MathJax. The MathJax 2 files come from the `jupyter-server-mathjax` package (a requirement), not
from a CDN and not committed here. `on_files` publishes the subset that TeX input with HTML-CSS
output needs (`MATHJAX_FILES`, about 2.6 MB of the package's 12 MB) under `assets/mathjax/`, plus
our configuration `config/offline.js`. Two kinds of page load it, never both on one page
(mkdocs-jupyter issue #227: two MathJax versions on a page break the notebook's math):

- notebook pages (mkdocs-jupyter) through the plugin's `custom_mathjax_url` in mkdocs.yml, with
  the `$...$` / `$$...$$` delimiters nbconvert's template configures;
- Markdown pages through `docs/javascripts/mathjax-loader.js`, which loads it only on pages that
  have `pymdownx.arithmatex` output (`\\(...\\)`, `\\[...\\]`) and no MathJax of their own.

The package ships MathJax's STIX-Web fonts only (not its default TeX fonts) and no CommonHTML
output, so `offline.js` selects HTML-CSS output with the STIX-Web web fonts, never local or image
fonts. A missing package or file fails the build; a file MathJax asks for that is not in the
subset is a 404, which the browser test (tests/test_browser.py) fails on. `on_post_page` checks
that every page's MathJax script is this copy, reached by a relative URL (the site may be served
under a sub-path).

Cell time limit. mkdocs-jupyter (0.26) has no option for it and nbclient's default is no limit,
so a hanging cell would hang the build. `on_config` wraps the plugin's nbconvert set-up to give
every cell `CELL_TIMEOUT_S` seconds; a cell that takes longer fails the build.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

SITE_DIR = "assets/mathjax"
# Files and folders of the package's static/ folder that TeX -> HTML-CSS needs: the loader, the
# combined configuration (input, output and the extensions it preloads) and the Safe extension the
# URL asks for, the TeX extensions a macro can autoload (\color, \cancel, \boldsymbol, ...), the
# operator tables and HTML-CSS pieces loaded on demand, and the STIX-Web glyph data and woff fonts.
MATHJAX_FILES = (
    "LICENSE", "MathJax.js",
    "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js",
    "extensions/Safe.js", "extensions/tex2jax.js", "extensions/MathEvents.js", "extensions/MathMenu.js",
    "extensions/MathZoom.js", "extensions/toMathML.js", "extensions/TeX", "extensions/HTML-CSS",
    "jax/input/TeX", "jax/element", "jax/output/HTML-CSS",
    "fonts/HTML-CSS/STIX-Web/woff",
)
# `MathJax.js?config=...`: the URL both kinds of page load (relative to assets/mathjax/).
MATHJAX_QUERY = "config=TeX-AMS-MML_HTMLorMML-full,Safe,offline"
OFFLINE_CONFIG = """\
/* Written by hooks/mathjax.py: HTML-CSS output with the STIX-Web web fonts this site serves
   (the only fonts jupyter-server-mathjax ships); never local fonts, image fonts or a CDN.
   MathJax_Blank is the fallback HTML-CSS measures web fonts against; MathJax declares it with
   src: url(about:blank), which Chromium refuses with a console error whenever the fallback is
   used (timing-dependent). A local() font that does not exist fails the same way, silently. */
MathJax.Hub.Config({
  "HTML-CSS": {
    availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
    styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank_not_installed')"}}
  }
});
MathJax.Ajax.loadComplete("[MathJax]/config/offline.js");
"""
CELL_TIMEOUT_S = 120  # each answer page runs in a few seconds; this only stops a hang
SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]*MathJax\.js[^"]*)"')


def mathjax_source() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise PluginError("jupyter-server-mathjax is not installed; run "
                          "`python -m pip install -r requirements.txt`.") from e
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def mathjax_files(src: Path) -> list[Path]:
    """Every file of MATHJAX_FILES under src, folders expanded (the eot, otf and svg fonts are in
    folders not listed)."""
    out = []
    for rel in MATHJAX_FILES:
        path = src / rel
        if not path.exists():
            raise PluginError(f"MathJax file {path} is missing; reinstall jupyter-server-mathjax "
                              "(`python -m pip install --force-reinstall jupyter-server-mathjax`).")
        out += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return out


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
                          "hooks/mathjax.py cannot set the cell time limit; update the hook.")
    make_app = getattr(make_app, "__wrapped__", make_app)  # `mkdocs serve` rebuilds: wrap once

    def get_nbconvert_app(*args, **kwargs):
        app = make_app(*args, **kwargs)
        app.config.NotebookClient.timeout = seconds  # ExecutePreprocessor is a NotebookClient
        return app

    get_nbconvert_app.__wrapped__ = make_app
    nbconvert2.get_nbconvert_app = get_nbconvert_app


# ------------------------------------------------------------------------------------------ mkdocs events

def on_config(config):
    set_cell_timeout(CELL_TIMEOUT_S)
    return config


def on_files(files, config):
    src = mathjax_source()
    for path in mathjax_files(src):
        files.append(File.generated(config, f"{SITE_DIR}/{path.relative_to(src).as_posix()}",
                                    abs_src_path=str(path)))
    files.append(File.generated(config, f"{SITE_DIR}/config/offline.js", content=OFFLINE_CONFIG))
    return files


def on_post_page(output, page, config):
    """Every MathJax script of the page is our copy, by a relative URL that reaches it."""
    for src in SCRIPT_SRC.findall(output):
        path, _, query = src.partition("?")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.url), path))
        if "//" in path or path.startswith("/") or target != f"{SITE_DIR}/MathJax.js" or query != MATHJAX_QUERY:
            raise PluginError(f"{page.file.src_uri} loads MathJax from {src!r}, which is not the site's own "
                              f"copy ({SITE_DIR}/MathJax.js?{MATHJAX_QUERY}, relative to the page); fix "
                              "mkdocs-jupyter's custom_mathjax_url in mkdocs.yml.")
    return output
