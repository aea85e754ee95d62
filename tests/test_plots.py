"""Tests of the plots stage: each figure function on small synthetic inputs returns a Figure with the
expected axes, lines, bars and texts; bad shapes and values raise ValueError; output is deterministic.
Then the site's view of every figure (the committed artifacts' data included): text no smaller than
MIN_TEXT_PX on screen, legends off the plotted data, opaque white backgrounds; and the plots stage's
tables, checked against the files they come from: the galleries' confident mistakes against
predictions.csv, lenet/per_class.csv against predictions.csv, confusion.csv and the per-class chart."""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from pipeline import contract, findings, plots, stages
from pipeline.errors import UserError
from pipeline.names import display
from pipeline.store import Store

ROOT = Path(__file__).resolve().parents[1]
ART = ROOT / "artifacts"

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
    assert labels == [*map(display, VARIANTS), "train", "validation", "test"]
    assert labels[0] == "Model 1: BN + dropout"  # the homework's name, not the code name


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
    assert figs[plots.CONFUSION_PREFIX + "lenet_plain"].axes[0].get_title().startswith("Model 2: plain (accuracy ")
    # The same inputs give the same bytes (no date, fixed ids), so a rerun leaves the sha256 unchanged.
    # (Each figure is drawn fresh: a second draw of one figure may move the layout by rounding.)
    logs = {v: log(3, i) for i, v in enumerate(VARIANTS)}
    svg = [plots.to_bytes(plots.learning_curves(logs), "svg") for _ in range(2)]
    assert svg[0] == svg[1] and b"<dc:date>" not in svg[0]
    fig = figs[plots.LEARNING_CURVES]
    assert plots.to_bytes(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plots.to_bytes(fig, "jpg")


# --- the site's view of a figure: legible text, legends off the data, opaque backgrounds ---------

ANSWER_DPI = 120  # pipeline.answers.figures.png_bytes


def drawn(fig: Figure):
    """The figure laid out and drawn once; its renderer, for window extents in display pixels."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _no_line(style) -> bool:
    return style in (None, "None", "none", "", " ")


def data_hits(ax, box, renderer) -> list[str]:
    """What of the data plotted in `ax` has a part inside `box` (display pixels): the segments of
    every line, its markers, every path of a collection (hlines, error bars, stems), every scatter
    point with its marker's radius, every patch (bars, steps, ellipses), image, text and arrow."""
    hits = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        if not _no_line(line.get_linestyle()):
            if line.get_transform().transform_path(line.get_path()).intersects_bbox(box, filled=False):
                hits.append(f"line {line.get_label()!r}")
        if not _no_line(line.get_marker()):
            r = line.get_markersize() / 2 * renderer.dpi / 72
            xy = line.get_transform().transform(line.get_xydata())
            if any(box.x0 - r <= x <= box.x1 + r and box.y0 - r <= y <= box.y1 + r for x, y in xy):
                hits.append(f"markers of {line.get_label()!r}")
    for coll in ax.collections:
        if isinstance(coll, PathCollection):  # scatter: a marker at each offset
            xy = coll.get_offset_transform().transform(coll.get_offsets())
            r = np.sqrt(max(coll.get_sizes())) / 2 * renderer.dpi / 72
            if any(box.x0 - r <= x <= box.x1 + r and box.y0 - r <= y <= box.y1 + r for x, y in xy):
                hits.append(f"points of {type(coll).__name__}")
        else:
            for path in coll.get_paths():
                if coll.get_transform().transform_path(path).intersects_bbox(box, filled=False):
                    hits.append(f"a path of {type(coll).__name__}")
                    break
    for patch in ax.patches:
        path = patch.get_transform().transform_path(patch.get_path())
        if path.intersects_bbox(box, filled=patch.get_fill()):
            hits.append(f"patch {type(patch).__name__}")
    for artist in ax.images:
        if artist.get_window_extent(renderer).overlaps(box):
            hits.append("an image")
    for t in ax.texts:
        if t.get_text().strip() and t.get_window_extent(renderer).overlaps(box):
            hits.append(f"text {t.get_text()!r}")
        arrow = getattr(t, "arrow_patch", None)
        if arrow is not None and arrow.get_window_extent(renderer).overlaps(box):
            hits.append(f"the arrow of {t.get_text()!r}")
    return hits


def legend_overlaps(fig: Figure) -> list[str]:
    """Every legend (of the figure or of an axes) that covers plotted data, with what it covers."""
    renderer = drawn(fig)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            found += [f"legend covers {hit}" for hit in data_hits(ax, box, renderer)]
    return found


def text_overlaps(fig: Figure) -> list[str]:
    """Pairs of the figure's and its axes' own texts (titles, captions, notes: not tick labels)
    whose boxes overlap, and such texts reaching past the figure's sides."""
    renderer = drawn(fig)
    texts = [t for t in [*fig.texts, *(t for ax in fig.axes for t in ax.texts)] if t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    found = [f"{t.get_text()!r} leaves the figure" for t, b in zip(texts, boxes)
             if not fig.bbox.containsx(b.x0) or not fig.bbox.containsx(b.x1)]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if boxes[i].overlaps(boxes[j]):
                found.append(f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}")
    return found


def answer_px(fig: Figure) -> float:
    """The smallest text of an answer figure as the answer pages show it: its PNG cropped to its
    content, ANSWER_FIGURE_PX wide."""
    from pipeline.answers.figures import ANSWER_FIGURE_PX, png_bytes
    data = png_bytes(fig)
    width_px = struct.unpack(">I", data[16:20])[0]  # the PNG's IHDR width
    return plots.smallest_text_px(fig, ANSWER_FIGURE_PX, width_px / ANSWER_DPI, ANSWER_DPI)


def test_screen_size_follows_the_site_layout():
    # Measured in chromium at 1280 px (light and dark): a 10 in SVG is shown 676 px wide, so 8 pt is
    # 7.5 px; a 6.4 in SVG (614 px) is narrower than the column and shown at its natural size.
    assert plots.screen_px_per_pt(10.0) * 8 == pytest.approx(8 * 676 / 10 / 72)
    assert plots.screen_px_per_pt(6.4) == pytest.approx(96 / 72)
    assert plots.screen_px_per_pt(6.4, natural_px_per_in=plots.DPI) == pytest.approx(676 / 6.4 / 72)
    assert plots.WIDTH_IN * plots.SVG_PX_PER_IN > plots.SITE_FIGURE_PX  # full width: scaled down
    assert plots.FONT_PT * plots.screen_px_per_pt(plots.WIDTH_IN) >= plots.MIN_TEXT_PX


def test_the_legibility_measure_finds_small_text():
    fig = Figure(figsize=(plots.WIDTH_IN, 3))
    ax = fig.subplots()
    ax.set_title("title")
    assert plots.smallest_text_px(fig) >= plots.MIN_TEXT_PX  # matplotlib's 10 pt default
    ax.text(0.5, 0.5, "small", fontsize=8)
    assert plots.smallest_text_px(fig) == pytest.approx(8 * 676 / plots.WIDTH_IN / 72)
    ax.texts[0].set_text(r"$w_{1}^{11}$")
    ax.texts[0].set_fontsize(12)  # its scripts are 0.7 x 12 = 8.4 pt
    assert plots.smallest_text_px(fig) == pytest.approx(8.4 * 676 / plots.WIDTH_IN / 72)


def test_the_overlap_checks_find_a_legend_on_the_data():
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.legend(loc="center")
    assert legend_overlaps(fig) == ["legend covers line 'diagonal'"]
    ax.get_legend().remove()
    fig.legend(loc="outside lower center")
    assert legend_overlaps(fig) == []
    ax.text(0.5, 0.5, "one")
    ax.text(0.5, 0.5, "two")
    assert text_overlaps(fig) == ["'one' overlaps 'two'"]


def test_old_effects_legend_covered_an_interval():
    """The layout this stage used to draw: the key inside the axes, lower right, on the last
    interval of the committed ablation. The check must see that; the figure now has none there."""
    effects = committed_effects()
    fig = plots.effects_figure(effects)
    assert legend_overlaps(fig) == []
    for legend in list(fig.legends):
        legend.remove()
    ax = fig.axes[0]
    ax.legend(handles=[Line2D([], [], color="k", marker="o", label="main effect"),
                       Line2D([], [], color="k", marker="o", label="interaction")], loc="lower right", fontsize=8)
    assert any("LineCollection" in hit or "PathCollection" in hit for hit in legend_overlaps(fig))


def committed_effects() -> list[dict]:
    rows = Store(ART).read_csv("ablation/effects.csv")
    return [{**r, **{k: float(r[k]) for k in ("estimate", "ci_low", "ci_high")}} for r in rows]


def committed_ablation():
    from pipeline import ablation
    store = Store(ART)
    summary = store.read_json("ablation/summary.json")
    cid = summary["config"]["config_id"]
    header, raw, _ = store.read_rows("ablation/runs.csv")
    rows, _ = ablation.read_runs(header, [r for r in raw if r.get("config") == cid], cid)
    found = ablation.analyse(rows, summary["config"]["seeds"], summary["config"]["augment"])
    return found["used"], found["effects"], ablation.FACTORS


def committed_dropout():
    store = Store(ART)
    curves = [{k: float(v) for k, v in r.items()} for r in store.read_csv("cs182/dropout/curves.csv")]
    summary = [{k: float(v) if v != "" else None for k, v in r.items()}
               for r in store.read_csv("cs182/dropout/summary.csv")]
    return curves, summary


def committed_reference():
    store = Store(ART)
    variants = [r["variant"] for r in store.read_csv("lenet/summary.csv")]
    logs = {v: pd.DataFrame(store.read_csv(f"lenet/{v}/log.csv")).astype(float) for v in variants}
    cms = {v: pd.read_csv(store.path(f"lenet/{v}/confusion.csv"), index_col=0).to_numpy() for v in variants}
    preds = {v: pd.read_csv(store.path(f"lenet/{v}/predictions.csv")) for v in variants}
    return store.read_json("data/dataset.json")["classes"], logs, cms, preds


def every_figure() -> dict[str, Figure]:
    """Each figure function, drawn from the committed artifacts where they exist (the overlaps
    depend on the data) and from synthetic images otherwise (the sample cache is not committed)."""
    from pipeline import filters, gradcheck
    classes, logs, cms, preds = committed_reference()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    labels = np.full(24, classes.index("automobile"))  # the longest class name in every caption
    grid_preds = {v: np.where(np.arange(24) % 2, labels, classes.index("airplane")) for v in cms}
    out = {f"plots/{k}": f for k, f in plots.figures(logs, cms, classes, images, labels, grid_preds).items()}
    mistakes = [{"index": i, "label": 1, "prediction": 9, "confidence": 0.99 - i / 100} for i in range(12)]
    out["plots/confident_mistakes"] = plots.mistakes_figure(images[:12], mistakes, classes, "lenet_bn_dropout", 3641)
    out.update({f"ablation/{k}": f for k, f in plots.ablation_figures(*committed_ablation()).items()})
    out["cs182/dropout/dropout_curves"] = plots.dropout_figure(*committed_dropout())
    chosen = images[:6].astype(np.float64) / 255
    outputs = {"original": chosen.transpose(0, 3, 1, 2), "blur": chosen.transpose(0, 3, 1, 2),
               **{k: rng.standard_normal((6, 1, 32, 32)) for k in ("sobel_x", "sobel_y")},
               "magnitude": rng.random((6, 1, 32, 32))}
    out["cs182/filters_images"] = plots.filters_figure(outputs, ["automobile"] * 6)
    out["cs182/filters_response"] = plots.frequency_figure(
        {n: filters.frequency_response(k) for n, k in filters.KERNELS.items()})
    out["cs182/bn_graph"] = gradcheck.bn_graph_figure()
    own = Store(ART).read_csv("own_cnn/log.csv")
    out["own_cnn/own_cnn_log"] = plots.own_log_figure([{k: float(v) for k, v in r.items()} for r in own])
    return out


@pytest.fixture(scope="module")
def site_figures():
    return every_figure()


@pytest.fixture(scope="module")
def answer_figures():
    from pipeline.answers.figures import figures
    return figures(json.loads((ART / "answers.json").read_text()))


def test_every_figure_is_legible_on_the_site(site_figures, answer_figures):
    px = {name: plots.smallest_text_px(fig) for name, fig in site_figures.items()}
    px |= {f"answers/{name}": answer_px(fig) for name, fig in answer_figures.items()}
    assert len(px) == 19  # 13 figures of the site's pages, 6 of the answer pages
    small = {name: round(v, 1) for name, v in px.items() if v < plots.MIN_TEXT_PX}
    assert small == {}, f"smallest text on screen (px), below {plots.MIN_TEXT_PX}"


def test_no_legend_covers_plotted_data(site_figures, answer_figures):
    figures = {**site_figures, **{f"answers/{k}": f for k, f in answer_figures.items()}}
    found = {name: hits for name, fig in figures.items() if (hits := legend_overlaps(fig))}
    assert found == {}


@pytest.mark.parametrize("name", ["plots/samples", "plots/confident_mistakes"])
def test_gallery_captions_fit_their_cells(site_figures, name):
    assert text_overlaps(site_figures[name]) == []


def test_figures_name_models_as_the_homework_does(site_figures):
    texts = " ".join(t.get_text() for name, fig in site_figures.items() if name.startswith("plots/")
                     for t in plots.figure_texts(fig))
    assert "Model 1: BN + dropout" in texts and "Model 2: plain" in texts
    assert not re.search(r"\blenet_(bn_dropout|plain)\b", texts)


def test_every_committed_figure_has_an_opaque_white_background():
    pngs = list(ART.rglob("*.png"))
    svgs = list(ART.rglob("*.svg"))
    assert len(pngs) >= 20 and len(svgs) >= 12
    for path in pngs:
        rgba = np.asarray(Image.open(path).convert("RGBA"))
        assert rgba[..., 3].min() == 255, path  # nothing shows the dark page through
        assert tuple(rgba[0, 0]) == (255, 255, 255, 255), path
    for path in svgs:
        text = path.read_text()
        width, height = re.search(r'<svg[^>]* width="([\d.]+)pt" height="([\d.]+)pt"', text).groups()
        first = re.search(r'<g id="patch_1">\s*<path d="([^"]*)"\s*style="fill: (#[0-9a-f]{6})"', text)
        assert first is not None and first.group(2) == "#ffffff", path
        corners = {tuple(map(float, p.split())) for p in re.findall(r"[ML] ([\d.]+ [\d.]+)", first.group(1))}
        assert corners == {(0.0, 0.0), (float(width), 0.0), (0.0, float(height)), (float(width), float(height))}, path


# --- the galleries: the most confident mistakes ------------------------------------------------

def test_confident_mistakes_picks_the_most_confident_wrong_predictions():
    probs = np.array([[0.9, 0.1, 0.0],    # right, very confident: never a mistake
                      [0.2, 0.7, 0.1],    # wrong (label 0), 0.7
                      [0.1, 0.1, 0.8],    # wrong (label 1), 0.8
                      [0.6, 0.3, 0.1],    # wrong (label 2), 0.6
                      [0.3, 0.7, 0.0]])   # wrong (label 2), 0.7: ties with index 1, comes after it
    labels = np.array([0, 0, 1, 2, 2])
    rows = plots.confident_mistakes(probs, labels, n=3)
    assert [r["index"] for r in rows] == [2, 1, 4]
    assert rows[0] == {"index": 2, "label": 1, "prediction": 2, "confidence": 0.8}
    assert len(plots.confident_mistakes(probs, labels, n=12)) == 4  # only four mistakes
    assert plots.confident_mistakes(probs, probs.argmax(1), n=12) == []
    with pytest.raises(ValueError):
        plots.confident_mistakes(probs, labels[:-1])


def test_mistakes_figure_captions_each_image():
    rows = [{"index": 7, "label": 3, "prediction": 5, "confidence": 0.999996},
            {"index": 2, "label": 0, "prediction": 8, "confidence": 0.5}]
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    fig = plots.mistakes_figure(images, rows, CLASSES, "lenet_plain", 10)
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes] == [
        ["true: class3", "predicted: class5", "confidence 99.99%", "test image 7"],  # never rounded up to 100%
        ["true: class0", "predicted: class8", "confidence 50.00%", "test image 2"]]
    assert all(ax.texts[1].get_color() == plots.WRONG for ax in fig.axes)
    assert fig.texts[0].get_text() == "Model 2: plain\nits 2 most confident mistakes, of 10 misclassified test images"
    assert len(plots.mistakes_figure(images[:0], [], CLASSES, "lenet_plain", 0).axes) == 0
    with pytest.raises(ValueError):
        plots.mistakes_figure(images[:1], rows, CLASSES, "lenet_plain", 10)


@pytest.mark.parametrize("variant", contract.REFERENCE_VARIANTS)
def test_committed_gallery_is_really_misclassified_and_sorted(variant):
    store = Store(ART)
    rows = pd.DataFrame(store.read_csv(f"lenet/{variant}/confident_mistakes.csv")).astype(
        {"index": int, "label": int, "prediction": int, "confidence": float})
    preds = pd.read_csv(store.path(f"lenet/{variant}/predictions.csv")).set_index("index")
    assert len(rows) == plots.MISTAKES_SHOWN
    assert rows["index"].is_unique
    assert (rows["label"] != rows["prediction"]).all()  # each one a mistake ...
    # ... by predictions.csv too: same true label, same predicted class
    assert (preds.loc[rows["index"], "label"].to_numpy() == rows["label"].to_numpy()).all()
    assert (preds.loc[rows["index"], "prediction"].to_numpy() == rows["prediction"].to_numpy()).all()
    assert rows["confidence"].is_monotonic_decreasing
    assert (rows["confidence"] > 1 / len(CLASSES)).all() and (rows["confidence"] <= 1).all()  # an argmax
    assert store.exists(f"plots/{plots.MISTAKES_PREFIX}{variant}.png")
    assert store.exists(f"plots/{plots.MISTAKES_PREFIX}{variant}.svg")


@pytest.mark.slow  # reruns both reference models on the 10,000 test images (about half a minute)
@pytest.mark.parametrize("variant", contract.REFERENCE_VARIANTS)
def test_committed_gallery_is_what_the_weights_predict(variant):
    import torch
    dataset = Store(ART).read_json("data/dataset.json")
    try:
        raw = stages.plots_data(None, False, dataset)
    except UserError as e:
        pytest.skip(f"the reference's data is not here: {e}")
    store = Store(ART)
    probs = stages.reference_softmax(variant, torch.load(store.path(f"lenet/{variant}/weights.pt"),
                                                         weights_only=True), raw)
    committed = pd.read_csv(store.path(f"lenet/{variant}/predictions.csv"))["prediction"].to_numpy()
    # On another CPU the float32 forward pass sums in another order (stages.PROB_TOLERANCE): the
    # argmax must agree wherever the top two classes are apart by more than stages.ARGMAX_MARGIN.
    sure = stages.top_margin(probs) > stages.ARGMAX_MARGIN
    assert sure.mean() > 0.99 and (probs.argmax(1) == committed)[sure].all()
    y = raw["y_test"]
    written = store.read_csv(f"lenet/{variant}/confident_mistakes.csv")
    index = np.array([int(r["index"]) for r in written])
    assert len(index) == plots.MISTAKES_SHOWN and len(set(index)) == len(index)
    assert [int(r["label"]) for r in written] == y[index].tolist()
    assert [int(r["prediction"]) for r in written] == committed[index].tolist()
    assert (committed[index] != y[index]).all()  # every one a mistake
    np.testing.assert_allclose([float(r["confidence"]) for r in written], probs[index, committed[index]],
                               rtol=0, atol=stages.PROB_TOLERANCE)
    # the most confident mistakes: none left out beats the least of them beyond the tolerance
    confidence = probs[np.arange(len(y)), committed]
    others = np.setdiff1d(np.flatnonzero(committed != y), index)
    assert confidence[others].max() <= confidence[index].min() + stages.PROB_TOLERANCE


def test_check_reference_run_refuses_files_of_different_runs():
    y = np.array([0, 1, 2, 1])
    probs = np.eye(3)[[0, 1, 1, 1]]  # predicts 0, 1, 1, 1
    preds = pd.DataFrame({"index": range(4), "label": y, "prediction": [0, 1, 1, 1]})
    confusion = np.bincount(y * 3 + np.array([0, 1, 1, 1]), minlength=9).reshape(3, 3)
    stages.check_reference_run("lenet_plain", probs, preds, confusion, y)  # one run: no error
    with pytest.raises(UserError, match=r"predicts another class .* for 1 of 4 test images \(first: index 3\)"):
        stages.check_reference_run("lenet_plain", probs, preds.assign(prediction=[0, 1, 1, 2]), confusion, y)
    with pytest.raises(UserError, match="does not list the 4 test images"):
        stages.check_reference_run("lenet_plain", probs, preds.assign(label=[0, 1, 2, 2]), confusion, y)
    with pytest.raises(UserError, match="confusion.csv does not count"):
        stages.check_reference_run("lenet_plain", probs, preds, confusion + np.eye(3, dtype=int), y)
    with pytest.raises(UserError) as e:  # one line, as the task prints it
        stages.check_reference_run("lenet_plain", probs, preds.assign(prediction=[0, 1, 1, 2]), confusion, y)
    assert "\n" not in str(e.value)


def test_plots_outputs_writes_galleries_and_per_class(samples, monkeypatch):
    monkeypatch.setattr(plots, "to_bytes", lambda fig, fmt: fmt.encode())  # drawn, not encoded: fast
    images, labels, grid_preds = samples
    n = 40
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    probs = {v: rng.dirichlet(np.ones(10), n) for v in VARIANTS}
    preds = {v: pd.DataFrame({"index": range(n), "label": y, "prediction": p.argmax(1)}) for v, p in probs.items()}
    cms = {v: np.bincount(y * 10 + p.argmax(1), minlength=100).reshape(10, 10) for v, p in probs.items()}
    summary = [{"variant": v, **{k: 0.5 for k in findings.COMPARE}} for v in VARIANTS]
    logs = {v: log(3, i) for i, v in enumerate(VARIANTS)}
    sample_idx = np.arange(K)
    out = stages.plots_outputs(summary, logs, cms, preds, CLASSES, (images, labels, sample_idx), None, (x, y), probs)
    for v in VARIANTS:
        rows = out[f"lenet/{v}/confident_mistakes.csv"]
        assert rows == plots.confident_mistakes(probs[v], y)
        assert {f"plots/{plots.MISTAKES_PREFIX}{v}.{e}" for e in ("png", "svg")} <= set(out)
    per_class = out["lenet/per_class.csv"]
    assert [r["class"] for r in per_class] == CLASSES
    assert list(per_class[0]) == list(contract.PER_CLASS_COLUMNS)
    with pytest.raises(UserError, match="predicts another class"):
        bad = {**probs, "lenet_plain": np.roll(probs["lenet_plain"], 1, axis=1)}
        stages.plots_outputs(summary, logs, cms, preds, CLASSES, (images, labels, sample_idx), None, (x, y), bad)
    with pytest.raises(UserError, match="needs every reference run"):
        stages.plots_outputs(summary, logs, {"lenet_plain": cms["lenet_plain"]}, preds, CLASSES,
                             (images, labels, sample_idx), None, (x, y), probs)


# --- per-class accuracy as numbers -------------------------------------------------------------

def test_per_class_rows_match_the_chart():
    same = cm(0)
    cms = {"a": same, "b": same * np.eye(10, dtype=int) + same * (1 - np.eye(10, dtype=int))}
    rows = plots.per_class_rows(cms, CLASSES)
    fig = plots.per_class_accuracy(cms, CLASSES)
    for container, v in zip(fig.axes[0].containers, cms):
        np.testing.assert_allclose([b.get_height() for b in container], [100 * r[f"{v}_accuracy"] for r in rows])


def test_per_class_rows_need_the_same_test_set():
    same = cm(0)
    rows = plots.per_class_rows({"a": same, "b": same.copy()}, CLASSES)
    assert rows[3] == {"class": "class3", "images": int(same[3].sum()), "a_correct": int(same[3, 3]),
                       "a_accuracy": same[3, 3] / same[3].sum(), "b_correct": int(same[3, 3]),
                       "b_accuracy": same[3, 3] / same[3].sum()}
    other = same.copy()
    other[0, 1] += 1  # one more test image of class 0
    with pytest.raises(ValueError, match="other test images per class"):
        plots.per_class_rows({"a": same, "b": other}, CLASSES)


def test_committed_per_class_agrees_with_predictions_confusion_and_chart():
    store = Store(ART)
    table = pd.DataFrame(store.read_csv("lenet/per_class.csv"))
    classes = store.read_json("data/dataset.json")["classes"]
    assert list(table.columns) == list(contract.PER_CLASS_COLUMNS)
    assert table["class"].tolist() == classes
    cms = {}
    for v in contract.REFERENCE_VARIANTS:
        # independently of confusion.csv: count predictions.csv's rows per true class
        p = pd.read_csv(store.path(f"lenet/{v}/predictions.csv"))
        per = p.assign(right=p["label"] == p["prediction"]).groupby("label")["right"].agg(["size", "sum"])
        assert table["images"].astype(int).tolist() == per["size"].tolist()
        assert table[f"{v}_correct"].astype(int).tolist() == per["sum"].tolist()
        np.testing.assert_allclose(table[f"{v}_accuracy"].astype(float), per["sum"] / per["size"], rtol=1e-12)
        cms[v] = pd.read_csv(store.path(f"lenet/{v}/confusion.csv"), index_col=0).to_numpy()
        assert table[f"{v}_correct"].astype(int).tolist() == np.diag(cms[v]).tolist()
    # the per-class chart draws the same numbers (in percent)
    fig = plots.per_class_accuracy(cms, classes)
    for container, v in zip(fig.axes[0].containers, contract.REFERENCE_VARIANTS):
        np.testing.assert_allclose([b.get_height() for b in container],
                                   100 * table[f"{v}_accuracy"].astype(float), rtol=1e-12)
    assert sum(table["images"].astype(int)) == 10_000


def test_contract_names_the_reference_variants():
    from pipeline.model import VARIANTS as MODEL_VARIANTS
    assert contract.REFERENCE_VARIANTS == tuple(MODEL_VARIANTS)
    assert list(plots.per_class_rows({v: cm(0) for v in contract.REFERENCE_VARIANTS}, CLASSES)[0]) == \
        list(contract.PER_CLASS_COLUMNS)


def test_plots_data_is_the_reference_data_found_without_downloading(tiny_cifar, tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "EXPECTED_COUNTS", tiny_cifar.counts)
    monkeypatch.setattr(stages, "VAL_SIZE", 50)
    monkeypatch.delenv("CIFAR10_PATH", raising=False)
    monkeypatch.delenv("CIFAR10_ALLOW_UNOFFICIAL", raising=False)
    md5s = dict(tiny_cifar.md5s)
    dataset = {"source": str(tiny_cifar.archive), "official": False, "md5s": md5s}
    # no --source, no $CIFAR10_PATH, an empty cache: the source `invoke data` recorded, unofficial
    # data accepted because the reference was trained on it
    raw = stages.plots_data(None, False, dataset, cache_dir=tmp_path / "cache")
    assert len(raw["y_test"]) == tiny_cifar.counts[1]
    with pytest.raises(UserError, match="md5s differ"):
        stages.plots_data(None, False, {**dataset, "md5s": {**md5s, "test_batch": "0" * 32}},
                          cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="pass --source or set CIFAR10_PATH"):
        stages.plots_data(None, False, {**dataset, "source": str(tmp_path / "gone.tar.gz")},
                          cache_dir=tmp_path / "cache")


def test_a_near_tie_may_flip_on_another_cpu_but_a_clear_argmax_may_not():
    """stages.ARGMAX_MARGIN: the committed prediction of a near-tie (another CPU's float32 sums may
    flip it) is not held against the weights; a clear disagreement still is."""
    y = np.array([0, 1])
    probs = np.array([[0.5 + 1e-7, 0.5 - 1e-7], [0.1, 0.9]])  # image 0: a near-tie, predicted 0 here
    confusion = np.bincount(y * 2 + np.array([1, 1]), minlength=4).reshape(2, 2)
    preds = pd.DataFrame({"index": range(2), "label": y, "prediction": [1, 1]})  # committed: 1 (the other CPU)
    stages.check_reference_run("lenet_plain", probs, preds, confusion, y)
    clear = np.array([[0.6, 0.4], [0.1, 0.9]])
    with pytest.raises(UserError, match="predicts another class"):
        stages.check_reference_run("lenet_plain", clear, preds, confusion, y)
