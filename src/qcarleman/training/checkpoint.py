"""Checkpoints: atomic save, ``weights_only`` load, typed metadata, RNG state capture/restore.

A checkpoint is a dict of tensors and plain Python values only, so
``torch.load(path, weights_only=True)`` reads it (the run-directory format of docs/training.md):
``{"model", "mask", "optimizer", "rng", "step", "epoch", "epoch_stats", "meta"}``.
Files are written to a temporary file in the same folder and moved into place with
:func:`os.replace`, so a kill never leaves a truncated checkpoint. A file that is not such a dict
(foreign, malicious, truncated, corrupted) is refused with a one-line :class:`UsageError`.
``meta`` is parsed into a validated :class:`CheckpointMeta` by :meth:`CheckpointMeta.parse`.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import UsageError
from .config import check_data_spec

__all__ = [
    "CheckpointMeta",
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng",
    "restore_rng",
    "seed_everything",
    "checkpoint_name",
    "checkpoint_step",
    "CHECKPOINT_GLOB",
]

#: Glob of the checkpoint files of a run's ``checkpoints/`` folder (:func:`checkpoint_name`).
CHECKPOINT_GLOB = "step_*.pt"


def _bad(where: str, key: str, value: Any, want: str) -> UsageError:
    return UsageError(
        f"{where}: meta entry {key!r} = {value!r:.60} is invalid (expected {want}); "
        "use a run written by qcarleman's trainer"
    )


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# key -> (check, description); the schedule and optimizer of the phase (ALGORITHM.md §9)
_CHECKS: dict[str, tuple[Any, str]] = {
    "model": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str), "a model spec"),
    "data": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str), "a data spec"),
    "optimizer": (lambda v: v in ("sgd", "gd"), "sgd or gd"),
    "lr": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "momentum": (lambda v: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: _real(v) and v >= 0, "a finite number >= 0"),
    "batch_size": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "shuffle": (lambda v: isinstance(v, bool), "true or false"),
    "epochs": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "milestones": (
        lambda v: isinstance(v, list | tuple) and all(_int(m) and m >= 0 for m in v),
        "a list of epochs >= 0",
    ),
    "gamma": (lambda v: _real(v) and v > 0, "a finite number > 0"),
    "steps_per_epoch": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "seed": (_int, "an integer"),
    "phase": (lambda v: isinstance(v, str), "a string"),
    "lr_now": (lambda v: v is None or (_real(v) and v >= 0), "a finite number >= 0"),
}


@dataclass(frozen=True)
class CheckpointMeta(Mapping):
    """The validated ``meta`` of a checkpoint: model and data specs, the training phase's
    optimizer and step schedule η·γ^{#milestones ≤ epoch} (ALGORITHM.md §9), seed, and any
    phase-specific extras (pruning settings, source run, ...) in ``extra``.

    It is also a read-only mapping with the stored keys, so code written for the plain dict
    (``meta["lr"]``, ``meta.get("phase")``, ``{**meta}``) keeps working.
    """

    model: dict[str, Any]
    data: dict[str, Any]
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    shuffle: bool
    epochs: int
    milestones: tuple[int, ...]
    gamma: float
    steps_per_epoch: int
    seed: int
    phase: str = "dense"
    lr_now: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, meta: Any, where: str = "checkpoint") -> CheckpointMeta:
        """Check presence, types and ranges of every entry; ``where`` names the file."""
        if isinstance(meta, CheckpointMeta):
            return meta
        if not isinstance(meta, dict):
            raise UsageError(
                f"{where}: meta is {type(meta).__name__}, not a dict; "
                "use a run written by qcarleman's trainer"
            )
        names = [f.name for f in fields(cls) if f.name != "extra"]
        kw: dict[str, Any] = {}
        for key in names:
            check, want = _CHECKS[key]
            if key not in meta:
                if key in ("phase", "lr_now"):
                    continue
                raise UsageError(
                    f"{where}: meta has no {key!r} entry; use a run written by qcarleman's trainer"
                )
            value = meta[key]
            if not check(value):
                raise _bad(where, key, value, want)
            kw[key] = value
        try:
            kw["data"] = check_data_spec(kw["data"], "meta data")
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        kw["milestones"] = tuple(kw["milestones"])
        for key in ("lr", "momentum", "weight_decay", "gamma"):
            kw[key] = float(kw[key])
        extra = {k: v for k, v in meta.items() if k not in names}
        return cls(**kw, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The stored (plain dict) form."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d["milestones"] = list(self.milestones)
        if self.lr_now is None:
            del d["lr_now"]
        return {**d, **self.extra}

    def lr_at(self, step: int) -> float:
        """η of the optimizer step taken from checkpoint ``step``: lr·γ^(#milestones ≤ epoch),
        epoch = step // steps_per_epoch (ALGORITHM.md §9)."""
        epoch = int(step) // self.steps_per_epoch
        return self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)

    # read-only mapping view of the stored form
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    __hash__ = None  # type: ignore[assignment]  # holds dicts


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint after ``step`` optimizer steps: ``step_<step:08d>.pt``."""
    return f"step_{step:08d}.pt"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a checkpoint file named by :func:`checkpoint_name` (None for other names)."""
    m = re.fullmatch(r"step_([0-9]+)\.pt", Path(path).name)  # ASCII digits only
    return int(m.group(1)) if m else None


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Save ``payload`` with :func:`torch.save`, atomically."""
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code is run); a foreign,
    truncated or corrupted file raises a one-line :class:`UsageError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"checkpoint {path} does not exist; list a run's steps with RunDir.steps()"
        )
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise UsageError(
                f"{path} is not a qcarleman checkpoint or written by an untrusted source "
                "(it needs code to load); delete it or use a checkpoint written by qcarleman"
            ) from None
        raise UsageError(
            f"{path} is corrupted or not a checkpoint ({str(exc).splitlines()[0][:80]}); "
            "delete it and resume from an earlier checkpoint"
        ) from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        UnicodeDecodeError,
        OSError,
    ) as exc:
        if isinstance(exc, PermissionError):
            raise
        msg = (str(exc).splitlines() or [type(exc).__name__])[0][:80]
        raise UsageError(
            f"{path} is truncated or corrupted ({msg}); "
            "delete it and resume from an earlier checkpoint"
        ) from None
    if not isinstance(ck, dict):
        raise UsageError(
            f"{path} holds a {type(ck).__name__}, not a qcarleman checkpoint dict; "
            "use a checkpoint written by qcarleman"
        )
    return ck


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python ``random``, so the RNG state saved in checkpoints is a
    function of ``seed`` alone (two runs write identical checkpoints)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng() -> dict[str, Any]:
    """Torch (CPU and, if used, CUDA), NumPy and Python ``random`` states as tensors/lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, pystate, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": int(version), "state": list(pystate), "gauss": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    try:
        torch.set_rng_state(state["torch"])
        npst = state["numpy"]
        np.random.set_state(
            (
                npst["kind"],
                npst["keys"].numpy().astype(np.uint32),
                npst["pos"],
                npst["has_gauss"],
                npst["cached"],
            )
        )
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise UsageError(
            f"the checkpoint's RNG state is damaged ({type(exc).__name__}: {exc}); "
            "resume from another checkpoint"
        ) from None
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
