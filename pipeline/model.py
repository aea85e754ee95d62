"""The "model" stage: LeNet as CSCE-421 HW3 question 4(c) specifies it.

Inputs -> conv 6@5x5 -> [BN] -> ReLU -> maxpool 2 -> conv 16@5x5 -> [BN] -> ReLU -> maxpool 2
-> flatten -> fc 120 -> [BN] -> ReLU -> fc 84 -> [BN] -> ReLU -> [Dropout] -> fc n_classes.
Batch-norm and dropout are options, so one class builds both of the homework's models; the
named variants below fix the preprocessing that goes with each. Sizes are derived from the
input shape, never typed (the 16 * 5 * 5 = 400 of the walkthrough is computed here).

Two hand-written autograd functions make the CPU step faster while computing the same function
and the same gradients as the stock layers (checked against them in float64 by
tests/test_speed_layers.py): a 2x2 max-pool fused with the ReLU, and a convolution whose weight
gradient is computed as a forward convolution. `LeNet(fast=False)` runs the stock torch.nn layers
in the homework's order; `invoke bench` uses it for the plain loop.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UserError

PREPROCESS_MODES = ("rescale", "normalize", "per_channel")


@dataclass(frozen=True)
class Variant:
    """A model and its inputs: the homework's two, or any cell of the ablation's factorial design."""
    preprocess: str   # which pipeline.preprocess mode feeds it
    batch_norm: bool  # BN after every conv / hidden fc (question 4(c))
    dropout: float    # dropout probability before the output layer; 0 = no dropout layer
    description: str
    augment: bool = False  # random crop (pad 4) + horizontal flip of each training batch


VARIANTS = {
    # Model 1 of question 4(d): normalized inputs and the full architecture of 4(c).
    # The homework text defines "normalize" per image (each image by its own mean and variance).
    "lenet_bn_dropout": Variant("normalize", True, 0.5,
                                "Model 1: normalized inputs, batch-norm + dropout (p = 0.5)"),
    # Model 2 of question 4(d): rescaled inputs, neither batch-norm nor dropout.
    "lenet_plain": Variant("rescale", False, 0.0,
                           "Model 2: rescaled inputs, no batch-norm, no dropout"),
}
DROPOUT_P = 0.5  # the homework's dropout probability, used whenever a spec says "+dropout"
SPEC_PARTS = ("bn", "dropout", "augment")


def dropout_p(dropout) -> float:
    """A spec's dropout as a probability: True is the homework's DROPOUT_P, False 0, a float itself."""
    if isinstance(dropout, bool):
        return DROPOUT_P if dropout else 0.0
    p = float(dropout)
    if not 0.0 <= p < 1.0:
        raise UserError(f"dropout probability must be in [0, 1), got {p:g}")
    return p


def spec_name(preprocess: str, batch_norm: bool, dropout, augment: bool = False) -> str:
    """The variant name of one factor combination, e.g. "rescale+bn+augment". dropout: a bool
    (the ablation's factor: p = DROPOUT_P or none) or a probability; "+dropout" means
    p = DROPOUT_P, any other p is spelt "+dropout0.25"."""
    p = dropout_p(dropout)
    parts = [preprocess] + (["bn"] if batch_norm else [])
    if p > 0:
        parts.append("dropout" if p == DROPOUT_P else f"dropout{p:g}")
    return "+".join(parts + (["augment"] if augment else []))


def get_variant(name: str) -> Variant:
    """A named variant, or a spec "PREPROCESS[+bn][+dropout[P]][+augment]" (the ablation's and
    the dropout experiment's cells); anything else is a user error (UserError, one sentence)."""
    if name in VARIANTS:
        return VARIANTS[name]
    preprocess, *parts = name.split("+")
    p = 0.0
    for i, part in enumerate(parts):
        if part.startswith("dropout"):
            try:
                p = dropout_p(float(part[7:])) if part != "dropout" else DROPOUT_P
            except (ValueError, UserError):
                p = -1.0
            parts[i] = "dropout" if p > 0 else part  # dropout0 is spelt without the part
    valid = preprocess in PREPROCESS_MODES and [x for x in SPEC_PARTS if x in parts] == parts and p >= 0
    canonical = spec_name(preprocess, "bn" in parts, p, "augment" in parts) if valid else None
    if valid and canonical != name:  # one spelling per variant, so runs and files match up
        raise UserError(f"variant {name!r} is spelt {canonical!r}")
    if not valid:
        raise UserError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}, or a spec "
                        f"PREPROCESS[+bn][+dropout[P]][+augment] with PREPROCESS one of "
                        f"{', '.join(PREPROCESS_MODES)} and P a probability below 1 (default {DROPOUT_P})")
    bn, augment = "bn" in parts, "augment" in parts
    words = [f"{preprocess} inputs", "batch-norm" if bn else "no batch-norm",
             f"dropout (p = {p:g})" if p else "no dropout"] + (["augmented"] if augment else [])
    return Variant(preprocess, bn, p, ", ".join(words), augment)


class MaxPool2x2ReLU(torch.autograd.Function):
    """relu(maxpool2x2(a)) = maxpool2x2(relu(a)): max commutes with the monotone ReLU, and the
    gradient reaches the same element (the first maximum of each window in scan order, as in
    torch's max_pool2d; zero where the maximum is <= 0, as ReLU's backward gives). Pooling first
    ReLUs 4x fewer elements, and four strided maxima are much cheaper on the CPU than
    max_pool2d_with_indices for these small planes (forward of (128, 6, 28, 28) on the 2-core
    CPU: 1.7 ms vs 0.14 ms).
    """

    @staticmethod
    def forward(ctx, a):
        """a: (N, C, H, W), H and W even. Returns (N, C, H/2, W/2)."""
        N, C, H, W = a.shape
        a00, a01 = a[:, :, 0::2, 0::2], a[:, :, 0::2, 1::2]   # the four corners of each window
        a10, a11 = a[:, :, 1::2, 0::2], a[:, :, 1::2, 1::2]   # (N, C, H/2, W/2) views each
        right0, right1 = a01 > a00, a11 > a10                  # strict >: ties keep the first
        top, bottom = torch.maximum(a00, a01), torch.maximum(a10, a11)
        down = bottom > top
        out = torch.maximum(top, bottom).clamp_min_(0)
        # Flat index (in the H*W plane) of each window's maximum, as max_pool2d_with_indices has it.
        # On a's device: a CPU index would make the add below fail on a GPU (tests/test_train.py).
        corner = (torch.arange(0, H * W, 2 * W, device=a.device).view(-1, 1)
                  + torch.arange(0, W, 2, device=a.device))                        # (H/2, W/2)
        idx = torch.add(corner, down, alpha=W).add_(torch.where(down, right1, right0))
        ctx.save_for_backward(a, idx, out)
        return out

    @staticmethod
    def backward(ctx, dout):
        """dout: (N, C, H/2, W/2). Returns da: (N, C, H, W)."""
        a, idx, out = ctx.saved_tensors
        dout = torch.ops.aten.threshold_backward(dout, out, 0)   # ReLU: zero where out <= 0
        return torch.ops.aten.max_pool2d_with_indices_backward(
            dout, a, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)


class Conv2dFn(torch.autograd.Function):
    """A stride-1, unpadded conv2d whose weight gradient runs as a forward convolution over the
    batch (dw[o, c] = sum_n dout[n, o] * x[n, c], correlated): for conv2's shapes oneDNN's
    forward kernel does this in about half the time of its weight-gradient kernel (0.47 vs ~1 ms).
    Input gradient: the transposed convolution torch itself uses."""

    @staticmethod
    def forward(ctx, x, w, b):
        """x: (N, C, H, W), w: (O, C, k, k), b: (O,). Returns (N, O, H-k+1, W-k+1)."""
        ctx.save_for_backward(x, w)
        return F.conv2d(x, w, b)

    @staticmethod
    def backward(ctx, dout):
        """dout: (N, O, H', W'). Returns dx (N, C, H, W) or None, dw (O, C, k, k), db (O,)."""
        x, w = ctx.saved_tensors
        dx = F.conv_transpose2d(dout, w) if ctx.needs_input_grad[0] else None
        # Batch as the channel axis: (C, N, H, W) correlated with (O, N, H', W') -> (C, O, k, k).
        dw = F.conv2d(x.transpose(0, 1), dout.transpose(0, 1)).transpose(0, 1)
        return dx, dw, dout.sum((0, 2, 3))


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial output size of a convolution or pooling window: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - kernel) // stride + 1


class LeNet(nn.Module):
    """LeNet-5 for (N, C, H, W) float images; returns (N, n_classes) logits (no softmax:
    nn.CrossEntropyLoss applies log-softmax itself, which is numerically safer)."""

    def __init__(self, n_classes: int = 10, batch_norm: bool = True, dropout: float = 0.5,
                 in_channels: int = 3, image_size: int = 32, kernel_size: int = 5,
                 fast: bool = True):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        k = kernel_size

        def norm2d(c):
            return nn.BatchNorm2d(c) if batch_norm else nn.Identity()

        def norm1d(c):
            return nn.BatchNorm1d(c) if batch_norm else nn.Identity()

        # With BN right after a layer, that layer's bias is redundant (BN subtracts the mean),
        # but the homework's torch.nn layers keep it; we keep it too so parameter counts match.
        self.conv1 = nn.Conv2d(in_channels, 6, k)
        self.bn1 = norm2d(6)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, k)
        self.bn2 = norm2d(16)
        self.pool2 = nn.MaxPool2d(2, 2)
        # Track the spatial size through conv -> pool -> conv -> pool: 32 -> 28 -> 14 -> 10 -> 5.
        s1 = conv_output_size(image_size, k)
        s2 = conv_output_size(conv_output_size(s1, 2, 2), k)
        s = conv_output_size(s2, 2, 2)
        # Our autograd functions (the same maths) or the stock layers; MaxPool2x2ReLU needs even
        # planes (an odd one makes the stock pool drop its last row, so use the stock path).
        self.fast = fast and s1 % 2 == 0 and s2 % 2 == 0
        self.flat_features = 16 * s * s
        self.fc1 = nn.Linear(self.flat_features, 120)
        self.bn3 = norm1d(120)
        self.fc2 = nn.Linear(120, 84)
        self.bn4 = norm1d(84)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc3 = nn.Linear(84, n_classes)
        self.relu = nn.ReLU(inplace=True)  # stateless, so one instance serves every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:  # the same function: ReLU after the pool, conv2 with a faster backward
            x = MaxPool2x2ReLU.apply(self.bn1(self.conv1(x)))                      # (N, 6, 14, 14)
            x = MaxPool2x2ReLU.apply(self.bn2(Conv2dFn.apply(x, self.conv2.weight,
                                                             self.conv2.bias)))     # (N, 16, 5, 5)
        else:
            x = self.pool1(self.relu(self.bn1(self.conv1(x))))   # (N, 6, 14, 14)
            x = self.pool2(self.relu(self.bn2(self.conv2(x))))   # (N, 16, 5, 5)
        x = torch.flatten(x, 1)                              # (N, 400)
        x = self.relu(self.bn3(self.fc1(x)))                 # (N, 120)
        x = self.relu(self.bn4(self.fc2(x)))                 # (N, 84)
        return self.fc3(self.dropout(x))                     # (N, n_classes)


def build_model(variant: str, n_classes: int = 10, fast: bool = True) -> LeNet:
    """The LeNet of a named variant (fast=False: the stock torch.nn layers only)."""
    v = get_variant(variant)
    return LeNet(n_classes=n_classes, batch_norm=v.batch_norm, dropout=v.dropout, fast=fast)


def params_by_layer(model: nn.Module) -> dict[str, int]:
    """Trainable parameter count per layer (module name -> count), in definition order."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            layer = name.rsplit(".", 1)[0]
            counts[layer] = counts.get(layer, 0) + p.numel()
    return counts
