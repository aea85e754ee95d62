"""Property tests for the shared maths (pipeline/answers/conv.py, batchnorm.py) against torch, and
the refusals of impossible givens.

Hypothesis draws random shapes; each formula is compared with a real torch layer, torch's FLOP
counter, torch.nn.functional or autograd in float64 (micrograd's habit: compute it twice). Every
function a user can hand bad givens to must raise a ValueError (UserError) with one sentence.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from pipeline.answers import batchnorm as bn
from pipeline.answers import conv, coms573, cs182, csce421, single_thread
from pipeline.errors import UserError

ATOL = 1e-9
REL_ERROR = 1e-7   # centred-difference gradient check, float64
EXAMPLES = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: torch's thread pool only adds contention."""
    with single_thread():
        yield


def rel_error(a, b) -> float:
    """cs231n's relative error: max |a - b| / max(|a| + |b|), guarded against 0/0."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b))))


@st.composite
def conv_case(draw):
    """(size, kernel, stride, padding, dilation) with a kernel that fits the padded input."""
    size = draw(st.integers(1, 40))
    padding = draw(st.integers(0, 4))
    dilation = draw(st.integers(1, 3))
    max_k = (size + 2 * padding - 1) // dilation + 1
    kernel = draw(st.integers(1, max(1, min(max_k, 9))))
    return size, kernel, draw(st.integers(1, 5)), padding, dilation


# --- conv.py -------------------------------------------------------------------------------------

@EXAMPLES
@given(conv_case(), st.integers(1, 4), st.integers(1, 4))
def test_conv_output_size_and_params_match_conv2d(case, c_in, c_out):
    size, k, s, p, d = case
    layer = torch.nn.Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, device="meta")
    y = layer(torch.zeros(1, c_in, size, size + 3, device="meta"))
    assert conv.conv_output_size(size, k, s, p, d) == y.shape[2]
    assert conv.conv_output_size(size + 3, k, s, p, d) == y.shape[3]
    assert conv.conv_params(c_in, c_out, k) == sum(q.numel() for q in layer.parameters())
    assert conv.conv_params(c_in, c_out, k, bias=False) == layer.weight.numel()


@EXAMPLES
@given(st.integers(3, 24), st.integers(1, 3), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 6))
def test_conv_mult_adds_match_flop_counter(size, k, c_in, s, p, c_out):
    layer = torch.nn.Conv2d(c_in, c_out, k, stride=s, padding=p, bias=False, device="meta")
    with FlopCounterMode(display=False) as counter:
        y = layer(torch.zeros(1, c_in, size, size, device="meta"))
    assert conv.conv_mult_adds(c_in, c_out, k, y.shape[2], y.shape[3]) * 2 == counter.get_total_flops()


@EXAMPLES
@given(st.integers(2, 30), st.integers(2, 30), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_pool_output_shape_matches_maxpool2d(h, w, c, k, s):
    if k > min(h, w):
        return
    y = torch.nn.MaxPool2d(k, s)(torch.zeros(1, c, h, w))
    assert conv.pool2d_output_shape(h, w, c, k, s) == (y.shape[2], y.shape[3], y.shape[1])


@EXAMPLES
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), min_size=1, max_size=4))
def test_receptive_field_matches_autograd(layers):
    r, _ = conv.receptive_field(layers)[-1]
    length = 4 * r + 40
    x = torch.zeros(1, 1, length, dtype=torch.float64, requires_grad=True)
    y = x + 1
    for k, s in layers:
        if y.shape[-1] < k:
            return
        y = F.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    y[0, 0, y.shape[-1] // 2].backward()
    hit = torch.nonzero(x.grad[0, 0]).ravel()
    assert int(hit.max() - hit.min() + 1) == r  # the span: with stride > kernel there are gaps inside


@st.composite
def conv1d_case(draw):
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    length, padding = draw(st.integers(1, 9)), draw(st.integers(0, 2))
    kernel = draw(st.integers(1, length + 2 * padding))
    stride = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 16))
    return c_in, c_out, length, kernel, stride, padding, seed


@EXAMPLES
@given(conv1d_case())
def test_conv1d_matrix_numeric_and_symbolic_match_conv1d(case):
    c_in, c_out, length, k, s, p, seed = case
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, k, dtype=torch.float64, generator=gen)
    x = torch.randn(c_in, length, dtype=torch.float64, generator=gen)
    y = F.conv1d(x[None], w, stride=s, padding=p)[0]
    A = conv.conv1d_matrix(w.numpy(), length, s, p)
    np.testing.assert_allclose(A @ x.numpy().ravel(), y.numpy().ravel(), atol=ATOL)
    sym = conv.conv1d_matrix_symbols(c_in, c_out, k, length, s, p)
    np.testing.assert_allclose(conv.symbols_to_numbers(sym, w.numpy()), A, atol=0)


@EXAMPLES
@given(conv1d_case())
def test_conv1d_backward_as_convolution_matches_autograd_and_conv_transpose(case):
    c_in, c_out, length, k, s, p, seed = case
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, k, dtype=torch.float64, generator=gen)
    x = torch.randn(1, c_in, length, dtype=torch.float64, generator=gen, requires_grad=True)
    y = F.conv1d(x, w, stride=s, padding=p)
    dy = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    (dx,) = torch.autograd.grad(y, x, dy)
    ours = conv.conv1d_backward_as_conv(dy[0].numpy(), w.numpy(), length, s, p)
    np.testing.assert_allclose(ours, dx[0].numpy(), atol=ATOL)
    np.testing.assert_allclose(conv.conv1d_matrix(w.numpy(), length, s, p).T @ dy.numpy().ravel(),
                               dx.numpy().ravel(), atol=ATOL)      # B = A^T
    if s == 1 and p <= k - 1:  # the stride-1 kernels and "full" padding of COM S 573 3(c)
        kb = torch.as_tensor(conv.backward_kernels(w.numpy()))
        np.testing.assert_allclose(F.conv1d(dy, kb, padding=conv.backward_padding(k, p)).numpy(),
                                   dx.numpy(), atol=ATOL)
    out_pad = length - ((y.shape[-1] - 1) * s - 2 * p + k)
    if 0 <= out_pad < s:  # torch's constraint on output_padding
        np.testing.assert_allclose(F.conv_transpose1d(dy, w, stride=s, padding=p, output_padding=out_pad).numpy(),
                                   dx.numpy(), atol=ATOL)


@EXAMPLES
@given(st.integers(3, 8), st.integers(3, 8), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
       st.integers(0, 2 ** 16))
def test_conv2d_fir_matches_scipy_convolve2d(h, w, k, s, p, seed):
    rng = np.random.default_rng(seed)
    x, kern = rng.normal(size=(h, w)), rng.normal(size=(k, k))
    ref = scipy.signal.convolve2d(np.pad(x, p), kern, mode="valid")[::s, ::s]
    np.testing.assert_allclose(conv.conv2d_fir(x, kern, s, p), ref, atol=ATOL)


@EXAMPLES
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=8), st.lists(st.floats(-5, 5), min_size=1, max_size=6),
       st.integers(-4, 4), st.integers(-4, 4))
def test_fir1d_matches_numpy_convolve(x, h, x0, h0):
    n0, n1 = -12, 20
    full = np.convolve(x, h)  # first sample at x0 + h0
    ref = [full[n - x0 - h0] if 0 <= n - x0 - h0 < full.size else 0.0 for n in range(n0, n1 + 1)]
    np.testing.assert_allclose(conv.fir1d(x, x0, h, h0, n0, n1), ref, atol=ATOL)


@EXAMPLES
@given(st.integers(0, 10 ** 12), st.lists(st.integers(1, 999), min_size=1, max_size=4))
def test_tex_numbers_read_back(n, dims):
    assert int(conv.tex_int(n).replace("{,}", "")) == n and "," not in conv.tex_int(n).replace("{,}", "")
    assert [int(d) for d in conv.tex_dims(*dims).split(r" \times ")] == dims


# --- batchnorm.py --------------------------------------------------------------------------------

@EXAMPLES
@given(st.integers(2, 16), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_batchnorm_forward_matches_batchnorm1d_and_backward_matches_autograd(n, d, seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.normal(3, 2, (n, d)), rng.normal(1, 0.3, d), rng.normal(0, 1, d)
    dout = rng.normal(size=(n, d))
    eps = 1e-5
    out, cache = bn.batchnorm_forward(x, gamma, beta, eps)
    layer = torch.nn.BatchNorm1d(d, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(gamma))
        layer.bias.copy_(torch.as_tensor(beta))
    xt = torch.tensor(x, requires_grad=True)
    y = layer(xt)
    np.testing.assert_allclose(out, y.detach().numpy(), atol=ATOL)
    y.backward(torch.as_tensor(dout))
    dx, dgamma, dbeta = bn.batchnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=ATOL)
    np.testing.assert_allclose(dgamma, layer.weight.grad.numpy(), atol=ATOL)
    np.testing.assert_allclose(dbeta, layer.bias.grad.numpy(), atol=ATOL)


def test_batchnorm_backward_centred_differences():
    rng = np.random.default_rng(3)
    x, gamma, beta, dout = rng.normal(size=(6, 4)), rng.normal(size=4), rng.normal(size=4), rng.normal(size=(6, 4))
    _, cache = bn.batchnorm_forward(x, gamma, beta, 1e-5)
    dx, _, _ = bn.batchnorm_backward(dout, cache)
    h, num = 1e-5, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = ((bn.batchnorm_forward(xp, gamma, beta, 1e-5)[0] - bn.batchnorm_forward(xm, gamma, beta, 1e-5)[0])
                    * dout).sum() / (2 * h)
    assert rel_error(dx, num) < REL_ERROR


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_stats_rule_matches_batchnorm1d(momentum):
    rng = np.random.default_rng(0)
    batches = rng.normal(2, 3, size=(25, 5, 3))
    layer = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        for b in batches:
            layer(torch.as_tensor(b))
    means, variances = bn.running_stats(batches, momentum)
    np.testing.assert_allclose(means[-1], layer.running_mean.numpy(), atol=ATOL)
    np.testing.assert_allclose(variances[-1], layer.running_var.numpy(), atol=ATOL)
    layer.eval()
    x = rng.normal(size=(4, 3))
    with torch.no_grad():
        np.testing.assert_allclose(bn.batchnorm_eval(x, means[-1], variances[-1]),
                                   layer(torch.as_tensor(x)).numpy(), atol=ATOL)


# --- impossible givens -------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: conv.conv_output_size(-3, 3),                          # negative size
    lambda: conv.conv_output_size(0, 1),                           # empty input
    lambda: conv.conv_output_size(4, 7, 1, 1),                     # kernel wider than the padded input
    lambda: conv.conv_output_size(5, 3, 0),                        # zero stride
    lambda: conv.conv_output_size(5, 3, 1, -1),                    # negative padding
    lambda: conv.conv_output_size(64, 3, 2, 1, exact=True),        # stride does not tile exactly
    lambda: conv.conv_output_size(5.0, 3),                         # not a whole number
    lambda: conv.conv_output_size(True, 1),                        # a bool is not a size
    lambda: conv.conv_params(0, 4, 3),
    lambda: conv.conv2d_output_shape(8, 8, 4, (3, 3, 3)),          # a kernel is one or two numbers
    lambda: conv.receptive_field([(3, 0)]),
    lambda: conv.backward_padding(3, 5),
    lambda: conv.conv1d_matrix(np.zeros((2, 3)), 4),
    lambda: conv.conv1d_backward_as_conv(np.zeros((2, 5)), np.zeros((2, 2, 3)), 4),
    lambda: conv.fir1d([1.0], 0, [1.0], 0, 5, 2),
    lambda: conv.conv2d_fir(np.zeros(5), np.zeros((3, 3))),
    lambda: bn.batchnorm_forward(np.array([[1.0, 2.0], [1.0, 3.0]])),  # a unit with zero variance, eps = 0
    lambda: bn.batchnorm_forward(np.zeros((0, 3))),
    lambda: bn.batchnorm_forward(np.ones((3, 2)), gamma=[1, 2, 3]),
    lambda: bn.batchnorm_forward(np.ones((3, 2)), eps=-1),
    lambda: bn.running_stats(np.zeros((4, 1, 3))),                 # unbiased variance of one example
    lambda: csce421.q1(filter_depth=4),                            # filter does not span the input depth
    lambda: csce421.q1(h=2, kernel=5, padding=1),
    lambda: csce421.q2(main_path=((2, 256, 2), (3, 256, 1))),       # even kernel: no 'same' padding
    lambda: csce421.bn_answers("x", z=((1,), (2,), (3,))),          # a batch of one
    lambda: coms573.q1(size=-64),
    lambda: cs182.q1a(var=0.0),
    lambda: cs182.q1b(cov=((1.0, 2.0), (2.0, 1.0))),                # not positive definite
    lambda: cs182.q1b(cov=((1.0, 0.5), (0.4, 1.0))),                # not symmetric
    lambda: cs182.q2ab(L=0),
    lambda: cs182.q2ab(h=[]),
    lambda: cs182.q3e(layers=(("fc", 3),)),                         # FC before FLATTEN
    lambda: cs182.q3e(layers=(("conv", 10), ("dense", 3))),
    lambda: cs182.q3f(x3=np.eye(7)),                                # not a shift of x1 or x2
    lambda: cs182.q3f_net(0, "reflect"),                            # not one of the paddings studied
    lambda: cs182.q3f_seam(x1=np.eye(7)),                           # the seam study needs line images
    lambda: coms573.q4a(input_shape=(3, 4, 4)),                     # a 5x5 kernel on a 4x4 image
    lambda: coms573.q4a(n_classes=0),
])
def test_impossible_givens_raise_one_clear_sentence(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.endswith(".") and message.count(". ") == 0, message
