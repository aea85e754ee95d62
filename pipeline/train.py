"""The "train" stage: fit one LeNet variant on CIFAR-10 held as tensors in memory.

The whole training set sits on the device as one float32 tensor; each epoch draws one random
permutation and a batch is the slice `perm[i:i + B]` gathered with one indexing op. There is no
per-sample Dataset/DataLoader: at LeNet's size, collating 128 single-image tensors per step is a
measurable share of the step (`invoke bench` measures both ways). The one loop (`train_epoch`,
`run_epochs`) also trains the own CNN of question 5(d) (pipeline/own_cnn.py): its learning-rate
schedule, label smoothing, augmentation and channels_last are options. Evaluation runs in
`torch.inference_mode` over large batches. One dict per epoch is the log; printing it as a
fixed-width line is the caller's choice (`format_log_line`).
"""
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pipeline.contract import LOG_COLUMNS  # log.csv's header: the contract owns it
from pipeline.errors import UserError
from pipeline.machine import describe
from pipeline.model import build_model, get_variant, params_by_layer


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; asdict(config) goes into every artifact it produces."""
    variant: str = "lenet_bn_dropout"  # a key of pipeline.model.VARIANTS
    epochs: int = 20                   # the homework's 20 epochs (question 4(d))
    batch_size: int = 128              # the homework's batch; `invoke bench` measures others
    lr: float = 1e-3                   # Adam's default step, as in the homework's LeNet_Cifar10
    seed: int = 0                      # weight init, dropout masks and batch order
    eval_batch_size: int = 1000        # evaluation batch; no effect on results (BN in eval mode)
    device: str = "auto"               # auto = cuda, then mps, then cpu
    smoke: bool = False                # tiny subset and one epoch, to check the plumbing
    smoke_size: int = 2000             # training images used in smoke mode

    @property
    def preprocess(self) -> str:
        return get_variant(self.variant).preprocess


DEVICES = ("auto", "cpu", "cuda", "mps")
# torch threads of every LeNet run on the CPU. One: a step at batch 128 is too small for more to
# scale (two threads train model 1 1.46x faster, not 2x), so `invoke train` runs the two variants
# side by side, one per core (pipeline/parallel.py), as the sweeps do; and a run's numbers then do
# not depend on the machine's core count (oneDNN splits reductions by thread: 1 and 2 threads
# differ in the last bits, so the reference would differ between a 2-core and an 8-core machine).
THREADS = 1


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name. `auto` prefers CUDA, then Apple MPS, then the CPU; asking for a
    device that is not there is a user error (UserError, one sentence)."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was requested but this machine has no CUDA GPU "
                         "(torch.cuda.is_available() is False); use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise UserError("device 'mps' was requested but Apple MPS is not available here; "
                         "use --device cpu or auto")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    """A human-readable name of the device the numbers were measured on."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def set_seed(seed: int) -> None:
    """Seed every generator a run touches (Python, NumPy, torch CPU and CUDA): torch.manual_seed
    seeds every device's generator, CUDA's included (torch.cuda.manual_seed_all, lazily when CUDA
    is not yet initialised; a test checks it is called)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# cuBLAS is deterministic only with a fixed workspace; ":4096:8" is one of the two settings NVIDIA
# documents (cuBLAS docs, "Results reproducibility"; torch.use_deterministic_algorithms's docs).
# It must be set before the process's first cuBLAS call (torch sizes the workspace then, once):
# a `--device cuda` run's child process (pipeline/parallel.py) sets it in fit, before any.
CUBLAS_WORKSPACE = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@contextmanager
def deterministic_cuda(device: torch.device):
    """`with deterministic_cuda(device):` a CUDA run picks reproducible kernels; restored after.

    On CUDA, cuDNN's autotuner (benchmark) may pick another convolution algorithm per run and
    some of its algorithms and some torch kernels (atomic adds) sum in a varying order, so two runs
    of one seed differ (torch docs, "Reproducibility"). Inside: cudnn.deterministic on, benchmark
    off, torch.use_deterministic_algorithms(True, warn_only=True) (an op torch flags as having no
    deterministic CUDA version warns instead of failing: the max-pool backward is flagged, though
    with LeNet's non-overlapping 2 x 2 windows no two gradients add into one input), and cuBLAS's
    fixed workspace unless one is set. On other devices it changes nothing: CPU runs are
    deterministic at a fixed thread count (THREADS).
    """
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    name, workspace = CUBLAS_WORKSPACE
    env_before = os.environ.get(name)
    os.environ.setdefault(name, workspace)
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])
        if env_before is None:
            os.environ.pop(name, None)


CROP_FLIP = (4, True)  # a variant's `augment` (pad, flip): the usual CIFAR crop and flip


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4,
                  flip: bool = True) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, each image its own draw.

    The usual CIFAR augmentation (pad 4, crop back to H x W, flip with probability 1/2), done
    on the whole batch at once by indexing, so it costs one gather instead of a Python loop.
    Zero padding happens after preprocessing, so for the mean-centred modes it pads with the
    mean colour rather than black; for `rescale` it is black, as torchvision's RandomCrop.

    Args: x (B, C, H, W); generator: a CPU generator (the draws do not depend on the device);
        pad: the largest shift in pixels (0: no crop); flip: also flip (else only crop).
    Returns: (B, C, H, W), a new tensor.
    """
    b, _, h, w = x.shape
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, b), generator=generator)).to(x.device)
    if flip:
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    else:
        flip = torch.zeros(b, dtype=torch.bool, device=x.device)
    xp = F.pad(x, (pad, pad, pad, pad))                                   # (B, C, H+2p, W+2p)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # (B, 1, H, 1)
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]
    cols = cols[:, None, None, :]                                          # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[batch, chan, rows, cols]


def train_epoch(model, optimizer, x, y, batch_size: int, generator: torch.Generator, *,
                augment=None, label_smoothing: float = 0.0, lr_schedule=None,
                channels_last: bool = False, step_offset: int = 0, progress: bool = False,
                desc: str = "") -> dict:
    """One pass over (x, y) in a random order: the training loop of both LeNet and the own CNN.

    Args:
        x: (N, C, H, W) float32 on the model's device; y: (N,) int64 on the same device.
        generator: CPU generator; draws the epoch's permutation, then each batch's augmentation.
        augment: None, or (pad, flip): augment_batch(batch, generator, pad, flip) before each step.
        label_smoothing: of the cross-entropy (0: the plain loss).
        lr_schedule: None (the optimizer's lr stays), or a function global step -> lr, set on
            every param group before each step; this epoch's steps are step_offset, +1, ...
        channels_last: hand the model NHWC batches (convert the model too: faster CPU convs).
    Returns:
        {"loss": mean training loss, "accuracy": fraction correct, "seconds": wall time}.
        Both are measured on the training batches as they were trained on (train mode,
        dropout active, augmented, smoothed loss), the usual running estimate.
    """
    model.train()
    n = x.shape[0]
    start = time.perf_counter()
    perm = torch.randperm(n, generator=generator).to(x.device)
    loss_sum = torch.zeros((), device=x.device)   # summed on the device: no sync per step
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    batches = tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=not progress, unit="batch")
    for step, i in enumerate(batches, start=step_offset):
        idx = perm[i:i + batch_size]
        xb, yb = x[idx], y[idx]                      # (B, C, H, W), (B,)
        if augment is not None:
            xb = augment_batch(xb, generator, *augment)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if lr_schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule(step)
        logits = model(xb)                           # (B, n_classes)
        loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * yb.shape[0]
        correct += (logits.detach().argmax(1) == yb).sum()
    loss_value, correct_value = loss_sum.item(), correct.item()  # the one sync of the epoch
    return {"loss": loss_value / n, "accuracy": correct_value / n,
            "seconds": time.perf_counter() - start}


@torch.inference_mode()
def evaluate(model, x, y, batch_size: int = 1000) -> dict:
    """Loss, accuracy and predictions of the model in eval mode (BN running statistics,
    no dropout) on every example of (x, y), in batches.

    Returns: {"loss", "accuracy", "predictions": (N,) int64 CPU tensor}.
    """
    model.eval()
    loss_sum, preds = 0.0, []
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size])
        loss_sum += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        preds.append(logits.argmax(1))
    predictions = torch.cat(preds).cpu()
    accuracy = (predictions == y.cpu()).double().mean().item()
    return {"loss": loss_sum / x.shape[0], "accuracy": accuracy, "predictions": predictions}


def confusion_matrix(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """(n_classes, n_classes) int64 counts; row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes ** 2).reshape(
        n_classes, n_classes)


def format_log_line(row: dict, epochs: int) -> str:
    """One fixed-width line per epoch (airbench style) for both fits. It shows the fields the
    row has (LeNet's: val and test each epoch; the own CNN's: training time so far instead), so
    every line of one run has the same width."""
    width = len(str(epochs))
    parts = [f"epoch {row['epoch']:>{width}}/{epochs}",
             f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:7.2%}"]
    if "val_loss" in row:
        parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:7.2%}")
    if "test_accuracy" in row:
        parts.append(f"test acc {row['test_accuracy']:7.2%}")
    parts.append(f"{row['seconds']:6.2f} s {row['images_per_second']:7.0f} img/s")
    if "elapsed_train_seconds" in row:
        parts.append(f"{row['elapsed_train_seconds'] / 60:5.1f} min")
    return " | ".join(parts)


def run_epochs(model, optimizer, x, y, generator: torch.Generator, epochs: int, batch_size: int,
               *, evaluate=None, columns=LOG_COLUMNS, log=print, name: str = "",
               progress: bool = False, **options) -> list[dict]:
    """The epoch loop of both fits: train_epoch with `options` (augment, label_smoothing,
    lr_schedule, channels_last; the schedule's step counts on across epochs), evaluate() if given
    (timed as eval_seconds, not as training time), a finite-loss check, one format_log_line.

    x: (N, C, H, W), y: (N,); evaluate() -> end-of-epoch metrics, e.g. {"val_loss": ...}.
    Returns: one dict per epoch with the keys `columns`, in order, then evaluate's other keys.
    """
    rows, elapsed, steps = [], 0.0, math.ceil(x.shape[0] / batch_size)
    for epoch in range(1, epochs + 1):
        tr = train_epoch(model, optimizer, x, y, batch_size, generator, progress=progress,
                         desc=f"{name} epoch {epoch}", step_offset=(epoch - 1) * steps, **options)
        elapsed += tr["seconds"]
        t0 = time.perf_counter()
        ev = evaluate() if evaluate is not None else {}
        values = {"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                  "seconds": tr["seconds"], "eval_seconds": time.perf_counter() - t0,
                  "images_per_second": x.shape[0] / tr["seconds"],
                  "elapsed_train_seconds": elapsed, **ev}
        row = {k: values[k] for k in (*columns, *(k for k in ev if k not in columns))}
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "test_loss") if k in row):
            raise FloatingPointError(f"{name}: loss is not finite at epoch {epoch}")
        rows.append(row)
        if log is not None:
            log(format_log_line(row, epochs))
    return rows


def fit(config: TrainConfig, data: dict, log=print, progress: bool = True,
        train_eval_size: int = 0) -> dict:
    """Train one variant and evaluate it after every epoch.

    Args:
        config: the run's settings.
        data: preprocessed arrays {"x_train" (N, C, H, W) float32, "y_train" (N,) int64,
            "x_val", "y_val", "x_test", "y_test"} (NumPy or torch, CPU).
        log: called with each epoch's fixed-width line (None: silent).
        train_eval_size: also evaluate, in eval mode, the first this many training images each
            epoch (log column "train_eval_accuracy"): the train accuracy that is comparable with
            the validation accuracy, as train_accuracy is measured with dropout active.
    On the CPU the run uses THREADS torch threads, whatever the caller's setting; on CUDA it
    runs inside deterministic_cuda.

    Returns:
        {"log": [one dict per epoch, keys LOG_COLUMNS], "final": summary metrics,
         "params_by_layer": {...}, "state_dict": CPU weights, "test_predictions": (N_test,)
         int64 array, "confusion": (10, 10) int64 array, "device": description,
         "machine": pipeline.machine.describe of this run (its device and threads)}.
    """
    device = select_device(config.device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(THREADS)
    try:
        with deterministic_cuda(device):
            result = _fit(config, data, device, log, progress, train_eval_size)
        # described inside the run's thread setting: the record holds the threads it trained with
        return {**result, "machine": describe(device, torch.get_num_threads())}
    finally:
        if device.type == "cpu":
            torch.set_num_threads(threads)


def _fit(config, data, device, log, progress, train_eval_size) -> dict:
    set_seed(config.seed)
    tensors = {k: torch.as_tensor(v).to(device) for k, v in data.items()}
    x_train, y_train = tensors["x_train"], tensors["y_train"]
    epochs = config.epochs
    if config.smoke:  # the plumbing on a tiny subset: one epoch, first smoke_size images
        x_train, y_train = x_train[:config.smoke_size], y_train[:config.smoke_size]
        epochs = 1

    model = build_model(config.variant).to(device)
    # fused Adam runs the whole update as one kernel per device instead of ~10 ops per tensor.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    generator = torch.Generator().manual_seed(config.seed)  # batch order, independent of init

    last = {}  # the last evaluation's test predictions, for the confusion matrix

    def evaluate_epoch() -> dict:
        va = evaluate(model, tensors["x_val"], tensors["y_val"], config.eval_batch_size)
        te = evaluate(model, tensors["x_test"], tensors["y_test"], config.eval_batch_size)
        last["predictions"] = te["predictions"].numpy()
        out = {"val_loss": va["loss"], "val_accuracy": va["accuracy"],
               "test_loss": te["loss"], "test_accuracy": te["accuracy"]}
        if train_eval_size:
            ev = evaluate(model, x_train[:train_eval_size], y_train[:train_eval_size],
                          config.eval_batch_size)
            out.update(train_eval_loss=ev["loss"], train_eval_accuracy=ev["accuracy"])
        return out

    rows = run_epochs(model, optimizer, x_train, y_train, generator, epochs, config.batch_size,
                      evaluate=evaluate_epoch, log=log, name=config.variant, progress=progress,
                      augment=CROP_FLIP if get_variant(config.variant).augment else None)
    best = max(rows, key=lambda r: r["val_accuracy"])
    train_seconds = sum(r["seconds"] for r in rows)
    counts = params_by_layer(model)
    final = {
        "test_accuracy": rows[-1]["test_accuracy"], "test_loss": rows[-1]["test_loss"],
        "best_val_accuracy": best["val_accuracy"], "best_val_epoch": best["epoch"],
        "final_val_accuracy": rows[-1]["val_accuracy"],
        "final_train_loss": rows[-1]["train_loss"],
        "final_train_accuracy": rows[-1]["train_accuracy"],
        "epochs": epochs, "train_seconds": train_seconds,
        "eval_seconds": sum(r["eval_seconds"] for r in rows),
        "images_per_second": x_train.shape[0] * epochs / train_seconds,
        "params": sum(counts.values()),
    }
    y_test = data["y_test"]
    return {"log": rows, "final": final, "params_by_layer": counts,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "test_predictions": last["predictions"],
            "confusion": confusion_matrix(np.asarray(y_test), last["predictions"]),
            "device": device_description(device)}
