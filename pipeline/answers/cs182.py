"""CS182 HW3 written questions 1-3 (seed 004), plus 5(b), answered by computation.

Q1: what batch norm does to a 1-D and a 2-D Gaussian. Q2: convolution as an FIR filter (a 1-D
boxcar, a 2-D Sobel-like kernel with stride and padding), using the homework's own definition
y = sum x[m-i, n-j] h[i, j], i.e. with the kernel flipped. Q3: conv/pool output shapes and
parameter counts as formulas (built with sympy from the same arithmetic as the numbers), the
receptive field, the parameter/activation table, and the circular-padding equivariance question.
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
Q1B_ASSUMPTION = ("The figure with the input Gaussian is lost; we take mean (2, -1) and covariance "
                  "[[4, 1.2], [1.2, 1]] (standard deviations 2 and 1, correlation 0.6). The answer is "
                  "given for any mean and covariance.")


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
    question = (f"Input data follows N(mu = {mean}, sigma^2 = {var}). What does the distribution look "
                f"like after batch normalization with beta = {beta} and gamma = {gamma} (very large batch)?")
    check = (f"{n:,} samples of N({mean}, {var}) through torch.nn.BatchNorm1d(1) in training mode "
             f"with weight {gamma}, bias {beta}: mean and (biased) standard deviation of the output")
    givens = {"mean": mean, "var": var, "gamma": gamma, "beta": beta}
    steps = [f"Normalising removes the input's own mean {fmt(mean)} and divides by its std "
             f"$\\sqrt{{{fmt(var)}}} = {fmt(np.sqrt(var))}$: $\\hat z \\sim N(0, 1)$.",
             f"$\\tilde z = {fmt(gamma)}\\,\\hat z + {fmt(beta)} \\sim N({fmt(out_mean)}, {fmt(out_std ** 2)})$: "
             "the same bell shape, centred at beta, width gamma.",
             f"Axis: mark beta = {fmt(out_mean)} at the peak, ticks every gamma = {fmt(out_std)} "
             f"from {fmt(out_mean - 3 * out_std)} to {fmt(out_mean + 3 * out_std)}."]
    return {
        "cs182.q1.a.mean": answer(out_mean, question + " Its mean?", check,
                                  agreement(out_mean, float(y.mean()), 1e-9), givens=givens,
                                  steps=steps, demonstration=demo),
        "cs182.q1.a.std": answer(out_std, question + " Its standard deviation?", check,
                                 agreement(out_std, float(y.std()), 1e-9), givens=givens, steps=steps),
        "cs182.q1.a.distribution": answer(
            f"N({fmt(out_mean)}, {fmt(out_std ** 2)}): a Gaussian of the same shape, centred at beta = "
            f"{fmt(out_mean)} with standard deviation gamma = {fmt(out_std)} (the input had std "
            f"{fmt(np.sqrt(var))}, so the curve is {fmt(out_std / np.sqrt(var))} times wider).",
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
                "through batch norm with beta = 0, gamma = 1 (very large batch). ")
    check = (f"{n:,} samples through torch.nn.BatchNorm1d(2) in training mode: sample mean and "
             f"covariance (tolerance {tol:.2g} for sampling error)")
    givens = {"mean": mean, "cov": cov}
    return {
        "cs182.q1.b.mean": answer([0.0] * mean.size, question + "Where is the mean after?", check,
                                  agreement([0.0] * mean.size, y.mean(axis=0), 1e-9), givens=givens,
                                  assumption=Q1B_ASSUMPTION),
        "cs182.q1.b.cov": answer(
            corr, question + "What is the covariance after (what do the contours look like)?", check,
            agreement(corr, sample_cov, tol), givens=givens, assumption=Q1B_ASSUMPTION,
            method="Each coordinate is standardised on its own: x_d -> (x_d - mu_d) / sigma_d. The "
                   "covariance becomes D^-1/2 Sigma D^-1/2, the correlation matrix.",
            steps=[f"Per-axis standard deviations {fmt(std)} become 1; the mean {fmt(mean)} moves to the origin.",
                   f"Off-diagonal: {fmt(cov[0, 1])} / ({fmt(std[0])} x {fmt(std[1])}) = {fmt(corr[0, 1])}: "
                   "the correlation is kept, so the contours are still tilted ellipses, not circles.",
                   f"1-SD contour: semi-axes {fmt(np.sqrt(evals))} along {fmt(evecs.T.round(6).tolist())}; "
                   "the 2-SD contour is twice as large."],
            demonstration={"ellipse_semi_axes_1sd": np.sqrt(evals), "ellipse_axes": evecs.T,
                           "input_mean": mean, "input_cov": cov}),
    }


# --- Q2: convolution as an FIR filter -----------------------------------------------------------

Q2_L, Q2_WINDOW, Q2_SHIFT = 7, (-6, 12), 5
Q2A_ASSUMPTION = ("The impulse response h(n) of 2(a) is lost in extraction. We take h(n) = x(n), the "
                  "same length-7 boxcar: the output then lives on n = 0..12, which is exactly where the "
                  "question's plot window (-6 to +12) ends. Any other h can be passed in.")
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
    steps = [f"$y(n) = \\sum_k x(k) h(n-k)$: the number of overlapping samples when h is a boxcar."]
    if default_h:
        tri = [min(t + 1, 2 * L - 1 - t) if 0 <= t <= 2 * L - 2 else 0 for t in n]
        steps += [f"For $0 \\le n \\le {L - 1}$: $y(n) = n + 1$; for ${L} \\le n \\le {2 * L - 2}$: "
                  f"$y(n) = {2 * L - 1} - n$; zero elsewhere (a triangle peaking at y({L - 1}) = {L}).",
                  f"Closed form agrees with the sum: {tri == [round(v) for v in y]}."]
    return {
        "cs182.q2.a.y": answer(
            y, f"x(n) is the length-{L} boxcar. Compute and plot y = x * h from n = {n0} to {n1}.",
            "numpy.convolve(x, h) placed on the same time axis, and torch.nn.functional.conv1d with "
            "the kernel flipped", agreement(y, ref) | {"torch_max_abs_error": float(np.abs(y_torch - y).max())},
            givens=givens, assumption=Q2A_ASSUMPTION if default_h else None, steps=steps,
            method="The convolution sum of eq. (1), evaluated at each n of the window."),
        "cs182.q2.b.y2": answer(
            y2, f"Shift x by N = {shift}: x2(n) = x(n - {shift}). Compute y2 = h * x2 (n = {n0}..{n1 + shift}).",
            "numpy.convolve of the shifted signal", agreement(
                y2, [np.convolve([0.0] * shift + x, h)[k - h_start] if 0 <= k - h_start < L + shift + len(h) - 1
                     else 0.0 for k in n2]),
            givens=givens | {"N": shift, "n": n2}, assumption=Q2A_ASSUMPTION if default_h else None),
        "cs182.q2.b.property": answer(
            f"Time (shift) invariance: delaying the input by N = {shift} delays the output by the same "
            f"{shift}, y2(n) = y(n - {shift}); convolution commutes with shifts (shift equivariance).",
            "Which property of the convolution can you find?",
            f"y2(n) compared with y(n - {shift}) at every n of the window",
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
            y, f"x = {x.astype(int).tolist()}, h = {h.astype(int).tolist()}. Evaluate y = x * h with "
            f"stride {stride} and padding {pad}" + (" (no pad)." if pad == 0 else "."),
            "scipy.signal.convolve2d (a true convolution) on the zero-padded x, subsampled by the "
            "stride, and torch.nn.functional.conv2d with h flipped",
            agreement(y, ref) | {"torch_max_abs_error": float(np.abs(y_torch - y).max())},
            givens={"x": x, "h": h, "stride": stride, "padding": pad},
            method="Eq. (2) flips h: slide h rotated by 180 degrees over the zero-padded x, multiply and "
                   "sum, moving `stride` pixels at a time.",
            steps=[f"Output size: $\\lfloor({x.shape[0]} + 2\\cdot{pad} - {h.shape[0]})/{stride}\\rfloor + 1 = {m0}$.",
                   f"y[0,0] = $" + " + ".join(first) + f" = {fmt(y[0, 0])}$.",
                   f"torch's conv2d without the flip (a cross-correlation) gives {fmt(xcorr[0, 0])} "
                   f"there: the sign flips because h is antisymmetric top to bottom."],
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
    check_a = "the formulas evaluated (sympy) and compared with torch.nn.Conv2d's weight/bias numel and output shape"
    qa = ("Input W x H x C; a convolutional layer with filter size K, padding P, stride S and F filters. ")
    return {
        "cs182.q3.a.weights": answer(str(weights), qa + "How many weights?", check_a,
                                     {"agrees": ok_a, "cases": rows_a}, latex=sp.latex(weights)),
        "cs182.q3.a.biases": answer(str(biases), qa + "How many biases?", check_a,
                                    {"agrees": ok_a, "cases": rows_a}, latex=sp.latex(biases)),
        "cs182.q3.a.output_shape": answer(
            [str(e) for e in shape], qa + "What is the output feature shape (W x H x C)?", check_a,
            {"agrees": ok_a, "cases": rows_a}, latex=[sp.latex(e) for e in shape]),
        "cs182.q3.b.output_shape": answer(
            [str(e) for e in pool], "A max pooling layer with stride S and filter size K on a W x H x C "
            "input: what is the output shape?",
            "the formula evaluated (sympy) and compared with torch.nn.MaxPool2d's output shape",
            {"agrees": ok_b, "cases": rows_b}, latex=[sp.latex(e) for e in pool]),
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
    return {"cs182.q3.c.receptive_field": answer(
        str(sp.factor(formula - 1) + 1), "L successive convolutional layers, filter size K, stride 1: "
        "what is the receptive field size of the last output?",
        "autograd: the gradient of one output of an all-ones stack of L conv1d layers is non-zero on "
        "exactly the input positions it sees; compared with the formula for every (L, K) listed",
        {"agrees": ok, "cases": table}, latex=sp.latex(sp.factor(formula - 1) + 1),
        method="Each layer adds K - 1 input pixels to what one output sees (stride 1 keeps the jump at 1).",
        steps=[r"$r_0 = 1$, $r_\ell = r_{\ell-1} + (K-1)$, so $r_L = 1 + L(K-1)$."])}


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
    rf_value = {"pool_adds": (pool - 1) * rf_plain[0][1],
                "growth_factor_of_later_layers": growth_after // growth_before,
                "conv_conv": rf_plain[-1][0], "conv_pool_conv": rf_pooled[-1][0]}
    return {
        "cs182.q3.d.receptive_field": answer(
            rf_value, f"A {pool}x{pool} max pooling layer with stride {pool}: how much does the "
            "receptive field increase?",
            "autograd-measured receptive fields of conv-conv and conv-pool-conv stacks (average pooling "
            "in place of max so the gradient reaches every position it sees)",
            agreement([rf_value["conv_conv"], rf_value["conv_pool_conv"]], [measured["plain"], measured["pooled"]]),
            method="r grows by (k - 1) x jump per layer and the jump multiplies by the stride: the pool "
                   "adds (2 - 1) x jump itself and doubles how fast every later layer grows it.",
            steps=[f"conv{kernel} then conv{kernel}: receptive field {rf_plain[-1][0]} "
                   f"(each conv adds {growth_before}).",
                   f"conv{kernel}, pool{pool}, conv{kernel}: {rf_pooled[0][0]} -> {rf_pooled[1][0]} "
                   f"(the pool adds {rf_value['pool_adds']}) -> {rf_pooled[2][0]} (the conv now adds "
                   f"{growth_after}, {rf_value['growth_factor_of_later_layers']}x as much)."]),
        "cs182.q3.d.compute_ratio": answer(
            {"same_channels": ma_pooled_same_c / ma_plain, "doubled_channels": ma_pooled_double_c / ma_plain,
             "activation_memory_doubled_channels": (h2 * h2 * 2 * channels) / (size * size * channels)},
            f"The advantage of lower resolution for computation: multiply-adds of the next {kernel}x{kernel} "
            f"conv after pooling, relative to no pooling (example: {size}x{size}x{channels}).",
            "torch's FLOP counter on the three conv layers",
            agreement([ma_pooled_same_c / ma_plain, ma_pooled_double_c / ma_plain],
                      _flop_ratios(kernel, channels, size, h2)),
            givens={"size": size, "channels": channels, "kernel": kernel, "pool": pool},
            steps=[f"No pooling: ${size}^2\\cdot{kernel}^2\\cdot{channels}^2$ = {ma_plain:,} multiply-adds.",
                   f"After pooling, same channels: ${h2}^2\\cdot{kernel}^2\\cdot{channels}^2$ = {ma_pooled_same_c:,} "
                   f"({fmt(ma_pooled_same_c / ma_plain)} of it: {pool * pool}x fewer positions).",
                   f"After pooling with channels doubled: ${h2}^2\\cdot{kernel}^2\\cdot{2 * channels}^2$ = "
                   f"{ma_pooled_double_c:,} ({fmt(ma_pooled_double_c / ma_plain)}x): the same cost, twice "
                   f"the receptive-field growth, half the activation memory."]),
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
            rows.append((f"CONV3-{f}", p, f"3 x 3 x {c} x {f} + {f}", list(shape)))
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
            rows.append((f"FC-{k}", conv.linear_params(shape[0], k), f"{shape[0]} x {k} + {k}", [k]))
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
    question = ("Fill in the table of parameters and activation sizes for Input 28x28x1 -> CONV3-10 -> "
                "POOL2 -> CONV3-10 -> POOL2 -> FLATTEN -> FC-3 (biases included).")
    check = "the same network built from torch.nn layers, run on a (1, 1, 28, 28) input"
    return {
        "cs182.q3.e.params": answer([r[1] for r in rows], question + " Number of parameters per row.",
                                    check, agreement([r[1] for r in rows], t_params),
                                    givens={"rows": names}, steps=[f"{r[0]}: {r[2]} = {r[1]:,}" for r in rows]),
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
Q3F_ASSUMPTION = ("The images x1..x4 and the GAP outputs g1, g2 are in a lost figure. From the extracted "
                  "text x3 is a horizontal and x4 a vertical line of ones; we take 7x7 images with x1 a "
                  "horizontal line in row 3 and x3 one in row 5, x2 a vertical line in column 3 and x4 one "
                  "in column 2. The answer only needs each of x3, x4 to be a circular shift of x1 or x2.")


def line_image(size: int, index: int, horizontal: bool) -> np.ndarray:
    """A size x size zero image with row (or column) `index` set to one."""
    x = np.zeros((size, size))
    if horizontal:
        x[index, :] = 1
    else:
        x[:, index] = 1
    return x


def circular_shift_of(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(dy, dx) with np.roll(b, (dy, dx)) == a, or None if a is no circular shift of b."""
    if a.shape != b.shape:
        return None
    for dy in range(a.shape[0]):
        for dx in range(a.shape[1]):
            if np.array_equal(np.roll(b, (dy, dx), axis=(0, 1)), a):
                return dy, dx
    return None


def _circular_net(seed: int) -> torch.nn.Module:
    """CONV2-3 -> ReLU -> CONV2-3 -> ReLU -> GAP with circular padding 1, random weights."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 2, padding=1, padding_mode="circular"), torch.nn.ReLU(),
        torch.nn.Conv2d(3, 3, 2, padding=1, padding_mode="circular"), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).double()


def q3f(x1=None, x2=None, x3=None, x4=None, seeds=(0, 1, 2)) -> dict:
    """3(f): g3, g4 in terms of g1, g2, by finding which known image each is a circular shift of."""
    s = Q3F_SIZE
    x1 = line_image(s, 3, True) if x1 is None else np.asarray(x1, float)
    x2 = line_image(s, 3, False) if x2 is None else np.asarray(x2, float)
    x3 = line_image(s, 5, True) if x3 is None else np.asarray(x3, float)
    x4 = line_image(s, 2, False) if x4 is None else np.asarray(x4, float)
    known = {"g1": x1, "g2": x2}
    out, nets = {}, [_circular_net(sd) for sd in seeds]

    def g(net, img):
        with torch.no_grad():
            return net(torch.as_tensor(img)[None, None])[0].numpy()
    for name, img in (("g3", x3), ("g4", x4)):
        match = next(((k, sh) for k, ref in known.items() if (sh := circular_shift_of(img, ref)) is not None), None)
        if match is None:
            raise UserError(f"x{name[1]} is not a circular shift of x1 or x2, so translation "
                            f"invariance does not determine {name}.")
        ref_name, shift = match
        diffs = [float(np.abs(g(net, img) - g(net, known[ref_name])).max()) for net in nets]
        out[f"cs182.q3.f.{name}"] = answer(
            ref_name, f"Compute {name} for the image x{name[1]} using the invariances/equivariances of the "
            "network (CONV2-3, ReLU, CONV2-3, ReLU, GAP, circular padding).",
            f"the network built from torch.nn.Conv2d(padding_mode='circular') with random weights "
            f"(seeds {list(seeds)}): GAP outputs for x{name[1]} and x{ref_name[1]} compared",
            {"agrees": max(diffs) < 1e-12, "max_abs_error": max(diffs)},
            givens={f"x{name[1]}": img, f"x{ref_name[1]}": known[ref_name]}, assumption=Q3F_ASSUMPTION,
            method="Convolution with circular padding is equivariant to circular shifts, ReLU acts per "
                   "pixel, and the global average ignores where features are: the GAP output is "
                   "invariant to circular shifts of the input.",
            steps=[f"x{name[1]} = x{ref_name[1]} circularly shifted by {shift} (rows, columns), found by search.",
                   f"So {name} = {ref_name}."])
    # a caveat the question does not raise: with an even kernel, padding 1 on both sides makes each
    # layer's output one pixel larger than its input, counting the wrap-around pair twice
    net = nets[0]
    g1 = g(net, x1)
    by_shift = [float(np.abs(g(net, np.roll(x1, r, axis=0)) - g1).max()) for r in range(s)]
    moved = [r for r, v in enumerate(by_shift) if v > 1e-12]
    out["cs182.q3.f.seam_caveat"] = answer(
        f"Exact only away from the wrap-around seam: a 2x2 kernel with padding 1 on both sides gives a "
        f"{s + 1}x{s + 1} output from a {s}x{s} input, so the pair (last row, first row) is counted "
        f"twice. Shifting x1 down by {', '.join(map(str, moved))} row(s) puts its line on that seam and "
        f"changes g by up to "
        f"{fmt(max(by_shift), 3)} (random weights, seed {seeds[0]}); every other shift leaves g unchanged.",
        "(Beyond the question) Is the GAP output exactly invariant to every circular shift here?",
        f"the GAP output for x1 rolled down by 0..{s - 1} rows, compared with g1 (torch, seed {seeds[0]})",
        {"agrees": bool(moved), "max_abs_difference_by_shift": by_shift},
        demonstration={"max_abs_difference_by_shift": by_shift})
    return out


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
        f"pipeline.answers.batchnorm.batchnorm_backward against autograd through "
        f"torch.nn.functional.batch_norm(training=True) on a random ({n}, {d}) float64 batch",
        {"agrees": err < 1e-10, "max_abs_error": err}, latex=formula,
        steps=[r"$d\hat x = \gamma\, dy$; $\mu$ and $\sigma^2$ depend on every $x_{kj}$, so two extra "
               r"terms appear: $d\sigma^2 = \sum_k d\hat x_{kj}(x_{kj}-\mu_j)"
               r"\cdot(-\tfrac12)(\sigma_j^2+\epsilon)^{-3/2}$, "
               r"$d\mu = -\sum_k d\hat x_{kj}/\sqrt{\sigma_j^2+\epsilon}$.",
               r"Collecting terms gives the formula; $dgamma_j = \sum_k dy_{kj}\hat x_{kj}$, "
               r"$d\beta_j = \sum_k dy_{kj}$."])}


def answers() -> dict:
    """Every CS182 answer, keyed by id."""
    return q1a() | q1b() | q2ab() | q2cd() | q3ab() | q3c() | q3d() | q3e() | q3f() | q5b()
