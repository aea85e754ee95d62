"""CS182 HW3 question 5(d): a CNN of our own design, trained fast on a 2-core CPU.

The design follows what the fastest public CIFAR-10 trainers do (Keller Jordan's airbench,
itself from hlb-CIFAR10 and Page's ResNet-9 work), scaled down until a few epochs fit in a
15-minute CPU budget:

- a frozen first layer that whitens 2x2 patches (its weights are the eigenvectors of the patch
  covariance of the training images, scaled by 1/sqrt(eigenvalue), each with both signs), so
  the first trained layer sees decorrelated inputs;
- three groups conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU, widths doubling,
  then a global max-pool and one linear layer whose logits are scaled down (1/9);
- SGD with Nesterov momentum, a linear warm-up then linear decay of the learning rate (one cycle),
  label smoothing, batch-wise random flips and 2-pixel translations, and at test time the mean
  of the logits of each image and its mirror image;
- the whole training set on the device as one tensor, batches by slicing, channels_last.

The schedule, smoothing, augmentation and channels_last are options of the LeNet's training loop
(pipeline.train.run_epochs), so both models train, time and log the same way. Plain functions and
one frozen dataclass; `invoke train-own` does the file I/O.
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.contract import OWN_LOG_COLUMNS as LOG_COLUMNS  # own_cnn/log.csv's header
from pipeline.errors import UserError
from pipeline.train import run_epochs, set_seed


@dataclass(frozen=True)
class OwnConfig:
    """Settings of one run of the own-design CNN; asdict() goes into its artifacts."""
    widths: tuple = (32, 64, 128)   # channels of the three conv groups
    epochs: int = 8
    batch_size: int = 512
    lr: float = 0.2                 # peak learning rate (mean loss over the batch)
    momentum: float = 0.9           # Nesterov
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    warmup: float = 0.2             # fraction of the steps spent warming up linearly from 0
    translate: int = 2              # random shift of up to this many pixels (pad + crop)
    flip: bool = True               # horizontal flips: random in training, averaged at test
    whiten_images: int = 5000       # training images whose 2x2 patches set the whitening layer
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True      # NHWC: faster convolutions on the CPU (measured by the search)


def whitening_weights(x: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """Weights of a 2x2 conv that whitens the 2x2 patches of images x.

    x: (N, 3, H, W) float. Returns (24, 3, 2, 2): the 12 eigenvectors of the patch covariance
    divided by sqrt(eigenvalue + eps), then the same negated (GELU after it would otherwise
    lose the negative half of each direction).
    """
    c = x.shape[1]
    patches = x.unfold(2, 2, 1).unfold(3, 2, 1)                   # (N, C, H-1, W-1, 2, 2)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4).double()  # (P, 12)
    patches = patches - patches.mean(0)
    cov = patches.T @ patches / patches.shape[0]                  # (12, 12)
    eigval, eigvec = torch.linalg.eigh(cov)                       # ascending
    w = (eigvec.T / torch.sqrt(eigval + eps)[:, None]).flip(0)    # (12, 12), largest first
    w = w.reshape(-1, c, 2, 2).float()
    return torch.cat([w, -w])


def conv_group(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU: (N, c_in, H, W) ->
    (N, c_out, H//2, W//2). Pooling right after the first conv halves the cost of the rest."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out), nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class OwnCNN(nn.Module):
    """(N, 3, 32, 32) -> whiten 2x2 (24 channels, 31x31) -> 3 conv groups (15, 7, 3 pixels)
    -> global max-pool -> linear -> logits (N, n_classes) scaled by 1/9."""

    def __init__(self, widths=(32, 64, 128), n_classes: int = 10):
        super().__init__()
        if len(widths) != 3 or any(int(w) < 1 for w in widths):
            raise UserError(f"widths must be three positive channel counts, got {widths!r}")
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data, then fixed
        w1, w2, w3 = (int(w) for w in widths)
        self.groups = nn.Sequential(conv_group(24, w1), conv_group(w1, w2), conv_group(w2, w3))
        self.head = nn.Linear(w3, n_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))                                 # (N, 24, 31, 31)
        x = self.groups(x)                                         # (N, w3, 3, 3)
        x = torch.amax(x, dim=(2, 3))                              # (N, w3)
        return self.head(x) / 9                                    # (N, n_classes)


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """One cycle: linear from 0 to `peak` over the first `warmup` fraction of the steps, then
    linear back to 0 at the last step."""
    rise = max(1, round(warmup * total))
    if step < rise:
        return peak * (step + 1) / rise
    return peak * max(0.0, (total - step) / max(1, total - rise))


def count_params(model: nn.Module) -> int:
    """Every parameter, the frozen whitening weights included (they are part of the model)."""
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, flip: bool = True,
            channels_last: bool = True) -> torch.Tensor:
    """Logits (N, n_classes) in eval mode; flip=True averages each image's logits with its
    mirror image's (test-time augmentation)."""
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        logits = model(xb)
        if flip:
            logits = (logits + model(xb.flip(-1))) / 2
        out.append(logits.float())
    return torch.cat(out)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(1) == y).double().mean().item()


def fit(config: OwnConfig, data: dict, device: torch.device, log=print) -> dict:
    """Train the own-design CNN through the shared loop (pipeline.train.run_epochs) and evaluate
    it once at the end.

    data: {"x_train" (N, 3, 32, 32) float32 (preprocessed), "y_train" (N,) int64, and any of
    "x_val"/"y_val", "x_test"/"y_test"}. log: called with each epoch's format_log_line (training
    loss and accuracy, time so far); no held-out data is evaluated during training.
    Returns {"log": [per-epoch dicts, keys LOG_COLUMNS], "final": {train_seconds,
    <split>_accuracy, ...}, "state_dict", "params", "test_predictions" (when x_test is given)}.
    """
    if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
        raise UserError("epochs, batch size and learning rate must be positive")
    set_seed(config.seed)
    t = {k: torch.as_tensor(v).to(device) for k, v in data.items()}
    x, y = t["x_train"], t["y_train"]
    model = OwnCNN(config.widths).to(device)
    with torch.no_grad():
        model.whiten.weight.copy_(whitening_weights(x[:config.whiten_images]))
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    n = x.shape[0]
    total = math.ceil(n / config.batch_size) * config.epochs  # steps of the whole one cycle
    augment = (config.translate, config.flip) if config.translate or config.flip else None
    rows = run_epochs(model, optimizer, x, y, generator, config.epochs, config.batch_size,
                      columns=LOG_COLUMNS, log=log, name="own CNN", augment=augment,
                      label_smoothing=config.label_smoothing, channels_last=config.channels_last,
                      lr_schedule=lambda step: lr_at(step, total, config.lr, config.warmup))
    train_seconds = rows[-1]["elapsed_train_seconds"]
    final = {"train_seconds": train_seconds, "epochs": config.epochs,
             "images_per_second": n * config.epochs / train_seconds,
             "final_train_loss": rows[-1]["train_loss"], "final_train_accuracy": rows[-1]["train_accuracy"]}
    out = {"log": rows, "final": final, "params": count_params(model),
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    start = time.perf_counter()
    for split in ("val", "test"):
        if f"x_{split}" in t:
            logits = predict(model, t[f"x_{split}"], flip=config.flip, channels_last=config.channels_last)
            final[f"{split}_accuracy"] = accuracy(logits, t[f"y_{split}"])
            final[f"{split}_loss"] = F.cross_entropy(logits, t[f"y_{split}"]).item()
            if split == "test":
                out["test_predictions"] = logits.argmax(1).cpu().numpy().astype(np.int64)
    final["eval_seconds"] = time.perf_counter() - start
    return out


# --- the hyperparameter search ----------------------------------------------------------------

BUDGET_SECONDS = 15 * 60  # the CPU budget for the final run's training
BUDGET_SHARE = 0.95       # plan the final run to this share of it: timing on a shared CPU varies
                          # (0.85 in the first final run, which then used 77% of the budget)
MAX_EPOCHS = 16           # beyond this the budget goes further on a wider net than on more epochs

# The search runs in stages. Each trial is a set of overrides of OwnConfig, trained on the 45,000
# training images for TRIAL_EPOCHS and scored on the 5,000 validation images only (the test set
# is not loaded). Stage 1 sets the peak learning rate, the setting that matters most (the logits
# are scaled by 1/9, so the useful range is far above the usual 0.1); stage 2 starts from stage
# 1's best trial and changes one thing at a time.
TRIAL_EPOCHS = 2
SEARCH: list[dict[str, dict]] = [
    {"lr0.25": {"lr": 0.25}, "lr0.5": {"lr": 0.5}, "lr1": {"lr": 1.0}, "lr2": {"lr": 2.0},
     "lr4": {"lr": 4.0}},  # added after the first search: its best was the largest rate tried
    {"no-smoothing": {"label_smoothing": 0.0}, "wd1e-3": {"weight_decay": 1e-3},
     "wider": {"widths": (48, 96, 192)}},
]
SEARCH_KEYS = ("widths", "epochs", "batch_size", "lr", "momentum", "weight_decay",
               "label_smoothing", "warmup", "translate", "flip")
SEARCH_COLUMNS = ("trial", *SEARCH_KEYS, "val_accuracy", "train_seconds", "params", "device", "data_md5")


def trial_names() -> list[str]:
    return [name for stage in SEARCH for name in stage]


def stage_trials(stage: int, rows: list[dict]) -> dict[str, dict]:
    """The full overrides of each trial of a stage: stage 0's as written, a later stage's on top
    of the best trial so far (rows: search.csv rows of the earlier stages)."""
    base = {"epochs": TRIAL_EPOCHS}
    if stage > 0:
        base = {**overrides_of(choose(rows)), **base}
    return {name: {**base, **o} for name, o in SEARCH[stage].items()}


def describe(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if k in SEARCH_KEYS)


def search_row(config: OwnConfig, overrides: dict) -> dict:
    """A trial's settings as CSV fields (widths as "32-64-128")."""
    row = {k: getattr(config, k) for k in SEARCH_KEYS}
    row["widths"] = "-".join(map(str, config.widths))
    return row


def overrides_of(row: dict) -> dict:
    """OwnConfig overrides from a search.csv / chosen.json row (strings or numbers)."""
    types = {f: type(getattr(OwnConfig(), f)) for f in SEARCH_KEYS}
    out = {}
    for k in SEARCH_KEYS:
        v = row[k]
        if k == "widths":
            out[k] = tuple(int(w) for w in str(v).split("-"))
        elif types[k] is bool:
            out[k] = v if isinstance(v, bool) else str(v) == "True"
        else:
            out[k] = types[k](v)
    return out


def choose(rows: list[dict]) -> dict:
    """The trial with the best validation accuracy whose training fits the budget (ties: the
    faster one), with the epochs of the final run: as many as fit BUDGET_SHARE of the budget at
    the trial's measured time per epoch, at most MAX_EPOCHS. The search compares settings on a
    short schedule; the final run spends the budget on the winner."""
    fits = [r for r in rows if float(r["train_seconds"]) <= BUDGET_SECONDS]
    if not fits:
        raise UserError("no search trial trained within the budget; nothing to choose")
    best = max(fits, key=lambda r: (float(r["val_accuracy"]), -float(r["train_seconds"])))
    per_epoch = float(best["train_seconds"]) / int(best["epochs"])
    return {**best, "val_accuracy": float(best["val_accuracy"]), "train_seconds": float(best["train_seconds"]),
            "seconds_per_epoch": per_epoch,
            "final_epochs": max(1, min(MAX_EPOCHS, int(BUDGET_SHARE * BUDGET_SECONDS // per_epoch)))}
