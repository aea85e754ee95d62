"""pipeline.numpy_layers checked twice: every backward against centred finite differences in
float64, and every forward and backward against PyTorch float64 on the same inputs. Also the
naive convolution against im2col, the two batch-norm backward forms against each other, BN_GRAPH
against the forward code, dropout's statistics, and the shape errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline import numpy_layers as L
from pipeline.numpy_bench import conv_timings

# Centred differences in float64 with h = 1e-5 are accurate to ~h^2 * f''' plus rounding
# ~1e-16 / h; on these O(1) inputs the worst elementwise relative error is ~1e-9 to 1e-8.
GRADCHECK_TOL = 1e-7
# Against torch in float64 only the summation order differs: errors ~1e-15 of the largest value.
# Measured relative to the largest reference value, since an elementwise ratio is meaningless for
# entries that are zero up to rounding (batch-norm's dx sums to zero over the batch).
TORCH_TOL = 1e-12


def scaled_error(ours, ref) -> float:
    """max |ours - ref| / max |ref|: the error relative to the size of the reference."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300))


def t64(a) -> torch.Tensor:
    """A float64 leaf tensor copy of a NumPy array, gradient required."""
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def away_from_zero(rng, shape, margin=0.1):
    """Normal values with |v| >= margin: finite differences must not step across ReLU's kink."""
    v = rng.standard_normal(shape)
    return np.where(np.abs(v) < margin, np.sign(v + 1e-12) * margin + v, v)


def distinct(rng, shape):
    """A shuffled grid of values at least 0.05 apart: no max-pool window has a near tie that a
    finite-difference step of 1e-5 could flip."""
    return rng.permutation(np.arange(np.prod(shape)) * 0.05 - 1.0).reshape(shape)


def assert_gradcheck(analytic, f, at, dout):
    """The analytic gradient against centred differences of f around `at`, upstream dout."""
    err = L.rel_error(analytic, L.eval_numerical_gradient_array(f, at, dout))
    assert err < GRADCHECK_TOL, err


# --- the gradient-check helpers themselves ---------------------------------------------------------

def test_rel_error_is_elementwise_and_scale_free():
    assert L.rel_error(np.array([1.0, 100.0]), np.array([1.0, 100.0])) == 0.0
    assert L.rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    # one bad small entry is not hidden by a large one
    assert L.rel_error(np.array([1e3, 1e-3]), np.array([1e3, 2e-3])) == pytest.approx(1 / 3)


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    df = np.array([[1.0, 2.0], [-1.0, 0.5]])
    x_before = x.copy()
    num = L.eval_numerical_gradient_array(lambda v: v ** 3, x, df)
    assert L.rel_error(num, 3 * x ** 2 * df) < GRADCHECK_TOL
    assert np.array_equal(x, x_before)  # the caller's array is not perturbed


# --- affine, ReLU ----------------------------------------------------------------------------------

def test_affine_gradcheck_and_torch():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((8, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert_gradcheck(dx, lambda v: L.affine_forward(v, w, b)[0], x, dout)
    assert_gradcheck(dw, lambda v: L.affine_forward(x, v, b)[0], w, dout)
    assert_gradcheck(db, lambda v: L.affine_forward(x, w, v)[0], b, dout)

    tx, tw, tb = t64(x), t64(w), t64(b)
    ref = F.linear(tx.reshape(3, -1), tw.T, tb)  # torch stores (M, D); ours is (D, M)
    ref.backward(torch.from_numpy(dout))
    assert scaled_error(out, ref.detach()) < TORCH_TOL
    for ours, t in ((dx, tx), (dw, tw), (db, tb)):
        assert scaled_error(ours, t.grad) < TORCH_TOL


def test_relu_gradcheck_and_torch():
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (4, 5))
    x[0, 0] = 0.0  # exactly at the kink: torch's gradient there is 0, ours must agree
    out, cache = L.relu_forward(x)
    dout = rng.standard_normal(x.shape)
    dx = L.relu_backward(dout, cache)
    xs = x.copy()
    xs[0, 0] = 0.5  # finite differences only away from the kink
    assert_gradcheck(L.relu_backward(dout, L.relu_forward(xs)[1]), lambda v: L.relu_forward(v)[0], xs, dout)
    tx = t64(x)
    ref = F.relu(tx)
    ref.backward(torch.from_numpy(dout))
    assert np.array_equal(out, ref.detach().numpy())
    assert np.array_equal(dx, tx.grad.numpy())
    assert dx[0, 0] == 0.0


def test_affine_rejects_mismatched_weights():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"\(12, M\)"):
        L.affine_forward(x, np.zeros((10, 5)), np.zeros(5))
    with pytest.raises(ValueError):
        L.affine_forward(x, np.zeros((12, 5)), np.zeros(4))


# --- dropout ---------------------------------------------------------------------------------------

P_DROP = 0.3
SAMPLE = 200_000  # elements in the statistical checks
# Each kept element contributes 1/(1-p) and each dropped one 0, so the sample mean of the output
# on an all-ones input has standard deviation sqrt(p (1-p) / n) / (1-p) ~ 1.5e-3 here, and the
# dropped fraction sqrt(p (1-p) / n) ~ 1.0e-3. Five standard deviations: a correct layer fails
# with probability < 1e-6 per seed, while any wrong convention (no 1/(1-p) scaling: mean 0.7;
# p read as the keep probability: dropped fraction 0.7) misses by hundreds of them.
SIGMAS = 5


def test_inverted_dropout_statistics():
    x = np.ones(SAMPLE)
    out, cache = L.dropout_forward(x, P_DROP, train=True, rng=123)
    dropped = np.mean(out == 0)
    assert abs(dropped - P_DROP) < SIGMAS * np.sqrt(P_DROP * (1 - P_DROP) / SAMPLE)
    assert abs(out.mean() - 1.0) < SIGMAS * np.sqrt(P_DROP * (1 - P_DROP) / SAMPLE) / (1 - P_DROP)
    assert set(np.unique(out)) == {0.0, 1 / (1 - P_DROP)}


def test_dropout_matches_torch_convention():
    """torch's F.dropout on ones shows its mask: values {0, 1/(1-p)} with p the DROP rate, like ours."""
    torch.manual_seed(0)
    ref = F.dropout(torch.ones(SAMPLE, dtype=torch.float64), P_DROP, training=True).numpy()
    ours, _ = L.dropout_forward(np.ones(SAMPLE), P_DROP, train=True, rng=0)
    assert set(np.unique(ref)) == set(np.unique(ours))
    tol = SIGMAS * np.sqrt(2 * P_DROP * (1 - P_DROP) / SAMPLE)  # difference of two independent rates
    assert abs(np.mean(ref == 0) - np.mean(ours == 0)) < tol


def test_dropout_eval_is_identity_and_seed_is_reproducible():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6))
    out, cache = L.dropout_forward(x, 0.5, train=False)
    assert np.array_equal(out, x)
    assert np.array_equal(out, F.dropout(torch.from_numpy(x), 0.5, training=False).numpy())
    dout = rng.standard_normal(x.shape)
    assert np.array_equal(L.dropout_backward(dout, cache), dout)
    a, _ = L.dropout_forward(x, 0.5, train=True, rng=7)
    b, _ = L.dropout_forward(x, 0.5, train=True, rng=np.random.default_rng(7))
    c, _ = L.dropout_forward(x, 0.5, train=True, rng=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_dropout_gradcheck_and_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 7))
    out, cache = L.dropout_forward(x, 0.4, train=True, rng=11)
    dout = rng.standard_normal(x.shape)
    dx = L.dropout_backward(dout, cache)
    # the same seed gives the same mask, so the forward is a fixed function of x
    assert_gradcheck(dx, lambda v: L.dropout_forward(v, 0.4, True, rng=11)[0], x, dout)
    tx = t64(x)
    ref = tx * torch.from_numpy(cache.mask)  # torch applies a dropout mask this way
    ref.backward(torch.from_numpy(dout))
    assert np.array_equal(out, ref.detach().numpy())
    assert np.array_equal(dx, tx.grad.numpy())
    assert 0 < np.sum(dx == 0) < dx.size  # some units dropped, some kept


def test_dropout_needs_a_seed_and_a_valid_p():
    with pytest.raises(ValueError, match="rng"):
        L.dropout_forward(np.ones(3), 0.5, train=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.dropout_forward(np.ones(3), 1.5, train=True, rng=0)


def test_spatial_dropout_drops_whole_channels():
    N, C = 40, 25
    x = np.random.default_rng(4).standard_normal((N, C, 3, 4)) + 10.0  # no zeros in x
    out, cache = L.spatial_dropout_forward(x, P_DROP, train=True, rng=5)
    assert cache.mask.shape == (N, C, 1, 1)
    per_channel_zero = (out == 0).reshape(N, C, -1)
    assert np.all(per_channel_zero.all(axis=2) | ~per_channel_zero.any(axis=2))  # all or nothing
    kept = ~per_channel_zero.all(axis=2)
    assert np.allclose(out[kept], x[kept] / (1 - P_DROP))
    n = N * C  # channels drawn
    assert abs(np.mean(~kept) - P_DROP) < SIGMAS * np.sqrt(P_DROP * (1 - P_DROP) / n)
    out_eval, _ = L.spatial_dropout_forward(x, P_DROP, train=False)
    assert np.array_equal(out_eval, x)


def test_spatial_dropout_gradcheck_and_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 2, 3))
    out, cache = L.spatial_dropout_forward(x, 0.5, train=True, rng=9)
    dout = rng.standard_normal(x.shape)
    dx = L.spatial_dropout_backward(dout, cache)
    assert_gradcheck(dx, lambda v: L.spatial_dropout_forward(v, 0.5, True, rng=9)[0], x, dout)
    tx = t64(x)
    (tx * torch.from_numpy(cache.mask)).backward(torch.from_numpy(dout))
    assert np.array_equal(dx, tx.grad.numpy())
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        L.spatial_dropout_forward(np.ones((3, 4)), 0.5, train=True, rng=0)


# --- batch-norm ------------------------------------------------------------------------------------

def bn_inputs(seed, N=6, D=4):
    rng = np.random.default_rng(seed)
    x = 3.0 * rng.standard_normal((N, D)) + 2.0
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    running = L.RunningStats(rng.standard_normal(D), rng.uniform(0.5, 2.0, D))
    return rng, x, gamma, beta, running


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("backward", [L.batchnorm_backward, L.batchnorm_backward_alt])
def test_batchnorm_gradcheck(train, backward):
    assert_bn_gradcheck(L.batchnorm_forward, backward, bn_inputs(7), train)


def assert_bn_gradcheck(forward, backward, inputs, train):
    """dx, dgamma, dbeta of a (spatial) batch-norm backward against centred differences."""
    rng, x, gamma, beta, running = inputs
    out, cache, _ = forward(x, gamma, beta, running, train)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = backward(dout, cache)

    def fwd(xv=x, g=gamma, bv=beta):
        return forward(xv, g, bv, running, train)[0]

    assert_gradcheck(dx, lambda v: fwd(xv=v), x, dout)
    assert_gradcheck(dgamma, lambda v: fwd(g=v), gamma, dout)
    assert_gradcheck(dbeta, lambda v: fwd(bv=v), beta, dout)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("backward", [L.batchnorm_backward, L.batchnorm_backward_alt])
def test_batchnorm_matches_torch(train, backward):
    assert_bn_matches_torch(L.batchnorm_forward, backward, bn_inputs(8), train)


def assert_bn_matches_torch(forward, backward, inputs, train):
    """Output, gradients and updated running statistics of a (spatial) batch-norm against
    F.batch_norm with autograd, in float64 (F.batch_norm handles (N, D) and (N, C, H, W) alike)."""
    rng, x, gamma, beta, running = inputs
    out, cache, new = forward(x, gamma, beta, running, train)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = backward(dout, cache)
    tx, tg, tb = t64(x), t64(gamma), t64(beta)
    rm, rv = torch.tensor(running.mean), torch.tensor(running.var)  # F.batch_norm updates these in place
    ref = F.batch_norm(tx, rm, rv, tg, tb, training=train, momentum=L.BN_MOMENTUM, eps=L.BN_EPS)
    ref.backward(torch.from_numpy(dout))
    assert scaled_error(out, ref.detach()) < TORCH_TOL
    for ours, t in ((dx, tx), (dgamma, tg), (dbeta, tb)):
        assert scaled_error(ours, t.grad) < TORCH_TOL
    assert scaled_error(new.mean, rm) < TORCH_TOL and scaled_error(new.var, rv) < TORCH_TOL


def test_batchnorm_backward_forms_agree():
    rng, x, gamma, beta, running = bn_inputs(9, N=32, D=10)
    _, cache, _ = L.batchnorm_forward(x, gamma, beta, running, train=True)
    dout = rng.standard_normal(x.shape)
    for a, b in zip(L.batchnorm_backward(dout, cache), L.batchnorm_backward_alt(dout, cache)):
        assert scaled_error(a, b) < TORCH_TOL


def test_batchnorm_running_stats_follow_batchnorm1d():
    """Several training steps then eval: our RunningStats against BatchNorm1d's buffers. The
    unbiased running variance matters: with N = 5 the biased one is 20% smaller."""
    D = 3
    layer = torch.nn.BatchNorm1d(D, dtype=torch.float64)
    rng = np.random.default_rng(10)
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
    running = L.initial_running_stats(D)
    assert np.array_equal(running.mean, layer.running_mean)
    assert np.array_equal(running.var, layer.running_var)
    for _ in range(4):
        x = 2.0 * rng.standard_normal((5, D)) + 1.0
        out, _, running = L.batchnorm_forward(x, gamma, beta, running, train=True)
        assert scaled_error(out, layer(torch.from_numpy(x)).detach()) < TORCH_TOL
    assert scaled_error(running.mean, layer.running_mean) < TORCH_TOL
    assert scaled_error(running.var, layer.running_var) < TORCH_TOL
    layer.eval()
    x = rng.standard_normal((7, D))
    out, _, after = L.batchnorm_forward(x, gamma, beta, running, train=False)
    assert scaled_error(out, layer(torch.from_numpy(x)).detach()) < TORCH_TOL
    assert after is running  # eval leaves the statistics alone


def test_bn_graph_matches_the_forward_code():
    """Evaluating BN_GRAPH's expressions in order reproduces batchnorm_forward's cache and output,
    and every node's inputs are graph inputs or earlier nodes (so a diagram can be drawn from it)."""
    _, x, gamma, beta, running = bn_inputs(11)
    out, cache, _ = L.batchnorm_forward(x, gamma, beta, running, train=True)
    values = {"x": x, "gamma": gamma, "beta": beta}
    for node, expression, inputs in L.BN_GRAPH:
        assert set(inputs) <= set(values), f"{node} uses a node defined later"
        scope = {name: values[name] for name in inputs}
        values[node] = eval(expression, {"np": np, "eps": L.BN_EPS}, scope)  # only its inputs visible
    assert np.array_equal(values["y"], out)
    for node, *_ in L.BN_GRAPH[:-1]:
        assert np.array_equal(values[node], getattr(cache, node)), node
    assert [n.node for n in L.BN_GRAPH][-1] == "y"


def test_batchnorm_rejects_bad_shapes():
    running = L.initial_running_stats(4)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        L.batchnorm_forward(np.zeros((3, 5)), np.ones(4), np.zeros(4), running, train=True)
    with pytest.raises(ValueError, match="more than one"):
        L.batchnorm_forward(np.zeros((1, 4)), np.ones(4), np.zeros(4), running, train=True)


def spatial_bn_inputs(seed):
    rng = np.random.default_rng(seed)
    C = 3
    x = 2.0 * rng.standard_normal((2, C, 3, 4)) - 1.0
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    return rng, x, gamma, beta, L.RunningStats(rng.standard_normal(C), rng.uniform(0.5, 2.0, C))


@pytest.mark.parametrize("train", [True, False])
def test_spatial_batchnorm_gradcheck(train):
    assert_bn_gradcheck(L.spatial_batchnorm_forward, L.spatial_batchnorm_backward, spatial_bn_inputs(12), train)


@pytest.mark.parametrize("train", [True, False])
def test_spatial_batchnorm_matches_torch(train):
    assert_bn_matches_torch(L.spatial_batchnorm_forward, L.spatial_batchnorm_backward,
                            spatial_bn_inputs(13), train)


def test_spatial_batchnorm_running_stats_follow_batchnorm2d():
    C = 3
    layer = torch.nn.BatchNorm2d(C, dtype=torch.float64)
    running = L.initial_running_stats(C)
    rng = np.random.default_rng(14)
    gamma, beta = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
    for _ in range(3):
        x = rng.standard_normal((2, C, 3, 3)) * np.array([1.0, 2.0, 3.0])[:, None, None] + 0.5
        out, _, running = L.spatial_batchnorm_forward(x, gamma, beta, running, train=True)
        assert scaled_error(out, layer(torch.from_numpy(x)).detach()) < TORCH_TOL
    assert scaled_error(running.mean, layer.running_mean) < TORCH_TOL
    assert scaled_error(running.var, layer.running_var) < TORCH_TOL


# --- convolution -----------------------------------------------------------------------------------

# (x shape, w shape, stride, pad): square and non-square, stride 2 with and without padding, and
# two where the last stride step does not fit, so the floor in H' leaves input rows unused.
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 2, 6, 5), (3, 2, 3, 2), 1, 0),
    ((2, 3, 7, 7), (2, 3, 3, 3), 2, 1),
    ((1, 2, 6, 6), (3, 2, 3, 3), 2, 0),   # (6 - 3) // 2: the last row and column are never read
    ((2, 1, 8, 7), (2, 1, 2, 3), 3, 2),
]


def conv_arrays(case, seed):
    x_shape, w_shape, stride, pad = case
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(shape) for shape in (x_shape, w_shape, w_shape[0]))
    return rng, x, w, b, stride, pad


@pytest.mark.parametrize("forward,backward", [(L.conv_forward_naive, L.conv_backward_naive),
                                              (L.conv_forward_im2col, L.conv_backward_im2col)],
                         ids=["naive", "im2col"])
@pytest.mark.parametrize("case", CONV_CASES[:4])
def test_conv_gradcheck(forward, backward, case):
    rng, x, w, b, stride, pad = conv_arrays(case, 15)
    out, cache = forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    assert_gradcheck(dx, lambda v: forward(v, w, b, stride, pad)[0], x, dout)
    assert_gradcheck(dw, lambda v: forward(x, v, b, stride, pad)[0], w, dout)
    assert_gradcheck(db, lambda v: forward(x, w, v, stride, pad)[0], b, dout)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch_and_naive_equals_im2col(case):
    rng, x, w, b, stride, pad = conv_arrays(case, 16)
    out_n, cache_n = L.conv_forward_naive(x, w, b, stride, pad)
    out_i, cache_i = L.conv_forward_im2col(x, w, b, stride, pad)
    Ho = 1 + (x.shape[2] + 2 * pad - w.shape[2]) // stride
    Wo = 1 + (x.shape[3] + 2 * pad - w.shape[3]) // stride
    assert out_n.shape == out_i.shape == (x.shape[0], w.shape[0], Ho, Wo)
    dout = rng.standard_normal(out_n.shape)
    grads_n = L.conv_backward_naive(dout, cache_n)
    grads_i = L.conv_backward_im2col(dout, cache_i)
    tx, tw, tb = t64(x), t64(w), t64(b)
    ref = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    ref.backward(torch.from_numpy(dout))
    assert scaled_error(out_n, ref.detach()) < TORCH_TOL
    assert scaled_error(out_i, ref.detach()) < TORCH_TOL
    assert scaled_error(out_n, out_i) < TORCH_TOL
    for gn, gi, t in zip(grads_n, grads_i, (tx, tw, tb)):
        assert scaled_error(gn, t.grad) < TORCH_TOL
        assert scaled_error(gi, t.grad) < TORCH_TOL
        assert scaled_error(gn, gi) < TORCH_TOL


def test_conv_im2col_keeps_float32():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 3, 6, 6), dtype=np.float32)
    w = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    out, cache = L.conv_forward_im2col(x, w, b, 1, 1)
    grads = L.conv_backward_im2col(np.ones_like(out), cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    ref, _ = L.conv_forward_naive(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    assert scaled_error(out, ref) < 1e-5  # float32 rounding of 27-term sums


@pytest.mark.parametrize("forward", [L.conv_forward_naive, L.conv_forward_im2col])
def test_conv_rejects_bad_shapes(forward):
    x, w, b = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3)), np.zeros(4)
    with pytest.raises(ValueError, match="channels"):
        forward(x, np.zeros((4, 2, 3, 3)), b)
    with pytest.raises(ValueError, match="one bias per filter"):
        forward(x, w, np.zeros(3))
    with pytest.raises(ValueError, match="larger than the padded"):
        forward(x, np.zeros((4, 3, 7, 7)), b, 1, 0)
    with pytest.raises(ValueError, match="stride"):
        forward(x, w, b, 0, 1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        forward(np.zeros((3, 5, 5)), w, b)
    forward(x, np.zeros((4, 3, 7, 7)), b, 1, 1)  # the same filter fits once padded


# --- max-pool --------------------------------------------------------------------------------------

# (x shape, pool height, pool width, stride): the homework's 2x2/2 (the reshape path), a
# non-square pool, overlapping 3x3/2 pools, and sizes the pool does not tile.
POOL_CASES = [
    ((2, 3, 4, 6), 2, 2, 2),
    ((2, 2, 6, 6), 3, 2, 2),
    ((1, 2, 7, 7), 3, 3, 2),
    ((2, 2, 5, 7), 2, 2, 2),
]


@pytest.mark.parametrize("forward,backward", [(L.max_pool_forward_naive, L.max_pool_backward_naive),
                                              (L.max_pool_forward_fast, L.max_pool_backward_fast)],
                         ids=["naive", "fast"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_gradcheck_and_torch(forward, backward, case):
    shape, ph, pw, stride = case
    rng = np.random.default_rng(18)
    x = distinct(rng, shape)
    out, cache = forward(x, ph, pw, stride)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    assert_gradcheck(dx, lambda v: forward(v, ph, pw, stride)[0], x, dout)
    tx = t64(x)
    ref = F.max_pool2d(tx, (ph, pw), stride)
    ref.backward(torch.from_numpy(dout))
    assert np.array_equal(out, ref.detach().numpy())
    assert scaled_error(dx, tx.grad) < TORCH_TOL


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_ties_follow_torch(case):
    """On a coarse grid of values most windows tie; the gradient still goes where torch sends it."""
    shape, ph, pw, stride = case
    rng = np.random.default_rng(19)
    x = rng.integers(0, 3, shape).astype(np.float64)
    dout = rng.standard_normal(F.max_pool2d(torch.from_numpy(x), (ph, pw), stride).shape)
    tx = t64(x)
    F.max_pool2d(tx, (ph, pw), stride).backward(torch.from_numpy(dout))
    for forward, backward in ((L.max_pool_forward_naive, L.max_pool_backward_naive),
                              (L.max_pool_forward_fast, L.max_pool_backward_fast)):
        out, cache = forward(x, ph, pw, stride)
        assert scaled_error(backward(dout, cache), tx.grad) < TORCH_TOL


def test_max_pool_rejects_bad_shapes():
    for forward in (L.max_pool_forward_naive, L.max_pool_forward_fast):
        with pytest.raises(ValueError, match="larger than"):
            forward(np.zeros((1, 1, 2, 2)), 3, 3, 1)
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            forward(np.zeros((4, 4)), 2, 2, 2)
        with pytest.raises(ValueError, match=">= 1"):
            forward(np.zeros((1, 1, 4, 4)), 2, 2, 0)


# --- benchmark -------------------------------------------------------------------------------------

def test_conv_timings_tiny():
    result = conv_timings(n=3, c=2, h=6, w=5, f=2, k=3, repeats=1, naive_images=1)
    for key in ("im2col_s", "torch_s", "naive_s", "im2col_over_torch", "naive_over_torch"):
        assert result[key] > 0, key
    assert result["naive_measured_images"] == 1 and result["naive_extrapolated"] is True
    assert result["shape"]["x"] == [3, 2, 6, 5]


def test_layers_module_does_not_need_torch():
    """numpy_layers is the NumPy homework: importing it must not pull torch in."""
    code = "import sys, pipeline.numpy_layers; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0
