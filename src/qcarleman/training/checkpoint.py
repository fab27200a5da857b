"""Checkpoints: atomic save, ``weights_only`` load, RNG state capture and restore.

A checkpoint is a dict of tensors and plain Python values only, so
``torch.load(path, weights_only=True)`` reads it (contract (2)):
``{"model", "mask", "optimizer", "rng", "step", "epoch", "meta"}``.
Files are written to a temporary file in the same folder and moved into place with
:func:`os.replace`, so a kill never leaves a truncated checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import UsageError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "capture_rng",
    "restore_rng",
    "checkpoint_name",
    "checkpoint_step",
    "CHECKPOINT_GLOB",
]

#: Glob of the checkpoint files of a run's ``checkpoints/`` folder (:func:`checkpoint_name`).
CHECKPOINT_GLOB = "step_*.pt"


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint after ``step`` optimizer steps: ``step_<step:08d>.pt``."""
    return f"step_{step:08d}.pt"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a checkpoint file named by :func:`checkpoint_name` (None for other names)."""
    stem = Path(path).stem
    return int(stem[5:]) if stem.startswith("step_") and stem[5:].isdigit() else None


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Save ``payload`` with :func:`torch.save`, atomically."""
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code is run)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"checkpoint {path} does not exist; list a run's steps with RunDir.steps()"
        )
    return torch.load(path, map_location=map_location, weights_only=True)


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
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
