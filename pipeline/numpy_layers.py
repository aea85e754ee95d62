"""The layers of CS182 HW3 question 5 in NumPy: forward and backward passes, cs231n layer-pair style.

Every `*_forward` returns `(out, cache)`; the matching `*_backward(dout, cache)` returns the
gradient of the input followed by the gradients of the parameters (`dx, dw, db` or
`dx, dgamma, dbeta`). Caches are NamedTuples and nothing passed in is modified: batch-norm hands
its updated running statistics back as a new `RunningStats` instead of writing into a parameter
dict. The layers are affine, ReLU, inverted dropout, batch-norm (1-D, with the backward pass both
node by node through the computational graph of question 5(a) and in the closed form of 5(b)),
spatial batch-norm, convolution (explicit loops for reading, im2col for speed), max-pool and
spatial dropout. `eval_numerical_gradient_array` and `rel_error` are the centred-difference gradient
check the tests use. Conventions follow PyTorch (NCHW layout, (F, C, HH, WW) filters, floor in the
output size, BatchNorm1d's running-statistics rule), so every layer can be compared with torch;
tests/test_numpy_layers.py does, in float64. Shapes that cannot describe a real layer raise
`UserError` (a ValueError) with one sentence. No torch in this module.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pipeline.errors import UserError

BN_MOMENTUM = 0.1  # torch.nn.BatchNorm1d's default: new = (1 - m) * old + m * batch
BN_EPS = 1e-5      # torch.nn.BatchNorm1d's default


# --- gradient checking -----------------------------------------------------------------------------

def eval_numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                                  df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * df) with respect to x.

    f: x -> out (any shapes); x: the point, any shape; df: upstream gradient, out's shape.
    Returns dx, x's shape: dx[i] = sum((f(x + h e_i) - f(x - h e_i)) * df) / (2 h), error O(h^2).
    x itself is not modified (a copy is perturbed), so callers may pass arrays they still use.
    """
    x = np.array(x, copy=True)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.array(f(x), copy=True)  # copy: f may return a view of x
        x[i] = old - h
        minus = np.array(f(x), copy=True)
        x[i] = old
        grad[i] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over elements of |a - b| / max(1e-8, |a| + |b|); a and b have the same shape."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


# --- affine and ReLU -------------------------------------------------------------------------------

class AffineCache(NamedTuple):
    x: np.ndarray  # (N, d1, ..., dk) as given
    w: np.ndarray  # (D, M)


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray):
    """out = x.reshape(N, D) @ w + b.

    x: (N, d1, ..., dk) with D = d1 * ... * dk; w: (D, M); b: (M,). Returns out (N, M), cache.
    """
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    if w.ndim != 2 or w.shape[0] != D or b.shape != (w.shape[1],):
        raise UserError(f"affine: x {x.shape} flattens to (N, {D}), so w must be ({D}, M) and b (M,);"
                        f" got w {w.shape} and b {b.shape}.")
    out = x.reshape(N, D) @ w + b
    return out, AffineCache(x, w)


def affine_backward(dout: np.ndarray, cache: AffineCache):
    """dout: (N, M). Returns dx (x's shape), dw (D, M), db (M,)."""
    x, w = cache
    N = x.shape[0]
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


class ReluCache(NamedTuple):
    x: np.ndarray  # any shape


def relu_forward(x: np.ndarray):
    """out = max(x, 0), elementwise; out has x's shape."""
    return np.maximum(x, 0), ReluCache(x)


def relu_backward(dout: np.ndarray, cache: ReluCache) -> np.ndarray:
    """dx = dout where x > 0, else 0 (the gradient at exactly 0 is taken as 0, as torch does)."""
    return dout * (cache.x > 0)


# --- dropout ---------------------------------------------------------------------------------------

class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # x's shape (or broadcastable to it): 0 or 1/(1-p); None in eval mode


def _dropout_mask(shape: tuple, p: float, rng) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p), so that E[mask] = 1."""
    if not 0.0 <= p <= 1.0:
        raise UserError(f"dropout: p is the probability of dropping a unit and must lie in [0, 1], got {p}.")
    if rng is None:
        raise UserError("dropout: training mode needs rng (a numpy Generator or an int seed) so that"
                        " the mask is reproducible.")
    keep = np.random.default_rng(rng).random(shape) >= p  # P(keep) = 1 - p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)  # p = 1 drops everything, as torch does
    return keep * scale


def dropout_forward(x: np.ndarray, p: float, train: bool, rng=None):
    """Inverted dropout. p is the probability of DROPPING a unit (torch's convention, not the
    keep probability of the original paper).

    Training: each element is zeroed with probability p and the survivors are scaled by 1/(1-p),
    so E[out] = x and evaluation needs no rescaling. Evaluation: out = x (the identity).
    x: any shape. rng: numpy Generator or int seed (required in training, ignored in eval); the
    same seed gives the same mask. Returns out (x's shape), cache.
    """
    if not train:
        return x.copy(), DropoutCache(None)
    mask = _dropout_mask(x.shape, p, rng).astype(x.dtype, copy=False)
    return x * mask, DropoutCache(mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """dx = dout * mask in training (the same mask as the forward pass), dout in evaluation."""
    return dout.copy() if cache.mask is None else dout * cache.mask


def spatial_dropout_forward(x: np.ndarray, p: float, train: bool, rng=None):
    """Spatial dropout (torch.nn.Dropout2d): drops whole channels, p = probability of dropping one.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels barely
    regularises a conv layer; dropping a channel for an image removes that feature entirely.
    x: (N, C, H, W). The mask is (N, C, 1, 1): 0 with probability p, else 1/(1-p). Eval: identity.
    Returns out (N, C, H, W), cache (dropout_backward is the backward pass; it broadcasts the mask).
    """
    if x.ndim != 4:
        raise UserError(f"spatial dropout: x must be (N, C, H, W), got shape {x.shape}.")
    if not train:
        return x.copy(), DropoutCache(None)
    mask = _dropout_mask((x.shape[0], x.shape[1], 1, 1), p, rng).astype(x.dtype, copy=False)
    return x * mask, DropoutCache(mask)


spatial_dropout_backward = dropout_backward  # the (N, C, 1, 1) mask broadcasts over H, W


# --- batch normalisation ---------------------------------------------------------------------------

class GraphNode(NamedTuple):
    node: str               # the name of the variable in batchnorm_forward and its cache
    expression: str         # the NumPy expression that computes it (eps is a constant)
    inputs: tuple[str, ...]  # the nodes or graph inputs (x, gamma, beta) it is computed from


# The training-time computational graph of question 5(a), in the order batchnorm_forward computes
# it, one entry per line of that code; batchnorm_backward walks it from the bottom up. In the
# question's names, var is sigma^2 and xhat is Z. A test evaluates these expressions and checks
# that they reproduce the forward pass's cache, so a diagram drawn from this list matches the code.
BN_GRAPH = (
    GraphNode("mu", "x.mean(axis=0)", ("x",)),
    GraphNode("xc", "x - mu", ("x", "mu")),
    GraphNode("var", "(xc ** 2).mean(axis=0)", ("xc",)),
    GraphNode("std", "np.sqrt(var + eps)", ("var",)),
    GraphNode("istd", "1 / std", ("std",)),
    GraphNode("xhat", "xc * istd", ("xc", "istd")),
    GraphNode("y", "gamma * xhat + beta", ("gamma", "xhat", "beta")),
)
BN_GRAPH_INPUTS = ("x", "gamma", "beta")


class RunningStats(NamedTuple):
    mean: np.ndarray  # (D,)
    var: np.ndarray   # (D,) unbiased, as torch keeps it


def initial_running_stats(D: int, dtype=np.float64) -> RunningStats:
    """torch's initial buffers: running_mean = 0, running_var = 1."""
    return RunningStats(np.zeros(D, dtype=dtype), np.ones(D, dtype=dtype))


class BatchNormCache(NamedTuple):
    train: bool
    gamma: np.ndarray  # (D,)
    xc: np.ndarray     # (N, D) x - mu (mu: batch mean in training, running mean in eval)
    std: np.ndarray    # (D,) sqrt(var + eps)
    istd: np.ndarray   # (D,) 1 / std
    xhat: np.ndarray   # (N, D)
    mu: np.ndarray     # (D,)
    var: np.ndarray    # (D,) biased batch variance in training, running variance in eval


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running: RunningStats,
                      train: bool, momentum: float = BN_MOMENTUM, eps: float = BN_EPS):
    """1-D batch normalisation, torch.nn.BatchNorm1d's conventions.

    Training: normalise with the batch mean and the BIASED batch variance (divide by N), and
    update the running statistics with new = (1 - momentum) * old + momentum * batch, where the
    batch variance in this update is the UNBIASED one (divide by N - 1). Evaluation: normalise with
    the running statistics, which are returned unchanged.
    x: (N, D); gamma, beta: (D,); running: RunningStats of (D,) arrays (not modified).
    Returns out (N, D), cache, the new RunningStats (three values: the running statistics are
    returned, not written into a parameter dict).
    """
    if x.ndim != 2 or gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise UserError(f"batch-norm: x must be (N, D) with gamma and beta (D,); got x {x.shape},"
                        f" gamma {gamma.shape}, beta {beta.shape}.")
    N = x.shape[0]
    if not train:
        mu, var = running.mean, running.var
        xc = x - mu
        std = np.sqrt(var + eps)
        istd = 1 / std
        xhat = xc * istd
        y = gamma * xhat + beta
        return y, BatchNormCache(False, gamma, xc, std, istd, xhat, mu, var), running
    if N < 2:
        raise UserError(f"batch-norm: training needs more than one example per feature to estimate a"
                        f" variance, got a batch of {N}.")
    # One line per node of BN_GRAPH.
    mu = x.mean(axis=0)            # (D,)
    xc = x - mu                    # (N, D)
    var = (xc ** 2).mean(axis=0)   # (D,) biased: this is what normalises the batch
    std = np.sqrt(var + eps)       # (D,)
    istd = 1 / std                 # (D,)
    xhat = xc * istd               # (N, D)
    y = gamma * xhat + beta        # (N, D)
    new = RunningStats((1 - momentum) * running.mean + momentum * mu,
                       (1 - momentum) * running.var + momentum * var * N / (N - 1))
    return y, BatchNormCache(True, gamma, xc, std, istd, xhat, mu, var), new


def batchnorm_backward(dy: np.ndarray, cache: BatchNormCache):
    """Batch-norm backward, node by node: BN_GRAPH walked from y back to x.

    dy: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,). A node used twice (xc feeds var and
    xhat; x feeds mu and xc) receives the sum of the gradients of its uses.
    """
    train, gamma, xc, std, istd, xhat, _, _ = cache
    N = dy.shape[0]
    dbeta = dy.sum(axis=0)                    # y = gamma * xhat + beta
    dgamma = (dy * xhat).sum(axis=0)
    dxhat = dy * gamma
    if not train:  # eval: mu and var are constants, only xhat = (x - mu) * istd depends on x
        return dxhat * istd, dgamma, dbeta
    dxc = dxhat * istd                        # xhat = xc * istd
    distd = (dxhat * xc).sum(axis=0)
    dstd = -distd / std ** 2                  # istd = 1 / std
    dvar = dstd * 0.5 / std                   # std = sqrt(var + eps)
    dxc = dxc + dvar * 2 * xc / N             # var = mean(xc ** 2): xc's second use
    dmu = -dxc.sum(axis=0)                    # xc = x - mu
    dx = dxc + dmu / N                        # mu = mean(x): x's second use
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dy: np.ndarray, cache: BatchNormCache):
    """Batch-norm backward in closed form (question 5(b)):

        dx = (gamma * istd / N) * (N * dy - sum(dy) - xhat * sum(dy * xhat)),  sums over the batch.

    dy: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,), equal to batchnorm_backward's.
    """
    train, gamma, _, _, istd, xhat, _, _ = cache
    N = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    if not train:
        return dy * gamma * istd, dgamma, dbeta
    dx = (gamma * istd / N) * (N * dy - dbeta - xhat * dgamma)  # dbeta = sum(dy), dgamma = sum(dy*xhat)
    return dx, dgamma, dbeta


def _channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C): every pixel of every image is one example of its channel."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def _channels_first(x2: np.ndarray, shape: tuple) -> np.ndarray:
    """(N*H*W, C) -> (N, C, H, W), the inverse of _channels_last."""
    N, C, H, W = shape
    return x2.reshape(N, H, W, C).transpose(0, 3, 1, 2)


class SpatialBatchNormCache(NamedTuple):
    shape: tuple          # (N, C, H, W)
    bn: BatchNormCache    # of the (N*H*W, C) view


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              running: RunningStats, train: bool, momentum: float = BN_MOMENTUM,
                              eps: float = BN_EPS):
    """Spatial batch-norm (torch.nn.BatchNorm2d): one mean and variance per channel, over N, H, W.

    x: (N, C, H, W); gamma, beta and the running statistics: (C,). Same conventions as
    batchnorm_forward (its unbiased running variance divides by N*H*W - 1).
    Returns out (N, C, H, W), cache, the new RunningStats.
    """
    if x.ndim != 4:
        raise UserError(f"spatial batch-norm: x must be (N, C, H, W), got shape {x.shape}.")
    y2, bn, new = batchnorm_forward(_channels_last(x), gamma, beta, running, train, momentum, eps)
    return _channels_first(y2, x.shape), SpatialBatchNormCache(x.shape, bn), new


def spatial_batchnorm_backward(dy: np.ndarray, cache: SpatialBatchNormCache):
    """dy: (N, C, H, W). Returns dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    dx2, dgamma, dbeta = batchnorm_backward_alt(_channels_last(dy), cache.bn)
    return _channels_first(dx2, cache.shape), dgamma, dbeta


# --- convolution -----------------------------------------------------------------------------------

def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """1 + (size + 2 pad - kernel) // stride, torch's floor convention (rows the last stride step
    cannot reach are ignored)."""
    return 1 + (size + 2 * pad - kernel) // stride


def _check_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> tuple[int, int]:
    """Raise UserError unless the shapes describe a convolution; return (H', W')."""
    if x.ndim != 4 or w.ndim != 4:
        raise UserError(f"conv: x must be (N, C, H, W) and w (F, C, HH, WW), got x {x.shape} and w {w.shape}.")
    if x.shape[1] != w.shape[1]:
        raise UserError(f"conv: x has {x.shape[1]} channels but the filters w {w.shape} expect {w.shape[1]}.")
    if b.shape != (w.shape[0],):
        raise UserError(f"conv: b must be ({w.shape[0]},), one bias per filter, got {b.shape}.")
    if int(stride) != stride or stride < 1 or int(pad) != pad or pad < 0:
        raise UserError(f"conv: stride must be an integer >= 1 and pad an integer >= 0, got {stride}, {pad}.")
    H, W, HH, WW = x.shape[2], x.shape[3], w.shape[2], w.shape[3]
    if HH > H + 2 * pad or WW > W + 2 * pad:
        raise UserError(f"conv: the {HH}x{WW} filter is larger than the padded {H + 2 * pad}x{W + 2 * pad}"
                        f" input; pad more or use a smaller filter.")
    return conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad H and W of (N, C, H, W) by pad on each side."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


class ConvCache(NamedTuple):
    x: np.ndarray  # (N, C, H, W)
    w: np.ndarray  # (F, C, HH, WW)
    stride: int
    pad: int


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0):
    """Convolution (cross-correlation, as in torch) with explicit loops: one output value per line.

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,). Zero padding `pad` on each side of H and W.
    Returns out (N, F, H', W') with H' = 1 + (H + 2 pad - HH) // stride (W' likewise), cache.
    """
    Ho, Wo = _check_conv(x, w, b, stride, pad)
    N, F, HH, WW = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    xp = _pad(x, pad)
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]  # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, ConvCache(x, w, stride, pad)


def conv_backward_naive(dout: np.ndarray, cache: ConvCache):
    """The loops of conv_forward_naive, each output's gradient sent back to its window and filter.

    dout: (N, F, H', W'). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    """
    x, w, stride, pad = cache
    N, F, Ho, Wo = dout.shape
    HH, WW = w.shape[2], w.shape[3]
    xp = _pad(x, pad)
    dxp = np.zeros_like(xp, dtype=np.result_type(x, dout))
    dw = np.zeros_like(w, dtype=np.result_type(w, dout))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
    db = dout.sum(axis=(0, 2, 3))
    H, W = x.shape[2], x.shape[3]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


class Im2colCache(NamedTuple):
    x_shape: tuple     # (N, C, H, W)
    w: np.ndarray      # (F, C, HH, WW)
    cols: np.ndarray   # (N, C*HH*WW, H'*W'): column k of image n is the window of output k
    stride: int
    pad: int


def im2col(x: np.ndarray, HH: int, WW: int, stride: int, pad: int) -> np.ndarray:
    """The windows of x as columns. x: (N, C, H, W) -> (N, C*HH*WW, H'*W'), rows ordered (c, kh, kw)
    like w.reshape(F, -1), so the convolution of image n is w.reshape(F, -1) @ cols[n].

    sliding_window_view makes a strided view (N, C, H+2p-HH+1, W+2p-WW+1, HH, WW) without copying;
    taking every stride-th window and reordering the axes is still a view, and the final reshape
    is the one copy.
    """
    N, C = x.shape[:2]
    windows = sliding_window_view(_pad(x, pad), (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]
    Ho, Wo = windows.shape[2], windows.shape[3]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * HH * WW, Ho * Wo)


def col2im(dcols: np.ndarray, x_shape: tuple, HH: int, WW: int, Ho: int, Wo: int, stride: int,
           pad: int) -> np.ndarray:
    """The adjoint of im2col: sum every window's gradient back into the image.

    dcols: (N, C*HH*WW, H'*W') -> dx (N, C, H, W). One strided add per kernel offset (kh, kw)
    covers all windows at once: HH*WW vectorised adds instead of a scatter with np.add.at.
    """
    N, C, H, W = x_shape
    d = dcols.reshape(N, C, HH, WW, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dcols.dtype)
    for kh in range(HH):
        for kw in range(WW):
            dxp[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride] += d[:, :, kh, kw]
    return dxp[:, :, pad:pad + H, pad:pad + W]


def conv_forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0):
    """Convolution as one batched matmul over im2col columns; same result as conv_forward_naive.

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,). Returns out (N, F, H', W'), cache.
    Keeps the dtype of its inputs (float32 in, float32 arithmetic).
    """
    Ho, Wo = _check_conv(x, w, b, stride, pad)
    N, F, HH, WW = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    cols = im2col(x, HH, WW, stride, pad)                       # (N, C*HH*WW, H'*W')
    out = np.matmul(w.reshape(F, -1), cols) + b[:, None]        # (N, F, H'*W'): already NCHW order
    return out.reshape(N, F, Ho, Wo), Im2colCache(x.shape, w, cols, stride, pad)


def conv_backward_im2col(dout: np.ndarray, cache: Im2colCache):
    """dout: (N, F, H', W'). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,).

    out_n = W2 @ cols_n + b, so dW2 = sum_n dout_n @ cols_n^T and dcols_n = W2^T @ dout_n.
    """
    x_shape, w, cols, stride, pad = cache
    N, F, Ho, Wo = dout.shape
    HH, WW = w.shape[2], w.shape[3]
    d2 = dout.reshape(N, F, Ho * Wo)                            # (N, F, H'*W')
    db = d2.sum(axis=(0, 2))
    # One (F, N*H'*W') @ (N*H'*W', CKK) product: one large BLAS call beats N small ones.
    dw = np.tensordot(d2, cols, axes=([0, 2], [0, 2])).reshape(w.shape)
    dcols = np.matmul(w.reshape(F, -1).T, d2)                   # (N, C*HH*WW, H'*W')
    dx = col2im(dcols, x_shape, HH, WW, Ho, Wo, stride, pad)
    return dx, dw, db


# --- max-pool --------------------------------------------------------------------------------------

def _check_pool(x: np.ndarray, pool_height: int, pool_width: int, stride: int) -> tuple[int, int]:
    """Raise UserError unless the pool fits x; return (H', W')."""
    if x.ndim != 4:
        raise UserError(f"max-pool: x must be (N, C, H, W), got shape {x.shape}.")
    if min(pool_height, pool_width, stride) < 1:
        raise UserError(f"max-pool: pool size and stride must be >= 1, got {pool_height}x{pool_width}"
                        f" stride {stride}.")
    H, W = x.shape[2], x.shape[3]
    if pool_height > H or pool_width > W:
        raise UserError(f"max-pool: the {pool_height}x{pool_width} pool is larger than the {H}x{W} input.")
    return conv_output_size(H, pool_height, stride, 0), conv_output_size(W, pool_width, stride, 0)


class PoolCache(NamedTuple):
    x_shape: tuple       # (N, C, H, W)
    argmax: np.ndarray   # (N, C, H', W') int: flat index kh * pool_width + kw of each window's max
    pool_height: int
    pool_width: int
    stride: int


def max_pool_forward_naive(x: np.ndarray, pool_height: int = 2, pool_width: int = 2, stride: int = 2):
    """Max-pool with explicit loops. x: (N, C, H, W). Returns out (N, C, H', W'), cache, with
    H' = 1 + (H - pool_height) // stride. Ties go to the first maximum in row-major order, as in
    torch, so the gradient is the same as torch's even on ties."""
    Ho, Wo = _check_pool(x, pool_height, pool_width, stride)
    N, C = x.shape[:2]
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.zeros((N, C, Ho, Wo), dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride:i * stride + pool_height, j * stride:j * stride + pool_width]
                    k = np.argmax(window)  # first maximum of the flattened window
                    argmax[n, c, i, j] = k
                    out[n, c, i, j] = window.flat[k]
    return out, PoolCache(x.shape, argmax, pool_height, pool_width, stride)


def max_pool_backward_naive(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Each output's gradient goes to the one input that was its window's maximum.
    dout: (N, C, H', W'). Returns dx (N, C, H, W)."""
    x_shape, argmax, ph, pw, stride = cache
    N, C, Ho, Wo = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    kh, kw = divmod(int(argmax[n, c, i, j]), pw)
                    dx[n, c, i * stride + kh, j * stride + kw] += dout[n, c, i, j]
    return dx


def max_pool_forward_fast(x: np.ndarray, pool_height: int = 2, pool_width: int = 2, stride: int = 2):
    """Vectorised max-pool, same results and cache as max_pool_forward_naive.

    Non-overlapping pools that tile the input (stride = pool size, H and W multiples of it) are a
    reshape to (N, C, H', ph, W', pw); any other pool uses a strided window view. Either way the
    windows are flattened to (..., ph*pw) and argmax picks the first maximum, as torch does.
    """
    Ho, Wo = _check_pool(x, pool_height, pool_width, stride)
    N, C, H, W = x.shape
    if stride == pool_height == pool_width and H % stride == 0 and W % stride == 0:
        windows = x.reshape(N, C, Ho, pool_height, Wo, pool_width).transpose(0, 1, 2, 4, 3, 5)
    else:
        windows = sliding_window_view(x, (pool_height, pool_width), axis=(2, 3))[:, :, ::stride, ::stride]
    flat = windows.reshape(N, C, Ho, Wo, pool_height * pool_width)
    argmax = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, PoolCache(x.shape, argmax, pool_height, pool_width, stride)


def max_pool_backward_fast(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dout: (N, C, H', W'). Returns dx (N, C, H, W). One strided add per pool offset (kh, kw):
    the outputs whose maximum sat at that offset add their gradient to the input there."""
    x_shape, argmax, ph, pw, stride = cache
    Ho, Wo = dout.shape[2], dout.shape[3]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for kh in range(ph):
        for kw in range(pw):
            hit = argmax == kh * pw + kw
            dx[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride] += dout * hit
    return dx
