"""The active set S and the inputs of the loss operators (ALGORITHM.md §1).

:class:`ActiveParams` is the flat view of the free coordinates (the unpruned entries of the
selected parameter tensors, n = |S|) with flatten/unflatten between a model's tensors and one
vector; :func:`resolve_device` picks where the operators' tensors live; :func:`as_batches` turns
the user's data into a list of (x, y) pairs in the operators' dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from .evaluation import select_params

__all__ = ["ActiveParams", "resolve_device", "as_batches"]

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor]


class ActiveParams:
    """Flat view θ_S of a model's trainable parameters restricted to the active set of a mask.

    Parameters
    ----------
    model:
        The module; its trainable parameters (``requires_grad``) in ``named_parameters`` order.
    mask:
        ``{name: bool tensor}`` with each tensor shaped like its parameter (the checkpoint format
        of the training run directories). Missing names are fully active (biases, norm layers).
    include_pruned:
        Keep the pruned coordinates in the flat view too (they stay at their value 0 but become
        free coordinates); the default restricts to S.
    params:
        Only these parameter tensors (names or regular expressions) are free coordinates; the
        others are held at their values (default: all trainable parameters).
    device:
        Where the index tensors and flattened vectors live (default: the parameters' device).
    """

    def __init__(
        self,
        model: nn.Module,
        mask: Mapping[str, Tensor] | None = None,
        include_pruned: bool = False,
        params: str | Iterable[str] | None = None,
        device: str | torch.device | None = None,
    ):
        trainable = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            raise UsageError("the model has no trainable parameters; pass a model with parameters")
        known = {k for k, _ in trainable}
        if params is not None:
            chosen = set(select_params([k for k, _ in trainable], params))
            mask = {k: v for k, v in (mask or {}).items() if k in chosen or k not in known}
        selected = trainable if params is None else [(k, p) for k, p in trainable if k in chosen]
        mask = dict(mask or {})
        unknown = sorted(set(mask) - known)
        if unknown:
            raise UsageError(
                f"mask names {unknown[:3]} are not trainable parameters of the model; "
                "pass the mask saved with this model"
            )
        self.device = torch.device(device) if device is not None else selected[0][1].device
        self.names: list[str] = []
        self.shapes: list[torch.Size] = []
        self.mask: dict[str, Tensor] = {}
        self._index: list[Tensor | None] = []  # flat active positions, None = all active
        self._gather: dict[int, Tensor] = {}
        sizes = []
        for name, p in selected:
            m = mask.get(name)
            if m is not None:
                m = torch.as_tensor(m)
                if tuple(m.shape) != tuple(p.shape):
                    raise UsageError(
                        f"mask for {name!r} has shape {tuple(m.shape)} but the parameter has "
                        f"shape {tuple(p.shape)}; pass the mask saved with this model"
                    )
                m = m.to(dtype=torch.bool)  # indices found where the mask is, then moved
            full = m is None or include_pruned or bool(m.all())
            self.names.append(name)
            self.shapes.append(p.shape)
            self.mask[name] = (
                torch.ones(p.shape, dtype=torch.bool, device=self.device)
                if m is None
                else m.to(self.device)
            )
            idx = None if full or m is None else m.reshape(-1).nonzero().reshape(-1)
            if idx is not None:  # position in the active segment, or the zero slot if pruned
                gather = torch.full((p.numel(),), idx.numel(), dtype=torch.long, device=idx.device)
                gather[idx] = torch.arange(idx.numel(), device=idx.device)
                self._gather[len(self._index)] = gather.to(self.device)
                idx = idx.to(self.device)
            self._index.append(idx)
            sizes.append(p.numel() if idx is None else idx.numel())
        self.sizes: list[int] = sizes
        self.offsets: list[int] = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.n: int = int(self.offsets[-1])
        self.P: int = sum(p.numel() for _, p in trainable)
        self.include_pruned = include_pruned
        if self.n == 0:
            raise UsageError("the mask leaves no active parameters; pass a mask with some True")

    def flatten(self, params: nn.Module | Mapping[str, Tensor]) -> Tensor:
        """θ_S as a 1-D tensor of length n, from a module or a ``{name: tensor}`` dict."""
        if isinstance(params, nn.Module):
            params = dict(params.named_parameters())
        parts = []
        for name, shape, idx in zip(self.names, self.shapes, self._index):
            if name not in params:
                raise UsageError(f"parameter {name!r} is missing; pass the model the mask fits")
            p = params[name].detach()
            if tuple(p.shape) != tuple(shape):
                raise UsageError(
                    f"parameter {name!r} has shape {tuple(p.shape)}, expected {tuple(shape)}; "
                    "pass the model the mask fits"
                )
            flat = p.reshape(-1).to(self.device)
            parts.append(flat if idx is None else flat[idx])
        return torch.cat(parts)

    def unflatten(self, vec: Tensor) -> dict[str, Tensor]:
        """Full parameter tensors from θ_S: active entries from ``vec``, pruned entries 0.

        Differentiable in ``vec`` (also under ``torch.func`` transforms)."""
        if vec.shape != (self.n,):
            raise UsageError(
                f"flat parameter vector has shape {tuple(vec.shape)} but the active set has "
                f"n = {self.n}; pass a vector of length n"
            )
        return self.unflatten_segments(
            [vec[self.offsets[i] : self.offsets[i + 1]] for i in range(len(self.names))]
        )

    def unflatten_segments(self, segs: Sequence[Tensor]) -> dict[str, Tensor]:
        """:meth:`unflatten` from θ_S given as its per-tensor segments (lengths ``sizes``)."""
        out = {}
        for i, (name, shape, idx, seg) in enumerate(
            zip(self.names, self.shapes, self._index, segs)
        ):
            if idx is None:
                out[name] = seg.reshape(shape)
            else:
                # Gather from (seg, 0): vmap- and forward-AD friendly (index_copy is slow there).
                padded = torch.cat([seg, seg.new_zeros(1)])
                out[name] = padded[self._gather[i]].reshape(shape)
        return out

    def load_into(self, model: nn.Module, vec: Tensor) -> None:
        """Write θ_S into ``model`` in place (pruned entries set to 0)."""
        full = self.unflatten(vec.detach())
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in full:
                    p.copy_(full[name].to(dtype=p.dtype, device=p.device))

    def __repr__(self) -> str:
        return f"ActiveParams(n={self.n}, P={self.P}, tensors={len(self.names)})"


def resolve_device(device: str | torch.device | None, model: nn.Module) -> torch.device:
    """``device`` as a torch.device (default: the model's), refused with a one-line error when
    it is unknown or absent on this machine."""
    if device is None:
        return _model_device(model)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(
            f"device {device!r} is unknown; use cpu, cuda, cuda:1, mps or meta"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(
            f"device {device!r} does not exist; this machine has "
            f"{torch.cuda.device_count()} CUDA devices"
        )
    return dev


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (cpu for a model without parameters)."""
    p = next(iter(model.parameters()), None)
    return torch.device("cpu") if p is None else p.device


def as_batches(
    batches: Iterable[Sequence[Tensor]] | Sequence[Tensor],
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> list[Batch]:
    """A list of (x, y) batches (from a list, a DataLoader or a single (x, y) pair), with
    floating-point tensors cast to ``dtype``, all moved to ``device`` (default: where they are)."""
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], Tensor):
        batches = [batches]
    out = []
    for b in batches:
        if not isinstance(b, Sequence) or len(b) != 2:
            raise UsageError("each batch must be an (inputs, targets) pair of tensors")
        x, y = (torch.as_tensor(t, device=device) for t in b)
        x = x.to(dtype) if x.is_floating_point() else x
        y = y.to(dtype) if y.is_floating_point() else y
        out.append((x, y))
    if not out:
        raise UsageError("no batches given; pass at least one (inputs, targets) batch")
    return out
