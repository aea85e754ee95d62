"""COM S 573 HW5 written questions 1-3 and the architecture of 4(a) (seed 002), answered by computation.

Q1: parameters, multiply-adds and feature memory of a two-convolution block. Q2: the batch-norm
questions of CSCE-421 Q3, word for word (computed by `csce421.bn_answers`). Q3: a 1-D convolution
written as a matrix, Y~ = A X~, its backward pass dL/dX~ = B dL/dY~, and whether that backward pass
is itself a convolution. A, B and the backward kernels are matrices of symbols ("w1^11") built
from index arithmetic (`conv.conv1d_taps`) and checked by substituting random numbers and
comparing with torch.nn.functional.conv1d, autograd and conv_transpose1d. The block's figure in
Q1 did not survive extraction; its layers are read off the worked solution's arithmetic and
stated as an assumption. Q4(a): the plain LeNet the question lists (ReLU, max pooling, no batch
norm, no dropout), its layers, shapes and parameters derived from the text and compared with the
project's own `lenet_plain` model (pipeline/model.py), the run that answers 4(a).
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
                 "solution: a $3 \\times 3$ convolution $128 \\to 256$ with stride 2 (output "
                 "$32 \\times 32$), then a $3 \\times 3$ convolution $256 \\to 512$ with stride 1; every "
                 "convolution pads 1; biases skipped.")
Q2_BETA = (0, -10, 10)  # printed with its minus sign in this homework
# Q3: X is (2 channels, length 4), kernel 3, 2 output channels, no padding, stride 1.
Q3_C_IN, Q3_C_OUT, Q3_KERNEL, Q3_LENGTH = 2, 2, 3, 4
SEED = 0  # the random numbers substituted into the symbolic answers
# Q4(a): "Inputs -> Convolution (6) -> Max Pooling -> Convolution (16) -> Max Pooling -> Reshape to
# vector -> Fully-connected (120) -> Fully-connected (84) -> Outputs (n_classes)", 5x5 kernels, ReLU
# after the convolutions and the first two fully-connected layers, on CIFAR-10.
Q4_INPUT = (3, 32, 32)       # (C, H, W): a CIFAR-10 image
Q4_CLASSES = 10              # CIFAR-10
Q4_KERNEL = 5                # "the kernel size for all the convolutional layers are 5x5"
Q4_POOL = 2                  # window and stride of the max pooling: in the lost figure; LeNet-5's 2x2
Q4_CONV_CHANNELS = (6, 16)
Q4_FC_UNITS = (120, 84)
Q4_VARIANT = "lenet_plain"   # our model of 4(a): ReLU and max pooling, no batch norm, no dropout
Q4_ASSUMPTION = ("The architecture figure is lost; the text gives the layer sequence, the $5 \\times 5$ "
                 "kernels, max pooling and ReLU. We take CIFAR-10's $3 \\times 32 \\times 32$ images, "
                 "convolutions without padding and $2 \\times 2$ max pooling with stride 2, as in LeNet-5 "
                 "(LeCun et al. 1998, the paper the question cites).")


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
    question = (f"Given the convolutional block with input feature maps $X \\in \\mathbb{{R}}^{{"
                f"{conv.tex_dims(size, size, in_channels)}}}$, all convolutional layers zero-padding "
                f"{padding} on each side of $H$ and $W$: ")
    givens = {"input": f["shapes"][0], "padding": padding,
              "layers": [{"kernel": k, "out_channels": c, "stride": s} for k, c, s in layers]}
    check_p = "`torch.nn.Conv2d` layers (`bias=False`): the sum of their parameters' `numel()`"
    check_m = ("`torch.utils.flop_counter.FlopCounterMode` on the layers (meta device), which counts "
               "2 flops per multiply-add")
    check_mem = "element counts of the tensors the torch layers produce (meta device)"
    size_steps = []
    for (h, w, c), (k, c_out, s), (h2, w2, _) in zip(f["shapes"], layers, f["shapes"][1:]):
        exact = (h + 2 * padding - k) % s == 0
        size_steps.append(
            f"$\\lfloor({h} + 2\\cdot{padding} - {k})/{s}\\rfloor + 1 = {h2}$"
            + ("" if exact else f" (${h + 2 * padding - k}/{s}$ is not whole: the last step is dropped)")
            + f", so ${conv.tex_dims(h, w, c)} \\to {conv.tex_dims(h2, w2, c_out)}$.")
    return {
        "coms573.q1.output_shapes": answer(
            f["shapes"], question + "what are the feature shapes $[H, W, C]$ after each stage?",
            "output shapes of the torch layers", agreement(f["shapes"], t["shapes"]),
            givens=givens, assumption=Q1_ASSUMPTION, steps=size_steps),
        "coms573.q1.params": answer(
            total_params, question + "(a) What is the total number of parameters in the block "
            "(you can skip bias terms)?", check_p, agreement(total_params, sum(t["params"])),
            givens=givens, assumption=Q1_ASSUMPTION, unit="parameters",
            method="Sum of $K \\times K \\times C_{in} \\times C_{out}$ over the convolutions.",
            steps=[f"${k}\\cdot{k}\\cdot{c}\\cdot{c_out} = {conv.tex_int(p)}$" for (k, c_out, _), (_, _, c), p
                   in zip(layers, f["shapes"], f["params"])]
            + [f"Total: ${' + '.join(conv.tex_int(p) for p in f['params'])} = {conv.tex_int(total_params)}$."]),
        "coms573.q1.mult_adds": answer(
            total_ma, question + "(b) What is the total number of multi-add operations in the block?",
            check_m, agreement(total_ma, sum(t["mult_adds"])), givens=givens,
            assumption=Q1_ASSUMPTION, unit="multiply-adds",
            method="Each output value is one $K \\times K \\times C_{in}$ dot product, so a layer does "
                   "$K^2 C_{in} C_{out} H_{out} W_{out}$ multiply-adds.",
            steps=size_steps + [f"${k}\\cdot{k}\\cdot{c}\\cdot{c_out}\\cdot{h2}\\cdot{w2} = {conv.tex_int(m)}$"
                                for (k, c_out, _), (_, _, c), (h2, w2, _), m
                                in zip(layers, f["shapes"], f["shapes"][1:], f["mult_adds"])]
            + [f"Total: ${' + '.join(conv.tex_int(m) for m in f['mult_adds'])} = {conv.tex_int(total_ma)}$."]),
        "coms573.q1.memory_change_percent": answer(
            change, question + "(c) What is the memory requirement change to store the input and "
            "output features of this block (use percentage)?", check_mem,
            agreement(change, 100.0 * (t["numel"][-1] - t["numel"][0]) / t["numel"][0]),
            givens=givens, assumption=Q1_ASSUMPTION, unit="%",
            method="The change in the number of stored elements as a percentage of the input's: "
                   "$100\\,(n_{out} - n_{in})/n_{in}$.",
            demonstration={"elements_by_stage": f["numel"], "stage_change_percent": stage_change,
                           "bytes_float32_by_stage": [4 * n for n in f["numel"]]},
            steps=[f"Stage {n}: ${conv.tex_int(a)} \\to {conv.tex_int(b)}$ elements ({'+' if p >= 0 else ''}{fmt(p)}%)."
                   for n, (a, b, p) in enumerate(zip(f["numel"], f["numel"][1:], stage_change), start=1)]
            + [f"Input to output: ${conv.tex_int(n_in)} \\to {conv.tex_int(n_out)}$ elements: {fmt(change)}% change."]),
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
    def tex_list(labels):  # a flattened vector as the homework writes it, a transposed row
        return "[" + ", ".join(labels) + r"]^{\top}"
    g_tex = tex_list([rf"\partial L/\partial {_tex(s)}" for s in y_labels])
    givens = {"X": [x_labels[c * length:(c + 1) * length] for c in range(c_in)], "kernel": kernel,
              "out_channels": c_out, "padding": 0, "stride": 1}
    seed_note = f"random float64 weights, input and upstream gradient (`torch.Generator` seed {SEED})"
    dx_, dy_ = r"$\partial L/\partial X$", r"$\partial L/\partial Y$"  # the unflattened gradients
    l_back = conv.conv_output_size(l_out, kernel, 1, pad_b)
    return {
        "coms573.q3.A": answer(
            A, f"Write the convolution ({c_in} input channels of length {length}, kernel {kernel}, "
            f"{c_out} output channels, no padding) as a fully connected layer $\\tilde{{Y}} = A\\tilde{{X}}$ "
            f"with $\\tilde{{X}} = {tex_list(map(_tex, x_labels))}$ and "
            f"$\\tilde{{Y}} = {tex_list(map(_tex, y_labels))}$.",
            f"$A$ with the symbols replaced by {seed_note}, times $\\tilde{{X}}$, against "
            "`torch.nn.functional.conv1d(X, W)` flattened row by row, and against autograd's Jacobian",
            agreement(A_num @ x.numpy().ravel(), y.numpy().ravel())
            | {"jacobian_max_abs_error": float(np.abs(
                torch.autograd.functional.jacobian(lambda v: F.conv1d(v.view(1, c_in, length), w).ravel(),
                                                   x.ravel()).numpy() - A_num).max())},
            givens=givens, unit=f"${len(A)} \\times {len(A[0])}$ matrix",
            method=r"Row $(j, t)$ of $A$ holds the kernel $W^{ij}$ at columns $(i, t), \dots, (i, t+K-1)$: "
                   r"output $t$ of channel $j$ reads $K$ neighbouring inputs of every input channel $i$.",
            demonstration={"Y_flat": y_labels, "X_flat": x_labels},
            steps=["$" + _tex(lab) + " = " + " + ".join(f"{_tex(s)}\\,{_tex(x_labels[c])}"
                                                      for c, s in enumerate(row) if s != "0") + "$"
                   for lab, row in zip(y_labels, A)]),
        "coms573.q3.B": answer(
            B, r"Write the back-propagation as $\partial L/\partial \tilde{X} = B\,\partial L/\partial \tilde{Y}$ "
            f"with $\\partial L/\\partial \\tilde{{Y}} = {g_tex}$; how are $A$ and $B$ related?",
            f"$B$ with the symbols replaced by the same {seed_note}, times $\\partial L/\\partial \\tilde{{Y}}$, "
            f"against autograd's $\\partial L/\\partial \\tilde{{X}}$",
            agreement(B_num @ dy.numpy().ravel(), dx.numpy().ravel()), givens=givens,
            method=r"$\tilde{Y} = A\tilde{X}$ is linear, so $\partial \tilde{Y}/\partial \tilde{X} = A$ and the "
                   r"chain rule gives $\partial L/\partial \tilde{X} = A^{\top}\,\partial L/\partial \tilde{Y}$.",
            unit=f"${len(B)} \\times {len(B[0])}$ matrix"),
        "coms573.q3.relation": answer(
            "B = A^T", "Explain the relationship between $A$ and $B$.",
            "$B$ built as the transpose of $A$ agrees with autograd (see `coms573.q3.B`)",
            agreement(B_num @ dy.numpy().ravel(), dx.numpy().ravel()), latex=r"B = A^{\top}"),
        "coms573.q3.is_convolution": answer(
            bool(is_conv), r"Does $\partial L/\partial \tilde{X} = B\,\partial L/\partial \tilde{Y}$ also "
            r"correspond to a convolution on $\partial L/\partial \tilde{Y}$ giving $\partial L/\partial \tilde{X}$?",
            f"$B$ compared symbol by symbol with the matrix of a stride-1 convolution of {dy_} with the "
            f"kernels below and padding {pad_b}; numerically, that convolution "
            "(`torch.nn.functional.conv1d`) against autograd",
            agreement(dx_kernels.numpy(), dx.numpy()) | {"matrix_equal": bool(is_conv)},
            method=r"Every row of $B = A^{\top}$ applies the same reversed taps, shifted by one per "
                   r"position: a convolution (a 'full' one, padded by $K-1$) of $\partial L/\partial Y$ "
                   "with each kernel reversed and the roles of input and output channels swapped."),
        "coms573.q3.backward_kernels": answer(
            kb, f"If yes, write down the kernels for this convolution (one per row of {dx_}, "
            f"each spanning the rows of {dy_}).",
            f"`torch.nn.functional.conv1d` of {dy_} with these kernels and `padding={pad_b}`, with the "
            f"{seed_note}, against autograd's {dx_}, and against `torch.nn.functional.conv_transpose1d` "
            f"of {dy_} with $W$",
            agreement(dx_kernels.numpy(), dx.numpy())
            | {"conv_transpose1d_max_abs_error": float((dx_transpose - dx).abs().max())},
            givens=givens, method=r"Kernel for $\partial L/\partial x_i$: row $j$ is $W^{ij}$ reversed, "
                                  rf"$[w_K^{{ij}}, \dots, w_1^{{ij}}]$ with $K = {kernel}$.",
            steps=[rf"$\partial L/\partial x_{{{i + 1}}}$: " + "; ".join(
                "$[" + ", ".join(map(_tex, r)) + rf"]$ scans $\partial L/\partial y_{{{j + 1}}}$"
                for j, r in enumerate(kb[i])) for i in range(c_in)]),
        "coms573.q3.backward_padding": answer(
            pad_b, "Zero padding (each side) of that convolution.",
            "the output length it gives, and the `conv1d` check above",
            agreement(l_back, length) | {"output_length": l_back},
            method="$K - 1$ on each side (a 'full' convolution), so every input position is reached.",
            steps=[f"$({l_out} - {kernel} + 2\\cdot{pad_b})/1 + 1 = {l_back}$, the input length."]),
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
        f"$\\partial L/\\partial Y$ with {d['stride'] - 1} zero(s) between samples, pad by "
        f"$K - 1 - p = {d['kernel'] - 1 - d['padding']}$ (plus {d['output_padding']} at the end for the "
        "input rows the forward pass dropped), and convolve with the reversed, channel-swapped kernels.",
        "(Beyond the question) Is the backward pass of a strided convolution also a convolution?",
        "autograd's $\\partial L/\\partial X$ against our 1-D spread-and-convolve, torch's "
        "`conv_transpose1d` and `conv_transpose2d` with `output_padding`, and an explicit "
        "dilate-pad-`conv2d`",
        {"agrees": bool(max(errors) < 1e-12), "max_abs_error": max(errors)},
        demonstration=d, givens={k: d[k] for k in ("length", "in_channels", "out_channels", "kernel",
                                                   "stride", "padding")})


# --- Q4(a): the plain LeNet ----------------------------------------------------------------------

def lenet_layers(input_shape=Q4_INPUT, n_classes: int = Q4_CLASSES, kernel: int = Q4_KERNEL,
                 pool: int = Q4_POOL, conv_channels=Q4_CONV_CHANNELS, fc_units=Q4_FC_UNITS) -> list[dict]:
    """The layers of 4(a) in order, by arithmetic alone: {"layer", "kind", "shape" (C, H, W) or
    (features,), "params", "step"} per layer; the step says how shape and count follow."""
    c, h, w = (conv.require_int(n, v, 1) for n, v in zip(("channels", "height", "width"), input_shape))
    rows = []

    def relu():
        rows.append({"layer": "ReLU", "kind": "ReLU", "shape": rows[-1]["shape"], "params": 0, "step": None})
    for c_out in conv_channels:
        h2, w2, c_out = conv.conv2d_output_shape(h, w, c_out, kernel)
        n = conv.conv_params(c, c_out, kernel)
        rows.append({"layer": f"Conv2d({c}, {c_out}, {kernel})", "kind": "Conv2d", "shape": [c_out, h2, w2],
                     "params": n, "step": f"Convolution ${kernel} \\times {kernel}$, ${c} \\to {c_out}$ channels, "
                     f"no padding: ${h} - {kernel} + 1 = {h2}$, so ${conv.tex_dims(c_out, h2, w2)}$; "
                     f"$({kernel}\\cdot{kernel}\\cdot{c} + 1)\\cdot{c_out} = {conv.tex_int(n)}$ parameters "
                     f"(one bias per filter). ReLU keeps the shape."})
        relu()
        h, w, c = conv.pool2d_output_shape(h2, w2, c_out, pool)
        rows.append({"layer": f"MaxPool2d({pool}, {pool})", "kind": "MaxPool2d", "shape": [c, h, w], "params": 0,
                     "step": f"Max pooling ${pool} \\times {pool}$, stride {pool}: "
                     f"$\\lfloor({h2} - {pool})/{pool}\\rfloor + 1 = {h}$, so ${conv.tex_dims(c, h, w)}$; "
                     "no parameters."})
    features = c * h * w
    rows.append({"layer": "Flatten", "kind": "Flatten", "shape": [features], "params": 0,
                 "step": f"Reshape to a vector of ${c}\\cdot{h}\\cdot{w} = {features}$ features."})
    outputs = (*fc_units, conv.require_int("n_classes", n_classes, 1))
    for i, n_out in enumerate(outputs):
        hidden = i < len(fc_units)  # ReLU after the hidden layers, none after the outputs
        n = conv.linear_params(features, n_out)
        rows.append({"layer": f"Linear({features}, {n_out})", "kind": "Linear", "shape": [n_out], "params": n,
                     "step": f"Fully connected ${features} \\to {n_out}$: "
                     f"$({features} + 1)\\cdot{n_out} = {conv.tex_int(n)}$ parameters"
                     + (", then ReLU." if hidden else " (the outputs, no ReLU).")})
        if hidden:
            relu()
        features = n_out
    return rows


def traced_layers(model: torch.nn.Module, input_shape) -> list[dict]:
    """What `model` runs on one zero input, in order: every leaf module it calls (nn.Identity, a
    switched-off batch norm or dropout, left out), with its output shape (batch dimension dropped)
    and its own parameter count. Forward hooks, so a module called twice is listed twice."""
    calls, handles = [], []
    for m in model.modules():
        if not list(m.children()) and not isinstance(m, torch.nn.Identity):
            handles.append(m.register_forward_hook(lambda mod, _, out: calls.append(
                {"kind": type(mod).__name__, "shape": list(out.shape[1:]),
                 "params": sum(p.numel() for p in mod.parameters(recurse=False))})))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return calls


def q4a(input_shape=Q4_INPUT, n_classes: int = Q4_CLASSES, kernel: int = Q4_KERNEL, pool: int = Q4_POOL,
        conv_channels=Q4_CONV_CHANNELS, fc_units=Q4_FC_UNITS, variant: str = Q4_VARIANT) -> dict:
    """4(a): the layer sequence and parameter count of the LeNet the question lists, checked against
    the project's model of that variant (stock torch.nn layers, fast=False, so every layer is a
    module call the hooks see)."""
    from pipeline.model import build_model  # the training code's model; imported only here

    rows = lenet_layers(input_shape, n_classes, kernel, pool, conv_channels, fc_units)
    total = sum(r["params"] for r in rows)
    model = build_model(variant, n_classes=n_classes, fast=False)
    traced = traced_layers(model, input_shape)
    # the model flattens with torch.flatten (a function, not a module): compare the module calls
    ours = [{k: r[k] for k in ("kind", "shape", "params")} for r in rows if r["kind"] != "Flatten"]
    model_total = sum(p.numel() for p in model.parameters())
    steps = ([f"Input: a CIFAR-10 image, ${conv.tex_dims(*input_shape)}$ ($C \\times H \\times W$)."]
             + [r["step"] for r in rows if r["step"]]
             + [f"Total: ${' + '.join(conv.tex_int(r['params']) for r in rows if r['params'])} = "
                f"{conv.tex_int(total)}$ parameters."])
    return {"coms573.q4.a.architecture": answer(
        {"layers": [r["layer"] for r in rows], "output_shapes": [r["shape"] for r in rows],
         "params_by_layer": [r["params"] for r in rows], "total_params": total},
        "Complete the class `LeNet()` for CIFAR-10 with `torch.nn` layers only: convolution (6 output "
        "channels), max pooling, convolution (16 output channels), max pooling, reshape to a vector, "
        f"fully connected (120 units), fully connected (84 units), outputs ({n_classes} classes, `n_classes`); "
        f"${kernel} \\times {kernel}$ kernels, ReLU after the convolutions and the first two fully "
        "connected layers. What are its layers, and how many parameters does it have?",
        f"the project's `{variant}` model (`pipeline.model.build_model('{variant}', fast=False)`) run on a "
        f"zero input of shape `(1, {', '.join(map(str, input_shape))})`: forward hooks record every module "
        "it calls (type, output shape, own parameters; it flattens with `torch.flatten`, not a module), "
        "compared layer by layer, and its total parameter count",
        {"agrees": ours == traced and total == model_total, "variant": variant,
         "model_params": model_total, "model_layers": traced},
        givens={"input_CHW": list(input_shape), "n_classes": n_classes, "kernel": kernel, "pool": pool,
                "conv_channels": list(conv_channels), "fc_units": list(fc_units)},
        assumption=Q4_ASSUMPTION, steps=steps,
        method="Follow the shape through the layers: a convolution without padding takes $K - 1$ from "
               f"each spatial size, a ${pool} \\times {pool}$ pooling with stride {pool} divides it by {pool} "
               "(rounding down); a convolution has "
               "$(K^2 C_{in} + 1)\\,C_{out}$ parameters and a fully connected layer $(n_{in} + 1)\\,n_{out}$.")}


def answers() -> dict:
    """Every COM S 573 answer, keyed by id."""
    return q1() | q2() | q3() | q4a()
