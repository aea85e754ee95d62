"""The "plots" stage: figures of the trained runs, drawn from data the caller read from `artifacts/`.

Every figure function takes plain data (DataFrames, arrays, dicts) and returns a
`matplotlib.figure.Figure`; `confident_mistakes` and `per_class_rows` compute the two tables the
figures show beside them. Nothing here reads or writes a file (the invoke task loads the
artifacts, draws the figures, and writes each as PNG and SVG; `to_bytes` encodes one
reproducibly, in memory). Figures are built with `Figure()` directly, never through pyplot: no
global figure registry to leak, no GUI backend, and PNG output goes through Agg whatever backend
the caller has selected (matplotlib's "embedding in a web server" recipe). Figures have an opaque
white background so they read the same on the site's light and dark pages. Model colours are
fixed per position (first variant blue, second orange, Okabe-Ito palette: distinguishable with
colour-blind vision); train / validation / test differ by line style, so a curve is identified
without colour. Models are named as the homework names them (`pipeline.names.display`).

Legibility: the site shows a figure in its content column, scaled down to fit when it is wider
(SITE_FIGURE_PX, measured at a 1280 px window in both palettes). Every text is drawn at least
MIN_TEXT_PX tall on screen there: a full-width figure is at most WIDTH_IN inches wide and its
smallest text FONT_PT points (`smallest_text_px` measures a figure; tests/test_plots.py checks
every figure). Legends sit outside the plotted data.
"""
from __future__ import annotations

import io
import math
import re

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from pipeline.names import display

# Okabe & Ito (2008) colour-blind-safe palette: blue, orange, bluish green, vermillion.
VARIANT_COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00")
SPLIT_STYLES = {"train": "-", "val": "--", "test": ":"}  # line style per data split
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
RIGHT, WRONG = "#1a7f37", "#cf222e"  # sample-grid prediction colours (plus a ✓ / ✗ mark)
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
               "test_loss", "test_accuracy")  # the log.csv columns a curve needs (ARTIFACTS.md)
DPI = 150  # PNG resolution: sharp on high-density screens at the site's content width
SVG_HASH_SALT = "lenet-cifar10"  # fixed SVG element ids, so rerunning gives byte-identical files

# How the site shows a figure, measured in chromium at a 1280 px wide window: the content column
# is 688 px wide, and the dark palette pads figures by 0.3rem (6 px) a side (docs/stylesheets/
# extra.css), leaving 676 px. A wider figure is scaled down to that width; a narrower one is shown
# at its natural width, 96 px per inch for an SVG and DPI px per inch for a PNG.
SITE_FIGURE_PX = 676
SVG_PX_PER_IN = 96
# The smallest text on screen: the site's small print is 0.64rem (tables, 12.8 px at its 20 px
# root; 10.2 px at a 16 px root) and its inline code 10.9 px; no figure text is smaller than 11 px.
MIN_TEXT_PX = 11.0
WIDTH_IN = 8.5  # a full-column figure; 10 pt is then 10 / 72 * 676 / 8.5 = 11.05 px on screen
FONT_PT = 10    # the smallest text any figure here draws (matplotlib's default size)

# The file names (without extension) the plots task writes under artifacts/plots/; the site
# references exactly these, so they are defined once, here.
LEARNING_CURVES = "learning_curves"
PER_CLASS_ACCURACY = "per_class_accuracy"
SAMPLE_GRID = "samples"
CONFUSION_PREFIX = "confusion_"  # + variant name
MISTAKES_PREFIX = "confident_mistakes_"  # + variant name
MISTAKES_SHOWN = 12  # the gallery's images per model: 3 rows of 4


def _variant_color(i: int) -> str:
    return VARIANT_COLORS[i % len(VARIANT_COLORS)]


# --- legibility ---------------------------------------------------------------------------------

def screen_px_per_pt(width_in: float, display_px: float = SITE_FIGURE_PX,
                     natural_px_per_in: float = SVG_PX_PER_IN) -> float:
    """CSS pixels on screen of one point of text, in a figure `width_in` inches wide shown in a
    column `display_px` wide: the figure is shown min(natural width, column) wide. The SVG (96 px
    per inch) is the worst case of the two formats; a 150 dpi PNG is never shown smaller."""
    return min(natural_px_per_in, display_px / width_in) / 72


def figure_texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of a drawn figure (tick labels get their text at draw time)."""
    fig.draw_without_rendering()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


MATHTEXT_SCRIPT = 0.7  # matplotlib's mathtext draws sub- and superscripts at 0.7 of the text size


def text_pt(t: Text) -> float:
    """The size in points of a text's smallest glyphs: its font size, or 0.7 of it when it holds
    mathtext with a sub- or superscript ($w_{1}^{11}$)."""
    scripts = re.search(r"\$[^$]*[_^][^$]*\$", t.get_text())
    return t.get_fontsize() * (MATHTEXT_SCRIPT if scripts else 1.0)


def smallest_text_px(fig: Figure, display_px: float = SITE_FIGURE_PX, width_in: float | None = None,
                     natural_px_per_in: float = SVG_PX_PER_IN) -> float:
    """The smallest text of `fig` on screen, in CSS px, as the site shows the figure. width_in:
    the width it is saved at (default its figure width; a PNG cropped to its content is narrower)."""
    per_pt = screen_px_per_pt(width_in or fig.get_figwidth(), display_px, natural_px_per_in)
    return min(text_pt(t) for t in figure_texts(fig)) * per_pt


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
        A figure with two axes, each holding 3 lines (train, val, test) per variant, and one
        legend under them (colour = model, line style = split).
    """
    if not logs:
        raise ValueError("learning_curves needs the log of at least one variant")
    for variant, log in logs.items():
        missing = [c for c in LOG_COLUMNS if c not in log.columns]
        if missing:
            raise ValueError(f"log of {variant} lacks the columns {', '.join(missing)} (see ARTIFACTS.md)")
        if len(log) == 0:
            raise ValueError(f"log of {variant} has no epochs")
    fig = Figure(figsize=(WIDTH_IN, 3.8), facecolor="white", layout="constrained")
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
    handles = [Line2D([], [], color=_variant_color(i), linewidth=2.5, label=display(v)) for i, v in enumerate(logs)]
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
        title: the figure title (the caller names the model).
    Returns:
        A figure with two axes (matrix, colour bar) and n * n count annotations.
    """
    classes = list(classes)
    cm = _check_cm(cm, len(classes))
    rows = cm.sum(axis=1, keepdims=True)
    frac = cm / np.maximum(rows, 1)  # a class with no test images shows as an empty row
    # 6.4 in: an SVG 614 px wide, shown at its natural size (1.33 px per point), so 9 pt counts
    # are 12 px on screen and four digits still fit a cell.
    fig = Figure(figsize=(6.4, 5.6), facecolor="white", layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.85, label="fraction of the true class")
    n = len(classes)
    for t in range(n):
        for p in range(n):
            ax.text(p, t, f"{cm[t, p]:d}" if np.issubdtype(cm.dtype, np.integer) else f"{cm[t, p]:g}",
                    ha="center", va="center", fontsize=9 if n > 8 else FONT_PT,
                    color="white" if frac[t, p] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = cm.sum()
    accuracy = f" (accuracy {np.trace(cm) / total:.1%})" if total else ""
    ax.set_title(f"{title}{accuracy}")
    return fig


def _image_grid(images: np.ndarray, captions: list[list[tuple[str, str, str]]], header: str,
                ncols: int, cell_w: float, img: float, font: float = FONT_PT) -> Figure:
    """Images in a grid, each with its caption lines under it and a header line on top.

    Placed by hand (inches), not by a layout engine: each cell is an image with its text lines
    under it, and equal-aspect images inside a layout engine drift away from their captions.
    Args: images (K, H, W, 3) uint8; captions: per image, lines of (text, colour, weight);
    header: the text on top (may hold newlines); cell_w, img: a cell's width and the image's
    side, in inches; font: caption size in points (the header is 1 pt larger).
    Returns: a figure with K axes, each holding its caption lines as texts, in order.
    """
    k = len(images)
    ncols = max(1, min(ncols, k))
    nrows = -(-k // ncols)  # ceil
    line, pad = 1.3 * font / 72, 0.15  # inches per caption line; space under a cell
    cell_h = img + line * max(len(c) for c in captions) + pad
    head = 1.3 * (font + 1) / 72 * (header.count("\n") + 1) + 0.2
    fig_w, fig_h = cell_w * ncols, cell_h * nrows + head
    fig = Figure(figsize=(fig_w, fig_h), facecolor="white")
    fig.text(0.5, 1 - 0.5 * head / fig_h, header, ha="center", va="center", fontsize=font + 1)
    for i in range(k):
        r, c = divmod(i, ncols)
        left = c * cell_w + (cell_w - img) / 2
        bottom = fig_h - head - r * cell_h - img
        ax = fig.add_axes((left / fig_w, bottom / fig_h, img / fig_w, img / fig_h))
        ax.imshow(images[i], interpolation="nearest")
        ax.set_axis_off()
        for j, (text, color, weight) in enumerate(captions[i]):
            ax.annotate(text, xy=(0.5, 0), xycoords="axes fraction", xytext=(0, -2 - 72 * line * j),
                        textcoords="offset points", ha="center", va="top", fontsize=font,
                        color=color, fontweight=weight)
    return fig


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (K, H, W, 3) uint8 array, got {images.shape} {images.dtype}")
    return images


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
    images, labels, classes = _check_images(images), np.asarray(labels), list(classes)
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
    short = {v: f"M{i + 1}" for i, v in enumerate(preds)}
    captions = []
    for i in range(k):
        lines = [(f"true: {classes[labels[i]]}", "black", "bold")]
        for v, p in preds.items():
            mark, color = ("✓", RIGHT) if p[i] == labels[i] else ("✗", WRONG)
            lines.append((f"{short[v]}: {classes[p[i]]} {mark}", color, "normal"))
        captions.append(lines)
    # 6 columns of 1.4 in: 8.4 in, so 10 pt is 11.2 px on screen, and the widest caption
    # ("true: automobile" in bold, 1.36 in) still fits its cell.
    return _image_grid(images, captions, "   ".join(f"{s} = {display(v)}" for v, s in short.items()),
                       ncols, cell_w=1.4, img=1.15)


# --- the confident mistakes ---------------------------------------------------------------------

def confident_mistakes(probs: np.ndarray, labels, n: int = MISTAKES_SHOWN) -> list[dict]:
    """The `n` test images a model misclassifies with the highest confidence.

    Args:
        probs: (N, n_classes) softmax probabilities; the prediction is each row's argmax.
        labels: (N,) true class indices.
        n: at most this many rows (fewer if the model makes fewer mistakes).
    Returns:
        Rows {index, label, prediction, confidence (the predicted class's probability)}, most
        confident first; equal confidences in index order.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(f"probs must be (N, n_classes) and labels (N,), got {probs.shape} and {labels.shape}")
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    confidence = probs[wrong, pred[wrong]]
    order = wrong[np.lexsort((wrong, -confidence))][:n]  # last key first: confidence, then index
    return [{"index": int(i), "label": int(labels[i]), "prediction": int(pred[i]),
             "confidence": float(probs[i, pred[i]])} for i in order]


def _percent_down(p: float) -> str:
    """A probability as a percentage truncated to 0.01 (0.999996 is "99.99%", never "100.00%"):
    the most confident mistakes differ in the second decimal."""
    return f"{math.floor(10000 * p) / 100:.2f}%"


def mistakes_figure(images: np.ndarray, rows: list[dict], classes, variant: str, wrong: int) -> Figure:
    """The gallery of a model's most confident mistakes: each image with its true class, the
    predicted class (red) and the model's confidence in it.

    Args:
        images: (K, H, W, 3) uint8, the images of `rows` in the same order.
        rows: confident_mistakes' rows (K of them; none draws only the header).
        classes: class names, indexed by label.
        variant: the model's code name (the header shows its display name).
        wrong: how many test images it misclassifies in all (the header says so).
    Returns:
        A figure with K axes, each holding 4 texts (true, predicted, confidence, test index).
    """
    classes = list(classes)
    shown = len(rows)
    header = f"{display(variant)}\nits {shown} most confident mistakes, of {wrong:,} misclassified test images"
    if not rows:
        fig = Figure(figsize=(7.0, 1.0), facecolor="white")
        fig.text(0.5, 0.5, f"{display(variant)} misclassifies no test image", ha="center", va="center",
                 fontsize=FONT_PT + 1)
        return fig
    images = _check_images(images)
    if len(images) != shown:
        raise ValueError(f"mistakes_figure got {len(images)} images for {shown} rows")
    captions = [[(f"true: {classes[r['label']]}", "black", "bold"),
                 (f"predicted: {classes[r['prediction']]}", WRONG, "normal"),
                 (f"confidence {_percent_down(r['confidence'])}", "0.2", "normal"),
                 (f"test image {r['index']}", "0.35", "normal")] for r in rows]
    # 4 columns of 1.75 in: 7 in, an SVG 672 px wide shown at its natural size (1.33 px per point);
    # the widest caption ("predicted: automobile", 1.58 in at 10 pt) fits its cell.
    return _image_grid(images, captions, header, ncols=4, cell_w=1.75, img=1.3)


# --- per-class accuracy -------------------------------------------------------------------------

def per_class_rows(cms: dict[str, np.ndarray], classes) -> list[dict]:
    """Per class: its test images and, per variant, how many the run classifies right and the
    accuracy (right / images), from the confusion matrices (row = true class).

    Args: cms: variant -> (n, n) counts; classes: n names.
    Returns: n rows {class, images, <variant>_correct, <variant>_accuracy, ...}; a ValueError if
    the runs disagree on a class's number of test images (they were not tested on the same set).
    """
    classes = list(classes)
    if not cms:
        raise ValueError("per_class_rows needs the confusion matrix of at least one variant")
    checked = {v: _check_cm(cm, len(classes), f"confusion matrix of {v}") for v, cm in cms.items()}
    images = {v: cm.sum(axis=1) for v, cm in checked.items()}
    first = next(iter(images.values()))
    for v, counts in images.items():
        if not np.array_equal(counts, first):
            raise ValueError(f"the confusion matrix of {v} counts other test images per class than "
                             f"{next(iter(images))}'s")
    rows = []
    for i, name in enumerate(classes):
        row = {"class": name, "images": int(first[i])}
        for v, cm in checked.items():
            row[f"{v}_correct"] = int(cm[i, i])
            row[f"{v}_accuracy"] = float(cm[i, i] / max(first[i], 1))  # as per_class_accuracy draws it
        rows.append(row)
    return rows


def per_class_accuracy(cms: dict[str, np.ndarray], classes) -> Figure:
    """Test accuracy of every class (the confusion matrix's diagonal over its row sums), one bar
    per variant and class.

    Args:
        cms: variant name -> (n, n) confusion counts.
        classes: n class names.
    Returns:
        A figure with one axes holding n * len(cms) bars (one container per variant, in percent).
    """
    classes = list(classes)
    if not cms:
        raise ValueError("per_class_accuracy needs the confusion matrix of at least one variant")
    checked = {v: _check_cm(cm, len(classes), f"confusion matrix of {v}") for v, cm in cms.items()}
    n, m = len(classes), len(checked)
    width = 0.8 / m
    x = np.arange(n)
    fig = Figure(figsize=(WIDTH_IN, 3.9), facecolor="white", layout="constrained")
    ax = fig.subplots()
    for i, (v, cm) in enumerate(checked.items()):
        acc = 100 * np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
        ax.bar(x + (i - (m - 1) / 2) * width, acc, width, color=_variant_color(i), label=display(v))
    ax.set_xticks(x, classes, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Per-class test accuracy")
    fig.legend(loc="outside lower center", ncols=m, frameon=False)
    return fig


def figures(logs: dict[str, pd.DataFrame], cms: dict[str, np.ndarray], classes, images: np.ndarray,
            labels, predictions: dict[str, np.ndarray]) -> dict[str, Figure]:
    """Every figure of the reference runs but the galleries, keyed by the file name (no extension)
    it is saved under.

    Args:
        logs: variant -> log.csv DataFrame; cms: variant -> (n, n) confusion counts;
        classes: n names; images, labels: the test samples (test_samples.npz);
        predictions: variant -> predictions of those samples (from predictions.csv).
    """
    out = {LEARNING_CURVES: learning_curves(logs)}
    for v, cm in cms.items():
        out[f"{CONFUSION_PREFIX}{v}"] = confusion_matrix_figure(cm, classes, display(v))
    out[PER_CLASS_ACCURACY] = per_class_accuracy(cms, classes)
    out[SAMPLE_GRID] = sample_grid(images, labels, predictions, classes)
    return out


# --- the ablation -------------------------------------------------------------------------------

ABLATION_EFFECTS = "effects"   # under artifacts/ablation/
ABLATION_CELLS = "cells"


def _effect_label(name: str) -> str:
    """An effect's name from effects.csv on two lines when it is an interaction (the factors,
    then the levels compared), so the label column stays narrow."""
    factors, sep, levels = name.partition(": ")
    return f"{factors}:\n{levels}" if sep and " x " in factors else name


def effects_figure(effects: list[dict]) -> Figure:
    """Each main effect and interaction of the ablation as a point with its 95% interval, in
    percentage points; a dashed line at zero (an interval crossing it is not a clear effect).
    The key (main effect / interaction) sits under the axes, off the intervals.

    Args: effects: pipeline.stats.factorial_effects rows (estimate, ci_low, ci_high, effect).
    """
    if not effects:
        raise ValueError("effects_figure needs at least one effect")
    n = len(effects)
    labels = [_effect_label(e["effect"]) for e in effects]
    height = sum(0.3 + 0.17 * label.count("\n") for label in labels) + 1.6  # two-line labels need more
    fig = Figure(figsize=(WIDTH_IN, height), facecolor="white", layout="constrained")
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    est = np.array([100 * e["estimate"] for e in effects])
    lo = np.array([100 * e["ci_low"] for e in effects])
    hi = np.array([100 * e["ci_high"] for e in effects])
    colors = [VARIANT_COLORS[0] if not e["factor_b"] else VARIANT_COLORS[1] for e in effects]
    ax.hlines(y, lo, hi, colors=colors, lw=2)
    ax.scatter(est, y, c=colors, zorder=3, s=28)
    ax.axvline(0, color="0.4", ls="--", lw=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel("change in test accuracy (percentage points), 95% CI")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(handles=[Line2D([], [], color=VARIANT_COLORS[0], marker="o", label="main effect"),
                        Line2D([], [], color=VARIANT_COLORS[1], marker="o", label="interaction")],
               loc="outside lower center", ncols=2, frameon=False)
    ax.set_title("Effects on test accuracy")
    return fig


def _cell_label(cell: tuple) -> str:
    """'rescale inputs, BN, no dropout' (+ ', augmented'): a cell of the design in words."""
    preprocess, bn, dropout, augment = cell[0], cell[1], cell[2], cell[-1]
    words = [f"{preprocess} inputs", "BN" if bn else "no BN", "dropout" if dropout else "no dropout"]
    return ", ".join(words + (["augmented"] if augment else []))


def cells_figure(runs: list[dict], factors: dict) -> Figure:
    """Test accuracy of every cell of the ablation, one row per cell (labels read horizontally):
    one dot per seed, a bar at the cell mean; augmented cells (if any) at the bottom, in another
    colour.

    Args: runs: rows with the factors, `augment`, `seed` and `test_accuracy`; factors: name ->
    levels (the design's order; the first three are preprocess, batch_norm, dropout).
    Returns: a figure with one axes, one PathCollection (the seeds) per cell, in design order.
    """
    cells = sorted({(*(r[f] for f in factors), r["augment"]) for r in runs},
                   key=lambda c: (c[-1], [factors[f].index(v) for f, v in zip(factors, c)]))
    if not cells:
        raise ValueError("cells_figure needs at least one run")
    fig = Figure(figsize=(WIDTH_IN, 0.3 * len(cells) + 1.3), facecolor="white", layout="constrained")
    ax = fig.subplots()
    for i, cell in enumerate(cells):
        vals = 100 * np.array([r["test_accuracy"] for r in runs
                               if (*(r[f] for f in factors), r["augment"]) == cell])
        color = VARIANT_COLORS[2] if cell[-1] else VARIANT_COLORS[0]
        jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax.scatter(vals, i + jitter, s=16, color=color, alpha=0.8, zorder=3)
        ax.vlines(vals.mean(), i - 0.3, i + 0.3, color="0.15", lw=2, zorder=4)
        if i and (cell[0], cell[-1]) != (cells[i - 1][0], cells[i - 1][-1]):
            ax.axhline(i - 0.5, color="0.75", lw=0.8)  # a thin rule between preprocessing groups
    ax.set_yticks(range(len(cells)), [_cell_label(c) for c in cells])
    ax.set_ylim(len(cells) - 0.5, -0.5)  # the design's first cell on top
    ax.set_xlabel("test accuracy (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Every run of the ablation (dots: seeds; bar: mean)")
    return fig


def ablation_figures(runs: list[dict], effects: list[dict], factors: dict) -> dict[str, Figure]:
    return {ABLATION_EFFECTS: effects_figure(effects), ABLATION_CELLS: cells_figure(runs, factors)}


# --- CS182: dropout, filters, the own CNN -----------------------------------------------------

DROPOUT_CURVES = "dropout_curves"  # file name under artifacts/cs182/dropout/


def dropout_figure(curves: list[dict], summary: list[dict]) -> Figure:
    """Question 5(c): left, train (eval mode, solid) and validation (dashed) accuracy per epoch,
    the mean over seeds, one colour per dropout p; right, the final generalisation gap per p with
    its 95% interval (dots: seeds). The key sits under both panels.

    Args: curves: rows {p, seed, epoch, train_eval_accuracy, val_accuracy}; summary:
    pipeline.dropout.summarise rows {p, gap, gap_ci_low, gap_ci_high}.
    """
    ps = [s["p"] for s in summary]
    if not ps:
        raise ValueError("dropout_figure needs at least one p")
    fig = Figure(figsize=(WIDTH_IN, 3.9), facecolor="white", layout="constrained")
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
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    ax.set_title("Mean over seeds")
    gx.set_xticks(range(len(ps)), [f"p = {p:g}" for p in ps])
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
    cols = [("original", "original"), ("blur", "blurred\n(3x3 binomial)"),
            ("sobel_x", "Sobel x:\nvertical edges"), ("sobel_y", "Sobel y:\nhorizontal edges"),
            ("magnitude", "edge\nmagnitude")]
    fig = Figure(figsize=(WIDTH_IN, 1.75 * n + 0.6), facecolor="white", layout="constrained")
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
                ax.set_title(title, fontsize=FONT_PT)
            if j == 0:
                ax.set_ylabel(labels[i], fontsize=FONT_PT)
    return fig


FREQUENCY_TICKS = (-0.4, 0.0, 0.4)  # cycles per pixel; three ticks keep 10 pt labels apart


def frequency_figure(responses: dict) -> Figure:
    """|H(u, v)| of each hand-designed kernel (pipeline.filters.frequency_response), zero
    frequency at the centre, axes in cycles per pixel; one panel per kernel."""
    fig = Figure(figsize=(WIDTH_IN, 3.2), facecolor="white", layout="constrained")
    axes = fig.subplots(1, len(responses), squeeze=False)[0]
    for ax, (name, r) in zip(axes, responses.items()):
        size = r.shape[0]
        lo, hi = -0.5 - 0.5 / size, 0.5 - 1.5 / size  # pixel edges; fftshift puts -0.5 first
        im = ax.imshow(r, cmap="viridis", extent=(lo, hi, lo, hi), origin="lower")
        ax.set_title(f"|H| of {name}")
        ax.set_xlabel("horizontal frequency")
        ax.set_ylabel("vertical frequency")
        ax.set_xticks(FREQUENCY_TICKS)
        ax.set_yticks(FREQUENCY_TICKS)
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
    fig = Figure(figsize=(WIDTH_IN, 3.0), facecolor="white", layout="constrained")
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
    """The figure encoded as `png` or `svg`, in memory (the caller writes it atomically), on an
    opaque white background. Output is deterministic: no timestamp in the SVG, fixed SVG ids, so
    an unchanged figure hashes the same."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown figure format {fmt!r}; choose png or svg")
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(buf, format=fmt, dpi=DPI, facecolor="white", metadata=metadata)
    return buf.getvalue()
