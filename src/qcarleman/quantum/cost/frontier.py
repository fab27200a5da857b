r"""The advantage frontier: where the quantum bill would beat classical training (ALGORITHM.md §7;
issue 17, part 3).

:func:`qcarleman.quantum.cost.breakeven.breakeven` scans one axis (n) for a few T. The frontier
scans every assumption the bill depends on and reports, for each combination of

* row sparsity s of the Hessian (oracle cost, ALGORITHM.md §7),
* target error ε (tomography shots ∝ n/ε², QLSA polynomial degree ∝ log 1/ε),
* horizon T, at the regime's ρ (fully dissipative ρ = ``rho``, κ bounded in T),
* download: full ℓ2 tomography of the n parameters, or only a few observables (one output sample,
  the QLSA alone — a lower bound no training run reaches, since the parameters must be read out),
* classical FLOP rate (classical wall-clock = FLOPs/rate),
* quantum logical clock: the surface-code model's logical cycle, or a stated rate of logical
  operations per second (``CostModel.logical_rate``),

the crossover n (smallest active-parameter count where quantum wall-clock < classical, by
:func:`~qcarleman.quantum.cost.breakeven.crossover` on the n grid) — each point the same full
estimate as the break-even table (:func:`~qcarleman.quantum.cost.breakeven.point_estimates`),
so where the axes overlap the two agree exactly. :func:`what_would_have_to_be_true` condenses
the map into one sentence for a given model size n.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np

from ...errors import UsageError
from ...quantity import Quantity
from .breakeven import crossover, point_estimates
from .inputs import Conditioning, CostModel

__all__ = ["frontier", "what_would_have_to_be_true", "DEFAULT_AXES"]

DEFAULT_AXES: dict[str, tuple] = {
    "sparsity": (1, 10, 40, 100),
    "epsilon": (1e-1, 1e-2),
    "T": (10, 100),
    "download": (True, False),
    "flop_rate": (1e15, 1e18),
    "logical_rate": (None, 1e9),
}


def frontier(
    ns=None,
    *,
    axes: dict[str, tuple] | None = None,
    N: int = 2,
    rho: float = 0.9,
    batch_size: int = 128,
    model: CostModel | None = None,
) -> dict[str, Any]:
    """Crossover n for every combination of ``axes`` (module docstring; keys as in
    :data:`DEFAULT_AXES`, missing ones take the default). ``ns`` default: 10³…10²⁴ (log grid).
    Returns {"cells": [...], "ns": [...], "settings": {...}}; a cell holds the axis values,
    ``crossover_n`` (None: not in range) and the quantum/classical time ratio at the largest n."""
    if not 0 < rho < 1:
        raise UsageError(f"rho = {rho} is not fully dissipative; pass 0 < ρ < 1")
    ax = {**DEFAULT_AXES, **(axes or {})}
    unknown = set(ax) - set(DEFAULT_AXES)
    if unknown:
        raise UsageError(f"unknown frontier axes {sorted(unknown)}; use {sorted(DEFAULT_AXES)}")
    base = replace(model or CostModel(), use_qsharp=False, shots=None)
    ns = np.unique(np.round(np.logspace(3, 24, 22))) if ns is None else ns
    ns = [int(v) for v in ns]
    cond = Conditioning(rho=Quantity(rho, "assumed", source="fully dissipative regime (§6)"))
    cells = []
    keys = list(DEFAULT_AXES)
    for values in itertools.product(*(ax[k] for k in keys)):
        cell = dict(zip(keys, values))
        m = replace(
            base,
            download=bool(cell["download"]),
            flop_rate=float(cell["flop_rate"]),
            logical_rate=cell["logical_rate"],
        )
        ests = point_estimates(
            ns,
            T=int(cell["T"]),
            N=N,
            epsilon=float(cell["epsilon"]),
            batch_size=batch_size,
            sparsity=cell["sparsity"],
            conditioning=cond,
            model=m,
        )
        qs = [e.wall_clock.quantum_s for e in ests]
        cs = [e.wall_clock.classical_s for e in ests]
        cells.append(
            {**cell, "crossover_n": crossover(ns, qs, cs), "ratio_at_n_max": qs[-1] / cs[-1]}
        )
    settings = {
        "N": N,
        "rho": rho,
        "batch_size": batch_size,
        "n_range": [ns[0], ns[-1]],
        "axes": {k: list(v) for k, v in ax.items()},
        "assumptions": [
            f"fully dissipative segment, ρ = {rho} assumed (κ from the §3 bound)",
            "classical cost = 6·n·B·T FLOPs at the stated FLOP rate (ALGORITHM.md §7)",
            "quantum clock: surface-code logical cycle (Beverland et al. 2022) or the stated "
            "logical rate",
            "download: ℓ2 tomography with shots ∝ n/ε² (Kerenidis–Prakash); 'no download' = "
            "one output sample (a few observables only)",
            "row sparsity s sets the structure of L and the QROM table n(1 + s + s²); with the "
            "default LCU block encoding (α = ρ assumed, estimate.py) it barely moves the "
            "crossover",
        ],
        **base.to_json(),
    }
    return {"cells": cells, "ns": ns, "settings": settings}


def _fmt_n(n: float) -> str:
    n = float(n)
    e = math.floor(math.log10(n))
    return f"10^{e}" if abs(n / 10.0**e - 1) < 0.05 else f"{n:.2g}"


def what_would_have_to_be_true(result: dict[str, Any], n: int | None = None) -> str:
    """One sentence: the least demanding conditions (largest s and ε, with download first, then
    the slowest quantum clock and fastest classical rate) under which quantum wins, at model size
    ``n`` if given (cells with crossover ≤ n), else at the smallest crossover anywhere."""
    cells = [c for c in result["cells"] if c["crossover_n"] is not None]
    if n is not None:
        fit = [c for c in cells if c["crossover_n"] <= n]
        if fit:
            cells = fit
    if not cells:
        hi = result["ns"][-1]
        return (
            f"Under no combination of the scanned assumptions does the quantum bill beat "
            f"classical training for n ≤ {_fmt_n(hi)}."
        )

    def demand(c):
        return (
            not c["download"],
            -c["sparsity"],
            -c["epsilon"],
            c["logical_rate"] is not None,
            -c["flop_rate"],
            c["crossover_n"],
        )

    c = min(cells, key=demand)
    clock = (
        "the surface-code logical cycle"
        if c["logical_rate"] is None
        else f"{c['logical_rate']:.0e} logical operations/s"
    )
    dl = "with full download" if c["download"] else "and no download (a few observables only)"
    where = f"at n ≥ {_fmt_n(c['crossover_n'])}"
    if n is not None and c["crossover_n"] <= n:
        where += f" (your n = {_fmt_n(n)} qualifies)"
    elif n is not None:
        where += f" (your n = {_fmt_n(n)} is too small)"
    never = ""
    if not any(x["download"] and x["crossover_n"] is not None for x in result["cells"]):
        never = f" With full download it never wins for n ≤ {_fmt_n(result['ns'][-1])}."
    return (
        f"Quantum would win if s ≤ {c['sparsity']}, ε ≥ {c['epsilon']:g} {dl}, T = {c['T']}, "
        f"with {clock} against {c['flop_rate']:.0e} FLOP/s classical, {where}.{never}"
    )
