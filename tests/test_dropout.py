"""CS182 5(c), the dropout experiment: design, reading runs back, the summary against scipy, the
generated conclusion, and the committed artifacts against the ablation's identical runs."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from pipeline import dropout as DO
from pipeline.errors import UserError
from pipeline.model import DROPOUT_P, get_variant, spec_name

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "cs182" / "dropout"
CONFIG = "cfg000000000"


def test_design_is_every_p_times_every_seed():
    runs = DO.design(3)
    assert len(runs) == len(DO.P_VALUES) * 3
    assert {r["dropout"] for r in runs} == set(DO.P_VALUES)
    assert all(r["preprocess"] == "normalize" and r["batch_norm"] for r in runs)


@pytest.mark.parametrize("values, message", [(["0", "1"], r"in \[0, 1\)"), (["x"], "not a number"),
                                             (["0.5", "0.50"], "given twice"), ([], "at least one")])
def test_bad_probabilities_are_one_line_errors(values, message):
    with pytest.raises(UserError, match=message):
        DO.check_p_values(values)


def test_one_seed_is_refused_before_training():
    with pytest.raises(UserError, match="at least 2"):
        DO.design(1)


def test_variant_names_of_each_p_and_the_homeworks_p_is_the_ablation_cell():
    assert DO.variant_of(0.5) == "normalize+bn+dropout" == spec_name("normalize", True, True)
    assert DO.variant_of(0.0) == "normalize+bn"
    assert DO.variant_of(0.25) == "normalize+bn+dropout0.25"
    assert get_variant("normalize+bn+dropout0.75").dropout == 0.75
    assert get_variant("normalize+bn+dropout").dropout == DROPOUT_P
    with pytest.raises(UserError, match="spelt 'normalize\\+bn\\+dropout'"):
        get_variant("normalize+bn+dropout0.5")
    for bad in ("normalize+dropout1", "normalize+dropoutx", "normalize+dropout0"):
        with pytest.raises(UserError, match="unknown variant"):
            get_variant(bad)


def _result(p, seed, train=(0.5, 0.7), val=(0.45, 0.6), test=0.6, epochs=2):
    log = [{"epoch": e + 1, "train_accuracy": train[e] - 0.05, "train_eval_accuracy": train[e],
            "val_accuracy": val[e], "test_accuracy": test, "train_loss": 1.0, "train_eval_loss": 0.9,
            "val_loss": 1.1} for e in range(epochs)]
    return {"dropout": p, "seed": seed, "test_accuracy": test, "final_val_accuracy": val[-1],
            "final_train_accuracy": train[-1] - 0.05, "best_val_accuracy": max(val),
            "best_val_epoch": 2, "test_loss": 1.0, "final_train_loss": 1.0, "epochs": epochs,
            "train_seconds": 1.0, "images_per_second": 10.0, "device": "cpu", "threads": 1, "log": log}


def test_run_rows_gap_is_eval_mode_train_minus_validation():
    run, curves = DO.run_rows(_result(0.25, 1), CONFIG)
    assert run["gap"] == pytest.approx(0.7 - 0.6)
    assert run["final_train_eval_accuracy"] == 0.7 and run["config"] == CONFIG
    assert [c["epoch"] for c in curves] == [1, 2] and all(c["p"] == 0.25 for c in curves)


def _as_strings(rows, columns):
    return [{k: str(r[k]) for k in columns} for r in rows]


def test_read_rows_keeps_complete_runs_of_this_config_only():
    runs, curves = [], []
    for p, seed in [(0.0, 0), (0.25, 0), (0.5, 0)]:
        r, c = DO.run_rows(_result(p, seed), CONFIG)
        runs.append(r)
        curves += c
    runs[1]["config"] = "other"                      # another config: redo
    curves = [c for c in curves if not (c["p"] == 0.5 and c["epoch"] == 2)]  # truncated curve: redo
    got_runs, got_curves = DO.read_rows(_as_strings(runs, DO.RUN_COLUMNS),
                                        _as_strings(curves, DO.CURVE_COLUMNS), CONFIG, epochs=2)
    assert [(r["p"], r["seed"]) for r in got_runs] == [(0.0, 0)]
    assert len(got_curves) == 2 and got_runs[0]["test_accuracy"] == 0.6


def test_summary_matches_scipy_and_is_paired_against_p0():
    rng = np.random.default_rng(0)
    runs = []
    for p in (0.0, 0.5):
        for seed in range(4):
            tr, va = 0.8 - 0.1 * p + rng.normal(0, .01), 0.6 + rng.normal(0, .01)
            runs.append(DO.run_rows(_result(p, seed, train=(0.5, tr), val=(0.4, va),
                                            test=0.6 + 0.02 * p + rng.normal(0, .01)), CONFIG)[0])
    s = {row["p"]: row for row in DO.summarise(runs)}
    gaps = [r["gap"] for r in runs if r["p"] == 0.5]
    lo, hi = st.t.interval(0.95, len(gaps) - 1, loc=np.mean(gaps), scale=st.sem(gaps))
    assert (s[0.5]["gap_ci_low"], s[0.5]["gap_ci_high"]) == pytest.approx((lo, hi))
    a = [r["test_accuracy"] for r in runs if r["p"] == 0.5]
    b = [r["test_accuracy"] for r in runs if r["p"] == 0.0]
    assert s[0.5]["test_vs_p0"] == pytest.approx(np.mean(a) - np.mean(b))
    assert s[0.5]["test_vs_p0_p"] == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert "test_vs_p0" not in s[0.0]


def _summary(gaps, tests, train=None):
    train = train or [0.8] * len(gaps)
    return [{"p": p, "n": 3, "gap": g, "train_eval_accuracy": tr, "val_accuracy": tr - g,
             "test_accuracy": t} for p, g, t, tr in zip(DO.P_VALUES, gaps, tests, train)]


def test_conclusion_follows_the_numbers():
    shrinking = DO.conclusion(_summary([0.10, 0.08, 0.05, 0.02], [0.60, 0.62, 0.63, 0.61]))
    assert "shrinks at every step" in shrinking[1] and "p = 0.5" in shrinking[2]
    flat = DO.conclusion(_summary([0.05, 0.06, 0.07, 0.08], [0.6] * 4))
    assert "does not shrink" in flat[1]
    under = DO.conclusion(_summary([0.10, 0.08, 0.05, 0.02], [0.60, 0.62, 0.63, 0.55],
                                   train=[0.8, 0.78, 0.75, 0.65]))   # val at p = .75: 0.63 < 0.70
    assert "underfits" in under[-1]
    past = DO.conclusion(_summary([0.20, 0.15, 0.10, 0.06], [0.60, 0.62, 0.63, 0.62],
                                  train=[0.85, 0.80, 0.78, 0.72]))   # val .65 .65 .68 .66
    assert "stops paying" in past[-1] and "p = 0.5" in past[-1] and "underfits" not in " ".join(past)


def test_summary_needs_two_seeds_per_p():
    with pytest.raises(UserError, match="at least 2 seeds"):
        DO.summarise([DO.run_rows(_result(0.0, 0), CONFIG)[0]])


# --- the committed artifacts ------------------------------------------------------------------

def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_repeat_of_ablation_pairs_the_same_cells_by_seed():
    runs = [DO.run_rows(_result(p, seed, test=0.6 + 0.01 * seed + p / 100), CONFIG)[0]
            for p in (0.0, 0.25, 0.5) for seed in range(2)]
    ablation = [{"preprocess": "normalize", "batch_norm": "True", "dropout": str(do), "augment": "False",
                 "seed": str(seed), "test_accuracy": str(0.6 + 0.01 * seed + (0.007 if do else 0))}
                for do in (False, True) for seed in range(2)]
    ablation.append({**ablation[0], "preprocess": "rescale", "test_accuracy": "0.1"})  # another cell
    found = DO.repeat_of_ablation(runs, ablation)
    assert found["n"] == 4 and found["identical"] == 2           # p = 0 equal, p = 0.5 off by 0.002
    assert found["max_abs_diff"] == pytest.approx(0.002) and found["mean_diff"] == pytest.approx(-0.001)
    assert DO.repeat_of_ablation(runs, []) is None


def test_committed_repeat_of_ablation_is_recomputed_from_both_files():
    runs = [{**r, "p": float(r["p"]), "seed": int(r["seed"]), "test_accuracy": float(r["test_accuracy"])}
            for r in _read(OUT / "runs.csv")]
    want = DO.repeat_of_ablation(runs, _read(ROOT / "artifacts" / "ablation" / "runs.csv"))
    got = json.loads((OUT / "summary.json").read_text())["repeat_of_ablation"]
    assert got["n"] == want["n"] >= 6
    assert got["max_abs_diff"] == pytest.approx(want["max_abs_diff"])


def test_committed_summary_is_recomputed_from_runs():
    runs = [{**r, "p": float(r["p"]), "seed": int(r["seed"]),
             **{k: float(r[k]) for k in ("gap", "test_accuracy", "final_val_accuracy",
                                         "final_train_eval_accuracy")}} for r in _read(OUT / "runs.csv")]
    curves = _read(OUT / "curves.csv")
    for r in runs:  # the gap is the last epoch's eval-mode train minus validation accuracy
        last = max((c for c in curves if float(c["p"]) == r["p"] and int(c["seed"]) == r["seed"]),
                   key=lambda c: int(c["epoch"]))
        assert r["gap"] == pytest.approx(float(last["train_eval_accuracy"]) - float(last["val_accuracy"]))
    for got, want in zip(_read(OUT / "summary.csv"), DO.summarise(runs)):
        assert float(got["gap"]) == pytest.approx(want["gap"])
        assert float(got["test_accuracy"]) == pytest.approx(want["test_accuracy"])
