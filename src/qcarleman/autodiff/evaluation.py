"""How the derivative operators see a model (:mod:`qcarleman.autodiff.operators`).

* **Which parameters** — :func:`select_params`: one name or regular expression, or several, each
  matched in full against ``named_parameters`` names (like curvlinops' ``params`` and
  hessian-eigenthings' ``param_filter``). Pruning uses it to choose the tensors to prune, the
  active set to choose the free coordinates (the other tensors keep their values and are
  constants of the loss).
* **How it is evaluated** — :func:`evaluation_note` states in words what
  :func:`~qcarleman.autodiff.operators.functional_copy` does: train mode with each batch's
  batch-norm statistics (running buffers neither used nor updated), dropout off (modules, and the
  dropout inside ``nn.MultiheadAttention`` and between ``nn.LSTM``/``nn.GRU`` layers), so the
  loss is a deterministic function of θ. Results carry this note.
* **Attention** — :func:`math_attention`: every forward of the operators runs under
  ``sdpa_kernel(SDPBackend.MATH)``. PyTorch's fused scaled-dot-product attention kernels (flash,
  memory-efficient) have no double backward and no forward-mode derivative; the math kernel has
  both and gives the same values up to rounding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from torch import nn

from ..errors import UsageError

__all__ = ["select_params", "evaluation_note", "math_attention"]


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
    :func:`~qcarleman.autodiff.operators.functional_copy` does), in words, for results."""
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
