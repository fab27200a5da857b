r"""Models in plain torch: the paper's CIFAR ResNet, a small CNN and an MLP (ALGORITHM.md §9).

* :class:`ResNet` — the CIFAR ResNet of depth 6k+2 with k blocks per stage (BasicBlock below
  depth 54, Bottleneck with expansion 4 from 54), a 3×3 stem conv ``in_channels → 16w``, stages of
  width 16w/32w/64w (stride 2 at the start of stages 2 and 3, 1×1 conv + BN shortcut where the
  shape changes), no conv biases, BN, global average pooling (= the paper's 8×8 pooling on 32×32
  inputs) and a linear head. ``ResNet(32, 4, 3, 100)`` has 7,451,044 trainable parameters (the
  paper's "7 million" model); ``ResNet(56, 11, 3, 100)`` has 103,703,700.
* :class:`SmallCNN` — conv-(BN)-ReLU stages, each followed by 2×2 max pooling, then a linear head;
  CPU-sized (digits, MNIST).
* :class:`MLP` — fully connected, any input shape (flattened); smooth activations available
  (``tanh``, ``gelu``, ``softplus``) for third-order derivatives that do not vanish.

Every model names its final linear layer ``classifier`` (pruning excludes it by default).
:func:`build_model` builds a model from a plain dict spec, the form stored in checkpoints.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..errors import UsageError

__all__ = [
    "ResNet",
    "SmallCNN",
    "MLP",
    "MODELS",
    "build_model",
    "model_class",
    "model_options",
    "count_parameters",
]


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity or 1×1 conv + BN shortcut (He et al. 2016)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 conv-BN with expansion 4 (He et al. 2016)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(in_planes, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class ResNet(nn.Module):
    """CIFAR ResNet of depth 6k+2 and widening factor w (ALGORITHM.md §9)."""

    def __init__(self, depth: int = 32, widen: int = 1, in_channels: int = 3, classes: int = 10):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise UsageError(
                f"ResNet depth must be 6k+2 with k >= 1 (8, 14, 20, 32, 56, ...), got {depth}"
            )
        if widen < 1 or in_channels < 1 or classes < 2:
            raise UsageError("ResNet needs widen >= 1, in_channels >= 1 and classes >= 2")
        k = (depth - 2) // 6
        block = Bottleneck if depth >= 54 else BasicBlock
        self.depth, self.widen = depth, widen
        width = 16 * widen
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        in_planes = width
        stages = []
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(k):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_planes, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.classifier(torch.flatten(self.pool(out), 1))


class SmallCNN(nn.Module):
    """``stages`` × [3×3 conv (width·2^i channels) → BN (optional) → ReLU → 2×2 max pool] → linear.

    The spatial side after the stages is ``image_size // 2**stages`` (must be ≥ 1).
    """

    def __init__(
        self,
        in_channels: int = 1,
        classes: int = 10,
        image_size: int = 8,
        width: int = 32,
        stages: int = 2,
        bn: bool = True,
    ):
        super().__init__()
        side = image_size // 2**stages
        if stages < 1 or width < 1 or side < 1:
            raise UsageError(
                f"SmallCNN needs width >= 1 and 1 <= stages <= log2(image_size={image_size}); "
                f"got stages={stages}, width={width}"
            )
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(stages):
            out = width * 2**i
            layers.append(nn.Conv2d(c, out, 3, 1, 1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * side * side, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "softplus": nn.Softplus}


class MLP(nn.Module):
    """Flatten → [Linear → activation] per hidden width → Linear ``classifier``."""

    def __init__(
        self,
        in_features: int = 64,
        classes: int = 10,
        hidden: list[int] | tuple[int, ...] = (128,),
        activation: str = "relu",
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise UsageError(
                f"MLP activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        c = in_features
        for h in hidden:
            layers += [nn.Linear(c, int(h)), _ACTIVATIONS[activation]()]
            c = int(h)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


MODELS: dict[str, type[nn.Module]] = {"resnet": ResNet, "smallcnn": SmallCNN, "mlp": MLP}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Build a model from ``{"name": "resnet"|"smallcnn"|"mlp", **constructor keywords}``.

    Unknown names or keywords raise :class:`UsageError` naming the allowed ones.
    """
    cls, kwargs = model_class(spec)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(
            f"the [model] table {kwargs} does not build a {cls.__name__} ({exc}); give numbers "
            "of the right type (e.g. hidden = [64, 32], width = 16)"
        ) from None


def model_class(spec: dict[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    """Check a spec without building it: the model class and its constructor keywords."""
    kwargs = dict(spec)
    name = str(kwargs.pop("name", "")).lower()
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    bad = sorted(set(kwargs) - set(model_options(cls)))
    if bad:
        raise UsageError(
            f"model {name!r} has no option {bad[0]!r}; allowed: {', '.join(model_options(cls))}"
        )
    return cls, kwargs


def model_options(cls: type[nn.Module]) -> list[str]:
    """Constructor keyword names of a model class."""
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
