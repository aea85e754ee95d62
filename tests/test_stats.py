"""pipeline.stats against independent computations: scipy.stats for the t intervals and the paired
test, and an ordinary least-squares fit (numpy.linalg.lstsq on a coded design matrix) for the
factorial effects and their standard errors."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as st

from pipeline import stats

FACTORS = {"preprocess": ("rescale", "normalize", "per_channel"), "batch_norm": (False, True),
           "dropout": (False, True)}


def test_mean_ci_matches_scipy():
    x = [0.61, 0.63, 0.62, 0.65, 0.60]
    out = stats.mean_ci(x)
    lo, hi = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert out["mean"] == pytest.approx(np.mean(x))
    assert out["std"] == pytest.approx(np.std(x, ddof=1))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((lo, hi))
    assert out["df"] == 4


def test_t_critical_value_by_hand():
    # Tabulated two-sided 95% values of Student's t.
    assert stats.t_crit(2) == pytest.approx(4.303, abs=1e-3)
    assert stats.t_crit(4) == pytest.approx(2.776, abs=1e-3)
    assert stats.t_crit(24) == pytest.approx(2.064, abs=1e-3)


def test_mean_ci_needs_two_values():
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_ci([0.5])


def test_paired_matches_scipy_ttest_rel():
    a = [0.640, 0.628, 0.651, 0.633, 0.645]
    b = [0.610, 0.612, 0.620, 0.601, 0.618]
    out = stats.paired(a, b)
    ref = st.ttest_rel(a, b)
    assert out["t"] == pytest.approx(ref.statistic)
    assert out["p"] == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert out["mean"] == pytest.approx(np.mean(np.subtract(a, b)))


def test_paired_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired([1, 2, 3], [1, 2])


def fake_runs(seeds=3, seed=0, effects=None):
    """Rows of a full factorial with known effects plus noise."""
    effects = effects or {"bn": 0.08, "do": -0.01, "norm": 0.03, "pc": 0.035, "bn_norm": -0.05}
    rng = np.random.default_rng(seed)
    rows = []
    for p, bn, do in itertools.product(*FACTORS.values()):
        mu = 0.55 + effects["bn"] * bn + effects["do"] * do + effects["norm"] * (p == "normalize") \
            + effects["pc"] * (p == "per_channel") + effects["bn_norm"] * bn * (p == "normalize")
        for s in range(seeds):
            rows.append({"preprocess": p, "batch_norm": bn, "dropout": do, "seed": s,
                         "test_accuracy": float(mu + rng.normal(0, 0.005))})
    return rows


def ols_contrast(rows, weights_fn):
    """The same contrast by least squares: a cell-means model fitted with lstsq, then the contrast
    vector applied to the coefficients; the standard error from sigma^2 c' (X'X)^-1 c."""
    cells = list(itertools.product(*FACTORS.values()))
    X = np.array([[float((r["preprocess"], r["batch_norm"], r["dropout"]) == c) for c in cells] for r in rows])
    y = np.array([r["test_accuracy"] for r in rows])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    df = len(y) - len(cells)
    s2 = resid @ resid / df
    c = np.array([weights_fn(*cell) for cell in cells])
    est = c @ beta
    se = math.sqrt(s2 * c @ np.linalg.inv(X.T @ X) @ c)
    return est, se, df


def by_name(effects, name):
    return next(e for e in effects if e["effect"] == name)


def test_main_effects_match_least_squares():
    rows = fake_runs()
    effects = stats.factorial_effects(rows, FACTORS, "test_accuracy")
    # BN: mean over the 6 BN-on cells minus mean over the 6 BN-off cells.
    est, se, df = ols_contrast(rows, lambda p, bn, do: (1 if bn else -1) / 6)
    e = by_name(effects, "batch_norm: True vs False")
    assert e["estimate"] == pytest.approx(est) and e["std_error"] == pytest.approx(se) and e["df"] == df == 24
    half = st.t.ppf(0.975, df) * se
    assert (e["ci_low"], e["ci_high"]) == pytest.approx((est - half, est + half))
    assert e["p"] == pytest.approx(2 * st.t.sf(abs(est / se), df))
    # A 3-level factor: normalize vs rescale, averaged over the 4 BN x dropout cells.
    est, se, _ = ols_contrast(rows, lambda p, bn, do: ((p == "normalize") - (p == "rescale")) / 4)
    e = by_name(effects, "preprocess: normalize vs rescale")
    assert e["estimate"] == pytest.approx(est) and e["std_error"] == pytest.approx(se)


def test_interaction_is_a_difference_of_differences():
    rows = fake_runs()
    effects = stats.factorial_effects(rows, FACTORS, "test_accuracy")
    e = by_name(effects, "preprocess x batch_norm: (normalize vs rescale) x (True vs False)")
    means = {}
    for r in rows:
        means.setdefault((r["preprocess"], r["batch_norm"]), []).append(r["test_accuracy"])
    m = {k: np.mean(v) for k, v in means.items()}
    by_hand = (m[("normalize", True)] - m[("rescale", True)]) - (m[("normalize", False)] - m[("rescale", False)])
    assert e["estimate"] == pytest.approx(by_hand)
    est, se, _ = ols_contrast(rows, lambda p, bn, do: ((p == "normalize") - (p == "rescale")) * (1 if bn else -1) / 2)
    assert e["std_error"] == pytest.approx(se)


def test_effects_recover_the_planted_ones():
    rows = fake_runs(seeds=5, seed=3)
    effects = stats.factorial_effects(rows, FACTORS, "test_accuracy")
    bn = by_name(effects, "batch_norm: True vs False")
    # planted: +0.08 everywhere, -0.05 more at normalize (1 of 3 levels) -> 0.08 - 0.05 / 3
    assert bn["ci_low"] < 0.08 - 0.05 / 3 < bn["ci_high"]
    inter = by_name(effects, "batch_norm x dropout: (True vs False) x (True vs False)")
    assert inter["ci_low"] < 0 < inter["ci_high"]  # none planted
    names = [e["effect"] for e in effects]
    assert len(names) == 4 + 5  # 2 + 1 + 1 main-effect rows; 2 + 2 + 1 interaction rows


def test_effects_need_two_runs_per_cell():
    rows = fake_runs(seeds=1)
    with pytest.raises(ValueError, match="at least 2 per cell"):
        stats.factorial_effects(rows, FACTORS, "test_accuracy")


def test_cell_stats():
    rows = fake_runs(seeds=3)
    cells = stats.cell_stats(rows, FACTORS, "test_accuracy")
    assert len(cells) == 12 and all(c["n"] == 3 for c in cells)
    first = [r["test_accuracy"] for r in rows if (r["preprocess"], r["batch_norm"], r["dropout"]) == ("rescale", False, False)]
    assert cells[0]["mean"] == pytest.approx(np.mean(first))
