r"""Unstructured L1 magnitude pruning and mask enforcement (ALGORITHM.md §1, §9).

Prunable tensors: the weights of ``Conv*d`` and ``Linear`` modules, except the final classifier
unless ``include_classifier=True``. Biases and norm layers are never pruned.

* :func:`prune_global` — one threshold over all prunable weights: the k = round(amount·P_prunable)
  entries of smallest |w| are zeroed (ties broken by position, so exactly k are pruned).
* :func:`prune_layerwise` — the same fraction in every prunable tensor.

A mask is ``{param_name: bool tensor}`` for every parameter (all-True for unpruned ones), True on
the active set S. :func:`apply_mask` zeroes pruned entries; :func:`mask_gradients` zeroes their
gradients so momentum buffers and weight decay never move them (pruned weights stay exactly 0).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UsageError, check_memory

__all__ = [
    "classifier_name",
    "prunable_names",
    "full_mask",
    "prune_global",
    "prune_layerwise",
    "apply_mask",
    "mask_gradients",
    "sparsity_report",
]

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def classifier_name(model: nn.Module) -> str | None:
    """Module name of the final classifier: ``model.classifier`` if present, else the last
    ``nn.Linear`` in module order (None if there is none)."""
    last = None
    for name, m in model.named_modules():
        if m is getattr(model, "classifier", None):
            return name
        if isinstance(m, nn.Linear):
            last = name
    return last


def prunable_names(model: nn.Module, include_classifier: bool = False) -> list[str]:
    """Parameter names of the prunable weights (conv/linear ``.weight``)."""
    skip = None if include_classifier else classifier_name(model)
    return [
        f"{name}.weight" if name else "weight"
        for name, m in model.named_modules()
        if isinstance(m, _PRUNABLE) and name != skip and getattr(m, "weight", None) is not None
    ]


def full_mask(model: nn.Module) -> dict[str, torch.Tensor]:
    """All-True mask (the dense model)."""
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise UsageError(f"pruning amount must be in [0, 1), got {amount}")


@torch.no_grad()
def prune_global(
    model: nn.Module, amount: float, include_classifier: bool = False
) -> dict[str, torch.Tensor]:
    """Global L1 magnitude pruning in place; returns the mask (True = kept).

    Exactly k = round(amount · Σ numel) prunable weights with the smallest |w| are zeroed.
    """
    _check_amount(amount)
    params = dict(model.named_parameters())
    names = prunable_names(model, include_classifier)
    if not names:
        raise UsageError("the model has no conv or linear weights to prune")
    total = sum(params[n].numel() for n in names)
    check_memory(total * (4 + 8 + 8), "global magnitude ranking of the prunable weights")
    scores = torch.cat([params[n].detach().abs().flatten().float().cpu() for n in names])
    k = int(round(amount * total))
    keep = torch.ones(total, dtype=torch.bool)
    if k:
        keep[torch.argsort(scores, stable=True)[:k]] = False
    mask = full_mask(model)
    offset = 0
    for n in names:
        p = params[n]
        mask[n] = keep[offset : offset + p.numel()].view_as(p).to(p.device)
        offset += p.numel()
    apply_mask(model, mask)
    return mask


@torch.no_grad()
def prune_layerwise(
    model: nn.Module, amount: float, include_classifier: bool = False
) -> dict[str, torch.Tensor]:
    """Per-tensor L1 magnitude pruning in place: round(amount · numel) entries of each prunable
    tensor are zeroed. Returns the mask."""
    _check_amount(amount)
    params = dict(model.named_parameters())
    mask = full_mask(model)
    for n in prunable_names(model, include_classifier):
        p = params[n]
        k = int(round(amount * p.numel()))
        keep = torch.ones(p.numel(), dtype=torch.bool, device=p.device)
        if k:
            keep[torch.argsort(p.detach().abs().flatten(), stable=True)[:k]] = False
        mask[n] = keep.view_as(p)
    apply_mask(model, mask)
    return mask


@torch.no_grad()
def apply_mask(model: nn.Module, mask: dict[str, torch.Tensor]) -> None:
    """Set pruned entries (mask False) to exactly +0."""
    for n, p in model.named_parameters():
        m = mask.get(n)
        if m is not None and not bool(m.all()):
            p.masked_fill_(~m.to(p.device), 0.0)


def mask_gradients(model: nn.Module, mask: dict[str, torch.Tensor]) -> None:
    """Zero the gradients of pruned entries (before the optimizer step)."""
    for n, p in model.named_parameters():
        m = mask.get(n)
        if p.grad is not None and m is not None and not bool(m.all()):
            p.grad.masked_fill_(~m.to(p.device), 0.0)


def sparsity_report(
    model: nn.Module, mask: dict[str, torch.Tensor], include_classifier: bool = False
) -> dict[str, float | int]:
    """Counts: total parameters P, prunable, pruned (mask False), zero prunable weights, active n
    = |S| and the pruned fraction of the prunable weights."""
    params = dict(model.named_parameters())
    names = prunable_names(model, include_classifier)
    prunable = sum(params[n].numel() for n in names)
    pruned = sum(int((~m).sum()) for m in mask.values())
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    total = sum(p.numel() for p in params.values())
    return {
        "parameters": total,
        "prunable": prunable,
        "pruned": pruned,
        "zero_prunable": zeros,
        "active": total - pruned,
        "sparsity": pruned / prunable if prunable else 0.0,
    }
