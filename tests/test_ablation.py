"""The ablation's design, the validation of runs.csv, the generated conclusion, the seeds summary,
and the batch-wise augmentation and variant specs it trains."""
import csv
import io

import pytest
import torch
import torch.nn.functional as F
from scipy import stats as st

from pipeline import ablation as AB
from pipeline.errors import UserError
from pipeline.model import VARIANTS, get_variant, spec_name
from pipeline.train import augment_batch

CONFIG = "abc123def456"


def test_design_is_the_full_factorial_plus_augmented_homework_models():
    runs = AB.design(3)
    assert len(runs) == 3 * 2 * 2 * 3 + 2 * 3
    assert len({AB.key_of(r) for r in runs}) == len(runs)
    augmented = {(r["preprocess"], r["batch_norm"], r["dropout"]) for r in runs if r["augment"]}
    assert augmented == {("normalize", True, True), ("rescale", False, False)}
    assert len(AB.design(2, augment=False)) == 24


@pytest.mark.parametrize("seeds", [0, -1])
def test_design_rejects_a_seed_count_below_one(seeds):
    with pytest.raises(UserError, match="--seeds must be at least 1"):
        AB.design(seeds)


def test_unknown_factor_values_are_user_errors():
    with pytest.raises(UserError, match="unknown preprocess value 'whiten'"):
        AB.check_factor_values({"preprocess": ("rescale", "whiten")})
    with pytest.raises(UserError, match="unknown factor 'weight_decay'"):
        AB.check_factor_values({"weight_decay": (0, 1)})


def test_homework_cells_are_the_named_variants():
    for name, (p, bn, do) in AB.HOMEWORK.items():
        v, spec = VARIANTS[name], get_variant(spec_name(p, bn, do))
        assert (spec.preprocess, spec.batch_norm, spec.dropout) == (v.preprocess, v.batch_norm, v.dropout)


@pytest.mark.parametrize("name", ["rescale+augment+bn", "whiten+bn", "rescale+bn+bn", "rescale+", "lenet"])
def test_bad_variant_specs_are_user_errors(name):
    with pytest.raises(UserError, match="unknown variant"):
        get_variant(name)


def test_spec_variants_round_trip():
    v = get_variant("per_channel+bn+dropout+augment")
    assert (v.preprocess, v.batch_norm, v.dropout, v.augment) == ("per_channel", True, 0.5, True)
    assert spec_name("per_channel", True, True, True) == "per_channel+bn+dropout+augment"


# --- runs.csv ------------------------------------------------------------------------------

def good_row(**over):
    row = {"preprocess": "rescale", "batch_norm": "False", "dropout": "True", "seed": "1",
           "test_accuracy": "0.6", "best_val_accuracy": "0.61", "train_seconds": "120.5",
           "augment": "False", "epochs": "20", "best_val_epoch": "18", "final_val_accuracy": "0.6",
           "final_train_accuracy": "0.7", "final_train_loss": "0.8", "test_loss": "1.1",
           "images_per_second": "7000", "params": "62006", "device": "cpu (1 threads)", "threads": "1",
           "config": CONFIG}
    return {**row, **over}


def parse(rows, header=AB.RUN_COLUMNS):
    """Rows through a real CSV round trip, as tasks.py reads runs.csv."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(c, "") for c in header] if isinstance(r, dict) else r)
    reader = csv.DictReader(io.StringIO(buf.getvalue()))
    return AB.read_runs(reader.fieldnames, list(reader), CONFIG)


def test_good_rows_are_typed():
    rows, problems = parse([good_row(), good_row(seed="2")])
    assert problems == []
    assert rows[0]["batch_norm"] is False and rows[0]["dropout"] is True and rows[0]["seed"] == 1
    assert rows[0]["test_accuracy"] == 0.6


@pytest.mark.parametrize("bad, message", [
    ({"preprocess": "whiten"}, "unknown preprocess"),
    ({"batch_norm": "yes"}, "batch_norm is 'yes'"),
    ({"test_accuracy": "61.2"}, "not a fraction"),
    ({"test_accuracy": "nan"}, "not a fraction"),
    ({"train_seconds": "-3"}, "not a finite non-negative"),
    ({"seed": "x"}, "invalid literal"),
    ({"seed": "-1"}, "negative seed"),
    ({"config": "0ther"}, "other settings"),
])
def test_a_bad_row_is_reported_with_its_line_and_dropped(bad, message):
    rows, problems = parse([good_row(), {**good_row(seed="2"), **bad}, good_row(seed="3")])
    assert [r["seed"] for r in rows] == [1, 3]
    assert len(problems) == 1 and problems[0].startswith("line 3: ") and message in problems[0]
    assert "redone" in problems[0]


def test_a_truncated_row_and_a_duplicate_are_reported():
    row = good_row()
    rows, problems = parse([row, [row[c] for c in AB.RUN_COLUMNS][:5], row])
    assert len(rows) == 1
    assert problems[0].startswith("line 3: wrong number of fields")
    assert problems[1].startswith("line 4: a second row")


def test_a_foreign_header_rejects_every_row():
    rows, problems = parse([good_row()], header=("variant", *AB.RUN_COLUMNS[1:]))
    assert rows == [] and problems[0].startswith("line 1: the header")


# --- the analysis -----------------------------------------------------------------------------

def fake_rows(seeds=3, bn=0.08, aug=0.01):
    rows = []
    for s in AB.design(seeds):
        acc = 0.55 + bn * s["batch_norm"] + 0.002 * s["seed"] + aug * s["augment"] \
            + 0.001 * ((s["seed"] * 7 + s["batch_norm"] + 2 * s["dropout"]) % 3)
        rows.append({**s, "test_accuracy": acc})
    return rows


def test_analyse_uses_only_the_design_and_pairs_augmentation_by_seed():
    rows = fake_rows() + [{**fake_rows()[0], "seed": 9}]  # a seed outside the design stays out
    found = AB.analyse(rows, seeds=3)
    assert len(found["used"]) == len(AB.design(3))
    assert len(found["cells"]) == 12 + 2
    aug = found["augmentation"]["lenet_plain"]
    assert aug["n"] == 3 and aug["mean"] == pytest.approx(0.01)
    assert aug["with"] - aug["without"] == pytest.approx(0.01)
    assert aug["gap"] == pytest.approx(AB.PUBLISHED["lenet_plain"] - aug["without"])
    assert aug["closed"] == pytest.approx(0.01 / aug["gap"])


def test_conclusion_follows_the_numbers():
    strong = AB.analyse(fake_rows(bn=0.08), seeds=3)["conclusion"]
    assert strong[0].startswith("Batch-norm changes test accuracy by +8.0 pp") and "a clear effect" in strong[0]
    none = AB.analyse(fake_rows(bn=0.0), seeds=3)["conclusion"]
    bn_line = next(line for line in none if line.startswith("Batch-norm"))
    assert "not distinguishable from zero" in bn_line
    assert strong != none


def test_conclusion_says_when_augmentation_more_than_closes_the_gap():
    rows = fake_rows(aug=0.2)
    line = next(l for l in AB.analyse(rows, seeds=3)["conclusion"] if "lenet_plain" in l)
    assert "more than closes" in line


def test_gap_closed():
    assert AB.gap_closed(0.64, 0.60, 0.70)["closed"] == pytest.approx(0.4)
    assert AB.gap_closed(0.72, 0.71, 0.70)["closed"] is None  # no gap left to close


def test_seeds_summary_against_scipy():
    rows = [{"variant": v, "seed": str(s), "test_accuracy": str(acc)}
            for v, accs in {"lenet_bn_dropout": [0.64, 0.63, 0.65, 0.62, 0.64],
                            "lenet_plain": [0.61, 0.60, 0.62, 0.61, 0.60]}.items()
            for s, acc in enumerate(accs)]
    out = AB.seeds_summary(rows, ["lenet_bn_dropout", "lenet_plain"])
    ref = st.ttest_rel([0.64, 0.63, 0.65, 0.62, 0.64], [0.61, 0.60, 0.62, 0.61, 0.60])
    assert out["paired"]["p"] == pytest.approx(ref.pvalue)
    assert out["variants"]["lenet_plain"]["mean"] == pytest.approx(0.608)
    assert out["variants"]["lenet_bn_dropout"]["seeds"] == [0, 1, 2, 3, 4]


# --- augmentation -----------------------------------------------------------------------------

def test_augment_batch_equals_per_image_crop_and_flip():
    x = torch.randn(32, 3, 32, 32)
    out = augment_batch(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, in the documented order
    dy, dx = torch.randint(0, 9, (2, 32), generator=g)
    flip = torch.rand(32, generator=g) < 0.5
    for i in range(32):
        crop = F.pad(x[i], (4, 4, 4, 4))[:, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)
    assert 0 < int(flip.sum()) < 32  # both branches were exercised


def test_augment_batch_keeps_the_centre_crop_possible():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    outs = [augment_batch(x, torch.Generator().manual_seed(s), pad=1) for s in range(200)]
    assert any(torch.equal(o[0], x[0]) for o in outs)  # no shift, no flip happens
    assert any(torch.equal(o[0], x[0].flip(-1)) for o in outs)
