"""Options of the pipeline's analysis stages (the ``[pipeline]`` table of a hybrid config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import UsageError

__all__ = ["PipelineOptions"]


@dataclass(frozen=True)
class PipelineOptions:
    """What the pipeline measures beside the hybrid run (defaults: the full demo).

    spectrum_steps: classical sparse steps after pruning with a checkpoint after each, and the
        last checkpoint whose Hessian spectrum is measured; spectrum_stride: every that many.
    spectrum_probes, spectrum_iters: SLQ settings of the spectra; horizon: T of E(t) and κ.
    shot_budgets: the tomography shot counts M of the degradation sweep.
    emulation_backends: the backends whose emulation error is compared over one segment.
    """

    spectrum_steps: int = 6
    spectrum_stride: int = 2
    spectrum_probes: int = 4
    spectrum_iters: int = 30
    horizon: int = 20
    shot_budgets: tuple[int, ...] = (10, 100, 1_000, 10_000, 100_000, 1_000_000)
    emulation_backends: tuple[str, ...] = ("linear", "carleman", "taylor")

    def __post_init__(self) -> None:
        for name in ("spectrum_steps", "spectrum_stride", "spectrum_probes", "spectrum_iters"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "horizon", int(self.horizon))
        object.__setattr__(self, "shot_budgets", tuple(int(m) for m in self.shot_budgets))
        object.__setattr__(self, "emulation_backends", tuple(map(str, self.emulation_backends)))

    @classmethod
    def from_dict(cls, table: dict[str, Any] | None) -> PipelineOptions:
        """Options from a ``[pipeline]`` table (missing keys keep their defaults); unknown keys
        raise :class:`UsageError`."""
        table = table or {}
        names = sorted(f.name for f in fields(cls))
        bad = sorted(set(table) - set(names))
        if bad:
            raise UsageError(f"unknown key pipeline.{bad[0]}; allowed keys: {', '.join(names)}")
        return cls(**table)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
