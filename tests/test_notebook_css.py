"""hooks/notebook_css.py: which JupyterLab rules and custom properties the shared sheet keeps."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("notebook_css", ROOT / "hooks" / "notebook_css.py")
N = importlib.util.module_from_spec(spec)
spec.loader.exec_module(N)


def test_rules_for_absent_classes_go_and_the_rest_stay():
    css = (".a .b{color:red}.a .zz{color:blue}.a:not(.zz) p{margin:0}#here{x:1}#gone{x:2}"
           "p{line-height:1}.a .md-typeset__scrollwrap{margin:0}.a .MathJax{font-size:1em}")
    out = N.prune(css, {"a", "b"}, {"here"})
    assert ".a .b{color:red}" in out and ".zz{color:blue}" not in out
    assert ".a:not(.zz) p{margin:0}" in out          # an absent class makes :not() match
    assert "#here" in out and "#gone" not in out
    assert "p{line-height:1}" in out                 # no class or id: always kept
    assert "md-typeset__scrollwrap" in out and "MathJax" in out  # classes added in the browser


def test_media_blocks_are_pruned_inside_and_dropped_when_empty():
    css = "@media (max-width:10px){.a{x:1}.zz{x:2}}@media print{.zz{x:3}}@font-face{font-family:f}"
    out = N.prune(css, {"a"}, set())
    assert out.startswith("@media (max-width:10px){.a{x:1}}") and "print" not in out
    assert "@font-face" in out


def test_unused_custom_properties_go_but_chains_and_page_uses_stay():
    css = (":root{--used:1px;--chain:var(--deep);--deep:2px;--unused:url('data:x;y');--page:3px;"
           "--dead-chain:var(--only-dead)}:root{--only-dead:4px}.a{margin:var(--used);padding:var(--chain)}")
    out = N.prune(css, {"a"}, set(), page_vars={"--page"})
    for name in ("--used", "--chain", "--deep", "--page"):
        assert f"{name}:" in out
    for name in ("--unused", "--dead-chain", "--only-dead"):
        assert f"{name}:" not in out
    assert ":root{--only-dead" not in out  # a rule left with no declarations is not written
