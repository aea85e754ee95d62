"""Figures for the answer pages, drawn from the answers dict alone (what answers.json holds).

`figures(answers)` returns {name: matplotlib Figure}; the `answers` task saves each one as
artifacts/answers/<name>.png and the pages show those files. Figures are built with the
object-oriented API (matplotlib.figure.Figure, no pyplot), so nothing global is touched and no
window or file is opened here. Every number drawn comes from an answer's value, givens,
check_result or demonstration.

Legibility: the answer pages show a figure at most ANSWER_FIGURE_PX wide (the notebook output
column at a 1280 px window, measured in chromium), scaled down from its PNG, which is cropped to
its content. So every figure is at most 8 inches wide and its smallest text FONT_PT points:
10 / 72 * 648 / 8 = 11.25 px on screen, no smaller than the site's small print. Legends sit under
the plots, off the data; backgrounds are opaque white, so the figures read on the dark palette.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Rectangle
from matplotlib.ticker import FuncFormatter

from pipeline.answers.conv import conv_output_size

ANSWER_FIGURE_PX = 648  # the notebook output column at a 1280 px window (both palettes)
PNG_DPI = 120
FONT_PT = 10            # the smallest text of any figure here


def _numbers(ax, M, fmt="{:g}", **kw):
    for (r, c), v in np.ndenumerate(np.asarray(M)):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=kw.get("fontsize", FONT_PT))


def conv_sliding_window(a: dict, key: str = "cs182.q2.d.stride2_pad1", at=(0, 1)) -> Figure:
    """CS182 2(d): the zero-padded input, the window that produces output `at`, the flipped kernel,
    and the output with that value marked; dots mark every window's top-left corner."""
    g, y = a[key]["givens"], np.asarray(a[key]["value"])
    x, h, s, p = np.asarray(g["x"]), np.asarray(g["h"]), g["stride"], g["padding"]
    xp = np.pad(x, p)
    k = h.shape[0]
    fig = Figure(figsize=(8, 3.9), facecolor="white", layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[xp.shape[1], k, y.shape[1]])
    ax1.imshow(xp, cmap="Blues", alpha=0.6)
    _numbers(ax1, xp)
    top, left = at[0] * s, at[1] * s
    ax1.add_patch(Rectangle((left - 0.5, top - 0.5), k, k, fill=False, lw=2.5, color="tab:red"))
    n_out = conv_output_size(x.shape[0], k, s, p)
    for r in range(n_out):
        for c in range(n_out):
            ax1.plot(c * s - 0.35, r * s - 0.35, "o", ms=3, color="tab:red")
    ax1.set_title(f"x zero-padded by {p};\nwindow of output {tuple(at)} (stride {s})")
    ax2.imshow(h[::-1, ::-1], cmap="coolwarm", vmin=-np.abs(h).max(), vmax=np.abs(h).max())
    _numbers(ax2, h[::-1, ::-1])
    ax2.set_title("h rotated 180°\n(eq. 2 flips h)")
    ax3.imshow(y, cmap="Greens", alpha=0.6)
    _numbers(ax3, y)
    ax3.add_patch(Rectangle((at[1] - 0.5, at[0] - 0.5), 1, 1, fill=False, lw=2.5, color="tab:red"))
    ax3.set_title(f"y\n({y.shape[0]}x{y.shape[1]})")
    for ax in (ax1, ax2, ax3):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Convolution as a sliding window (CS182 2(d))")
    return fig


def conv_matrix_heatmap(a: dict, key: str = "coms573.q3.A") -> Figure:
    """COM S 573 3(a): A as a heat map, one colour per weight symbol, zeros white."""
    A = a[key]["value"]
    symbols = sorted({s for row in A for s in row if s != "0"})
    index = {s: n + 1 for n, s in enumerate(symbols)}
    M = np.array([[index.get(s, 0) for s in row] for row in A], dtype=float)
    M[M == 0] = np.nan  # zeros blank
    fig = Figure(figsize=(0.8 * len(A[0]) + 1.3, 0.75 * len(A) + 1.3), facecolor="white", layout="constrained")
    ax = fig.subplots()
    ax.imshow(M, cmap="tab20", vmin=1, vmax=max(20, len(symbols)))
    for (r, c), s in np.ndenumerate(np.array(A, dtype=object)):
        if s == "0":
            label = "0"
        else:  # "w1^21" -> $w_{1}^{21}$
            k, ij = s[1:].split("^")
            label = f"$w_{{{k}}}^{{{ij}}}$"
        ax.text(c, r, label, ha="center", va="center", fontsize=14)  # its scripts: 0.7 x 14 = 9.8 pt
    gv = a[key].get("demonstration", {})
    ax.set_xticks(range(len(A[0])), gv.get("X_flat", range(len(A[0]))))
    ax.set_yticks(range(len(A)), gv.get("Y_flat", range(len(A))))
    ax.set_title("A in  Y~ = A X~:\neach kernel tap repeats along a diagonal")
    return fig


def bn_distributions(a: dict) -> Figure:
    """CS182 1(a): histograms and densities before/after batch norm; 1(b): 1-SD and 2-SD contours.
    Colour is input / after batch norm in both panels; one key under both."""
    d = a["cs182.q1.a.mean"]["demonstration"]
    beta, gamma = a["cs182.q1.a.mean"]["value"], a["cs182.q1.a.std"]["value"]
    fig = Figure(figsize=(8, 4.4), facecolor="white", layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    handles = []
    for hist, mean, std, color, label in (
            (d["histogram_in"], d["input_mean"], d["input_std"], "tab:blue", "input"),
            (d["histogram_out"], beta, gamma, "tab:orange", "after batch norm")):
        edges, counts = np.asarray(hist["edges"]), np.asarray(hist["counts"], float)
        density = counts / (counts.sum() * np.diff(edges))
        ax1.stairs(density, edges, fill=True, alpha=0.35, color=color)
        t = np.linspace(edges[0], edges[-1], 300)
        line, = ax1.plot(t, np.exp(-0.5 * ((t - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)), color=color,
                         label=f"{label}: N({mean:g}, {std ** 2:g})")
        handles.append(line)
    ax1.axvline(beta, color="k", ls="--", lw=1)
    ax1.annotate(r"$\beta$", (beta, ax1.get_ylim()[1] * 0.9), xytext=(5, 0), textcoords="offset points")
    ax1.set_xticks(d["axis_ticks"])  # beta +- k gamma: the scale 1(a) asks for
    ax1.set_xlabel("value")
    ax1.set_ylabel("density")
    ax1.set_title("1(a): same shape,\nmoved to beta, width gamma")

    b = a["cs182.q1.b.cov"]
    mean_in, cov_in = np.asarray(b["demonstration"]["input_mean"]), np.asarray(b["demonstration"]["input_cov"])
    cov_out, mean_out = np.asarray(b["value"]), np.asarray(a["cs182.q1.b.mean"]["value"])
    for mean, cov, color in ((mean_in, cov_in, "tab:blue"), (mean_out, cov_out, "tab:orange")):
        evals, evecs = np.linalg.eigh(cov)
        angle = math.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
        for r, ls in ((1, "-"), (2, "--")):
            ax2.add_patch(Ellipse(mean, 2 * r * math.sqrt(evals[1]), 2 * r * math.sqrt(evals[0]), angle=angle,
                                  fill=False, color=color, ls=ls, lw=1.8))
        ax2.plot(*mean, "x", color=color, ms=9)
    lim = np.abs(np.concatenate([mean_in + 2.5 * np.sqrt(np.diag(cov_in)),
                                 mean_in - 2.5 * np.sqrt(np.diag(cov_in))])).max()
    ax2.set_xlim(-lim, lim)
    ax2.set_ylim(-lim, lim)
    ax2.set_aspect("equal")
    ax2.grid(alpha=0.3)
    ax2.set_title("1(b): centred, unit variance\nper axis; correlation kept")
    handles += [Line2D([], [], color="0.2", lw=1.8, ls=ls, label=f"1(b): {r} SD contour")
                for r, ls in ((1, "-"), (2, "--"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    return fig


def bn_running_stats(a: dict, key: str = "csce421.q3.train_vs_test") -> Figure:
    """Running mean / variance of torch.nn.BatchNorm1d against the population values (dashed)."""
    rs = a[key]["demonstration"]["running_stats"]
    means, variances = np.asarray(rs["running_mean"]), np.asarray(rs["running_var"])
    steps = np.arange(1, means.shape[0] + 1)
    fig = Figure(figsize=(8, 3.9), facecolor="white", layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for u in range(means.shape[1]):
        line, = ax1.plot(steps, means[:, u], lw=1.2, label=f"unit {u + 1}")
        ax1.axhline(rs["population_mean"][u], color=line.get_color(), ls="--", lw=0.8)
        line, = ax2.plot(steps, variances[:, u], lw=1.2, label=f"unit {u + 1}")
        ax2.axhline(rs["population_var"][u], color=line.get_color(), ls="--", lw=0.8)
    ax1.set_title(f"running mean\n(momentum {rs['momentum']}, batches of {rs['batch_size']})")
    ax2.set_title("running variance\n(unbiased batch variances)")
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")
        ax.set_xscale("log")
        # 1, 10, 100 rather than 10^0, 10^1, 10^2: mathtext exponents are drawn at 0.7 of the size
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    handles = ax1.get_legend_handles_labels()[0] + [
        Line2D([], [], color="0.3", ls="--", lw=0.8, label="population value")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


def receptive_field_growth(a: dict) -> Figure:
    """CS182 3(c), 3(d): receptive field against depth, formula and autograd measurement."""
    cases = a["cs182.q3.c.receptive_field"]["check_result"]["cases"]
    fig = Figure(figsize=(7, 4.6), facecolor="white", layout="constrained")
    ax = fig.subplots()
    for k in sorted({c["K"] for c in cases}):
        rows = [c for c in cases if c["K"] == k]
        L = [c["L"] for c in rows]
        line, = ax.plot(L, [c["formula"] for c in rows], "-", label=f"K = {k}")
        ax.plot(L, [c["autograd"] for c in rows], "o", color=line.get_color(), mfc="none")
    rf = a["cs182.q3.d.receptive_field"]["value"]
    # The note in the top left corner, which the lines (all rising from the left) leave empty.
    top = max(c["formula"] for c in cases)
    ax.annotate(f"conv3-pool2-conv3: {rf['conv_pool_conv']}\n(conv3-conv3: {rf['conv_conv']})",
                xy=(2, rf["conv_pool_conv"]), xytext=(min(c["L"] for c in cases), top),
                ha="left", va="top", arrowprops={"arrowstyle": "->"}, fontsize=FONT_PT)
    ax.plot([2], [rf["conv_pool_conv"]], "s", color="k")
    ax.set_xticks(sorted({c["L"] for c in cases}))
    ax.set_xlabel("number of stride-1 conv layers L")
    ax.set_ylabel("receptive field (input pixels)")
    ax.set_title("Receptive field growth:\nlines = formula 1 + L(K-1), circles = autograd")
    fig.legend(loc="outside lower center", ncols=len({c["K"] for c in cases}), frameon=False)
    return fig


def fir_1d(a: dict) -> Figure:
    """CS182 2(a), 2(b): the boxcar, y = x * h on the requested window, and the shifted output."""
    ya, yb = a["cs182.q2.a.y"], a["cs182.q2.b.y2"]
    fig = Figure(figsize=(8, 3.6), facecolor="white", layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    n = np.asarray(ya["givens"]["n"])
    x = np.asarray(ya["givens"]["x"])
    xs = np.zeros(n.size)
    xs[(n >= 0) & (n < x.size)] = x[: ((n >= 0) & (n < x.size)).sum()]
    ax1.stem(n, xs, linefmt="C0-", markerfmt="C0o", basefmt=" ", label="x(n)")
    ax1.stem(n + 0.15, ya["value"], linefmt="C1-", markerfmt="C1s", basefmt=" ", label="y(n) = x * h")
    ax1.set_title("2(a): y = x * h (h assumed = x)")
    n2 = np.asarray(yb["givens"]["n"])
    ax2.stem(n2, yb["value"], linefmt="C2-", markerfmt="C2s", basefmt=" ", label=f"y2(n), N = {yb['givens']['N']}")
    ax2.set_title("2(b): shifted input,\nshifted output")
    for ax in (ax1, ax2):
        ax.set_xlabel("n")
        ax.grid(alpha=0.3)
    fig.legend(handles=[*ax1.get_legend_handles_labels()[0], *ax2.get_legend_handles_labels()[0]],
               loc="outside lower center", ncols=3, frameon=False)
    return fig


def figures(answers: dict) -> dict[str, Figure]:
    """{name: Figure} for every figure of the answer pages; the caller saves <name>.png."""
    return {"conv_sliding_window": conv_sliding_window(answers),
            "conv_matrix_A": conv_matrix_heatmap(answers),
            "bn_distributions": bn_distributions(answers),
            "bn_running_stats": bn_running_stats(answers),
            "receptive_field": receptive_field_growth(answers),
            "fir_1d": fir_1d(answers)}


def png_bytes(fig: Figure) -> bytes:
    """A figure as the answer pages show it: PNG at PNG_DPI, cropped to its content, on opaque
    white, without the matplotlib version in its metadata (so an unchanged figure has unchanged
    bytes)."""
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight", facecolor="white",
                metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
