"""Benchmark: our training loop against the plain PyTorch loop most people write, the per-op
profile of one step of each, the options tried for speed, and the whole pipeline against the plain
way's training time.

The plain loop is the tutorial one: a `DataLoader` over a `TensorDataset` (batch 128, shuffled,
per-sample indexing and collation), `nn.CrossEntropyLoss`, default `Adam`, `loss.item()` every
step, and the model built from the stock torch.nn layers (`build_model(..., fast=False)`). Ours is
`pipeline.train.train_epoch`: the data as one tensor, a batch gathered by slicing a permutation,
fused Adam, no per-step host sync, and the model `fit` trains (`fast=True`: the same function
and gradients through the hand-written pooling and conv functions of `pipeline.model`). Both
train the same variant from the same initial weights on the same images; the two are timed
alternately in one process, so machine noise hits both, and the medians over repeats are compared.
Every comparison is made at each thread count in `threads` (our runs use pipeline.train.THREADS).
"""
import contextlib
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pipeline.model import build_model
from pipeline.train import THREADS, device_description, select_device, set_seed, train_epoch

PLAIN_BATCH_SIZE = 128  # what the tutorial loop and the homework use


def plain_epoch(model, x: torch.Tensor, y: torch.Tensor, lr: float = 1e-3) -> float:
    """One epoch the tutorial way; returns seconds. x: (N, C, H, W) float32, y: (N,) int64."""
    loader = DataLoader(TensorDataset(x, y), batch_size=PLAIN_BATCH_SIZE, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    model.train()
    running = 0.0
    start = time.perf_counter()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        running += loss.item()
    return time.perf_counter() - start


def our_epoch(model, x: torch.Tensor, y: torch.Tensor, batch_size: int, lr: float,
              seed: int) -> float:
    """One epoch of pipeline.train.train_epoch with the optimizer fit() uses; returns seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    generator = torch.Generator().manual_seed(seed)
    return train_epoch(model, optimizer, x, y, batch_size, generator)["seconds"]


def compare_loops(config, x, y, repeats: int = 5, log=None) -> dict:
    """Time `repeats` epochs of each loop on (x, y), alternating, on the CPU or config.device.

    Returns {"plain_seconds": [...], "ours_seconds": [...], "images": N, "batch_size", ...}.
    """
    device = select_device(config.device)
    x = torch.as_tensor(x).to(device)
    y = torch.as_tensor(y).to(device)
    set_seed(config.seed)
    initial = build_model(config.variant).state_dict()
    plain_s, ours_s = [], []

    def fresh(fast: bool):
        model = build_model(config.variant, fast=fast).to(device)
        model.load_state_dict(initial)
        return model

    # One untimed epoch of each first: allocator and oneDNN kernel caches warm up.
    plain_epoch(fresh(fast=False), x[:1024].cpu(), y[:1024].cpu(), config.lr)
    our_epoch(fresh(fast=True), x[:1024], y[:1024], config.batch_size, config.lr, config.seed)
    for r in range(repeats):
        plain_s.append(plain_epoch(fresh(fast=False), x.cpu(), y.cpu(), config.lr))
        ours_s.append(our_epoch(fresh(fast=True), x, y, config.batch_size, config.lr,
                                config.seed + r))
        if log is not None:
            n = x.shape[0]
            log(f"{config.variant} repeat {r + 1}/{repeats}: plain {n / plain_s[-1]:7.0f} img/s,"
                f" ours {n / ours_s[-1]:7.0f} img/s")
    return {"plain_seconds": plain_s, "ours_seconds": ours_s, "images": int(x.shape[0]),
            "batch_size": config.batch_size, "plain_batch_size": PLAIN_BATCH_SIZE,
            "lr": config.lr, "device": device_description(device)}


def report(results: dict, **settings) -> dict:
    """Medians, throughputs and ratios from compare_loops results (variant -> result)."""
    variants = {}
    for v, r in results.items():
        plain, ours = statistics.median(r["plain_seconds"]), statistics.median(r["ours_seconds"])
        variants[v] = {**r, "plain_images_per_second": r["images"] / plain,
                       "ours_images_per_second": r["images"] / ours, "ratio": plain / ours}
    device = next(iter(results.values()))["device"] if results else None
    return {"settings": settings, "device": device, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "variants": variants}


@contextlib.contextmanager
def threads_set(n: int):
    """`with threads_set(n):` torch uses n intra-op threads inside, its old count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def inputs(raw: dict, variant: str, images: int):
    """The first `images` training images, preprocessed as the variant's runs are: (x, y) tensors."""
    from pipeline.model import get_variant
    from pipeline.preprocess import preprocess
    (x,), _ = preprocess(raw["x_train"][:images], mode=get_variant(variant).preprocess)
    return torch.as_tensor(x), torch.as_tensor(raw["y_train"][:images])


def profile_rows(variant: str, x, y, steps: int = 20, top: int = 8) -> list[dict]:
    """torch.profiler over `steps` steps of each loop (plain: stock layers, DataLoader, Adam; ours:
    train_epoch as fit runs it), at the caller's thread count: the `top` ops by self CPU time per
    step, then "other" and "total". Rows: {variant, loop, op, ms_per_step, share}."""
    from torch.profiler import ProfilerActivity, profile
    from pipeline.train import TrainConfig
    config = TrainConfig(variant=variant)
    steps = min(steps, x.shape[0] // PLAIN_BATCH_SIZE)
    n = steps * PLAIN_BATCH_SIZE
    rows = []
    for loop, fast, epoch in (("plain", False, lambda m: plain_epoch(m, x[:n], y[:n], config.lr)),
                              ("ours", True, lambda m: our_epoch(m, x[:n], y[:n], config.batch_size, config.lr, 0))):
        set_seed(0)
        epoch(build_model(variant, fast=fast))  # warm-up: oneDNN primitives, allocator
        model = build_model(variant, fast=fast)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(model)
        ops = sorted(((e.key, e.self_cpu_time_total / 1e3 / steps) for e in prof.key_averages()),
                     key=lambda kv: -kv[1])
        total = sum(ms for _, ms in ops)
        shown = ops[:top] + [("other", sum(ms for _, ms in ops[top:])), ("total", total)]
        rows += [{"variant": variant, "loop": loop, "op": op, "ms_per_step": ms, "share": ms / total}
                 for op, ms in shown]
    return rows


def option_timings(variant: str, x, y, repeats: int = 3, steps: int = 25) -> dict:
    """Milliseconds per training step of the options tried for speed, at the caller's thread count:
    {"ours" (what fit runs), "stock layers", "channels_last", "torch.compile"} -> median ms, and
    torch.compile's first-step (compile) seconds. An option that fails to run says why."""
    import torch.nn.functional as F
    steps, out = min(steps, x.shape[0] // PLAIN_BATCH_SIZE), {}
    for name in ("ours", "stock layers", "channels_last", "torch.compile"):
        set_seed(0)
        model = build_model(variant, fast=name != "stock layers")
        xs = x[:steps * PLAIN_BATCH_SIZE]
        if name == "channels_last":
            model, xs = model.to(memory_format=torch.channels_last), xs.contiguous(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        step_model = model

        def step(i):
            xb, yb = xs[i * PLAIN_BATCH_SIZE:(i + 1) * PLAIN_BATCH_SIZE], y[i * PLAIN_BATCH_SIZE:(i + 1) * PLAIN_BATCH_SIZE]
            loss = F.cross_entropy(step_model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        try:
            start = time.perf_counter()
            if name == "torch.compile":
                step_model = torch.compile(model)
            step(0)
            first = time.perf_counter() - start
        except Exception as e:  # e.g. torch.compile without a C++ compiler: recorded, not fatal
            out[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            continue
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(steps):
                step(i)
            times.append((time.perf_counter() - start) / steps * 1e3)
        out[name] = {"ms_per_step": statistics.median(times), "first_step_seconds": first}
    for name, r in out.items():
        if "ms_per_step" in r and "ms_per_step" in out["ours"]:
            r["speed_vs_ours"] = out["ours"]["ms_per_step"] / r["ms_per_step"]
    return out


def plain_training(raw: dict, epochs: int, log=print) -> dict:
    """The plain way's training time of the two reference models, one after the other at torch's
    default thread count, as a user of the tutorial loop trains them: `epochs` epochs each on the
    full training set, timed, and the homework's 20 epochs extrapolated from the median epoch when
    fewer were run (the result says so). No evaluation is counted."""
    from pipeline.contract import REFERENCE
    from pipeline.model import VARIANTS
    out = {}
    for v in VARIANTS:
        x, y = inputs(raw, v, len(raw["y_train"]))
        set_seed(0)
        model = build_model(v, fast=False)
        seconds = [plain_epoch(model, x, y) for _ in range(epochs)]
        per_epoch = statistics.median(seconds)
        out[v] = {"epoch_seconds": seconds, "images": int(x.shape[0]),
                  "seconds_20_epochs": per_epoch * REFERENCE["epochs"] if epochs < REFERENCE["epochs"] else sum(seconds),
                  "images_per_second": x.shape[0] / per_epoch}
        if log is not None:
            log(f"plain way {v}: {epochs} epoch(s), median {per_epoch:.1f} s per epoch")
    return {"variants": out, "epochs_measured": epochs, "extrapolated": epochs < REFERENCE["epochs"],
            "threads": torch.get_num_threads(),
            "seconds": sum(r["seconds_20_epochs"] for r in out.values())}


TARGETS = {  # issue 15's targets: each a ratio measured in one run of `invoke bench`
    "all_over_plain_training": ("at most", 0.5),
    "lenet_bn_dropout_loop_speedup": ("at least", 1.5),
    "lenet_plain_loop_speedup": ("at least", 1.2),
}


def targets(report_: dict) -> dict:
    """Each target with its measured value and whether it is met. The loop speed-ups are taken at
    pipeline.train.THREADS threads, the setting our runs train with."""
    values = {f"{v}_loop_speedup": r["ratio"] for v, r in report_["loops"][str(THREADS)]["variants"].items()}
    if "end_to_end" in report_:
        values["all_over_plain_training"] = report_["end_to_end"]["ratio"]
    out = {}
    for name, (how, bound) in TARGETS.items():
        if name in values:
            value = values[name]
            out[name] = {"value": value, "target": f"{how} {bound}",
                         "met": value <= bound if how == "at most" else value >= bound}
    return out


def run(raw: dict, images: int, repeats: int, threads: list[int], log=print) -> dict:
    """The `bench` stage's measurements that need no subprocess: both loops per variant at each
    thread count, the profile and the options at THREADS threads, and CS182's im2col convolution
    against F.conv2d. Returns bench.json's content (without end_to_end) and profile.csv's rows."""
    from pipeline import numpy_bench
    from pipeline.model import VARIANTS
    from pipeline.train import TrainConfig
    data = {v: inputs(raw, v, images) for v in VARIANTS}  # every measurement uses the same images
    loops, profile, options = {}, [], {}
    for t in threads:
        with threads_set(t):
            results = {v: compare_loops(TrainConfig(variant=v), *data[v], repeats=repeats, log=log)
                       for v in VARIANTS}
            loops[str(t)] = report(results, images=images, repeats=repeats)
    with threads_set(THREADS):
        for v in VARIANTS:
            x, y = data[v]
            profile += profile_rows(v, x, y)
            options[v] = option_timings(v, x, y)
            if log is not None:
                log(f"options {v}: " + ", ".join(f"{k} {r.get('ms_per_step', float('nan')):.1f} ms"
                                                 for k, r in options[v].items()))
    first = loops[str(THREADS)]
    out = {**first, "threads_compared": threads, "loops": loops, "options": options,
           "profile_threads": THREADS, "conv": numpy_bench.conv_timings(repeats=repeats)}
    return out, profile
