r"""Classical FLOPs of sparse training steps, layer by layer (ALGORITHM.md §7, classical side).

One forward pass with hooks on a batch of one example records each layer's output shape; then

* ``Conv2d``: 2·(k_h k_w C_in/groups)·C_out·H_out W_out multiply-add FLOPs, times the fraction
  of active (unpruned) weights of that layer (a pruned weight costs nothing on sparse kernels);
* ``Linear``: 2·in·out·(active fraction) per example (times the leading dims of the input);
* biases: 1 FLOP per output element; ``BatchNorm``: 4 FLOPs per element (normalize, scale,
  shift, with batch statistics); activations/pooling: 1 FLOP per element; other layers: 0.

Forward FLOPs scale linearly with the batch size B. One training step costs forward + backward
≈ 3 × forward (backward = gradients w.r.t. inputs and weights, each ≈ one forward; Kaplan et
al., arXiv:2001.08361, Sec. 2.1; the "6N per token" rule for dense layers). T steps cost T times
that. This is an estimate of arithmetic, not of wall-clock (sparse kernels rarely reach peak).

:func:`step_flops` is the *measured* alternative (kind ``"measured"``) to the analytic 6·w·B rule
of the cost layer (:func:`qcarleman.quantum.cost.formulas.classical_flops`, used when no model
is known): the same per-layer count with the mask (sparse) and without it (dense), so dense ≥
sparse layer by layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..quantity import Quantity
from ..quantum.cost.inputs import StepFlops

__all__ = ["layer_flops", "model_flops", "training_flops", "step_flops"]

_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.AvgPool2d, nn.MaxPool2d)
_ELEMENTWISE += (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _active_fraction(module: nn.Module, prefix: str, mask: dict | None) -> float:
    if mask is None or f"{prefix}.weight" not in mask:
        return 1.0
    m = mask[f"{prefix}.weight"]
    return float(m.float().mean())


def layer_flops(
    model: nn.Module, input_shape: tuple[int, ...], mask: dict | None = None
) -> list[dict]:
    """Forward FLOPs per example of each leaf layer: [{name, type, flops, active_fraction}].

    ``input_shape`` excludes the batch dimension, e.g. (3, 32, 32); ``mask`` maps parameter names
    to bool tensors (the run directory's mask); missing entries count as dense."""
    records: list[dict] = []
    hooks = []
    names = dict(model.named_modules())

    def hook(name):
        def fn(mod, inp, out):
            x = inp[0]
            frac = _active_fraction(mod, name, mask)
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
                f = 2.0 * k * out.numel() * frac
                f += out.numel() if mod.bias is not None else 0
            elif isinstance(mod, nn.Linear):
                rows = x.numel() // mod.in_features
                f = 2.0 * rows * mod.in_features * mod.out_features * frac
                f += rows * mod.out_features if mod.bias is not None else 0
            elif isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d | nn.LayerNorm):
                f = 4.0 * out.numel()
            elif isinstance(mod, _ELEMENTWISE):
                f = float(max(out.numel(), x.numel()))
            else:
                f = 0.0
            records.append(
                {"name": name, "type": type(mod).__name__, "flops": f, "active_fraction": frac}
            )

        return fn

    for name, mod in names.items():
        if name and not any(True for _ in mod.children()):
            hooks.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return records


def model_flops(model: nn.Module, input_shape: tuple[int, ...], mask: dict | None = None) -> float:
    """Forward FLOPs of one example, summed over layers (:func:`layer_flops`)."""
    return math.fsum(r["flops"] for r in layer_flops(model, input_shape, mask))


def training_flops(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int,
    steps: int = 1,
    mask: dict | None = None,
) -> float:
    """FLOPs of ``steps`` SGD steps on batches of ``batch_size``: steps · 3 · B · forward."""
    return 3.0 * batch_size * steps * model_flops(model, input_shape, mask)


def step_flops(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, mask: dict | None = None
) -> StepFlops:
    """FLOPs of one training step on ``batch_size`` examples, counted per layer
    (:func:`training_flops`), on the active weights of ``mask`` (sparse) and on every weight
    (dense); both of kind ``"measured"`` (counted on the model, not estimated from n)."""
    src = "per-layer count on the model: 3·B·forward FLOPs (qcarleman.training.flops)"
    return StepFlops(
        sparse=Quantity(
            training_flops(model, input_shape, batch_size, 1, mask),
            "measured",
            source=src + ", active weights only",
        ),
        dense=Quantity(
            training_flops(model, input_shape, batch_size, 1, None),
            "measured",
            source=src + ", every weight",
        ),
    )
