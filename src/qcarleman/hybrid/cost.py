"""The cost of one quantum segment: κ, P_succ and the resource estimate
(:func:`qcarleman.quantum.cost.estimate.estimate`, ALGORITHM.md §3, §7) with their sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import HybridSettings
from .stages import SolverOutput

__all__ = ["SegmentShape", "SegmentCost", "segment_cost"]


@dataclass(frozen=True)
class SegmentShape:
    """The sizes the estimate of a segment needs: active set n, model P, horizon T = K, order N,
    momentum, batch size and training FLOPs per step."""

    n: int
    P: int
    T: int
    N: int
    momentum: bool
    batch_size: int
    flops_per_step: float


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
) -> SegmentCost:
    """κ (with a real solver its own, else the §3 bound from ρ) and the estimate summary."""
    from ..quantum.cost.estimate import estimate

    s = settings
    p = s.idle_steps(shape.T)
    rho = rho_measured or (s.rho or None)
    rho_src = (
        "measured: Hessian spectrum at the segment start (ALGORITHM.md §6)"
        if rho_measured
        else "user input (HybridSettings.rho)"
    )
    est = estimate(
        n=shape.n,
        P=shape.P,
        T=shape.T,
        N=shape.N,
        p=p,
        epsilon=s.epsilon,
        rho=rho,
        kappa=solver.kappa if solver else None,
        momentum=shape.momentum,
        p_succ=p_succ if p_succ > 0 else None,
        shots=s.shots or None,
        solver=s.solver,
        batch_size=shape.batch_size,
        flops_per_step=shape.flops_per_step,
        use_qsharp=False,
        provenance={"rho": rho_src} if rho else None,
    )
    if solver:
        k_src = f"history system, {solver.kappa_method} (ALGORITHM.md §3)"
    elif rho:
        k_src = f"§3 bound from ρ = {rho:.6g}"
    else:
        k_src = f"§3 bound, {est.figures['kappa'].approx or 'given'}"
    summary = _estimate_summary(est, settings, shape, p)
    return SegmentCost(float(est["kappa"]), k_src, p_succ, p_succ_source, summary)


def _estimate_summary(est, settings: HybridSettings, shape: SegmentShape, p: int) -> dict:
    """The fields of the estimate a segment record keeps."""
    from ..quantum.cost.estimate import tomography_shots

    s, wall = settings, est.wall_clock
    d = 2 * shape.n if shape.momentum else shape.n
    return {
        "n": shape.n,
        "T": shape.T,
        "N": shape.N,
        "p": p,
        "logical_qubits": est["logical_qubits"],
        "kappa": float(est["kappa"]),
        "kappa_eff": est["kappa_eff"],
        "p_succ": est["p_succ"],
        "aa_rounds": est["aa_rounds"],
        "shots": est["shots"],
        "shots_for_epsilon": tomography_shots(d, s.epsilon / 2),
        "queries": est[f"queries_{s.solver}"],
        "solver": s.solver,
        "block_encoding_calls": est["block_encoding_calls"],
        "t_count": est["t_count"],
        "classical_flops": est["classical_flops"],
        "quantum_seconds": wall.get("quantum_s"),
        "classical_seconds": wall.get("classical_s"),
        "winner": wall.get("winner"),
        "assumptions": {k: f.approx for k, f in est.figures.items() if f.approx},
    }
