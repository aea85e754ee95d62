"""The "plots" stage: figures of the trained runs, drawn from data the caller read from `artifacts/`.

Every function takes plain data (DataFrames, arrays, dicts) and returns a `matplotlib.figure.Figure`;
nothing here reads or writes a file (the invoke task loads the artifacts, draws the figures, and
writes each as PNG and SVG; `to_bytes` encodes one reproducibly, in memory). Figures are built with `Figure()` directly, never through
pyplot: no global figure registry to leak, no GUI backend, and PNG output goes through Agg whatever
backend the caller has selected (matplotlib's "embedding in a web server" recipe). Figures have a
white background so they read the same on the site's light and dark pages. Model colours are fixed
per position (first variant blue, second orange, Okabe-Ito palette: distinguishable with colour-blind
vision); train / validation / test differ by line style, so a curve is identified without colour.
"""
from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# Okabe & Ito (2008) colour-blind-safe palette: blue, orange, bluish green, vermillion.
VARIANT_COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00")
SPLIT_STYLES = {"train": "-", "val": "--", "test": ":"}  # line style per data split
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
RIGHT, WRONG = "#1a7f37", "#cf222e"  # sample-grid prediction colours (plus a ✓ / ✗ mark)
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "test_loss", "test_accuracy")  # the log.csv columns a curve needs (ARTIFACTS.md)
DPI = 150  # PNG resolution: sharp on high-density screens at the site's content width
SVG_HASH_SALT = "lenet-cifar10"  # fixed SVG element ids, so rerunning gives byte-identical files

# The file names (without extension) the plots task writes under artifacts/plots/; the site
# references exactly these, so they are defined once, here.
LEARNING_CURVES = "learning_curves"
PER_CLASS_ACCURACY = "per_class_accuracy"
SAMPLE_GRID = "samples"
CONFUSION_PREFIX = "confusion_"  # + variant name


def _variant_color(i: int) -> str:
    return VARIANT_COLORS[i % len(VARIANT_COLORS)]


def _check_cm(cm, n_classes: int, name: str = "confusion matrix") -> np.ndarray:
    """A (n_classes, n_classes) array of non-negative counts, or a ValueError saying what is wrong."""
    cm = np.asarray(cm)
    if cm.shape != (n_classes, n_classes):
        raise ValueError(f"{name} must have shape ({n_classes}, {n_classes}) to match the classes, got {cm.shape}")
    if not np.issubdtype(cm.dtype, np.number) or (cm < 0).any():
        raise ValueError(f"{name} must hold non-negative counts")
    return cm


def learning_curves(logs: dict[str, pd.DataFrame]) -> Figure:
    """Loss (left) and accuracy (right) per epoch, every variant on the same two panels.

    Args:
        logs: variant name -> its `log.csv` as a DataFrame (columns LOG_COLUMNS at least, one row
            per epoch; accuracies as fractions).
    Returns:
        A figure with two axes, each holding 3 lines (train, val, test) per variant.
    """
    if not logs:
        raise ValueError("learning_curves needs the log of at least one variant")
    for variant, log in logs.items():
        missing = [c for c in LOG_COLUMNS if c not in log.columns]
        if missing:
            raise ValueError(f"log of {variant} lacks the columns {', '.join(missing)} (see ARTIFACTS.md)")
        if len(log) == 0:
            raise ValueError(f"log of {variant} has no epochs")
    fig = Figure(figsize=(9, 3.8), facecolor="white", layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (variant, log) in enumerate(logs.items()):
        for split, style in SPLIT_STYLES.items():
            kw = dict(color=_variant_color(i), linestyle=style, linewidth=1.8,
                      marker="o" if len(log) == 1 else None)  # one epoch would draw no line
            ax_loss.plot(log["epoch"], log[f"{split}_loss"], **kw)
            ax_acc.plot(log["epoch"], 100 * log[f"{split}_accuracy"], **kw)
    for ax, label in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.set_title("Loss")
    ax_acc.set_title("Accuracy")
    # One legend for the figure: colour = variant, line style = split (proxy artists, not in ax.lines).
    handles = [Line2D([], [], color=_variant_color(i), linewidth=2.5, label=v) for i, v in enumerate(logs)]
    handles += [Line2D([], [], color="0.3", linestyle=s, linewidth=1.8, label=SPLIT_NAMES[k])
                for k, s in SPLIT_STYLES.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


def confusion_matrix_figure(cm: np.ndarray, classes, title: str) -> Figure:
    """Test-set confusion matrix: every cell annotated with its count, coloured by the row-normalised
    fraction (the share of that true class predicted as each class), so rows compare across classes.

    Args:
        cm: (n, n) counts, row = true class, column = predicted class.
        classes: n class names.
        title: the figure title (the caller names the variant).
    Returns:
        A figure with two axes (matrix, colour bar) and n * n count annotations.
    """
    classes = list(classes)
    cm = _check_cm(cm, len(classes))
    rows = cm.sum(axis=1, keepdims=True)
    frac = cm / np.maximum(rows, 1)  # a class with no test images shows as an empty row
    fig = Figure(figsize=(6.4, 5.6), facecolor="white", layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.85, label="fraction of the true class")
    n = len(classes)
    for t in range(n):
        for p in range(n):
            ax.text(p, t, f"{cm[t, p]:d}" if np.issubdtype(cm.dtype, np.integer) else f"{cm[t, p]:g}",
                    ha="center", va="center", fontsize=7 if n > 8 else 9,
                    color="white" if frac[t, p] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = cm.sum()
    accuracy = f" (accuracy {np.trace(cm) / total:.1%})" if total else ""
    ax.set_title(f"{title}{accuracy}")
    return fig


def sample_grid(images: np.ndarray, labels, predictions: dict[str, np.ndarray], classes,
                ncols: int = 6) -> Figure:
    """Test images with their true label and each model's prediction, green (✓) if right, red (✗)
    if wrong. Models are abbreviated M1, M2, ... in the order of `predictions`; the key is the title.

    Args:
        images: (K, H, W, 3) uint8.
        labels: (K,) true class indices.
        predictions: variant name -> (K,) predicted class indices.
        classes: class names, indexed by label.
    Returns:
        A figure with K axes, each holding 1 + len(predictions) texts.
    """
    images, labels, classes = np.asarray(images), np.asarray(labels), list(classes)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (K, H, W, 3) uint8 array, got {images.shape} {images.dtype}")
    k = len(images)
    if labels.shape != (k,):
        raise ValueError(f"labels must have shape ({k},) to match the images, got {labels.shape}")
    if not predictions:
        raise ValueError("sample_grid needs the predictions of at least one variant")
    preds = {v: np.asarray(p) for v, p in predictions.items()}
    for v, p in preds.items():
        if p.shape != (k,):
            raise ValueError(f"predictions of {v} must have shape ({k},), got {p.shape}")
    for name, arr in (("labels", labels), *((f"predictions of {v}", p) for v, p in preds.items())):
        if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= len(classes):
            raise ValueError(f"{name} must be class indices in 0..{len(classes) - 1}")
    ncols = max(1, min(ncols, k))
    nrows = -(-k // ncols)  # ceil
    short = {v: f"M{i + 1}" for i, v in enumerate(preds)}
    # Placed by hand (inches), not by a layout engine: each cell is an image with its text lines
    # under it, and equal-aspect images inside a layout engine drift away from their captions.
    # Sizes in inches; 6 columns at 9 pt stay legible when the site shrinks the figure to ~750 px.
    cell_w, img, line, pad, head, font = 1.5, 1.2, 0.19, 0.12, 0.4, 9
    cell_h = img + line * (1 + len(preds)) + pad
    fig_w, fig_h = cell_w * ncols, cell_h * nrows + head
    fig = Figure(figsize=(fig_w, fig_h), facecolor="white")
    fig.text(0.5, 1 - 0.5 * head / fig_h, "   ".join(f"{s} = {v}" for v, s in short.items()),
             ha="center", va="center", fontsize=font + 1)
    for i in range(k):
        r, c = divmod(i, ncols)
        left = c * cell_w + (cell_w - img) / 2
        bottom = fig_h - head - r * cell_h - img
        ax = fig.add_axes((left / fig_w, bottom / fig_h, img / fig_w, img / fig_h))
        ax.imshow(images[i], interpolation="nearest")
        ax.set_axis_off()
        lines = [(f"true: {classes[labels[i]]}", "black", "bold")]
        for v, p in preds.items():
            right = p[i] == labels[i]
            mark, color = ("✓", RIGHT) if right else ("✗", WRONG)
            lines.append((f"{short[v]}: {classes[p[i]]} {mark}", color, "normal"))
        for j, (text, color, weight) in enumerate(lines):
            ax.annotate(text, xy=(0.5, 0), xycoords="axes fraction", xytext=(0, -2 - 72 * line * j),
                        textcoords="offset points", ha="center", va="top", fontsize=font,
                        color=color, fontweight=weight)
    return fig


def per_class_accuracy(cms: dict[str, np.ndarray], classes) -> Figure:
    """Test accuracy of every class (the confusion matrix's diagonal over its row sums), one bar
    per variant and class.

    Args:
        cms: variant name -> (n, n) confusion counts.
        classes: n class names.
    Returns:
        A figure with one axes holding n * len(cms) bars.
    """
    classes = list(classes)
    if not cms:
        raise ValueError("per_class_accuracy needs the confusion matrix of at least one variant")
    checked = {v: _check_cm(cm, len(classes), f"confusion matrix of {v}") for v, cm in cms.items()}
    n, m = len(classes), len(checked)
    width = 0.8 / m
    x = np.arange(n)
    fig = Figure(figsize=(8.5, 3.6), facecolor="white", layout="constrained")
    ax = fig.subplots()
    for i, (v, cm) in enumerate(checked.items()):
        acc = 100 * np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
        ax.bar(x + (i - (m - 1) / 2) * width, acc, width, color=_variant_color(i), label=v)
    ax.set_xticks(x, classes, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Per-class test accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def figures(logs: dict[str, pd.DataFrame], cms: dict[str, np.ndarray], classes, images: np.ndarray,
            labels, predictions: dict[str, np.ndarray]) -> dict[str, Figure]:
    """Every figure the site shows, keyed by the file name (no extension) it is saved under.

    Args:
        logs: variant -> log.csv DataFrame; cms: variant -> (n, n) confusion counts;
        classes: n names; images, labels: the test samples (test_samples.npz);
        predictions: variant -> predictions of those samples (from predictions.csv).
    """
    out = {LEARNING_CURVES: learning_curves(logs)}
    for v, cm in cms.items():
        out[f"{CONFUSION_PREFIX}{v}"] = confusion_matrix_figure(cm, classes, v)
    out[PER_CLASS_ACCURACY] = per_class_accuracy(cms, classes)
    out[SAMPLE_GRID] = sample_grid(images, labels, predictions, classes)
    return out


ABLATION_EFFECTS = "effects"   # under artifacts/ablation/
ABLATION_CELLS = "cells"


def effects_figure(effects: list[dict]) -> Figure:
    """Each main effect and interaction of the ablation as a point with its 95% interval, in
    percentage points; a dashed line at zero (an interval crossing it is not a clear effect).

    Args: effects: pipeline.stats.factorial_effects rows (estimate, ci_low, ci_high, effect).
    """
    if not effects:
        raise ValueError("effects_figure needs at least one effect")
    n = len(effects)
    fig = Figure(figsize=(8.5, 0.38 * n + 1.2), facecolor="white", layout="constrained")
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    est = np.array([100 * e["estimate"] for e in effects])
    lo = np.array([100 * e["ci_low"] for e in effects])
    hi = np.array([100 * e["ci_high"] for e in effects])
    colors = [VARIANT_COLORS[0] if not e["factor_b"] else VARIANT_COLORS[1] for e in effects]
    ax.hlines(y, lo, hi, colors=colors, lw=2)
    ax.scatter(est, y, c=colors, zorder=3, s=28)
    ax.axvline(0, color="0.4", ls="--", lw=1)
    ax.set_yticks(y, [e["effect"] for e in effects], fontsize=8)
    ax.set_xlabel("change in test accuracy (percentage points), 95% CI")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=[Line2D([], [], color=VARIANT_COLORS[0], marker="o", label="main effect"),
                       Line2D([], [], color=VARIANT_COLORS[1], marker="o", label="interaction")],
              loc="lower right", frameon=False, fontsize=8)
    ax.set_title("Effects on test accuracy")
    return fig


def cells_figure(runs: list[dict], factors: dict) -> Figure:
    """Test accuracy of every cell of the ablation: one dot per seed, a bar at the cell mean;
    augmented cells (if any) at the end, in another colour.

    Args: runs: rows with the factors, `augment`, `seed` and `test_accuracy`; factors: name ->
    levels (the design's order).
    """
    cells = sorted({(*(r[f] for f in factors), r["augment"]) for r in runs},
                   key=lambda c: (c[-1], [factors[f].index(v) for f, v in zip(factors, c)]))
    if not cells:
        raise ValueError("cells_figure needs at least one run")
    fig = Figure(figsize=(8.5, 3.8), facecolor="white", layout="constrained")
    ax = fig.subplots()
    labels = []
    for i, cell in enumerate(cells):
        vals = 100 * np.array([r["test_accuracy"] for r in runs
                               if (*(r[f] for f in factors), r["augment"]) == cell])
        color = VARIANT_COLORS[2] if cell[-1] else VARIANT_COLORS[0]
        jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax.scatter(i + jitter, vals, s=14, color=color, alpha=0.8, zorder=3)
        ax.hlines(vals.mean(), i - 0.3, i + 0.3, color="0.15", lw=2, zorder=4)
        p_, bn, do = cell[:3]
        labels.append(f"{p_}\n{'BN' if bn else '-'} {'DO' if do else '-'}{' +aug' if cell[-1] else ''}")
    ax.set_xticks(range(len(cells)), labels, fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Every run of the ablation (dots: seeds; bar: mean)")
    return fig


def ablation_figures(runs: list[dict], effects: list[dict], factors: dict) -> dict[str, Figure]:
    return {ABLATION_EFFECTS: effects_figure(effects), ABLATION_CELLS: cells_figure(runs, factors)}


DROPOUT_CURVES = "dropout_curves"  # file name under artifacts/cs182/dropout/


def dropout_figure(curves: list[dict], summary: list[dict]) -> Figure:
    """Question 5(c): left, train (eval mode, solid) and validation (dashed) accuracy per epoch,
    the mean over seeds, one colour per dropout p; right, the final generalisation gap per p with
    its 95% interval (dots: seeds).

    Args: curves: rows {p, seed, epoch, train_eval_accuracy, val_accuracy}; summary:
    pipeline.dropout.summarise rows {p, gap, gap_ci_low, gap_ci_high}.
    """
    ps = [s["p"] for s in summary]
    if not ps:
        raise ValueError("dropout_figure needs at least one p")
    fig = Figure(figsize=(9, 3.6), facecolor="white", layout="constrained")
    ax, gx = fig.subplots(1, 2, width_ratios=(1.6, 1))
    df = pd.DataFrame(curves)
    for i, p in enumerate(ps):
        mean = df[df["p"] == p].groupby("epoch")[["train_eval_accuracy", "val_accuracy"]].mean()
        color = VARIANT_COLORS[i % len(VARIANT_COLORS)]
        ax.plot(mean.index, 100 * mean["train_eval_accuracy"], color=color, ls="-", label=f"p = {p:g}")
        ax.plot(mean.index, 100 * mean["val_accuracy"], color=color, ls="--")
        last = df[(df["p"] == p) & (df["epoch"] == df["epoch"].max())]
        gaps = 100 * (last["train_eval_accuracy"] - last["val_accuracy"]).to_numpy()
        jitter = np.linspace(-0.12, 0.12, len(gaps)) if len(gaps) > 1 else np.zeros(1)
        gx.scatter(i + jitter, gaps, s=12, color=color, alpha=0.7, zorder=3)
        s = summary[i]
        gx.errorbar(i, 100 * s["gap"], yerr=[[100 * (s["gap"] - s["gap_ci_low"])],
                                             [100 * (s["gap_ci_high"] - s["gap"])]],
                    fmt="o", color="0.15", capsize=4, zorder=4)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], color="0.3", ls="-", label="train (eval mode)"),
        Line2D([], [], color="0.3", ls="--", label="validation")]
    ax.legend(handles=handles, fontsize=7, frameon=False, ncols=2)
    ax.set_title("Mean over seeds")
    gx.set_xticks(range(len(ps)), [f"p = {p:g}" for p in ps], fontsize=8)
    gx.set_ylabel("train - validation (points)")
    gx.grid(True, axis="y", alpha=0.3)
    gx.set_axisbelow(True)
    gx.set_title("Final gap, 95% CI (dots: seeds)")
    return fig


FILTERS_IMAGES, FILTERS_RESPONSE = "filters_images", "filters_response"  # under artifacts/cs182/


def filters_figure(outputs: dict, labels: list[str]) -> Figure:
    """Question 4: each image (row) as it is, blurred, and its Sobel responses.

    Args: outputs: pipeline.filters.apply_filters's dict ("original"/"blur" (N, 3, H, W) in
    [0, 1], "sobel_x"/"sobel_y"/"magnitude" (N, 1, H, W)); labels: N class names.
    The signed Sobel responses share one symmetric grey scale (0 = mid grey); the magnitude is
    black (no edge) to white.
    """
    n = len(labels)
    cols = [("original", "original"), ("blur", "blurred (3x3 binomial)"),
            ("sobel_x", "Sobel x: vertical edges"), ("sobel_y", "Sobel y: horizontal edges"),
            ("magnitude", "edge magnitude")]
    fig = Figure(figsize=(8.5, 1.75 * n + 0.4), facecolor="white", layout="constrained")
    axes = fig.subplots(n, len(cols), squeeze=False)
    lim = max(float(np.abs(outputs[k]).max()) for k in ("sobel_x", "sobel_y"))
    for i in range(n):
        for j, (key, title) in enumerate(cols):
            ax = axes[i, j]
            img = outputs[key][i]
            if img.shape[0] == 3:
                ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1), interpolation="nearest")
            elif key == "magnitude":
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=float(outputs[key].max()), interpolation="nearest")
            else:
                ax.imshow(img[0], cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(labels[i], fontsize=8)
    return fig


def frequency_figure(responses: dict) -> Figure:
    """|H(u, v)| of each hand-designed kernel (pipeline.filters.frequency_response), zero
    frequency at the centre, axes in cycles per pixel; one panel per kernel."""
    fig = Figure(figsize=(8.5, 2.9), facecolor="white", layout="constrained")
    axes = fig.subplots(1, len(responses), squeeze=False)[0]
    for ax, (name, r) in zip(axes, responses.items()):
        size = r.shape[0]
        lo, hi = -0.5 - 0.5 / size, 0.5 - 1.5 / size  # pixel edges; fftshift puts -0.5 first
        im = ax.imshow(r, cmap="viridis", extent=(lo, hi, lo, hi), origin="lower")
        ax.set_title(f"|H| of {name}", fontsize=9)
        ax.set_xlabel("horizontal frequency", fontsize=8)
        ax.set_ylabel("vertical frequency", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


OWN_LOG = "own_cnn_log"  # under artifacts/own_cnn/


def own_log_figure(log: list[dict]) -> Figure:
    """The own CNN's final run: training loss and accuracy (on the augmented batches as trained)
    against cumulative training time, one dot per epoch.

    Args: log: rows {epoch, train_loss, train_accuracy, elapsed_train_seconds}.
    """
    if not log:
        raise ValueError("own_log_figure needs at least one epoch")
    df = pd.DataFrame(log)
    minutes = df["elapsed_train_seconds"] / 60
    fig = Figure(figsize=(8.5, 3.0), facecolor="white", layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(minutes, df["train_loss"], marker="o", color=VARIANT_COLORS[2])
    ax_loss.set_ylabel("training loss (label-smoothed)")
    ax_acc.plot(minutes, 100 * df["train_accuracy"], marker="o", color=VARIANT_COLORS[2])
    ax_acc.set_ylabel("training accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("training time (min); one dot per epoch")
        ax.set_xlim(0, None)
        ax.grid(True, alpha=0.3)
    return fig


def to_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure encoded as `png` or `svg`, in memory (the caller writes it atomically). Output is
    deterministic: no timestamp in the SVG, fixed SVG ids, so an unchanged figure hashes the same."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown figure format {fmt!r}; choose png or svg")
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(buf, format=fmt, dpi=DPI, facecolor="white", metadata=metadata)
    return buf.getvalue()
