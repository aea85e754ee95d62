"""MkDocs hook: serve MathJax from the built site, so math renders offline.

The MathJax 2 files come from the `jupyter-server-mathjax` package (a requirement), not from a
CDN and not committed here. After the build, the subset that TeX input with HTML-CSS output
needs is copied to `site/assets/mathjax/`: notebook pages load it through mkdocs-jupyter's
`custom_mathjax_url`, Markdown pages through `docs/javascripts/mathjax-loader.js`. A missing
package or file fails the build.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError

TARGET = "assets/mathjax"
# What `MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,offline` loads: TeX in, HTML-CSS out.
# The package ships only the STIX-Web fonts (as Jupyter uses them), not MathJax's default TeX
# fonts, so our own config file `offline` (written below) selects STIX-Web and no image fonts.
NEEDED = ("MathJax.js", "config", "extensions", "jax/input/TeX", "jax/output/HTML-CSS",
          "jax/element", "fonts/HTML-CSS/STIX-Web/woff", "localization/en")
SKIP_FONTS = ("eot", "otf", "svg")  # browsers that run this site load woff
# HTML-CSS also declares a placeholder font at url('about:blank'), which Chromium reports as a
# console error on every page; a local() source is the same "no such font" without a request.
OFFLINE_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}}
});
MathJax.Ajax.loadComplete("[MathJax]/config/offline.js");
"""


def mathjax_source() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise PluginError("jupyter-server-mathjax is not installed; run "
                          "`python -m pip install -r requirements.txt`") from e
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def on_post_build(config, **kwargs):
    src = mathjax_source()
    dest = Path(config["site_dir"]) / TARGET
    if dest.exists():
        shutil.rmtree(dest)
    for rel in NEEDED:
        s = src / rel
        if not s.exists():
            raise PluginError(f"MathJax file {s} is missing; reinstall jupyter-server-mathjax")
        if s.is_dir():
            shutil.copytree(s, dest / rel, ignore=shutil.ignore_patterns(*(f"*.{x}" for x in SKIP_FONTS)))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dest / rel)
    (dest / "config" / "offline.js").write_text(OFFLINE_CONFIG)
