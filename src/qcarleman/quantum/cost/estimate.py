r"""What a fault-tolerant run of the Carleman training algorithm would cost (ALGORITHM.md §7).

Costs are data (Qualtran-style): :func:`estimate` takes three value types
(:class:`~.inputs.Problem`, :class:`~.inputs.Conditioning`, :class:`~.inputs.CostModel`) and
returns a :class:`ResourceEstimate` — typed headline fields plus the itemized bill, every line a
:class:`Figure` ``{value, formula, source, approx, kind}``. The formulas are
:mod:`qcarleman.quantum.cost.formulas`, one function each, with their sources.
:func:`estimate_history` reads the inputs off an emulated :class:`~qcarleman.HistorySystem`.

Stated choices:

* error split: the target ℓ2 error ε of the downloaded parameters goes to the QLSA output state
  (``CostModel.qlsa_share``, ½) and to tomography (the rest). Carleman truncation error is
  measured by the emulation, not costed;
* the bill prices what it claims: the tomography shots that the target ε needs. A shot budget
  actually used (``CostModel.shots``) is reported beside it with the ε it reaches;
* classical cost: the measured per-layer count when given (``Problem.flops_per_step``), else the
  analytic 6·w·B rule (:func:`~.formulas.classical_flops`), for the active weights (sparse) and
  all weights (dense) with the same rule; seconds = FLOPs / ``CostModel.flop_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...carleman.blocks import inverse_norm_bound
from ...errors import UsageError
from ...quantity import Kind, Quantity
from . import formulas as F
from . import physical as _phys
from .bill import Figure, ResourceEstimate, Tomography, WallClock
from .inputs import Conditioning, CostModel, Problem

__all__ = [
    "ResourceEstimate",
    "estimate",
    "estimate_history",
    "wall_clock",
    "DEFAULT_MODEL",
]

_ADIABATIC = ("costa", "costa-empirical", "jennings")
_NOTHING_KNOWN = Conditioning()
#: The stated cost model (``CostModel()``): costa-empirical, ε split in halves, 1e15 FLOP/s.
DEFAULT_MODEL = CostModel()


# ------------------------------------------------------------------------------------------
# the steps of the bill, one function each; each adds its figures to ``fig``
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cond:
    kappa: Quantity
    inv_norm: float  # ‖L⁻¹‖ (or its bound)
    rho: float
    a0: float  # ‖f0‖/γ
    a2: float  # γ‖F2‖
    gamma: float
    linear_only: bool


def _dimensions(pb: Problem, fig: dict[str, Figure]) -> int:
    dimY = F.history_dim(pb.d, pb.N, pb.T, pb.idle, pb.symmetric)
    sym = " (symmetric)" if pb.symmetric else ""
    fig["dim_Y"] = Figure(dimY, "(T+p+1)·Σ_j d^j" + sym, "ALGORITHM.md §2–§3")
    m = F.qubits_for(dimY)
    fig["system_qubits"] = Figure(m, "⌈log2 dim Y⌉", "ALGORITHM.md §7")
    return m


def _q(x: Quantity | float | None) -> Quantity | None:
    """A number field of Conditioning or Problem as stored: their ``__post_init__`` makes every
    number a Quantity."""
    assert x is None or isinstance(x, Quantity)
    return x


def _conditioning(pb: Problem, c: Conditioning, fig: dict[str, Figure]) -> _Cond:
    """κ given (with ‖L‖ if known), or the §3 bound from ρ, ‖f0‖, ‖F2‖ and γ."""
    rho_in, f0_q, F2_q, kappa_in, norm_L = map(_q, (c.rho, c.f0_norm, c.F2_norm, c.kappa, c.norm_L))
    linear_only = f0_q is None or F2_q is None
    f0 = 0.0 if f0_q is None else float(f0_q.value)
    F2 = 0.0 if F2_q is None else float(F2_q.value)
    if c.gamma is not None:
        g = float(c.gamma)
    else:
        g = math.sqrt(f0 / F2) if not linear_only and f0 > 0 and F2 > 0 else 1.0
    rho, note = rho_in, ""
    if rho is None and kappa_in is None:
        rho = Quantity(1 + 1 / pb.T, "assumed", source="ρ = 1 + 1/T (almost-dissipative edge, §6)")
        note = "almost-dissipative"
    elif rho is None:
        rho = Quantity(1.0, "assumed", source="ρ = 1 with a given κ (α1 of the LCU)")
        note = "ρ = 1 assumed with given κ"
    form = "ρ = ‖F1‖₂ (map actually trained: ‖A_lin‖₂, §6.1)"
    fig["rho"] = Figure(float(rho.value), form, rho.source or rho.kind, note, rho.kind)
    for name, q, form in (
        ("f0_norm", f0_q, "‖f0‖ = η‖g‖"),
        ("F2_norm", F2_q, "‖F2‖ = sup_{‖u‖=1} ‖F2(u, u)‖"),
    ):
        if q is not None:
            fig[name] = Figure(float(q.value), form, q.source or q.kind, "", q.kind)
    if kappa_in is not None:
        inv = kappa_in.value / (1.0 if norm_L is None else norm_L.value)
        fig["kappa"] = Figure(
            float(kappa_in.value),
            "given",
            kappa_in.source or "user input",
            "" if norm_L is not None else "‖L‖ not given: ‖L⁻¹‖ ≤ κ used (‖L‖ ≥ 1)",
            kappa_in.kind,
        )
        return _Cond(kappa_in, inv, float(rho.value), f0 / g, g * F2, g, linear_only)
    nA = F.norm_A_bound(float(rho.value), pb.N, f0, F2, g)
    inv = inverse_norm_bound(nA, pb.idle, steps=pb.T)
    notes = ["ρ = 1 + 1/T assumed; pass ρ or κ"] if rho_in is None else []
    if linear_only:
        notes.append("‖f0‖, ‖F2‖ not given: linear part only")
    used = [rho_in, f0_q, F2_q]
    measured = [
        n
        for n, q in zip(("rho", "f0_norm", "F2_norm"), used)
        if q is not None and q.kind == "measured"
    ]
    assumed = any(q is None or q.kind == "assumed" for q in used)
    source = "ALGORITHM.md §3 (κ bound)" + (
        f" from measured {', '.join(measured)}" if measured else ""
    )
    kappa = Quantity((1 + nA) * inv, "assumed" if assumed else "bound", source=source)
    fig["norm_A"] = Figure(nA, "‖(Σ_a Π‖G_{a_i}‖)_{jk}‖₂", "ALGORITHM.md §2; norm_bound")
    fig["kappa"] = Figure(
        kappa.value, "(1+‖A‖)·Σ_k max_s Π‖A‖", source, "; ".join(notes), kappa.kind
    )
    return _Cond(kappa, inv, float(rho.value), f0 / g, g * F2, g, linear_only)


def _block_encoding(pb: Problem, cond: _Cond, s: int, fig: dict[str, Figure]) -> tuple[float, str]:
    """α: sparse access when the structure of L is given, else the LCU of tensor terms."""
    s2 = min(s * s, pb.d * pb.d)
    if pb.row_sparsity is not None and pb.max_entry is not None:
        sr = pb.row_sparsity
        sc = pb.col_sparsity if pb.col_sparsity is not None else sr
        fig["sparsity_L"] = Figure(
            (sr, sc), "given (rows, columns)", "user input", "" if pb.col_sparsity else "s_c = s_r"
        )
        alpha = F.alpha_sparse(sr, sc, pb.max_entry)
        fig["alpha"] = Figure(alpha, "√(s_r s_c)·max|L_ij|", "Gilyén et al. 2019, Lemma 48")
        return alpha, "sparse"
    dense = "s = n (dense Hessian) assumed" if pb.sparsity is None else ""
    fig["sparsity_L"] = Figure(
        F.sparsity_L(pb.N, s, s2, pb.d),
        "1 + max_j Σ_k Σ_a Π nnz(G_{a_i}) (rows; columns)",
        "ALGORITHM.md §2–§3",
        dense,
    )
    alpha = F.alpha_lcu(pb.N, cond.a0, cond.rho, cond.a2)
    fig["alpha"] = Figure(
        alpha,
        "1 + Σ_{j,k} Σ_a Π α_{a_i}, α = (‖f0‖/γ, ρ, γ‖F2‖)",
        "LCU: Childs & Wiebe 2012; Gilyén et al. 2019 Lemma 30",
        "α1 = ‖F1‖ (s·max|F1_ij| = ‖F1‖ assumed)" + ("; α0 = α2 = 0" if cond.linear_only else ""),
    )
    return alpha, "lcu"


def _sparsity(pb: Problem, fig: dict[str, Figure]) -> int:
    q = _q(pb.sparsity)
    s = pb.n if q is None else max(1, min(int(q.value), pb.n))
    fig["sparsity_H"] = Figure(
        s,
        "nonzeros per row of H (s)",
        "assumed" if q is None else (q.source or q.kind),
        "s = n (dense Hessian) assumed" if q is None else "",
        "assumed" if q is None else q.kind,
    )
    return s


def _kappa_eff(cond: _Cond, c: Conditioning, alpha: float, access: str, fig) -> Quantity:
    """κ_eff = α‖L⁻¹‖: the singular values of L/α lie in [1/κ_eff, 1] (GSLW 2019)."""
    k = cond.kappa.kind
    kind: Kind
    if k == "assumed" or access == "lcu":
        kind = "assumed"  # the LCU's α1 = ‖F1‖ is an assumption
    elif k == "exact" and c.norm_L is None:
        kind = "bound"  # ‖L⁻¹‖ ≤ κ
    else:
        kind = k
    q = Quantity(max(alpha * cond.inv_norm, 1.0), kind, source="α·‖L⁻¹‖ (GSLW 2019)")
    fig["kappa_eff"] = Figure(
        q.value, "α·‖L⁻¹‖", "GSLW 2019 (singular values of L/α in [1/κ_eff, 1])", "", kind
    )
    return q


def _queries(k_eff: float, eps_q: float, fig: dict[str, Figure]) -> dict[str, float]:
    out = {}
    for name in F.SOLVERS:
        if name == "jennings" and eps_q > 0.24:
            continue
        src, formula = F.SOLVER_SOURCES[name]
        out[name] = F.solver_queries(name, k_eff, eps_q)
        emp = "empirical constant, not a bound" if name == "costa-empirical" else ""
        fig[f"queries_{name}"] = Figure(out[name], formula, src, emp)
    return out


def _p_succ(pb: Problem, c: Conditioning, fig: dict[str, Figure]) -> tuple[Quantity, int]:
    q = _q(c.p_succ)
    if q is None:
        p = pb.idle
        q = Quantity(
            (p + 1) / ((pb.T + p + 1) * pb.N),
            "assumed",
            source="P_succ = (p+1)/((T+p+1)·N): equal norm per step and level",
        )
    note = q.source if q.kind == "assumed" else ""
    fig["p_succ"] = Figure(float(q.value), "(p+1)‖ŷ1(T)‖²/‖Y‖²", "ALGORITHM.md §3", note, q.kind)
    R = F.aa_rounds(float(q.value))
    fig["aa_rounds"] = Figure(R, "⌊π/(4 asin √P_succ)⌋", "Brassard et al. 2002, Thm. 2")
    return q, R


def _tomography(pb: Problem, model: CostModel, fig: dict[str, Figure]) -> Tomography:
    """Shots priced for the target ε (Kerenidis–Prakash), and the ε a given budget reaches."""
    eps_t = pb.epsilon * (1 - model.qlsa_share)
    need = F.tomography_shots(pb.d, eps_t)
    split = f"δ = ({1 - model.qlsa_share:g}·ε)/√7"
    fig["shots_for_epsilon"] = Figure(need, f"2⌈36 d ln d/δ²⌉, {split}", F.SRC_KP)
    if model.download:
        fig["shots"] = Figure(need, "shots_for_epsilon (the claimed ε is priced)", F.SRC_KP)
    else:
        fig["shots"] = Figure(
            1, "1 output sample", "QLSA-only lower bound", "no download: parameters not read out"
        )
    reached = None
    if model.shots is not None:
        reached = Quantity(
            pb.epsilon * model.qlsa_share + F.tomography_epsilon(pb.d, model.shots),
            "bound",
            source="ε_QLSA + √7·√(36 d ln d/⌊M/2⌋) (Kerenidis & Prakash Thm. 4.3, inverted)",
        )
        fig["shots_given"] = Figure(model.shots, "given (the budget actually used)", "user input")
        fig["epsilon_at_shots_given"] = Figure(
            reached.value, "ε_q + √7·√(36 d ln d/⌊M/2⌋)", F.SRC_KP, "", "bound"
        )
    return Tomography(
        epsilon=pb.epsilon,
        shots=need if model.download else 1,
        for_epsilon=need,
        given=model.shots,
        epsilon_at_given=reached,
    )


def _n_data(pb: Problem, s: int) -> int:
    """Entries of the QROM table: n(1 + s + min(s², d²))."""
    return pb.n * (1 + s + min(s * s, pb.d * pb.d))


def _t_count(
    pb: Problem, model: CostModel, m: int, s: int, Q: float, R: int, shots: float, fig
) -> tuple[float, float]:
    """Block-encoding calls and T-count (stated oracle model)."""
    calls = float(shots) * (2 * R + 1) * Q
    fig["block_encoding_calls"] = Figure(
        calls, f"shots·(2m+1)·Q[{model.solver}]", "ALGORITHM.md §7 (tomography × AA × QLSA)"
    )
    n_data = _n_data(pb, s)
    tc, tform = F.t_per_call(m, model.bits, pb.N, model.oracle, model.entry_mults, n_data)
    fig["t_per_call"] = Figure(
        tc,
        tform,
        "Gilyén et al. 2019 L.48; Gidney 2018; Sanders et al. 2019; LKS 2018",
        model.oracle,
    )
    # State preparation of the right-hand side c = (0, b(0), …): per level N a QROAM load of
    # the entries of f0 (Low, Kliuchnikov, Schaeffer 2018), once per query (adiabatic solvers
    # reflect about |c⟩ every walk step) or per AA application (HHL/CKS).
    t_prep = pb.N * 4.0 * F.qroam_toffoli(pb.d, model.bits) + 16.0 * m
    preps = Q if model.solver in _ADIABATIC else 1.0
    fig["t_per_prep"] = Figure(t_prep, "N·4·QROAM(d, b) + 16m", "Low, Kliuchnikov, Schaeffer 2018")
    t_total = calls * tc + float(shots) * (2 * R + 1) * preps * t_prep
    fig["t_count"] = Figure(
        t_total, "calls·T_call + shots·(2m+1)·preps·T_prep", "ALGORITHM.md §7", model.oracle
    )
    return calls, t_total


def _logical_qubits(
    pb: Problem, model: CostModel, m: int, s: int, k_eff: float, eps_q: float, fig
) -> int:
    """Logical qubits (stated ancilla model), and the upload figures."""
    n_data = _n_data(pb, s)
    anc_be = m + 3 + m + pb.N * model.bits + model.bits
    if model.oracle == "qrom":
        anc_be += model.bits * int(max(1, math.sqrt(n_data / model.bits)))
    anc_q = {
        "hhl": lambda: F.qubits_for(max(2, math.ceil(k_eff / eps_q))) + 1,
        "cks": lambda: F.qubits_for(F.cks_parameters(max(k_eff, 1.0 + 1e-9), eps_q)[1] + 1) + 1,
    }.get(model.solver, lambda: 3)()
    lq = (m + 1) + anc_be + anc_q + 1
    fig["logical_qubits"] = Figure(
        lq,
        "(m+1 dilation) + (2m+3 + (N+1)b block-encoding) + QLSA ancillas + 1 (tomography control)",
        "Gilyén et al. 2019 L.48; Costa et al. 2022; Kerenidis & Prakash 2018",
        "ancilla counts are a stated model",
    )
    fig["upload_t"] = Figure(
        4.0 * F.qroam_toffoli(pb.n, model.bits),
        "4·QROAM(n, b)",
        "ALGORITHM.md §5; Low, Kliuchnikov, Schaeffer 2018",
    )
    if pb.P is not None:
        fig["upload_qram_depth"] = Figure(F.qubits_for(pb.P), "⌈log2 P⌉", "ALGORITHM.md §5 (QRAM)")
    return lq


def _classical(pb: Problem, fig: dict[str, Figure]) -> tuple[Quantity, Quantity | None]:
    """FLOPs of the same T steps, sparse (active weights) and dense (all weights), one rule:
    the measured per-layer count if given, else the analytic 6·w·B·T."""
    fps = pb.flops_per_step
    if fps is not None:
        sparse = Quantity(fps.sparse.value * pb.T, fps.sparse.kind, source=fps.sparse.source)
        dense = Quantity(fps.dense.value * pb.T, fps.dense.kind, source=fps.dense.source)
        form = "T·(per-layer FLOPs of one step)"
    else:
        src = "Kaplan et al. 2020, Sec. 2.1 (6 FLOPs per weight and example)"
        sparse = Quantity(F.classical_flops(pb.n, pb.batch_size, pb.T), "estimated", source=src)
        dense = None
        if pb.P is not None:
            dense = Quantity(F.classical_flops(pb.P, pb.batch_size, pb.T), "estimated", source=src)
        form = "6·w·B·T"
    fig["classical_flops"] = Figure(
        sparse.value, form + " (active weights)", sparse.source, "", sparse.kind
    )
    if dense is not None:
        fig["classical_flops_dense"] = Figure(
            dense.value, form + " (all weights)", dense.source, "", dense.kind
        )
    return sparse, dense


# ------------------------------------------------------------------------------------------
# the whole bill
# ------------------------------------------------------------------------------------------
def estimate(
    *,
    problem: Problem,
    conditioning: Conditioning = _NOTHING_KNOWN,
    model: CostModel = DEFAULT_MODEL,
) -> ResourceEstimate:
    """Resource estimate of one quantum segment of T steps (ALGORITHM.md §7; module docs).

    Conditioning: κ (with ‖L‖ if known; else 1, its lower bound, which over-estimates ‖L⁻¹‖),
    or the §3 bound from ρ (default 1 + 1/T, assumed), ‖f0‖, ‖F2‖ and γ. Block-encoding: sparse
    access when the row sparsity and max entry of L are given (α = √(s_r s_c)·max|L_ij|), else
    the LCU of tensor terms with α1 = ρ (assumed: s·max|F1_ij| = ‖F1‖). The Hessian sparsity s
    (default n) sets the structure of L and the QROM table size n(1 + s + s²).
    """
    pb = problem
    fig: dict[str, Figure] = {}
    m = _dimensions(pb, fig)
    cond = _conditioning(pb, conditioning, fig)
    s = _sparsity(pb, fig)
    alpha, access = _block_encoding(pb, cond, s, fig)
    k_eff = _kappa_eff(cond, conditioning, alpha, access, fig)
    eps_q = pb.epsilon * model.qlsa_share
    queries = _queries(k_eff.value, eps_q, fig)
    p_succ, R = _p_succ(pb, conditioning, fig)
    tomo = _tomography(pb, model, fig)
    if model.solver not in queries:  # Jennings et al.'s bound needs ε_q ≤ 0.24
        raise UsageError(
            f"solver {model.solver!r} has no query bound at ε = {pb.epsilon:g} (its QLSA share "
            "must be ≤ 0.24); use a smaller ε or another solver"
        )
    calls, t_total = _t_count(pb, model, m, s, queries[model.solver], R, tomo.shots, fig)
    lq = _logical_qubits(pb, model, m, s, k_eff.value, eps_q, fig)
    sparse, dense = _classical(pb, fig)
    qs = (
        _phys.qsharp_estimate(lq, t_total, 0, model.qubit, model.error_budget)
        if model.use_qsharp
        else None
    )
    sc = _phys.surface_code_model(lq, t_total, 0, model.qubit, model.error_budget)
    return ResourceEstimate(
        problem=pb,
        conditioning=conditioning,
        model=model,
        kappa=cond.kappa,
        kappa_eff=k_eff,
        p_succ=p_succ,
        alpha=alpha,
        queries=queries,
        aa_rounds=R,
        tomography=tomo,
        block_encoding_calls=calls,
        t_count=t_total,
        logical_qubits=lq,
        classical_flops=sparse,
        classical_flops_dense=dense,
        physical=qs,
        surface_code=sc,
        wall_clock=wall_clock(t_total, sparse.value, qs, sc, lq, model),
        figures=fig,
    )


def wall_clock(
    t_count: float,
    flops: float,
    qs: _phys.PhysicalEstimate | None,
    sc: _phys.PhysicalEstimate,
    logical_qubits: int,
    model: CostModel,
) -> WallClock:
    """Quantum seconds = T-count (logical depth) × logical cycle time (qsharp if it answered, else
    the surface-code model, extended beyond d = 50 if needed) or T-count / ``logical_rate``;
    classical seconds = FLOPs / ``flop_rate`` (both from ``model``)."""
    qubits = None
    if model.logical_rate is not None:
        q_s = t_count / model.logical_rate
        src = f"stated logical rate {model.logical_rate:.3g} op/s"
    else:
        phys = qs if qs is not None else sc
        if not phys.feasible:
            phys = _phys.surface_code_model(
                logical_qubits, t_count, 0, model.qubit, model.error_budget, max_distance=199
            )
        if phys.feasible:
            assert phys.runtime_s is not None  # a feasible estimate has its runtime
            q_s, src = phys.runtime_s, f"{phys.producer} (d = {phys.code_distance})"
            qubits = phys.physical_qubits
        else:
            q_s, src = math.inf, "no surface-code distance ≤ 199 suffices"
    return WallClock(
        quantum_s=q_s,
        quantum_source=src,
        classical_s=flops / model.flop_rate,
        flop_rate=model.flop_rate,
        physical_qubits=qubits,
    )


_KAPPA_KIND: dict[str, Kind] = {"exact": "exact", "estimate": "measured", "bound": "bound"}


def estimate_history(
    hist,
    *,
    epsilon: float = 1e-2,
    kappa_method: str = "bound",
    model: CostModel = DEFAULT_MODEL,
) -> ResourceEstimate:
    """:func:`estimate` with the inputs read off an emulated :class:`~qcarleman.HistorySystem`:
    d, T, p, N, symmetric, row sparsity and max entry of L (sparse access), κ by
    ``kappa_method`` (its kind: exact / measured for "estimate" / bound) and P_succ (exact,
    from the solved history)."""
    lifted = hist.lifted
    problem = Problem(
        n=lifted.d,
        T=hist.T,
        N=getattr(lifted, "order", 1),
        p=hist.idle,
        epsilon=epsilon,
        symmetric=getattr(lifted, "symmetric", False),
        row_sparsity=hist.row_sparsity(),
        max_entry=hist.max_entry(),
    )
    cond = Conditioning(
        kappa=Quantity(
            float(hist.kappa(kappa_method)),
            _KAPPA_KIND.get(kappa_method, "measured"),
            source=f"HistorySystem.kappa({kappa_method!r}) (ALGORITHM.md §3)",
        ),
        p_succ=Quantity(
            float(hist.success_probability), "exact", source="the solved history system (§3)"
        ),
    )
    return estimate(problem=problem, conditioning=cond, model=model)
