"""The errata (pipeline/answers/slips.py) and their page (pipeline/answers/errata_page.py).

Every slip is decided by a computation that can fail: fed what the text prints, its check says
so. Each entry quotes its text, links to the affected answer by the anchor rule the answer pages
use, and the page renders (through nbconvert's own Markdown renderer) a summary table whose rows
link to the sections below and to the answers, with every value from answers.json shown as text.
A few slips are decided again here by a second, independent computation.
"""
from __future__ import annotations

import html.parser
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from pipeline.answers import errata_page, single_thread, slips

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED_FILES = {"seed 002": "002_a4ecf2d2404f0d81.txt", "seed 000": "000_a60cf687703bbf88.txt"}
FIELDS = {"id", "source", "where", "says", "right", "kind", "check", "check_result", "answer",
          "title", "explanation"}
# A verbatim piece of each slip as the seed prints it: the entry must quote it.
PRINTED_PIECE = {
    "coms573-1b-input-width": "$(63-3+2)/2+1 = 32$",
    "coms573-1c-memory": "in the second stage it increases to 50 percent",
    "coms573-2c-running-variance": "population mean i.e mean of $\\mu_1, \\mu_2, \\dots, \\mu_n$",
    "coms573-2c-not-gaussian": "transform the minibatches to gaussian (0,1)",
    "coms573-2d-mean-only": "does not effect the performance because we consider the population mean",
    "coms573-3a-output-labels": "y_{12} \\\\ y_{13} \\\\ y_{14}",
    "coms573-3c-padding": "zero padding of 2 ($2-3+2 \\times 2 = 4$)",
    "coms573-3c-second-kernel": "w_1^{21} & w_2^{21} & w_3^{21} \\\\ w_1^{22} & w_2^{22} & w_3^{22}",
    "csce421-1-image-depth": "single image of size: 15×15×15",
    "csce421-1-review-label": "Output size = 3 * 3 * 3 * 28 + 28",
    "csce421-3-2-symbol": "\\bar{Z}=",
    "csce421-3-3-batch-of-one": "You cannot calculate a variance for a single number!",
    "csce421-4-2-per-image": "axis=(0, 2, 3), keepdims=True",
    "csce421-4-2-range": "from integers in [0,255) to floats in [0,1)",
}
COLUMNS = 5  # source, where (+ the answer link), as printed, correct, decided by
HOSTILE = '<img src=x onerror="alert(1)"> [x](javascript:alert(1)) *em* a | b `c` &amp; \\ _u_'


@pytest.fixture(scope="module")
def entries():
    with single_thread():
        return slips.errata()


@pytest.fixture(scope="module")
def notes():
    return slips.extraction_notes()


def rendered(md: str) -> str:
    """The HTML nbconvert makes of a display(Markdown(...)) output, as the site build does."""
    return markdown2html_mistune(md)


class Page(html.parser.HTMLParser):
    """Ids, links, table rows (as lists of cell texts) and suspicious elements of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.hrefs, self.rows, self.bad, self._cell = [], [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("img", "script") or any(k.startswith("on") for k in a) or \
                (a.get("href") or "").lower().startswith("javascript:"):
            self.bad.append((tag, attrs))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


# --- the entries -------------------------------------------------------------------------------

def test_entries_are_complete_with_stable_unique_anchor_ids(entries):
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids) == len(slips.SLIPS)
    assert set(ids) == set(slips.PRINTED) == set(PRINTED_PIECE)
    for e in entries:
        assert FIELDS <= set(e), (e["id"], FIELDS - set(e))
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e["id"]), e["id"]
        assert e["kind"] in slips.KINDS, e["id"]
        assert e["check_result"]["agrees"] is True, (e["id"], e["check_result"])
    assert json.loads(json.dumps(entries, allow_nan=False)) == entries


@pytest.mark.parametrize("label, anchor", [("1(b)", "q1b"), ("3(c)", "q3c"), ("3.2", "q3-2"),
                                           ("2(d) i", "q2d-i"), ("1.1", "q1-1"), ("4.2", "q4-2")])
def test_anchor_rule(label, anchor):
    assert slips.anchor(label) == anchor


def test_answer_field_points_at_the_question_label(entries):
    """answer = "<page>#q<label>", the page being the homework the source text belongs to."""
    for e in entries:
        page = "coms573" if e["source"].startswith("COM S 573") else "csce421"
        label = e["where"].lower().replace("(", "").replace(")", "")
        assert e["answer"] == f"{page}#q" + re.sub(r"[. ]", "-", label), e["id"]


def test_every_answer_anchor_is_a_question_of_the_site(entries, notes):
    """The answer pages put an anchor at each question of pipeline/answers/questions.py."""
    questions = pytest.importorskip("pipeline.answers.questions")
    anchors = {f"{q.homework}#{q.anchor}" for hw in questions.HOMEWORKS for q in questions.of(hw)}
    for e in entries + notes:
        assert e["answer"] in anchors, (e.get("id", e["printed"]), e["answer"])


def test_every_check_can_fail():
    """Fed what the text prints, each check disagrees; fed our correction, it agrees."""
    with single_thread():
        for f in slips.SLIPS:
            good = f()
            bad = f(slips.PRINTED[good["id"]])
            assert good["check_result"]["agrees"] is True, good["id"]
            assert bad["check_result"]["agrees"] is False, (good["id"], bad["check_result"])
            assert {k: v for k, v in bad.items() if k != "check_result"} == \
                   {k: v for k, v in good.items() if k != "check_result"}  # the verdict alone moves


def test_memory_check_fails_on_either_reading_of_the_printed_claim():
    """"increases to 50 percent": to 50 % of the input, or by 50 % (150 %): both are refuted."""
    for printed in (50.0, 150.0):
        assert slips.coms573_1c_memory(printed)["check_result"]["agrees"] is False


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the homework texts (../shared/seeds) are not here")
def test_each_entry_quotes_its_text(entries):
    texts = {k: " ".join((SEEDS / f).read_text().split()) for k, f in SEED_FILES.items()}
    for e in entries:
        seed = texts["seed 002" if "seed 002" in e["source"] else "seed 000"]
        piece = " ".join(PRINTED_PIECE[e["id"]].split())
        assert piece in seed, (e["id"], "not in the seed")
        assert piece in " ".join(e["says"].split()), (e["id"], "not quoted")


def test_extraction_damage_is_a_note_not_an_entry(entries, notes):
    assert notes and all(n["check_result"]["agrees"] is True for n in notes)
    for n in notes:
        assert {"source", "where", "answer", "printed", "reading", "why", "check_result"} <= set(n)
        assert all(n["printed"] not in e["says"] for e in entries), n["printed"]
    # the beta sign, the lost minus signs and the lost square root are notes
    printed = " ".join(n["printed"] for n in notes)
    assert "β=(0,10,10)" in printed and "σ2=[1 5 5]" in printed and "[5,5,5,5]" in printed


def test_answers_json_carries_the_entries_and_notes(entries, notes):
    """What the page reads is what the code computes (else: rerun `invoke answers`)."""
    stored = json.loads((Path(__file__).resolve().parents[1] / "artifacts" / "answers.json").read_text())
    assert stored["errata"]["value"] == entries and stored["errata"]["extraction"] == notes
    assert stored["errata"]["check_result"] == {"agrees": True, "count": len(entries)}


# --- independent computations ------------------------------------------------------------------

def test_stage_two_doubles_the_memory():
    x = torch.zeros(1, 256, 32, 32, device="meta")
    y = torch.nn.Conv2d(256, 512, 3, padding=1, device="meta")(x)
    e = slips.coms573_1c_memory()
    assert e["check_result"]["stage_output_over_input_percent"][1] == 100 * y.numel() / x.numel()


def test_normalising_keeps_the_shape_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(1).gamma(2.0, size=5000)
    z = (x - x.mean()) / x.std()
    assert abs(z.mean()) < 1e-12 and abs(z.var() - 1) < 1e-12
    assert abs(scipy_stats.skew(z) - scipy_stats.skew(x)) < 1e-12 and scipy_stats.skew(z) > 1
    assert scipy_stats.normaltest(z).pvalue < 1e-6   # far from Gaussian


def test_a_fixed_mean_alone_leaves_outputs_depending_on_the_batch():
    """torch's own layer in train mode normalises by batch statistics; swapping in only the running
    mean still changes an example's output with its batch, eval mode does not."""
    g = torch.Generator().manual_seed(3)
    bn = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    for _ in range(20):
        bn(torch.randn(16, 4, dtype=torch.float64, generator=g) * 2 + 1)
    bn.eval()
    x = torch.randn(8, 4, dtype=torch.float64, generator=g)
    with torch.no_grad():
        assert torch.equal(bn(x)[:1], bn(x[:1]))
        mean_only = [(x[:n] - bn.running_mean) / torch.sqrt(x[:n].var(0, unbiased=False) + bn.eps)
                     for n in (2, 8)]
    assert not torch.allclose(mean_only[0][0], mean_only[1][0])


def test_output_labels_follow_torch_flattening():
    """Y~ stacks the rows of Y (channel by channel): row r of A X~ is Y.flatten()[r]."""
    g = torch.Generator().manual_seed(7)
    w = torch.randn(2, 2, 3, dtype=torch.float64, generator=g)
    x = torch.randn(1, 2, 4, dtype=torch.float64, generator=g)
    y = F.conv1d(x, w)[0]
    jac = torch.autograd.functional.jacobian(lambda v: F.conv1d(v.view(1, 2, 4), w).flatten(), x.flatten())
    torch.testing.assert_close(jac @ x.flatten(), y.flatten())
    labels = [f"y{c + 1}{l + 1}" for c in range(y.shape[0]) for l in range(y.shape[1])]
    assert labels == slips.coms573_3a_output_labels()["check_result"]["row_is_output"]


def test_rescaled_uint8_reaches_one():
    assert (torch.arange(256, dtype=torch.uint8).double() / 255.0).max().item() == 1.0


# --- the page ----------------------------------------------------------------------------------

def test_summary_rows_link_to_their_sections_and_answers(entries):
    table = Page(rendered(errata_page.summary_md(entries)))
    body = Page(rendered(errata_page.entries_md(entries)))
    assert len(table.rows) == len(entries) + 1 and all(len(r) == COLUMNS for r in table.rows)
    assert table.rows[0] == ["Source", "Where", "As printed", "Correct", "Decided by"]
    assert errata_page.SUMMARY in table.ids
    for e in entries:
        assert f"#{e['id']}" in table.hrefs and e["id"] in body.ids, e["id"]
        page, frag = e["answer"].split("#")
        assert f"../{page}/#{frag}" in table.hrefs and f"../{page}/#{frag}" in body.hrefs
    assert body.hrefs.count(f"#{errata_page.SUMMARY}") == len(entries)
    assert table.bad == body.bad == []


def test_sections_show_the_reading_path_and_hide_the_numbers(entries):
    md = errata_page.entries_md(entries)
    out = rendered(md)
    assert md.count("\n### ") + md.startswith("### ") == len(entries)
    assert out.count("<details>") == len(entries) and out.count("<summary>") == len(entries)
    for e in entries:
        section = errata_page.entry_md(e)
        head = section.split("<details>")[0]
        assert f"({e['id']})" not in head.replace(f'id="{e["id"]}"', "")  # ids only as anchors
        assert "check_result" not in section and "{'" not in section
    assert "The computation confirms the correction." in md and "does not confirm" not in md


def test_a_failed_check_shows_on_the_page(entries):
    bad = json.loads(json.dumps(entries[0]))
    bad["check_result"]["agrees"] = False
    assert "does not confirm" in errata_page.entry_md(bad)
    assert "NOT confirmed" in errata_page.summary_md([bad])


def test_every_value_is_escaped():
    e = {k: HOSTILE for k in ("source", "where", "says", "right", "check", "kind", "title", "explanation")}
    e.update(id="x-1", answer="csce421#q3-2", check_result={"agrees": True, HOSTILE: HOSTILE})
    for md in (errata_page.summary_md([e]), errata_page.entry_md(e)):
        page = Page(rendered(md))
        assert page.bad == [], page.bad
        assert not [h for h in page.hrefs if h.startswith("javascript")]
    table = Page(rendered(errata_page.summary_md([e])))
    assert all(len(r) == COLUMNS for r in table.rows)           # the "|" stayed inside its cell
    assert "a | b" in table.rows[1][0] and "<img" in table.rows[1][0]  # shown as text


def test_maths_with_a_pipe_stays_in_its_cell():
    e = {"id": "x", "answer": "coms573#q1b", "source": "s", "where": "1(b)", "says": "$|x| = 1$",
         "right": "$\\|A\\|$", "check": "c", "check_result": {"agrees": True}}
    rows = Page(rendered(errata_page.summary_md([e]))).rows
    assert all(len(r) == COLUMNS for r in rows)


@pytest.mark.parametrize("field, value", [("id", "x y"), ("id", 'a"><script>'), ("answer", "csce421#q1\"x"),
                                          ("answer", "javascript:alert(1)#q1"), ("answer", "other#q1")])
def test_malformed_ids_and_anchors_raise(entries, field, value):
    e = {**entries[0], field: value}
    with pytest.raises(ValueError):
        errata_page.summary_md([e])


def test_answer_href_and_links_for_an_answer_page(entries):
    assert errata_page.answer_href("csce421#q3-2") == "../csce421/#q3-2"
    assert errata_page.answer_href("cs182#q2d-i") == "../cs182/#q2d-i"
    links = Page(rendered(errata_page.links_md(entries, "coms573#q3c")))
    assert sorted(links.hrefs) == sorted(f"../errata/#{e['id']}" for e in entries if e["answer"] == "coms573#q3c")
    assert len(links.hrefs) == 2 and errata_page.links_md(entries, "cs182#q1a") == ""


def test_extraction_note_renders_one_linked_bullet_each(notes):
    out = Page(rendered(errata_page.extraction_md(notes)))
    assert len(out.hrefs) == len(notes) and all(h.startswith("../csce421/#q") for h in out.hrefs)
    assert out.bad == []
