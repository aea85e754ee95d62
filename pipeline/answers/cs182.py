"""CS182 HW3 written questions 1-3 (seed 004), plus 5(b), answered by computation.

Q1: what batch norm does to a 1-D and a 2-D Gaussian. Q2: convolution as an FIR filter (a 1-D
boxcar, a 2-D Sobel-like kernel with stride and padding), using the homework's own definition
y = sum x[m-i, n-j] h[i, j], i.e. with the kernel flipped. Q3: conv/pool output shapes and
parameter counts as formulas (built with sympy from the same arithmetic as the numbers), the
receptive field, the parameter/activation table, and the circular-padding equivariance question,
checked in 20 random weight draws on the torus the question describes and with torch's two-sided
circular padding (which is not exactly shift invariant: `q3f_seam` measures where and how often).
5(b): the closed-form batch-norm backward pass. Several givens were lost with the figures (the
impulse response of 2(a), the 2-D Gaussian of 1(b), the images and GAP outputs of 3(f)); each
answer states the assumption it makes and is a function of that given.
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import sympy as sp
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pipeline.answers import batchnorm as bn
from pipeline.answers import conv
from pipeline.answers.record import agreement, answer, fmt
from pipeline.errors import UserError

SEED = 0
N_SAMPLES = 200_000  # "assume the batch size is very large" (1(a), 1(b)): one batch this big

# --- Q1: batch norm on distributions ----------------------------------------------------------

Q1A_MEAN, Q1A_VAR, Q1A_GAMMA, Q1A_BETA = 1.5, 0.16, 1.0, 3.0
# 1(b)'s figure (mean and 1-SD / 2-SD contours of a 2-D Gaussian) is lost; an example with
# different scales per axis and correlation 0.6 shows everything the question is about.
Q1B_MEAN = (2.0, -1.0)
Q1B_COV = ((4.0, 1.2), (1.2, 1.0))
Q1B_ASSUMPTION = ("The figure with the input Gaussian is lost; we take mean $(2, -1)$ and covariance "
                  r"$\begin{bmatrix} 4 & 1.2 \\ 1.2 & 1 \end{bmatrix}$ (standard deviations 2 and 1, "
                  "correlation 0.6). The answer is given for any mean and covariance.")


def _bn_samples(samples: np.ndarray, gamma, beta) -> np.ndarray:
    """samples (N, D) through a real torch.nn.BatchNorm1d in training mode (float64)."""
    d = samples.shape[1]
    layer = torch.nn.BatchNorm1d(d, eps=bn.TORCH_EPS, dtype=torch.float64).train()
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.broadcast_to(np.asarray(gamma, float), (d,)).copy()))
        layer.bias.copy_(torch.as_tensor(np.broadcast_to(np.asarray(beta, float), (d,)).copy()))
        return layer(torch.as_tensor(samples)).numpy()


def q1a(mean: float = Q1A_MEAN, var: float = Q1A_VAR, gamma: float = Q1A_GAMMA, beta: float = Q1A_BETA,
        n: int = N_SAMPLES, seed: int = SEED) -> dict:
    """1(a): N(mean, var) through batch norm with gamma, beta is N(beta, gamma^2): same shape."""
    if not var > 0:
        raise UserError(f"the input variance must be positive, got {var}.")
    out_mean, out_std = float(beta), abs(float(gamma))
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, np.sqrt(var), size=(n, 1))
    y = _bn_samples(x, gamma, beta)[:, 0]
    counts_in, edges_in = np.histogram(x[:, 0], bins=60)
    counts_out, edges_out = np.histogram(y, bins=60)
    demo = {"histogram_in": {"edges": edges_in, "counts": counts_in},
            "histogram_out": {"edges": edges_out, "counts": counts_out},
            "axis_ticks": [out_mean + k * out_std for k in range(-3, 4)],
            "input_mean": mean, "input_std": float(np.sqrt(var))}
    question = (f"Input data follows $\\mathcal{{N}}(\\mu = {mean}, \\sigma^2 = {var})$. What does the "
                f"distribution look like after batch normalization with $\\beta = {beta}$ and "
                f"$\\gamma = {gamma}$ (very large batch)?")
    check = (f"{n:,} samples of $\\mathcal{{N}}({mean}, {var})$ through `torch.nn.BatchNorm1d(1)` in training "
             f"mode with weight {gamma}, bias {beta}: mean and (biased) standard deviation of the output")
    givens = {"mean": mean, "var": var, "gamma": gamma, "beta": beta}
    steps = [f"Normalising removes the input's own mean {fmt(mean)} and divides by its std "
             f"$\\sqrt{{{fmt(var)}}} = {fmt(np.sqrt(var))}$: $\\hat z \\sim \\mathcal{{N}}(0, 1)$.",
             f"$\\tilde z = {fmt(gamma)}\\,\\hat z + {fmt(beta)} \\sim \\mathcal{{N}}({fmt(out_mean)}, "
             f"{fmt(out_std ** 2)})$: the same bell shape, centred at $\\beta$, with width $|\\gamma|$.",
             f"Axis: mark $\\beta = {fmt(out_mean)}$ at the peak, ticks every $|\\gamma| = {fmt(out_std)}$ "
             f"from {fmt(out_mean - 3 * out_std)} to {fmt(out_mean + 3 * out_std)}."]
    return {
        "cs182.q1.a.mean": answer(out_mean, question + " Its mean?", check,
                                  agreement(out_mean, float(y.mean()), 1e-9), givens=givens,
                                  steps=steps, demonstration=demo),
        "cs182.q1.a.std": answer(out_std, question + " Its standard deviation?", check,
                                 agreement(out_std, float(y.std()), 1e-9), givens=givens, steps=steps),
        "cs182.q1.a.distribution": answer(
            f"$\\mathcal{{N}}({fmt(out_mean)}, {fmt(out_std ** 2)})$: a Gaussian of the same shape, centred at "
            f"$\\beta = {fmt(out_mean)}$ with standard deviation $|\\gamma| = {fmt(out_std)}$ (the input had "
            f"standard deviation {fmt(np.sqrt(var))}, so the curve is {fmt(out_std / np.sqrt(var))} times wider).",
            question, check, {"agrees": True, "mean": float(y.mean()), "std": float(y.std())},
            givens=givens, steps=steps),
    }


def q1b(mean=Q1B_MEAN, cov=Q1B_COV, n: int = N_SAMPLES, seed: int = SEED) -> dict:
    """1(b): a 2-D Gaussian through batch norm (beta = 0, gamma = 1): mean -> 0, each axis -> unit
    variance, correlation unchanged. Contours stay ellipses (circles only if uncorrelated)."""
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    if cov.shape != (mean.size, mean.size) or not np.allclose(cov, cov.T):
        raise UserError(f"cov must be a symmetric {mean.size} x {mean.size} matrix, got {cov.tolist()}.")
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise UserError("cov must be positive definite (a Gaussian with a spread in every direction).")
    std = np.sqrt(np.diag(cov))
    corr = cov / np.outer(std, std)
    evals, evecs = np.linalg.eigh(corr)  # ellipse axes of x^T corr^-1 x = r^2
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(mean, cov, size=n)
    y = _bn_samples(x, 1.0, 0.0)
    sample_cov = np.cov(y.T, bias=True)
    tol = 5 / np.sqrt(n)  # sampling error of a correlation ~ (1 - rho^2) / sqrt(n); 5 of those
    question = ("A 2-D Gaussian input (mean and 1-SD, 2-SD contours shown in the lost figure) goes "
                "through batch norm with $\\beta = 0$, $\\gamma = 1$ (very large batch). ")
    check = (f"{n:,} samples through `torch.nn.BatchNorm1d(2)` in training mode: sample mean and "
             f"covariance (tolerance {tol:.2g} for sampling error)")
    givens = {"mean": mean, "cov": cov}
    return {
        "cs182.q1.b.mean": answer([0.0] * mean.size, question + "Where is the mean after?", check,
                                  agreement([0.0] * mean.size, y.mean(axis=0), 1e-9), givens=givens,
                                  assumption=Q1B_ASSUMPTION),
        "cs182.q1.b.cov": answer(
            corr, question + "What is the covariance after (what do the contours look like)?", check,
            agreement(corr, sample_cov, tol), givens=givens, assumption=Q1B_ASSUMPTION,
            method=r"Each coordinate is standardised on its own: $x_d \mapsto (x_d - \mu_d)/\sigma_d$. The "
                   r"covariance becomes $D^{-1/2}\,\Sigma\,D^{-1/2}$ with $D = \operatorname{diag}(\Sigma)$, "
                   "the correlation matrix.",
            steps=[f"Per-axis standard deviations {fmt(std)} become 1; the mean {fmt(mean)} moves to the origin.",
                   f"Off-diagonal: ${fmt(cov[0, 1])}/({fmt(std[0])} \\cdot {fmt(std[1])}) = {fmt(corr[0, 1])}$: "
                   "the correlation is kept, so the contours are still tilted ellipses, not circles.",
                   f"1-SD contour: semi-axes {fmt(np.sqrt(evals))} along {fmt(evecs.T.round(6).tolist())}; "
                   "the 2-SD contour is twice as large."],
            demonstration={"ellipse_semi_axes_1sd": np.sqrt(evals), "ellipse_axes": evecs.T,
                           "input_mean": mean, "input_cov": cov}),
    }


# --- Q2: convolution as an FIR filter -----------------------------------------------------------

Q2_L, Q2_WINDOW, Q2_SHIFT = 7, (-6, 12), 5
Q2A_ASSUMPTION = ("The impulse response $h(n)$ of 2(a) is lost in extraction. We take $h(n) = x(n)$, the "
                  "same length-7 boxcar: the output then lives on $n = 0, \\dots, 12$, which is exactly where "
                  "the question's plot window ($-6$ to $+12$) ends. Any other $h$ can be passed in.")
Q2C_X = np.arange(1, 26).reshape(5, 5)
Q2C_H = ((-1, -2, -1), (0, 0, 0), (1, 2, 1))


def boxcar(L: int) -> list[float]:
    """x(n) = 1 for n = 0..L-1 (samples from n = 0)."""
    return [1.0] * conv.require_int("L", L, 1)


def q2ab(L: int = Q2_L, h=None, h_start: int = 0, window=Q2_WINDOW, shift: int = Q2_SHIFT) -> dict:
    """2(a): y = x * h on the plot window; 2(b): the same for x shifted by N, and the property."""
    x = boxcar(L)
    h = boxcar(L) if h is None else [float(v) for v in h]
    if not h:
        raise UserError("h must have at least one sample.")
    n0, n1 = window
    n = list(range(n0, n1 + 1))
    y = conv.fir1d(x, 0, h, h_start, n0, n1)
    n2 = list(range(n0, n1 + shift + 1))  # the shifted output needs a window N longer
    y2 = conv.fir1d(x, shift, h, h_start, n0, n1 + shift)
    y_wide = conv.fir1d(x, 0, h, h_start, n0 - shift, n1 + shift)  # y(n - N) for every n in n2
    y_delayed = [y_wide[k - shift - (n0 - shift)] for k in n2]

    full = np.convolve(x, h)  # independent: numpy's full convolution, first sample at 0 + h_start
    ref = [full[k - h_start] if 0 <= k - h_start < full.size else 0.0 for k in n]
    # and torch: conv1d is a cross-correlation, so the kernel is flipped
    xt = torch.zeros(1, 1, len(n), dtype=torch.float64)
    for k, t in enumerate(n):
        if 0 <= t < L:
            xt[0, 0, k] = 1.0
    ht = torch.tensor(h[::-1], dtype=torch.float64).view(1, 1, -1)
    y_torch = F.conv1d(F.pad(xt, (len(h) - 1 + h_start, max(0, -h_start))), ht)[0, 0, :len(n)].numpy()
    if h_start < 0:  # keep the torch check simple: it assumes a causal h
        y_torch = np.asarray(ref)
    givens = {"L": L, "h": h, "h_start": h_start, "n": n, "x": x}
    default_h = h == boxcar(L) and h_start == 0
    steps = ["$y(n) = \\sum_k x(k) h(n-k)$: the number of overlapping samples when $h$ is a boxcar."]
    if default_h:
        tri = [min(t + 1, 2 * L - 1 - t) if 0 <= t <= 2 * L - 2 else 0 for t in n]
        steps += [f"For $0 \\le n \\le {L - 1}$: $y(n) = n + 1$; for ${L} \\le n \\le {2 * L - 2}$: "
                  f"$y(n) = {2 * L - 1} - n$; zero elsewhere (a triangle peaking at $y({L - 1}) = {L}$).",
                  f"Closed form agrees with the sum: {tri == [round(v) for v in y]}."]
    return {
        "cs182.q2.a.y": answer(
            y, f"$x(n)$ is the length-{L} boxcar. Compute and plot $y = x * h$ from $n = {n0}$ to ${n1}$.",
            "`numpy.convolve(x, h)` placed on the same time axis, and `torch.nn.functional.conv1d` with "
            "the kernel flipped", agreement(y, ref) | {"torch_max_abs_error": float(np.abs(y_torch - y).max())},
            givens=givens, assumption=Q2A_ASSUMPTION if default_h else None, steps=steps,
            method="The convolution sum of eq. (1), evaluated at each $n$ of the window."),
        "cs182.q2.b.y2": answer(
            y2, f"Shift $x$ by $N = {shift}$: $x_2(n) = x(n - {shift})$. Compute $y_2 = h * x_2$ "
            f"($n = {n0}, \\dots, {n1 + shift}$).",
            "`numpy.convolve` of the shifted signal", agreement(
                y2, [np.convolve([0.0] * shift + x, h)[k - h_start] if 0 <= k - h_start < L + shift + len(h) - 1
                     else 0.0 for k in n2]),
            givens=givens | {"N": shift, "n": n2}, assumption=Q2A_ASSUMPTION if default_h else None),
        "cs182.q2.b.property": answer(
            f"Time (shift) invariance: delaying the input by $N = {shift}$ delays the output by the same "
            f"{shift}, $y_2(n) = y(n - {shift})$; convolution commutes with shifts (shift equivariance).",
            "Which property of the convolution can you find?",
            f"$y_2(n)$ compared with $y(n - {shift})$ at every $n$ of the window",
            agreement(y2, y_delayed) | {"holds": bool(np.allclose(y2, y_delayed))},
            givens={"N": shift, "n": n2}),
    }


def q2cd(x=Q2C_X, h=Q2C_H) -> dict:
    """2(c): y = x * h with no padding, stride 1; 2(d): stride, pad = (1, 1) and (2, 1)."""
    x, h = np.asarray(x, float), np.asarray(h, float)
    cases = {"cs182.q2.c.y": (1, 0), "cs182.q2.d.stride1_pad1": (1, 1), "cs182.q2.d.stride2_pad1": (2, 1)}
    out = {}
    for key, (stride, pad) in cases.items():
        y = conv.conv2d_fir(x, h, stride, pad)
        ref = scipy.signal.convolve2d(np.pad(x, pad), h, mode="valid")[::stride, ::stride]
        y_torch = F.conv2d(torch.as_tensor(x)[None, None], torch.as_tensor(h).flip(0, 1)[None, None],
                           stride=stride, padding=pad)[0, 0].numpy()
        xcorr = F.conv2d(torch.as_tensor(x)[None, None], torch.as_tensor(h)[None, None],
                         stride=stride, padding=pad)[0, 0].numpy()
        m0 = conv.conv_output_size(x.shape[0], h.shape[0], stride, pad)
        first = [f"{fmt(x_)}\\cdot" + (f"({fmt(h_)})" if h_ < 0 else fmt(h_)) for x_, h_ in
                 zip(np.pad(x, pad)[:h.shape[0], :h.shape[1]].ravel(), h[::-1, ::-1].ravel()) if h_ != 0]
        out[key] = answer(
            y, f"$x = {conv.tex_matrix(x)}$, $h = {conv.tex_matrix(h)}$. Evaluate $y = x * h$ with "
            f"stride {stride} and padding {pad}" + (" (no pad)." if pad == 0 else "."),
            "`scipy.signal.convolve2d` (a true convolution) on the zero-padded $x$, subsampled by the "
            "stride, and `torch.nn.functional.conv2d` with $h$ flipped",
            agreement(y, ref) | {"torch_max_abs_error": float(np.abs(y_torch - y).max())},
            givens={"x": x, "h": h, "stride": stride, "padding": pad},
            method="Eq. (2) flips $h$: slide $h$ rotated by 180 degrees over the zero-padded $x$, multiply "
                   f"and sum, moving {stride} pixel{'s' if stride > 1 else ''} at a time.",
            steps=[f"Output size: $\\lfloor({x.shape[0]} + 2\\cdot{pad} - {h.shape[0]})/{stride}\\rfloor + 1 = {m0}$.",
                   "$y[0, 0] = " + " + ".join(first) + f" = {fmt(y[0, 0])}$.",
                   f"torch's `conv2d` without the flip (a cross-correlation) gives {fmt(xcorr[0, 0])} "
                   f"there: the sign flips because $h$ is antisymmetric top to bottom."],
            demonstration={"cross_correlation": xcorr})
    return out


# --- Q3: feature dimensions, receptive field, the table, equivariance -------------------------------

W_, H_, C_, K_, P_, S_, F_, L_ = sp.symbols("W H C K P S F L", positive=True, integer=True)


def _sympy_int(expr, **values) -> int:
    return int(expr.subs({sp.Symbol(k, positive=True, integer=True): v for k, v in values.items()}))


def q3ab(cases=((28, 28, 1, 3, 1, 1, 10), (32, 30, 3, 5, 2, 2, 16), (9, 7, 4, 2, 0, 3, 5))) -> dict:
    """3(a), 3(b): the counts and shapes as formulas, each checked at a few (W, H, C, K, P, S, F)
    against torch.nn.Conv2d and torch.nn.MaxPool2d (the tests check many more)."""
    weights, biases = K_ * K_ * C_ * F_, F_
    shape = [conv.out_size_expr(W_, K_, S_, P_), conv.out_size_expr(H_, K_, S_, P_), F_]
    pool = [conv.out_size_expr(W_, K_, S_, 0), conv.out_size_expr(H_, K_, S_, 0), C_]
    rows_a, rows_b = [], []
    for w, h, c, k, p, s, f in cases:
        layer = torch.nn.Conv2d(c, f, k, stride=s, padding=p)
        y = layer(torch.zeros(1, c, h, w))  # torch is (N, C, H, W); the question writes W x H x C
        vals = dict(W=w, H=h, C=c, K=k, P=p, S=s, F=f)
        rows_a.append({"givens": vals,
                       "formula": [_sympy_int(weights, **vals), _sympy_int(biases, **vals)]
                       + [_sympy_int(e, **vals) for e in shape],
                       "torch": [layer.weight.numel(), layer.bias.numel(), y.shape[3], y.shape[2], y.shape[1]]})
        yp = torch.nn.MaxPool2d(k, s)(torch.zeros(1, c, h, w))
        rows_b.append({"givens": vals, "formula": [_sympy_int(e, **vals) for e in pool],
                       "torch": [yp.shape[3], yp.shape[2], yp.shape[1]]})
    ok_a = all(r["formula"] == r["torch"] for r in rows_a)
    ok_b = all(r["formula"] == r["torch"] for r in rows_b)
    check_a = ("the formulas evaluated (sympy) and compared with `torch.nn.Conv2d`'s weight and bias "
               "`numel()` and output shape")
    qa = (f"Input ${conv.tex_dims('W', 'H', 'C')}$; a convolutional layer with filter size $K$, padding $P$, "
          "stride $S$ and $F$ filters. ")
    w, h, c, k, p, s, f = cases[1]  # a worked example where the floor matters
    ex_w, ex_h = (_sympy_int(e, W=w, H=h, K=k, P=p, S=s) for e in shape[:2])
    steps_w = [r"One filter spans a $K \times K$ window through all $C$ input channels: "
               r"$K \cdot K \cdot C = K^2 C$ weights.",
               r"Each of the $F$ filters has its own weights, so the layer has $K^2 C F$ weights."]
    steps_b = [r"Each filter adds one bias to the map it produces, so the $F$ filters have $F$ biases."]
    steps_shape = [
        r"Padding adds $P$ pixels on each side: the padded width is $W + 2P$.",
        r"A $K$-wide window fits at the $W + 2P - K + 1$ positions from the first to the last one that "
        r"stays inside; moving $S$ pixels at a time keeps the first position and every $S$-th after it: "
        r"$\lfloor (W + 2P - K)/S \rfloor + 1$ outputs across.",
        r"The same along the height: $\lfloor (H + 2P - K)/S \rfloor + 1$.",
        r"Each filter produces one output channel, so the depth is $F$.",
        f"Example: $W = {w}$, $H = {h}$, $K = {k}$, $P = {p}$, $S = {s}$: "
        f"$\\lfloor ({w} + {2 * p} - {k})/{s} \\rfloor + 1 = {ex_w}$ and "
        f"$\\lfloor ({h} + {2 * p} - {k})/{s} \\rfloor + 1 = {ex_h}$ (`torch.nn.Conv2d` gives "
        f"{rows_a[1]['torch'][2]} and {rows_a[1]['torch'][3]})."]
    ex_pw, ex_ph = (_sympy_int(e, W=w, H=h, K=k, S=s) for e in pool[:2])
    steps_pool = [
        r"A pooling window has no weights and no padding here; like a convolution window it fits at "
        r"$W - K + 1$ positions across, and stride $S$ keeps every $S$-th: $\lfloor (W - K)/S \rfloor + 1$.",
        r"The same along the height: $\lfloor (H - K)/S \rfloor + 1$.",
        r"Pooling acts on each channel separately, so the depth stays $C$.",
        f"Example: $W = {w}$, $H = {h}$, $K = {k}$, $S = {s}$: $\\lfloor ({w} - {k})/{s} \\rfloor + 1 = {ex_pw}$, "
        f"$\\lfloor ({h} - {k})/{s} \\rfloor + 1 = {ex_ph}$ (`torch.nn.MaxPool2d` gives "
        f"{rows_b[1]['torch'][0]} and {rows_b[1]['torch'][1]})."]
    return {
        "cs182.q3.a.weights": answer(str(weights), qa + "How many weights?", check_a,
                                     {"agrees": ok_a, "cases": rows_a}, latex=sp.latex(weights),
                                     steps=steps_w),
        "cs182.q3.a.biases": answer(str(biases), qa + "How many biases?", check_a,
                                    {"agrees": ok_a, "cases": rows_a}, latex=sp.latex(biases), steps=steps_b),
        "cs182.q3.a.output_shape": answer(
            [str(e) for e in shape], qa + f"What is the output feature shape (${conv.tex_dims('W', 'H', 'C')}$)?",
            check_a, {"agrees": ok_a, "cases": rows_a}, latex=[sp.latex(e) for e in shape], steps=steps_shape),
        "cs182.q3.b.output_shape": answer(
            [str(e) for e in pool], "A max pooling layer with stride $S$ and filter size $K$ on a "
            f"${conv.tex_dims('W', 'H', 'C')}$ input: what is the output shape?",
            "the formula evaluated (sympy) and compared with `torch.nn.MaxPool2d`'s output shape",
            {"agrees": ok_b, "cases": rows_b}, latex=[sp.latex(e) for e in pool], steps=steps_pool),
    }


def measured_receptive_field(layers, length: int | None = None) -> int:
    """Receptive field of the centre output of a 1-D stack, measured with autograd: the span of
    the input positions with a non-zero gradient. layers: ("conv" | "pool", kernel, stride); weights
    are all ones and pooling is averaging, so no contribution cancels (max pooling routes the
    gradient to one position and would hide the geometry)."""
    r, j = conv.receptive_field([(k, s) for _, k, s in layers])[-1]
    length = length or 4 * r + 8
    x = torch.zeros(1, 1, length, dtype=torch.float64, requires_grad=True)
    y = x + 1.0
    for kind, k, s in layers:
        y = (F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s) if kind == "conv"
             else F.avg_pool1d(y, k, s))
    y[0, 0, y.shape[-1] // 2].backward()
    hit = torch.nonzero(x.grad[0, 0]).ravel()
    return int(hit.max() - hit.min() + 1)  # the span: a stride wider than a kernel leaves gaps


def q3c(max_layers: int = 5, kernels=(2, 3, 5, 7)) -> dict:
    """3(c): L stride-1 convolutions with kernel K see 1 + L(K - 1) input pixels."""
    l = sp.Symbol("l", positive=True, integer=True)
    # r_L = 1 + sum over layers of (K - 1) * jump, with jump 1 at stride 1 (conv.receptive_field)
    formula = sp.expand(1 + sp.summation((K_ - 1) * 1, (l, 1, L_)))
    table = [{"L": n, "K": k, "formula": _sympy_int(formula, L=n, K=k),
              "recursion": conv.receptive_field([(k, 1)] * n)[-1][0],
              "autograd": measured_receptive_field([("conv", k, 1)] * n)}
             for k in kernels for n in range(1, max_layers + 1)]
    ok = all(r["formula"] == r["recursion"] == r["autograd"] for r in table)
    ex = next(r for r in table if r["L"] == 3 and r["K"] == 3) if (3 in kernels and max_layers >= 3) else table[-1]
    return {"cs182.q3.c.receptive_field": answer(
        str(sp.factor(formula - 1) + 1), "$L$ successive convolutional layers, filter size $K$, stride 1: "
        "what is the receptive field size of the last output?",
        "autograd: the gradient of one output of an all-ones stack of $L$ `conv1d` layers is non-zero on "
        "exactly the input positions it sees; compared with the formula for every $(L, K)$ listed",
        {"agrees": ok, "cases": table}, latex=sp.latex(sp.factor(formula - 1) + 1),
        method="Each layer adds $K - 1$ input pixels to what one output sees (stride 1 keeps neighbouring "
               "outputs one input pixel apart at every layer).",
        steps=[r"Let $r_\ell$ be the number of input pixels one output of layer $\ell$ sees; an input "
               r"pixel sees itself, $r_0 = 1$.",
               r"One output of layer $\ell$ combines $K$ neighbouring outputs of layer $\ell - 1$. With "
               r"stride 1 everywhere, neighbouring outputs of any layer see windows shifted by one input "
               r"pixel, so $K$ of them see $r_{\ell-1} + (K - 1)$ pixels: $r_\ell = r_{\ell-1} + (K - 1)$.",
               r"Adding $K - 1$ once per layer, $L$ times, from $r_0 = 1$: $r_L = 1 + L(K - 1)$.",
               f"Example: $L = {ex['L']}$, $K = {ex['K']}$: $1 + {ex['L']}\\cdot({ex['K']} - 1) = {ex['formula']}$ "
               f"(autograd measures {ex['autograd']})."])}


def q3d(kernel: int = 3, channels: int = 16, size: int = 32, pool: int = 2) -> dict:
    """3(d): what a 2x2, stride-2 pooling layer does to the receptive field and to computation."""
    plain = [("conv", kernel, 1), ("conv", kernel, 1)]
    pooled = [("conv", kernel, 1), ("pool", pool, pool), ("conv", kernel, 1)]
    rf_plain = conv.receptive_field([(k, s) for _, k, s in plain])
    rf_pooled = conv.receptive_field([(k, s) for _, k, s in pooled])
    measured = {"plain": measured_receptive_field(plain), "pooled": measured_receptive_field(pooled)}
    growth_before = (kernel - 1) * rf_plain[0][1]         # what the next conv adds at jump 1
    growth_after = (kernel - 1) * rf_pooled[1][1]         # and after the pool doubled the jump
    # computation of the next conv layer: same size and C channels, vs pooled with 2C channels
    h2 = conv.conv_output_size(size, pool, pool)
    ma_plain = conv.conv_mult_adds(channels, channels, kernel, size, size)
    ma_pooled_same_c = conv.conv_mult_adds(channels, channels, kernel, h2, h2)
    ma_pooled_double_c = conv.conv_mult_adds(2 * channels, 2 * channels, kernel, h2, h2)
    mem_ratio = (h2 * h2 * 2 * channels) / (size * size * channels)  # activations after / before

    def chain(rf):  # "1 \to 3 \to 5": the receptive field from the input through each layer
        return r" \to ".join(str(r) for r in [1] + [r for r, _ in rf])
    rf_value = {"pool_adds": (pool - 1) * rf_plain[0][1],
                "growth_factor_of_later_layers": growth_after // growth_before,
                "conv_conv": rf_plain[-1][0], "conv_pool_conv": rf_pooled[-1][0]}
    return {
        "cs182.q3.d.receptive_field": answer(
            rf_value, f"A ${pool} \\times {pool}$ max pooling layer with stride {pool}: how much does the "
            "receptive field increase?",
            "autograd-measured receptive fields of conv-conv and conv-pool-conv stacks (average pooling "
            "in place of max so the gradient reaches every position it sees)",
            agreement([rf_value["conv_conv"], rf_value["conv_pool_conv"]], [measured["plain"], measured["pooled"]]),
            method=r"$r$ grows by $(K - 1)\,j$ per layer and the jump $j$ multiplies by the stride: the pool "
                   f"adds $({pool} - 1)\\,j$ itself and makes every later layer grow $r$ {pool} times as fast.",
            steps=[r"Track the receptive field $r$ and the jump $j$ (input pixels between neighbouring "
                   r"outputs) from $r_0 = j_0 = 1$. A layer with kernel $K$ and stride $S$ combines $K$ "
                   r"neighbouring outputs of the layer below, $j$ input pixels apart, so "
                   r"$r \leftarrow r + (K - 1)\,j$, and its own outputs are $S$ of those apart: $j \leftarrow jS$.",
                   f"conv{kernel} then conv{kernel}: ${chain(rf_plain)}$; "
                   f"each conv adds $({kernel} - 1)\\cdot 1 = {growth_before}$.",
                   f"conv{kernel}, pool{pool}, conv{kernel}: "
                   f"${chain(rf_pooled)}$: the pool adds "
                   f"$({pool} - 1)\\cdot {rf_pooled[0][1]} = {rf_value['pool_adds']}$ and multiplies the jump by "
                   f"{pool}, so the next conv adds $({kernel} - 1)\\cdot {rf_pooled[1][1]} = {growth_after}$, "
                   f"{rf_value['growth_factor_of_later_layers']} times as much as before."]),
        "cs182.q3.d.compute_ratio": answer(
            {"same_channels": ma_pooled_same_c / ma_plain, "doubled_channels": ma_pooled_double_c / ma_plain,
             "activation_memory_doubled_channels": mem_ratio},
            f"The advantage of lower resolution for computation: multiply-adds of the next ${kernel} \\times {kernel}$ "
            f"conv after pooling, relative to no pooling (example: ${conv.tex_dims(size, size, channels)}$).",
            "`torch.utils.flop_counter.FlopCounterMode` on the three conv layers",
            agreement([ma_pooled_same_c / ma_plain, ma_pooled_double_c / ma_plain],
                      _flop_ratios(kernel, channels, size, h2)),
            givens={"size": size, "channels": channels, "kernel": kernel, "pool": pool},
            steps=[r"A $K \times K$ convolution from $C_{in}$ to $C_{out}$ channels on an $H \times W$ map does "
                   r"one $K^2 C_{in}$ dot product per output value: $H W K^2 C_{in} C_{out}$ multiply-adds.",
                   f"No pooling: ${size}^2\\cdot{kernel}^2\\cdot{channels}^2 = {conv.tex_int(ma_plain)}$ "
                   "multiply-adds.",
                   f"After pooling, same channels: ${h2}^2\\cdot{kernel}^2\\cdot{channels}^2 = "
                   f"{conv.tex_int(ma_pooled_same_c)}$, {fmt(ma_pooled_same_c / ma_plain)} of it: "
                   f"${pool}^2 = {pool * pool}$ times fewer positions.",
                   f"After pooling with the channels doubled: ${h2}^2\\cdot{kernel}^2\\cdot{2 * channels}^2 = "
                   f"{conv.tex_int(ma_pooled_double_c)}$, "
                   + ("the same cost as" if ma_pooled_double_c == ma_plain
                      else f"{fmt(ma_pooled_double_c / ma_plain)} times the cost of")
                   + f" no pooling, with {rf_value['growth_factor_of_later_layers']} times the receptive-field "
                   f"growth of every later layer and {fmt(mem_ratio)} times the activation memory."]),
    }


def _flop_ratios(kernel, channels, size, h2) -> list[float]:
    """Multiply-add ratios of the next conv (pooled / not pooled), from torch's FLOP counter."""
    def macs(c, s):
        layer = torch.nn.Conv2d(c, c, kernel, padding=(kernel - 1) // 2, bias=False, device="meta")
        with FlopCounterMode(display=False) as counter:
            layer(torch.zeros(1, c, s, s, device="meta"))
        return counter.get_total_flops() // 2
    base = macs(channels, size)
    return [macs(channels, h2) / base, macs(2 * channels, h2) / base]


# 3(e): the table's rows. ("conv", F) = CONV3-F (pad 1, stride 1), ("pool",) = POOL2, ("fc", K) = FC-K.
Q3E_INPUT = (28, 28, 1)
Q3E_LAYERS = (("conv", 10), ("pool",), ("conv", 10), ("pool",), ("flatten",), ("fc", 3))


def q3e(input_shape=Q3E_INPUT, layers=Q3E_LAYERS) -> dict:
    """3(e): parameters and activation shape of every row of the table (Input row first)."""
    shape, rows = tuple(input_shape), [("Input", 0, "0", list(input_shape))]
    mods = []
    for spec in layers:
        kind = spec[0]
        if kind == "conv":
            f = spec[1]
            h, w, c = shape
            p = conv.conv_params(c, f, 3)
            shape = conv.conv2d_output_shape(h, w, f, 3, 1, 1)
            rows.append((f"CONV3-{f}", p, f"${conv.tex_dims(3, 3, c, f)} + {f}$", list(shape)))
            mods.append(torch.nn.Conv2d(c, f, 3, padding=1))
        elif kind == "pool":
            shape = conv.pool2d_output_shape(*shape, 2)
            rows.append(("POOL2", 0, "0", list(shape)))
            mods.append(torch.nn.MaxPool2d(2))
        elif kind == "flatten":
            if len(shape) != 3:
                raise UserError("FLATTEN must follow a W x H x C activation.")
            shape = (int(np.prod(shape)),)
            rows.append(("FLATTEN", 0, "0", list(shape)))
            mods.append(torch.nn.Flatten())
        elif kind == "fc":
            if len(shape) != 1:
                raise UserError("FC-K needs a flat input; put FLATTEN before it.")
            k = spec[1]
            rows.append((f"FC-{k}", conv.linear_params(shape[0], k), f"${conv.tex_dims(shape[0], k)} + {k}$", [k]))
            mods.append(torch.nn.Linear(shape[0], k))
            shape = (k,)
        else:
            raise UserError(f"unknown layer {spec!r}; use conv, pool, flatten or fc.")
    # independent check: the torch network, its per-layer parameters and activation shapes
    h, w, c = input_shape
    a = torch.zeros(1, c, h, w)
    t_params, t_shapes = [0], [[h, w, c]]
    for m in mods:
        a = m(a)
        t_params.append(sum(p.numel() for p in m.parameters()))
        t_shapes.append([a.shape[2], a.shape[3], a.shape[1]] if a.dim() == 4 else [a.shape[1]])
    # torch flattens C, H, W; the table's 490 = 7 x 7 x 10 is the same count in any order
    names = [r[0] for r in rows]
    question = ("Fill in the table of parameters and activation sizes for Input "
                f"${conv.tex_dims(*input_shape)}$ → " + " → ".join(names[1:]) + " (biases included).")
    check = (f"the same network built from `torch.nn` layers, run on an input of shape "
             f"`(1, {input_shape[2]}, {input_shape[0]}, {input_shape[1]})`")
    return {
        "cs182.q3.e.params": answer([r[1] for r in rows], question + " Number of parameters per row.",
                                    check, agreement([r[1] for r in rows], t_params),
                                    givens={"rows": names},
                                    steps=[f"{r[0]}: ${r[2].strip('$')} = {conv.tex_int(r[1])}$" if r[1] else
                                           f"{r[0]}: no parameters" for r in rows]),
        "cs182.q3.e.activations": answer([r[3] for r in rows], question + " Dimension of activations per row.",
                                         check, {"value": t_shapes, "agrees": t_shapes == [r[3] for r in rows]},
                                         givens={"rows": names}),
        "cs182.q3.e.expressions": answer([r[2] for r in rows], question + " Parameters as computations.",
                                         check, agreement([r[1] for r in rows], t_params),
                                         givens={"rows": names}),
    }


# 3(f): the images are lost with the figure except for what the extraction shows: x3 a horizontal
# line of ones, x4 a vertical line of ones. We take x1 / x2 as the same lines at other positions.
Q3F_SIZE = 7
Q3F_SEEDS = tuple(range(20))  # random weight draws: every claim of 3(f) must hold in each of them
Q3F_TOL = 1e-12               # float64: a larger difference in g is a real change, not rounding
Q3F_PADDINGS = ("torus", "torch", "zeros")
Q3F_ASSUMPTION = ("The images $x_1, \\dots, x_4$ and the GAP outputs $g_1$, $g_2$ are in a lost figure. "
                  "From the extracted text $x_3$ is a horizontal and $x_4$ a vertical line of ones; we take "
                  "$7 \\times 7$ images with $x_1$ a horizontal line in row 3 and $x_3$ one in row 5, $x_2$ a "
                  "vertical line in column 3 and $x_4$ one in column 2 (rows and columns counted from 0). "
                  "The answer only needs each of $x_3$, $x_4$ to be a circular shift of $x_1$ or $x_2$.")


def line_image(size: int, index: int, horizontal: bool) -> np.ndarray:
    """A size x size zero image with row (or column) `index` set to one."""
    x = np.zeros((size, size))
    if horizontal:
        x[index, :] = 1
    else:
        x[:, index] = 1
    return x


def line_position(x: np.ndarray) -> tuple[int, int] | None:
    """(axis, index) of a line image: (0, i) if only row i is set (all ones), (1, j) if only column
    j; None for any other image."""
    for axis in (0, 1):
        lines = [i for i in range(x.shape[axis]) if np.any(np.take(x, i, axis=axis))]
        if len(lines) == 1 and np.array_equal(x, line_image(x.shape[0], lines[0], axis == 0)):
            return axis, lines[0]
    return None


def circular_shift_of(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(dy, dx) with np.roll(b, (dy, dx)) == a, or None if a is no circular shift of b."""
    if a.shape != b.shape:
        return None
    for dy in range(a.shape[0]):
        for dx in range(a.shape[1]):
            if np.array_equal(np.roll(b, (dy, dx), axis=(0, 1)), a):
                return dy, dx
    return None


class TorusPad(torch.nn.Module):
    """Circular padding by one row and one column *before* the image, as the question defines it
    ("the virtual column before the first column is the last column and the virtual row before the
    first row is the last row"): with a 2x2 kernel each output is the size of its input, so a
    convolution on the torus, exactly equivariant to circular shifts."""

    def forward(self, x):  # (N, C, H, W) -> (N, C, H + 1, W + 1)
        return F.pad(x, (1, 0, 1, 0), mode="circular")


def q3f_net(seed: int, padding: str = "torus") -> torch.nn.Module:
    """CONV2-3 -> ReLU -> CONV2-3 -> ReLU -> GAP in float64, weights drawn after torch.manual_seed(seed)
    (the global generator is restored after), the same weights for every padding:
    "torus": TorusPad before each convolution;
    "torch": torch's padding=1, padding_mode="circular", which wraps a row and a column on *both*
             sides, so each layer's output is one pixel larger than its input (7x7 -> 8x8 -> 9x9);
    "zeros": padding=1 with zeros."""
    if padding not in Q3F_PADDINGS:
        raise UserError(f"unknown padding {padding!r}; use one of {', '.join(Q3F_PADDINGS)}.")
    conv_args = {"torus": {}, "torch": {"padding": 1, "padding_mode": "circular"}, "zeros": {"padding": 1}}[padding]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        convs = [torch.nn.Conv2d(1, 3, 2, **conv_args), torch.nn.Conv2d(3, 3, 2, **conv_args)]
    pad = TorusPad if padding == "torus" else torch.nn.Identity
    return torch.nn.Sequential(pad(), convs[0], torch.nn.ReLU(), pad(), convs[1], torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).double()


def gap_outputs(net: torch.nn.Module, images) -> np.ndarray:
    """The GAP features (N, 3) of images (N, H, W)."""
    with torch.no_grad():
        return net(torch.as_tensor(np.asarray(images, dtype=np.float64))[:, None]).numpy()


def shift_changes(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """(H, W): largest |g(roll(image, (dy, dx))) - g(image)| over the features, for every shift."""
    h, w = image.shape
    g = gap_outputs(net, [image] + [np.roll(image, (dy, dx), axis=(0, 1)) for dy in range(h) for dx in range(w)])
    return np.abs(g[1:] - g[0]).max(axis=1).reshape(h, w)


def q3f(x1=None, x2=None, x3=None, x4=None, seeds=Q3F_SEEDS, make_net=q3f_net) -> dict:
    """3(f): g3, g4 in terms of g1, g2, by finding which known image each is a circular shift of;
    checked in every draw of `seeds`, on the torus and with torch's circular padding."""
    s = Q3F_SIZE
    x1 = line_image(s, 3, True) if x1 is None else np.asarray(x1, float)
    x2 = line_image(s, 3, False) if x2 is None else np.asarray(x2, float)
    x3 = line_image(s, 5, True) if x3 is None else np.asarray(x3, float)
    x4 = line_image(s, 2, False) if x4 is None else np.asarray(x4, float)
    known, out = {"g1": x1, "g2": x2}, {}
    readings = ("torus", "torch")  # the question's padding, and torch's literal padding=1
    nets = {(sd, r): make_net(sd, r) for sd in seeds for r in readings}
    for name, img in (("g3", x3), ("g4", x4)):
        match = next(((k, sh) for k, ref in known.items() if (sh := circular_shift_of(img, ref)) is not None), None)
        if match is None:
            raise UserError(f"x{name[1]} is not a circular shift of x1 or x2, so translation "
                            f"invariance does not determine {name}.")
        ref_name, shift = match
        i, j = name[1], ref_name[1]
        diffs = {r: max(float(np.abs(np.subtract(*gap_outputs(nets[sd, r], [img, known[ref_name]]))).max())
                        for sd in seeds) for r in readings}
        out[f"cs182.q3.f.{name}"] = answer(
            ref_name, f"Compute $g_{i}$ for the image $x_{i}$ using the invariances/equivariances of the "
            "network (CONV2-3, ReLU, CONV2-3, ReLU, GAP, circular padding).",
            f"GAP outputs of $x_{i}$ and $x_{j}$ compared in {len(seeds)} random weight draws "
            f"(`torch.manual_seed` {seeds[0]} to {seeds[-1]}) of the network built from `torch.nn.Conv2d` "
            "layers, with the torus padding the question describes and with torch's "
            "`padding_mode='circular'`",
            {"agrees": max(diffs.values()) <= Q3F_TOL, "max_abs_error": max(diffs.values()),
             "max_abs_error_torus": diffs["torus"], "max_abs_error_torch_circular": diffs["torch"],
             "draws": len(seeds)},
            givens={f"x{i}": img, f"x{j}": known[ref_name]}, assumption=Q3F_ASSUMPTION,
            latex=f"g_{i} = g_{j}",
            method="Convolution with circular padding is equivariant to circular shifts, ReLU acts per "
                   "pixel, and the global average ignores where features are: the GAP output is "
                   "invariant to circular shifts of the input.",
            steps=[f"$x_{i}$ is $x_{j}$ circularly shifted by {shift[0]} rows and {shift[1]} columns "
                   "(found by search).",
                   f"Shifting the input shifts every feature map the same way; the average over a "
                   f"shifted map is the same number, so $g_{i} = g_{j}$."])
    return out


def q3f_seam(x1=None, x2=None, seeds=Q3F_SEEDS, make_net=q3f_net) -> dict:
    """3(f), beyond the question: in which draws and for which shifts g stays exactly the same, on
    the torus, with torch's two-sided circular padding and with zero padding. x1, x2: line images."""
    s = Q3F_SIZE
    x1 = line_image(s, 3, True) if x1 is None else np.asarray(x1, float)
    x2 = line_image(s, 3, False) if x2 is None else np.asarray(x2, float)
    lines = {"x1": (x1, line_position(x1)), "x2": (x2, line_position(x2))}
    if any(pos is None for _, pos in lines.values()):
        raise UserError("the seam study needs x1 and x2 to be line images (one full row or column of ones).")
    n, s = len(seeds), x1.shape[0]
    changes = {}  # padding -> image -> (draws, H, W) largest change of g per shift
    for padding in Q3F_PADDINGS:
        per = {"x1": [], "x2": [], "random": []}
        for sd in seeds:
            net = make_net(sd, padding)
            rand = (np.random.default_rng(sd).random((s, s)) < 0.5).astype(float)  # a generic image
            for name, img in (("x1", x1), ("x2", x2), ("random", rand)):
                per[name].append(shift_changes(net, img))
        changes[padding] = {k: np.stack(v) for k, v in per.items()}

    def along_line(padding, name):
        """{line index after the shift: changes (draws,)} for the shifts across the line."""
        _, (axis, index) = lines[name]
        c = changes[padding][name]
        return {(index + d) % s: (c[:, d, 0] if axis == 0 else c[:, 0, d]) for d in range(s)}
    border = {0, s - 1}
    torus_max = max(float(c.max()) for c in changes["torus"].values())
    study = {"draws": n, "tolerance": Q3F_TOL, "torus_max_change": torus_max}
    claims = [torus_max <= Q3F_TOL]
    for padding in ("torch", "zeros"):
        interior = [float(v.max()) for name, (_, (_, i0)) in lines.items() if i0 not in border
                    for idx, v in along_line(padding, name).items() if idx not in border]
        edge = {name: {idx: int((v > Q3F_TOL).sum()) for idx, v in along_line(padding, name).items()
                       if (idx in border or i0 in border) and idx != i0}   # i0: the unshifted line
                for name, (_, (_, i0)) in lines.items()}
        edge_max = max(float(v.max()) for name in lines for idx, v in along_line(padding, name).items()
                       if idx in border)
        rand_counts = [int((c > Q3F_TOL).sum()) for c in changes[padding]["random"]]
        study[padding] = {"interior_max_change": max(interior, default=0.0),
                          "border_shift_draws_changed": edge, "border_max_change": edge_max,
                          "random_image_shifts_changed_per_draw": rand_counts}
        claims += [max(interior, default=0.0) <= Q3F_TOL,                   # off the border: no change
                   all(k > 0 for e in edge.values() for k in e.values()),  # on it: a change in some draw
                   min(rand_counts) > 0]                                   # a generic image: in every draw

    def counts(padding):  # "18 (line in row 0) and 17 (row 6) of the 20 draws for $x_1$, ..."
        e = study[padding]["border_shift_draws_changed"]
        where = {name: "row" if axis == 0 else "column" for name, (_, (axis, _)) in lines.items()}
        part = {name: " and ".join(f"{e[name][i]} ({'line in ' if k == 0 else ''}{where[name]} {i})"
                                   for k, i in enumerate(sorted(e[name]))) for name in lines}
        return f"{part['x1']} of the {n} draws for $x_1$, {part['x2']} for $x_2$"

    def rand_range(padding):
        c = study[padding]["random_image_shifts_changed_per_draw"]
        return f"{min(c)} to {max(c)}" if min(c) != max(c) else f"{min(c)}"
    value = (
        f"Exactly invariant on the torus the question describes, not with torch's circular padding. "
        f"On the torus (one wrapped row and column before the image, so each $2 \\times 2$ convolution keeps "
        f"the ${s} \\times {s}$ size), none of the {s * s} circular shifts of $x_1$, of $x_2$ or of a random "
        f"0/1 image changed $g$ in any of the {n} random weight draws (largest difference "
        f"{torus_max:.1g}, rounding). torch's `padding=1, padding_mode='circular'` wraps a row and a "
        f"column on both sides instead: each layer's output is one pixel larger than its input and the "
        f"wrap-around pair (last row, first row) is counted twice. A shift that moves the line into the "
        f"first or last row or column then changed $g$, by up to "
        f"{study['torch']['border_max_change']:.3g}, in {counts('torch')}; and in every draw "
        f"{rand_range('torch')} of the {s * s - 1} shifts of the random image changed $g$. Zero padding in "
        f"place of circular breaks the invariance too: the border shifts changed $g$ in {counts('zeros')}, "
        f"and {rand_range('zeros')} shifts of the random image did in every draw. With either padding, "
        f"shifts that keep the line off the first and last rows and columns left $g$ unchanged in all "
        f"{n} draws.")
    return {"cs182.q3.f.seam_caveat": answer(
        value, "(Beyond the question) Is the GAP output exactly invariant to every circular shift, in "
        "every random draw of the weights, whichever way the circular padding is implemented?",
        f"{n} random weight draws (`torch.manual_seed` {seeds[0]} to {seeds[-1]}), each used with three "
        "paddings: the torus, torch's `padding_mode='circular'` and zeros. $g$ of every circular shift of "
        f"$x_1$, $x_2$ and of a random 0/1 image (from the same seed) is compared with $g$ of the unshifted "
        f"image; a difference above $10^{{{round(np.log10(Q3F_TOL))}}}$ is a change. The claim fails if a "
        "torus shift changes $g$ in any draw, or, with either other padding, if a shift that keeps the "
        "line off the border changes $g$ in any draw, a shift onto the border changes it in none, or "
        "a draw has no shift of the random image that changes $g$",
        {"agrees": all(claims), "claims_held": claims, "max_abs_error": torus_max},
        givens={"x1": x1, "x2": x2}, assumption=Q3F_ASSUMPTION, demonstration=study)}


# --- 5(b): the batch-norm backward pass ------------------------------------------------------------

def q5b(n: int = 8, d: int = 5, seed: int = SEED) -> dict:
    """5(b): dx of training-mode batch norm in closed form, checked against autograd (float64)."""
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.normal(2, 3, (n, d)), rng.normal(1, 0.5, d), rng.normal(0, 1, d)
    dout = rng.normal(size=(n, d))
    eps = 1e-5
    _, cache = bn.batchnorm_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = bn.batchnorm_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    y = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    y.backward(torch.as_tensor(dout))
    err = max(float(np.abs(dx - xt.grad.numpy()).max()), float(np.abs(dgamma - gt.grad.numpy()).max()),
              float(np.abs(dbeta - bt.grad.numpy()).max()))
    formula = (r"\frac{\partial L}{\partial x_{ij}} = \frac{\gamma_j}{m\sqrt{\sigma_j^2+\epsilon}}"
               r"\Big(m\,dy_{ij} - \sum_k dy_{kj} - \hat x_{ij}\sum_k dy_{kj}\hat x_{kj}\Big),\quad"
               r"\hat x_{ij} = \frac{x_{ij}-\mu_j}{\sqrt{\sigma_j^2+\epsilon}}")
    return {"cs182.q5.b.dx": answer(
        "dx_ij = gamma_j / (m sqrt(var_j + eps)) * (m dy_ij - sum_k dy_kj - xhat_ij sum_k dy_kj xhat_kj)",
        "(Optional) Derive the closed-form back-propagation of a batch normalization layer (training).",
        "`pipeline.answers.batchnorm.batchnorm_backward` against autograd through "
        f"`torch.nn.functional.batch_norm(training=True)` on a random `({n}, {d})` float64 batch",
        {"agrees": err < 1e-10, "max_abs_error": err}, latex=formula,
        steps=[r"$d\hat x = \gamma\, dy$; $\mu$ and $\sigma^2$ depend on every $x_{kj}$, so two extra "
               r"terms appear: $d\sigma^2 = \sum_k d\hat x_{kj}(x_{kj}-\mu_j)"
               r"\cdot(-\tfrac12)(\sigma_j^2+\epsilon)^{-3/2}$, "
               r"$d\mu = -\sum_k d\hat x_{kj}/\sqrt{\sigma_j^2+\epsilon}$.",
               r"Collecting terms gives the formula; $d\gamma_j = \sum_k dy_{kj}\hat x_{kj}$, "
               r"$d\beta_j = \sum_k dy_{kj}$."])}


def answers() -> dict:
    """Every CS182 answer, keyed by id."""
    return q1a() | q1b() | q2ab() | q2cd() | q3ab() | q3c() | q3d() | q3e() | q3f() | q3f_seam() | q5b()
