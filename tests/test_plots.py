"""Tests of the plots stage: each figure function on small synthetic inputs returns a Figure with the
expected axes, lines, bars and texts; bad shapes and values raise ValueError; output is deterministic."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline import plots

CLASSES = [f"class{i}" for i in range(10)]
VARIANTS = ("lenet_bn_dropout", "lenet_plain")
K = 10  # sample images


def log(epochs: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {c: rng.random(epochs) for c in plots.LOG_COLUMNS if c != "epoch"}
    return pd.DataFrame({"epoch": np.arange(1, epochs + 1), **cols})


def cm(seed: int, n: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, (n, n))


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (K, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, K)
    preds = {v: np.where(rng.random(K) < 0.5, labels, (labels + 1) % 10) for v in VARIANTS}
    return images, labels, preds


def test_learning_curves_has_two_panels_with_three_lines_per_variant():
    fig = plots.learning_curves({v: log(5, i) for i, v in enumerate(VARIANTS)})
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.lines) == 3 * len(VARIANTS)
    # Accuracy is plotted in percent; x is the epoch.
    x, y = fig.axes[1].lines[0].get_data()
    assert list(x) == [1, 2, 3, 4, 5] and np.max(y) > 1
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [*VARIANTS, "train", "validation", "test"]


def test_learning_curves_single_epoch_draws_markers():
    fig = plots.learning_curves({"lenet_plain": log(1, 0)})
    assert all(line.get_marker() == "o" for line in fig.axes[0].lines)


@pytest.mark.parametrize("logs", [{}, {"v": log(3, 0).drop(columns="val_loss")}, {"v": log(0, 0)}])
def test_learning_curves_bad_input(logs):
    with pytest.raises(ValueError):
        plots.learning_curves(logs)


def test_confusion_matrix_figure_annotates_every_cell():
    counts = cm(0)
    fig = plots.confusion_matrix_figure(counts, CLASSES, "lenet_plain")
    assert isinstance(fig, Figure)
    ax, colorbar = fig.axes
    assert len(ax.texts) == 100
    assert [int(t.get_text()) for t in ax.texts] == counts.ravel().tolist()  # row-major, counts as given
    # The colour is the row-normalised share: each row of the image sums to 1.
    np.testing.assert_allclose(ax.images[0].get_array().sum(axis=1), 1.0)
    assert ax.get_title().startswith("lenet_plain (accuracy ")


def test_confusion_matrix_empty_row_is_zero_not_nan():
    counts = cm(1, 3)
    counts[1] = 0
    fig = plots.confusion_matrix_figure(counts, CLASSES[:3], "t")
    assert np.isfinite(fig.axes[0].images[0].get_array()).all()


@pytest.mark.parametrize("counts", [np.zeros((10, 9)), np.zeros((9, 9)), np.zeros(10), -np.ones((10, 10))])
def test_confusion_matrix_bad_input(counts):
    with pytest.raises(ValueError):
        plots.confusion_matrix_figure(counts, CLASSES, "t")


def test_sample_grid_one_axes_per_image_with_label_and_predictions(samples):
    images, labels, preds = samples
    fig = plots.sample_grid(images, labels, preds, CLASSES, ncols=4)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == K
    for i, ax in enumerate(fig.axes):
        texts = ax.texts
        assert len(texts) == 1 + len(VARIANTS)
        assert texts[0].get_text() == f"true: {CLASSES[labels[i]]}"
        for j, v in enumerate(VARIANTS):
            right = preds[v][i] == labels[i]
            assert texts[1 + j].get_color() == (plots.RIGHT if right else plots.WRONG)
            assert texts[1 + j].get_text().endswith("✓" if right else "✗")


@pytest.mark.parametrize("change", [
    lambda im, lb, pr: (im[..., :1], lb, pr),                  # one channel
    lambda im, lb, pr: (im.astype(np.float32), lb, pr),        # not uint8
    lambda im, lb, pr: (im[:0], lb[:0], pr),                   # empty
    lambda im, lb, pr: (im, lb[:-1], pr),                      # labels too short
    lambda im, lb, pr: (im, lb, {"v": pr["lenet_plain"][:-1]}),  # predictions too short
    lambda im, lb, pr: (im, lb, {}),                           # no model
    lambda im, lb, pr: (im, lb + 10, pr),                      # label out of range
])
def test_sample_grid_bad_input(samples, change):
    images, labels, preds = change(*samples)
    with pytest.raises(ValueError):
        plots.sample_grid(images, labels, preds, CLASSES)


def test_per_class_accuracy_one_bar_per_class_and_variant():
    cms = {v: cm(i) for i, v in enumerate(VARIANTS)}
    fig = plots.per_class_accuracy(cms, CLASSES)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.patches) == 10 * len(VARIANTS)
    first = [p.get_height() for p in ax.containers[0]]
    np.testing.assert_allclose(first, 100 * np.diag(cms[VARIANTS[0]]) / cms[VARIANTS[0]].sum(axis=1))


@pytest.mark.parametrize("cms", [{}, {"v": np.zeros((10, 10)), "w": np.zeros((3, 3))}])
def test_per_class_accuracy_bad_input(cms):
    with pytest.raises(ValueError):
        plots.per_class_accuracy(cms, CLASSES)


def test_figures_names_and_deterministic_bytes(samples):
    images, labels, preds = samples
    figs = plots.figures({v: log(3, i) for i, v in enumerate(VARIANTS)}, {v: cm(i) for i, v in enumerate(VARIANTS)},
                         CLASSES, images, labels, preds)
    assert set(figs) == {plots.LEARNING_CURVES, plots.PER_CLASS_ACCURACY, plots.SAMPLE_GRID,
                         *(plots.CONFUSION_PREFIX + v for v in VARIANTS)}
    # The same inputs give the same bytes (no date, fixed ids), so a rerun leaves the sha256 unchanged.
    # (Each figure is drawn fresh: a second draw of one figure may move the layout by rounding.)
    logs = {v: log(3, i) for i, v in enumerate(VARIANTS)}
    svg = [plots.to_bytes(plots.learning_curves(logs), "svg") for _ in range(2)]
    assert svg[0] == svg[1] and b"<dc:date>" not in svg[0]
    fig = figs[plots.LEARNING_CURVES]
    assert plots.to_bytes(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plots.to_bytes(fig, "jpg")
