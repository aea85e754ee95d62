"""Every backward pass of pipeline.numpy_layers checked twice, as data the site can publish (CS182 HW3 q5).

`gradient_checks` runs each layer's forward and backward on small float64 inputs and compares every
gradient it returns with (1) centred finite differences (`eval_numerical_gradient_array`, elementwise
`rel_error`, threshold GRADCHECK_THRESHOLD) and (2) torch autograd on the same inputs (F.linear,
F.relu, the same dropout mask, F.batch_norm in training mode, F.conv2d, F.max_pool2d; error relative
to the largest reference value, threshold TORCH_THRESHOLD). It returns one plain dict per gradient,
the rows of artifacts/cs182/gradchecks.csv. `bn_graph_figure` draws question 5(a)'s batch-norm
computational graph from `BN_GRAPH`, the list the forward code follows line by line, so the picture
cannot drift from the code. Nothing here writes a file (tasks.py's `layers` task does). The backward
functions are looked up on the module at call time, so a test can swap one for a wrong one and watch
its row fail. tests/test_numpy_layers.py checks the same layers independently, with more cases.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from pipeline.contract import GRADCHECK_COLUMNS as COLUMNS  # the contract owns the header
from pipeline import numpy_layers as L

# Centred differences in float64 with h = 1e-5: truncation ~h^2 * f''' plus rounding ~1e-16 / h, so
# on these O(1) inputs the worst elementwise relative error is ~1e-9 to 1e-8 (cs231n's own bar is 1e-7).
GRADCHECK_THRESHOLD = 1e-7
# Against torch in float64 only the order of summation differs: ~1e-15 of the largest value. Relative
# to the largest reference value, not elementwise: batch-norm's dx sums to zero over the batch, so
# some entries are zero up to rounding and their elementwise ratio means nothing.
TORCH_THRESHOLD = 1e-12
SEED = 0  # of the inputs; each layer draws from its own stream, so adding a check changes no other
P_DROP = 0.4  # dropout's drop probability in its check (any p in (0, 1) exercises the mask)
CONV_SETTINGS = ((1, 1), (2, 1))  # (stride, pad): the homework's two cases (question 2(d))


def torch_rel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|: the error relative to the size of the reference."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise ValueError(f"shapes differ: ours {ours.shape}, torch {ref.shape}")
    return float(np.max(np.abs(ours - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def _torch_grads(fn: Callable, arrays: tuple, dout: np.ndarray) -> list[np.ndarray]:
    """Gradients of sum(fn(*tensors) * dout) with respect to each array, by torch autograd in float64."""
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    fn(*leaves).backward(torch.from_numpy(np.asarray(dout, dtype=np.float64)))
    return [t.grad.numpy() for t in leaves]


def _rows(layer: str, backward: str, names: tuple[str, ...], inputs: tuple, forward: Callable,
          torch_fn: Callable, rng: np.random.Generator) -> list[dict]:
    """One row per input of `forward`: its gradient from L.<backward> against finite differences
    and torch. forward(*inputs) -> (out, cache); torch_fn(*tensors) -> out as a tensor."""
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = getattr(L, backward)(dout, cache)  # looked up now: a test may have replaced it
    grads = grads if isinstance(grads, tuple) else (grads,)
    refs = _torch_grads(torch_fn, inputs, dout)
    rows = []
    for k, (name, analytic, ref) in enumerate(zip(names, grads, refs)):
        def f(v, k=k):
            return forward(*inputs[:k], v, *inputs[k + 1:])[0]
        numeric = L.rel_error(analytic, L.eval_numerical_gradient_array(f, inputs[k], dout))
        versus_torch = torch_rel_error(analytic, ref)
        rows.append({"layer": layer, "backward": backward, "gradient": name,
                     "shape": "x".join(map(str, np.shape(analytic))),
                     "numeric_rel_error": numeric, "torch_rel_error": versus_torch,
                     "threshold": GRADCHECK_THRESHOLD, "torch_threshold": TORCH_THRESHOLD,
                     "passed": bool(numeric < GRADCHECK_THRESHOLD and versus_torch < TORCH_THRESHOLD)})
    return rows


def _away_from_zero(rng, shape, margin=0.1):
    """Normal values with |v| >= margin: a finite-difference step must not cross ReLU's kink."""
    v = rng.standard_normal(shape)
    return np.where(np.abs(v) < margin, np.sign(v + 1e-12) * margin + v, v)


def _distinct(rng, shape):
    """A shuffled grid of values 0.05 apart: no max-pool window has a tie a step of 1e-5 could flip."""
    return rng.permutation(np.arange(np.prod(shape)) * 0.05 - 1.0).reshape(shape)


def gradient_checks(seed: int = SEED) -> list[dict]:
    """Every backward of pipeline.numpy_layers against finite differences and torch autograd.

    Returns one dict per gradient with the keys of COLUMNS: layer (a readable name), backward (the
    function checked), gradient (dx, dw, ...), shape ("3x2x4"), numeric_rel_error, torch_rel_error,
    threshold (GRADCHECK_THRESHOLD), torch_threshold (TORCH_THRESHOLD) and passed (both below).
    """
    def rng(k):  # one independent stream per layer
        return np.random.default_rng([seed, k])

    rows = []
    r = rng(0)  # affine: x (N, d1, d2) flattens to D = 8; torch keeps w as (M, D), ours is (D, M)
    x, w, b = r.standard_normal((3, 2, 4)), r.standard_normal((8, 5)), r.standard_normal(5)
    rows += _rows("affine", "affine_backward", ("dx", "dw", "db"), (x, w, b), L.affine_forward,
                  lambda tx, tw, tb: F.linear(tx.reshape(tx.shape[0], -1), tw.T, tb), r)
    r = rng(1)
    rows += _rows("ReLU", "relu_backward", ("dx",), (_away_from_zero(r, (4, 5)),), L.relu_forward,
                  F.relu, r)

    # Dropout in training mode: the same seed gives the same mask, so the forward is a fixed
    # function of x; torch applies that mask as a product (F.dropout would draw its own).
    r = rng(2)
    mask_seed = int(r.integers(2 ** 31))
    x = r.standard_normal((4, 7))
    mask = L.dropout_forward(x, P_DROP, True, rng=mask_seed)[1].mask
    rows += _rows("dropout (train)", "dropout_backward", ("dx",), (x,),
                  lambda v: L.dropout_forward(v, P_DROP, True, rng=mask_seed),
                  lambda t: t * torch.from_numpy(mask), r)
    r = rng(3)
    mask_seed = int(r.integers(2 ** 31))
    x = r.standard_normal((3, 4, 2, 3))
    mask = L.spatial_dropout_forward(x, P_DROP, True, rng=mask_seed)[1].mask  # (N, C, 1, 1)
    rows += _rows("spatial dropout (train)", "spatial_dropout_backward", ("dx",), (x,),
                  lambda v: L.spatial_dropout_forward(v, P_DROP, True, rng=mask_seed),
                  lambda t: t * torch.from_numpy(mask), r)

    # Batch-norm in training mode, both backward forms on the same inputs; F.batch_norm updates
    # the running buffers in place, so it gets fresh copies every call.
    r = rng(4)
    x, gamma, beta = 3.0 * r.standard_normal((6, 4)) + 2.0, r.standard_normal(4), r.standard_normal(4)
    running = L.RunningStats(r.standard_normal(4), r.uniform(0.5, 2.0, 4))

    def bn_torch(tx, tg, tb):
        return F.batch_norm(tx, torch.tensor(running.mean), torch.tensor(running.var), tg, tb,
                            training=True, momentum=L.BN_MOMENTUM, eps=L.BN_EPS)

    def bn(xv, g, bv):
        out, cache, _ = L.batchnorm_forward(xv, g, bv, running, train=True)
        return out, cache

    for layer, backward in (("batch-norm, step by step", "batchnorm_backward"),
                            ("batch-norm, closed form", "batchnorm_backward_alt")):
        rows += _rows(layer, backward, ("dx", "dgamma", "dbeta"), (x, gamma, beta), bn, bn_torch,
                      np.random.default_rng([seed, 4, 1]))  # the same dout for both forms
    r = rng(5)
    x, gamma, beta = 2.0 * r.standard_normal((2, 3, 3, 4)) - 1.0, r.standard_normal(3), r.standard_normal(3)
    running = L.RunningStats(r.standard_normal(3), r.uniform(0.5, 2.0, 3))

    def sbn(xv, g, bv):
        out, cache, _ = L.spatial_batchnorm_forward(xv, g, bv, running, train=True)
        return out, cache

    rows += _rows("spatial batch-norm", "spatial_batchnorm_backward", ("dx", "dgamma", "dbeta"),
                  (x, gamma, beta), sbn, bn_torch, r)

    # Convolution: the naive loops and im2col on the same inputs, for both (stride, pad) settings.
    for k, (stride, pad) in enumerate(CONV_SETTINGS):
        r = rng(6 + k)
        x, w, b = r.standard_normal((2, 3, 5, 5)), r.standard_normal((4, 3, 3, 3)), r.standard_normal(4)
        for kind, forward in (("naive", L.conv_forward_naive), ("im2col", L.conv_forward_im2col)):
            rows += _rows(f"conv {kind}, stride {stride} pad {pad}", f"conv_backward_{kind}",
                          ("dx", "dw", "db"), (x, w, b),
                          lambda xv, wv, bv, f=forward: f(xv, wv, bv, stride, pad),
                          lambda tx, tw, tb: F.conv2d(tx, tw, tb, stride=stride, padding=pad),
                          np.random.default_rng([seed, 6 + k, 1]))

    # Max-pool 2x2 stride 2, the homework's pool, naive and fast.
    r = rng(8)
    x = _distinct(r, (2, 3, 4, 6))
    for kind, forward in (("naive", L.max_pool_forward_naive), ("fast", L.max_pool_forward_fast)):
        rows += _rows(f"max-pool {kind}, 2x2 stride 2", f"max_pool_backward_{kind}", ("dx",), (x,),
                      lambda v, f=forward: f(v, 2, 2, 2), lambda t: F.max_pool2d(t, 2, 2),
                      np.random.default_rng([seed, 8, 1]))
    return rows


# --- question 5(a): the batch-norm computational graph ------------------------------------------------

FORWARD_COLOR, BACKWARD_COLOR = "#000000", "#D55E00"  # Okabe-Ito vermillion: tells the passes apart
# The question's names for the code's variables (BN_GRAPH's comment: var is sigma^2, xhat is Z).
QUESTION_NAMES = {"x": "X", "gamma": "γ", "beta": "β", "mu": "µ", "var": "σ²", "xhat": "Z", "y": "Y"}
# Layout, in inches (the axes map one data unit to one inch): the graph runs top to bottom.
ROW_STEP = 1.0      # between consecutive depths
SIBLING_STEP = 2.2  # between nodes of the same depth (gamma, beta beside xhat)
ARC_BULGE = 1.7     # how far an edge that skips rows bows out: clears the widest box between
PAIR_OFFSET = 0.07  # a straight edge's forward and backward arrows, side by side
# Text sizes: the figure comes out about 6 in wide, narrower than the site's column, so its SVG is
# shown at its natural size, 96 px per inch: 9 pt is 12 px on screen (pipeline/plots.py, MIN_TEXT_PX).
FONT_PT = 10        # node labels, monospace: CHAR_PT wide per character, so boxes can be sized
EDGE_FONT_PT = 9    # the dL/d<node> label of each backward arrow
TITLE_PT = 12
CHAR_PT, BOX_PAD_PT = 0.6 * FONT_PT, 0.35 * FONT_PT
SANS_CHAR_EM = 0.62  # DejaVu Sans is at most this wide per character on average (for the margins)
MARGIN = 0.2         # inches of white around the drawing


def _layout() -> dict[str, tuple[float, float]]:
    """(x, y) of every graph input and node. A node's depth (row) is one more than its deepest
    input's; an input sits one row above its first user. Nodes sharing a row spread sideways."""
    depth = {}
    for node, _, inputs in L.BN_GRAPH:
        depth[node] = 1 + max(depth.get(i, 0) for i in inputs)
    for name in L.BN_GRAPH_INPUTS:
        depth[name] = min(depth[n] for n, _, ins in L.BN_GRAPH if name in ins) - 1
    pos, used = {}, {}
    for name in [n.node for n in L.BN_GRAPH] + list(L.BN_GRAPH_INPUTS):
        k = used.get(depth[name], 0)
        used[depth[name]] = k + 1
        side = SIBLING_STEP * ((k + 1) // 2) * (-1 if k % 2 else 1)  # 0, -1, +1, -2, ...: gamma left
        pos[name] = (side, -ROW_STEP * depth[name])
    return pos


def _half_box(label: str) -> tuple[float, float]:
    """Half width and half height in inches of a node's box (monospace text plus its padding)."""
    lines = label.split("\n")
    w = max(map(len, lines)) * CHAR_PT / 2 + BOX_PAD_PT
    h = len(lines) * 1.2 * FONT_PT / 2 + BOX_PAD_PT
    return w / 72, h / 72


def _shrink_pt(half: tuple[float, float], towards: np.ndarray) -> float:
    """Points from a box's centre to its edge in direction `towards`, plus a gap that also covers
    the sideways shift of a straight edge's two arrows."""
    u = towards / np.hypot(*towards)
    hw, hh = half
    return 72 * min(hw / max(abs(u[0]), 1e-9), hh / max(abs(u[1]), 1e-9)) + 3 + 72 * PAIR_OFFSET


def bn_graph_figure() -> Figure:
    """Question 5(a): training-time batch-norm drawn from L.BN_GRAPH, top to bottom. Inputs x,
    gamma, beta (grey boxes) and the nodes in forward order (white boxes: the code's name, the
    question's symbol, the NumPy expression); per edge a solid forward arrow and a dashed backward
    arrow labelled with the gradient it carries back, dL/d<source> (a node with two users, xc and
    x, receives the sum of two such gradients). The title and the key sit above the graph; the
    figure is as wide as what it draws, so its text stays legible on the site."""
    pos = _layout()
    expressions = {n.node: n.expression for n in L.BN_GRAPH}
    labels = {name: name + (f"  ({QUESTION_NAMES[name]})" if name in QUESTION_NAMES else "")
              + (f"\n{expressions[name]}" if name in expressions else "") for name in pos}
    ys = [p[1] for p in pos.values()]
    # Left: the widest box or the forward arcs (their middle is ARC_BULGE out); right: also the
    # backward labels, written from just right of the arcs (or of the edges' middles).
    label_w = max(len(f"dL/d{i}") for n in L.BN_GRAPH for i in n.inputs) * SANS_CHAR_EM * EDGE_FONT_PT / 72
    left = min(min(x - _half_box(labels[n])[0] for n, (x, _) in pos.items()), -ARC_BULGE)
    right = max(max(x + _half_box(labels[n])[0] for n, (x, _) in pos.items()), ARC_BULGE + 0.08 + label_w)
    x_lim = (left - MARGIN, right + MARGIN)
    y_lim = (min(ys) - 0.45 - MARGIN, max(ys) + 1.45)  # top: the title, the key under it
    height = y_lim[1] - y_lim[0]
    fig = Figure(figsize=(x_lim[1] - x_lim[0], height), facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*x_lim)
    ax.set_ylim(*y_lim)
    ax.set_axis_off()
    for name, (cx, cy) in pos.items():
        ax.text(cx, cy, labels[name], ha="center", va="center", fontsize=FONT_PT, family="monospace",
                linespacing=1.2, zorder=3, gid=f"node-{name}",
                bbox={"boxstyle": f"round,pad={BOX_PAD_PT / FONT_PT}", "edgecolor": FORWARD_COLOR,
                      "facecolor": "#e6e6e6" if name in L.BN_GRAPH_INPUTS else "white"})
    for node, _, inputs in L.BN_GRAPH:
        for source in inputs:
            a, b = np.array(pos[source]), np.array(pos[node])
            d = b - a
            skips = d[0] == 0 and abs(d[1]) > ROW_STEP  # would pass through the boxes between: bow out
            # arc3 puts its control point rad * (dy, -dx) from the chord's midpoint; the curve's
            # middle is halfway there. Going down (forward) that is to the left, going up to the right.
            rad = 2 * ARC_BULGE / np.hypot(*d) if skips else 0.0
            off = np.zeros(2) if skips else np.array([-d[1], d[0]]) / np.hypot(*d) * PAIR_OFFSET
            for start, end, color, style in ((a - off, b - off, FORWARD_COLOR, "-"),
                                             (b + off, a + off, BACKWARD_COLOR, "--")):
                chord = end - start
                control = (start + end) / 2 + rad * np.array([chord[1], -chord[0]])
                shrink = {"shrinkA": _shrink_pt(_half_box(labels[node if color == BACKWARD_COLOR else source]),
                                                control - start if skips else chord),
                          "shrinkB": _shrink_pt(_half_box(labels[source if color == BACKWARD_COLOR else node]),
                                                end - control if skips else chord)}
                ax.annotate("", xy=tuple(end), xytext=tuple(start), zorder=2,
                            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2, "linestyle": style,
                                        "mutation_scale": 11, "connectionstyle": f"arc3,rad={rad}", **shrink})
            # The label sits to the right of the backward arrow's middle; on a slanted edge, beyond
            # the backward arrow (away from the forward one), so it covers neither.
            chord = a - b
            middle = (a + b) / 2 + (0.5 * rad * np.array([chord[1], -chord[0]]) if skips else off)
            if d[0] == 0 or skips:
                where, align = middle + np.array([0.08, 0.0]), {"ha": "left", "va": "center"}
            else:
                where = middle + off / PAIR_OFFSET * 0.06
                align = {"ha": "left" if off[0] >= 0 else "right", "va": "bottom" if off[1] > 0 else "top"}
            ax.text(*where, f"dL/d{source}", fontsize=EDGE_FONT_PT, color=BACKWARD_COLOR, zorder=4,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"}, **align)
    ax.plot([], [], color=FORWARD_COLOR, lw=1.2, label="forward: computes the node")
    ax.plot([], [], color=BACKWARD_COLOR, lw=1.2, ls="--", label="backward: the gradient sent back")
    ax.text(0.5, 1 - 0.08 / height, "Batch-norm at training time:\nthe graph of BN_GRAPH (pipeline/numpy_layers.py)",
            transform=ax.transAxes, ha="center", va="top", fontsize=TITLE_PT)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1 - 0.55 / height), fontsize=FONT_PT, frameon=False)
    return fig


def outputs(seed: int = SEED) -> dict:
    """The `layers` stage: every gradient check, the convolution timings and the batch-norm graph,
    as {artifact path: content}. A failed check raises UserError and nothing is returned: the
    site must never show a failing check as a result."""
    from pipeline import numpy_bench
    from pipeline import plots as P
    from pipeline.errors import UserError
    rows = gradient_checks(seed)
    failed = [f"{r['backward']} {r['gradient']}" for r in rows if not r["passed"]]
    if failed:
        raise UserError(f"{len(failed)} gradient check(s) failed ({', '.join(failed)}); fix "
                        "pipeline/numpy_layers.py until tests/test_numpy_layers.py passes, then rerun.")
    fig = bn_graph_figure()
    return {"cs182/gradchecks.csv": rows, "cs182/conv_timings.json": numpy_bench.conv_timings(),
            **{f"cs182/bn_graph.{ext}": P.to_bytes(fig, ext) for ext in ("svg", "png")}}
