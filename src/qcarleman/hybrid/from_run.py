r"""Hybrid training from an existing sparse run (``qcarleman hybrid --from RUN``; ALGORITHM.md §8).

The model, data, mask, optimizer state and learning-rate schedule come from a sparse run
directory (docs/training.md: written by ``qcarleman sparse-train`` / ``prune``, or the ``sparse/``
folder of a ``qcarleman hybrid --config`` output), starting at one of its checkpoints (default
the first, step 0 = the pruned weights). :func:`hybrid_from_run` runs the hybrid loop
(:class:`~qcarleman.hybrid.trainer.HybridTrainer`) and the classical baseline
(:func:`~qcarleman.hybrid.trainer.run_baseline`) from that checkpoint on the same batches,
without dense training, pruning or spectra::

    OUT/hybrid/            the hybrid run (hybrid.json, segments.jsonl, state.pt)
    OUT/classical/         the classical baseline, the same steps and evaluation points
    OUT/comparison.json    the summary (:func:`hybrid_from_run`'s return value)

With the settings of a ``hybrid --config`` run (its ``summary.json`` ``hybrid_settings``: the
quantum phase over the measured window, ρ from the spectrum) and its ``sparse/`` folder at step 0,
the result is that run's ``hybrid/`` and ``classical/`` record for record. Rerunning resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json
from ..errors import UsageError
from ..training.run import RunDir
from .settings import HybridSettings
from .store import HEADER, load_records
from .trainer import HybridTrainer, run_baseline

__all__ = ["SparseSource", "sparse_source", "hybrid_from_run", "COMPARISON"]

#: The summary file of a ``hybrid --from`` output directory.
COMPARISON = "comparison.json"


@dataclass(frozen=True)
class SparseSource:
    """A sparse run directory and the checkpoint step the hybrid run starts from."""

    run: RunDir
    step: int


def _steps_text(steps: list[int]) -> str:
    return str(steps) if len(steps) <= 8 else f"[{steps[0]}, {steps[1]}, …, {steps[-1]}]"


def sparse_source(
    run_dir: str | os.PathLike,
    step: int | None = None,
    *,
    out: str | os.PathLike | None = None,
) -> SparseSource:
    """Check that ``run_dir`` is a sparse run with a checkpoint at ``step`` (default: its first),
    and that the output folder ``out`` (if given) is not the run itself, and return it; every
    failure is a one-line :class:`UsageError` naming the fix."""
    path = Path(run_dir)
    if out is not None and Path(out).resolve() == path.resolve():
        raise UsageError(f"--out is the source run {path}; the hybrid output needs its own folder")
    if not path.is_dir():
        raise UsageError(
            f"run {path} not found; give a sparse run folder (from `qcarleman sparse-train`, or "
            "OUT/sparse of `qcarleman hybrid --config`)"
        )
    run = RunDir(path)
    steps = run.steps()
    if not steps:
        raise UsageError(f"run {path} has no checkpoints yet; run `qcarleman sparse-train` first")
    s = steps[0] if step is None else int(step)
    if s not in steps:
        raise UsageError(
            f"run {path} has no checkpoint at step {s}; choose --step from {_steps_text(steps)}"
        )
    phase = run.raw(s)["meta"].phase
    if phase != "sparse":
        raise UsageError(
            f"{path} is a {phase} run, not a sparse one; prune it first "
            f"(`qcarleman sparse-train CONFIG --from {path} --out SPARSE_RUN`) and pass that"
        )
    return SparseSource(run, s)


def hybrid_from_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    settings: HybridSettings | None = None,
    *,
    step: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Hybrid training and its classical baseline from checkpoint ``step`` (default: the first) of
    the sparse run ``run_dir`` into ``out`` (module docstring); returns and writes
    ``OUT/comparison.json``: both runs' summaries, the accuracy gap in points, the start
    evaluation, n, P and the estimate of the first quantum segment."""
    src = sparse_source(run_dir, step, out=out)
    out = Path(out)
    settings = settings or HybridSettings()
    kw: dict[str, Any] = dict(step=src.step, device=device, progress=progress)
    hyb = HybridTrainer(src.run.path, out / "hybrid", settings, **kw).run()
    base = run_baseline(src.run.path, out / "classical", settings, **kw)
    header = read_json(out / "hybrid" / HEADER)
    recs = load_records(out / "hybrid")
    start = next(r for r in recs if r["kind"] == "start")
    quantum = [r for r in recs if r["kind"] == "quantum"]
    summary = {
        "source": str(src.run.path),
        "step": src.step,
        "n_active": header["n"],
        "parameters": header["P"],
        "start_accuracy": start["test_acc"],
        "hybrid_accuracy": hyb["test_acc"],
        "classical_sparse_accuracy": base["test_acc"],
        "accuracy_gap_points": 100.0 * (hyb["test_acc"] - base["test_acc"]),
        "hybrid": hyb,
        "classical": base,
        "estimate": quantum[0]["estimate"] if quantum else None,
        "hybrid_settings": settings.to_dict(),
    }
    write_json(out / COMPARISON, summary)
    return summary
