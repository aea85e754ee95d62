"""No value becomes markup: strings from artifacts (with the manifest re-hashed, as a tool
rewriting a file would), from the data source path and from the answers reach every page as text.
The fake tree of test_site.py gets a hostile payload in every kind of string a placeholder or the
notebook renderer shows; the built pages must hold no element, attribute or link made from it, in
the HTML and in Chromium."""
import csv
import html.parser
import json
from pathlib import Path

import pytest

from tests.test_site import build, write_fake_artifacts, write_manifest

MARK = "PWN"
PAYLOADS = [f'<img src=x onerror="window.{MARK}=1">', f"[click](javascript:window.{MARK}=1)",
            f"`x` <script>window.{MARK}=1</script> {{ onclick=\"window.{MARK}=1\" }}",
            f"**bold** &lt;b&gt; <a href='javascript:window.{MARK}=1'>a</a>"]


def hostile(i: int) -> str:
    return f"{MARK}{i} " + PAYLOADS[i % len(PAYLOADS)]


def poison_csv(path: Path, columns: list[str], counter: list[int]) -> None:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    for r in rows:
        for c in columns:
            r[c] = hostile(counter[0]) if c not in ("variant",) else r[c]
            counter[0] += 1
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def poison_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def poisoned_tree(root: Path) -> Path:
    """The fake artifacts with hostile strings wherever a page shows a string (not a number)."""
    art = write_fake_artifacts(root)
    n = [0]

    def h():
        n[0] += 1
        return hostile(n[0])
    poison_csv(art / "lenet/summary.csv", ["device"], n)
    poison_csv(art / "ablation/effects.csv", ["effect"], n)
    poison_csv(art / "own_cnn/search.csv", ["widths"], n)
    poison_csv(art / "own_cnn/summary.csv", ["device"], n)
    poison_json(art / "data/dataset.json", lambda d: d.update(source=h(), split={**d["split"], "note": h()}))
    poison_json(art / "lenet/findings.json", lambda d: (
        [v.update(sentence=h()) for v in d["compare"].values()], d["val_trend"].update({k: h() for k in d["val_trend"]})))
    poison_json(art / "lenet/seeds.json", lambda d: d.update(sentence=h()))
    poison_json(art / "ablation/summary.json", lambda d: d.update(conclusion=[h(), h()]))
    poison_json(art / "cs182/dropout/summary.json", lambda d: d.update(conclusion=[h()]))
    poison_json(art / "verify.json", lambda d: d.update(verdict=h(), rerun={**d["rerun"], "machine": {
        **d["rerun"]["machine"], "cpu": h(), "isa": h(), "onednn_max_cpu_isa": h(), "platform": h()}}))
    poison_json(art / "bench.json", lambda d: d["machine"].update(cpu=h(), torch=h(), gpu=h()))
    poison_json(art / "lenet/lenet_plain/metrics.json", lambda d: d["machine"].update(cpu=h(), torch_git=h()))
    poison_json(art / "own_cnn/metrics.json", lambda d: d.update(device=h()))
    poison_json(art / "cs182/conv_timings.json", lambda d: d.update(shape={**d["shape"], "dtype": h()}))
    # issue 23: the keys of a mapping reach pages too
    poison_json(art / "bench.json", lambda d: d["end_to_end"]["stages"].update({h(): 1.0}))
    poison_json(art / "data/dataset.json", lambda d: d["split"].update({h(): "x"}))

    def answers(d):
        for entry in list(d.values())[:12]:
            if isinstance(entry, dict) and isinstance(entry.get("question"), str):
                entry["question"] = h() + " " + entry["question"]
    poison_json(art / "answers.json", answers)
    write_manifest(art)  # re-hashed: the store's checksum cannot catch this
    manifest = json.loads((art / "manifest.json").read_text())
    for entry in list(manifest["artifacts"].values())[:5]:
        entry["timestamp"] = h()
    (art / "manifest.json").write_text(json.dumps(manifest))
    return art


class Tags(html.parser.HTMLParser):
    """Every element and attribute of a page, as a browser's parser builds them."""

    def __init__(self):
        super().__init__()
        self.bad = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.bad.append(f"<{tag} {name}={value!r}>")
        if tag in ("img", "script", "a") and any(MARK in (v or "") for _, v in attrs):
            self.bad.append(f"<{tag} {attrs}>")

    def handle_data(self, data):
        pass


@pytest.fixture(scope="module")
def poisoned_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("poisoned")
    art = poisoned_tree(root / "artifacts")
    b = build(art, root / "site")
    assert b.returncode == 0, b.output[-3000:]
    return b


@pytest.mark.slow  # one full site build
def test_hostile_strings_are_text_in_the_html(poisoned_site):
    pages = poisoned_site.pages()
    shown = 0
    for path, page in pages.items():
        parser = Tags()
        parser.feed(page)
        assert parser.bad == [], (path, parser.bad[:3])
        assert f"window.{MARK}=1</script>" not in page, path
        shown += page.count(MARK)
    assert shown > 20  # the payloads are on the pages, as text


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_strings_run_nothing_in_chromium(poisoned_site):
    from tests.test_browser import why_no_browser
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    import http.server
    import threading
    import functools
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(poisoned_site.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update"])
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for path in sorted(poisoned_site.pages()):
                url = f"http://127.0.0.1:{server.server_address[1]}/{path}"
                page.goto(url)
                page.wait_for_load_state("load")
                found = page.evaluate(f"""() => ({{
                    ran: window.{MARK} === 1,
                    handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                    jslinks: [...document.querySelectorAll('a[href]')].filter(a => a.href.startsWith('javascript:')).length,
                    text: document.body.innerText.includes('{MARK}')}})""")
                assert not found["ran"] and found["handlers"] == 0 and found["jslinks"] == 0, (path, found)
            assert dialogs == []
            browser.close()
    finally:
        server.shutdown()
