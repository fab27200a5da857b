"""The measured accuracy cost of changed optimizer settings (issue 17, part 2): hybrid and
classical sparse training with an advised (η, μ, λ) — e.g. from
:func:`qcarleman.analysis.advise.advise_checkpoint` — and with the original one, from the same
checkpoint on the same batches (:class:`~qcarleman.hybrid.trainer.HybridTrainer`,
:func:`~qcarleman.hybrid.trainer.run_baseline`, ALGORITHM.md §8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["compare_settings"]


def compare_settings(
    run_dir: str | os.PathLike,
    step: int,
    advised: dict[str, float],
    original: dict[str, float],
    *,
    K: int,
    total_steps: int,
    shots: int,
    out: str | os.PathLike,
) -> dict[str, Any]:
    """Hybrid (linear backend, K-step segments) and classical sparse training with the advised
    and the original settings on the same batches; test accuracy and loss of each."""
    from .settings import HybridSettings
    from .trainer import HybridTrainer, run_baseline

    hs = HybridSettings(
        backend="linear",
        segment_steps=int(K),
        total_steps=int(total_steps),
        shots=int(shots),
        idle=0,
    )
    out = Path(out)
    res = {}
    for name, opt in (("original", original), ("advised", advised)):
        hyb = HybridTrainer(
            run_dir, out / f"{name}-hybrid", hs, step=step, progress=False, optimizer=opt
        ).run()
        cls = run_baseline(
            run_dir, out / f"{name}-classical", hs, step=step, progress=False, optimizer=opt
        )
        res[name] = {
            **opt,
            "hybrid_test_acc": hyb["test_acc"],
            "hybrid_test_loss": hyb["test_loss"],
            "classical_test_acc": cls["test_acc"],
            "classical_test_loss": cls["test_loss"],
        }
    res["steps"] = int(total_steps)
    res["segment_steps"] = int(K)
    res["backend"] = "linear (order-1 emulation, ideal QLSA, tomography)"
    res["shots"] = int(shots)
    return res
