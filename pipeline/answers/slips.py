"""Slips of the authors in the worked solutions, each decided by a computation.

The COM S 573 HW5 solutions (seed 002) and the CSCE-421 HW3 walkthrough (seed 000) were read line
by line against our computed answers. Every slip is one function `f(claim=<our correction>)` that
returns an entry: where it is (`where`, the question label as the homework prints it, and `answer`,
the anchor of the affected answer on the site), what the text says, what is right, how that was
decided (`check`) and what the deciding computation gave (`check_result`). `agrees` in the result
is set by the computation run on `claim`: with the default (our correction) it is True, and with the
printed claim (`PRINTED[id]`) it is False, so every check can fail. `kind` separates a wrong number,
symbol, label or formula ("slip") from a statement the computation refutes ("wrong claim"), one that
is true only in part ("imprecise") and a step that does something other than the question asks
("deviation"). Damage done by the PDF/HTML extraction (lost minus signs, square roots, fraction
bars) is not an author's slip: `extraction_notes()` lists what was judged so, and why, each again
with a computation. Pure: computes, returns plain data, writes nothing.
"""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.answers import batchnorm as bn
from pipeline.answers import conv
from pipeline.answers.coms573 import (Q1_IN_CHANNELS, Q1_LAYERS, Q1_PADDING, Q1_SIZE, Q3_C_IN, Q3_C_OUT,
                                      Q3_KERNEL, Q3_LENGTH, random_conv1d_case)
from pipeline.answers.csce421 import Q3_BETA, Q3_GAMMA, Q3_Z
from pipeline.answers.record import fmt, plain

SEED = 0
TOL = 1e-9            # float64 agreement of two computations of the same quantity
GAUSS_TOL = 0.3       # about 4 standard errors of the excess kurtosis of 4096 Gaussian samples
SAMPLES = 4096        # the large batch of the "is it Gaussian?" check

# Which text a slip is in ("source": homework + which text).
COMS573 = "COM S 573 HW5 solutions, seed 002"
CSCE421 = "CSCE-421 HW3 walkthrough, seed 000"
CSCE421_REVIEW = "CSCE-421 HW3 walkthrough, its review, seed 000"
CSCE421_STARTER = "CSCE-421 HW3 starter code, quoted in seed 000"

PAGES = ("csce421", "coms573", "cs182")  # the answer pages, served at answers/<page>/
KINDS = {
    "slip": "a wrong number, symbol, label or formula",
    "wrong claim": "a statement the computation refutes",
    "imprecise": "true only in part",
    "deviation": "does something other than the question asks",
}
ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")  # an entry id is its HTML anchor on the errata page


def anchor(label: str) -> str:
    """The answer pages' anchor of a question label: "q" + the label lowercased, parentheses
    removed, dots and spaces turned into "-": "1(b)" -> "q1b", "3.2" -> "q3-2", "2(d) i" -> "q2d-i".
    CSCE-421 prints its parts as "Part 1", "Part 2" under each question: "1.1" is Question 1 Part 1."""
    return "q" + re.sub(r"[.\s]+", "-", re.sub(r"[()]", "", label.strip().lower()))


def _erratum(id_, source, page, where, title, says, right, explanation, check, result, kind="slip") -> dict:
    if not ID.fullmatch(id_) or page not in PAGES or kind not in KINDS or "agrees" not in result:
        raise ValueError(f"malformed erratum {id_!r} (page {page!r}, kind {kind!r})")  # our bug
    return plain({"id": id_, "source": source, "where": where, "answer": f"{page}#{anchor(where)}",
                  "kind": kind, "title": title, "says": says, "right": right,
                  "explanation": explanation, "check": check, "check_result": result})


def _meta_conv(c_in, c_out, k, s, p, size):
    """Output tensor (meta device: shapes only) of a torch Conv2d on a size x size input."""
    return torch.nn.Conv2d(c_in, c_out, k, stride=s, padding=p, device="meta")(
        torch.zeros(1, c_in, size, size, device="meta"))


# --- COM S 573 HW5, worked solutions (seed 002) ---------------------------------------------------

def coms573_1b_input_width(claim: int = Q1_SIZE) -> dict:
    """1(b): the first stage's output size is worked from a 63-wide input; X is 64 wide.
    claim: the input width the formula starts from."""
    k, c_out, s = Q1_LAYERS[0]
    p = Q1_PADDING
    torch_size = _meta_conv(Q1_IN_CHANNELS, c_out, k, s, p, Q1_SIZE).shape[-1]
    from_claim = (claim - k + 2 * p) // s + 1
    return _erratum(
        "coms573-1b-input-width", COMS573, "coms573", "1(b)", "the first stage starts from 63, not 64",
        "After 1st stage the output dimension is $(63-3+2)/2+1 = 32$.",
        f"from {Q1_SIZE}: ${Q1_SIZE}-{k}+2 \\cdot {p} = {Q1_SIZE - k + 2 * p}$, "
        f"$\\lfloor {Q1_SIZE - k + 2 * p}/{s} \\rfloor + 1 = {torch_size}$",
        f"The question gives $X \\in \\mathbb{{R}}^{{{Q1_SIZE} \\times {Q1_SIZE} \\times {Q1_IN_CHANNELS}}}$, "
        f"so the formula starts from {Q1_SIZE}. The result {torch_size} stands, but with {Q1_SIZE} the "
        f"division is not exact (${Q1_SIZE - k + 2 * p}/{s} = {fmt((Q1_SIZE - k + 2 * p) / s)}$): the "
        "output size is its floor plus one, the last padded row and column being covered by no window.",
        f"torch's Conv2d({Q1_IN_CHANNELS}, {c_out}, {k}, stride={s}, padding={p}) on the given input",
        {"checked_input_width": claim, "given_input_width": Q1_SIZE, "formula_from_checked_width": from_claim,
         "torch_output_width": torch_size,
         "given_width_divides_exactly": (Q1_SIZE - k + 2 * p) % s == 0,
         "agrees": claim == Q1_SIZE and from_claim == torch_size})


def coms573_1c_memory(claim: float = 200.0) -> dict:
    """1(c): the second stage doubles the memory; it does not "increase to 50 percent".
    claim: the second stage's output size as a percentage of its input size."""
    shapes = [(Q1_SIZE, Q1_SIZE, Q1_IN_CHANNELS)]                     # (H, W, C), as the question writes
    for k, c_out, s in Q1_LAYERS:
        h, _, c = shapes[-1]
        y = _meta_conv(c, c_out, k, s, Q1_PADDING, h)                 # (1, C, H, W)
        shapes.append((y.shape[2], y.shape[3], y.shape[1]))
    sizes = [int(np.prod(t)) for t in shapes]
    tex = [" \\times ".join(map(str, t)) for t in shapes]
    ratio = [100.0 * b / a for a, b in zip(sizes, sizes[1:])]
    return _erratum(
        "coms573-1c-memory", COMS573, "coms573", "1(c)", "the second stage doubles the memory",
        "in the second stage it increases to 50 percent",
        f"it increases to {fmt(ratio[1])} percent ({fmt(ratio[1] - 100)}% more)",
        f"From ${tex[1]}$ to ${tex[2]}$, {sizes[1]:,} values become "
        f"{sizes[2]:,}: the memory doubles. The first stage's reduction to "
        f"{fmt(ratio[0])} percent and the conclusion, no change from input to output ({sizes[0]:,} and "
        f"{sizes[2]:,} values), are right.",
        "element counts of the torch layers' outputs",
        {"checked_percent": claim, "values_by_stage": sizes, "stage_output_over_input_percent": ratio,
         "agrees": abs(claim - ratio[1]) < TOL})


def _trained_bn(d: int = 3, steps: int = 50, seed: int = SEED):
    """A BatchNorm1d whose running statistics were trained on batches of one distribution, in
    eval mode, and a test batch from the same distribution."""
    rng = np.random.default_rng(seed)
    layer = bn._bn1d(d, rng.uniform(0.5, 2, d), rng.normal(size=d), 1e-5, 0.1)
    with torch.no_grad():
        for _ in range(steps):
            layer(torch.as_tensor(rng.normal(2.0, 3.0, size=(32, d))))
    return layer.eval(), torch.as_tensor(rng.normal(2.0, 3.0, size=(64, d)))


def coms573_2c_running_variance(claim=("mean", "variance")) -> dict:
    """2(c): at test time the layer uses a running mean *and* a running variance.
    claim: the batch statistics the test-time layer replaces by stored ones."""
    layer, test = _trained_bn()
    changed = {}
    with torch.no_grad():
        base = layer(test)
        for name, buf in (("mean", "running_mean"), ("variance", "running_var")):
            probe = torch.nn.BatchNorm1d(test.shape[1], dtype=torch.float64)
            probe.load_state_dict(layer.state_dict())
            getattr(probe, buf).mul_(2.0).add_(1.0)  # move the stored statistic
            changed[name] = float((probe.eval()(test) - base).abs().max())
    used = sorted(k for k, v in changed.items() if v > TOL)
    rs = bn.running_stats_demo()
    cumulative_ok = bool(rs["cumulative_rule_matches_torch_max_abs"] < TOL
                         and np.allclose(rs["cumulative_mean"], rs["mean_of_batch_means"])
                         and np.allclose(rs["cumulative_var"], rs["mean_of_unbiased_batch_vars"]))
    return _erratum(
        "coms573-2c-running-variance", COMS573, "coms573", "2(c)", "test time also needs a running variance",
        "use the running average/population mean on the test data. population mean i.e mean of "
        "$\\mu_1, \\mu_2, \\dots, \\mu_n$",
        "a running mean and a running variance replace the batch statistics",
        "The mean of the batch means is one estimate of the population mean (torch's momentum=None "
        "option; the default is an exponential moving average with momentum "
        f"{rs['momentum']}), but the variance must be replaced too, by the average of the unbiased "
        "batch variances $\\frac{m}{m-1}\\sigma_B^2$. The answer never mentions it.",
        "moving each stored statistic of a trained torch BatchNorm1d in eval mode",
        {"checked": list(claim), "output_change_when_moved": changed, "statistics_used_at_test_time": used,
         "cumulative_running_mean": rs["cumulative_mean"], "mean_of_batch_means": rs["mean_of_batch_means"],
         "cumulative_running_var": rs["cumulative_var"],
         "mean_of_unbiased_batch_vars": rs["mean_of_unbiased_batch_vars"],
         "mean_of_biased_batch_vars": rs["mean_of_biased_batch_vars"],
         "agrees": sorted(claim) == used and cumulative_ok}, kind="imprecise")


def _skew_kurt(x: np.ndarray) -> tuple[float, float]:
    """Skewness and excess kurtosis of a sample (0 and 0 for a Gaussian)."""
    z = (x - x.mean()) / x.std()
    return float((z ** 3).mean()), float((z ** 4).mean() - 3.0)


def coms573_2c_not_gaussian(claim: bool = False) -> dict:
    """2(c): normalising a batch gives it zero mean and unit variance, not a Gaussian shape.
    claim: whether the normalised batch is Gaussian."""
    z_hat, _ = bn.batchnorm_forward(np.asarray(Q3_Z, float).T)      # (m, D): the homework's batch
    values = sorted(set(np.round(z_hat, 12).ravel().tolist()))
    rng = np.random.default_rng(SEED)
    x = rng.exponential(1.0, size=(SAMPLES, 1))                       # a skewed batch
    x_hat, _ = bn.batchnorm_forward(x)
    skew_in, _ = _skew_kurt(x[:, 0])
    skew_out, kurt_out = _skew_kurt(x_hat[:, 0])
    _, kurt_homework = _skew_kurt(z_hat[:, 0])
    gaussian = abs(skew_out) < GAUSS_TOL and abs(kurt_out) < GAUSS_TOL and abs(kurt_homework) < GAUSS_TOL
    return _erratum(
        "coms573-2c-not-gaussian", COMS573, "coms573", "2(c)", "normalising does not make a batch Gaussian",
        "in the training we transform the minibatches to gaussian (0,1)",
        "zero mean and unit variance per unit; the shape of the distribution is unchanged",
        "Subtracting the mean and dividing by the standard deviation is an affine map: it fixes the "
        f"first two moments and leaves the shape as it was: {SAMPLES} exponential samples keep their "
        f"skewness of {fmt(skew_out, 3)} (a Gaussian's is 0). The homework's own batch becomes the two "
        f"values {fmt(values)} in every unit, which is no Gaussian either.",
        "skewness and kurtosis after batch norm (a Gaussian has 0 and 0)",
        {"checked_gaussian": claim, "homework_batch_values_after": values,
         "homework_batch_excess_kurtosis": kurt_homework,
         "exponential_skewness_before": skew_in, "exponential_skewness_after": skew_out,
         "exponential_excess_kurtosis_after": kurt_out,
         "exponential_mean_after": float(x_hat.mean()), "exponential_var_after": float(x_hat.var()),
         "agrees": claim == gaussian and abs(skew_in - skew_out) < TOL}, kind="wrong claim")


def coms573_2d_mean_only(claim=("mean", "variance"), sizes=(1, 2, 8)) -> dict:
    """2(d): the test batch size does not matter because mean *and* variance are fixed.
    claim: the statistics that must be fixed for an example's output not to depend on the batch."""
    layer, test = _trained_bn()
    x = test.numpy()
    mu_run, var_run = layer.running_mean.numpy(), layer.running_var.numpy()
    g, b, eps = layer.weight.detach().numpy(), layer.bias.detach().numpy(), layer.eps

    def out(batch, fixed):
        mu = mu_run if "mean" in fixed else batch.mean(axis=0)
        var = var_run if "variance" in fixed else batch.var(axis=0)
        return g * (batch - mu) / np.sqrt(var + eps) + b

    rules = [("mean",), ("variance",), ("mean", "variance")]
    spread = {}
    for fixed in rules:
        whole = out(x, fixed)
        spread[" + ".join(fixed)] = max(float(np.abs(np.concatenate(
            [out(x[i:i + s], fixed) for i in range(0, len(x), s)]) - whole).max()) for s in sizes)
    independent = [fixed for fixed in rules if spread[" + ".join(fixed)] < TOL]
    minimal = sorted(min(independent, key=len)) if independent else []
    with torch.no_grad():
        torch_eval = float(np.abs(layer(test).numpy() - out(x, ("mean", "variance"))).max())
    return _erratum(
        "coms573-2d-mean-only", COMS573, "coms573", "2(d)",
        "a fixed mean alone does not make the output independent of the batch",
        "The batch size of testing does not effect the performance because we consider the "
        "population mean i.e mean of $\\mu_1, \\mu_2, \\dots, \\mu_n$",
        "true, because the mean and the variance are both fixed at test time",
        "The conclusion is right, the reason incomplete: with only the mean fixed, the variance would "
        "still come from the test batch and every output would change with the batch size (a batch "
        "of one has variance 0). Only with both statistics fixed, as eval mode does, is each example "
        "normalised on its own.",
        "a trained layer on test batches of several sizes, with the mean, the variance or both fixed",
        {"checked": list(claim), "batch_sizes": list(sizes), "largest_change_by_fixed_statistics": spread,
         "torch_eval_mode_equals_both_fixed": torch_eval,
         "agrees": sorted(claim) == minimal and torch_eval < TOL}, kind="imprecise")


def coms573_3a_output_labels(claim=("y11", "y12", "y21", "y22")) -> dict:
    """3(a): the output vector is written y11, y12, y13, y14; Y is 2 x 2.
    claim: the labels of the rows of A X~, top to bottom."""
    w, x, y, _, _ = random_conv1d_case(Q3_C_IN, Q3_C_OUT, Q3_KERNEL, Q3_LENGTH, seed=SEED)
    A = conv.symbols_to_numbers(conv.conv1d_matrix_symbols(Q3_C_IN, Q3_C_OUT, Q3_KERNEL, Q3_LENGTH), w.numpy())
    rows = A @ x.numpy().ravel()
    y = y[0].numpy()                                          # (C_out, L_out)
    labels = [next((f"y{c + 1}{l + 1}" for c in range(y.shape[0]) for l in range(y.shape[1])
                    if abs(r - y[c, l]) < TOL), "?") for r in rows]
    return _erratum(
        "coms573-3a-output-labels", COMS573, "coms573", "3(a)", "the output vector is y11, y12, y21, y22",
        "$\\begin{bmatrix} y_{11} \\\\ y_{12} \\\\ y_{13} \\\\ y_{14} \\end{bmatrix} = \\dots$",
        "$\\tilde{Y} = [" + ", ".join(f"y_{{{s[1:]}}}" for s in labels) + "]^T$, the question's own $\\tilde{Y}$",
        f"Y has {y.shape[0]} channels of length {y.shape[1]}: there is no $y_{{13}}$ or $y_{{14}}$. "
        "Rows 3 and 4 of A, which the solution writes correctly, produce output channel 2.",
        "$A$ with random weights, times $\\tilde{X}$, against torch's `conv1d`",
        {"checked": list(claim), "row_is_output": labels, "output_shape": list(y.shape),
         "agrees": list(claim) == labels})


def _printed_length(length, kernel, padding, stride=1):
    """3(c)'s printed arithmetic, "2-3+2x2": the output-size formula without its "+ 1"."""
    return (length - kernel + 2 * padding) // stride


def _output_length(length, kernel, padding, stride=1):
    return conv.conv_output_size(length, kernel, stride, padding)


def coms573_3c_padding(claim=_output_length) -> dict:
    """3(c): "2-3+2x2 = 4" drops the + 1 of the output-size formula (and is 3, not 4).
    claim: the formula (length, kernel, padding, stride) -> output length."""
    l_out = conv.conv_output_size(Q3_LENGTH, Q3_KERNEL)
    pad = conv.backward_padding(Q3_KERNEL)
    cases = [(l_out, Q3_KERNEL, pad, 1), (5, 3, 1, 1), (7, 3, 0, 2), (4, 2, 1, 2)]
    torch_len = [F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), padding=p, stride=s).shape[-1]
                 for n, k, p, s in cases]
    claimed = [claim(*c) for c in cases]
    return _erratum(
        "coms573-3c-padding", COMS573, "coms573", "3(c)", "the padding arithmetic drops the + 1",
        "zero padding of 2 ($2-3+2 \\times 2 = 4$)",
        f"$({l_out}-{Q3_KERNEL}+2 \\times {pad})/1 + 1 = {torch_len[0]}$; the padding of {pad} is right",
        f"${l_out}-{Q3_KERNEL}+2 \\times {pad} = {_printed_length(*cases[0])}$, not {torch_len[0]}: the "
        "output-size formula has a + 1 that the printed arithmetic drops. With it the padded "
        f"backward convolution returns the {Q3_LENGTH} positions of X, as it must.",
        "the formula against the output lengths of torch's conv1d",
        {"cases_length_kernel_padding_stride": cases, "lengths_by_checked_formula": claimed, "torch_lengths": torch_len,
         "printed_expression_value": _printed_length(*cases[0]), "agrees": claimed == torch_len})


# The solution's kernels for the rows of dL/dX, transcribed from seed 002: [row][dY channel][tap].
PRINTED_KERNELS = [[["w3^11", "w2^11", "w1^11"], ["w3^12", "w2^12", "w1^12"]],
                   [["w1^21", "w2^21", "w3^21"], ["w1^22", "w2^22", "w3^22"]]]


def coms573_3c_second_kernel(claim=None) -> dict:
    """3(c): the kernel for the second row of dL/dX is written unreversed.
    claim: both kernels as symbols [row][dY channel][tap] (default: ours, each reversed)."""
    ours = conv.backward_kernels_symbols(Q3_C_IN, Q3_C_OUT, Q3_KERNEL)
    claim = ours if claim is None else claim
    w, _, _, dy, dx = random_conv1d_case(Q3_C_IN, Q3_C_OUT, Q3_KERNEL, Q3_LENGTH, seed=SEED)
    pad = conv.backward_padding(Q3_KERNEL)

    def error_by_row(kernels):
        kb = conv.symbols_to_numbers([sum(r, []) for r in kernels], w.numpy()).reshape(Q3_C_IN, Q3_C_OUT, Q3_KERNEL)
        got = F.conv1d(dy, torch.as_tensor(kb), padding=pad)[0].numpy()     # (C_in, L)
        return np.abs(got - dx[0].numpy()).max(axis=1)

    err = error_by_row(claim)
    return _erratum(
        "coms573-3c-second-kernel", COMS573, "coms573", "3(c)", "the second kernel must be reversed too",
        "the kernels for 1st and 2nd row of $\\frac{\\partial L}{\\partial \\tilde{X}}$ are ... and "
        "$\\begin{bmatrix} w_1^{21} & w_2^{21} & w_3^{21} \\\\ w_1^{22} & w_2^{22} & w_3^{22} \\end{bmatrix}$",
        "$\\begin{bmatrix} " + " \\\\ ".join(" & ".join(f"w_{s[1]}^{{{s[3:]}}}" for s in r) for r in ours[1])
        + " \\end{bmatrix}$, reversed like the first",
        "Each row of $\\partial L/\\partial X$ is a cross-correlation of $\\partial L/\\partial Y$, padded "
        f"by {pad}, with the forward kernels reversed. The solution reverses the kernel for the first "
        "row but not for the second; with random weights, only the reversed one reproduces autograd.",
        "both kernels with random weights, as a convolution of $\\partial L/\\partial Y$, against autograd's $\\partial L/\\partial X$",
        {"checked": claim, "max_abs_error_by_row": err, "agrees": bool(err.max() < TOL)})


# --- CSCE-421 HW3, walkthrough (seed 000) -------------------------------------------------------

def csce421_1_image_depth(claim=(15, 15, 3)) -> dict:
    """Question 1: the walkthrough restates the 15 x 15 x 3 image as 15 x 15 x 15.
    claim: the image's (H, W, D)."""
    layer = torch.nn.Conv2d(3, 28, 3, stride=1, padding=1)   # 28 filters of 3 x 3 x 3, as the question gives
    params = sum(p.numel() for p in layer.parameters())

    def output_hwc(h, w, d):
        try:
            c, h_out, w_out = layer(torch.zeros(1, d, h, w)).shape[1:]
            return [h_out, w_out, c], None
        except RuntimeError as e:  # torch's own message is the evidence
            return None, str(e).splitlines()[0]
    out_hwc, refused = output_hwc(*claim)
    given, _ = output_hwc(15, 15, 3)
    return _erratum(
        "csce421-1-image-depth", CSCE421, "csce421", "1.1", "the image is 15 × 15 × 3",
        "You are given a single image of size: 15×15×15",
        "15×15×3, as the question says",
        "A filter spans the full input depth, and the question's filters are 3×3×3: the image has 3 "
        f"channels, as the walkthrough's next lines (depth 3) and its answers, {'×'.join(map(str, given))} "
        f"and {params} parameters, assume. Not extraction damage: the rest of this maths survived "
        "the extraction digit for digit (3×3×3, 15×15×28), and seed 001 lost this line altogether.",
        "the question's layer, torch's Conv2d(3, 28, 3, padding=1), applied to the image",
        {"checked_hwd": list(claim), "output_hwc": out_hwc, "params": params, "torch_refuses": refused,
         "agrees": out_hwc == given and refused is None}, kind="slip")


def csce421_1_review_label(claim: str = "number of parameters") -> dict:
    """Question 1, review: the parameter count is labelled "Output size".
    claim: the quantity that 3*3*3*28 + 28 is."""
    value = 3 * 3 * 3 * 28 + 28
    layer = torch.nn.Conv2d(3, 28, 3, padding=1)
    y = layer(torch.zeros(1, 3, 15, 15))
    quantities = {"number of parameters": sum(p.numel() for p in layer.parameters()), "output size": y.numel()}
    matches = [k for k, v in quantities.items() if v == value]
    return _erratum(
        "csce421-1-review-label", CSCE421_REVIEW, "csce421", "1.2",
        "784 is the parameter count, not the output size",
        "Output size = 3 * 3 * 3 * 28 + 28",
        f"Number of parameters = 3 * 3 * 3 * 28 + 28 = {value}",
        f"The expression is the parameter count; the output size is {y.shape[2]}×{y.shape[3]}×{y.shape[1]} "
        f"({y.numel():,} values), given by the formula on the line above it.",
        "the expression against the torch layer's parameter count and output size",
        {"checked": claim, "expression": value, "quantities": quantities, "expression_is": matches,
         "agrees": claim in matches})


def csce421_3_2_symbol(claim: str = "z_tilde") -> dict:
    """Question 3 Part 2: the final matrix is typeset as Z-bar; it is Z-tilde.
    claim: which of the question's quantities the printed matrix is."""
    printed = np.array([[-1, 1, 1, -1], [-11, -9, -9, -11], [9, 11, 11, 9]], float)  # as typeset
    z = np.asarray(Q3_Z, float)
    z_hat = bn.batchnorm_forward(z.T)[0].T
    candidates = {"z": z, "z_hat": z_hat,
                  "z_tilde": bn.batchnorm_forward(z.T, Q3_GAMMA, Q3_BETA)[0].T,
                  "z_bar": np.broadcast_to(z.mean(axis=1, keepdims=True), z.shape)}  # a bar: the mean
    matches = [k for k, v in candidates.items() if np.allclose(v, printed, atol=TOL)]
    return _erratum(
        "csce421-3-2-symbol", CSCE421, "csce421", "3.2", "the output matrix is Z\u0303, not Z\u0304",
        "the final output matrix $\\tilde{Z}$ for the Batch Normalization layer is: $\\bar{Z}=[\\dots]$",
        "$\\tilde{Z} = \\gamma \\hat{Z} + \\beta$",
        "The prose names the matrix $\\tilde{Z}$ and the question defines $\\tilde{z}_i = \\gamma \\hat{z}_i + "
        "\\beta$, but the display typesets $\\bar{Z}$, a symbol the question does not define (a bar "
        "usually marks a mean). The numbers are right. This display is the note's own LaTeX source, "
        "shown raw in seed 000, so the bar is the author's.",
        "the printed matrix against the question's quantities, computed",
        {"checked": claim, "printed_matrix": printed, "matrix_is": matches, "agrees": [claim] == matches})


def csce421_3_3_batch_of_one(claim: float | None = 0.0, eps: float = 1e-5) -> dict:
    """Question 3 Part 3: "You cannot calculate a variance for a single number!"
    claim: the variance of one example by the question's formula (None: cannot be calculated)."""
    one = np.asarray([[10.0, 5.0, 2.0]])                 # the walkthrough's own 3 x 1 batch, as (N, D)
    _, var = bn.batch_stats(one)
    with np.errstate(invalid="ignore", divide="ignore"):
        at_eps0 = (one - one.mean(axis=0)) / np.sqrt(var)
    d = bn.batch_size_one_demo(eps=eps)
    return _erratum(
        "csce421-3-3-batch-of-one", CSCE421, "csce421", "3.3", "a single number has variance 0",
        "the batch size is just 1! The math will completely break. ... You cannot calculate a "
        "variance for a single number! The math completely breaks.",
        "the variance of one number is 0; what breaks is the normalisation",
        "By the question's formula $\\sigma^2 = \\frac{1}{m}\\sum_i (z_i-\\mu)^2$ one number has "
        "$\\mu = z$ and $\\sigma^2 = 0$. With $\\epsilon = 0$, as the question assumes, $\\hat{z} = 0/0$ "
        "is undefined; with $\\epsilon > 0$ it is 0 and the output is $\\beta$ whatever the input, with "
        "zero gradient: the layer erases its input. torch refuses BatchNorm1d training on one "
        "example. The walkthrough's conclusion, fixed statistics at test time, stands.",
        "the question's formulas on one example, autograd, torch's BatchNorm1d with N = 1",
        {"checked_variance": claim if claim is not None else "cannot be calculated",
         "variance_by_formula": var, "eps_0_output_is_nan": bool(np.isnan(at_eps0).all()),
         "outputs_with_eps": d["train_outputs"], "outputs_equal_beta": d["outputs_equal_beta"],
         "grad_wrt_input": d["grad_wrt_input"], "torch_batchnorm1d_error": d["torch_batchnorm1d_error"],
         "agrees": claim is not None and bool(np.allclose(var, claim)) and d["outputs_equal_beta"]},
        kind="imprecise")


def csce421_4_2_per_image(claim=(1, 2, 3), n: int = 16, seed: int = SEED) -> dict:
    """Question 4 Part 2: the question normalises each image by its own statistics; the
    walkthrough by the training set's per-channel statistics.
    claim: the axes of (N, C, H, W) the mean and standard deviation are taken over."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32)).astype(np.float64)
    images *= rng.uniform(0.3, 1.0, size=(n, 1, 1, 1))    # images of different brightness

    def worst(axes):  # the largest |mean| and |std - 1| of a single image after normalising
        out = (images - images.mean(axis=axes, keepdims=True)) / images.std(axis=axes, keepdims=True)
        return float(np.abs(out.mean(axis=(1, 2, 3))).max()), float(np.abs(out.std(axis=(1, 2, 3)) - 1).max())
    axes = tuple(claim)
    image_mean, image_std = worst(axes)
    walkthrough = worst((0, 2, 3))
    return _erratum(
        "csce421-4-2-per-image", CSCE421, "csce421", "4.2", "each image by its own mean and variance",
        "`train_mean = np.mean(train_images, axis=(0, 2, 3), keepdims=True)` ... Apply the EXACT SAME "
        "training statistics to normalize BOTH datasets",
        "each image's own mean and standard deviation, over axes (1, 2, 3)",
        "The question asks to 'centralize and rescale each image using its mean and variance'. The "
        "walkthrough's per-channel statistics of the training set are a common alternative, but not "
        "the one asked for: they leave each image its own mean and spread, and its analysis then "
        "describes the inputs as normalized 'using the training set's mean and variance'. On "
        f"{n} random images of different brightness, its statistics leave single images with means "
        f"up to {fmt(walkthrough[0], 3)}; each image's own statistics give every image mean 0 and "
        "standard deviation 1.",
        "each image's mean and spread after normalising random images",
        {"checked_axes": list(axes), "max_abs_image_mean": image_mean, "max_abs_image_std_minus_1": image_std,
         "walkthrough_axes_max_abs_image_mean": walkthrough[0],
         "walkthrough_axes_max_abs_image_std_minus_1": walkthrough[1],
         "agrees": image_mean < TOL and image_std < TOL}, kind="deviation")


def csce421_4_2_range(claim=(0.0, 1.0, True)) -> dict:
    """Question 4 Part 2: the docstring's half-open ranges [0,255) and [0,1) leave out 255 and 1.
    claim: (low, high, high included) of the rescaled pixels."""
    pixels = np.arange(np.iinfo(np.uint8).max + 1, dtype=np.uint8)   # every value a uint8 pixel can take
    rescaled = pixels.astype(np.float64) / 255.0
    low, high = float(rescaled.min()), float(rescaled.max())
    attained = bool((rescaled == high).any())
    return _erratum(
        "csce421-4-2-range", CSCE421_STARTER, "csce421", "4.2", "rescaled pixels lie in [0, 1], 1 included",
        "Rescaling the pixels from integers in [0,255) to floats in [0,1)",
        f"from integers in [{int(pixels.min())}, {int(pixels.max())}] to floats in [{fmt(low)}, {fmt(high)}]",
        f"A uint8 pixel takes every value from {int(pixels.min())} to {int(pixels.max())}, and "
        f"{int(pixels.max())} / 255 = {fmt(high)}: both ranges are closed, as the question's own words "
        "'from range 0-255 to range 0-1' say.",
        "every uint8 value divided by 255",
        {"checked_low_high_closed": list(claim), "uint8_range": [int(pixels.min()), int(pixels.max())],
         "rescaled_min": low, "rescaled_max": high,
         "agrees": (low, high, attained) == tuple(claim)})


SLIPS = (coms573_1b_input_width, coms573_1c_memory, coms573_2c_running_variance, coms573_2c_not_gaussian,
         coms573_2d_mean_only, coms573_3a_output_labels, coms573_3c_padding, coms573_3c_second_kernel,
         csce421_1_image_depth, csce421_1_review_label, csce421_3_2_symbol, csce421_3_3_batch_of_one,
         csce421_4_2_per_image, csce421_4_2_range)

# What each text prints, in the form its check takes: fed to the check, it must make agrees False.
PRINTED = {
    "coms573-1b-input-width": 63,
    "coms573-1c-memory": 50.0,
    "coms573-2c-running-variance": ("mean",),
    "coms573-2c-not-gaussian": True,
    "coms573-2d-mean-only": ("mean",),
    "coms573-3a-output-labels": ("y11", "y12", "y13", "y14"),
    "coms573-3c-padding": _printed_length,
    "coms573-3c-second-kernel": PRINTED_KERNELS,
    "csce421-1-image-depth": (15, 15, 15),
    "csce421-1-review-label": "output size",
    "csce421-3-2-symbol": "z_bar",
    "csce421-3-3-batch-of-one": None,
    "csce421-4-2-per-image": (0, 2, 3),
    "csce421-4-2-range": (0.0, 1.0, False),
}


def errata() -> list[dict]:
    """Every slip, COM S 573 first, then CSCE-421, each in question order."""
    return [f() for f in SLIPS]


# --- extraction damage: not counted as slips -------------------------------------------------------

def extraction_notes() -> list[dict]:
    """What the extraction of seed 000 damaged, judged by comparing with seed 002 / 001 or with
    the walkthrough's own numbers; each with the computation that supports the reading."""
    z = np.asarray(Q3_Z, float)
    mu, var = bn.batch_stats(z.T)
    z_hat = bn.batchnorm_forward(z.T)[0].T
    row2 = {b: (z_hat[1] * Q3_GAMMA[1] + b).tolist() for b in (-Q3_BETA[1], Q3_BETA[1])}
    printed_row3 = np.abs(z[2])                 # the row with its minus signs lost
    torch_q1 = _meta_conv(3, 28, 3, 1, 1, 15).shape[-1]
    padded = 15 + 2 * 1

    def note(where, printed, reading, why, result):
        return {"source": CSCE421, "where": where, "answer": f"csce421#{anchor(where)}",
                "printed": printed, "reading": reading, "why": why, "check_result": result}
    return plain([
        note("1.1", "Output Dimension=1731+1=15", f"$({padded}-3)/1+1 = {torch_q1}$",
             f"a minus sign and a fraction bar lost; the formula is applied to the padded size {padded}, "
             "so it needs no padding term",
             {"reading_value": (padded - 3) // 1 + 1, "torch_output_width": torch_q1,
              "agrees": (padded - 3) // 1 + 1 == torch_q1}),
        note("3.1", "z(3)=[5,5,5,5]", f"$z^{{(3)}} = {fmt(z[2])}$",
             f"minus signs lost (also in the printed matrix and sums): the walkthrough's own "
             f"$\\mu_3 = {fmt(mu[2])}$ and its raw LaTeX $z_1 = {fmt(z[:, 0])}$ need them",
             {"mean_of_printed_row": float(printed_row3.mean()), "mean_of_reading": mu[2],
              "agrees": bool(mu[2] == 0.0 != printed_row3.mean())}),
        note("3.1", "The standard deviation vector is σ2=[1 5 5]", f"$\\sqrt{{\\sigma^2}} = {fmt(np.sqrt(var))}$",
             "a square root lost, not a mislabel: the same rendering prints the question's own formula "
             "as `z^i=ziμσ2+ϵ` (COM S 573 prints $\\sqrt{\\sigma^2+\\epsilon}$), the prose says "
             f"'standard deviation', and the numbers are the square roots of $\\sigma^2 = {fmt(var)}$",
             {"sigma2": var, "sqrt_sigma2": np.sqrt(var),
              "agrees": bool(np.allclose(np.sqrt(var), [1, 5, 5]) and not np.allclose(var, [1, 5, 5]))}),
        note("3.2", "β=(0,10,10)", f"$\\beta = {tuple(Q3_BETA)}$",
             f"a minus sign lost: the walkthrough's raw LaTeX adds $\\beta_2 = {Q3_BETA[1]}$ and gets row 2 "
             f"= {fmt(row2[Q3_BETA[1]])}, and COM S 573 2(b) prints the same question with the minus sign",
             {"row2_with_printed_beta": row2[-Q3_BETA[1]], "row2_with_minus": row2[Q3_BETA[1]],
              "agrees": row2[Q3_BETA[1]] == [-11.0, -9.0, -9.0, -11.0]}),
    ])
