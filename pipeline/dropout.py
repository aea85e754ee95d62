"""CS182 HW3 question 5(c): the same network trained with several dropout probabilities.

The network is the homework's model 1 (normalized inputs, LeNet with batch-norm) with dropout
p before the output layer, p in P_VALUES, over several seeds; everything else (20 epochs, Adam
1e-3, batch 128, the 45,000/5,000 split) is the LeNet runs'. p = 0.5 is exactly the ablation's
"normalize + BN + dropout" cell and p = 0 its "normalize + BN" cell: `repeat_of_ablation` compares
those runs with the ablation's, seed by seed. (On one machine a rerun is bit-identical; the
committed ablation ran in an earlier session, on another machine, where the floating-point
results of the same code differ slightly, and 20 epochs amplify that into a different run.)

Train accuracy is measured two ways each epoch: on the batches as trained (dropout active, the
running estimate the LeNet logs show) and in eval mode on a fixed TRAIN_EVAL_SIZE training
images, which is the one comparable with validation accuracy. The generalisation gap is the
eval-mode train accuracy minus the validation accuracy. Plain functions; the runs are
pipeline.sweep's.
"""
from pipeline import stats
from pipeline.contract import DROPOUT_CURVE_COLUMNS as CURVE_COLUMNS  # the contract owns the headers
from pipeline.contract import DROPOUT_RUN_COLUMNS as RUN_COLUMNS
from pipeline.contract import DROPOUT_SUMMARY_COLUMNS as SUMMARY_COLUMNS
from pipeline.errors import UserError
from pipeline.model import DROPOUT_P, spec_name
from pipeline.sweep import spec

P_VALUES = (0.0, 0.25, 0.5, 0.75)
PREPROCESS, BATCH_NORM = "normalize", True   # model 1 of the homework, dropout varied
TRAIN_EVAL_SIZE = 5000                       # as many training images as validation images



def check_p_values(values) -> tuple[float, ...]:
    """Dropout probabilities a user asked for: each in [0, 1), no repeats; else a UserError."""
    out = []
    for v in values:
        try:
            p = float(v)
        except (TypeError, ValueError):
            raise UserError(f"dropout probability {v!r} is not a number") from None
        if not 0.0 <= p < 1.0:
            raise UserError(f"dropout probability must be in [0, 1), got {p:g}")
        if p in out:
            raise UserError(f"dropout probability {p:g} is given twice")
        out.append(p)
    if not out:
        raise UserError("give at least one dropout probability")
    return tuple(sorted(out))  # a design is a set: "0.5,0" and "0,0.5" are the same sweep


def design(seeds: int, p_values=P_VALUES) -> list[dict]:
    """Every run: p x seeds 0..seeds-1, as sweep specs (dropout as a probability)."""
    if seeds < 2:
        raise UserError(f"--seeds must be at least 2 (a confidence interval needs 2), got {seeds}")
    return [spec(PREPROCESS, BATCH_NORM, p, False, s) for p in check_p_values(p_values)
            for s in range(seeds)]


def variant_of(p: float) -> str:
    return spec_name(PREPROCESS, BATCH_NORM, float(p))


def run_rows(result: dict, config_id: str) -> tuple[dict, list[dict]]:
    """A finished sweep run (pipeline.sweep.run_one's row, with its per-epoch "log") -> its
    runs.csv row and its curves.csv rows."""
    p, log = float(result["dropout"]), result["log"]
    last = log[-1]
    run = {**result, "p": p, "final_train_eval_accuracy": last["train_eval_accuracy"],
           "gap": last["train_eval_accuracy"] - last["val_accuracy"], "config": config_id}
    curves = [{"p": p, "seed": result["seed"], **{k: row[k] for k in CURVE_COLUMNS[2:]}} for row in log]
    return run, curves


def read_rows(runs: list[dict], curves: list[dict], config_id: str, epochs: int) -> tuple[list, list]:
    """Typed rows of runs.csv and curves.csv as written before (strings), keeping the runs that
    belong to this config and have every epoch's curve; the others are redone."""
    def f(r, k):
        return float(r[k])
    typed = {}
    for r in runs:
        try:
            row = {**r, "p": f(r, "p"), "seed": int(r["seed"]),
                   **{k: f(r, k) for k in RUN_COLUMNS[2:14] if k not in ("best_val_epoch", "epochs")},
                   "best_val_epoch": int(r["best_val_epoch"]), "epochs": int(r["epochs"])}
        except (KeyError, TypeError, ValueError):
            continue
        if r.get("config") == config_id and row["epochs"] == epochs:
            typed[(row["p"], row["seed"])] = row
    by_run = {}
    for c in curves:
        try:
            key = (f(c, "p"), int(c["seed"]))
            by_run.setdefault(key, []).append(
                {"p": key[0], "seed": key[1], "epoch": int(c["epoch"]),
                 **{k: f(c, k) for k in CURVE_COLUMNS[3:]}})
        except (KeyError, TypeError, ValueError):
            continue
    keep = [k for k in typed if sorted(r["epoch"] for r in by_run.get(k, [])) == list(range(1, epochs + 1))]
    return ([typed[k] for k in sorted(keep)],
            [c for k in sorted(keep) for c in sorted(by_run[k], key=lambda c: c["epoch"])])


def summarise(runs: list[dict]) -> list[dict]:
    """One row per p: means of the final eval-mode train accuracy, validation accuracy, gap
    (with its 95% t-interval) and test accuracy, and the test-accuracy change against p = 0
    paired by seed (when p = 0 was run with the same seeds)."""
    ps = sorted({r["p"] for r in runs})
    base = {r["seed"]: r["test_accuracy"] for r in runs if r["p"] == 0.0}
    out = []
    for p in ps:
        rs = sorted((r for r in runs if r["p"] == p), key=lambda r: r["seed"])
        if len(rs) < 2:
            raise UserError(f"dropout p = {p:g} has {len(rs)} run(s); an interval needs at least 2 seeds")
        gap, test = stats.mean_ci([r["gap"] for r in rs]), stats.mean_ci([r["test_accuracy"] for r in rs])
        row = {"p": p, "n": len(rs),
               "train_eval_accuracy": sum(r["final_train_eval_accuracy"] for r in rs) / len(rs),
               "val_accuracy": sum(r["final_val_accuracy"] for r in rs) / len(rs),
               "gap": gap["mean"], "gap_ci_low": gap["ci_low"], "gap_ci_high": gap["ci_high"],
               "test_accuracy": test["mean"], "test_ci_low": test["ci_low"], "test_ci_high": test["ci_high"]}
        if p != 0.0 and all(r["seed"] in base for r in rs):
            d = stats.paired([r["test_accuracy"] for r in rs], [base[r["seed"]] for r in rs])
            row.update(test_vs_p0=d["mean"], test_vs_p0_ci_low=d["ci_low"],
                       test_vs_p0_ci_high=d["ci_high"], test_vs_p0_p=d["p"])
        out.append(row)
    return out


def repeat_of_ablation(runs: list[dict], ablation_runs: list[dict]) -> dict | None:
    """The runs of this experiment that repeat an ablation run (p = 0 or p = 0.5, same seed),
    against it: {n, mean_diff, max_abs_diff, pairs: [{p, seed, here, ablation}]}, or None if
    there are none. ablation_runs: rows of ablation/runs.csv (strings or typed)."""
    def flag(v):
        return v if isinstance(v, bool) else str(v) == "True"
    cells = {(flag(r["dropout"]), int(r["seed"])): float(r["test_accuracy"]) for r in ablation_runs
             if r["preprocess"] == PREPROCESS and flag(r["batch_norm"]) == BATCH_NORM and not flag(r["augment"])}
    pairs = [{"p": r["p"], "seed": r["seed"], "here": r["test_accuracy"],
              "ablation": cells[(r["p"] > 0, r["seed"])]} for r in runs
             if r["p"] in (0.0, DROPOUT_P) and (r["p"] > 0, r["seed"]) in cells]
    if not pairs:
        return None
    diffs = [x["here"] - x["ablation"] for x in pairs]
    return {"n": len(pairs), "mean_diff": sum(diffs) / len(diffs), "max_abs_diff": max(map(abs, diffs)),
            "identical": sum(d == 0 for d in diffs), "pairs": pairs}


def conclusion(summary: list[dict]) -> list[str]:
    """What the experiment shows, in sentences generated from the numbers (question 5(c))."""
    def pct(x):
        return f"{100 * x:.1f}%"

    lo, hi = summary[0], summary[-1]
    out = [f"With p = {lo['p']:g} the network ends at {pct(lo['train_eval_accuracy'])} train accuracy "
           f"(eval mode) against {pct(lo['val_accuracy'])} validation: a gap of "
           f"{100 * lo['gap']:.1f} points. With p = {hi['p']:g} the gap is {100 * hi['gap']:.1f} points "
           f"({pct(hi['train_eval_accuracy'])} against {pct(hi['val_accuracy'])})."]
    gaps = [s["gap"] for s in summary]
    if all(a > b for a, b in zip(gaps, gaps[1:])):
        out.append("The gap shrinks at every step up in p: dropout acts as a regulariser, it keeps "
                   "the network from fitting the training set as closely as it otherwise would.")
    elif gaps[-1] < gaps[0]:
        out.append("The gap is smaller at the largest p than without dropout, though not at every "
                   "step: dropout regularises, with seed noise on top.")
    else:
        out.append("The gap does not shrink with p here: in this network dropout does not act as a "
                   "regulariser measurably.")
    best = max(summary, key=lambda s: s["test_accuracy"])
    clear = [s for s in summary if "test_vs_p0" in s
             and (s["test_vs_p0_ci_low"] > 0 or s["test_vs_p0_ci_high"] < 0)]
    text = (f"Test accuracy is highest at p = {best['p']:g} ({pct(best['test_accuracy'])} mean over "
            f"{best['n']} seeds; {pct(lo['test_accuracy'])} without dropout).")
    if clear:
        text += " Against p = 0, paired by seed: " + "; ".join(
            f"p = {s['p']:g} changes it by {100 * s['test_vs_p0']:+.1f} points (95% CI "
            f"{100 * s['test_vs_p0_ci_low']:+.1f} to {100 * s['test_vs_p0_ci_high']:+.1f})" for s in clear) + "."
    else:
        text += (" No p changes test accuracy distinguishably from p = 0 (paired by seed, 95% CI): "
                 "a smaller gap is not by itself a better model.")
    out.append(text)
    best_val = max(summary, key=lambda s: s["val_accuracy"])
    fit_drop = 100 * (lo["train_eval_accuracy"] - hi["train_eval_accuracy"])
    if hi["val_accuracy"] < lo["val_accuracy"]:
        out.append(f"Too much dropout underfits: at p = {hi['p']:g} train accuracy is {fit_drop:.1f} "
                   f"points lower than without dropout and validation accuracy is lower too "
                   f"({100 * hi['val_accuracy']:.1f}% against {100 * lo['val_accuracy']:.1f}%).")
    elif hi is not best_val:
        out.append(f"Past p = {best_val['p']:g} more dropout stops paying: at p = {hi['p']:g} the network "
                   f"fits the training set {fit_drop:.1f} points less closely than without dropout, "
                   f"and validation accuracy is {100 * (best_val['val_accuracy'] - hi['val_accuracy']):.1f} "
                   f"points below its best (p = {best_val['p']:g}), though still above p = {lo['p']:g}.")
    return out


def outputs(runs: list[dict], curves: list[dict], seeds: int, p_values, config: dict, sweeps: list[dict],
            ablation_runs: list[dict] | None) -> dict:
    """The `dropout` stage's artifacts: runs, curves, the per-p summary, the figure."""
    from pipeline import plots as P
    wanted = {(p, s) for p in p_values for s in range(seeds)}
    used = [r for r in runs if (r["p"], r["seed"]) in wanted]
    summary = summarise(used)
    result = {"config": config, "variants": {f"{p:g}": variant_of(p) for p in p_values}, "level": stats.LEVEL,
              "runs": len(used), "summary": summary, "conclusion": conclusion(summary),
              "repeat_of_ablation": repeat_of_ablation(used, ablation_runs) if ablation_runs is not None else None,
              "sweeps": sweeps, "sum_train_seconds": sum(r["train_seconds"] for r in used)}
    fig = P.dropout_figure([c for c in curves if (c["p"], c["seed"]) in wanted], summary)
    return {"cs182/dropout/curves.csv": sorted(curves, key=lambda r: (r["p"], r["seed"], r["epoch"])),
            "cs182/dropout/runs.csv": sorted(runs, key=lambda r: (r["p"], r["seed"])),
            "cs182/dropout/summary.csv": summary, "cs182/dropout/summary.json": result,
            **{f"cs182/dropout/{P.DROPOUT_CURVES}.{ext}": P.to_bytes(fig, ext) for ext in ("png", "svg")}}
