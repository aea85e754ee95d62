"""CSCE-421 HW3 written questions 1-3 (seed 000), answered by computation.

Q1: output volume and parameter count of one convolutional layer. Q2: the projection shortcut and
the parameter count of a down-sampling residual block. Q3: batch-norm arithmetic on a 3-unit,
4-example batch, and how batch norm differs between training and testing (with demonstrations on
a real torch.nn.BatchNorm1d). Each `q*` function takes the question's givens as arguments (the
homework's values are the defaults) and returns {answer id: answer} as answers.json holds them;
each answer carries the independent torch computation that checks it. The residual block's figure
did not survive extraction: its layers are taken from the walkthrough's reading of it, stated as
an assumption in the answer.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from pipeline.answers import batchnorm as bn
from pipeline.answers.conv import (conv2d_output_shape, conv_output_size, conv_params, require_int, tex_dims,
                                   tex_int, tex_matrix)
from pipeline.answers.record import agreement, answer, fmt
from pipeline.errors import UserError

# Q3's batch, as the question prints it: rows are the 3 units, columns the m = 4 examples.
Q3_Z = ((12, 14, 14, 12), (0, 10, 10, 0), (-5, 5, 5, -5))
Q3_GAMMA = (1, 1, 1)
# The extracted question text reads beta = (0, 10, 10); its own worked answer (row 2 = -11 -9 -9 -11)
# and COM S 573 2(b), the same question, give (0, -10, 10): the minus sign was lost in extraction.
Q3_BETA = (0, -10, 10)

# Q2's residual block (figure lost): main path of (kernel, out_channels, stride) per conv, from the
# walkthrough: 3x3 conv to 256 maps with stride 2 (halves H and W), then 3x3 conv 256 -> 256.
Q2_IN_CHANNELS = 128
Q2_MAIN_PATH = ((3, 256, 2), (3, 256, 1))
Q2_ASSUMPTION = ("The block's figure was lost in extraction. Following the worked walkthrough: the "
                 "input has 128 feature maps; the main path is a $3 \\times 3$ convolution to 256 maps "
                 "with stride 2, then a $3 \\times 3$ convolution $256 \\to 256$ with stride 1 ('same' "
                 "padding, no bias).")


def _torch_conv_facts(c_in: int, c_out: int, kernel: int, stride: int, padding: int, h: int, w: int,
                      bias: bool = True) -> tuple[int, list[int]]:
    """(parameter count, [H, W, C] output) of a real torch.nn.Conv2d, the independent check."""
    layer = torch.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)
    with torch.no_grad():
        y = layer(torch.zeros(1, c_in, h, w))  # (1, C_out, H_out, W_out)
    return sum(p.numel() for p in layer.parameters()), [y.shape[2], y.shape[3], y.shape[1]]


def q1(h: int = 15, w: int = 15, c: int = 3, filters: int = 28, kernel: int = 3,
       filter_depth: int = 3, padding: int = 1, stride: int = 1) -> dict:
    """Q1: a (15 x 15 x 3) image through 28 filters of 3 x 3 x 3, padding 1, stride 1."""
    if require_int("filter_depth", filter_depth, 1) != require_int("input channels", c, 1):
        raise UserError(f"a filter must span the input's full depth: filter depth {filter_depth} "
                        f"differs from the input's {c} channels.")
    out = list(conv2d_output_shape(h, w, filters, kernel, stride, padding))
    params = conv_params(c, filters, kernel, bias=True)
    per_filter = kernel * kernel * filter_depth
    torch_params, torch_shape = _torch_conv_facts(c, filters, kernel, stride, padding, h, w)
    question = (f"A single ${tex_dims(h, w, c)}$ image is passed through a convolutional layer with "
                f"{filters} filters, each of size ${tex_dims(kernel, kernel, filter_depth)}$, padding "
                f"{padding}, stride {stride}.")
    givens = {"input": [h, w, c], "filters": filters, "kernel": [kernel, kernel, filter_depth],
              "padding": padding, "stride": stride}
    check = (f"`torch.nn.Conv2d({c}, {filters}, {kernel}, stride={stride}, padding={padding})` applied "
             f"to a zero tensor of shape `(1, {c}, {h}, {w})`: its output shape, and the sum of its "
             "parameters' `numel()`")
    return {
        "csce421.q1.output_shape": answer(
            out, question + " What is the size of the output feature map volume?", check,
            agreement(out, torch_shape), givens=givens, unit=f"${tex_dims('H', 'W', 'C')}$",
            method=r"$H_{out} = (H + 2P - K)/S + 1$ per spatial axis; the depth is the number of filters.",
            steps=[
                f"Padded input: ${h} + 2\\cdot{padding} = {h + 2 * padding}$.",
                f"$H_{{out}} = ({h} + 2\\cdot{padding} - {kernel})/{stride} + 1 = {out[0]}$, "
                f"$W_{{out}} = ({w} + 2\\cdot{padding} - {kernel})/{stride} + 1 = {out[1]}$.",
                f"Each filter yields one map, so the depth is {filters}.",
                f"Output volume: ${out[0]} \\times {out[1]} \\times {out[2]}$."]),
        "csce421.q1.params": answer(
            params, question + " What is the number of parameters in this layer (including bias)?",
            check, agreement(params, torch_params), givens=givens, unit="parameters",
            method="The weights of one filter plus its one bias, times the number of filters.",
            steps=[f"Weights per filter: ${kernel}\\cdot{kernel}\\cdot{filter_depth} = {per_filter}$.",
                   f"Plus one bias: ${per_filter} + 1 = {per_filter + 1}$.",
                   f"Times {filters} filters: ${per_filter + 1}\\cdot{filters} = {params}$."]),
    }


def shortcut_for(in_channels: int, main_path) -> dict:
    """The projection W_s that makes x addable to F(x): a 1x1 convolution (changes depth, mixes
    no neighbours) to the main path's channel count, with the main path's total stride."""
    for n, (k, c_out, s) in enumerate(main_path):
        require_int(f"main path conv {n + 1} kernel", k, 1)
        require_int(f"main path conv {n + 1} out_channels", c_out, 1)
        require_int(f"main path conv {n + 1} stride", s, 1)
        if k % 2 == 0:
            raise UserError(f"main path conv {n + 1} has an even kernel {k}, which no symmetric "
                            f"padding keeps 'same'-sized; the question assumes such padding.")
    stride = math.prod(s for _, _, s in main_path)
    return {"kernel_size": 1, "out_channels": main_path[-1][1], "stride": stride}


class _ResidualBlock(torch.nn.Module):
    """The block as torch layers, to count its parameters and run the add (the Q2 check)."""

    def __init__(self, in_channels, main_path, shortcut):
        super().__init__()
        layers, c = [], in_channels
        for k, c_out, s in main_path:
            layers.append(torch.nn.Conv2d(c, c_out, k, stride=s, padding=(k - 1) // 2, bias=False))
            c = c_out
        self.main = torch.nn.Sequential(*layers)  # ReLUs carry no parameters; omitted
        self.shortcut = torch.nn.Conv2d(in_channels, shortcut["out_channels"], shortcut["kernel_size"],
                                        stride=shortcut["stride"], bias=False)

    def forward(self, x):  # (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)
        return self.main(x) + self.shortcut(x)


def q2(in_channels: int = Q2_IN_CHANNELS, main_path=Q2_MAIN_PATH, size: int = 32) -> dict:
    """Q2: the shortcut a down-sampling residual block needs, and its trainable parameters
    (no biases). `size` is only used to run the block once: parameter counts do not depend on it."""
    in_channels = require_int("in_channels", in_channels, 1)
    sc = shortcut_for(in_channels, main_path)
    by_layer, c = {}, in_channels
    for n, (k, c_out, s) in enumerate(main_path, start=1):
        by_layer[f"main_conv{n}"] = conv_params(c, c_out, k, bias=False)
        c = c_out
    by_layer["shortcut_conv1x1"] = conv_params(in_channels, sc["out_channels"], 1, bias=False)
    total = sum(by_layer.values())
    # shapes on both paths, to show the add is well defined
    main_size = size
    for k, _, s in main_path:
        main_size = conv_output_size(main_size, k, s, (k - 1) // 2)
    skip_size = conv_output_size(size, 1, sc["stride"], 0)
    if main_size != skip_size:
        raise UserError(f"the paths disagree for input size {size}: main {main_size}, shortcut {skip_size}.")
    block = _ResidualBlock(in_channels, main_path, sc)
    with torch.no_grad():
        y = block(torch.zeros(1, in_channels, size, size))
    torch_by_layer = {f"main_conv{n}": sum(p.numel() for p in m.parameters())
                      for n, m in enumerate(block.main, start=1)}
    torch_by_layer["shortcut_conv1x1"] = sum(p.numel() for p in block.shortcut.parameters())
    torch_total = sum(p.numel() for p in block.parameters())
    question = ("Given the residual block (padding of appropriate size, batch norm ignored): ")
    givens = {"in_channels": in_channels, "main_path": [{"kernel": k, "out_channels": c_out, "stride": s}
                                                         for k, c_out, s in main_path]}
    shapes = {"input": [size, size, in_channels], "main_path_out": [main_size, main_size, c],
              "shortcut_out": [skip_size, skip_size, sc["out_channels"]]}
    check = ("the block built from `torch.nn.Conv2d` layers (`bias=False`) with this shortcut: it runs "
             f"on an input of shape `(1, {in_channels}, {size}, {size})` (so the add is well defined) and "
             "its parameters are counted with `numel()`")
    layer_steps, c = [], in_channels
    for n, (k, c_out, s) in enumerate(main_path, start=1):
        layer_steps.append(f"Main conv {n} (${k} \\times {k}$, ${c} \\to {c_out}$, stride {s}): "
                           f"${k}\\cdot{k}\\cdot{c}\\cdot{c_out} = {tex_int(by_layer[f'main_conv{n}'])}$.")
        c = c_out
    layer_steps.append(f"Shortcut ($1 \\times 1$, ${in_channels} \\to {sc['out_channels']}$, "
                       f"stride {sc['stride']}): $1\\cdot1\\cdot{in_channels}\\cdot{sc['out_channels']} = "
                       f"{tex_int(by_layer['shortcut_conv1x1'])}$.")
    return {
        "csce421.q2.shortcut": answer(
            sc, question + "what projection shortcut operations are required on the skip connection?",
            check, agreement(list(y.shape[1:]), [sc["out_channels"], main_size, main_size])
            | {"output_shape_NCHW": list(y.shape)},
            givens=givens, assumption=Q2_ASSUMPTION, demonstration=shapes,
            method="Match the depth of $F(x)$ with a $1 \\times 1$ convolution and its spatial size "
                   "with the main path's total stride: $y = F(x) + W_s x$.",
            steps=[f"Main path output: ${tex_dims(main_size, main_size, c)}$ from "
                   f"${tex_dims(size, size, in_channels)}$ (total stride {sc['stride']}).",
                   f"Depth ${in_channels} \\to {sc['out_channels']}$: {sc['out_channels']} filters of "
                   "size $1 \\times 1$.",
                   f"Spatial size ${size} \\to {skip_size}$: stride {sc['stride']} on that $1 \\times 1$ "
                   f"convolution, $\\lfloor({size} - 1)/{sc['stride']}\\rfloor + 1 = {skip_size}$.",
                   "Both paths now give the same shape, so the element-wise add is defined."]),
        "csce421.q2.params": answer(
            total, question + "what is the total number of trainable parameters in the block "
            "(ignore biases, include the skip connection)?", check, agreement(total, torch_total),
            givens=givens, assumption=Q2_ASSUMPTION, unit="parameters",
            method="Sum over the three convolutions of $K \\times K \\times C_{in} \\times C_{out}$ (no "
                   "bias; the stride does not matter).",
            steps=layer_steps + [f"Total: ${' + '.join(tex_int(v) for v in by_layer.values())} = {tex_int(total)}$."]),
        "csce421.q2.params_by_layer": answer(
            by_layer, "Trainable parameters of each convolution in the residual block (no biases).",
            check, {"value": torch_by_layer, "agrees": torch_by_layer == by_layer},
            givens=givens, assumption=Q2_ASSUMPTION, unit="parameters"),
    }


# --- Q3 (also COM S 573 Q2, word for word) ---------------------------------------------------

def bn_answers(prefix: str, z=Q3_Z, gamma=Q3_GAMMA, beta=Q3_BETA, eps: float = 0.0) -> dict:
    """The batch-norm arithmetic questions. z is (D units, m examples) as printed in the question.

    Ids: <prefix>.mu, .var, .z_hat, .z_tilde, .train_vs_test, .test_batch_size.
    """
    Z = np.asarray(z, dtype=np.float64)
    if Z.ndim != 2:
        raise UserError(f"the batch must be a (units x examples) matrix, got shape {Z.shape}.")
    d, m = Z.shape
    if m < 2:
        raise UserError(f"the batch has {m} example; batch norm needs at least 2 to estimate a variance.")
    x = Z.T  # (m, D): examples in rows, as batchnorm_forward and torch take them
    mu, var = bn.batch_stats(x)
    z_hat, _ = bn.batchnorm_forward(x, 1.0, 0.0, eps)
    z_tilde, _ = bn.batchnorm_forward(x, gamma, beta, eps)
    gamma_a, beta_a = np.asarray(gamma, float), np.asarray(beta, float)

    # the independent check: the real layer in training mode
    layer = torch.nn.BatchNorm1d(d, eps=max(eps, bn.TORCH_EPS), dtype=torch.float64).train()
    with torch.no_grad():
        torch_hat = layer(torch.as_tensor(x)).numpy().T
        layer.weight.copy_(torch.as_tensor(gamma_a))
        layer.bias.copy_(torch.as_tensor(beta_a))
        torch_tilde = layer(torch.as_tensor(x)).numpy().T
    torch_mu, torch_var = x.mean(axis=0), torch.var(torch.as_tensor(x), dim=0, unbiased=False).numpy()
    tol = 1e-9
    check = (f"`torch.nn.BatchNorm1d({d}, eps={max(eps, bn.TORCH_EPS):g})` in training mode on the "
             f"batch as a `({m}, {d})` tensor; torch requires $\\epsilon > 0$ in training, so the "
             f"results agree to within $10^{{{round(math.log10(tol))}}}$")
    question = (f"A batch-norm layer receives $m = {m}$ examples from a fully connected layer with {d} "
                f"units, the ${tex_dims(d, m)}$ matrix $Z = {tex_matrix(Z)}$ (one column per example); "
                f"$\\epsilon = {eps:g}$.")
    givens = {"Z": Z, "m": m, "eps": eps}
    unit_steps = [f"Unit {u + 1}: $\\mu = {fmt(mu[u])}$, $\\sigma^2 = {fmt(var[u])}$, "
                  f"$\\sigma = {fmt(math.sqrt(var[u]))}$, "
                  f"$\\hat z = ({fmt(Z[u])} - {fmt(mu[u])})/{fmt(math.sqrt(var[u]))} = {fmt(z_hat.T[u])}$"
                  for u in range(d)]

    demo = bn.train_vs_eval_demo(x, np.ones(d), np.zeros(d))
    rs = bn.running_stats_demo(pop_mean=mu, pop_std=np.sqrt(var), batch_size=m)
    one = bn.batch_size_one_demo(tuple(x[0]), tuple(x[1]), tuple(beta_a))
    sizes = bn.eval_batch_size_demo(d)
    r1 = demo["after_one_step"]
    train_vs_test = (
        "Training: each unit is normalised with the mean and variance of the current mini-batch "
        "(so an example's output depends on the other examples in its batch), $\\gamma$ and $\\beta$ "
        "are learned by back-propagation, and a running average of the batch means and (unbiased) "
        f"variances is kept: $r \\leftarrow (1 - {demo['momentum']})\\,r + {demo['momentum']}\\,r_B$ for "
        "each running statistic $r$ and its value $r_B$ on the batch. "
        "Testing: no statistics are computed from the test data; the stored running mean and "
        "variance and the learned $\\gamma$, $\\beta$ are used, so the layer is a fixed per-unit affine "
        "map and each example is normalised on its own. Demonstrated on this batch with "
        f"`torch.nn.BatchNorm1d`: after one training step the running mean is {fmt(r1['running_mean'], 4)} "
        f"and eval outputs differ from train outputs by up to "
        f"{demo['max_abs_train_minus_eval_after_one_step']:.3g}; after {demo['passes']} steps the "
        f"running variance reaches the unbiased {fmt(demo['batch_var_unbiased'], 4)}, not "
        f"{fmt(demo['batch_var_biased'], 4)}, so the eval output is {demo['eval_over_train_ratio']:.4f} "
        "times the train output ($\\sqrt{(m-1)/m}$). In training mode a batch of one cannot be "
        f"normalised: torch raises `{one['torch_batchnorm1d_error']}`, and the formula gives "
        f"$\\hat{{z}} = 0$, an output of $\\beta$ for every input, and the gradient {fmt(one['grad_wrt_input'])}.")
    test_batch_size = (
        "It does not affect the results (in eval mode): the statistics are fixed numbers learned in "
        "training, so each test example's output is the same whether it is evaluated alone or in a "
        "batch of any size. Demonstrated: largest difference between evaluating "
        f"{sizes['test_examples']} test examples in batches of 1, 2, 8 or all at once: "
        f"{max(sizes['eval_max_abs_difference_vs_full_batch'].values()):g}. Had the layer been left "
        f"in training mode, batch sizes 2 / 8 / {sizes['test_examples']} would change outputs by up to "
        + " / ".join(f"{v:.3g}" for v in sizes["train_mode_max_abs_difference_vs_eval"].values()) + ".")
    return {
        f"{prefix}.mu": answer(mu, question + " Per-unit batch mean.", check,
                               agreement(mu, torch_mu, tol), givens=givens,
                               method=r"$\mu = \frac{1}{m}\sum_i z_i$, per unit (row)."),
        f"{prefix}.var": answer(var, question + " Per-unit batch variance (dividing by $m$).", check,
                                agreement(var, torch_var, tol), givens=givens,
                                method=r"$\sigma^2 = \frac{1}{m}\sum_i (z_i - \mu)^2$, per unit."),
        f"{prefix}.z_hat": answer(
            z_hat.T, question + f" What are the $\\hat{{z}}_i$? Express the answer as a ${tex_dims(d, m)}$ matrix.",
            check, agreement(z_hat.T, torch_hat, tol), givens=givens,
            method=r"$\hat z_i = (z_i - \mu)/\sqrt{\sigma^2 + \epsilon}$ for each unit separately.",
            steps=unit_steps),
        f"{prefix}.z_tilde": answer(
            z_tilde.T, question + f" With $\\gamma = {fmt(gamma_a)}$ and $\\beta = {fmt(beta_a)}$, what "
            f"are the $\\tilde{{z}}_i$? Express the answer as a ${tex_dims(d, m)}$ matrix.", check,
            agreement(z_tilde.T, torch_tilde, tol), givens=givens | {"gamma": gamma_a, "beta": beta_a},
            method=r"$\tilde z_i = \gamma \hat z_i + \beta$, with one $\gamma$ and one $\beta$ per unit (row).",
            steps=[f"Row {u + 1}: ${fmt(gamma_a[u])}\\cdot{fmt(z_hat.T[u])} + ({fmt(beta_a[u])}) "
                   f"= {fmt(z_tilde.T[u])}$" for u in range(d)]),
        f"{prefix}.train_vs_test": answer(
            train_vs_test, "Describe the differences of computations required for batch "
            "normalization during training and testing.",
            "`torch.nn.BatchNorm1d` run in train and eval mode on this batch; the running-statistics "
            "rule re-implemented and compared with torch step by step",
            {"agrees": bool(rs["rule_matches_torch_max_abs"] < 1e-9 and one["torch_batchnorm1d_error"]),
             "rule_matches_torch_max_abs": rs["rule_matches_torch_max_abs"]},
            demonstration={"train_vs_eval": demo, "running_stats": rs, "batch_size_one": one}),
        f"{prefix}.test_batch_size": answer(
            test_batch_size, "Describe how the batch size during testing affects testing results.",
            "a `torch.nn.BatchNorm1d` trained for 50 steps, then evaluated on the same test examples "
            "in batches of different sizes, in eval and in train mode",
            {"agrees": bool(sizes["eval_one_by_one_equals_full_batch"])}, demonstration=sizes),
    }


def q3(z=Q3_Z, gamma=Q3_GAMMA, beta=Q3_BETA, eps: float = 0.0) -> dict:
    """Q3: batch-norm arithmetic and the train/test difference (ids csce421.q3.*)."""
    return bn_answers("csce421.q3", z, gamma, beta, eps)


def answers() -> dict:
    """Every CSCE-421 answer, keyed by id."""
    return q1() | q2() | q3()
