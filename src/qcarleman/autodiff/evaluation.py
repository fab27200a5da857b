"""How the derivative operators see a model (:mod:`qcarleman.autodiff.operators`).

* **Which parameters** — :func:`select_params`: one name or regular expression, or several, each
  matched in full against ``named_parameters`` names (like curvlinops' ``params`` and
  hessian-eigenthings' ``param_filter``). Pruning uses it to choose the tensors to prune, the
  active set to choose the free coordinates (the other tensors keep their values and are
  constants of the loss).
* **How it is evaluated** — :func:`evaluation_note` states in words what
  :func:`functional_copy` does: train mode with each batch's
  batch-norm statistics (running buffers neither used nor updated), dropout off (modules, and the
  dropout inside ``nn.MultiheadAttention`` and between ``nn.LSTM``/``nn.GRU`` layers), so the
  loss is a deterministic function of θ. Results carry this note.
* **The private copies** — :func:`functional_copy` (fused batch norm without running buffers for
  second derivatives, :class:`BatchStatNorm` written with elementary ops for third derivatives).
* **Attention** — :func:`math_attention`: every forward of the operators runs under
  ``sdpa_kernel(SDPBackend.MATH)``. PyTorch's fused scaled-dot-product attention kernels (flash,
  memory-efficient) have no double backward and no forward-mode derivative; the math kernel has
  both and gives the same values up to rounding.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..errors import UsageError

__all__ = [
    "select_params",
    "evaluation_note",
    "math_attention",
    "BatchStatNorm",
    "functional_copy",
]

Tensor = torch.Tensor


def select_params(names: Sequence[str], params: str | Iterable[str]) -> list[str]:
    """The names in ``names`` matching ``params`` (in the order of ``names``): parameter names or
    regular expressions matched with :func:`re.fullmatch` (``r"lstm\\..*"``, ``r".*\\.weight"``).
    A pattern that matches nothing is a :class:`~qcarleman.errors.UsageError` naming some of the
    available names."""
    patterns = [params] if isinstance(params, str) else list(params)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise UsageError("params must be parameter names or regular expressions (strings)")
    chosen: set[str] = set()
    for pat in patterns:
        try:
            rx = re.compile(pat)
        except re.error as exc:
            raise UsageError(
                f"params pattern {pat!r} is not a regular expression ({exc})"
            ) from None
        hit = {n for n in names if n == pat or rx.fullmatch(n)}
        if not hit:
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            raise UsageError(f"params pattern {pat!r} matches no parameter; names: {shown}")
        chosen |= hit
    return [n for n in names if n in chosen]


def evaluation_note(model: nn.Module) -> str:
    """How the operators evaluate ``model`` (what
    :func:`functional_copy` does), in words, for results."""
    mods = list(model.modules())
    bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods)
    drop = sum(isinstance(m, nn.modules.dropout._DropoutNd) for m in mods)
    inner = sum(isinstance(m, nn.MultiheadAttention | nn.RNNBase) and bool(m.dropout) for m in mods)
    attn = sum(isinstance(m, nn.MultiheadAttention) for m in mods)
    parts = [
        f"batch norm ({bn} layers) uses each batch's statistics (train mode; running buffers "
        "neither used nor updated)"
        if bn
        else "no batch norm",
        f"dropout off ({drop} dropout modules, {inner} attention/recurrent dropouts)"
        if drop or inner
        else "no dropout",
    ]
    if attn:
        parts.append(f"attention ({attn} layers) through the math SDPA kernel")
    return "loss evaluated as a deterministic function of θ: " + "; ".join(parts)


def math_attention():
    """Context selecting PyTorch's math attention kernel (module docstring, Attention)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


class BatchStatNorm(nn.Module):
    r"""Train-mode batch normalization from elementary ops, without running buffers:
    y = (x − mean_B x) / √(var_B x + ε) · weight + bias, with the biased batch variance over the
    batch and spatial axes (what ``nn.BatchNorm*d`` computes in train mode; Ioffe & Szegedy 2015,
    Alg. 1). Parameter names ``weight`` and ``bias`` match the module it replaces."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps = float(bn.eps)
        self.weight = bn.weight if bn.affine else None
        self.bias = bn.bias if bn.affine else None

    def forward(self, x: Tensor) -> Tensor:
        axes = [0, *range(2, x.ndim)]
        mean = x.mean(dim=axes, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        shape = [1, -1] + [1] * (x.ndim - 2)
        if self.weight is not None and self.bias is not None:  # both set iff affine
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y


def functional_copy(
    model: nn.Module, dtype: torch.dtype, fused: bool = False, device: torch.device | None = None
) -> nn.Module:
    """A private copy of ``model`` in ``dtype`` (on ``device``) whose forward is a pure function
    of θ: train mode with batch statistics and no running buffers — PyTorch's fused batch norm
    with ``fused=True`` (exact second derivatives), :class:`BatchStatNorm` otherwise (exact third
    derivatives) — and dropout disabled (module docstring)."""
    module = copy.deepcopy(model).to(dtype=dtype, device=device)
    for name, sub in list(module.named_modules()):
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            if fused:
                sub.track_running_stats = False
                sub.running_mean = sub.running_var = sub.num_batches_tracked = None
            else:
                parent_name, _, attr = name.rpartition(".")
                setattr(module.get_submodule(parent_name), attr, BatchStatNorm(sub))
    module.train()
    for sub in module.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd):
            sub.eval()
        elif isinstance(sub, nn.MultiheadAttention | nn.RNNBase):
            sub.dropout = 0.0  # a float attribute, applied in train mode
    for p in module.parameters():
        p.requires_grad_(False)
    return module
