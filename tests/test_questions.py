"""The question index covers the three homeworks: every question and sub-part found in the homework
texts themselves (../shared/seeds/, parsed here, independently of pipeline/answers/questions.py) is
in the index, with a final answer and a link to an anchor that its homework page defines.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import jupytext
import pytest

from pipeline.answers import questions
from pipeline.store import Store

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason="the homework texts (../shared/seeds/) are not beside the repository")


# --- the homework texts, parsed ----------------------------------------------------------------------

def csce421_labels(text: str) -> list[str]:
    """CSCE-421 HW3 (seed 000): "Question N" headings with "Part K" (questions 3, 4; question 4's
    heading is "4. LeNet ...") or numbered parts "1. Skip connection" (question 2). The worked
    walkthrough repeats nothing above the "Review (Answers)" section, which ends the questions."""
    text = text.split("\nReview (Answers)")[0]
    labels, current, parts = [], None, []

    def close():
        if current is not None:
            labels.extend([f"{current}.{p}" for p in parts] or [current])

    for line in text.splitlines():
        line = line.strip()
        m = re.fullmatch(r"Question (\d)", line) or re.fullmatch(r"(\d)\. LeNet for Image Recognition", line)
        if m:
            close()
            current, parts = m.group(1), []
            continue
        # "Part 1" on its own line, or "## Part 3 Describe ..." where the extraction kept Markdown
        found = re.findall(r"(?:^|## )Part (\d)\b", line) or re.findall(
            r"^(\d)\. (?:Skip connection|Number of trainable parameters)$", line)
        for k in found:
            if current is not None and k not in parts:
                parts.append(k)
    close()
    return labels


def coms573_labels(text: str) -> list[str]:
    """COM S 573 HW5 (seed 002): questions "N. (P points)", sub-parts "(a) (P points)"."""
    labels, current = [], None
    for line in text.splitlines():
        m = re.match(r"\s*(\d)\. \(\d+ points\)", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"\s*(?:- )?\(([a-z])\) \(\d+ points\)", line)
        if m and current:
            labels.append(f"{current}({m.group(1)})")
    return labels


def cs182_labels(text: str) -> list[str]:
    """CS182 HW3 (seed 004): numbered section titles; sub-parts "(a)" ... where a sentence starts
    (the extraction runs some into the previous line); 2(d)'s cases "i." and "ii."."""
    titles = ("Normalization Layers", "Understanding Convolution", "Feature Dimensions", "Coding Question: Desigining",
              "Coding Question: Batchnorm", "Homework Process")
    bounds = [(n, text.index(f"{n}. {t}")) for n, t in enumerate(titles, 1)]
    labels = []
    for (n, start), end in zip(bounds, [b for _, b in bounds[1:]] + [len(text)]):
        section = text[start:end]
        for part in dict.fromkeys(re.findall(r"(?:^|[\s:.])\(([a-f])\) (?=[A-Z\d(])", section, flags=re.M)):
            if n == 2 and part == "d":
                labels += [f"2(d) {c}" for c in re.findall(r"\b(i{1,3})\. stride", section)]
            else:
                labels.append(f"{n}({part})")
        if n == 6 and not any(l.startswith("6(") for l in labels):
            labels.append("6")
    return labels


PARSERS = {"csce421": ("000_a60cf687703bbf88.txt", csce421_labels),
           "coms573": ("002_a4ecf2d2404f0d81.txt", coms573_labels),
           "cs182": ("004_e055e1080bc6fdde.txt", cs182_labels)}


def from_texts() -> dict[str, list[str]]:
    return {hw: parse((SEEDS / name).read_text(encoding="utf-8")) for hw, (name, parse) in PARSERS.items()}


@needs_seeds
def test_parsers_find_every_question_of_the_texts():
    """The parsers read what the homeworks print: a plausible count per homework and question
    numbers that run without gaps (so a parser that finds nothing cannot pass the next test)."""
    found = from_texts()
    assert found["csce421"] == ["1.1", "1.2", "2.1", "2.2", "3.1", "3.2", "3.3", "3.4", "4.1", "4.2", "4.3", "4.4"]
    assert found["coms573"] == ["1(a)", "1(b)", "1(c)", "2(a)", "2(b)", "2(c)", "2(d)", "3(a)", "3(b)", "3(c)", "4(a)"]
    assert len(found["cs182"]) == 22 and "2(d) ii" in found["cs182"] and "6(c)" in found["cs182"]
    for labels in found.values():
        numbers = sorted({int(l[0]) for l in labels})
        assert numbers == list(range(1, numbers[-1] + 1))


@needs_seeds
def test_every_question_of_the_texts_is_in_the_index_and_nothing_else():
    found = from_texts()
    for hw, labels in found.items():
        assert [q.label for q in questions.of(hw)] == labels, hw


def built_ids() -> dict[str, set[str]]:
    """The anchors each homework page defines: the `<a id>` of its Markdown cells."""
    out = {}
    for hw, (_, _, _, path) in questions.HOMEWORKS.items():
        nb = jupytext.read(REPO / "docs" / path)
        src = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        out[hw] = set(re.findall(r'<a id="([^"]+)"></a>', src))
    return out


def test_every_index_link_points_at_an_anchor_its_page_defines():
    ids = built_ids()
    for q in questions.QUESTIONS:
        assert q.anchor in ids[q.homework], (q.homework, q.label)
    assert sum(len(v) for v in ids.values()) == len(questions.QUESTIONS)  # no anchor without a question


def test_every_question_has_a_final_answer_from_the_artifacts():
    answers, artifacts = questions.gather(Store())
    rows = questions.rows(answers, artifacts)
    assert len(rows) == len(questions.QUESTIONS)
    for r in rows:
        assert r["answer"].strip() and r["final_answer"].strip(), r["label"]
        assert r["answer"].count("$") % 2 == 0, r
    table = questions.table_md(rows)
    assert table.count("\n") == len(rows) + 1
    parsed = list(csv.DictReader(io.StringIO(questions.to_csv(rows, "https://x.example/site/"))))
    assert [p["label"] for p in parsed] == [q.label for q in questions.QUESTIONS]
    assert parsed[0]["url"] == "https://x.example/site/answers/csce421/#q1-1"


def test_final_answers_are_the_stored_values():
    """Spot checks against the artifacts directly: the index shows what answers.json and
    summary.csv hold, not a copy."""
    s = Store()
    answers, artifacts = questions.gather(s)
    rows = {(r["homework"], r["label"]): r for r in questions.rows(answers, artifacts)}
    assert f"{answers['csce421.q1.params']['value']}" in rows[("CSCE-421 HW3", "1.2")]["final_answer"]
    assert f"{answers['csce421.q2.params']['value']:,}" in rows[("CSCE-421 HW3", "2.2")]["final_answer"]
    acc = {r["variant"]: float(r["test_accuracy"]) for r in s.read_csv("lenet/summary.csv")}
    assert f"{100 * acc['lenet_plain']:.2f}%" in rows[("COM S 573 HW5", "4(a)")]["final_answer"]
    assert f"{100 * acc['lenet_bn_dropout']:.2f}%" in rows[("CSCE-421 HW3", "4.4")]["final_answer"]


@pytest.mark.parametrize("label,anchor", [("3(e)", "q3e"), ("2(d) i", "q2d-i"), ("3.2", "q3-2"), ("1", "q1")])
def test_anchor(label, anchor):
    assert questions.anchor(label) == anchor
