"""Batch normalisation: the formulas of CSCE-421 Q3 / COM S 573 Q2 / CS182 Q1 and Q5, and the
demonstrations their "why" parts ask for, run on a real torch.nn.BatchNorm1d/2d.

`batchnorm_forward` / `batchnorm_backward` are the training-time layer in NumPy float64, cs231n
style: forward returns (out, cache), backward takes the cache and returns the gradients, and the
backward rule sits next to the forward. `running_stats` is PyTorch's update rule for the running
mean and variance written out. The `*_demo` functions drive the real torch layer (the thing being
explained) and return plain numbers for answers.json; they print nothing and write no files.
Shapes: x is (N, D), N examples in rows. The homework writes its batch the other way round,
(D units, m examples), so callers transpose.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch

from pipeline.errors import UserError


# The questions set eps = 0, but torch refuses eps <= 0 in training mode ("batch_norm eps must be
# positive during training"); 1e-12 is far below any variance here, so outputs agree to ~1e-12.
TORCH_EPS = 1e-12


class BNCache(NamedTuple):
    """What the backward pass needs from the forward pass."""
    x_hat: np.ndarray    # (N, D) normalised input
    inv_std: np.ndarray  # (D,) 1 / sqrt(var + eps)
    gamma: np.ndarray    # (D,)


def _as_batch(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"the batch must be a non-empty (N examples, D units) matrix, got shape {x.shape}.")
    return x


def _as_param(name: str, v, d: int) -> np.ndarray:
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), (d,)) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)
    if v.shape != (d,):
        raise UserError(f"{name} must have one value per unit ({d}), got shape {v.shape}.")
    return v


def batch_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit mean and biased variance over the batch (the questions' mu and sigma^2, 1/m)."""
    x = _as_batch(x)
    mu = x.mean(axis=0)                      # (D,)
    var = ((x - mu) ** 2).mean(axis=0)       # (D,), divides by m, as the questions define it
    return mu, var


def batchnorm_forward(x, gamma=1.0, beta=0.0, eps: float = 0.0) -> tuple[np.ndarray, BNCache]:
    """Training-mode batch norm. x (N, D); gamma, beta (D,) or scalars -> out (N, D), cache.

    z_hat = (z - mu) / sqrt(sigma^2 + eps), z_tilde = gamma * z_hat + beta, with mu and sigma^2 taken
    over the N examples of each unit separately. With eps = 0 a unit whose values are all equal
    would be 0/0, which is refused rather than turned into NaN.
    """
    x = _as_batch(x)
    if eps < 0:
        raise UserError(f"eps must be >= 0, got {eps}.")
    gamma, beta = _as_param("gamma", gamma, x.shape[1]), _as_param("beta", beta, x.shape[1])
    mu, var = batch_stats(x)
    if eps == 0 and np.any(var == 0):
        unit = int(np.flatnonzero(var == 0)[0])
        raise UserError(f"unit {unit + 1} has the same value in every example, so with eps = 0 its "
                        f"normalised value is 0/0; use eps > 0 or a batch whose values differ.")
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    return gamma * x_hat + beta, BNCache(x_hat, inv_std, gamma)


def batchnorm_backward(dout, cache: BNCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of training-mode batch norm (CS182 5(b)). dout (N, D) -> dx (N, D), dgamma, dbeta (D,).

    Because mu and sigma^2 depend on every example, dx is not just gamma * inv_std * dout: the
    parts of dout along the mean and along x_hat are removed,
    dx = gamma * inv_std / N * (N dout - sum_n dout - x_hat * sum_n dout * x_hat).
    """
    dout = np.asarray(dout, dtype=np.float64)
    if dout.shape != cache.x_hat.shape:
        raise UserError(f"dout must have the forward output's shape {cache.x_hat.shape}, got {dout.shape}.")
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * cache.x_hat).sum(axis=0)
    dx = cache.gamma * cache.inv_std / n * (n * dout - dbeta - cache.x_hat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_eval(x, running_mean, running_var, gamma=1.0, beta=0.0, eps: float = 1e-5) -> np.ndarray:
    """Test-time batch norm: fixed statistics, so each example is normalised on its own."""
    x = _as_batch(x)
    d = x.shape[1]
    mean, var = _as_param("running_mean", running_mean, d), _as_param("running_var", running_var, d)
    gamma, beta = _as_param("gamma", gamma, d), _as_param("beta", beta, d)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def running_stats(batches, momentum: float | None = 0.1, init_mean=0.0, init_var=1.0):
    """PyTorch's running statistics after each batch. batches (T, m, D) -> means, vars (T, D).

    running <- (1 - momentum) * running + momentum * batch statistic, where the batch variance is
    the unbiased one (divides by m - 1); momentum=None is the cumulative average of the T batch
    statistics, which is "the mean of mu_1..mu_n" of COM S 573 2(c) (torch.nn.BatchNorm docs).
    """
    batches = np.asarray(batches, dtype=np.float64)
    if batches.ndim != 3 or batches.shape[1] < 2:
        raise UserError(f"batches must be (T, m >= 2, D): the unbiased variance needs two examples, "
                        f"got shape {batches.shape}.")
    t_count, m, d = batches.shape
    mean = np.full(d, init_mean, dtype=np.float64)
    var = np.full(d, init_var, dtype=np.float64)
    means, variances = np.zeros((t_count, d)), np.zeros((t_count, d))
    for t in range(t_count):
        mu = batches[t].mean(axis=0)
        unbiased = batches[t].var(axis=0, ddof=1)
        a = 1.0 / (t + 1) if momentum is None else momentum
        mean, var = (1 - a) * mean + a * mu, (1 - a) * var + a * unbiased
        means[t], variances[t] = mean, var
    return means, variances


# --- demonstrations on the real torch layer ----------------------------------------------------

def _bn1d(d: int, gamma, beta, eps: float, momentum) -> torch.nn.BatchNorm1d:
    bn = torch.nn.BatchNorm1d(d, eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(np.asarray(gamma, dtype=np.float64)))
        bn.bias.copy_(torch.as_tensor(np.asarray(beta, dtype=np.float64)))
    return bn


def train_vs_eval_demo(x, gamma, beta, momentum: float = 0.1, passes: int = 200, seed: int = 0,
                       eps: float = TORCH_EPS) -> dict:
    """What changes between training and testing, on the homework's batch x (N, D).

    Train mode normalises with this batch's own mean and variance (output = the hand formula);
    eval mode uses the running averages, so (1) after one training step the eval output is far
    from the train output, (2) after many steps on the same batch the running stats converge to
    mu and the *unbiased* variance, so eval = train * sqrt((m-1)/m), not train, and (3) in eval mode
    an example's output does not depend on the rest of its batch, while in train mode it does.
    """
    x = _as_batch(x)
    n, d = x.shape
    xt = torch.as_tensor(x)
    bn = _bn1d(d, gamma, beta, eps, momentum)
    bn.train()
    with torch.no_grad():
        train_out = bn(xt).numpy().copy()
        after_one = {"running_mean": bn.running_mean.numpy().tolist(),
                     "running_var": bn.running_var.numpy().tolist()}
        bn.eval()
        eval_after_one = bn(xt).numpy().copy()
        bn.train()
        for _ in range(passes - 1):
            bn(xt)
        bn.eval()
        eval_converged = bn(xt).numpy().copy()
        converged = {"running_mean": bn.running_mean.numpy().tolist(),
                     "running_var": bn.running_var.numpy().tolist()}
        # (3): the first example alone, and inside a batch of other examples
        rng = np.random.default_rng(seed)
        others = torch.as_tensor(rng.normal(x.mean(axis=0), x.std(axis=0) + 1.0, size=(7, d)))
        alone = bn(xt[:1]).numpy()
        in_batch = bn(torch.cat([xt[:1], others]))[:1].numpy()
        eval_dependence = float(np.abs(alone - in_batch).max())
        probe = copy.deepcopy(bn).train()  # a copy, so these batches leave bn's statistics alone
        train_a = probe(xt)[:1].numpy()
        train_b = probe(torch.cat([xt[:1], others]))[:1].numpy()
        train_dependence = float(np.abs(train_a - train_b).max())
    mu, var = batch_stats(x)
    return {
        "train_output": train_out.tolist(),
        "after_one_step": after_one,
        "eval_output_after_one_step": eval_after_one.tolist(),
        "max_abs_train_minus_eval_after_one_step": float(np.abs(train_out - eval_after_one).max()),
        "passes": passes,
        "running_mean_converged": converged["running_mean"],
        "running_var_converged": converged["running_var"],
        "batch_mean": mu.tolist(),
        "batch_var_biased": var.tolist(),
        "batch_var_unbiased": (var * n / (n - 1)).tolist(),
        "eval_output_converged": eval_converged.tolist(),
        "eval_over_train_ratio": float(np.median(eval_converged[np.abs(train_out) > 1e-9]
                                                 / train_out[np.abs(train_out) > 1e-9]))
        if np.allclose(gamma, 1) and np.allclose(beta, 0) else None,
        "sqrt_m_minus_1_over_m": float(np.sqrt((n - 1) / n)),
        "eval_output_depends_on_batch": eval_dependence,
        "train_output_depends_on_batch": train_dependence,
        "momentum": momentum,
        "eps": eps,
    }


def eval_batch_size_demo(d: int = 3, n: int = 64, seed: int = 0) -> dict:
    """Eval-mode outputs of a trained BatchNorm1d are the same whether the test batch has 1 or n
    examples; train-mode outputs are not (CSCE-421 Q3 part 4, COM S 573 2(d))."""
    rng = np.random.default_rng(seed)
    bn = _bn1d(d, rng.uniform(0.5, 2, d), rng.normal(size=d), 1e-5, 0.1)
    with torch.no_grad():
        for _ in range(50):  # train the running statistics on batches from one distribution
            bn(torch.as_tensor(rng.normal(2.0, 3.0, size=(32, d))))
        test = torch.as_tensor(rng.normal(2.0, 3.0, size=(n, d)))
        bn.eval()
        whole = bn(test).numpy()
        one_by_one = np.concatenate([bn(test[i:i + 1]).numpy() for i in range(n)])
        by_size = {str(b): float(np.abs(np.concatenate([bn(test[i:i + b]).numpy()
                                                        for i in range(0, n, b)]) - whole).max())
                   for b in (1, 2, 8, n)}
        bn.train()
        train_by_size = {str(b): float(np.abs(np.concatenate([bn(test[i:i + b]).numpy()
                                                              for i in range(0, n, b)]) - whole).max())
                         for b in (2, 8, n)}
    return {"test_examples": n,
            "eval_max_abs_difference_vs_full_batch": by_size,
            "eval_one_by_one_equals_full_batch": bool(np.array_equal(one_by_one, whole)),
            "train_mode_max_abs_difference_vs_eval": train_by_size}


def running_stats_demo(pop_mean=(13.0, 5.0, 0.0), pop_std=(1.0, 5.0, 5.0), batch_size: int = 4,
                       steps: int = 300, momentum: float = 0.1, seed: int = 0) -> dict:
    """How running statistics converge: torch.nn.BatchNorm1d in train mode fed `steps` batches
    drawn from N(pop_mean, pop_std^2) per unit, next to `running_stats` (our reading of the rule).

    The defaults take the homework batch's per-unit mean and spread as the population.
    """
    pop_mean, pop_std = np.asarray(pop_mean, float), np.asarray(pop_std, float)
    d = pop_mean.size
    rng = np.random.default_rng(seed)
    batches = rng.normal(pop_mean, pop_std, size=(steps, batch_size, d))  # (T, m, D)
    bn = _bn1d(d, np.ones(d), np.zeros(d), 1e-5, momentum)
    cumulative = _bn1d(d, np.ones(d), np.zeros(d), 1e-5, None)
    torch_means, torch_vars = np.zeros((steps, d)), np.zeros((steps, d))
    with torch.no_grad():
        for t in range(steps):
            bn(torch.as_tensor(batches[t]))
            cumulative(torch.as_tensor(batches[t]))
            torch_means[t], torch_vars[t] = bn.running_mean.numpy(), bn.running_var.numpy()
    ours_mean, ours_var = running_stats(batches, momentum)
    cum_mean, cum_var = running_stats(batches, None)
    tail = slice(steps // 2, steps)  # after the start-up transient, (1 - 0.1)^150 ~ 1e-7
    return {
        "population_mean": pop_mean.tolist(), "population_var": (pop_std ** 2).tolist(),
        "batch_size": batch_size, "steps": steps, "momentum": momentum, "seed": seed,
        "running_mean": torch_means.tolist(), "running_var": torch_vars.tolist(),
        "rule_matches_torch_max_abs": float(max(np.abs(ours_mean - torch_means).max(),
                                                np.abs(ours_var - torch_vars).max())),
        "ema_mean_tail_average": torch_means[tail].mean(axis=0).tolist(),
        "ema_var_tail_average": torch_vars[tail].mean(axis=0).tolist(),
        "cumulative_mean": cumulative.running_mean.numpy().tolist(),
        "cumulative_var": cumulative.running_var.numpy().tolist(),
        "mean_of_batch_means": batches.mean(axis=1).mean(axis=0).tolist(),
        "mean_of_unbiased_batch_vars": batches.var(axis=1, ddof=1).mean(axis=0).tolist(),
        "mean_of_biased_batch_vars": batches.var(axis=1).mean(axis=0).tolist(),
        "cumulative_rule_matches_torch_max_abs": float(max(
            np.abs(cum_mean[-1] - cumulative.running_mean.numpy()).max(),
            np.abs(cum_var[-1] - cumulative.running_var.numpy()).max())),
    }


def batch_size_one_demo(x_row=(12.0, 0.0, -5.0), other_row=(14.0, 10.0, 5.0), beta=(0.0, -10.0, 10.0),
                        eps: float = 1e-5) -> dict:
    """Why a batch of one breaks training mode.

    With one example, mu = z and sigma^2 = 0, so z_hat = 0 / sqrt(eps) = 0 and the output is beta
    whatever the input: the layer forgets its input and passes back no gradient. torch refuses the
    case outright for BatchNorm1d (its running variance would divide by m - 1 = 0). BatchNorm2d
    with one image still works, because its statistics are over N * H * W values per channel.
    """
    d = len(x_row)
    outputs = []
    for row in (x_row, other_row):
        out, _ = batchnorm_forward(np.asarray([row]), 1.0, beta, eps=eps)
        outputs.append(out[0].tolist())
    x = torch.tensor([x_row], dtype=torch.float64, requires_grad=True)
    bn = _bn1d(d, np.ones(d), beta, eps, 0.1)
    try:
        bn(x)
        torch_error = None
    except ValueError as e:  # torch's own message is the evidence
        torch_error = str(e)
    # the same algebra through autograd (torch.nn.functional.batch_norm refuses N = 1 too, so the
    # formula is spelled out): the gradient reaching x is zero
    mu = x.mean(dim=0)
    var = ((x - mu) ** 2).mean(dim=0)
    out = (x - mu) / torch.sqrt(var + eps) + torch.tensor(beta, dtype=torch.float64)
    out.sum().backward()
    bn2d = torch.nn.BatchNorm2d(d, dtype=torch.float64).train()
    img = torch.randn(1, d, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y2d = bn2d(img).detach()
    bn.eval()
    with torch.no_grad():
        eval_out = bn(torch.tensor([x_row], dtype=torch.float64)).numpy()[0].tolist()
    return {
        "inputs": [list(x_row), list(other_row)],
        "train_outputs": outputs,
        "outputs_equal_beta": bool(all(np.allclose(o, beta) for o in outputs)),
        "grad_wrt_input": x.grad.numpy()[0].tolist(),
        "torch_batchnorm1d_error": torch_error,
        "batchnorm2d_one_image_ok": bool(torch.isfinite(y2d).all()),
        "batchnorm2d_one_image_channel_means": y2d.mean(dim=(0, 2, 3)).abs().max().item(),
        "eval_mode_one_example_output": eval_out,
        "eps": eps,
    }
