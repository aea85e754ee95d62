"""Sentences the site states about results, computed here and stored with the artifacts.

The site's hook only places text; judgements ("which run is higher and by how much", "did the
validation loss rise", "does the paired interval exclude zero") are made here, from the same rows
the tables show, and tested (tests/test_findings.py). `invoke plots` stores `compare` and
`val_trend` in lenet/findings.json; `invoke seeds` stores the paired sentence in seeds.json.
"""
from __future__ import annotations

# label, number format and how a difference is stated, per summary.csv column
COMPARE = {
    "test_accuracy": ("test accuracy", ".1%", "points"),
    "best_val_accuracy": ("best validation accuracy", ".1%", "points"),
    "final_train_accuracy": ("final training accuracy", ".1%", "points"),
    "test_loss": ("test loss", ".3f", "difference"),
    "final_train_loss": ("final training loss", ".3f", "difference"),
    "train_seconds": ("training time (seconds)", ".1f", "ratio"),
    "images_per_second": ("training throughput (images/s)", ",.0f", "ratio"),
    "params": ("parameter count", ",.0f", "difference"),
}
VAL_RISE_TOLERANCE = 0.02  # a final validation loss within 2% of its minimum counts as levelled off


def compare(first: str, x: float, second: str, y: float, column: str) -> str:
    """Which of two runs is higher on a column, with both values and the gap."""
    label, spec, kind = COMPARE[column]
    fx, fy = format(x, spec), format(y, spec)
    if fx == fy:
        return f"`{first}` and `{second}` have the same {label} to the precision shown ({fx})."
    hi, lo, fhi, flo, vhi, vlo = (first, second, fx, fy, x, y) if x > y else (second, first, fy, fx, y, x)
    if kind == "points":
        gap = f"{100 * (vhi - vlo):.1f} percentage points"
    elif kind == "ratio":
        gap = f"{vhi / vlo:.2f} times as much" if vlo > 0 else "the other is zero"
    else:
        gap = f"a difference of {format(vhi - vlo, spec)}"
    return f"`{hi}` has the higher {label}: {fhi} against {flo} for `{lo}` ({gap})."


def val_trend(variant: str, log: list[dict]) -> str:
    """Where a run's validation loss was lowest and whether it rose afterwards (overfitting)."""
    losses = [(int(r["epoch"]), float(r["val_loss"])) for r in log]
    best_epoch, best = min(losses, key=lambda e: e[1])
    last_epoch, last = losses[-1]
    if best_epoch == last_epoch:
        return (f"`{variant}`'s validation loss was lowest at the last epoch ({last:.3f} at epoch "
                f"{last_epoch}): no sign of overfitting within {last_epoch} epochs.")
    rise = (last - best) / best
    if rise <= VAL_RISE_TOLERANCE:
        return (f"`{variant}`'s validation loss was lowest at epoch {best_epoch} ({best:.3f}) and ended "
                f"within {VAL_RISE_TOLERANCE:.0%} of it ({last:.3f} at epoch {last_epoch}): it levelled off.")
    return (f"`{variant}`'s validation loss was lowest at epoch {best_epoch} ({best:.3f}) and rose to "
            f"{last:.3f} by epoch {last_epoch} (+{rise:.0%}): the later epochs fit the training set at "
            "the expense of held-out data, i.e. it overfits.")


def _pp(x: float) -> str:
    return f"{100 * float(x):+.2f} pp"


def seeds_paired(p: dict, level: float) -> str:
    """The paired difference of two variants over the same seeds, in one sentence."""
    clear = p["ci_low"] > 0 or p["ci_high"] < 0
    return (f"Paired by seed ({p['n']} pairs), `{p['a']}` minus `{p['b']}` is {_pp(p['mean'])} "
            f"({level:.0%} CI {_pp(p['ci_low'])} to {_pp(p['ci_high'])}, "
            f"t = {p['t']:.2f}, p = {p['p']:.2g}): "
            + ("the interval excludes zero, so the difference is not seed noise."
               if clear else "the interval includes zero, so these seeds cannot tell the two apart."))


def findings(summary: list[dict], logs: dict[str, list[dict]]) -> dict:
    """lenet/findings.json: `compare` {column: {a, b, sentence}} for the first two runs of the
    summary in file order, and `val_trend` {variant: sentence}."""
    out = {"compare": {}, "val_trend": {v: val_trend(v, log) for v, log in logs.items()}}
    if len(summary) >= 2:
        a, b = summary[0], summary[1]
        for column in COMPARE:
            out["compare"][column] = {
                "a": a["variant"], "b": b["variant"],
                "sentence": compare(a["variant"], float(a[column]), b["variant"], float(b[column]), column)}
    return out


SAME_SPEED = 0.05  # two timings within 5% of each other read as the same speed (timing noise here is ~15%)


def options_finding(options: dict) -> str:
    """What bench.json's options say, in words (the methods page states it): whether channels-last and
    torch.compile pay, and how the stock torch.nn layers compare with ours at one thread.

    options: variant -> {option name -> {"speed_vs_ours": float} or {"error": str}}.
    """
    def speeds(name):
        return [r["speed_vs_ours"] for o in options.values() for k, r in o.items() if k == name and "speed_vs_ours" in r]
    paying = [n for n in ("channels_last", "torch.compile") if any(x > 1 + SAME_SPEED for x in speeds(n))]
    first = ("Neither channels-last nor `torch.compile` pays at LeNet's size on this CPU, so `fit` uses neither."
             if not paying else f"{' and '.join(f'`{n}`' for n in paying)} ran faster than ours for at least one "
             f"model in this run; `fit` does not use it yet.")
    stock = speeds("stock layers")
    if not stock:
        return first
    low, high = min(stock), max(stock)
    span = f"{low:.2f}×" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}× to {high:.2f}×"
    if all(abs(x - 1) <= SAME_SPEED for x in stock):
        how = (f"the stock `torch.nn` layers run at {span} the speed of our hand-written pooling and convolution, "
               "the same within timing noise: at this size a step's time is oneDNN's kernels whichever way they "
               "are called, so the loop, not the layers, is where ours differs from the plain way")
    elif high < 1:
        how = (f"the stock `torch.nn` layers run at {span} the speed of our hand-written pooling and convolution, "
               "so our layers are part of where ours differs from the plain way, beside the loop")
    else:
        how = (f"the stock `torch.nn` layers run at {span} the speed of our hand-written pooling and convolution: "
               "faster for at least one model in this run")
    return f"{first} At one thread {how}."
