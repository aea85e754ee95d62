"""Benchmark: the NumPy convolutions of pipeline.numpy_layers against torch's, forward + backward.

Three implementations of one conv layer (default: the CIFAR-10 batch of the homework, (128, 3, 32,
32) float32, 32 filters 3x3, stride 1, pad 1) each run forward and backward on the same arrays:
`conv_forward_im2col`/`conv_backward_im2col`, torch.nn.functional.conv2d with autograd (torch's
thread count left as it is), and the explicit loops of `conv_forward_naive`/`conv_backward_naive`.
The loops are too slow for the whole batch, so they run on `naive_images` images (one: 0.6 s a
pass here; four made the `layers` stage 12 s longer for the same figure) and their time is scaled
linearly to the batch (every image costs the same number of loop iterations); the result says so. Medians over `repeats`, taken in turns, after one untimed warm-up call of each. Returns
plain numbers and writes nothing.
"""
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.numpy_layers import (conv_backward_im2col, conv_backward_naive, conv_forward_im2col,
                                   conv_forward_naive)


def _median_seconds(steps: dict, repeats: int) -> dict:
    """{name: median seconds of steps[name]()}. The steps take turns within each repeat, so a burst
    of load from other work on the machine hits all of them rather than one."""
    for step in steps.values():
        step()  # warm-up: first-call allocations and BLAS / oneDNN set-up are not what we measure
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def conv_timings(n: int = 128, c: int = 3, h: int = 32, w: int = 32, f: int = 32, k: int = 3,
                 repeats: int = 5, naive_images: int = 1, seed: int = 0) -> dict:
    """Median seconds of one forward + backward pass of a k x k conv (stride 1, pad k // 2).

    x: (n, c, h, w), weights (f, c, k, k), bias (f,), upstream gradient (n, f, h', w'), all
    float32 from one seeded generator. Returns {"im2col_s", "torch_s", "naive_s" (extrapolated
    from naive_images images to n), "naive_measured_images", "naive_extrapolated",
    "im2col_over_torch", "naive_over_torch", "shape", "repeats", "torch_threads"}.
    """
    stride, pad = 1, k // 2
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((f, c, k, k), dtype=np.float32)
    b = rng.standard_normal(f, dtype=np.float32)
    out, _ = conv_forward_im2col(x[:1], wt, b, stride, pad)
    dout = rng.standard_normal((n, *out.shape[1:]), dtype=np.float32)

    def im2col_step():
        _, cache = conv_forward_im2col(x, wt, b, stride, pad)
        conv_backward_im2col(dout, cache)

    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, wt, b))
    tdout = torch.from_numpy(dout)

    def torch_step():
        for t in (tx, tw, tb):
            t.grad = None
        F.conv2d(tx, tw, tb, stride=stride, padding=pad).backward(tdout)

    m = min(naive_images, n)

    def naive_step():
        _, cache = conv_forward_naive(x[:m], wt, b, stride, pad)
        conv_backward_naive(dout[:m], cache)

    median = _median_seconds({"im2col": im2col_step, "torch": torch_step, "naive": naive_step}, repeats)
    im2col_s, torch_s = median["im2col"], median["torch"]
    naive_s = median["naive"] * n / m  # linear in the number of images
    return {"im2col_s": im2col_s, "torch_s": torch_s, "naive_s": naive_s,
            "naive_measured_images": m, "naive_extrapolated": m < n,
            "im2col_over_torch": im2col_s / torch_s, "naive_over_torch": naive_s / torch_s,
            "shape": {"x": [n, c, h, w], "w": [f, c, k, k], "stride": stride, "pad": pad,
                      "dtype": "float32"},
            "repeats": repeats, "torch_threads": torch.get_num_threads()}
