"""Citations and take-aways (issue 13): every cited table has its CSV, its .tex with the page's own
numbers and a "Cite this table" block whose BibTeX parses; the report's entries (@misc, @software)
and the references parse with bibtexparser and have complete fields; the URL placeholder is one
warning line in the build and a one-line refusal of `invoke deploy`.

The slow test builds the site once from the fake artifacts tree of tests/test_site.py (the real
artifacts are never read) and reads the built files; the others are unit tests.
"""
from __future__ import annotations

import hashlib
import html as htmllib
import re
import subprocess
from pathlib import Path

import bibtexparser
import pytest
from invoke import MockContext
from invoke.exceptions import Exit

import tasks
from pipeline import citation as citations
from pipeline.tables import Table, md_to_latex, to_latex
from tests.test_site import build, write_fake_artifacts

ROOT = Path(__file__).resolve().parents[1]
# The tables issue 13 names, by the page that shows each: every one must carry a table block.
CITED = {"index.html": {"summary_table", "seeds_table"},
         "lenet/results/index.html": {"summary_table", "seeds_table", "per_class_table"},
         "ablation/index.html": {"ablation_cells", "ablation_effects"},
         "cs182/dropout/index.html": {"dropout_table"},
         "questions/index.html": {"question_index"}}
REQUIRED_FIELDS = ("author", "title", "year")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def parse_bibtex(text: str) -> list[dict]:
    parser = bibtexparser.bparser.BibTexParser(common_strings=True)
    parser.ignore_nonstandard_types = False  # @software is biblatex's, not classic BibTeX's
    return bibtexparser.loads(text, parser=parser).entries


def assert_complete(entry: dict) -> None:
    missing = [f for f in REQUIRED_FIELDS if not entry.get(f, "").strip()]
    assert not missing, f"{entry.get('ID')} lacks {missing}"
    assert entry.get("url") or "\\url{" in entry.get("howpublished", ""), f"{entry.get('ID')} has no URL"
    assert re.fullmatch(r"\d{4}", entry["year"]), entry


def numbers(text: str) -> list[str]:
    """The numbers of a cell, signs normalised: what the page and the .tex must share."""
    text = text.replace("$-$", "-").replace("\u2212", "-").replace("\\%", "%")
    return NUMBER.findall(text)


def html_cells(row: str) -> list[str]:
    cells = re.findall(r"<t[hd]\b[^>]*>(.*?)</t[hd]>", row, flags=re.S)
    # Maths as its TeX source (the annotation hooks/maths.py keeps in the MathML), as the .tex has it.
    cells = [re.sub(r"<math\b.*?<annotation encoding=\"application/x-tex\">(.*?)</annotation>.*?</math>",
                    r" $\1$ ", c, flags=re.S) for c in cells]
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def page_table(html: str, anchor: str) -> list[list[str]]:
    """The rows (header first) of the table right after the anchor div."""
    start = html.index(f'id="{anchor}"')
    body = html[start:html.index("</table>", start)]
    return [html_cells(r) for r in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def tex_table(tex: str) -> list[list[str]]:
    """The rows (header first) of a booktabs tabular, cells split on the & outside maths."""
    lines = tex.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0].replace("\\midrule\n", "").splitlines()
    return [split_row(line.rstrip().removesuffix("\\\\")) for line in lines]


def split_row(line: str) -> list[str]:
    cells, cell, maths = [], "", False
    for token in re.findall(r"\\.|.", line):  # an escaped character (\& \$ \\) is one token
        if token in ("$", "\\(", "\\)"):
            maths = token == "\\(" or (token == "$" and not maths)
        if token == "&" and not maths:
            cells, cell = [*cells, cell.strip()], ""
        else:
            cell += token
    return [*cells, cell.strip()]


# ------------------------------------------------------------------------------------------ unit tests

def test_a_cell_keeps_its_characters_and_changes_only_its_markup():
    assert md_to_latex("**63.6%** (11)") == r"\textbf{63.6\%} (11)"
    assert md_to_latex('<abbr title="code name: lenet_plain">Model 2: plain</abbr>') == "Model 2: plain"
    assert md_to_latex("`load_data` &#36;5 &#95;x") == r"\texttt{load\_data} \$5 \_x"  # entities are text
    assert md_to_latex(r"$15 \times 15$ and \(a_b\)") == r"$15 \times 15$ and \(a_b\)"  # maths stays maths
    assert md_to_latex("[4.1](answers/csce421.py#q-4-1) − 1 & 2 | 3") == r"4.1 $-$ 1 \& 2 \textbar{} 3"


def test_the_tex_is_booktabs_with_the_same_cells_and_alignment():
    t = Table(["", "**a**"], [["x", "1,234 (5%)"], ["y", "−0.52 pp"]], "lr")
    assert t == "|  | **a** |\n| --- | ---: |\n| x | 1,234 (5%) |\n| y | −0.52 pp |"  # the Markdown as before
    tex = to_latex(t, ["from artifacts/x.csv"])
    assert tex.startswith("% from artifacts/x.csv\n\\begin{tabular}{lr}\n\\toprule\n")
    assert "\\midrule" in tex and tex.rstrip().endswith("\\bottomrule\n\\end{tabular}")
    assert tex_table(tex) == [["", r"\textbf{a}"], ["x", r"1,234 (5\%)"], ["y", "$-$0.52 pp"]]
    assert [numbers(c) for row in tex_table(tex) for c in row][3] == ["1,234", "5"]
    assert Table.from_markdown(t).rows == t.rows and Table.from_markdown(t).align == "lr"


def test_the_report_entries_parse_and_name_every_commit_of_the_numbers():
    info = {"title": "A report: 94% on CIFAR_10", "authors": [("The x contributors", True), ("Ada Lovelace", False)],
            "url": "https://someone.github.io/lenet-cifar10/", "commit": "0123abcd4567", "year": "2026", "key": "lenetcifar10"}
    misc, software, plain = citations.report_entries(info, [("a" * 40, True), ("b" * 40, False)])
    (m,), (s,) = parse_bibtex(misc), parse_bibtex(software)
    assert m["ENTRYTYPE"] == "misc" and s["ENTRYTYPE"] == "software"
    for e in (m, s):
        assert_complete(e)
        assert e["title"] == r"A report: 94\% on CIFAR\_10" and e["author"] == "{The x contributors} and Ada Lovelace"
        assert "aaaaaaaaaaaa (with uncommitted changes), bbbbbbbbbbbb" in e["note"] and "0123abcd4567" in e["note"]
    assert m["howpublished"] == r"\url{https://someone.github.io/lenet-cifar10/}" and "url" not in m
    assert s["url"] == info["url"] and s["version"] == "0123abcd4567"
    assert "\n" not in plain and info["url"] in plain


def test_the_references_parse_are_complete_and_are_cited_where_used():
    entries = parse_bibtex("\n\n".join(r.bibtex() for r in citations.REFERENCES))
    assert [e["ID"] for e in entries] == [r.key for r in citations.REFERENCES]
    for e in entries:
        assert_complete(e)
    kinds = {e["ID"]: e["ENTRYTYPE"] for e in entries}
    assert kinds["krizhevsky2009cifar"] == "techreport" and kinds["lecun1998lenet"] == "article"
    pages = {p: p.read_text() for p in (ROOT / "docs").rglob("*.md")}
    linked = {k for text in pages.values() for k in re.findall(r"references\.md#([\w-]+)", text)}
    assert linked == {r.key for r in citations.REFERENCES}  # every one cited where used, no dangling link
    nav = (ROOT / "mkdocs.yml").read_text()
    assert nav.index("- Errata:") < nav.index("- References: references.md")


def test_the_placeholder_url_is_one_warning_line():
    assert citations.is_placeholder("https://example.github.io/lenet-cifar10/")
    assert not citations.is_placeholder("https://someone.github.io/lenet-cifar10/")
    warning = citations.placeholder_warning("https://example.github.io/lenet-cifar10/")
    assert warning.startswith("warning: ") and "\n" not in warning


def _clean_git(args, **kwargs):
    out = {"rev-parse": "0123abcd" * 5 + "\n", "status": ""}.get(args[1], "") if args[0] == "git" else ""
    if "gh-deploy" in args:
        raise AssertionError("deploy published a placeholder URL")
    if args[:2] == ["git", "log"]:  # no gh-pages branch yet
        return subprocess.CompletedProcess(args, 128, "", "")
    return subprocess.CompletedProcess(args, 0, out, "")


def test_deploy_refuses_the_placeholder_url_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(tasks, "_run", _clean_git)
    monkeypatch.setattr(citations, "site_url", lambda project=None: "https://example.github.io/lenet-cifar10/")
    with pytest.raises(Exit) as e:
        tasks.deploy(MockContext())
    message = str(e.value.message)
    assert e.value.code == 1 and message.startswith("error: ") and "placeholder" in message and "\n" not in message
    tasks.deploy(MockContext(), dry_run=True)  # a dry run says so and runs nothing
    assert "deploy: note: the site URL is the placeholder" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ the built site

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("cite")
    b = build(write_fake_artifacts(root / "artifacts"), root / "site")
    assert b.returncode == 0, b.output
    return b


@pytest.mark.slow  # a full site build: 30-60 s
def test_every_cited_table_has_its_csv_tex_and_cite_block(site):
    pages = site.pages()
    url = citations.site_url()
    blocks = 0
    for path, html in pages.items():
        names = re.findall(r'<div class="table-anchor" id="table-([\w-]+)"></div>', html)
        assert {n.replace("-", "_") for n in names} >= CITED.get(path, set()), path
        for name in names:
            anchor = f"table-{name}"
            after = html[html.index(f'id="{anchor}"'):]
            after = after[after.index("</table>"):]
            block = after[:after.index("</details>")]
            links = dict((href.rsplit(".", 1)[-1], href) for _, href in re.findall(r'<a download="([^"]+)" href="([^"]+)"', block))
            assert set(links) >= {"csv", "tex"}, (path, name)
            files = {kind: (site.site / path).parent / href for kind, href in links.items()}
            assert all(f.is_file() for f in files.values()), (path, name, files)
            # The .tex holds the page's table: same shape, same numbers in every cell.
            shown, tex = page_table(html, anchor), tex_table(files["tex"].read_text())
            assert len(tex) == len(shown) and all(len(a) == len(b) for a, b in zip(tex, shown)), (path, name)
            for page_row, tex_row in zip(shown, tex):
                assert [numbers(c) for c in page_row] == [numbers(c) for c in tex_row], (path, name, page_row, tex_row)
            # The cite block: sha256 of the CSV shown, BibTeX that parses and points at the anchor.
            assert "Cite this table" in block
            bib = htmllib.unescape(re.sub(r"<[^>]+>", "", re.search(
                r'class="language-bibtex highlight"><pre>(.*?)</pre>', block, flags=re.S).group(1)))
            (entry,) = parse_bibtex(bib)
            assert_complete(entry)
            page_url = f"{url}{path.removesuffix('index.html')}#{anchor}"
            assert entry["howpublished"] == f"\\url{{{page_url}}}" and "commit" in entry["note"], entry
            csv_sha = hashlib.sha256(files["csv"].read_bytes()).hexdigest()
            assert csv_sha[:12] in block, (path, name)
            blocks += 1
    assert blocks == sum(map(len, CITED.values()))


@pytest.mark.slow
def test_the_tex_agrees_with_the_artifact(site):
    """The summary's test accuracies, from the fake CSV, in the .tex as the page rounds them."""
    tex = (site.site / "assets/tables/lenet/results/summary_table.tex").read_text()
    assert "\\textbf{65.9\\%}" in tex and "\\textbf{61.8\\%}" in tex and "\\begin{tabular}{lrr}" in tex
    per_class = (site.site / "assets/tables/lenet/results/per_class_table.tex").read_text()
    assert len(tex_table(per_class)) == 11  # the header and ten classes


@pytest.mark.slow
def test_the_site_says_placeholder_once_and_offers_the_references_and_the_weights(site):
    assert sum("placeholder" in line for line in site.output.splitlines()) == 1
    pages = site.pages()
    refs = pages["references/index.html"]
    bib = [htmllib.unescape(re.sub(r"<[^>]+>", "", b))
           for b in re.findall(r'class="language-bibtex highlight"><pre>(.*?)</pre>', refs, flags=re.S)]
    assert len(bib) == len(citations.REFERENCES)
    for text, ref in zip(bib, citations.REFERENCES):
        (entry,) = parse_bibtex(text)
        assert entry["ID"] == ref.key and f'id="{ref.key}"' in refs
        assert_complete(entry)
    assert len(parse_bibtex((site.site / "assets/references.bib").read_text())) == len(citations.REFERENCES)
    home = pages["index.html"]
    home_bib = [htmllib.unescape(re.sub(r"<[^>]+>", "", b)) for b in re.findall(
        r'class="language-bibtex highlight"><pre>(.*?)</pre>', home.split('id="how-to-cite"', 1)[1], flags=re.S)]
    assert [e["ENTRYTYPE"] for b in home_bib for e in parse_bibtex(b)] == ["misc", "software"]
    for page in ("lenet/results/index.html", "lenet/training/index.html"):
        for v in ("lenet_bn_dropout", "lenet_plain"):
            for name in ("weights.pt", "predictions.csv"):
                href = f"assets/artifacts/lenet/{v}/{name}"
                f = site.site / href
                assert href in pages[page] and f.is_file(), (page, href)
                assert hashlib.sha256(f.read_bytes()).hexdigest() in pages[page], (page, href)
