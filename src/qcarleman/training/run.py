r"""Reader API for training run directories (format: docs/training.md, "Run directory").

Layout: ``RUN_DIR/config.toml`` (resolved config), ``RUN_DIR/metrics.jsonl`` (one JSON record a
line: ``kind`` = step | epoch | prune), ``RUN_DIR/checkpoints/step_<step:08d>.pt`` (weights after
that many optimizer steps). In a sparse-training run step 0 holds the pruned (or, in scratch mode,
re-initialised and masked) weights before any sparse step.

Example::

    from qcarleman.training.run import RunDir
    run = RunDir("runs/digits-sparse")
    ck = run.load(run.steps()[0])          # model (float32), mask, meta, loss_fn
    batches = run.batches(20)              # the (x, y) of sparse steps 0..19, trainer's order

Loading validates: the file is a qcarleman checkpoint (:func:`load_checkpoint`), its meta parses
as :class:`CheckpointMeta`, the weights fit the model spec and are finite, and the mask covers
every parameter with its shape. A relative ``data.root`` in the meta is resolved against the run
directory (never the current directory), so a run folder stays usable after a move.
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
from .checkpoint import (
    CHECKPOINT_GLOB,
    CheckpointMeta,
    checkpoint_name,
    checkpoint_step,
    load_checkpoint,
)
from .data import Dataset, batch_for_step, load_dataset
from .models import build_model

__all__ = ["RunDir", "LoadedCheckpoint", "cross_entropy", "check_mask", "check_state"]


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss: mean cross-entropy of the logits."""
    return nn.functional.cross_entropy(outputs, targets)


@dataclass
class LoadedCheckpoint:
    """A checkpoint with its model rebuilt (float32, weights loaded, train mode)."""

    model: nn.Module
    mask: dict[str, torch.Tensor]
    meta: CheckpointMeta
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
        ck = load_checkpoint(path)
        for key, kind in (("model", dict), ("mask", dict), ("step", int), ("epoch", int)):
            if not isinstance(ck.get(key), kind) or isinstance(ck.get(key), bool):
                raise UsageError(
                    f"{path} has no valid {key!r} entry; it is not a qcarleman training "
                    "checkpoint (delete it or resume from another step)"
                )
        ck["meta"] = CheckpointMeta.parse(ck.get("meta"), str(path))
        return ck

    def load(self, step: int | None = None) -> LoadedCheckpoint:
        """Rebuild the model of a checkpoint (latest when ``step`` is None) on the CPU."""
        ck = self.raw(step)
        where = self.checkpoint_path(int(ck["step"]) if step is None else step)
        try:
            model = build_model(ck["meta"].model)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"{where}: the model spec {ck['meta'].model} cannot be built ({exc})"
            ) from None
        check_state(model, ck["model"], where)
        model.load_state_dict(ck["model"])
        model.float()
        return LoadedCheckpoint(
            model=model,
            mask=check_mask(model, ck["mask"], where),
            meta=ck["meta"],
            step=int(ck["step"]),
            epoch=int(ck["epoch"]),
            optimizer=ck.get("optimizer") or {},
            raw=ck,
        )

    def meta(self) -> CheckpointMeta:
        """The meta of the latest checkpoint (read once)."""
        if self._meta is None:
            self._meta = self.raw()["meta"]
        return self._meta

    def data_spec(self) -> dict[str, Any]:
        """The run's data spec with a relative ``root`` resolved against the run directory."""
        spec = dict(self.meta().data)
        root = spec.get("root")
        if isinstance(root, str) and root and not Path(root).expanduser().is_absolute():
            spec["root"] = str((self.path / root).resolve())
        return spec

    def dataset(self) -> Dataset:
        """The run's dataset splits (loaded once)."""
        if self._dataset is None:
            self._dataset = load_dataset(self.data_spec())
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
        bs = int(batch_size or meta.batch_size)
        seed = int(meta.seed if seed is None else seed)
        data = self.dataset()
        bs = min(bs, len(data.split(split)[1]))
        return [
            batch_for_step(data, s, bs, seed, meta.shuffle, split)
            for s in range(start_step, start_step + n_batches)
        ]

    def metrics(self) -> list[dict[str, Any]]:
        """All records of ``metrics.jsonl`` (a torn last line from a kill is dropped)."""
        return read_jsonl(self.path / "metrics.jsonl")


def check_state(model: nn.Module, state: dict[str, Any], where: Any) -> None:
    """Refuse a state dict that does not fit ``model`` (names, shapes) or holds NaN/inf."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise UsageError(
            f"{where}: weights do not fit the model spec (missing {missing[:3]}, unexpected "
            f"{extra[:3]}); the run's config or model changed — use a new output directory"
        )
    for name, ref in own.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != ref.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UsageError(
                f"{where}: weight {name} has shape {shape}, the model needs {tuple(ref.shape)}; "
                "the run's config or model changed — use a new output directory"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UsageError(
                f"{where}: weight {name} holds NaN or inf; the run diverged — resume from an "
                "earlier checkpoint with a smaller learning rate"
            )


def check_mask(model: nn.Module, mask: Any, where: Any) -> dict[str, torch.Tensor]:
    """Refuse a mask that does not give a bool tensor of the right shape for every parameter
    (a sparse run must never be continued as if dense)."""
    params = dict(model.named_parameters())
    if not isinstance(mask, dict) or set(mask) != set(params):
        got = sorted(mask) if isinstance(mask, dict) else type(mask).__name__
        raise UsageError(
            f"{where}: the mask does not cover the model's parameters (has {str(got)[:80]}); "
            "the checkpoint is damaged — resume from another checkpoint"
        )
    for name, p in params.items():
        m = mask[name]
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != p.shape:
            shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise UsageError(
                f"{where}: mask {name} has shape/type {shape}, expected bool {tuple(p.shape)}; "
                "the checkpoint is damaged — resume from another checkpoint"
            )
    return mask
