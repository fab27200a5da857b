"""The result of one Hessian spectrum (:class:`SpectrumReport`): eigenvalues or SLQ nodes and
weights, λ_min/λ_max, E(t), D/G/r, window, ρ and regime of the map trained and of the paper's
plain-GD definition (ALGORITHM.md §6, §6.1), with JSON round trip and notebook display. Computed by
:mod:`qcarleman.analysis.spectrum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .. import dissipation as dis
from ..atomic import jsonable
from ..display import html_table, short_repr, to_pandas
from ..spectral import smoothed_density

__all__ = ["SpectrumReport"]

Array = np.ndarray


#: Keys of :meth:`SpectrumReport.to_json` derived from fields (not kept in ``extra``).
_DERIVED = frozenset(
    (
        "spectrum_method",
        "window_paper",
        "window_closed_paper",
        "rho_paper",
        "regime_paper",
        "window_band",
        "window_band_paper",
        "E_paper",
        "E_low",
        "E_high",
    )
)


@dataclass
class SpectrumReport:
    """One Hessian spectrum and its dissipation diagnostics (ALGORITHM.md §6)."""

    n: int
    lr: float
    horizon: int
    method: str  # "exact" | "slq"
    lambda_min: float
    lambda_max: float
    top: list[float]
    bottom: list[float]
    trace: float
    negative_mass: float
    E: Array
    D: Array
    G: Array
    r: Array
    window: int
    window_closed: bool
    rho: float
    regime: str
    nodes: Array  # eigenvalues (exact) or SLQ nodes
    weights: Array  # 1/n each (exact) or SLQ weights; sum to 1
    matvecs: int
    seconds: float
    lanczos_converged: bool = True
    step: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    norm_linear: float = math.nan  # ‖A_lin‖₂ of the trained map over [λ_min, λ_max]
    window_factor: int | None = None  # t* of Σ w a^t (spectral factor only; for comparison)
    paper: dis.Diagnostics | None = None  # the paper's plain-GD metrics (§6)
    band: dis.ProbeBand | None = None  # SLQ: band of the trained map's E(t) and t*
    band_paper: dis.ProbeBand | None = None
    probe: Array | None = None  # SLQ: probe of each node (−1 deflated)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def density(self, grid: Array | None = None, sigma: float | None = None):
        """Gaussian-smoothed spectral density (see :func:`qcarleman.spectral.smoothed_density`)."""
        return smoothed_density(self.nodes, self.weights, grid, sigma)

    def to_json(self, curves: bool = True) -> dict[str, Any]:
        """Plain JSON-able dict (inf/NaN become null). ``curves`` keeps E, D, G, r."""
        out: dict[str, Any] = {
            "step": self.step,
            "n": self.n,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "horizon": self.horizon,
            "method": self.method,
            "spectrum_method": self.method,
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "top": self.top,
            "bottom": self.bottom,
            "trace": self.trace,
            "negative_mass": self.negative_mass,
            "window": self.window,
            "window_closed": self.window_closed,
            "rho": self.rho,
            "regime": self.regime,
            "norm_linear": self.norm_linear,
            "window_factor": self.window_factor,
            "lanczos_converged": self.lanczos_converged,
            "matvecs": self.matvecs,
            "seconds": self.seconds,
            "notes": self.notes,
            **self.extra,
        }
        if self.paper is not None:
            out.update(
                window_paper=self.paper.window,
                window_closed_paper=self.paper.window_closed,
                rho_paper=self.paper.rho,
                regime_paper=self.paper.regime,
            )
        if self.band is not None:
            out["window_band"] = [self.band.window_low, self.band.window_high]
            if self.band_paper is not None:
                out["window_band_paper"] = [self.band_paper.window_low, self.band_paper.window_high]
        if curves:
            out.update(E=self.E, D=self.D, G=self.G, r=self.r)
            if self.paper is not None:
                out["E_paper"] = self.paper.E
            if self.band is not None:
                out.update(E_low=self.band.low, E_high=self.band.high)
        return jsonable(out)

    # --- notebook display (short repr, HTML table, dict/pandas export; plots in report.plots)

    def _headline(self) -> dict[str, Any]:
        keys = ("step", "n", "method", "lr", "horizon", "lambda_min", "lambda_max", "rho")
        out = {k: getattr(self, k) for k in keys}
        out.update(regime=self.regime, window=self.window, window_closed=self.window_closed)
        paper = getattr(self, "paper", None)  # the paper's plain-GD metrics (§6.1), when present
        if paper is not None:
            out.update(window_paper=paper.window, rho_paper=paper.rho)
        for k in ("f0_norm", "f2_norm", "rd_star"):
            if k in self.extra:
                out[k] = self.extra[k]
        return out

    def __repr__(self) -> str:
        return short_repr("SpectrumReport", self._headline() | {"E": self.E})

    def _repr_html_(self) -> str:
        return html_table(
            "SpectrumReport (ALGORITHM.md §6)",
            self._headline() | {"negative_mass": self.negative_mass, "matvecs": self.matvecs},
            "t* = window: last t with E(t) ≤ 1; ρ = ‖F1‖; curves: to_pandas(); "
            "plot: qcarleman.report.plots.plot_spectrum(report)",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form with the curves and the spectrum (``nodes``, ``weights`` and, for SLQ, the
        ``probe`` of each node); inverse of :meth:`from_dict` (``to_json`` of the rebuilt report
        equals this one's)."""
        spectrum = {"nodes": self.nodes, "weights": self.weights}
        if self.probe is not None:
            spectrum["probe"] = self.probe
        return self.to_json(curves=True) | jsonable(spectrum)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpectrumReport:
        """Rebuild from :meth:`to_dict` (or a record of ``spectra.json``); null entries of the
        curves read as NaN, of r as ∞; keys that are no field go to ``extra``."""

        def arr(v):
            return np.array([np.nan if x is None else x for x in v], dtype=float)

        names = {f.name for f in fields(cls) if f.init}
        kw = {k: v for k, v in d.items() if k in names and k != "extra"}
        for k in ("E", "D", "G", "nodes", "weights"):
            kw[k] = arr(d[k])
        kw["r"] = np.where(np.isnan(arr(d["r"])), np.inf, arr(d["r"]))
        kw["notes"] = list(d.get("notes") or [])
        kw["extra"] = {k: v for k, v in d.items() if k not in names and k not in _DERIVED}
        wd = float(d.get("weight_decay") or 0.0)
        tmap = dis.TrainedMap(float(d["lr"]), float(d.get("momentum") or 0.0), wd)
        if d.get("window_paper") is not None:  # the paper's metrics, recomputed from the nodes
            kw["paper"] = dis.diagnose(
                kw["nodes"],
                tmap.paper(),
                kw["E"].size - 1,
                horizon=int(d["horizon"]),
                weights=kw["weights"],
                interval=(float(d["lambda_min"]), float(d["lambda_max"])),
                includes_weight_decay=True,
            )
        if d.get("probe") is not None:
            kw["probe"] = np.asarray(d["probe"], dtype=np.int64)
            if d.get("window_band") is not None:  # the SLQ bands, recomputed from the probes
                args = (kw["nodes"], kw["weights"], kw["probe"])
                T = kw["E"].size - 1
                for key, m in (("band", tmap), ("band_paper", tmap.paper())):
                    kw[key] = dis.probe_band(*args, m, T, includes_weight_decay=True)
        return cls(**kw)

    def to_pandas(self):
        """The curves as a ``pandas.DataFrame``: t, E(t), D(t), G(t), r(t) (pandas optional)."""
        return to_pandas(
            {"t": np.arange(self.E.size), "E": self.E, "D": self.D, "G": self.G, "r": self.r}
        )
