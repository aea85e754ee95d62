"""The answers' figures and pages: built from answers.json alone, every referenced id and figure
exists, the Markdown renders what the JSON holds, and each page notebook executes without error
(fast enough for mkdocs-jupyter's build) against artifacts laid out as the repository has them.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import jupytext
import pytest
import torch
from matplotlib.figure import Figure
from nbclient import NotebookClient

from pipeline.answers import compute_all
from pipeline.answers import questions, render
from pipeline.answers.figures import figures
from pipeline.store import StoreError

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs" / "answers").glob("*.py"))
PAGE_SECONDS = 10  # the brief's limit per page in the site build
OTHER_ARTIFACTS = ("lenet/summary.csv", "lenet/seed_runs.csv", "ablation/runs.csv", "cs182/dropout/runs.csv",
                   "cs182/dropout/summary.json", "own_cnn/metrics.json", "data/dataset.json", "cs182/filters.json")


@pytest.fixture(scope="module")
def answers() -> dict:
    n = torch.get_num_threads()
    try:
        return compute_all()
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def site(tmp_path_factory, answers) -> Path:
    """A mirror of the repository layout: mkdocs.yml, artifacts/answers.json and figures, and
    the pipeline package (linked), as `invoke answers` would leave them."""
    root = tmp_path_factory.mktemp("site")
    (root / "mkdocs.yml").write_text("site_name: test\n")
    (root / "pipeline").symlink_to(REPO / "pipeline", target_is_directory=True)
    (root / "artifacts" / "answers").mkdir(parents=True)
    for rel in OTHER_ARTIFACTS:  # what the homework pages' question tables cite besides answers.json
        (root / "artifacts" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "artifacts" / rel, root / "artifacts" / rel)
    (root / "artifacts" / "answers.json").write_text(json.dumps(answers, allow_nan=False))
    for name, fig in figures(answers).items():
        fig.savefig(root / "artifacts" / "answers" / f"{name}.png", dpi=60)
    write_manifest(root / "artifacts")
    return root


def write_manifest(folder: Path):
    """manifest.json listing every file under `folder` with its sha256, as the store records them."""
    entries = {p.relative_to(folder).as_posix(): {"task": "answers", "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
               for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps({"artifacts": entries, "tasks": {}}))


def test_figures_are_built_from_the_answers_dict(answers, tmp_path):
    figs = figures(json.loads(json.dumps(answers)))  # exactly what answers.json holds
    assert set(figs) == {"conv_sliding_window", "conv_matrix_A", "bn_distributions", "bn_running_stats",
                         "receptive_field", "fir_1d"}
    for name, fig in figs.items():
        assert isinstance(fig, Figure) and fig.axes, name
        fig.savefig(tmp_path / f"{name}.png", dpi=40)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert not list(Path.cwd().glob("*.png"))  # building figures wrote nothing


def page_ids(text: str) -> set[str]:
    """The answers.json ids a page shows: named directly (demonstrations, tables) or through the
    questions it solves (pipeline/answers/questions.py)."""
    ids = set(re.findall(r'"((?:csce421|coms573|cs182)\.[A-Za-z0-9_.]+)"', text))
    hw = re.search(r'AnswerPage\(root, "(\w+)"\)', text)
    for label in re.findall(r'page\.solve\("([^"]+)"', text):
        ids |= set(next(q.keys for q in questions.of(hw.group(1)) if q.label == label))
    return ids


def test_every_id_and_figure_a_page_names_exists(answers):
    figure_names = set(figures(answers))
    for page in PAGES:
        text = page.read_text()
        ids = page_ids(text)
        assert ids or "errata" in page.name, page.name
        assert ids <= set(answers), (page.name, ids - set(answers))
        assert set(re.findall(r'page\.figure\("(\w+)"', text)) <= figure_names, page.name
    keys = {k for q in questions.QUESTIONS for k in q.keys}
    assert keys <= set(answers), keys - set(answers)


def test_every_answer_is_shown_on_some_page(answers):
    shown = set()
    for page in PAGES:
        shown |= page_ids(page.read_text())
    assert set(answers) - {"errata"} <= shown, set(answers) - {"errata"} - shown


# Names that contain digits (courses, seeds, file names); anything else with two digits or a
# decimal point in a page's prose would be a number typed by hand.
NAMES_WITH_DIGITS = re.compile(r"CSCE-421|COM S 573|CS182|HW\d|CIFAR-10|[Ss]eed \d{3}|\d{3}\)|1x1|[\w/]+\.py"
                               r"|^# #+ \d\.\d|id=\"q[\w-]+\"|#q[\w-]+|\b3\.2 means|\b(?:cs182|csce421|coms573)\b")  # labels, links


def test_pages_type_no_numbers():
    """Page prose (Markdown cells) carries no results: numbers come from answers.json."""
    for page in PAGES:
        for line in page.read_text().splitlines():
            if line.startswith("# ") and not line.startswith("# %%"):
                assert not re.search(r"\d{2,}|\d\.\d", NAMES_WITH_DIGITS.sub("", line)), (page.name, line)


def test_solution_markdown_reads_as_a_worked_solution(answers):
    """Each sub-part: the question once, the answer in its box, the check and the machine names
    (ids) only inside the collapsed block, and an assumption in full only the first time."""
    seen = {}
    for q in questions.QUESTIONS:
        if not q.keys:
            continue
        md = render.solution_md([(k, answers[k]) for k in q.keys], seen, (), q.anchor)
        assert md.count("> **Question.**") == 1, q.label
        assert md.count('<div class="answer"') == len(q.keys), q.label
        body, _, check = md.partition('<details class="check">')
        assert "DOES NOT AGREE" not in check and "agrees" in check
        for k in q.keys:
            assert k not in body and f"`{k}`" in check, (q.label, k)
    # every assumption text was stated once in full, the first time
    assumptions = {a["assumption"] for a in answers.values() if isinstance(a, dict) and a.get("assumption")}
    assert set(seen) == assumptions
    A = render.solution_md([("coms573.q3.A", answers["coms573.q3.A"])], {}, (), "q3a")
    assert r"\begin{bmatrix}" in A and "w_{1}^{21}" in A
    again = {}
    first = render.solution_md([("csce421.q2.shortcut", answers["csce421.q2.shortcut"])], again, (), "q2-1")
    later = render.solution_md([("csce421.q2.params", answers["csce421.q2.params"])], again, (), "q2-2")
    assert "a given was lost" in first and "a given was lost" not in later and "(#q2-1)" in later


def test_a_failed_check_shows_on_the_reading_path(answers):
    bad = json.loads(json.dumps(answers["csce421.q1.params"]))
    bad["check_result"]["agrees"] = False
    md = render.solution_md([("csce421.q1.params", bad)], {}, (), "q1-2")
    assert "Independent check: DOES NOT AGREE" in md


def test_escape_keeps_math_and_protects_emphasis():
    assert render.escape("w2^11*x12 and z_hat $a_1 * b$") == r"w2^11\*x12 and z\_hat $a_1 * b$"


def test_missing_unrecorded_or_changed_artifacts_fail_loudly(tmp_path, monkeypatch):
    """The pages read through the store: each failure is one StoreError naming the command."""
    monkeypatch.delenv("LENET_ARTIFACTS", raising=False)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    (tmp_path / "docs").mkdir()
    assert render.repo_root(tmp_path / "docs") == tmp_path
    with pytest.raises(StoreError, match=r"answers\.json is missing; run `invoke answers`"):
        render.load_answers(tmp_path)
    with pytest.raises(StoreError, match=r"conv_matrix_A\.png is missing; run `invoke answers`"):
        render.figure_path(tmp_path, "conv_matrix_A")
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "answers.json").write_text("{}")
    with pytest.raises(StoreError, match="not recorded in .*manifest.json; run `invoke answers`"):
        render.load_answers(tmp_path)
    write_manifest(folder)
    assert render.load_answers(tmp_path) == {}
    (folder / "answers.json").write_text('{"changed": 1}')
    with pytest.raises(StoreError, match="sha256 differs"):
        render.load_answers(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_notebook_executes(site, page):
    nb = jupytext.read(page)
    start = time.perf_counter()
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(site)}}).execute()
    assert time.perf_counter() - start < PAGE_SECONDS
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    markdown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert markdown and "DOES NOT AGREE" not in markdown
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    n = page.read_text().count("page.figure(")
    assert html.count('<figure class="report-figure">') == n
    assert [int(x) for x in re.findall(r"<strong>Figure (\d+)\.</strong>", html)] == list(range(1, n + 1))
    assert html.count('alt="') == n and 'alt=""' not in html
