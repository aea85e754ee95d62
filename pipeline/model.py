"""The "model" stage: LeNet as CSCE-421 HW3 question 4(c) specifies it.

Inputs -> conv 6@5x5 -> [BN] -> ReLU -> maxpool 2 -> conv 16@5x5 -> [BN] -> ReLU -> maxpool 2
-> flatten -> fc 120 -> [BN] -> ReLU -> fc 84 -> [BN] -> ReLU -> [Dropout] -> fc n_classes.
Batch-norm and dropout are options, so one class builds both of the homework's models; the
named variants below fix the preprocessing that goes with each. Sizes are derived from the
input shape, never typed (the 16 * 5 * 5 = 400 of the walkthrough is computed here).
"""
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.errors import UserError

PREPROCESS_MODES = ("rescale", "normalize", "per_channel")


@dataclass(frozen=True)
class Variant:
    """One of the homework's two models: its inputs and its optional layers."""
    preprocess: str   # which pipeline.preprocess mode feeds it
    batch_norm: bool  # BN after every conv / hidden fc (question 4(c))
    dropout: float    # dropout probability before the output layer; 0 = no dropout layer
    description: str


VARIANTS = {
    # Model 1 of question 4(d): normalized inputs and the full architecture of 4(c).
    # The homework text defines "normalize" per image (each image by its own mean and variance).
    "lenet_bn_dropout": Variant("normalize", True, 0.5,
                                "Model 1: normalized inputs, batch-norm + dropout (p = 0.5)"),
    # Model 2 of question 4(d): rescaled inputs, neither batch-norm nor dropout.
    "lenet_plain": Variant("rescale", False, 0.0,
                           "Model 2: rescaled inputs, no batch-norm, no dropout"),
}


def get_variant(name: str) -> Variant:
    """Look a variant up by name; an unknown name is a user error (UserError, one sentence)."""
    if name not in VARIANTS:
        raise UserError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial output size of a convolution or pooling window: (size + 2p - k) // s + 1."""
    return (size + 2 * padding - kernel) // stride + 1


class LeNet(nn.Module):
    """LeNet-5 for (N, C, H, W) float images; returns (N, n_classes) logits (no softmax:
    nn.CrossEntropyLoss applies log-softmax itself, which is numerically safer)."""

    def __init__(self, n_classes: int = 10, batch_norm: bool = True, dropout: float = 0.5,
                 in_channels: int = 3, image_size: int = 32, kernel_size: int = 5):
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
        s = conv_output_size(conv_output_size(image_size, k), 2, 2)
        s = conv_output_size(conv_output_size(s, k), 2, 2)
        self.flat_features = 16 * s * s
        self.fc1 = nn.Linear(self.flat_features, 120)
        self.bn3 = norm1d(120)
        self.fc2 = nn.Linear(120, 84)
        self.bn4 = norm1d(84)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc3 = nn.Linear(84, n_classes)
        self.relu = nn.ReLU(inplace=True)  # stateless, so one instance serves every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu(self.bn1(self.conv1(x))))   # (N, 6, 14, 14)
        x = self.pool2(self.relu(self.bn2(self.conv2(x))))   # (N, 16, 5, 5)
        x = torch.flatten(x, 1)                              # (N, 400)
        x = self.relu(self.bn3(self.fc1(x)))                 # (N, 120)
        x = self.relu(self.bn4(self.fc2(x)))                 # (N, 84)
        return self.fc3(self.dropout(x))                     # (N, n_classes)


def build_model(variant: str, n_classes: int = 10) -> LeNet:
    """The LeNet of a named variant."""
    v = get_variant(variant)
    return LeNet(n_classes=n_classes, batch_norm=v.batch_norm, dropout=v.dropout)


def params_by_layer(model: nn.Module) -> dict[str, int]:
    """Trainable parameter count per layer (module name -> count), in definition order."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            layer = name.rsplit(".", 1)[0]
            counts[layer] = counts.get(layer, 0) + p.numel()
    return counts
