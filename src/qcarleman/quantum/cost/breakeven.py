r"""Break-even of the quantum segment against classical sparse training (ALGORITHM.md §7).

Over n = 10³…10⁹ active parameters (log grid) and horizons T, for two regimes (ALGORITHM.md §6):

* fully dissipative: ρ = ‖F1‖ = ``rho_fully`` < 1 (default 0.9), κ bounded in T;
* almost dissipative: ρ = 1 + 1/T, κ ≈ linear in T;

each point is a full :func:`qcarleman.quantum.cost.estimate.estimate` (Carleman order N, target
error ε, download by tomography included; ``CostModel`` from the keywords), with

* quantum wall-clock = T-count (logical depth) × logical cycle time of the surface-code model
  (:func:`qcarleman.quantum.cost.physical.surface_code_model`, distance extended past 50 when
  needed), or T-count / ``logical_rate`` when a logical operation rate is stated;
* classical wall-clock = 6·n·B·T FLOPs / ``flop_rate`` (default 1e15 FLOP/s, an optimistic
  GPU peak; sparse kernels run slower, which favours the quantum side).

A second variant drops the download (one output sample instead of tomography) to show what the
QLSA alone would cost — a lower bound that no training run can reach, since the parameters
must be read out. The crossover is the smallest n where the quantum time drops below the
classical time (log-linear interpolation between grid points), or None ("none in range").
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ...errors import UsageError
from ...quantity import Quantity
from .estimate import estimate
from .inputs import Conditioning, CostModel, Problem

__all__ = ["breakeven", "crossover", "breakeven_table", "DEFAULT_T"]

DEFAULT_T = (10, 20, 50, 100)


def crossover(ns, quantum_s, classical_s) -> float | None:
    """Smallest n where quantum < classical, interpolated in log n on log(q/c); None if never."""
    ns = np.asarray(ns, float)
    r = np.log(np.asarray(quantum_s, float)) - np.log(np.asarray(classical_s, float))
    if not np.all(np.isfinite(r)):
        r = np.where(np.isfinite(r), r, np.inf)
    below = np.nonzero(r < 0)[0]
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(ns[0])
    x0, x1, r0, r1 = math.log(ns[i - 1]), math.log(ns[i]), r[i - 1], r[i]
    if not np.isfinite(r0):
        return float(ns[i])
    return float(math.exp(x0 + (x1 - x0) * r0 / (r0 - r1)))


def breakeven(
    ns=None,
    Ts=DEFAULT_T,
    *,
    N: int = 2,
    epsilon: float = 1e-2,
    rho_fully: float = 0.9,
    batch_size: int = 128,
    sparsity: int | None = 10,
    model: CostModel | None = None,
) -> dict:
    """Table and crossovers. ``sparsity`` s (nonzeros per Hessian row; default 10 — the paper's
    sparse-model assumption, favourable to the quantum side) enters the oracle cost; ``model``
    prices every point (default ``CostModel()``; qsharp is never asked here, the grid is too big
    for its range).

    Returns {"rows": [...], "crossovers": [...], "settings": {...}}; each row has regime, T, n,
    download (bool), kappa ({"value", "kind"}), t_count, quantum_s, classical_s, winner."""
    if not 0 < rho_fully < 1:
        raise UsageError(f"rho_fully = {rho_fully} is not fully dissipative; pass 0 < ρ < 1")
    base = replace(model or CostModel(), use_qsharp=False, shots=None)
    ns = np.unique(np.round(np.logspace(3, 9, 13))).astype(np.int64) if ns is None else ns
    ns = [int(v) for v in ns]
    rows, cross = [], []
    for regime in ("fully dissipative", "almost dissipative"):
        for T in Ts:
            rho = rho_fully if regime.startswith("fully") else 1 + 1 / T
            cond = Conditioning(rho=Quantity(rho, "assumed", source=f"{regime} regime (§6)"))
            for download in (True, False):
                model_d = replace(base, download=download)
                qs, cs = [], []
                for n in ns:
                    problem = Problem(
                        n=n,
                        T=int(T),
                        N=N,
                        epsilon=epsilon,
                        batch_size=batch_size,
                        sparsity=None if sparsity is None else min(sparsity, n),
                    )
                    est = estimate(problem=problem, conditioning=cond, model=model_d)
                    w = est.wall_clock
                    qs.append(w.quantum_s)
                    cs.append(w.classical_s)
                    rows.append(
                        {
                            "regime": regime,
                            "T": int(T),
                            "n": n,
                            "download": download,
                            "kappa": est.kappa.to_json(),
                            "t_count": est.t_count,
                            "quantum_s": w.quantum_s,
                            "classical_s": w.classical_s,
                            "winner": w.winner,
                        }
                    )
                cross.append(
                    {
                        "regime": regime,
                        "T": int(T),
                        "download": download,
                        "crossover_n": crossover(ns, qs, cs),
                    }
                )
    settings = {
        "N": N,
        "epsilon": epsilon,
        "rho_fully": rho_fully,
        "rho_almost": "1 + 1/T",
        "batch_size": batch_size,
        "sparsity": sparsity,
        "quantum_clock": "stated logical rate"
        if base.logical_rate
        else "surface-code model logical cycle (Beverland et al. 2022 formulas)",
        **base.to_json(),
    }
    return {"rows": rows, "crossovers": cross, "settings": settings}


def breakeven_table(result: dict) -> str:
    """Markdown: one line per (regime, T, download) with the time ratio at the ends of the n
    range and the crossover."""
    rows = result["rows"]
    lines = [
        "| regime | T | download | κ | quantum/classical at n_min | at n_max | crossover n |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result["crossovers"]:
        sel = [
            r
            for r in rows
            if r["regime"] == c["regime"] and r["T"] == c["T"] and r["download"] == c["download"]
        ]
        lo, hi = sel[0], sel[-1]
        ratio = lambda r: r["quantum_s"] / r["classical_s"]
        cn = c["crossover_n"]
        lines.append(
            f"| {c['regime']} | {c['T']} | {'yes' if c['download'] else 'no (1 sample)'} | "
            f"{lo['kappa']['value']:.3g} | {ratio(lo):.3g} | {ratio(hi):.3g} | "
            f"{'none in range' if cn is None else f'{cn:.3g}'} |"
        )
    return "\n".join(lines)
