"""CS182 HW3 question 5(d): a CNN of our own design, trained fast on a 2-core CPU.

The design follows what the fastest public CIFAR-10 trainers do (Keller Jordan's airbench,
itself from hlb-CIFAR10 and Page's ResNet-9 work), scaled down until a few epochs fit in a
15-minute CPU budget:

- a frozen first layer that whitens 2x2 patches (its weights are the eigenvectors of the patch
  covariance of the training images, scaled by 1/sqrt(eigenvalue), each with both signs), so
  the first trained layer sees decorrelated inputs;
- three groups conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU, widths doubling,
  then a global max-pool and one linear layer whose logits are scaled down (1/9); the convs start
  as partial identities (Dirac), the BN layers learn only their biases, and those at a larger
  learning rate;
- SGD with Nesterov momentum, a linear warm-up then linear decay of the learning rate (one cycle),
  label smoothing, batch-wise random flips and 2-pixel translations, the whitening layer's bias
  trained for the first epochs only, lookahead (every 5 steps the weights are pulled towards a
  slow average of themselves, more strongly as training ends), and at test time the mean of the
  logits of each image, its mirror image and both one-pixel shifts of each;
- the whole training set on the device as one tensor, batches by slicing, channels_last.

The schedule, smoothing, augmentation and channels_last are options of the LeNet's training loop
(pipeline.train.run_epochs), so both models train, time and log the same way; lookahead and the
end of the whitening bias's training happen between steps, in a wrapper of the optimizer
(StepHook). Plain functions and one frozen dataclass; `invoke train-own` does the file I/O.
"""
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.contract import OWN_LOG_COLUMNS as LOG_COLUMNS  # own_cnn/log.csv's header
from pipeline.contract import OWN_SEARCH_COLUMNS as SEARCH_COLUMNS  # own_cnn/search.csv's header
from pipeline.contract import OWN_SEARCH_KEYS as SEARCH_KEYS  # the settings a trial records
from pipeline.errors import UserError
from pipeline.train import run_epochs, set_seed


@dataclass(frozen=True)
class OwnConfig:
    """Settings of one run of the own-design CNN; asdict() goes into its artifacts."""
    widths: tuple = (32, 64, 128)   # channels of the three conv groups
    epochs: int = 8
    batch_size: int = 512
    lr: float = 0.75                # peak learning rate (mean loss over the batch)
    momentum: float = 0.85          # Nesterov
    # airbench's 11.5 per 1024 examples and decay 0.0153 per 1024 (decoupled), put in the terms of
    # torch's SGD on the mean loss at batch 512: lr 11.5 * 512 / (1024 * (1 + 1 / (1 - 0.85)))
    # = 0.75, and a decay per step of 0.0153 * 512 / 7851 = 0.000998 = lr * weight_decay
    weight_decay: float = 0.00133
    label_smoothing: float = 0.2
    warmup: float = 0.2             # fraction of the steps spent warming up linearly
    lr_start: float = 0.2           # the schedule starts at this fraction of the peak...
    lr_end: float = 0.07            # ...and ends at this one (airbench's values)
    bias_scaler: float = 64.0       # BN biases learn this many times faster (same decay per step)
    whiten_bias_epochs: int = 3     # epochs the whitening layer's bias trains, then it is frozen
    lookahead: bool = True          # pull the weights towards their slow average every 5 steps
    translate: int = 2              # random shift of up to this many pixels (pad + crop)
    flip: bool = True               # random horizontal flips in training
    tta: int = 2                    # test-time views: 0 the image, 1 + mirror, 2 + 1-pixel shifts
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


class BiasNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (only the shift is learnt), as in airbench, with the shift
    stored divided by sqrt(bias_scaler): b = sqrt(s) * b'. SGD on b' (momentum and weight decay
    included, both linear) moves b exactly as SGD on b would with the learning rate times s and
    the same weight decay per step, so the shared loop's one learning rate serves both.
    eps 1e-12 and running statistics that follow the batches closely (momentum 0.4), as there."""

    def __init__(self, channels: int, bias_scaler: float = 64.0):
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)
        self.scale = math.sqrt(bias_scaler)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias * self.scale,
                            self.training, self.momentum, self.eps)


def dirac_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3x3 conv (padding 1, no bias) whose first min(c_in, c_out) filters start as the identity
    (each passes one input channel through), the rest as PyTorch's default: airbench's init,
    with which a freshly built group starts close to passing its input on."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:min(c_in, c_out)])
    return conv


def conv_group(c_in: int, c_out: int, bias_scaler: float = 64.0) -> nn.Sequential:
    """conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU: (N, c_in, H, W) ->
    (N, c_out, H//2, W//2). Pooling right after the first conv halves the cost of the rest."""
    return nn.Sequential(
        dirac_conv(c_in, c_out), nn.MaxPool2d(2), BiasNorm(c_out, bias_scaler), nn.GELU(),
        dirac_conv(c_out, c_out), BiasNorm(c_out, bias_scaler), nn.GELU())


class OwnCNN(nn.Module):
    """(N, 3, 32, 32) -> whiten 2x2 (24 channels, 31x31) -> 3 conv groups (15, 7, 3 pixels)
    -> global max-pool -> linear -> logits (N, n_classes) scaled by 1/9."""

    def __init__(self, widths=(32, 64, 128), n_classes: int = 10, bias_scaler: float = 64.0):
        super().__init__()
        if len(widths) != 3 or any(int(w) < 1 for w in widths):
            raise UserError(f"widths must be three positive channel counts, got {widths!r}")
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data, then fixed
        with torch.no_grad():
            self.whiten.bias.zero_()
        w1, w2, w3 = (int(w) for w in widths)
        self.groups = nn.Sequential(conv_group(24, w1, bias_scaler), conv_group(w1, w2, bias_scaler),
                                    conv_group(w2, w3, bias_scaler))
        self.head = nn.Linear(w3, n_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))                                 # (N, 24, 31, 31)
        x = self.groups(x)                                         # (N, w3, 3, 3)
        x = torch.amax(x, dim=(2, 3))                              # (N, w3)
        return self.head(x) / 9                                    # (N, n_classes)


def lr_at(step: int, total: int, peak: float, warmup: float, start: float = 0.0,
          end: float = 0.0) -> float:
    """One cycle: linear from start * peak (at step 0) to `peak` over the first `warmup` fraction
    of the steps, then linear down to end * peak at the last step (step total - 1)."""
    rise = max(1, round(warmup * total))
    if step < rise:
        return peak * (start + (1 - start) * step / rise)
    frac = min(1.0, (step - rise) / max(1, total - 1 - rise))
    return peak * (1 - (1 - end) * frac)


def lookahead_decay(step: int, total: int) -> float:
    """airbench's lookahead weight at a step: 0.95**5 * (step / total)**3, so the slow average
    barely holds back early training and holds most of the weight (0.77) at the end."""
    return 0.95 ** 5 * (step / total) ** 3


class StepHook:
    """The optimizer as pipeline.train.run_epochs drives it (param_groups, zero_grad, step), with
    `after(step)` called after each step, counting from 1: the own CNN's between-steps work
    (lookahead, freezing the whitening bias) without a special case in the shared loop."""

    def __init__(self, optimizer: torch.optim.Optimizer, after):
        self.optimizer, self.after, self.steps = optimizer, after, 0
        self.param_groups = optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.optimizer.step()
        self.steps += 1
        self.after(self.steps)


class Lookahead:
    """A slow copy of the model's float state (weights and BN running statistics). update()
    moves it towards the model by (1 - decay) and puts it back into the model, as airbench's
    LookaheadState: with decay 0 it just follows, with decay 1 the model becomes the slow copy."""

    def __init__(self, model: nn.Module):
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, slow in self.slow.items():
            slow.lerp_(state[k], 1 - decay)
            state[k].copy_(slow)


def count_params(model: nn.Module) -> int:
    """Every parameter, the frozen whitening weights included (they are part of the model)."""
    return sum(p.numel() for p in model.parameters())


def _mirrored(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (model(x) + model(x.flip(-1))) / 2


def tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """Test-time augmentation of a batch x (B, C, H, W) -> logits (B, n_classes), airbench's
    levels: 0 the image alone; 1 the mean with its mirror image; 2 half of that plus half the
    mean over the image shifted one pixel up-left and one down-right (reflect padding), each
    also mirrored: six views."""
    if level == 0:
        return model(x)
    logits = _mirrored(model, x)
    if level == 1:
        return logits
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [_mirrored(model, padded[..., 0:h, 0:w]), _mirrored(model, padded[..., 2:h + 2, 2:w + 2])]
    return (logits + (shifted[0] + shifted[1]) / 2) / 2


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, tta: int = 2,
            channels_last: bool = True) -> torch.Tensor:
    """Logits (N, n_classes) in eval mode, with test-time augmentation level `tta`
    (tta_logits)."""
    if tta not in (0, 1, 2):
        raise UserError(f"tta must be 0, 1 or 2, got {tta!r}")
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append(tta_logits(model, xb, tta).float())
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
    model = OwnCNN(config.widths, bias_scaler=config.bias_scaler).to(device)
    with torch.no_grad():
        model.whiten.weight.copy_(whitening_weights(x[:config.whiten_images]))
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    sgd = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=True,
                          weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs  # steps of the whole one cycle
    slow = Lookahead(model) if config.lookahead else None

    def after(step: int) -> None:
        if step == config.whiten_bias_epochs * steps_per_epoch:
            # from here on no gradient flows into the whitening layer: its bias stays as learnt,
            # and the backward pass skips the first group's input gradient
            model.whiten.bias.requires_grad_(False)
        if slow is not None and (step % 5 == 0 or step == total):
            slow.update(model, 1.0 if step == total else lookahead_decay(step, total))

    augment = (config.translate, config.flip) if config.translate or config.flip else None
    rows = run_epochs(model, StepHook(sgd, after), x, y, generator, config.epochs, config.batch_size,
                      columns=LOG_COLUMNS, log=log, name="own CNN", augment=augment,
                      label_smoothing=config.label_smoothing, channels_last=config.channels_last,
                      lr_schedule=lambda step: lr_at(step, total, config.lr, config.warmup,
                                                     config.lr_start, config.lr_end))
    train_seconds = rows[-1]["elapsed_train_seconds"]
    final = {"train_seconds": train_seconds, "epochs": config.epochs,
             "images_per_second": n * config.epochs / train_seconds,
             "final_train_loss": rows[-1]["train_loss"], "final_train_accuracy": rows[-1]["train_accuracy"]}
    out = {"log": rows, "final": final, "params": count_params(model),
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    start = time.perf_counter()
    for split in ("val", "test"):
        if f"x_{split}" in t:
            logits = predict(model, t[f"x_{split}"], tta=config.tta, channels_last=config.channels_last)
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
TARGET_ACCURACY = 0.88    # issue 15's target for the final run's test accuracy, in the budget
MAX_EPOCHS = 16           # beyond this the budget goes further on a wider net than on more epochs

# The search runs in stages. Each trial is a set of overrides of OwnConfig, trained on the 45,000
# training images for TRIAL_EPOCHS and scored on the 5,000 validation images only (the test set
# is not loaded). Stage 1 sets the peak learning rate, the setting that matters most, around
# airbench's own value put in our terms (0.75, see OwnConfig); stage 2 starts from stage 1's best
# trial and changes one thing at a time.
TRIAL_EPOCHS = 2
SEARCH: list[dict[str, dict]] = [
    {"lr0.375": {"lr": 0.375}, "lr0.75": {"lr": 0.75}, "lr1.5": {"lr": 1.5},
     "lr3": {"lr": 3.0}},  # added after the first pass: its best was the largest rate tried
    {"batch256": {"batch_size": 256}, "wd2x": {"weight_decay": 0.00266}},
]


def target_finding(test_accuracy: float, train_seconds: float) -> dict:
    """Whether a final run met the target (TARGET_ACCURACY within BUDGET_SECONDS), with the
    sentence the page states."""
    met = test_accuracy >= TARGET_ACCURACY and train_seconds <= BUDGET_SECONDS
    short = max(0.0, TARGET_ACCURACY - test_accuracy)
    sentence = (f"The target ({TARGET_ACCURACY:.0%} in {BUDGET_SECONDS // 60} minutes of training) is met."
                if met else
                f"The target ({TARGET_ACCURACY:.0%} in {BUDGET_SECONDS // 60} minutes of training) is not met"
                + (f": the test accuracy is {100 * short:.2f} percentage points short of it." if short
                   else ": the training took longer than the budget."))
    return {"test_accuracy": TARGET_ACCURACY, "budget_seconds": BUDGET_SECONDS, "met": met, "sentence": sentence}


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
