"""Settings of a hybrid run (ALGORITHM.md §8): :class:`HybridSettings`, its allowed values and
their validation (a bad value raises :class:`~qcarleman.errors.UsageError` naming the key)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import UsageError

__all__ = ["BACKENDS", "READOUTS", "READOUT_MODELS", "QLSAS", "HybridSettings"]

BACKENDS = ("classical", "true-gd", "taylor", "carleman", "linear")
READOUTS = ("auto", "shots", "noise-model")
# HybridSettings.readout → the model of qcarleman.quantum.readout.read_state
READOUT_MODELS = {"auto": "auto", "shots": "sampled", "noise-model": "noise"}
QLSAS = ("ideal", "exact", "qsvt", "hhl")


@dataclass
class HybridSettings:
    """Settings of a hybrid run (ALGORITHM.md §8).

    backend: ``true-gd`` | ``taylor`` | ``carleman`` | ``linear`` | ``classical`` (baseline).
    order: Carleman order N for ``carleman`` (``linear`` is N = 1).
    segment_steps: K, an integer or ``"auto"`` (t* of the spectrum at each segment start).
    max_segment_steps: upper bound on K in auto mode (and the E(t) horizon measured there).
    quantum_steps: quantum segments cover the first ``quantum_steps`` steps (0 = all steps).
    total_steps: steps of the whole run (quantum + classical).
    shots: tomography shots M per quantum segment (0 = exact download, no shot noise).
    readout: ``shots`` (sampled), ``noise-model`` (the documented equivalent noise) or ``auto``
        (sampled whenever the sampler's predicted memory fits, else the noise model;
        :func:`qcarleman.quantum.readout.read_state`).
    idle: idle steps p of the history system (−1 = p = K, the paper's choice).
    epsilon: target ℓ2 error ε of the resource estimate.
    solver: QLSA query model of the estimate (:data:`qcarleman.quantum.cost.estimate.SOLVERS`).
    dtype: float64 | float32 of the derivative operators.
    spectrum_probes, spectrum_iters: SLQ settings of the auto-K spectrum.
    rho: ρ = ‖F1‖ for the κ bound when no spectrum is measured in the run (0 = unknown).
    max_rank: rank cap of the low-rank order-2 emulation (0 = exact, no truncation).
    qlsa: ``ideal`` (the modelled solver, any size) or a solver of
        :func:`qcarleman.quantum.solve.solve` — ``exact``, ``qsvt`` (matrix level up to 2¹²
        history dimensions), ``hhl`` (gate level, up to 2⁶) — run on the dense history system
        of tiny maps (``carleman``/``linear`` backends).
    seed: readout randomness (per segment: seed, segment index).
    """

    backend: str = "carleman"
    order: int = 2
    segment_steps: int | str = 10
    max_segment_steps: int = 20
    quantum_steps: int = 0
    total_steps: int = 40
    shots: int = 1_000_000
    readout: str = "auto"
    idle: int = -1
    epsilon: float = 1e-2
    solver: str = "costa-empirical"
    dtype: str = "float64"
    spectrum_probes: int = 4
    spectrum_iters: int = 30
    rho: float = 0.0
    max_rank: int = 0
    qlsa: str = "ideal"
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the first bad setting."""
        K = self.segment_steps
        checks = [
            (self.backend in BACKENDS, "backend", f"use one of {', '.join(BACKENDS)}"),
            (int(self.order) >= 1, "order", "use a Carleman order N ≥ 1"),
            (
                K == "auto" or (isinstance(K, int) and not isinstance(K, bool) and K >= 1),
                "segment_steps",
                "use an integer K ≥ 1 or 'auto'",
            ),
            (self.max_segment_steps >= 1, "max_segment_steps", "use a bound ≥ 1"),
            (self.quantum_steps >= 0, "quantum_steps", "use 0 (all steps) or a positive count"),
            (self.total_steps >= 1, "total_steps", "use at least 1 step"),
            (self.shots >= 0, "shots", "use 0 (exact download) or a positive shot count"),
            (self.readout in READOUTS, "readout", f"use one of {', '.join(READOUTS)}"),
            (self.idle >= -1, "idle", "use −1 (p = K) or p ≥ 0"),
            (0 < self.epsilon < 1, "epsilon", "use 0 < ε < 1"),
            (self.dtype in ("float64", "float32"), "dtype", "use float64 or float32"),
            (self.spectrum_probes >= 1 and self.spectrum_iters >= 2, "spectrum_probes", "use ≥ 1"),
            (self.rho >= 0 and math.isfinite(self.rho), "rho", "use 0 (unknown) or ρ > 0"),
            (self.max_rank >= 0, "max_rank", "use 0 (no truncation) or a rank ≥ 1"),
            (self.qlsa in QLSAS, "qlsa", f"use one of {', '.join(QLSAS)}"),
            (
                self.qlsa == "ideal" or self.backend in ("carleman", "linear", "classical"),
                "qlsa",
                "a real solver needs backend = 'carleman' or 'linear' (the dense history system)",
            ),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise UsageError(f"hybrid.{key} = {getattr(self, key)!r} is invalid; {fix}")

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> HybridSettings:
        """Settings from a ``[hybrid]`` TOML table; unknown keys raise :class:`UsageError`."""
        names = {f.name for f in fields(cls)}
        bad = sorted(set(table) - names)
        if bad:
            raise UsageError(
                f"unknown key hybrid.{bad[0]}; allowed keys: {', '.join(sorted(names))}"
            )
        return cls(**table)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def nominal_segment_steps(self) -> int:
        """K of a segment before the schedule clips it: ``segment_steps``, or the bound
        ``max_segment_steps`` in auto mode."""
        K = self.segment_steps
        return int(K) if K != "auto" else int(self.max_segment_steps)

    def idle_steps(self, K: int) -> int:
        """Idle steps p of the history system of a K-step segment (``idle = −1``: p = K)."""
        return int(K) if self.idle == -1 else int(self.idle)
