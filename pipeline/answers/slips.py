"""Slips in the worked solutions, each found and decided by a computation.

The COM S 573 solutions (seed 002) and the CSCE-421 walkthrough (seed 000) are compared with our
computed answers; every entry says where the slip is, what the text says, what is right, how that
was decided, and the numbers the deciding computation produced. `kind` separates a wrong number or
symbol ("slip") from a claim that is true only in part ("imprecise"), a step that does something
other than what the question asks ("deviation") and damage done by the text extraction
("extraction"). Pure: computes, returns plain data, writes nothing.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.answers import batchnorm as bn
from pipeline.answers import conv
from pipeline.answers.coms573 import (Q1_IN_CHANNELS, Q1_LAYERS, Q1_PADDING, Q1_SIZE, block_facts,
                                      random_conv1d_case)
from pipeline.answers.csce421 import Q3_BETA, Q3_Z
from pipeline.answers.record import fmt, plain
from pipeline.errors import UserError

SEED = 0


def _erratum(id_, source, where, says, right, check, result, kind="slip") -> dict:
    return plain({"id": id_, "source": source, "where": where, "kind": kind, "says": says,
                  "right": right, "check": check, "check_result": result})


def coms573_stride_arithmetic() -> dict:
    """1(b): the first stage's size is worked from 63, not the given 64."""
    says_value = (63 - 3 + 2) / 2 + 1
    right = conv.conv_output_size(Q1_SIZE, 3, 2, Q1_PADDING)
    y = torch.nn.Conv2d(Q1_IN_CHANNELS, 256, 3, stride=2, padding=Q1_PADDING, device="meta")(
        torch.zeros(1, Q1_IN_CHANNELS, Q1_SIZE, Q1_SIZE, device="meta"))
    try:
        conv.conv_output_size(Q1_SIZE, 3, 2, Q1_PADDING, exact=True)
        exact = True
    except UserError:
        exact = False
    return _erratum(
        "coms573.q1.b.input_size", "COM S 573 HW5 solutions (002)", "1(b), first stage",
        "(63-3+2)/2+1 = 32",
        f"The input is {Q1_SIZE} wide: floor(({Q1_SIZE}-3+2)/2)+1 = "
        f"floor({(Q1_SIZE - 3 + 2 * Q1_PADDING) / 2})+1 = {right}. "
        "The result 32 stands, but the 63 is a slip, and with 64 the division is not exact (the last "
        "padded row and column are covered by no window).",
        "the solution's expression evaluated; conv_output_size(64, 3, stride 2, pad 1); the output "
        "shape of torch.nn.Conv2d(128, 256, 3, stride=2, padding=1) on a 64 x 64 input",
        {"solution_expression": says_value, "formula": right, "torch_output_size": y.shape[-1],
         "divides_exactly": exact, "agrees": right == y.shape[-1] == says_value})


def coms573_memory_stage_two() -> dict:
    """1(c): the second stage doubles the memory; it does not increase it "to 50 percent"."""
    f = block_facts()
    n = f["numel"]
    t = [1 * Q1_IN_CHANNELS * Q1_SIZE * Q1_SIZE]
    x = torch.zeros(1, Q1_IN_CHANNELS, Q1_SIZE, Q1_SIZE, device="meta")
    c = Q1_IN_CHANNELS
    for k, c_out, s in Q1_LAYERS:
        x = torch.nn.Conv2d(c, c_out, k, stride=s, padding=Q1_PADDING, device="meta")(x)
        t.append(x.numel())
        c = c_out
    pct = [100.0 * (b - a) / a for a, b in zip(t, t[1:])]
    return _erratum(
        "coms573.q1.c.stage_two", "COM S 573 HW5 solutions (002)", "1(c), second stage",
        "in the second stage it increases to 50 percent (32x32x256 => 32x32x512)",
        f"{n[1]:,} -> {n[2]:,} elements is a {fmt(pct[1])}% increase (the memory doubles). The first "
        f"stage's reduction to 50% ({fmt(pct[0])}%) and the conclusion, no change from input to output "
        f"({n[0]:,} -> {n[2]:,}, {fmt(100.0 * (n[2] - n[0]) / n[0])}%), are right.",
        "element counts of the tensors produced by the torch layers (meta device)",
        {"elements_by_stage": t, "stage_change_percent": pct, "agrees": t == n})


def coms573_y_labels() -> dict:
    """3(a): the output vector is labelled y11, y12, y13, y14; Y is 2 x 2."""
    c_in, c_out, k, length = 2, 2, 3, 4
    w, x, y, _, _ = random_conv1d_case(c_in, c_out, k, length, seed=SEED)
    A = conv.symbols_to_numbers(conv.conv1d_matrix_symbols(c_in, c_out, k, length), w.numpy())
    rows = A @ x.numpy().ravel()
    l_out = y.shape[-1]
    return _erratum(
        "coms573.q3.a.y_labels", "COM S 573 HW5 solutions (002)", "3(a), left-hand side of Y~ = A X~",
        "[y11, y12, y13, y14]^T",
        f"[y11, y12, y21, y22]^T, the question's own Y~: the output has {c_out} channels of length "
        f"{l_out}, so there is no y13 or y14; rows 3-4 of A (which the solution writes correctly) "
        "produce output channel 2.",
        "A (with random numbers for the symbols) times X~ against torch.nn.functional.conv1d: rows 3-4 "
        "equal channel 2 of the output, Y[2, 1] and Y[2, 2]",
        {"output_shape": list(y.shape[1:]),
         "rows_3_4_minus_channel_2": float(np.abs(rows[2:] - y[0, 1].numpy()).max()),
         "agrees": bool(np.allclose(rows[2:], y[0, 1].numpy()) and l_out == 2)})


def coms573_padding_arithmetic() -> dict:
    """3(c): "2-3+2x2 = 4" drops the +1 of the output-size formula."""
    l_out, k, p = 2, 3, 2
    says = l_out - k + 2 * p
    right = conv.conv_output_size(l_out, k, 1, p)
    g = torch.zeros(1, 2, l_out)
    torch_len = F.conv1d(g, torch.zeros(2, 2, k), padding=p).shape[-1]
    return _erratum(
        "coms573.q3.c.padding_arithmetic", "COM S 573 HW5 solutions (002)", "3(c), padding",
        "zero padding of 2 (2-3+2x2 = 4)",
        f"2-3+2x2 = {says}; the output length is (2-3+2x2)/1 + 1 = {right}. Padding 2 is right.",
        "the expression evaluated; conv_output_size(2, 3, stride 1, pad 2); the length torch's conv1d gives",
        {"solution_expression": says, "output_length": right, "torch_output_length": torch_len,
         "agrees": right == torch_len and says != right})


def coms573_second_kernel() -> dict:
    """3(c): the kernel for dL/dx2 is written unreversed."""
    c_in, c_out, k, length = 2, 2, 3, 4
    w, _, _, dy, dx = random_conv1d_case(c_in, c_out, k, length, seed=SEED)
    ours = conv.backward_kernels_symbols(c_in, c_out, k)
    # the solution's two kernels, transcribed from the text
    says = [[["w3^11", "w2^11", "w1^11"], ["w3^12", "w2^12", "w1^12"]],
            [["w1^21", "w2^21", "w3^21"], ["w1^22", "w2^22", "w3^22"]]]
    pad = conv.backward_padding(k)

    def run(kernels):
        kb = conv.symbols_to_numbers([sum(r, []) for r in kernels], w.numpy()).reshape(c_in, c_out, k)
        return F.conv1d(dy, torch.as_tensor(kb), padding=pad)[0].numpy()  # (C_in, L)
    err_says = np.abs(run(says) - dx[0].numpy()).max(axis=1)
    err_ours = np.abs(run(ours) - dx[0].numpy()).max(axis=1)
    return _erratum(
        "coms573.q3.c.second_kernel", "COM S 573 HW5 solutions (002)", "3(c), kernel for the 2nd row of dL/dX",
        "[[w1^21, w2^21, w3^21], [w1^22, w2^22, w3^22]]",
        "[" + ", ".join("[" + ", ".join(r) + "]" for r in ours[1]) + "]: reversed, like the first "
        "row's kernel (which the solution gets right).",
        f"both kernel sets with random numbers for the symbols (seed {SEED}), as conv1d(dL/dY, kernels, "
        f"padding={pad}), against autograd's dL/dX, row by row",
        {"solution_max_abs_error_by_row": err_says, "ours_max_abs_error_by_row": err_ours,
         "agrees": bool(err_ours.max() < 1e-12 and err_says[0] < 1e-12 and err_says[1] > 1e-6)})


def coms573_test_statistics() -> dict:
    """2(c): test time uses a running mean *and* variance; the mean of means is one way to keep it."""
    rs = bn.running_stats_demo()
    return _erratum(
        "coms573.q2.c.running_variance", "COM S 573 HW5 solutions (002)", "2(c)",
        "use the running average/population mean on the test data, i.e. the mean of mu_1..mu_n",
        "Test time replaces both batch statistics: the mean by a running mean and the variance by a "
        "running variance (built from unbiased batch variances, m/(m-1) x sigma^2_B). The mean of the "
        "batch means is torch's momentum=None (cumulative) option; its default is an exponential "
        f"moving average with momentum {rs['momentum']}.",
        f"torch.nn.BatchNorm1d fed {rs['steps']} batches of {rs['batch_size']}: cumulative running "
        "mean/var against the mean of the batch means / of the unbiased and biased batch variances",
        {"cumulative_running_var": rs["cumulative_var"],
         "mean_of_unbiased_batch_vars": rs["mean_of_unbiased_batch_vars"],
         "mean_of_biased_batch_vars": rs["mean_of_biased_batch_vars"],
         "cumulative_running_mean": rs["cumulative_mean"], "mean_of_batch_means": rs["mean_of_batch_means"],
         "agrees": bool(rs["cumulative_rule_matches_torch_max_abs"] < 1e-9 and np.allclose(
             rs["cumulative_var"], rs["mean_of_unbiased_batch_vars"]))}, kind="imprecise")


def csce421_image_depth() -> dict:
    """Q1 walkthrough: "15x15x15" for the 15 x 15 x 3 image."""
    right = conv.conv_params(3, 28, 3)
    wrong = conv.conv_params(15, 28, 3)
    try:
        torch.nn.Conv2d(3, 28, 3, padding=1)(torch.zeros(1, 15, 15, 15))
        refused = None
    except RuntimeError as e:
        refused = str(e).splitlines()[0]
    return _erratum(
        "csce421.q1.image_size", "CSCE-421 HW3 walkthrough (000)", "Question 1, Part 1",
        "You are given a single image of size: 15x15x15",
        f"15x15x3, as the question says: the walkthrough's own {right} parameters need 3 input "
        f"channels (a 15-channel input would need 3x3x15 filters, {wrong:,} parameters). Seed 001, "
        "another rendering of the same page, shows depth 3, so this may be an extraction slip.",
        "torch.nn.Conv2d(3, 28, 3) parameter count, and the same layer applied to a 15-channel input",
        {"params_depth_3": right, "params_depth_15": wrong, "torch_refuses_15_channels": refused,
         "agrees": refused is not None}, kind="slip")


def csce421_review_label() -> dict:
    """Review: the parameter count is labelled "Output size"."""
    params = 3 * 3 * 3 * 28 + 28
    out = conv.conv2d_output_shape(15, 15, 28, 3, 1, 1)
    return _erratum(
        "csce421.q1.review_label", "CSCE-421 HW3 walkthrough (000)", "Review (Answers), Question 1",
        "Output size = 3 * 3 * 3 * 28 + 28",
        f"3*3*3*28 + 28 = {params} is the number of parameters; the output size is "
        f"{out[0]} x {out[1]} x {out[2]} ({int(np.prod(out)):,} values).",
        "the expression evaluated, and the output shape of torch.nn.Conv2d(3, 28, 3, padding=1)",
        {"expression": params, "params": conv.conv_params(3, 28, 3), "output_shape": out,
         "agrees": params == conv.conv_params(3, 28, 3)}, kind="slip")


def csce421_beta_sign() -> dict:
    """Q3 part 2 statement: beta printed as (0, 10, 10)."""
    z_hat = np.asarray(bn.batchnorm_forward(np.asarray(Q3_Z, float).T)[0]).T
    printed = np.asarray((0, 10, 10), float)
    row2_printed = (z_hat[1] * 1 + printed[1]).tolist()
    row2_used = (z_hat[1] * 1 + Q3_BETA[1]).tolist()
    return _erratum(
        "csce421.q3.beta_sign", "CSCE-421 HW3 (000), question text", "Question 3, Part 2",
        "beta = (0, 10, 10)",
        f"beta = {tuple(Q3_BETA)}: the walkthrough's row 2, [-11, -9, -9, -11], needs beta_2 = -10 "
        "(COM S 573 2(b) prints the same question with the minus sign); the sign was lost in extraction.",
        "row 2 of z_tilde computed with each beta_2",
        {"row2_with_printed_beta": row2_printed, "row2_with_minus_10": row2_used,
         "agrees": row2_used == [-11.0, -9.0, -9.0, -11.0]}, kind="extraction")


def csce421_batch_of_one() -> dict:
    """Q3 part 3: "batch size is just 1 ... the math will completely break"."""
    d = bn.batch_size_one_demo()
    return _erratum(
        "csce421.q3.batch_of_one", "CSCE-421 HW3 walkthrough (000)", "Question 3, Part 3",
        "the batch size is just 1! The math will completely break ... You cannot calculate a variance "
        "for a single number!",
        "The variance of one number is 0, so nothing is undefined once eps > 0: z_hat = 0/sqrt(eps) = 0 "
        "and the output is beta for every input, with zero gradient - the layer erases its input. "
        "torch refuses BatchNorm1d training on one example (its unbiased running variance would divide "
        "by m - 1 = 0); BatchNorm2d trains on one image, its statistics being over H x W positions.",
        "batch norm with eps = 1e-5 on two different single examples, autograd for the input "
        "gradient, torch.nn.BatchNorm1d and BatchNorm2d in training mode with N = 1",
        {"outputs": d["train_outputs"], "grad_wrt_input": d["grad_wrt_input"],
         "torch_batchnorm1d_error": d["torch_batchnorm1d_error"],
         "batchnorm2d_one_image_ok": d["batchnorm2d_one_image_ok"],
         "agrees": bool(d["outputs_equal_beta"] and d["batchnorm2d_one_image_ok"])}, kind="imprecise")


def csce421_per_image_normalisation(n: int = 16, seed: int = SEED) -> dict:
    """Q4 part 2: the question normalises each image by its own statistics; the walkthrough by the
    training set's per-channel statistics."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32)).astype(np.float64)
    images *= rng.uniform(0.3, 1.0, size=(n, 1, 1, 1))  # images of different brightness
    channel = (images - images.mean(axis=(0, 2, 3), keepdims=True)) / images.std(axis=(0, 2, 3), keepdims=True)
    per_image = (images - images.mean(axis=(1, 2, 3), keepdims=True)) / images.std(axis=(1, 2, 3), keepdims=True)
    image_means = {"per_channel": float(np.abs(channel.mean(axis=(1, 2, 3))).max()),
                   "per_image": float(np.abs(per_image.mean(axis=(1, 2, 3))).max())}
    return _erratum(
        "csce421.q4.per_image_normalisation", "CSCE-421 HW3 walkthrough (000)", "Question 4, Part 2",
        "train_mean = np.mean(train_images, axis=(0, 2, 3)) ... per colour channel, over the training set",
        "The question asks to 'centralize and rescale each image using its mean and variance': statistics "
        "over axes (1, 2, 3) of each image. The walkthrough's per-channel dataset normalisation is a "
        "common alternative, but not the one asked for: it leaves each image's own mean and spread.",
        f"both normalisations applied to {n} random 3x32x32 images of different brightness: largest "
        "|mean| and |std - 1| over single images",
        {"per_channel_max_abs_image_mean": image_means["per_channel"],
         "per_channel_max_abs_image_std_minus_1": float(np.abs(channel.std(axis=(1, 2, 3)) - 1).max()),
         "per_image_max_abs_image_mean": image_means["per_image"],
         "per_image_max_abs_image_std_minus_1": float(np.abs(per_image.std(axis=(1, 2, 3)) - 1).max()),
         "agrees": image_means["per_image"] < 1e-9 < 1e-3 < image_means["per_channel"]}, kind="deviation")


def errata() -> list[dict]:
    """Every erratum found, COM S 573 first (the issue's list), then the CSCE-421 walkthrough."""
    return [coms573_stride_arithmetic(), coms573_memory_stage_two(), coms573_y_labels(),
            coms573_padding_arithmetic(), coms573_second_kernel(), coms573_test_statistics(),
            csce421_image_depth(), csce421_review_label(), csce421_beta_sign(), csce421_batch_of_one(),
            csce421_per_image_normalisation()]
