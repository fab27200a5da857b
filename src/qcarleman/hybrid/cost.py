"""The cost of one quantum segment: κ, P_succ and the resource estimate
(:func:`qcarleman.quantum.cost.estimate.estimate`, ALGORITHM.md §3, §7) with their sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..quantum.cost.inputs import StepFlops
from .settings import HybridSettings
from .stages import SolverOutput

__all__ = ["SegmentShape", "SegmentCost", "segment_cost"]


@dataclass(frozen=True)
class SegmentShape:
    """The sizes the estimate of a segment needs: active set n, model P, horizon T = K, order N,
    momentum, batch size and training FLOPs per step (sparse and dense, per-layer counts)."""

    n: int
    P: int
    T: int
    N: int
    momentum: bool
    batch_size: int
    flops_per_step: StepFlops


@dataclass(frozen=True)
class SegmentCost:
    """κ and P_succ with how each was obtained, and the summary of the estimate."""

    kappa: float
    kappa_source: str
    p_succ: float
    p_succ_source: str
    estimate: dict[str, Any]


def segment_cost(
    settings: HybridSettings,
    shape: SegmentShape,
    *,
    p_succ: float,
    p_succ_source: str,
    rho_measured: float | None,
    solver: SolverOutput | None,
    gmap: Any = None,
) -> SegmentCost:
    """κ and the estimate summary of a segment. κ, in order of preference: the real solver's own
    (exact or estimated on the dense history system); the measured κ of the order-1 history
    system of the map trained (momentum included; :class:`~qcarleman.autodiff.history_operator.
    HistoryOperator`, Lanczos on LᵀL through HVPs), *assumed* for an order N > 1 system; else the
    §3 bound from ``rho_measured`` = ‖A_lin‖₂ of the trained map (ALGORITHM.md §3, §6.1)."""
    from ..quantity import Quantity
    from ..quantum.cost.estimate import estimate
    from ..quantum.cost.inputs import Conditioning, CostModel, Problem

    s = settings
    p = s.idle_steps(shape.T)
    rho = rho_measured or (s.rho or None)
    rho_src = (
        "measured: ‖A_lin‖₂ of the trained map over the Hessian spectrum at the segment start "
        "(ALGORITHM.md §6.1)"
        if rho_measured
        else "HybridSettings.rho (the pipeline sets ‖A_lin‖₂ of the step-0 spectrum)"
    )
    kappa = _segment_kappa(solver, gmap, shape, p)
    est = estimate(
        problem=Problem(
            n=shape.n,
            P=shape.P,
            T=shape.T,
            N=shape.N,
            p=p,
            epsilon=s.epsilon,
            momentum=shape.momentum,
            batch_size=shape.batch_size,
            flops_per_step=shape.flops_per_step,
        ),
        conditioning=Conditioning(
            rho=Quantity(rho, "measured" if rho_measured else "assumed", source=rho_src)
            if rho
            else None,
            kappa=kappa,
            p_succ=Quantity(p_succ, "exact" if solver else "measured", source=p_succ_source)
            if p_succ > 0
            else None,
        ),
        model=CostModel(solver=s.solver, shots=s.shots or None, use_qsharp=False),
    )
    if kappa is not None:
        k_src = kappa.source
    elif rho:
        k_src = f"§3 bound from ‖A‖ = {rho:.6g}"
    else:
        k_src = f"§3 bound, {est.figures['kappa'].approx or 'given'}"
    summary = _estimate_summary(est, settings, shape, p)
    return SegmentCost(float(est.kappa.value), k_src, p_succ, p_succ_source, summary)


def _segment_kappa(solver: SolverOutput | None, gmap: Any, shape: SegmentShape, p: int):
    """κ of the segment's history system as a :class:`~qcarleman.quantity.Quantity`, or None
    (the estimate then bounds it from ‖A‖)."""
    from ..quantity import Quantity

    if solver:
        kind = "exact" if solver.kappa_method == "κ exact" else "measured"
        src = f"history system, {solver.kappa_method} (ALGORITHM.md §3)"
        return Quantity(solver.kappa, kind, source=src)
    if gmap is None:
        return None
    from ..autodiff.history_operator import HistoryOperator

    measured = HistoryOperator(gmap, shape.T, p).kappa(tol=1e-6)
    if shape.N == 1:
        return measured
    return Quantity(
        measured.value,
        "assumed",
        source=(
            f"measured κ of the order-1 history system of the map trained ({measured.source}), "
            f"taken for the order-{shape.N} system (its κ is not measured)"
        ),
    )


def _estimate_summary(est, settings: HybridSettings, shape: SegmentShape, p: int) -> dict:
    """The fields of the estimate a segment record keeps (κ as ``{value, kind}``, the shots the
    target ε needs beside the shots given and the ε they reach, the classical FLOP rate)."""
    wall, tomo = est.wall_clock, est.tomography
    return {
        "n": shape.n,
        "T": shape.T,
        "N": shape.N,
        "p": p,
        "logical_qubits": est.logical_qubits,
        "kappa": est.kappa.to_json(),
        "kappa_eff": est.kappa_eff.to_json(),
        "p_succ": float(est.p_succ.value),
        "aa_rounds": est.aa_rounds,
        "epsilon": tomo.epsilon,
        "shots": tomo.shots,
        "shots_for_epsilon": tomo.for_epsilon,
        "shots_given": tomo.given,
        "epsilon_at_shots_given": None
        if tomo.epsilon_at_given is None
        else tomo.epsilon_at_given.to_json(),
        "queries": est.queries[settings.solver],
        "solver": settings.solver,
        "block_encoding_calls": est.block_encoding_calls,
        "t_count": est.t_count,
        "classical_flops": est.classical_flops.value,
        "classical_flops_kind": est.classical_flops.kind,
        "classical_flops_dense": est.classical_flops_dense.value,
        "flop_rate": wall.flop_rate,
        "quantum_seconds": wall.quantum_s,
        "quantum_clock": wall.quantum_source,
        "physical_qubits": wall.physical_qubits,
        "classical_seconds": wall.classical_s,
        "winner": wall.winner,
        "assumptions": {k: f.approx for k, f in est.figures.items() if f.approx},
    }
