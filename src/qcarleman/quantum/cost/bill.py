r"""The bill of one quantum segment as data (ALGORITHM.md §7): :class:`ResourceEstimate` —
typed headline figures, the itemized lines (:class:`Figure` ``{value, formula, source, approx,
kind}``), the download (:class:`Tomography`), the physical estimates
(:class:`~.physical.PhysicalEstimate`) and the wall clock (:class:`WallClock`) — and its JSON
form :meth:`ResourceEstimate.to_dict`. Built by :func:`qcarleman.quantum.cost.estimate.estimate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...display import html_table, short_repr, to_pandas
from ...quantity import Quantity, human_count, human_seconds
from . import physical as _phys
from .inputs import Conditioning, CostModel, Problem

__all__ = ["Figure", "Tomography", "WallClock", "ResourceEstimate"]


@dataclass(frozen=True)
class Figure:
    """One line of the bill: its value, the formula that produced it and the formula's source.
    ``approx`` is empty for exact/derived figures and names the assumption otherwise; ``kind``
    (exact / measured / estimated / bound / assumed) is set for the figures that carry one."""

    value: Any
    formula: str
    source: str
    approx: str = ""
    kind: str | None = None

    def to_dict(self) -> dict:
        out = {"value": self.value, "formula": self.formula, "source": self.source}
        out["approx"] = self.approx
        if self.kind is not None:
            out["kind"] = self.kind
        return out


@dataclass(frozen=True, kw_only=True)
class Tomography:
    """The download (ALGORITHM.md §5): target ``epsilon`` and the ``shots`` priced for it
    (``for_epsilon``; 1 without download), and a budget actually used (``given``) with the total
    ε it reaches (``epsilon_at_given``: QLSA share + the Kerenidis–Prakash bound of M shots)."""

    epsilon: float
    shots: int
    for_epsilon: int
    given: int | None = None
    epsilon_at_given: Quantity | None = None


@dataclass(frozen=True, kw_only=True)
class WallClock:
    """Quantum seconds (T-count × logical cycle, or T-count / stated logical rate) against
    classical seconds (FLOPs / ``flop_rate``)."""

    quantum_s: float
    quantum_source: str
    classical_s: float
    flop_rate: float
    physical_qubits: int | None = None  # of the surface-code model that set the quantum clock

    @property
    def winner(self) -> str:
        return "quantum" if self.quantum_s < self.classical_s else "classical"

    @property
    def ratio(self) -> float:
        return self.quantum_s / self.classical_s if self.classical_s > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantum_s": self.quantum_s,
            "quantum_source": self.quantum_source,
            "classical_s": self.classical_s,
            "flop_rate": self.flop_rate,
            "physical_qubits": self.physical_qubits,
            "winner": self.winner,
            "ratio_quantum_over_classical": self.ratio,
        }


@dataclass(frozen=True, kw_only=True)
class ResourceEstimate:
    """The bill of one quantum segment: the inputs, the headline figures (typed), the itemized
    ``figures`` (name → :class:`Figure`, in order), the physical estimates (``physical``: qsharp,
    None when absent or beyond its range; ``surface_code``: the documented model) and the wall
    clock. ``measured``: the raw numbers when the inputs were measured on a run."""

    problem: Problem
    conditioning: Conditioning
    model: CostModel
    kappa: Quantity
    kappa_eff: Quantity
    p_succ: Quantity
    alpha: float
    queries: dict[str, float]
    aa_rounds: int
    tomography: Tomography
    block_encoding_calls: float
    t_count: float
    logical_qubits: int
    classical_flops: Quantity
    classical_flops_dense: Quantity | None
    physical: _phys.PhysicalEstimate | None
    surface_code: _phys.PhysicalEstimate
    wall_clock: WallClock
    figures: dict[str, Figure] = field(repr=False)
    measured: dict[str, Any] | None = None

    def __getitem__(self, name: str) -> Any:
        """The value of figure ``name``."""
        return self.figures[name].value

    def to_dict(self) -> dict[str, Any]:
        """JSON form. κ, κ_eff, P_succ and the ε reached are ``{"value", "kind", ...}`` objects."""
        t = self.tomography
        out: dict[str, Any] = {
            "problem": self.problem.to_json(),
            "conditioning": self.conditioning.to_json(),
            "model": self.model.to_json(),
        }
        if self.measured is not None:
            out["measured"] = self.measured
        return out | {
            "logical_qubits": self.logical_qubits,
            "alpha": self.alpha,
            "kappa": self.kappa.to_json(),
            "kappa_eff": self.kappa_eff.to_json(),
            "p_succ": self.p_succ.to_json(),
            "queries": dict(self.queries),
            "solver": self.model.solver,
            "aa_rounds": self.aa_rounds,
            "epsilon": t.epsilon,
            "shots": t.shots,
            "shots_for_epsilon": t.for_epsilon,
            "shots_given": t.given,
            "epsilon_at_shots_given": None
            if t.epsilon_at_given is None
            else t.epsilon_at_given.to_json(),
            "block_encoding_calls": self.block_encoding_calls,
            "t_count": self.t_count,
            "classical_flops": self.classical_flops.value,
            "classical_flops_kind": self.classical_flops.kind,
            "classical_flops_dense": None
            if self.classical_flops_dense is None
            else self.classical_flops_dense.value,
            "flop_rate": self.model.flop_rate,
            "classical_seconds": self.wall_clock.classical_s,
            "quantum_seconds": self.wall_clock.quantum_s,
            "physical": None if self.physical is None else self.physical.to_dict(),
            "surface_code": self.surface_code.to_dict(),
            "wall_clock": self.wall_clock.to_dict(),
            "figures": {k: v.to_dict() for k, v in self.figures.items()},
            "source": {k: v.source for k, v in self.figures.items()},
        }

    def _headline(self) -> dict[str, Any]:
        w, pb = self.wall_clock, self.problem
        return {
            "n": pb.n,
            "T": pb.T,
            "N": pb.N,
            "epsilon": self.tomography.epsilon,
            "logical_qubits": self.logical_qubits,
            "kappa": self.kappa.to_json(),
            "t_count": f"{self.t_count:.3g} ({human_count(self.t_count)})",
            "shots": f"{self.tomography.shots:.3g} ({human_count(self.tomography.shots)})",
            "quantum_time": f"{w.quantum_s:.3g} s (≈ {human_seconds(w.quantum_s)})",
            "classical_time": f"{w.classical_s:.3g} s (≈ {human_seconds(w.classical_s)})",
            "winner": w.winner,
        }

    def __repr__(self) -> str:
        return short_repr("ResourceEstimate", self._headline())

    def _repr_html_(self) -> str:
        rows = self._headline() | {"physical_qubits": self.wall_clock.physical_qubits}
        return html_table(
            "ResourceEstimate of one quantum segment (ALGORITHM.md §7)",
            rows | {"quantum_clock": self.wall_clock.quantum_source},
            "every figure with its formula and source: to_pandas() or summary(); JSON: "
            "to_dict(); plot: qcarleman.report.plots.plot_estimate(estimate)",
        )

    def to_pandas(self):
        """The itemized bill as a ``pandas.DataFrame``: figure, value, formula, kind, assumption,
        source (pandas optional)."""
        f = self.figures
        return to_pandas(
            {
                "figure": list(f),
                "value": [
                    str(v.value) if isinstance(v.value, tuple) else v.value for v in f.values()
                ],
                "formula": [v.formula for v in f.values()],
                "kind": [v.kind or "" for v in f.values()],
                "assumption": [v.approx for v in f.values()],
                "source": [v.source for v in f.values()],
            }
        )

    def summary(self) -> str:
        """A plain-text table: figure, value, formula, [kind; assumption]; then the physical
        estimates, the tomography claim and the wall clock with its FLOP rate."""
        lines = ["figure                    value          formula  [kind; assumption]"]
        for name, fig in self.figures.items():
            v = fig.value
            vs = f"{v:.4g}" if isinstance(v, float) else str(v)
            tags = "; ".join(x for x in (fig.kind, fig.approx) if x)
            lines.append(f"{name:<25} {vs:<14} {fig.formula}{f'  [{tags}]' if tags else ''}")
        lines += ["", _physical_line("qsharp estimator", self.physical)]
        sc, src = self.surface_code, self.wall_clock.quantum_source
        if not sc.feasible and "(d = " in src:  # wall_clock extended the model past d = 50
            lines.append(
                f"surface-code model: {sc.reason} (beyond the estimator's range); the wall "
                f"clock below extends the same model: {src}"
            )
        else:
            lines.append(_physical_line("surface-code model", sc))
        t = self.tomography
        lines.append(
            f"tomography: priced {t.shots:.4g} shots for the target ε = {t.epsilon:g} "
            f"(needs {t.for_epsilon:.4g})"
            + (
                ""
                if t.given is None
                else f"; the {t.given:.4g} shots given reach ε ≤ {t.epsilon_at_given:.4g}"
            )
        )
        w = self.wall_clock
        lines.append(
            f"wall-clock: quantum {w.quantum_s:.3g} s ≈ {human_seconds(w.quantum_s)} "
            f"({w.quantum_source}) vs classical {w.classical_s:.3g} s ≈ "
            f"{human_seconds(w.classical_s)} = {self.classical_flops.value:.4g} FLOPs "
            f"({self.classical_flops.kind}) at {w.flop_rate:.3g} FLOP/s → {w.winner}"
        )
        return "\n".join(lines)


def _physical_line(label: str, phys: _phys.PhysicalEstimate | None) -> str:
    if phys is None:
        why = (
            "T-count beyond its 64-bit range (> 1e17)"
            if _phys.qsharp_available()
            else "not installed: pip install 'qcarleman[estimator]'"
        )
        return f"{label}: no result ({why})"
    return f"{label}: {phys.line()}"
