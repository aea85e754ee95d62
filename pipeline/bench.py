"""Benchmark: our training loop against the plain PyTorch loop most people write.

The plain loop is the tutorial one: a `DataLoader` over a `TensorDataset` (batch 128, shuffled,
per-sample indexing and collation), `nn.CrossEntropyLoss`, default `Adam`, `loss.item()` every
step, and the model built from the stock torch.nn layers (`build_model(..., fast=False)`). Ours is
`pipeline.train.train_epoch`: the data as one tensor, a batch gathered by slicing a permutation,
fused Adam, no per-step host sync, and the model `fit` trains (`fast=True`: the same function
and gradients through the hand-written pooling and conv functions of `pipeline.model`). Both
train the same variant from the same initial weights on the same images; the two are timed
alternately in one process, so machine noise hits both, and the medians over repeats are compared.
"""
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pipeline.model import build_model
from pipeline.train import device_description, select_device, set_seed, train_epoch

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


def run(raw: dict, images: int, repeats: int, log=print) -> dict:
    """The `bench` stage: both loops on the first `images` training images of each variant (raw
    uint8 arrays, preprocessed here as the variant's runs are), and CS182's im2col convolution
    against F.conv2d. Returns bench.json's content."""
    from pipeline import numpy_bench
    from pipeline.model import VARIANTS
    from pipeline.preprocess import preprocess
    from pipeline.train import TrainConfig
    results = {}
    for v in VARIANTS:
        config = TrainConfig(variant=v)
        (x,), _ = preprocess(raw["x_train"][:images], mode=config.preprocess)
        results[v] = compare_loops(config, x, raw["y_train"][:images], repeats=repeats, log=log)
    out = report(results, images=images, repeats=repeats)
    out["conv"] = numpy_bench.conv_timings(repeats=repeats)
    return out
