r"""Unstructured L1 magnitude pruning and mask enforcement (ALGORITHM.md §1, §9).

Prunable tensors (:func:`prunable_names`) — every weight matrix a user would expect:

* ``weight`` of convolutions (``Conv*d``, ``ConvTranspose*d``) and ``Linear`` layers (also the
  ``out_proj`` of ``nn.MultiheadAttention``), except the final classifier unless
  ``include_classifier=True``;
* the input/hidden weights of recurrent layers (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``:
  ``weight_ih_l*``, ``weight_hh_l*``, ``weight_hr_l*``);
* the input projections of ``nn.MultiheadAttention`` (``in_proj_weight``, or
  ``q/k/v_proj_weight``);
* ``Embedding`` / ``EmbeddingBag`` tables only with ``include_embeddings=True``.

Biases and norm layers are never pruned by default. ``params`` (names or regular expressions,
matched in full against ``named_parameters`` names, like curvlinops' ``params`` or
hessian-eigenthings' ``param_filter``) replaces this default choice by an explicit one.

* :func:`prune_global` — one threshold over all prunable weights: the k = round(amount·P_prunable)
  entries of smallest |w| are zeroed (ties broken by position, so exactly k are pruned).
* :func:`prune_layerwise` — the same fraction in every prunable tensor.
* :func:`pruning_summary` — what was pruned, per tensor, and which weight matrices were kept.

A mask is ``{param_name: bool tensor}`` for every parameter (all-True for unpruned ones), True on
the active set S. :func:`apply_mask` zeroes pruned entries; :func:`mask_gradients` zeroes their
gradients so momentum buffers and weight decay never move them (pruned weights stay exactly 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..autodiff.evaluation import select_params
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
    "pruning_summary",
    "PruningSummary",
]

_LINEAR = (nn.modules.conv._ConvNd, nn.Linear)
_EMBEDDING = (nn.Embedding, nn.EmbeddingBag)
_MHA_IN = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


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


def _module_weights(name: str, m: nn.Module, include_embeddings: bool) -> list[str]:
    """Names (local to ``m``) of the prunable weight matrices owned directly by ``m``."""
    own = dict(m.named_parameters(recurse=False))
    if isinstance(m, _LINEAR):
        keys = ["weight"]
    elif isinstance(m, nn.RNNBase):
        keys = [k for k in own if k.startswith("weight_")]
    elif isinstance(m, nn.MultiheadAttention):
        keys = list(_MHA_IN)  # out_proj is a Linear child, found on its own
    elif isinstance(m, _EMBEDDING) and include_embeddings:
        keys = ["weight"]
    else:
        keys = []
    return [k for k in keys if own.get(k) is not None]


def prunable_names(
    model: nn.Module,
    include_classifier: bool = False,
    *,
    include_embeddings: bool = False,
    params: str | Iterable[str] | None = None,
) -> list[str]:
    """Parameter names of the prunable weights (module docstring), or the ``params`` selection."""
    if params is not None:
        return select_params([n for n, _ in model.named_parameters()], params)
    skip = None if include_classifier else classifier_name(model)
    return [
        f"{name}.{k}" if name else k
        for name, m in model.named_modules()
        if name != skip or not isinstance(m, nn.Linear | nn.modules.conv._ConvNd)
        for k in _module_weights(name, m, include_embeddings)
    ]


def full_mask(model: nn.Module) -> dict[str, torch.Tensor]:
    """All-True mask (the dense model)."""
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise UsageError(f"pruning amount must be in [0, 1), got {amount}")


def _names(model, include_classifier, include_embeddings, params) -> list[str]:
    names = prunable_names(
        model, include_classifier, include_embeddings=include_embeddings, params=params
    )
    if not names:
        raise UsageError(
            "the model has no conv, linear, recurrent or attention weights to prune; "
            "choose tensors with params=[...] (names or regular expressions)"
        )
    return names


@torch.no_grad()
def prune_global(
    model: nn.Module,
    amount: float,
    include_classifier: bool = False,
    *,
    include_embeddings: bool = False,
    params: str | Iterable[str] | None = None,
    verbose: bool = False,
) -> dict[str, torch.Tensor]:
    """Global L1 magnitude pruning in place; returns the mask (True = kept).

    Exactly k = round(amount · Σ numel) prunable weights with the smallest |w| are zeroed.
    ``verbose`` prints :func:`pruning_summary`.
    """
    _check_amount(amount)
    all_params = dict(model.named_parameters())
    names = _names(model, include_classifier, include_embeddings, params)
    total = sum(all_params[n].numel() for n in names)
    check_memory(total * (4 + 8 + 8), "global magnitude ranking of the prunable weights")
    scores = torch.cat([all_params[n].detach().abs().flatten().float().cpu() for n in names])
    k = int(round(amount * total))
    keep = torch.ones(total, dtype=torch.bool)
    if k:
        keep[torch.argsort(scores, stable=True)[:k]] = False
    mask = full_mask(model)
    offset = 0
    for n in names:
        p = all_params[n]
        mask[n] = keep[offset : offset + p.numel()].view_as(p).to(p.device)
        offset += p.numel()
    apply_mask(model, mask)
    if verbose:
        print(pruning_summary(model, mask, names=names))
    return mask


@torch.no_grad()
def prune_layerwise(
    model: nn.Module,
    amount: float,
    include_classifier: bool = False,
    *,
    include_embeddings: bool = False,
    params: str | Iterable[str] | None = None,
    verbose: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-tensor L1 magnitude pruning in place: round(amount · numel) entries of each prunable
    tensor are zeroed. Returns the mask; ``verbose`` prints :func:`pruning_summary`."""
    _check_amount(amount)
    all_params = dict(model.named_parameters())
    mask = full_mask(model)
    names = _names(model, include_classifier, include_embeddings, params)
    for n in names:
        p = all_params[n]
        k = int(round(amount * p.numel()))
        keep = torch.ones(p.numel(), dtype=torch.bool, device=p.device)
        if k:
            keep[torch.argsort(p.detach().abs().flatten(), stable=True)[:k]] = False
        mask[n] = keep.view_as(p)
    apply_mask(model, mask)
    if verbose:
        print(pruning_summary(model, mask, names=names))
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


@dataclass
class PruningSummary:
    """What a mask prunes: per pruned-or-prunable tensor ``(name, numel, pruned)``, and the
    weight matrices (≥ 2-D parameters) left dense. ``str()`` is a table."""

    tensors: list[tuple[str, int, int]]
    kept_dense: list[str] = field(default_factory=list)
    parameters: int = 0

    @property
    def pruned(self) -> int:
        return sum(p for _, _, p in self.tensors)

    @property
    def prunable(self) -> int:
        return sum(n for _, n, _ in self.tensors)

    def fractions(self) -> dict[str, float]:
        """Pruned fraction of each tensor."""
        return {name: p / n for name, n, p in self.tensors}

    def to_dict(self) -> dict:
        return {
            "parameters": self.parameters,
            "prunable": self.prunable,
            "pruned": self.pruned,
            "tensors": [{"name": a, "numel": n, "pruned": p} for a, n, p in self.tensors],
            "kept_dense": list(self.kept_dense),
        }

    def __str__(self) -> str:
        w = max([len(n) for n, _, _ in self.tensors] + [6])
        lines = [f"{'tensor':<{w}}  {'numel':>10}  {'pruned':>10}  fraction"]
        lines += [f"{a:<{w}}  {n:>10,}  {p:>10,}  {p / n:8.1%}" for a, n, p in self.tensors]
        frac = self.pruned / self.prunable if self.prunable else 0.0
        lines.append(
            f"pruned {self.pruned:,} of {self.prunable:,} prunable weights ({frac:.1%}), "
            f"{self.pruned / max(self.parameters, 1):.1%} of all {self.parameters:,} parameters"
        )
        if self.kept_dense:
            lines.append("weight matrices left dense: " + ", ".join(self.kept_dense))
        return "\n".join(lines)


def pruning_summary(
    model: nn.Module, mask: dict[str, torch.Tensor], names: Iterable[str] | None = None
) -> PruningSummary:
    """Per-tensor counts of ``mask`` on ``model``: the tensors in ``names`` (default: those the
    mask prunes), and every ≥ 2-D parameter the mask leaves dense (classifier, embeddings, …)."""
    params = dict(model.named_parameters())
    pruned = {n: int((~m).sum()) for n, m in mask.items() if n in params}
    chosen = set(names or ()) | {n for n, c in pruned.items() if c}
    return PruningSummary(
        tensors=[(n, params[n].numel(), pruned.get(n, 0)) for n in params if n in chosen],
        kept_dense=[n for n, p in params.items() if n not in chosen and p.ndim >= 2],
        parameters=sum(p.numel() for p in params.values()),
    )


def sparsity_report(
    model: nn.Module,
    mask: dict[str, torch.Tensor],
    include_classifier: bool = False,
    *,
    include_embeddings: bool = False,
    params: str | Iterable[str] | None = None,
) -> dict[str, float | int]:
    """Counts: total parameters P, prunable, pruned (mask False), zero prunable weights, active n
    = |S| and the pruned fraction of the prunable weights. Prunable: the tensors of
    :func:`prunable_names` with the same options, and any other tensor the mask prunes (so
    pruned ≤ prunable whatever options the mask was made with)."""
    all_params = dict(model.named_parameters())
    names = set(
        prunable_names(
            model, include_classifier, include_embeddings=include_embeddings, params=params
        )
    )
    names |= {n for n, m in mask.items() if n in all_params and not bool(m.all())}
    prunable = sum(all_params[n].numel() for n in names)
    pruned = sum(int((~m).sum()) for m in mask.values())
    zeros = sum(int((all_params[n] == 0).sum()) for n in names)
    total = sum(p.numel() for p in all_params.values())
    return {
        "parameters": total,
        "prunable": prunable,
        "pruned": pruned,
        "zero_prunable": zeros,
        "active": total - pruned,
        "sparsity": pruned / prunable if prunable else 0.0,
    }
