"""Every answer in answers.json against an independent computation.

The answers come from pipeline/answers (formulas, index arithmetic, NumPy); the references here
come from torch layers, torch.nn.functional, autograd, SciPy and sympy, written out again in this
file rather than imported from the code under test. No expected number is typed in: the givens
are read from the answer objects (which carry them) and the reference is computed from them.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.signal
import sympy as sp
import torch
import torch.nn.functional as F

from pipeline.answers import compute_all, coms573, cs182, single_thread

ATOL = 1e-9          # float64 agreement
SAMPLE_ATOL = 0.02   # statistics of 200k samples (CS182 1(b) correlation)
SHIFT_TOL = 1e-12    # CS182 3(f): a larger change of the GAP output is not rounding
SYMBOL = re.compile(r"^w(\d)\^(\d)(\d)$")

# Maths written in ASCII, looked for outside $...$ and `...` in every text field: symbols belong in
# TeX ($\tilde{Y} = A\tilde{X}$, $B = A^{\top}$, $\sigma^2_B$), code in backticks.
ASCII_MATHS = {
    "tilde suffix (Y~)": r"\w~",
    "caret (A^T, W^{ij}, R^(...))": r"\^",
    "spelt hat or tilde (z_hat)": r"_hat|_tilde|\bx?hat\b",
    "Greek letter spelt out": r"\b(sigma|Sigma|mu|gamma|beta|eps|epsilon|lambda|alpha|delta|partial)(?![a-z])",
    "derivative (dL/dX)": r"\bd\w+/d\w+",
    "x for times (15 x 15, 3x3)": r"\d ?x ?\d|[\w)] x [\w(]",
    "sqrt": r"\bsqrt\b",
    "arrow or comparison (->, <=)": r"->|<-|<=|>=|!=",
    "asterisk product": r"\*",
    "underscore subscript (C_in, x_d)": r"\b[A-Za-z]+_\{?\w",
    "equation outside maths": r"=",
    "index written inline (x3, g1)": r"\b[a-zA-PR-Z]\d{1,2}\b",
    "function of n written inline (h(n))": r"\b[a-z]\d?\([a-z]\b",
    "range (x1..x4)": r"\w\.\.\w",
    "normal distribution N(...)": r"\bN\(",
    "floor(...)": r"\bfloor\(",
    "code outside backticks": r"\b(torch|np|numpy|scipy|pipeline|F)\.\w|\w\(\)",
}

# The ids issue 4 requires, exactly as spelled there.
REQUIRED_IDS = [
    "csce421.q1.output_shape", "csce421.q1.params", "csce421.q2.shortcut", "csce421.q2.params",
    "csce421.q2.params_by_layer", "csce421.q3.z_hat", "csce421.q3.z_tilde", "csce421.q3.train_vs_test",
    "coms573.q1.params", "coms573.q1.mult_adds", "coms573.q1.memory_change_percent", "coms573.q2.z_hat",
    "coms573.q2.z_tilde", "coms573.q3.A", "coms573.q3.B", "coms573.q3.is_convolution",
    "coms573.q3.backward_kernels", "coms573.q3.backward_padding",
    "cs182.q1.a.mean", "cs182.q1.a.std", "cs182.q2.c.y", "cs182.q2.d.stride1_pad1",
    "cs182.q2.d.stride2_pad1", "cs182.q3.e.params", "cs182.q3.e.activations", "cs182.q3.f.g3",
    "cs182.q3.f.g4",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: torch's thread pool only adds contention."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def answers(one_thread) -> dict:
    return compute_all()


def numeric(M, weight):
    """Substitute weight[j-1, i-1, k-1] for each "wk^ij" (COM S 573 3, eq. 3); "0" -> 0."""
    out = np.zeros((len(M), len(M[0])))
    for r, row in enumerate(M):
        for c, s in enumerate(row):
            if s != "0":
                k, i, j = map(int, SYMBOL.match(s).groups())
                out[r, c] = weight[j - 1, i - 1, k - 1]
    return out


def ascii_maths(text: str) -> list[str]:
    """Names of the ASCII_MATHS patterns found in `text` outside $...$ / $$...$$ and `...`, plus
    "unbalanced $" when a dollar sign has no partner."""
    outside = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`\n]+`", " ", text, flags=re.S)
    found = [name for name, pattern in ASCII_MATHS.items() if re.search(pattern, outside)]
    return found + (["unbalanced $"] if "$" in outside else [])


def text_fields(entry: dict):
    """(field, text) for every prose field of an answer: question, method, assumption, check, unit,
    each step, and the value when it is text (a value with `latex` is a formula in code form, shown
    as code beside its TeX)."""
    for field in ("question", "method", "assumption", "check", "unit"):
        if isinstance(entry.get(field), str):
            yield field, entry[field]
    for step in entry.get("steps", []):
        yield "steps", step
    v = entry["value"]
    if "latex" not in entry:
        for text in [v] if isinstance(v, str) else v if isinstance(v, list) else []:
            if isinstance(text, str):
                yield "value", text


# --- the file as a whole ---------------------------------------------------------------------

def test_every_required_id_is_present(answers):
    missing = [k for k in REQUIRED_IDS if k not in answers]
    assert not missing, missing


def test_every_answer_is_complete_json_and_verified(answers):
    text = json.dumps(answers, allow_nan=False)  # raises on NaN / inf / numpy types
    assert json.loads(text) == answers
    for key, entry in answers.items():
        assert re.fullmatch(r"(csce421|coms573|cs182)\.q\d(\.[a-z])?\.[A-Za-z0-9_]+|errata", key), key
        for field in ("value", "question", "check", "check_result"):
            assert field in entry, (key, field)
        assert entry["check_result"]["agrees"] is True, (key, entry["check_result"])


def test_answers_are_reproducible(answers):
    assert json.dumps(compute_all(), sort_keys=True) == json.dumps(answers, sort_keys=True)


def test_no_ascii_maths_in_any_text_field(answers):
    """Every answer typesets its maths. The "errata" entry is left out: its items are written by
    slips.py and its own text by pipeline/answers/__init__.py, whose owners keep them."""
    bad = [(key, field, found, text) for key, entry in answers.items() if key != "errata"
           for field, text in text_fields(entry) if (found := ascii_maths(text))]
    assert not bad, "\n".join(f"{k} [{f}] {found}: {t}" for k, f, found, t in bad)


@pytest.mark.parametrize("old", [  # texts of the answers before they were typeset, verbatim
    "as a fully connected layer Y~ = A X~ with X~ = [x11, x12, x13, x14, x21, x22, x23, x24]",
    "Write the back-propagation as dL/dX~ = B dL/dY~ with dL/dY~ = [dL/dy11, dL/dy12]",
    "B = A^T",
    "Kernel for dL/dx_i: row j is W^{ij} reversed, [w3^ij, w2^ij, w1^ij].",
    "built from unbiased batch variances, m/(m-1) x sigma^2_B",
    "(one column per example); eps = 0. What are the z_hat_i? Express the answer as a 3 x 4 matrix.",
    "A single (15 x 15 x 3) image is passed through a convolutional layer",
    "Each coordinate is standardised on its own: x_d -> (x_d - mu_d) / sigma_d.",
    "Fill in the table of parameters and activation sizes for Input 28x28x1 -> CONV3-10",
    "torch.nn.BatchNorm1d(3, eps=1e-12) in training mode on the batch as (4, 3)",
    "Input data follows N(mu = 1.5, sigma^2 = 0.16).",
    "Shift x by N = 5: x2(n) = x(n - 5). Compute y2 = h * x2 (n = -6..17).",
    "Each output value is one K x K x C_in dot product: K*K*C_in*C_out*H_out*W_out per layer.",
    "So g3 = g1.",
    "a triangle peaking at $y(6) = 7",
])
def test_ascii_maths_check_flags_the_old_texts(old):
    assert ascii_maths(old), old


@pytest.mark.parametrize("typeset", [
    r"as a fully connected layer $\tilde{Y} = A\tilde{X}$ with $\tilde{X} = [x_{11}, x_{12}]^{\top}$",
    r"Write the back-propagation as $\partial L/\partial \tilde{X} = B\,\partial L/\partial \tilde{Y}$",
    r"built from unbiased batch variances, $m/(m-1) \times \sigma^2_B$",
    r"What are the $\hat{z}_i$? Express the answer as a $3 \times 4$ matrix.",
    r"`torch.nn.BatchNorm1d(3, eps=1e-12)` in training mode on the batch as a `(4, 3)` tensor",
    r"Shift $x$ by $N = 5$: $x_2(n) = x(n - 5)$; see `coms573.q3.B`, CONV3-10, FC-3, 3(f), Q1.",
])
def test_ascii_maths_check_passes_typeset_texts(typeset):
    assert ascii_maths(typeset) == [], typeset


def test_matrices_are_row_major_lists_of_lists(answers):
    for key in ("csce421.q3.z_hat", "coms573.q3.A", "coms573.q3.B", "cs182.q2.c.y"):
        v = answers[key]["value"]
        assert isinstance(v, list) and all(isinstance(r, list) and len(r) == len(v[0]) for r in v), key


# --- CSCE-421 --------------------------------------------------------------------------------

def test_csce421_q1_against_conv2d(answers):
    g = answers["csce421.q1.params"]["givens"]
    h, w, c = g["input"]
    layer = torch.nn.Conv2d(c, g["filters"], g["kernel"][0], stride=g["stride"], padding=g["padding"])
    y = layer(torch.zeros(1, c, h, w))
    assert answers["csce421.q1.output_shape"]["value"] == [y.shape[2], y.shape[3], y.shape[1]]
    assert answers["csce421.q1.params"]["value"] == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("size", [31, 32, 33])
def test_csce421_q2_block_with_that_shortcut_runs_and_counts(answers, size):
    g = answers["csce421.q2.params"]["givens"]
    sc = answers["csce421.q2.shortcut"]["value"]
    c, convs = g["in_channels"], []
    for layer in g["main_path"]:
        convs.append(torch.nn.Conv2d(c, layer["out_channels"], layer["kernel"], stride=layer["stride"],
                                     padding=layer["kernel"] // 2, bias=False))
        c = layer["out_channels"]
    shortcut = torch.nn.Conv2d(g["in_channels"], sc["out_channels"], sc["kernel_size"], stride=sc["stride"], bias=False)
    x = torch.randn(1, g["in_channels"], size, size)
    main = torch.nn.Sequential(*convs)(x)
    assert main.shape == shortcut(x).shape  # the add is defined for this input size
    by_layer = answers["csce421.q2.params_by_layer"]["value"]
    assert list(by_layer.values()) == [m.weight.numel() for m in convs] + [shortcut.weight.numel()]
    assert answers["csce421.q2.params"]["value"] == sum(m.weight.numel() for m in [*convs, shortcut])


@pytest.mark.parametrize("prefix", ["csce421.q3", "coms573.q2"])
def test_batchnorm_arithmetic_against_batchnorm1d(answers, prefix):
    Z = np.asarray(answers[f"{prefix}.z_hat"]["givens"]["Z"], dtype=np.float64)  # (units, examples)
    gt = answers[f"{prefix}.z_tilde"]["givens"]
    x = torch.as_tensor(Z.T)
    bn = torch.nn.BatchNorm1d(Z.shape[0], eps=1e-12, dtype=torch.float64).train()
    np.testing.assert_allclose(answers[f"{prefix}.mu"]["value"], x.mean(0).numpy(), atol=ATOL)
    np.testing.assert_allclose(answers[f"{prefix}.var"]["value"], x.var(0, unbiased=False).numpy(), atol=ATOL)
    with torch.no_grad():
        np.testing.assert_allclose(answers[f"{prefix}.z_hat"]["value"], bn(x).numpy().T, atol=ATOL)
        bn.weight.copy_(torch.tensor(gt["gamma"]))
        bn.bias.copy_(torch.tensor(gt["beta"]))
        np.testing.assert_allclose(answers[f"{prefix}.z_tilde"]["value"], bn(x).numpy().T, atol=ATOL)


def test_train_vs_test_demonstration_matches_a_fresh_batchnorm(answers):
    demo = answers["csce421.q3.train_vs_test"]["demonstration"]["train_vs_eval"]
    Z = np.asarray(answers["csce421.q3.z_hat"]["givens"]["Z"], dtype=np.float64)
    x = torch.as_tensor(Z.T)
    bn = torch.nn.BatchNorm1d(Z.shape[0], eps=1e-12, momentum=demo["momentum"], dtype=torch.float64)
    with torch.no_grad():
        bn(x)
        np.testing.assert_allclose(demo["after_one_step"]["running_mean"], bn.running_mean.numpy(), atol=ATOL)
        np.testing.assert_allclose(demo["after_one_step"]["running_var"], bn.running_var.numpy(), atol=ATOL)
        bn.eval()
        np.testing.assert_allclose(demo["eval_output_after_one_step"], bn(x).numpy(), atol=ATOL)
    # converged: eval = train * sqrt((m-1)/m), because the running variance is the unbiased one
    m = Z.shape[1]
    np.testing.assert_allclose(demo["eval_over_train_ratio"], np.sqrt((m - 1) / m), atol=1e-6)
    np.testing.assert_allclose(demo["running_var_converged"], x.var(0, unbiased=True).numpy(), rtol=1e-6)


def test_batchnorm_claims_hold_in_torch():
    """The "why" answers' claims, on a fresh layer: eval outputs ignore the batch, train outputs do
    not, and training mode refuses a batch of one for BatchNorm1d but not for BatchNorm2d."""
    g = torch.Generator().manual_seed(0)
    bn = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    for _ in range(20):
        bn(torch.randn(16, 3, generator=g, dtype=torch.float64))
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        bn.eval()
        assert torch.equal(bn(x)[:1], bn(x[:1]))
        bn.train()
        assert not torch.allclose(bn(x)[:2], bn(x[:2]))
        with pytest.raises(ValueError):
            bn(x[:1])
        assert torch.isfinite(torch.nn.BatchNorm2d(3)(torch.randn(1, 3, 4, 4))).all()


# --- COM S 573 -------------------------------------------------------------------------------

def test_coms573_q1_against_torch_layers(answers):
    g = answers["coms573.q1.params"]["givens"]
    h, w, c = g["input"]
    x = torch.zeros(1, c, h, w, device="meta")
    params, macs, numel = [], [], [x.numel()]
    for layer in g["layers"]:
        conv = torch.nn.Conv2d(c, layer["out_channels"], layer["kernel"], stride=layer["stride"],
                               padding=g["padding"], bias=False, device="meta")
        x = conv(x)
        params.append(conv.weight.numel())
        macs.append(x.numel() * conv.weight[0].numel())  # one C_in*K*K dot product per output value
        numel.append(x.numel())
        c = layer["out_channels"]
    assert answers["coms573.q1.params"]["value"] == sum(params)
    assert answers["coms573.q1.mult_adds"]["value"] == sum(macs)
    change = 100 * (numel[-1] - numel[0]) / numel[0]
    assert answers["coms573.q1.memory_change_percent"]["value"] == pytest.approx(change)


def test_coms573_q3_A_B_and_backward_convolution_against_autograd(answers):
    A, B = answers["coms573.q3.A"]["value"], answers["coms573.q3.B"]["value"]
    kernels = answers["coms573.q3.backward_kernels"]["value"]
    pad = answers["coms573.q3.backward_padding"]["value"]
    g = answers["coms573.q3.A"]["givens"]
    c_in, length = len(g["X"]), len(g["X"][0])
    c_out, k = g["out_channels"], g["kernel"]
    assert B == [list(r) for r in zip(*A)]                     # B = A^T, symbol by symbol
    assert answers["coms573.q3.is_convolution"]["value"] is True
    gen = torch.Generator().manual_seed(1234)
    for _ in range(3):
        w = torch.randn(c_out, c_in, k, dtype=torch.float64, generator=gen)
        x = torch.randn(1, c_in, length, dtype=torch.float64, generator=gen, requires_grad=True)
        y = F.conv1d(x, w)
        dy = torch.randn(y.shape, dtype=torch.float64, generator=gen)
        (dx,) = torch.autograd.grad(y, x, dy)
        W = w.numpy()
        np.testing.assert_allclose(numeric(A, W) @ x.detach().numpy().ravel(), y.detach().numpy().ravel(), atol=ATOL)
        np.testing.assert_allclose(numeric(B, W) @ dy.numpy().ravel(), dx.numpy().ravel(), atol=ATOL)
        kb = np.stack([numeric(K, W) for K in kernels])         # (C_in, C_out, K)
        np.testing.assert_allclose(F.conv1d(dy, torch.as_tensor(kb), padding=pad).numpy(), dx.numpy(), atol=ATOL)


def test_coms573_strided_backward_demo_is_zero_error(answers):
    d = answers["coms573.q3.strided_backward"]["demonstration"]
    transposed_length = (d["output_length"] - 1) * d["stride"] - 2 * d["padding"] + d["kernel"]
    assert d["output_padding"] == d["length"] - transposed_length
    assert max(v for k, v in d.items() if k.startswith("max_abs_error")) < 1e-12


def test_coms573_q4a_against_the_question_and_lenet_plain(answers):
    """4(a) built again from the question's words with torch.nn, and the project's lenet_plain."""
    from pipeline.model import LeNet, get_variant

    entry = answers["coms573.q4.a.architecture"]
    g, v = entry["givens"], entry["value"]
    c, h, w = g["input_CHW"]
    k, pool = g["kernel"], g["pool"]
    features = torch.nn.Sequential(
        torch.nn.Conv2d(c, g["conv_channels"][0], k), torch.nn.ReLU(), torch.nn.MaxPool2d(pool),
        torch.nn.Conv2d(g["conv_channels"][0], g["conv_channels"][1], k), torch.nn.ReLU(),
        torch.nn.MaxPool2d(pool), torch.nn.Flatten())
    n_flat = features(torch.zeros(1, c, h, w)).shape[1]
    head = [torch.nn.Linear(n_flat, g["fc_units"][0]), torch.nn.ReLU(),
            torch.nn.Linear(g["fc_units"][0], g["fc_units"][1]), torch.nn.ReLU(),
            torch.nn.Linear(g["fc_units"][1], g["n_classes"])]
    net = torch.nn.Sequential(*features, *head)
    x, shapes = torch.zeros(1, c, h, w), []
    for m in net:
        x = m(x)
        shapes.append(list(x.shape[1:]))
    assert [name.split("(")[0] for name in v["layers"]] == [type(m).__name__ for m in net]
    assert v["output_shapes"] == shapes
    assert v["params_by_layer"] == [sum(p.numel() for p in m.parameters()) for m in net]
    assert v["total_params"] == sum(p.numel() for p in net.parameters())
    plain = get_variant(entry["check_result"]["variant"])
    assert not plain.batch_norm and plain.dropout == 0                 # 4(a): no BN, no dropout
    model = LeNet(n_classes=g["n_classes"], batch_norm=False, dropout=0.0)
    assert v["total_params"] == sum(p.numel() for p in model.parameters())
    assert entry["check_result"]["agrees"] is True


@pytest.mark.parametrize("kwargs", [{"variant": "lenet_bn_dropout"}, {"fc_units": (100, 84)}, {"pool": 3}])
def test_coms573_q4a_check_fails_when_question_and_model_differ(kwargs):
    entry = coms573.q4a(**kwargs)["coms573.q4.a.architecture"]
    assert entry["check_result"]["agrees"] is False


# --- CS182 -----------------------------------------------------------------------------------

def test_cs182_q1a_against_batchnorm1d(answers):
    g = answers["cs182.q1.a.mean"]["givens"]
    x = torch.randn(100_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    x = x * g["var"] ** 0.5 + g["mean"]
    bn = torch.nn.BatchNorm1d(1, eps=1e-12, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.fill_(g["gamma"])
        bn.bias.fill_(g["beta"])
        y = bn(x)
    assert answers["cs182.q1.a.mean"]["value"] == pytest.approx(y.mean().item(), abs=1e-9)
    assert answers["cs182.q1.a.std"]["value"] == pytest.approx(y.std(unbiased=False).item(), abs=1e-9)


def test_cs182_q1b_against_batchnorm1d(answers):
    g = answers["cs182.q1.b.cov"]["givens"]
    x = np.random.default_rng(7).multivariate_normal(g["mean"], g["cov"], size=200_000)
    with torch.no_grad():
        y = torch.nn.BatchNorm1d(2, eps=1e-12, dtype=torch.float64)(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(answers["cs182.q1.b.mean"]["value"], y.mean(0), atol=ATOL)
    np.testing.assert_allclose(answers["cs182.q1.b.cov"]["value"], np.cov(y.T, bias=True), atol=SAMPLE_ATOL)


def test_cs182_q2ab_against_numpy_convolve(answers):
    g = answers["cs182.q2.a.y"]["givens"]
    n, x, h = np.asarray(g["n"]), np.asarray(g["x"]), np.asarray(g["h"])
    full = np.convolve(x, h)  # starts at n = 0 + h_start
    idx = n - g["h_start"]
    ref = np.where((idx >= 0) & (idx < full.size), full[np.clip(idx, 0, full.size - 1)], 0)
    np.testing.assert_allclose(answers["cs182.q2.a.y"]["value"], ref)
    gb = answers["cs182.q2.b.y2"]["givens"]
    n2, shift = np.asarray(gb["n"]), gb["N"]
    idx2 = n2 - shift - g["h_start"]
    ref2 = np.where((idx2 >= 0) & (idx2 < full.size), full[np.clip(idx2, 0, full.size - 1)], 0)
    np.testing.assert_allclose(answers["cs182.q2.b.y2"]["value"], ref2)
    assert answers["cs182.q2.b.property"]["check_result"]["holds"] is True


@pytest.mark.parametrize("key", ["cs182.q2.c.y", "cs182.q2.d.stride1_pad1", "cs182.q2.d.stride2_pad1"])
def test_cs182_q2cd_against_scipy_and_conv2d(answers, key):
    g = answers[key]["givens"]
    x, h, s, p = np.asarray(g["x"], float), np.asarray(g["h"], float), g["stride"], g["padding"]
    ref = scipy.signal.convolve2d(np.pad(x, p), h, mode="valid")[::s, ::s]   # eq. 2: a true convolution
    np.testing.assert_allclose(answers[key]["value"], ref)
    flipped = F.conv2d(torch.as_tensor(x)[None, None], torch.as_tensor(h).flip(0, 1)[None, None], stride=s, padding=p)
    np.testing.assert_allclose(answers[key]["value"], flipped[0, 0].numpy())


def _formula(text: str):
    symbols = {n: sp.Symbol(n, positive=True, integer=True) for n in "WHCKPSFL"}
    return sp.lambdify(list(symbols.values()), sp.sympify(text, locals=symbols | {"floor": sp.floor}))


@pytest.mark.parametrize("w,h,c,k,p,s,f", [(28, 28, 1, 3, 1, 1, 10), (17, 9, 2, 4, 2, 3, 5), (6, 11, 3, 1, 0, 2, 7)])
def test_cs182_q3ab_formulas_against_conv2d_and_maxpool(answers, w, h, c, k, p, s, f):
    args = dict(W=w, H=h, C=c, K=k, P=p, S=s, F=f, L=1)
    ev = {key: [int(_formula(t)(**args)) for t in (answers[key]["value"] if isinstance(answers[key]["value"], list)
                                                   else [answers[key]["value"]])]
          for key in ("cs182.q3.a.weights", "cs182.q3.a.biases", "cs182.q3.a.output_shape", "cs182.q3.b.output_shape")}
    layer = torch.nn.Conv2d(c, f, k, stride=s, padding=p)
    y = layer(torch.zeros(1, c, h, w))
    pooled = torch.nn.MaxPool2d(k, s)(torch.zeros(1, c, h, w))
    assert ev["cs182.q3.a.weights"] == [layer.weight.numel()]
    assert ev["cs182.q3.a.biases"] == [layer.bias.numel()]
    assert ev["cs182.q3.a.output_shape"] == [y.shape[3], y.shape[2], y.shape[1]]     # W x H x C
    assert ev["cs182.q3.b.output_shape"] == [pooled.shape[3], pooled.shape[2], pooled.shape[1]]


def _measured_rf(layers) -> int:
    """Input positions reached by the gradient of one centre output (all-ones kernels)."""
    x = torch.zeros(1, 1, 200, dtype=torch.float64, requires_grad=True)
    y = x + 1
    for kind, k, s in layers:
        y = F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s) if kind == "conv" else F.avg_pool1d(y, k, s)
    y[0, 0, y.shape[-1] // 2].backward()
    hit = torch.nonzero(x.grad[0, 0]).ravel()
    return int(hit.max() - hit.min() + 1)


@pytest.mark.parametrize("n_layers,k", [(1, 3), (3, 3), (4, 5), (6, 2)])
def test_cs182_q3c_receptive_field_formula_against_autograd(answers, n_layers, k):
    rf = int(_formula(answers["cs182.q3.c.receptive_field"]["value"])(W=1, H=1, C=1, K=k, P=0, S=1, F=1, L=n_layers))
    assert rf == _measured_rf([("conv", k, 1)] * n_layers)


def test_cs182_q3d_against_autograd_and_flop_counter(answers):
    v = answers["cs182.q3.d.receptive_field"]["value"]
    assert v["conv_conv"] == _measured_rf([("conv", 3, 1)] * 2)
    assert v["conv_pool_conv"] == _measured_rf([("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)])
    g = answers["cs182.q3.d.compute_ratio"]["givens"]
    from torch.utils.flop_counter import FlopCounterMode

    def flops(c, size):
        with FlopCounterMode(display=False) as fc:
            torch.nn.Conv2d(c, c, g["kernel"], padding=1, device="meta")(torch.zeros(1, c, size, size, device="meta"))
        return fc.get_total_flops()
    base = flops(g["channels"], g["size"])
    r = answers["cs182.q3.d.compute_ratio"]["value"]
    assert r["same_channels"] == pytest.approx(flops(g["channels"], g["size"] // g["pool"]) / base)
    assert r["doubled_channels"] == pytest.approx(flops(2 * g["channels"], g["size"] // g["pool"]) / base)


def test_cs182_q3e_table_against_torch_network(answers):
    net = [torch.nn.Conv2d(1, 10, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.Conv2d(10, 10, 3, padding=1),
           torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(490, 3)]  # the table's layers
    a = torch.zeros(1, 1, 28, 28)
    params, shapes = [0], [[28, 28, 1]]
    for m in net:
        a = m(a)
        params.append(sum(p.numel() for p in m.parameters()))
        shapes.append([a.shape[2], a.shape[3], a.shape[1]] if a.dim() == 4 else [a.shape[1]])
    assert answers["cs182.q3.e.params"]["value"] == params
    assert answers["cs182.q3.e.activations"]["value"] == shapes
    rows = answers["cs182.q3.e.params"]["givens"]["rows"]
    assert rows[1:] == ["CONV3-10", "POOL2", "CONV3-10", "POOL2", "FLATTEN", "FC-3"]


def _gap_net(seed: int, padding: str) -> torch.nn.Sequential:
    """CS182 3(f)'s CONV2-3 -> ReLU -> CONV2-3 -> ReLU -> GAP, written again here: "torus" wraps one
    row and column before the image (F.pad), "torch" is torch's padding=1 circular on both sides."""
    torch.manual_seed(seed)
    if padding == "torus":
        c1, c2 = torch.nn.Conv2d(1, 3, 2), torch.nn.Conv2d(3, 3, 2)
        wrap = [lambda x: F.pad(x, (1, 0, 1, 0), mode="circular")] * 2
    else:
        c1, c2 = (torch.nn.Conv2d(c, 3, 2, padding=1, padding_mode="circular") for c in (1, 3))
        wrap = [lambda x: x] * 2
    c1, c2 = c1.double(), c2.double()

    def net(x):  # (N, 1, H, W) -> (N, 3)
        with torch.no_grad():
            return torch.relu(c2(wrap[1](torch.relu(c1(wrap[0](x)))))).mean(dim=(2, 3))
    return net


def _g(net, img) -> np.ndarray:
    return net(torch.as_tensor(np.asarray(img, dtype=np.float64))[None, None])[0].numpy()


@pytest.mark.parametrize("name", ["g3", "g4"])
@pytest.mark.parametrize("padding", ["torus", "torch"])
def test_cs182_q3f_invariance_with_circular_padding(answers, name, padding):
    entry = answers[f"cs182.q3.f.{name}"]
    img = np.asarray(entry["givens"][f"x{name[1]}"])
    ref = np.asarray(entry["givens"][f"x{entry['value'][1]}"])
    for seed in (20, 21, 22):  # draws the answer did not use
        net = _gap_net(seed, padding)
        np.testing.assert_allclose(_g(net, img), _g(net, ref), atol=SHIFT_TOL, rtol=0)
    assert entry["latex"] == f"g_{name[1]} = g_{entry['value'][1]}"


def test_cs182_q3f_seam_caveat_numbers_are_reproduced(answers):
    """The draws in which a shift of the line onto the border changes g (torch's circular padding),
    and the torus's exact invariance, measured again with the nets written above."""
    entry = answers["cs182.q3.f.seam_caveat"]
    demo, n = entry["demonstration"], entry["demonstration"]["draws"]
    x1, x2 = (np.asarray(entry["givens"][k]) for k in ("x1", "x2"))
    counted = {"x1": {}, "x2": {}}
    for seed in range(n):
        torus, wrapped = _gap_net(seed, "torus"), _gap_net(seed, "torch")
        for name, img, axis in (("x1", x1, 0), ("x2", x2, 1)):
            index = int(np.flatnonzero(img.any(axis=1 - axis))[0])  # the row (column) of the line
            for d in range(img.shape[axis]):
                moved = np.roll(img, d, axis=axis)
                assert np.abs(_g(torus, moved) - _g(torus, img)).max() <= SHIFT_TOL
                if (index + d) % img.shape[axis] in (0, img.shape[axis] - 1):
                    changed = np.abs(_g(wrapped, moved) - _g(wrapped, img)).max() > SHIFT_TOL
                    key = str((index + d) % img.shape[axis])
                    counted[name][key] = counted[name].get(key, 0) + int(changed)
    assert counted == demo["torch"]["border_shift_draws_changed"]
    assert entry["check_result"]["agrees"] is True and all(entry["check_result"]["claims_held"])
    for name, by_row in counted.items():  # the value states these counts
        assert all(f"{k} (" in entry["value"] for k in map(str, by_row.values()))


def test_cs182_q3f_seam_check_fails_when_the_torus_is_zero_padded():
    """The check can fail: zero padding in place of the torus breaks the invariance it claims."""
    def make_net(seed, padding):
        return cs182.q3f_net(seed, "zeros" if padding == "torus" else padding)
    result = cs182.q3f_seam(make_net=make_net)["cs182.q3.f.seam_caveat"]["check_result"]
    assert result["agrees"] is False and result["claims_held"][0] is False


class _Ramp(torch.nn.Module):
    """Weights the pixels by their position: no longer shift invariant."""

    def forward(self, x):  # (N, 1, H, W)
        return x * torch.linspace(0.5, 1.5, x.shape[-2], dtype=x.dtype)[:, None]


def test_cs182_q3f_checks_fail_for_a_position_dependent_model():
    def make_net(seed, padding):
        return torch.nn.Sequential(_Ramp(), cs182.q3f_net(seed, padding))
    g = cs182.q3f(seeds=(0, 1, 2), make_net=make_net)
    assert g["cs182.q3.f.g3"]["check_result"]["agrees"] is False       # x3 is x1 moved down 2 rows
    seam = cs182.q3f_seam(seeds=(0, 1, 2), make_net=make_net)["cs182.q3.f.seam_caveat"]
    assert seam["check_result"]["agrees"] is False


def test_cs182_q5b_backward_against_autograd(answers):
    assert answers["cs182.q5.b.dx"]["check_result"]["max_abs_error"] < 1e-10


# --- errata ------------------------------------------------------------------------------------

def test_errata_entries_are_complete_and_decided(answers):
    entries = answers["errata"]["value"]
    assert {e["id"] for e in entries} >= {"coms573-1b-input-width", "coms573-1c-memory",
                                          "coms573-3a-output-labels", "coms573-3c-padding",
                                          "coms573-3c-second-kernel"}
    for e in entries:
        assert {"id", "source", "where", "kind", "says", "right", "check", "check_result", "answer"} <= set(e)
        assert e["check_result"]["agrees"] is True, e["id"]
    assert answers["errata"]["extraction"]  # damage judged the extraction's: notes, not entries


def test_erratum_second_kernel_unreversed_is_wrong_by_autograd():
    """The solution's kernel for dL/dx2 (transcribed from seed 002) misses autograd; reversed, it fits."""
    says = [["w1^21", "w2^21", "w3^21"], ["w1^22", "w2^22", "w3^22"]]
    reversed_ = [row[::-1] for row in says]
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(2, 2, 3, dtype=torch.float64, generator=gen)
    x = torch.randn(1, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    y = F.conv1d(x, w)
    dy = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    (dx,) = torch.autograd.grad(y, x, dy)

    def row2(kernel):
        return F.conv1d(dy, torch.as_tensor(numeric(kernel, w.numpy()))[None], padding=2)[0, 0]
    assert not torch.allclose(row2(says), dx[0, 1])
    torch.testing.assert_close(row2(reversed_), dx[0, 1])


def test_erratum_memory_stage_two_by_tensor_sizes(answers):
    g = answers["coms573.q1.params"]["givens"]
    h, w, c = g["input"]
    x = torch.zeros(1, c, h, w, device="meta")
    sizes = [x.numel()]
    for layer in g["layers"]:
        x = torch.nn.Conv2d(x.shape[1], layer["out_channels"], layer["kernel"], stride=layer["stride"],
                            padding=g["padding"], device="meta")(x)
        sizes.append(x.numel())
    e = next(e for e in answers["errata"]["value"] if e["id"] == "coms573-1c-memory")
    assert e["check_result"]["stage_output_over_input_percent"] == [100 * b / a for a, b in zip(sizes, sizes[1:])]
