"""Convolution arithmetic shared by the written questions of all three homeworks.

Output sizes, parameter and multiply-add counts, receptive fields, and the matrix form of a 1-D
convolution (COM S 573 Q3: Y~ = A X~) both numeric and symbolic. The numeric matrix, the symbolic
matrix and the backward pass all come from one piece of index arithmetic (`conv1d_taps`), so they
cannot disagree with each other; the tests compare them with torch. Every function is pure. A given
that cannot describe a real layer (a negative or zero size, a kernel wider than the padded input, a
stride that must tile the input exactly but does not) raises `UserError` (a ValueError) with one
sentence. Layouts follow PyTorch: a 1-D weight is (C_out, C_in, K), a 1-D signal is (C, L).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from pipeline.errors import UserError


# --- validation ------------------------------------------------------------------------------

def require_int(name: str, value, minimum: int) -> int:
    """`value` as an int >= minimum, else UserError (bools and floats are refused, not rounded)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} must be a whole number, got {value!r}.")
    if value < minimum:
        raise UserError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def pair(name: str, value) -> tuple[int, int]:
    """An int k or a pair (kh, kw) as (kh, kw); a kernel/stride given once applies to H and W."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UserError(f"{name} must be one number or a pair (height, width), got {value!r}.")
        return value[0], value[1]
    return value, value


# --- numbers as TeX, for the answers' prose -----------------------------------------------------

def tex_int(n) -> str:
    """A whole number for TeX, thousands grouped as the prose groups them: 294912 -> 294{,}912
    (a bare comma in maths mode would be set as punctuation, with a space after it)."""
    return f"{int(n):,}".replace(",", "{,}")


def tex_dims(*sizes) -> str:
    """A shape for TeX: 15, 15, 3 -> 15 \\times 15 \\times 3 (symbols work too: "H", "W")."""
    return r" \times ".join(str(s) for s in sizes)


def tex_matrix(M) -> str:
    """A matrix of numbers (rows of a list of lists) as an inline TeX bmatrix."""
    rows = [" & ".join(str(int(v)) if float(v).is_integer() else f"{float(v):g}" for v in row) for row in M]
    return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"


# --- sizes and counts ------------------------------------------------------------------------

def out_size_expr(size, kernel, stride, padding):
    """floor((size + 2p - k) / s) + 1 with no checks, so sympy symbols work too (CS182 3(a))."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, exact: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis.

    size, kernel, stride >= 1; padding >= 0 (zero or circular, the count is the same). With
    exact=True the window must tile the padded input with no rows left over, as a question that
    says "the output is exactly half" requires; otherwise the last partial step is dropped
    (floor), which is what torch.nn.Conv2d does.
    """
    size = require_int("size", size, 1)
    kernel = require_int("kernel", kernel, 1)
    stride = require_int("stride", stride, 1)
    padding = require_int("padding", padding, 0)
    dilation = require_int("dilation", dilation, 1)
    span = dilation * (kernel - 1) + 1  # the input positions one window covers
    padded = size + 2 * padding
    if span > padded:
        raise UserError(f"a kernel spanning {span} is larger than the padded input {padded} "
                        f"(size {size} + 2 x padding {padding}); use a smaller kernel or more padding.")
    if exact and (padded - span) % stride:
        raise UserError(f"stride {stride} does not tile the padded input exactly "
                        f"(size + 2p - k = {padded - span} is not a multiple of {stride}); "
                        f"change the stride or the padding.")
    return (padded - span) // stride + 1  # = out_size_expr(size, span, stride, padding)


def conv2d_output_shape(h: int, w: int, out_channels: int, kernel, stride=1, padding=0,
                        exact: bool = False) -> tuple[int, int, int]:
    """(H_out, W_out, C_out) of a 2-D convolution on an H x W input (the homeworks write HWC)."""
    kh, kw = pair("kernel", kernel)
    sh, sw = pair("stride", stride)
    ph, pw = pair("padding", padding)
    out_channels = require_int("out_channels", out_channels, 1)
    return (conv_output_size(h, kh, sh, ph, exact=exact),
            conv_output_size(w, kw, sw, pw, exact=exact), out_channels)


def pool2d_output_shape(h: int, w: int, c: int, kernel, stride=None) -> tuple[int, int, int]:
    """(H_out, W_out, C) of max/avg pooling (no padding); the channel count is unchanged."""
    kh, kw = pair("kernel", kernel)
    sh, sw = pair("stride", kernel if stride is None else stride)
    c = require_int("channels", c, 1)
    return conv_output_size(h, kh, sh), conv_output_size(w, kw, sw), c


def conv_params(in_channels: int, out_channels: int, kernel, bias: bool = True) -> int:
    """Weights kh*kw*C_in per filter times C_out filters, plus one bias per filter if bias."""
    c_in = require_int("in_channels", in_channels, 1)
    c_out = require_int("out_channels", out_channels, 1)
    kh, kw = (require_int("kernel", k, 1) for k in pair("kernel", kernel))
    return kh * kw * c_in * c_out + (c_out if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """A fully-connected layer: in*out weights plus out biases."""
    n_in = require_int("in_features", in_features, 1)
    n_out = require_int("out_features", out_features, 1)
    return n_in * n_out + (n_out if bias else 0)


def conv_mult_adds(in_channels: int, out_channels: int, kernel, out_h: int, out_w: int) -> int:
    """Multiply-adds of a 2-D convolution: one kh*kw*C_in dot product per output value
    (C_out * H_out * W_out of them). Bias additions are not counted, as in COM S 573 1(b)."""
    per_output = conv_params(in_channels, out_channels, kernel, bias=False) // out_channels
    return per_output * out_channels * require_int("out_h", out_h, 1) * require_int("out_w", out_w, 1)


def receptive_field(layers: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Receptive field r and jump j (input pixels between neighbouring outputs) after each layer.

    layers: (kernel, stride) per layer, input first. r_0 = 1, j_0 = 1; a layer adds (k - 1) * j
    to r (its window reaches k - 1 more positions of the previous layer, each j input pixels
    apart) and multiplies j by its stride (CS182 3(c), 3(d)). Padding changes neither.
    """
    r, j, out = 1, 1, []
    for n, (k, s) in enumerate(layers):
        k = require_int(f"layer {n} kernel", k, 1)
        s = require_int(f"layer {n} stride", s, 1)
        r, j = r + (k - 1) * j, j * s
        out.append((r, j))
    return out


# --- convolution as a matrix (COM S 573 Q3) --------------------------------------------------

def conv1d_taps(c_in: int, c_out: int, kernel: int, length: int, stride: int = 1,
                padding: int = 0) -> Iterator[tuple[int, int, int, int, int]]:
    """Every (row, col, j, i, k) with A[row, col] = w[j, i, k] for Y~ = A X~.

    X~ flattens X (C_in, L) row by row (channel-major, as the homework's x11..x14, x21..x24) and
    Y~ flattens Y (C_out, L_out) the same way. Output t of channel j reads input position
    t*stride + k - padding of every channel i; positions in the zero padding contribute nothing,
    so they have no column.
    """
    c_in = require_int("in_channels", c_in, 1)
    c_out = require_int("out_channels", c_out, 1)
    l_out = conv_output_size(length, kernel, stride, padding)
    for j in range(c_out):
        for t in range(l_out):
            for i in range(c_in):
                for k in range(kernel):
                    pos = t * stride + k - padding
                    if 0 <= pos < length:
                        yield j * l_out + t, i * length + pos, j, i, k


def conv1d_matrix(weight: np.ndarray, length: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """A (C_out * L_out, C_in * L) with A @ x.ravel() == conv1d(x, weight).ravel() for x (C_in, L)."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 3:
        raise UserError(f"weight must be (C_out, C_in, K), got shape {weight.shape}.")
    c_out, c_in, kernel = weight.shape
    l_out = conv_output_size(length, kernel, stride, padding)
    A = np.zeros((c_out * l_out, c_in * length))
    for row, col, j, i, k in conv1d_taps(c_in, c_out, kernel, length, stride, padding):
        A[row, col] += weight[j, i, k]
    return A


def weight_symbol(j: int, i: int, k: int, many: bool = False) -> str:
    """The homework's w_k^{ij} (0-based j, i, k in): tap k+1 of the kernel W^{ij} that scans input
    channel i+1 and feeds output channel j+1 (COM S 573 3, eq. 3). With >9 channels a comma
    keeps the two indices apart."""
    return f"w{k + 1}^{i + 1},{j + 1}" if many else f"w{k + 1}^{i + 1}{j + 1}"


def conv1d_matrix_symbols(c_in: int, c_out: int, kernel: int, length: int, stride: int = 1,
                          padding: int = 0) -> list[list[str]]:
    """A of `conv1d_matrix` with symbols ("w1^11") for weights and "0" elsewhere."""
    l_out = conv_output_size(length, kernel, stride, padding)
    many = max(c_in, c_out) > 9
    A = [["0"] * (c_in * length) for _ in range(c_out * l_out)]
    for row, col, j, i, k in conv1d_taps(c_in, c_out, kernel, length, stride, padding):
        A[row][col] = weight_symbol(j, i, k, many)  # one tap per (row, col): no sums of symbols
    return A


def transpose(M: list[list]) -> list[list]:
    """Transpose of a row-major list of lists (B = A^T, COM S 573 3(b))."""
    return [list(col) for col in zip(*M)]


def symbols_to_numbers(M: list[list[str]], weight: np.ndarray) -> np.ndarray:
    """Substitute weight[j, i, k] for each symbol w{k+1}^{i+1}{j+1} in M; "0" -> 0.
    Used to check a symbolic answer by plugging in random numbers."""
    weight = np.asarray(weight, dtype=np.float64)
    c_out, c_in, kernel = weight.shape
    many = max(c_in, c_out) > 9
    values = {weight_symbol(j, i, k, many): weight[j, i, k]
              for j in range(c_out) for i in range(c_in) for k in range(kernel)}
    values["0"] = 0.0
    return np.array([[values[s] for s in row] for row in M])


def backward_kernels_symbols(c_in: int, c_out: int, kernel: int) -> list[list[list[str]]]:
    """Kernels of the convolution that maps dL/dY (C_out, L_out) to dL/dX (C_in, L), stride 1.

    Returned as [i][j][k] (torch layout: output channel i of the backward pass = input channel
    of the forward, input channel j = forward output). dx_i(s) = sum_j sum_t w^{ij}_{s-t+1} g_j(t),
    i.e. a cross-correlation of g_j with W^{ij} reversed: tap k of the backward kernel is tap
    K-1-k of the forward one (COM S 573 3(c)).
    """
    many = max(c_in, c_out) > 9
    return [[[weight_symbol(j, i, kernel - 1 - k, many) for k in range(kernel)]
             for j in range(c_out)] for i in range(c_in)]


def backward_kernels(weight: np.ndarray) -> np.ndarray:
    """Numeric form of `backward_kernels_symbols`: (C_out, C_in, K) -> (C_in, C_out, K), reversed."""
    return np.asarray(weight)[:, :, ::-1].transpose(1, 0, 2).copy()  # copy: fresh, positive strides


def backward_padding(kernel: int, padding: int = 0) -> int:
    """Zero padding of the stride-1 backward convolution: K - 1 - p on each side ("full" mode)."""
    kernel = require_int("kernel", kernel, 1)
    padding = require_int("padding", padding, 0)
    if padding > kernel - 1:
        raise UserError(f"padding {padding} is wider than kernel - 1 = {kernel - 1}; the backward "
                        f"pass would need negative padding (a crop), which this question excludes.")
    return kernel - 1 - padding


def conv1d_backward_as_conv(dout: np.ndarray, weight: np.ndarray, length: int, stride: int = 1,
                            padding: int = 0) -> np.ndarray:
    """dL/dX (C_in, L) from dL/dY (C_out, L_out) as one stride-1 convolution.

    dout's samples are spread `stride` apart (stride-1 zeros between them: the "dilation" that
    makes a strided backward pass a transposed convolution), placed at offset K-1-padding in a
    zero signal of length L + K - 1, and cross-correlated with the reversed, channel-swapped
    kernels. Samples that land outside never touched X and are dropped.
    """
    dout = np.asarray(dout, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    c_out, c_in, kernel = weight.shape
    l_out = conv_output_size(length, kernel, stride, padding)
    if dout.shape != (c_out, l_out):
        raise UserError(f"dout must be (C_out, L_out) = {(c_out, l_out)}, got {dout.shape}.")
    spread = np.zeros((c_out, length + kernel - 1))  # (C_out, L + K - 1)
    for t in range(l_out):
        q = t * stride + kernel - 1 - padding
        if 0 <= q < spread.shape[1]:
            spread[:, q] = dout[:, t]
    wb = backward_kernels(weight)  # (C_in, C_out, K)
    dx = np.zeros((c_in, length))
    for s in range(length):  # cross-correlation, written out (# (C_in, C_out, K) * (C_out, K))
        dx[:, s] = np.einsum("ijk,jk->i", wb, spread[:, s:s + kernel])
    return dx


# --- the FIR-filter view (CS182 Q2) ----------------------------------------------------------

def fir1d(x: Sequence[float], x_start: int, h: Sequence[float], h_start: int,
          n_from: int, n_to: int) -> list[float]:
    """y(n) = sum_k x(k) h(n - k) for n = n_from..n_to, from the definition (CS182 2, eq. 1).

    x and h are finite signals: x[0] is the sample at time x_start (h likewise); every other
    sample is zero.
    """
    if n_to < n_from:
        raise UserError(f"the output window must run forward, got n = {n_from}..{n_to}.")
    y = []
    for n in range(n_from, n_to + 1):
        total = 0.0
        for a, xa in enumerate(x):
            k = x_start + a
            b = n - k - h_start  # index of h(n - k) in h
            if 0 <= b < len(h):
                total += xa * h[b]
        y.append(total)
    return y


def conv2d_fir(x: np.ndarray, h: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """y[m, n] = sum_{i,j} x[m - i, n - j] h[i, j] on a zero-padded x, kept where h lies wholly
    inside the padded input, sampled every `stride` (CS182 2(c), 2(d); eq. 2).

    Unlike torch's conv2d (a cross-correlation) the kernel is flipped: output (m, n) pairs
    x[top + a, left + b] with h[K-1-a, L-1-b]. x (H, W), h (K, L) -> y (H_out, W_out).
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    if x.ndim != 2 or h.ndim != 2:
        raise UserError(f"x and h must be 2-D matrices, got shapes {x.shape} and {h.shape}.")
    kh, kw = h.shape
    out_h = conv_output_size(x.shape[0], kh, stride, padding)
    out_w = conv_output_size(x.shape[1], kw, stride, padding)
    xp = np.pad(x, padding)
    y = np.zeros((out_h, out_w))
    for m in range(out_h):
        for n in range(out_w):
            top, left = m * stride, n * stride
            for a in range(kh):
                for b in range(kw):
                    y[m, n] += xp[top + a, left + b] * h[kh - 1 - a, kw - 1 - b]
    return y
