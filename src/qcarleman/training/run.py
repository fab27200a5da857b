r"""Reader API for training run directories (contract (2)).

Layout: ``RUN_DIR/config.toml`` (resolved config), ``RUN_DIR/metrics.jsonl`` (one JSON record a
line: ``kind`` = step | epoch | prune), ``RUN_DIR/checkpoints/step_<step:08d>.pt`` (weights after
that many optimizer steps). In a sparse-training run step 0 holds the pruned (or, in scratch mode,
re-initialised and masked) weights before any sparse step.

Example::

    from qcarleman.training.run import RunDir
    run = RunDir("runs/digits-sparse")
    ck = run.load(run.steps()[0])          # model (float32), mask, meta, loss_fn
    batches = run.batches(20)              # the (x, y) of sparse steps 0..19, trainer's order
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import read_jsonl
from ..errors import UsageError
from .checkpoint import CHECKPOINT_GLOB, checkpoint_name, checkpoint_step, load_checkpoint
from .data import Dataset, batch_for_step, load_dataset
from .models import build_model

__all__ = ["RunDir", "LoadedCheckpoint", "cross_entropy"]


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss: mean cross-entropy of the logits."""
    return nn.functional.cross_entropy(outputs, targets)


@dataclass
class LoadedCheckpoint:
    """A checkpoint with its model rebuilt (float32, weights loaded, train mode)."""

    model: nn.Module
    mask: dict[str, torch.Tensor]
    meta: dict[str, Any]
    step: int
    epoch: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy
    optimizer: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class RunDir:
    """A run directory written by the trainer."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / "checkpoints").is_dir():
            raise UsageError(
                f"{self.path} is not a training run (no checkpoints/ folder); "
                "create one with `qcarleman train` or `qcarleman sparse-train`"
            )
        self._dataset: Dataset | None = None
        self._meta: dict[str, Any] | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def steps(self) -> list[int]:
        """Sorted steps that have a checkpoint."""
        found = (checkpoint_step(p) for p in self.checkpoint_dir.glob(CHECKPOINT_GLOB))
        return sorted(s for s in found if s is not None)

    def latest_step(self) -> int:
        steps = self.steps()
        if not steps:
            raise UsageError(f"run {self.path} has no checkpoints yet; train it first")
        return steps[-1]

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / checkpoint_name(step)

    def raw(self, step: int | None = None) -> dict[str, Any]:
        """The checkpoint dict as stored (``torch.load(..., weights_only=True)``)."""
        step = self.latest_step() if step is None else step
        path = self.checkpoint_path(step)
        if not path.is_file():
            raise UsageError(
                f"run {self.path} has no checkpoint at step {step}; have {self.steps()}"
            )
        return load_checkpoint(path)

    def load(self, step: int | None = None) -> LoadedCheckpoint:
        """Rebuild the model of a checkpoint (latest when ``step`` is None) on the CPU."""
        ck = self.raw(step)
        model = build_model(ck["meta"]["model"])
        model.load_state_dict(ck["model"])
        model.float()
        return LoadedCheckpoint(
            model=model,
            mask=ck["mask"],
            meta=ck["meta"],
            step=int(ck["step"]),
            epoch=int(ck["epoch"]),
            optimizer=ck["optimizer"],
            raw=ck,
        )

    def meta(self) -> dict[str, Any]:
        """The meta dict of the latest checkpoint (read once)."""
        if self._meta is None:
            self._meta = self.raw()["meta"]
        return self._meta

    def dataset(self) -> Dataset:
        """The run's dataset splits (loaded once)."""
        if self._dataset is None:
            self._dataset = load_dataset(self.meta()["data"])
        return self._dataset

    def batches(
        self,
        n_batches: int,
        batch_size: int | None = None,
        split: str = "train",
        seed: int | None = None,
        start_step: int = 0,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (x, y) batches of global steps ``start_step .. start_step + n_batches - 1`` in the
        trainer's data order (same permutation per epoch, same augmentation). ``seed`` and
        ``batch_size`` default to the run's own."""
        meta = self.meta()
        bs = int(batch_size or meta["batch_size"])
        seed = int(meta["seed"] if seed is None else seed)
        data = self.dataset()
        bs = min(bs, len(data.split(split)[1]))
        return [
            batch_for_step(data, s, bs, seed, bool(meta["shuffle"]), split)
            for s in range(start_step, start_step + n_batches)
        ]

    def metrics(self) -> list[dict[str, Any]]:
        """All records of ``metrics.jsonl``."""
        return read_jsonl(self.path / "metrics.jsonl")
