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

__all__ = ["RunLayout", "PaperLayout"]


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


@dataclass(frozen=True)
class PaperLayout:
    """The files of a ``qcarleman paper`` output directory ``root``::

        OUT/dense/  OUT/sparse/  OUT/scratch/   training runs (per-step checkpoints after pruning)
        OUT/accuracy.json    test accuracy per step      OUT/spectra/step_<k>.json  one spectrum
        OUT/spectra.json     all spectra                 OUT/analysis.json  E(t), windows, D/G/r
        OUT/emulation.json   emulated output vs true GD  OUT/estimate.json  resource bill
        OUT/summary.json     headline numbers            OUT/report.html    the HTML report
        OUT/figures/         PNGs + index.json
    """

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    dense = property(lambda self: self.root / "dense")
    sparse = property(lambda self: self.root / "sparse")
    scratch = property(lambda self: self.root / "scratch")
    accuracy = property(lambda self: self.root / "accuracy.json")
    spectra = property(lambda self: self.root / "spectra.json")
    analysis = property(lambda self: self.root / "analysis.json")
    emulation = property(lambda self: self.root / "emulation.json")
    estimate = property(lambda self: self.root / "estimate.json")
    summary = property(lambda self: self.root / "summary.json")
    report = property(lambda self: self.root / "report.html")
    figures = property(lambda self: self.root / "figures")
    figure_index = property(lambda self: self.root / "figures" / "index.json")

    def spectrum(self, step: int) -> Path:
        """The spectrum record of checkpoint ``step`` (written as soon as it is measured)."""
        return self.root / "spectra" / f"step_{int(step):06d}.json"
