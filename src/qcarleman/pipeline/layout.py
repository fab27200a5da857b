"""Every path and file name of a pipeline output directory, owned by :class:`RunLayout`; the
pipeline writes through it and the report (:mod:`qcarleman.report`) reads through it::

    OUT/dense/             dense training run          OUT/spectra.json     Hessian spectra
    OUT/sparse/            pruned run, per-step ckpts  OUT/shots.json       degradation sweep
    OUT/hybrid/            hybrid run                  OUT/emulation.json   emulation errors
    OUT/classical/         classical baseline          OUT/summary.json     headline numbers
    OUT/shots/M_<M>/       sweep run with M shots      OUT/report.html      the HTML report
    OUT/emulation/<b>/     one segment, backend b      OUT/figures/         PNGs + index.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """The files of the pipeline output directory ``root`` (module docstring)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def dense(self) -> Path:
        return self.root / "dense"

    @property
    def sparse(self) -> Path:
        return self.root / "sparse"

    @property
    def spectra(self) -> Path:
        return self.root / "spectra.json"

    @property
    def hybrid(self) -> Path:
        return self.root / "hybrid"

    @property
    def classical(self) -> Path:
        return self.root / "classical"

    def shots_run(self, shots: int) -> Path:
        """The sweep's hybrid run with M = ``shots`` tomography shots."""
        return self.root / "shots" / f"M_{int(shots)}"

    @property
    def shots(self) -> Path:
        return self.root / "shots.json"

    def emulation_run(self, backend: str) -> Path:
        """The one-segment run of emulation ``backend``."""
        return self.root / "emulation" / backend

    @property
    def emulation(self) -> Path:
        return self.root / "emulation.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def figure_index(self) -> Path:
        return self.figures / "index.json"
