"""MkDocs hook: one shared, pruned stylesheet for the notebook pages instead of 575 KB inline each.

mkdocs-jupyter's template inlines JupyterLab's whole stylesheet (its `assets/index.css`, about
575 KB) into a <style> element of every notebook page, so each answers page weighed ~600 KB of
HTML before any image, and a reader paid for it again on every such page. Most of it styles
JupyterLab's application (menus, file browser, widgets) that a static page never shows.

This hook takes that <style> element out of each notebook page (on_post_page), links a shared
`assets/stylesheets/notebook.css` instead, and writes that file once at the end of the build
(on_post_build), keeping only the rules that can match something on the notebook pages: a style
rule is kept when one of its selectors names only classes and ids that occur in those pages' HTML
(rules with no class or id are always kept); @media and @supports blocks are pruned inside;
other at-rules are kept; custom properties that nothing reads are dropped. The pages look the same (the browser tests
screenshot them); the bytes fall by an order of magnitude.
"""
import posixpath
import re
from pathlib import Path

import tinycss2

SHARED = "assets/stylesheets/notebook.css"
MIN_INLINE = 50_000  # only the JupyterLab sheet is this large; the small theme sheets stay inline
STYLE = re.compile(r'<style type="text/css">(.*?)</style>', re.DOTALL)
CLASS_ATTR = re.compile(r'\sclass="([^"]*)"')
ID_ATTR = re.compile(r'\sid="([^"]*)"')
CLIENT_SIDE = ("md-", "MathJax", "MJX", "mjx-")  # added in the browser by Material (table wrappers) and MathJax
NOT = re.compile(r":not\([^()]*\)")
SELECTOR_NAME = re.compile(r"([.#])(-?[_a-zA-Z][_a-zA-Z0-9-]*)")

_sheets: set[str] = set()  # the distinct stylesheets taken out (one, as long as the template is one)
_classes: set[str] = set()
_ids: set[str] = set()
_page_vars: set[str] = set()  # custom properties the pages read themselves (inline styles, theme sheets)


def on_pre_build(config):
    _sheets.clear()
    _classes.clear()
    _ids.clear()
    _page_vars.clear()


def _is_notebook(page) -> bool:
    return page.file.src_uri.endswith((".py", ".ipynb"))


def on_post_page(output, page, config):
    if not _is_notebook(page):
        return output
    found = False

    def take(m):
        nonlocal found
        css = m.group(1)
        if len(css) < MIN_INLINE:
            return m.group(0)
        _sheets.add(css)
        found = True
        href = posixpath.relpath(SHARED, posixpath.dirname(page.file.dest_uri) or ".")
        return f'<link rel="stylesheet" href="{href}">'

    output = STYLE.sub(take, output)
    if found:
        for attr in CLASS_ATTR.findall(output):
            _classes.update(attr.split())
        _ids.update(ID_ATTR.findall(output))
        _page_vars.update(VAR_USE.findall(output))
    return output


def _selector_matches(selector: str, classes: set[str], ids: set[str]) -> bool:
    """False when the selector needs a class or id that no notebook page has (names inside
    :not(...) are not needed: an absent class makes :not() match)."""
    for kind, name in SELECTOR_NAME.findall(NOT.sub("", selector)):
        if kind == "." and name.startswith(CLIENT_SIDE):
            continue
        if name not in (classes if kind == "." else ids):
            return False
    return True


def prune(css: str, classes: set[str], ids: set[str], page_vars: set[str] = frozenset()) -> str:
    """The rules of `css` that can match pages with these classes and ids, serialised; custom
    properties (`--name: ...`) that neither a kept declaration nor the pages (`page_vars`) read with
    var() are dropped too (JupyterLab defines hundreds, many of them inline SVG icons)."""
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    tree = list(_prune_rules(rules, classes, ids))
    while True:  # a dropped property may have been the only reader of another: repeat until stable
        used = set(VAR_USE.findall("".join(_values(tree)))) | set(page_vars)
        dropped = _drop_unused(tree, used)
        if not dropped:
            return "".join(_serialise(tree))


VAR_USE = re.compile(r"var\(\s*(--[\w-]+)")


def _prune_rules(rules, classes, ids):
    """Kept rules as a tree: ("rule", selector, [[name, value, important], ...]),
    ("block", "@media ...", [children]) or ("raw", text)."""
    for rule in rules:
        if rule.type == "qualified-rule":
            prelude = tinycss2.serialize(rule.prelude).strip()
            if any(_selector_matches(s, classes, ids) for s in prelude.split(",")):
                decls = [[d.name, tinycss2.serialize(d.value).strip(), d.important]
                         for d in tinycss2.parse_declaration_list(rule.content, skip_comments=True,
                                                                  skip_whitespace=True)
                         if d.type == "declaration"]
                yield ("rule", prelude, decls)
        elif rule.type == "at-rule":
            prelude = tinycss2.serialize(rule.prelude).strip()
            if rule.content is None:
                yield ("raw", f"@{rule.at_keyword} {prelude};")
            elif rule.lower_at_keyword in ("media", "supports"):
                inner = list(_prune_rules(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                                                   skip_whitespace=True), classes, ids))
                if inner:
                    yield ("block", f"@{rule.at_keyword} {prelude}", inner)
            else:
                yield ("raw", f"@{rule.at_keyword} {prelude}{{{tinycss2.serialize(rule.content).strip()}}}")


def _values(tree):
    for node in tree:
        if node[0] == "rule":
            yield from (value for _, value, _ in node[2])
        elif node[0] == "block":
            yield from _values(node[2])
        else:
            yield node[1]


def _drop_unused(tree, used: set[str]) -> int:
    dropped = 0
    for node in tree:
        if node[0] == "rule":
            keep = [d for d in node[2] if not d[0].startswith("--") or d[0] in used]
            dropped += len(node[2]) - len(keep)
            node[2][:] = keep
        elif node[0] == "block":
            dropped += _drop_unused(node[2], used)
    return dropped


def _serialise(tree):
    for node in tree:
        if node[0] == "rule":
            if node[2]:
                body = ";".join(f"{n}:{v}{' !important' if imp else ''}" for n, v, imp in node[2])
                yield f"{node[1]}{{{body}}}"
        elif node[0] == "block":
            inner = "".join(_serialise(node[2]))
            if inner:
                yield f"{node[1]}{{{inner}}}"
        else:
            yield node[1]


def on_post_build(config):
    if not _sheets:
        return
    css = "\n".join(sorted(_sheets))
    out = Path(config.site_dir) / SHARED
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(prune(css, _classes, _ids, _page_vars), encoding="utf-8")
