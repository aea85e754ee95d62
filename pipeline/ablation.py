"""The ablation: which of the homework's three changes (input preprocessing, batch-norm,
dropout) moves LeNet's test accuracy, and by how much, measured over seeds.

The homework compares model 1 (normalized inputs + BN + dropout) with model 2 (rescaled inputs,
neither): three changes at once. The full factorial design below trains every combination,
3 preprocessing modes x BN {off, on} x dropout {off, on}, with several seeds each, so each
factor's main effect and each pair's interaction can be estimated with an interval
(pipeline.stats.factorial_effects). Two extra cells add data augmentation to the homework's
two models. Plain functions here; the runs themselves are pipeline.sweep's.
"""
import itertools
import math

from pipeline.contract import ABLATION_RUN_COLUMNS as RUN_COLUMNS  # the contract owns the headers
from pipeline.contract import CELL_COLUMNS, EFFECT_COLUMNS, SEEDS_COLUMNS  # noqa: F401 (re-exported)
from pipeline.errors import UserError
from pipeline.model import VARIANTS
from pipeline.preprocess import MODES
from pipeline import stats
from pipeline.contract import PUBLISHED, PUBLISHED_SOURCE  # in the contract: the site reads them without torch
from pipeline.sweep import spec

FACTORS = {"preprocess": MODES, "batch_norm": (False, True), "dropout": (False, True)}
# The homework's two models as cells of the design; each also gets an augmented cell.
HOMEWORK = {name: (v.preprocess, v.batch_norm, v.dropout > 0) for name, v in VARIANTS.items()}
RESPONSE = "test_accuracy"  # what the ablation compares


def check_factor_values(values: dict) -> dict:
    """Factor levels a user asked for, checked against FACTORS; unknown ones are a UserError."""
    for factor, levels in values.items():
        if factor not in FACTORS:
            raise UserError(f"unknown factor {factor!r}; the factors are {', '.join(FACTORS)}")
        for level in levels:
            if level not in FACTORS[factor]:
                raise UserError(f"unknown {factor} value {level!r}; choose from "
                                f"{', '.join(map(str, FACTORS[factor]))}")
    return values


def design(seeds: int, augment: bool = True, factors: dict = FACTORS) -> list[dict]:
    """Every run of the sweep: the full factorial x seeds 0..seeds-1, plus (augment=True) the
    two homework models with augmentation, as sweep specs."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {seeds}")
    check_factor_values(factors)
    runs = [spec(p, bn, do, False, s)
            for p, bn, do in itertools.product(*factors.values()) for s in range(seeds)]
    if augment:
        runs += [spec(p, bn, do, True, s) for p, bn, do in HOMEWORK.values() for s in range(seeds)]
    return runs


def key_of(row: dict) -> tuple:
    return tuple(row[k] for k in ("preprocess", "batch_norm", "dropout", "augment", "seed"))


# --- reading runs.csv back -------------------------------------------------------------------

_BOOL = {"True": True, "False": False}


def _parse_row(raw: dict, config_id: str) -> dict:
    """One CSV row (strings) -> typed row, or ValueError saying what is wrong with it."""
    if None in raw or any(v is None for v in raw.values()):
        raise ValueError("wrong number of fields")
    row = dict(raw)
    if row["preprocess"] not in MODES:
        raise ValueError(f"unknown preprocess {row['preprocess']!r}")
    for k in ("batch_norm", "dropout", "augment"):
        if row[k] not in _BOOL:
            raise ValueError(f"{k} is {row[k]!r}, not True or False")
        row[k] = _BOOL[row[k]]
    for k in ("seed", "epochs", "best_val_epoch", "params", "threads"):
        row[k] = int(row[k])
    for k in ("test_accuracy", "best_val_accuracy", "final_val_accuracy", "final_train_accuracy"):
        row[k] = float(row[k])
        if not 0 <= row[k] <= 1:
            raise ValueError(f"{k} {row[k]} is not a fraction in [0, 1]")
    for k in ("train_seconds", "final_train_loss", "test_loss", "images_per_second"):
        row[k] = float(row[k])
        if not math.isfinite(row[k]) or row[k] < 0:
            raise ValueError(f"{k} {row[k]} is not a finite non-negative number")
    if row["seed"] < 0:
        raise ValueError(f"negative seed {row['seed']}")
    if row["config"] != config_id:
        raise ValueError(f"it was made with other settings (config {row['config']}, this sweep's "
                         f"is {config_id})")
    return row


def read_runs(header: list[str] | None, raw_rows: list[dict], config_id: str):
    """Validate the rows of runs.csv (as csv.DictReader gives them; line 1 is the header).

    Returns (rows, problems): the typed valid rows, first of each run, and one message per
    rejected line ("line N: ..."); a rejected run is redone by the next sweep, never averaged in.
    """
    if header is not None and tuple(header) != RUN_COLUMNS:
        return [], [f"line 1: the header is not {','.join(RUN_COLUMNS)}; every row is ignored "
                    "and its run redone"]
    rows, problems, seen = [], [], set()
    for line, raw in enumerate(raw_rows, start=2):
        try:
            row = _parse_row(raw, config_id)
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"line {line}: {e}; the run will be redone")
            continue
        if key_of(row) in seen:
            problems.append(f"line {line}: a second row for the same run; ignored")
            continue
        seen.add(key_of(row))
        rows.append(row)
    return rows, problems


# --- what the sweep found ---------------------------------------------------------------------

def analyse(rows: list[dict], seeds: int, augment: bool = True) -> dict:
    """The ablation's statistics from its typed runs (read_runs): the runs the design asked for
    ("used"; extra seeds in runs.csv are left out), the factorial effects, per-cell statistics,
    each homework model with and without augmentation (paired by seed), and the conclusion."""
    keys = {key_of(s) for s in design(seeds, augment)}
    used = [r for r in rows if key_of(r) in keys]
    effects = stats.factorial_effects([r for r in used if not r["augment"]], FACTORS, RESPONSE)
    cells = []
    for aug in ((False, True) if augment else (False,)):
        sub = [r for r in used if r["augment"] == aug]
        cells += [{**c, "augment": aug} for c in stats.cell_stats(sub, FACTORS, RESPONSE) if c["n"]]
    augmentation = {}
    for name, cell in (HOMEWORK.items() if augment else ()):
        by = {(r["augment"], r["seed"]): r[RESPONSE] for r in used
              if (r["preprocess"], r["batch_norm"], r["dropout"]) == cell}
        common = sorted(s for (aug, s) in by if aug and (False, s) in by)
        with_, without = [by[(True, s)] for s in common], [by[(False, s)] for s in common]
        augmentation[name] = {**stats.paired(with_, without), "seeds": common,
                              "with": sum(with_) / len(with_), "without": sum(without) / len(without)}
        augmentation[name].update(gap_closed(augmentation[name]["with"], without=augmentation[name]["without"],
                                             published=PUBLISHED[name]))
    return {"used": used, "effects": effects, "cells": cells, "augmentation": augmentation,
            "conclusion": conclusion(effects, cells, augmentation)}


def seeds_summary(rows: list[dict], variants: list[str]) -> dict:
    """Test accuracy over seeds per variant and the paired comparison of the first two.

    rows: summary.csv rows (strings or numbers) with variant, seed, test_accuracy.
    Returns {"variants": {v: mean_ci + seeds + values}, "paired": {a, b, seeds, paired stats}}.
    """
    acc = {v: {int(r["seed"]): float(r["test_accuracy"]) for r in rows if r["variant"] == v} for v in variants}
    per_variant = {v: {**stats.mean_ci([a[s] for s in sorted(a)]), "seeds": sorted(a),
                       "values": [a[s] for s in sorted(a)]} for v, a in acc.items()}
    a, b = variants[:2]
    common = sorted(set(acc[a]) & set(acc[b]))
    return {"variants": per_variant,
            "paired": {"a": a, "b": b, "seeds": common,
                       **stats.paired([acc[a][s] for s in common], [acc[b][s] for s in common])}}


def gap_closed(with_aug: float, without: float, published: float) -> dict:
    """How much of the gap from our mean without augmentation to the published figure the
    augmentation closes: closed = (with - without) / (published - without); None when there is no
    gap (our runs already reach the published figure)."""
    gap = published - without
    return {"published": published, "gap": gap,
            "closed": (with_aug - without) / gap if gap > 0 else None}


def pp(x: float) -> str:
    """A fraction as signed percentage points, e.g. +1.2 pp."""
    return f"{100 * x:+.1f} pp"


def conclusion(effects: list[dict], cells: list[dict], augmentation: dict) -> list[str]:
    """Plain-language findings, one sentence each, generated from the numbers so they change
    when the numbers do. An effect whose 95% interval excludes 0 is called clear; otherwise the
    data cannot tell it from noise."""
    def verdict(e):
        clear = e["ci_low"] > 0 or e["ci_high"] < 0
        return (f"{pp(e['estimate'])} (95% CI {pp(e['ci_low'])} to {pp(e['ci_high'])}), "
                + ("a clear effect" if clear else "not distinguishable from zero"))

    out = []
    mains = [e for e in effects if not e["factor_b"]]
    ranked = sorted(mains, key=lambda e: -abs(e["estimate"]))
    names = {"batch_norm": "Batch-norm", "dropout": "Dropout", "preprocess": "Preprocessing"}
    for e in ranked:
        what = (f"{names[e['factor_a']]} ({e['level_a']} instead of {_baseline(e)})"
                if e["factor_a"] == "preprocess" else names[e["factor_a"]])
        out.append(f"{what} changes test accuracy by {verdict(e)}.")
    inter = [e for e in effects if e["factor_b"] and (e["ci_low"] > 0 or e["ci_high"] < 0)]
    if inter:
        for e in inter:
            out.append(f"The factors interact: {e['effect']} is {verdict(e)}; the effect of one "
                       "depends on the other.")
    else:
        out.append("No two-way interaction is distinguishable from zero: within the precision of "
                   "these seeds the factors act independently.")
    factorial = [c for c in cells if not c["augment"]]
    best = max(factorial, key=lambda c: c["mean"])
    worst = min(factorial, key=lambda c: c["mean"])
    out.append(f"The best combination is {_cell_name(best)} at {100 * best['mean']:.1f}% mean test "
               f"accuracy, the worst {_cell_name(worst)} at {100 * worst['mean']:.1f}%.")
    for name, a in augmentation.items():
        clear = a["ci_low"] > 0 or a["ci_high"] < 0
        text = (f"Augmentation (random crop + flip) changes {name} by {pp(a['mean'])} (paired over "
                f"{a['n']} seeds, 95% CI {pp(a['ci_low'])} to {pp(a['ci_high'])}"
                f"{'' if clear else ', not distinguishable from zero'})")
        if a.get("closed") is not None and a["closed"] > 1:
            text += (f"; that more than closes the {100 * a['gap']:.1f}-point gap to the published "
                     f"{100 * a['published']:.1f}% (mean {100 * a['with']:.1f}% with it)")
        elif a.get("closed") is not None and a["closed"] >= 0:
            text += (f"; that is {100 * a['closed']:.0f}% of the {100 * a['gap']:.1f}-point gap to the "
                     f"published {100 * a['published']:.1f}%")
        elif a.get("closed") is not None:
            text += (f"; it widens the {100 * a['gap']:.1f}-point gap to the published "
                     f"{100 * a['published']:.1f}% instead of closing it")
        elif "published" in a:
            text += f"; without it the runs already reach the published {100 * a['published']:.1f}%"
        out.append(text + ".")
    return out


def _baseline(e: dict) -> str:
    return e["effect"].split(" vs ")[-1]


def _cell_name(c: dict) -> str:
    parts = [f"{c['preprocess']} inputs", "BN" if c["batch_norm"] else "no BN",
             "dropout" if c["dropout"] else "no dropout"]
    return ", ".join(parts)


def outputs(rows: list[dict], seeds: int, augment: bool, config: dict, sweeps: list[dict],
            rejected: list[str]) -> dict:
    """The `ablation` stage's artifacts from its runs: runs, effects, cells, summary, figures."""
    from pipeline import plots as P
    found = analyse(rows, seeds, augment)
    used = found["used"]
    summary = {"config": config, "factors": {k: list(v) for k, v in FACTORS.items()}, "response": RESPONSE,
               "level": stats.LEVEL, "runs": len(used), "sweeps": sweeps,
               "sum_train_seconds": sum(r["train_seconds"] for r in used),
               "augmentation": found["augmentation"], "published_source": PUBLISHED_SOURCE,
               "conclusion": found["conclusion"], "rejected_lines": rejected}
    out = {"ablation/runs.csv": sorted(rows, key=key_of), "ablation/effects.csv": found["effects"],
           "ablation/cells.csv": found["cells"], "ablation/summary.json": summary}
    for name, fig in P.ablation_figures(used, found["effects"], FACTORS).items():
        for ext in ("png", "svg"):
            out[f"ablation/{name}.{ext}"] = P.to_bytes(fig, ext)
    return out
