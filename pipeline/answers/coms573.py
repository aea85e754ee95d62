"""COM S 573 HW5 written questions 1-3 (seed 002), answered by computation.

Q1: parameters, multiply-adds and feature memory of a two-convolution block. Q2: the batch-norm
questions of CSCE-421 Q3, word for word (computed by `csce421.bn_answers`). Q3: a 1-D convolution
written as a matrix, Y~ = A X~, its backward pass dL/dX~ = B dL/dY~, and whether that backward pass
is itself a convolution. A, B and the backward kernels are matrices of symbols ("w1^11") built
from index arithmetic (`conv.conv1d_taps`) and checked by substituting random numbers and
comparing with torch.nn.functional.conv1d, autograd and conv_transpose1d. The block's figure in
Q1 did not survive extraction; its layers are read off the worked solution's arithmetic and
stated as an assumption.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pipeline.answers import conv
from pipeline.answers.csce421 import bn_answers
from pipeline.answers.record import agreement, answer, fmt
from pipeline.errors import UserError

# Q1: X is 64 x 64 x 128, every conv pads 1. Layers (kernel, out_channels, stride) as the worked
# solution computes them: 3x3x128x256 with output 32x32 (so stride 2), then 3x3x256x512 at 32x32.
Q1_SIZE, Q1_IN_CHANNELS, Q1_PADDING = 64, 128, 1
Q1_LAYERS = ((3, 256, 2), (3, 512, 1))
Q1_ASSUMPTION = ("The block's figure was lost in extraction. Its layers are read off the worked "
                 "solution: a 3x3 convolution 128 -> 256 with stride 2 (output 32 x 32), then a 3x3 "
                 "convolution 256 -> 512 with stride 1; every convolution pads 1; biases skipped.")
Q2_BETA = (0, -10, 10)  # printed with its minus sign in this homework
# Q3: X is (2 channels, length 4), kernel 3, 2 output channels, no padding, stride 1.
Q3_C_IN, Q3_C_OUT, Q3_KERNEL, Q3_LENGTH = 2, 2, 3, 4
SEED = 0  # the random numbers substituted into the symbolic answers


def block_facts(size: int = Q1_SIZE, in_channels: int = Q1_IN_CHANNELS, layers=Q1_LAYERS,
                padding: int = Q1_PADDING) -> dict:
    """Shapes [H, W, C] after each stage, parameters and multiply-adds per layer (no bias)."""
    shapes = [[size, size, conv.require_int("in_channels", in_channels, 1)]]
    params, mult_adds = [], []
    for k, c_out, s in layers:
        h, w, c = shapes[-1]
        shapes.append(list(conv.conv2d_output_shape(h, w, c_out, k, s, padding)))
        params.append(conv.conv_params(c, c_out, k, bias=False))
        mult_adds.append(conv.conv_mult_adds(c, c_out, k, shapes[-1][0], shapes[-1][1]))
    return {"shapes": shapes, "params": params, "mult_adds": mult_adds,
            "numel": [h * w * c for h, w, c in shapes]}


def _torch_block_facts(size, in_channels, layers, padding) -> dict:
    """The same facts from torch: layers on the meta device (shapes, no arithmetic), parameter
    numels, and torch's FLOP counter (which counts 2 flops per multiply-add)."""
    mods, c = [], in_channels
    for k, c_out, s in layers:
        mods.append(torch.nn.Conv2d(c, c_out, k, stride=s, padding=padding, bias=False, device="meta"))
        c = c_out
    x = torch.zeros(1, in_channels, size, size, device="meta")
    shapes, mult_adds = [[size, size, in_channels]], []
    for m in mods:
        with FlopCounterMode(display=False) as counter:
            x = m(x)
        mult_adds.append(counter.get_total_flops() // 2)
        shapes.append([x.shape[2], x.shape[3], x.shape[1]])
    return {"shapes": shapes, "params": [sum(p.numel() for p in m.parameters()) for m in mods],
            "mult_adds": mult_adds, "numel": [h * w * c for h, w, c in shapes]}


def q1(size: int = Q1_SIZE, in_channels: int = Q1_IN_CHANNELS, layers=Q1_LAYERS,
       padding: int = Q1_PADDING) -> dict:
    """Q1 (a) parameters, (b) multiply-adds, (c) memory change from input to output features."""
    f = block_facts(size, in_channels, layers, padding)
    t = _torch_block_facts(size, in_channels, layers, padding)
    total_params, total_ma = sum(f["params"]), sum(f["mult_adds"])
    n_in, n_out = f["numel"][0], f["numel"][-1]
    change = 100.0 * (n_out - n_in) / n_in
    stage_change = [100.0 * (b - a) / a for a, b in zip(f["numel"], f["numel"][1:])]
    question = (f"Given the convolutional block with input feature maps X in R^({size} x {size} x "
                f"{in_channels}), all convolutional layers zero-padding {padding} on each side of H and W: ")
    givens = {"input": f["shapes"][0], "padding": padding,
              "layers": [{"kernel": k, "out_channels": c, "stride": s} for k, c, s in layers]}
    check_p = "torch.nn.Conv2d layers (bias=False): sum of parameter numels"
    check_m = ("torch.utils.flop_counter.FlopCounterMode on the layers (meta device), which counts "
               "2 flops per multiply-add")
    check_mem = "element counts of the tensors the torch layers produce (meta device)"
    size_steps = []
    for (h, w, c), (k, c_out, s), (h2, w2, _) in zip(f["shapes"], layers, f["shapes"][1:]):
        exact = (h + 2 * padding - k) % s == 0
        size_steps.append(
            f"$\\lfloor({h} + 2\\cdot{padding} - {k})/{s}\\rfloor + 1 = {h2}$"
            + ("" if exact else f" (${h + 2 * padding - k}/{s}$ is not whole: the last step is dropped)")
            + f", so {h} x {w} x {c} -> {h2} x {w2} x {c_out}.")
    return {
        "coms573.q1.output_shapes": answer(
            f["shapes"], question + "what are the feature shapes [H, W, C] after each stage?",
            "output shapes of the torch layers", agreement(f["shapes"], t["shapes"]),
            givens=givens, assumption=Q1_ASSUMPTION, steps=size_steps),
        "coms573.q1.params": answer(
            total_params, question + "(a) What is the total number of parameters in the block "
            "(you can skip bias terms)?", check_p, agreement(total_params, sum(t["params"])),
            givens=givens, assumption=Q1_ASSUMPTION, unit="parameters",
            method="Sum of K x K x C_in x C_out over the convolutions.",
            steps=[f"${k}\\cdot{k}\\cdot{c}\\cdot{c_out}$ = {p:,}" for (k, c_out, _), (_, _, c), p
                   in zip(layers, f["shapes"], f["params"])]
            + [f"Total: {' + '.join(f'{p:,}' for p in f['params'])} = {total_params:,}."]),
        "coms573.q1.mult_adds": answer(
            total_ma, question + "(b) What is the total number of multi-add operations in the block?",
            check_m, agreement(total_ma, sum(t["mult_adds"])), givens=givens,
            assumption=Q1_ASSUMPTION, unit="multiply-adds",
            method="Each output value is one K x K x C_in dot product: K*K*C_in*C_out*H_out*W_out per layer.",
            steps=size_steps + [f"${k}\\cdot{k}\\cdot{c}\\cdot{c_out}\\cdot{h2}\\cdot{w2}$ = {m:,}"
                                for (k, c_out, _), (_, _, c), (h2, w2, _), m
                                in zip(layers, f["shapes"], f["shapes"][1:], f["mult_adds"])]
            + [f"Total: {' + '.join(f'{m:,}' for m in f['mult_adds'])} = {total_ma:,}."]),
        "coms573.q1.memory_change_percent": answer(
            change, question + "(c) What is the memory requirement change to store the input and "
            "output features of this block (use percentage)?", check_mem,
            agreement(change, 100.0 * (t["numel"][-1] - t["numel"][0]) / t["numel"][0]),
            givens=givens, assumption=Q1_ASSUMPTION, unit="%",
            method="(elements of the output - elements of the input) / elements of the input.",
            demonstration={"elements_by_stage": f["numel"], "stage_change_percent": stage_change,
                           "bytes_float32_by_stage": [4 * n for n in f["numel"]]},
            steps=[f"Stage {n}: {a:,} -> {b:,} elements ({'+' if p >= 0 else ''}{fmt(p)}%)."
                   for n, (a, b, p) in enumerate(zip(f["numel"], f["numel"][1:], stage_change), start=1)]
            + [f"Input to output: {n_in:,} -> {n_out:,} elements: {fmt(change)}% change."]),
        "coms573.q1.params_by_layer": answer(
            {f"conv{n}": p for n, p in enumerate(f["params"], start=1)},
            "Parameters of each convolution of the block (no biases).", check_p,
            agreement(f["params"], t["params"]), givens=givens, assumption=Q1_ASSUMPTION),
        "coms573.q1.mult_adds_by_layer": answer(
            {f"conv{n}": m for n, m in enumerate(f["mult_adds"], start=1)},
            "Multiply-adds of each convolution of the block.", check_m,
            agreement(f["mult_adds"], t["mult_adds"]), givens=givens, assumption=Q1_ASSUMPTION),
    }


def q2() -> dict:
    """Q2 (a)-(d): the same batch-norm questions as CSCE-421 Q3 (ids coms573.q2.*)."""
    return bn_answers("coms573.q2", beta=Q2_BETA)


# --- Q3: convolution as a matrix, and its backward pass -----------------------------------------

def _labels(name: str, channels: int, length: int) -> list[str]:
    """x11, x12, ..., x24: the homework's names of a flattened (channels, length) signal."""
    return [f"{name}{c + 1}{t + 1}" for c in range(channels) for t in range(length)]


def _tex(name: str) -> str:
    """LaTeX for a label or symbol: "x12" -> x_{12}, "w1^21" -> w_{1}^{21}."""
    if "^" in name:
        k, ij = name[1:].split("^")
        return f"{name[0]}_{{{k}}}^{{{ij}}}"
    return f"{name[0]}_{{{name[1:]}}}"


def random_conv1d_case(c_in, c_out, kernel, length, stride=1, padding=0, seed=SEED):
    """Seeded float64 case: w (C_out, C_in, K), x (1, C_in, L), y = conv1d(x, w) (1, C_out, L_out),
    an upstream gradient dy like y, and autograd's dL/dX like x."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, kernel, dtype=torch.float64, generator=g)
    x = torch.randn(1, c_in, length, dtype=torch.float64, generator=g, requires_grad=True)
    y = F.conv1d(x, w, stride=stride, padding=padding)        # (1, C_out, L_out)
    dy = torch.randn(y.shape, dtype=torch.float64, generator=g)
    (dx,) = torch.autograd.grad(y, x, dy)                      # (1, C_in, L)
    return w, x.detach(), y.detach(), dy, dx


def q3(c_in: int = Q3_C_IN, c_out: int = Q3_C_OUT, kernel: int = Q3_KERNEL,
       length: int = Q3_LENGTH) -> dict:
    """Q3 (a) A, (b) B and its relation to A, (c) whether the backward pass is a convolution, its
    kernels and padding. No padding, stride 1, as the question sets them."""
    A = conv.conv1d_matrix_symbols(c_in, c_out, kernel, length)
    B = conv.transpose(A)
    l_out = conv.conv_output_size(length, kernel)
    kb = conv.backward_kernels_symbols(c_in, c_out, kernel)   # [i][j][k]
    pad_b = conv.backward_padding(kernel)
    # (c) decided by code: the matrix of a stride-1 convolution of dL/dY (C_out, L_out) with kernels
    # kb and padding K-1 is built from the same index arithmetic as A, then compared with B.
    B_as_conv = [["0"] * (c_out * l_out) for _ in range(c_in * length)]
    for row, col, i, j, k in conv.conv1d_taps(c_out, c_in, kernel, l_out, 1, pad_b):
        B_as_conv[row][col] = kb[i][j][k]
    is_conv = B_as_conv == B

    w, x, y, dy, dx = random_conv1d_case(c_in, c_out, kernel, length)
    W = w.numpy()
    A_num = conv.symbols_to_numbers(A, W)
    B_num = conv.symbols_to_numbers(B, W)
    kb_num = torch.as_tensor(conv.symbols_to_numbers([sum(r, []) for r in kb], W)
                             .reshape(c_in, c_out, kernel))
    dx_kernels = F.conv1d(dy, kb_num, padding=pad_b)                 # (1, C_in, L)
    dx_transpose = F.conv_transpose1d(dy, w)                          # the textbook identity
    y_labels, x_labels = _labels("y", c_out, l_out), _labels("x", c_in, length)
    g_labels = [f"dL/d{s}" for s in y_labels]
    givens = {"X": [x_labels[c * length:(c + 1) * length] for c in range(c_in)], "kernel": kernel,
              "out_channels": c_out, "padding": 0, "stride": 1}
    seed_note = f"random float64 weights, input and upstream gradient (torch.Generator seed {SEED})"
    l_back = conv.conv_output_size(l_out, kernel, 1, pad_b)
    return {
        "coms573.q3.A": answer(
            A, f"Write the convolution ({c_in} input channels of length {length}, kernel {kernel}, "
            f"{c_out} output channels, no padding) as a fully connected layer Y~ = A X~ with "
            f"X~ = [{', '.join(x_labels)}] and Y~ = [{', '.join(y_labels)}].",
            f"A with the symbols replaced by {seed_note}, times X~, against "
            "torch.nn.functional.conv1d(X, W) flattened row by row, and against autograd's Jacobian",
            agreement(A_num @ x.numpy().ravel(), y.numpy().ravel())
            | {"jacobian_max_abs_error": float(np.abs(
                torch.autograd.functional.jacobian(lambda v: F.conv1d(v.view(1, c_in, length), w).ravel(),
                                                   x.ravel()).numpy() - A_num).max())},
            givens=givens, unit=f"{len(A)} x {len(A[0])} matrix",
            method="Row (j, t) of A holds kernel W^{ij} at columns (i, t..t+K-1): output t of channel "
                   "j reads K neighbouring inputs of every input channel i.",
            demonstration={"Y_flat": y_labels, "X_flat": x_labels},
            steps=["$" + _tex(lab) + " = " + " + ".join(f"{_tex(s)}\\,{_tex(x_labels[c])}"
                                                      for c, s in enumerate(row) if s != "0") + "$"
                   for lab, row in zip(y_labels, A)]),
        "coms573.q3.B": answer(
            B, f"Write the back-propagation as dL/dX~ = B dL/dY~ with dL/dY~ = [{', '.join(g_labels)}]; how are "
            "A and B related?",
            f"B with the symbols replaced by the same {seed_note}, times dL/dY~, against autograd's dL/dX",
            agreement(B_num @ dy.numpy().ravel(), dx.numpy().ravel()), givens=givens,
            method="Y~ = A X~ is linear, so dY~/dX~ = A and the chain rule gives dL/dX~ = A^T dL/dY~.",
            unit=f"{len(B)} x {len(B[0])} matrix"),
        "coms573.q3.relation": answer(
            "B = A^T", "Explain the relationship between A and B.",
            "B built as the transpose of A agrees with autograd (see coms573.q3.B)",
            agreement(B_num @ dy.numpy().ravel(), dx.numpy().ravel())),
        "coms573.q3.is_convolution": answer(
            bool(is_conv), "Does dL/dX~ = B dL/dY~ also correspond to a convolution on dL/dY~ giving dL/dX~?",
            "B compared symbol by symbol with the matrix of a stride-1 convolution of dL/dY with the "
            f"kernels below and padding {pad_b}; numerically, that convolution "
            "(torch.nn.functional.conv1d) against autograd",
            agreement(dx_kernels.numpy(), dx.numpy()) | {"matrix_equal": bool(is_conv)},
            method="Every row of B = A^T applies the same reversed taps, shifted by one per position: "
                   "a convolution (a 'full' one, padded by K-1) of dL/dY with each kernel reversed and "
                   "the roles of input and output channels swapped."),
        "coms573.q3.backward_kernels": answer(
            kb, "If yes, write down the kernels for this convolution (one per row of dL/dX, "
            "each spanning the rows of dL/dY).",
            f"torch.nn.functional.conv1d(dL/dY, kernels, padding={pad_b}) with the {seed_note} against "
            "autograd's dL/dX, and against torch.nn.functional.conv_transpose1d(dL/dY, W)",
            agreement(dx_kernels.numpy(), dx.numpy())
            | {"conv_transpose1d_max_abs_error": float((dx_transpose - dx).abs().max())},
            givens=givens, method="Kernel for dL/dx_i: row j is W^{ij} reversed, [w3^ij, w2^ij, w1^ij].",
            steps=[f"dL/dx{i + 1}: " + "; ".join("[" + ", ".join(r) + f"] scans dL/dy{j + 1}"
                                                 for j, r in enumerate(kb[i])) for i in range(c_in)]),
        "coms573.q3.backward_padding": answer(
            pad_b, "Zero padding (each side) of that convolution.",
            "the output length it gives, and the conv1d check above",
            agreement(l_back, length) | {"output_length": l_back},
            method="K - 1 on each side ('full' convolution) so every input position is reached.",
            steps=[f"$({l_out} - {kernel} + 2\\cdot{pad_b})/1 + 1 = {l_back}$ = the input length {length}."]),
        "coms573.q3.strided_backward": strided_backward_answer(),
    }


def strided_backward_demo(length: int = 8, channels=(3, 4), kernel: int = 3, stride: int = 2,
                          padding: int = 1, seed: int = SEED) -> dict:
    """The backward pass of a *strided* convolution, three ways, against autograd.

    1-D with our NumPy `conv1d_backward_as_conv` (spread dL/dY `stride` apart, convolve with the
    reversed kernels), and 2-D with torch's conv_transpose2d (which needs `output_padding` when the
    forward pass dropped input rows) and with an explicit "dilate, pad, conv2d" construction.
    """
    c_in, c_out = channels
    w, x, y, dy, dx = random_conv1d_case(c_in, c_out, kernel, length, stride, padding, seed)
    dx_ours = conv.conv1d_backward_as_conv(dy[0].numpy(), w.numpy(), length, stride, padding)
    l_out = y.shape[-1]
    output_padding = length - ((l_out - 1) * stride - 2 * padding + kernel)  # rows the forward dropped
    if output_padding < 0:
        raise UserError("padding is too large for this input: the transposed convolution would need "
                        "negative output padding.")
    dx_t1 = F.conv_transpose1d(dy, w, stride=stride, padding=padding, output_padding=output_padding)

    g = torch.Generator().manual_seed(seed + 1)
    w2 = torch.randn(c_out, c_in, kernel, kernel, dtype=torch.float64, generator=g)
    x2 = torch.randn(1, c_in, length, length, dtype=torch.float64, generator=g, requires_grad=True)
    y2 = F.conv2d(x2, w2, stride=stride, padding=padding)     # (1, C_out, H_out, W_out)
    dy2 = torch.randn(y2.shape, dtype=torch.float64, generator=g)
    (dx2,) = torch.autograd.grad(y2, x2, dy2)                  # (1, C_in, H, W)
    dx2_t = F.conv_transpose2d(dy2, w2, stride=stride, padding=padding, output_padding=output_padding)
    h_out = y2.shape[-1]
    dilated = torch.zeros(1, c_out, (h_out - 1) * stride + 1, (h_out - 1) * stride + 1, dtype=torch.float64)
    dilated[..., ::stride, ::stride] = dy2                     # stride - 1 zeros between samples
    p = kernel - 1 - padding
    dilated = F.pad(dilated, (p, p + output_padding, p, p + output_padding))
    dx2_d = F.conv2d(dilated, w2.flip(2, 3).transpose(0, 1))   # reversed kernels, channels swapped
    return {
        "length": length, "in_channels": c_in, "out_channels": c_out, "kernel": kernel,
        "stride": stride, "padding": padding, "output_length": l_out, "output_padding": output_padding,
        "max_abs_error_1d_spread_and_convolve_vs_autograd": float(np.abs(dx_ours - dx[0].numpy()).max()),
        "max_abs_error_1d_conv_transpose_vs_autograd": float((dx_t1 - dx).abs().max()),
        "max_abs_error_2d_conv_transpose_vs_autograd": float((dx2_t - dx2).abs().max()),
        "max_abs_error_2d_dilate_pad_conv_vs_autograd": float((dx2_d - dx2).abs().max()),
        "conv_transpose_without_output_padding_shape": list(
            F.conv_transpose2d(dy2, w2, stride=stride, padding=padding).shape),
        "input_shape": list(x2.shape),
    }


def strided_backward_answer(**kwargs) -> dict:
    """coms573.q3.strided_backward: Q3(c) for stride > 1, as a demonstration."""
    d = strided_backward_demo(**kwargs)
    errors = [v for k, v in d.items() if k.startswith("max_abs_error")]
    return answer(
        f"Yes, with a stride the backward pass is still a convolution, a transposed one: spread "
        f"dL/dY with {d['stride'] - 1} zero(s) between samples, pad by K-1-p = {d['kernel'] - 1 - d['padding']} "
        f"(plus {d['output_padding']} at the end for the input rows the forward pass dropped), and "
        "convolve with the reversed, channel-swapped kernels.",
        "(Beyond the question) Is the backward pass of a strided convolution also a convolution?",
        "autograd's dL/dX against our 1-D spread-and-convolve, torch's conv_transpose1d/2d with "
        "output_padding, and an explicit dilate-pad-conv2d",
        {"agrees": bool(max(errors) < 1e-12), "max_abs_error": max(errors)},
        demonstration=d, givens={k: d[k] for k in ("length", "in_channels", "out_channels", "kernel",
                                                   "stride", "padding")})


def answers() -> dict:
    """Every COM S 573 answer, keyed by id."""
    return q1() | q2() | q3()
