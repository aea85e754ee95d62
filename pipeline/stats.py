"""Statistics of repeated runs: means with t confidence intervals, paired comparisons, and the
effects of a full factorial design.

Plain functions of plain lists; the tests check them against scipy.stats and against an
ordinary-least-squares fit done a different way (numpy.linalg.lstsq on a coded design matrix).

Why t intervals: with 3 to 5 seeds per configuration the sample standard deviation is itself
uncertain, and the normal 1.96 would give intervals that are too narrow (t with 2 degrees of
freedom is 4.30).
"""
import itertools
import math

import numpy as np
from scipy import stats as st

LEVEL = 0.95  # every interval in the report is a 95% interval


def t_crit(df: int, level: float = LEVEL) -> float:
    """The two-sided critical value of Student's t with df degrees of freedom."""
    return float(st.t.ppf(0.5 + level / 2, df))


def mean_ci(values, level: float = LEVEL) -> dict:
    """Mean, sample standard deviation (ddof 1) and the t confidence interval of the mean.

    values: (n,) numbers, n >= 2. Returns {n, mean, std, sem, ci_low, ci_high, df}.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {x.size}")
    n, mean, std = x.size, float(x.mean()), float(x.std(ddof=1))
    sem = std / math.sqrt(n)
    half = t_crit(n - 1, level) * sem
    return {"n": n, "mean": mean, "std": std, "sem": sem, "ci_low": mean - half,
            "ci_high": mean + half, "df": n - 1}


def paired(a, b, level: float = LEVEL) -> dict:
    """Paired comparison of a and b (same seeds, so the same data order and split): the mean of
    the differences a - b, its t interval, the t statistic and its two-sided p value.

    a, b: (n,) numbers, paired by position. Returns mean_ci of the differences plus {t, p}.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"paired values need equal lengths, got {np.shape(a)} and {np.shape(b)}")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    out = mean_ci(d, level)
    if out["std"] == 0:
        t, p = (math.inf if out["mean"] else math.nan), (0.0 if out["mean"] else 1.0)
    else:
        t = out["mean"] / out["sem"]
        p = float(2 * st.t.sf(abs(t), out["df"]))
    return {**out, "t": t, "p": p}


# --- full factorial design ---------------------------------------------------------------------

def cell_values(rows: list[dict], factors: dict, response: str):
    """Yield (index, cell, values) for every combination of the factors' levels, in the factors'
    order: index is the tuple of level positions, cell {factor: level}, values the responses of
    the rows in that cell."""
    for idx in itertools.product(*(range(len(v)) for v in factors.values())):
        cell = {f: levels[i] for (f, levels), i in zip(factors.items(), idx)}
        yield idx, cell, [r[response] for r in rows if all(r[f] == v for f, v in cell.items())]


def cell_stats(rows: list[dict], factors: dict, response: str) -> list[dict]:
    """Per-cell mean_ci, min and max of `response` for every combination of the factors' levels.

    rows: dicts holding each factor and the response; factors: name -> tuple of levels.
    Returns one dict per cell, in the factors' order: {factor: level, ..., n, mean, std, ...}.
    """
    out = []
    for _, cell, values in cell_values(rows, factors, response):
        summary = (mean_ci(values) if len(values) >= 2 else
                   {"n": len(values), "mean": float(np.mean(values)) if values else math.nan})
        extremes = {"min": min(values), "max": max(values)} if values else {}
        out.append({**cell, **summary, **extremes})
    return out


def _cells(rows, factors, response):
    """Cell means (array shaped by the levels), cell counts, pooled residual variance and its df."""
    shape = tuple(len(v) for v in factors.values())
    means, counts, ss, n = np.zeros(shape), np.zeros(shape, dtype=int), 0.0, 0
    for idx, cell, values in cell_values(rows, factors, response):
        y = np.array(values, float)
        if y.size < 2:
            raise ValueError(f"cell {cell} has {y.size} run(s); the effects need at least 2 per cell")
        means[idx], counts[idx] = y.mean(), y.size
        ss += float(((y - y.mean()) ** 2).sum())
        n += y.size
    df = n - means.size
    return means, counts, ss / df, df


def contrast(means, counts, weights, s2: float, df: int, level: float = LEVEL) -> dict:
    """A linear contrast sum(w * cell mean) of a factorial design, with the standard error from
    the pooled within-cell variance s2 (df = runs - cells): se^2 = s2 * sum(w^2 / n_cell).

    Returns {estimate, std_error, ci_low, ci_high, df, t, p}.
    """
    w = np.asarray(weights, dtype=np.float64)
    est = float((w * means).sum())
    se = math.sqrt(s2 * float((w ** 2 / counts).sum()))
    half = t_crit(df, level) * se
    t = est / se if se > 0 else math.inf
    p = float(2 * st.t.sf(abs(t), df)) if se > 0 else 0.0
    return {"estimate": est, "std_error": se, "ci_low": est - half, "ci_high": est + half,
            "df": df, "t": t, "p": p}


def _average_over(shape, axis_weights: dict) -> np.ndarray:
    """Cell weights of a contrast: a weight vector on some factors' axes (index -> vector),
    averaged uniformly over the other factors' levels."""
    w = np.ones(shape)
    for axis, size in enumerate(shape):
        v = np.asarray(axis_weights[axis], float) if axis in axis_weights else np.full(size, 1 / size)
        w = w * v.reshape([size if a == axis else 1 for a in range(len(shape))])
    return w


def factorial_effects(rows: list[dict], factors: dict, response: str, baseline: dict | None = None,
                      level: float = LEVEL) -> list[dict]:
    """Main effects and two-way interactions of a full factorial design.

    A factor's main effect is (mean over the cells at a level) - (mean at its baseline level),
    averaged over every other factor's levels, one row per non-baseline level (a 3-level factor
    has two). The interaction of A and B is how much A's effect changes when B moves from its
    baseline to another level: (A effect at B=b) - (A effect at B=baseline), each such
    difference of differences one row. Intervals use the pooled within-cell variance (ANOVA's
    residual mean square), so every cell needs at least 2 runs.

    rows: dicts with each factor's level and the response; factors: name -> levels (the first
    is the baseline unless `baseline` names another). Returns dicts {effect, factor_a, level_a,
    factor_b, level_b, estimate, std_error, ci_low, ci_high, df, t, p, n_runs}.
    """
    baseline = {f: (baseline or {}).get(f, levels[0]) for f, levels in factors.items()}
    means, counts, s2, df = _cells(rows, factors, response)
    shape, names = means.shape, list(factors)

    def step(f, level):  # +1 at `level`, -1 at the baseline of factor f
        lv = factors[f]
        return np.array([(x == level) - (x == baseline[f]) for x in lv], float)

    out = []
    for i, f in enumerate(names):
        for level_ in factors[f]:
            if level_ == baseline[f]:
                continue
            w = _average_over(shape, {i: step(f, level_)})
            out.append({"effect": f"{f}: {level_} vs {baseline[f]}", "factor_a": f, "level_a": level_,
                        "factor_b": "", "level_b": "", **contrast(means, counts, w, s2, df, level),
                        "n_runs": int(counts.sum())})
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        for la in factors[a]:
            for lb in factors[b]:
                if la == baseline[a] or lb == baseline[b]:
                    continue
                w = _average_over(shape, {i: step(a, la), j: step(b, lb)})
                out.append({"effect": f"{a} x {b}: ({la} vs {baseline[a]}) x ({lb} vs {baseline[b]})",
                            "factor_a": a, "level_a": la, "factor_b": b, "level_b": lb,
                            **contrast(means, counts, w, s2, df, level), "n_runs": int(counts.sum())})
    return out
