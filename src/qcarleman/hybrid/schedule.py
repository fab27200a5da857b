"""Segment boundaries of a hybrid run (ALGORITHM.md §8), as pure functions of the step counters.

A segment is K steps long (``segment_steps``, or t* of the spectrum in auto mode), ends at the end
of the quantum phase (``quantum_steps`` after the first step, also for the baseline so both runs
are evaluated there) and at the end of the run, and never crosses a change of the learning rate.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["quantum_steps_left", "constant_lr_steps", "clip_segment"]


def quantum_steps_left(step: int, start_step: int, quantum_steps: int) -> int | None:
    """Steps left in the quantum phase at ``step`` (None: ``quantum_steps = 0``, no limit)."""
    if not quantum_steps:
        return None
    return start_step + quantum_steps - step


def constant_lr_steps(step: int, K: int, lr_at: Callable[[int], float]) -> int:
    """The largest k ≤ K (k ≥ 1) with η constant over steps ``step .. step + k − 1``."""
    lr0 = lr_at(step)
    k = 1
    while k < K and lr_at(step + k) == lr0:
        k += 1
    return k


def clip_segment(
    K: int,
    *,
    step: int,
    start_step: int,
    end_step: int,
    quantum_steps: int,
    lr_at: Callable[[int], float],
) -> tuple[int, bool]:
    """(length of the segment starting at ``step``, whether the quantum phase is over there):
    K clipped to the quantum phase, the run's end and the current learning rate."""
    left = quantum_steps_left(step, start_step, quantum_steps)
    over = left is not None and left <= 0
    if left is not None and left > 0:
        K = min(K, left)
    return constant_lr_steps(step, min(K, end_step - step), lr_at), over
