"""What one hybrid segment did: :class:`SegmentRecord`, built by keyword only (ALGORITHM.md §8).

One record per segment goes to ``OUT/segments.jsonl`` (:mod:`qcarleman.hybrid.store`); the
evaluation fields are filled after the segment, quantum-only fields stay None on classical ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..atomic import jsonable

__all__ = ["SegmentRecord"]


@dataclass(kw_only=True)
class SegmentRecord:
    """What one segment did. Quantum-only fields are None for classical segments; the test/val
    evaluation is None until the segment is evaluated.

    emulation_error: ‖x̂_K − x_K‖/‖x_K‖, emulated vs true GD update (ALGORITHM.md §8).
    emulation_errors: the same at every step t = 1..K.
    readout_error: ‖ẑ − z‖/‖z‖ of the downloaded state against the solver's output state.
    qlsa_error, qlsa_fidelity: with a real solver (``qlsa`` ≠ ideal), ‖z_QLSA − z‖/‖z‖ of its
        output vector against the emulated z_K, and its state fidelity against ``exact``.
    total_error: ‖θ̂_K − θ_K‖/‖θ_K − θ̄‖, the written-back parameters against true GD.
    kappa, kappa_source: κ of the history system and how it was obtained.
    success_probability, p_succ_source: P_succ and how it was obtained.
    estimate: a summary of :func:`qcarleman.quantum.cost.estimate.estimate` for this segment.
    """

    segment: int
    kind: str  # "quantum" | "classical" | "start"
    start: int
    steps: int
    lr: float
    test_loss: float | None = None
    test_acc: float | None = None
    val_acc: float | None = None
    train_losses: list[float] = field(default_factory=list)
    backend: str | None = None
    order: int | None = None
    emulation_error: float | None = None
    emulation_errors: list[float] = field(default_factory=list)
    readout_error: float | None = None
    qlsa: str | None = None
    qlsa_error: float | None = None
    qlsa_fidelity: float | None = None
    parameter_readout_error: float | None = None
    total_error: float | None = None
    update_norm: float | None = None
    shots: int = 0
    shots_used: int = 0
    readout: str | None = None
    kappa: float | None = None
    kappa_source: str | None = None
    success_probability: float | None = None
    p_succ_source: str | None = None
    window: int | None = None
    rho: float | None = None
    estimate: dict[str, Any] | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))
