r"""Measured scaling of the quantum segment with the horizon T on a real network (ALGORITHM.md §3,
§4, §6.1; issue 17, part 1).

The paper (Liu et al., Nat. Commun. 15, 434 (2024), Theorem 1 and Methods) claims a QLSA cost
O(T·polylog n) for fully dissipative and O(T²·polylog n) for almost dissipative models. The
constants hide κ(L) and P_succ of the *actual* history system. For T = T_1 … T_max this module
measures them on the map actually trained (:class:`~qcarleman.autodiff.gdmap.GDMap`, momentum
and per-step SGD batches included), never forming L:

* order 1 (:class:`~qcarleman.autodiff.history_operator.HistoryOperator`, HVPs only):
  κ measured (Lanczos on LᵀL and L⁻¹L⁻ᵀ), the §3 bound from the Lanczos spectral intervals, the
  exact P_succ = (p+1)‖z(T)‖²/‖Y‖² from forward substitution;
* the output of the *actual* QSVT inversion polynomial (:func:`qcarleman.quantum.qsvt.
  inverse_polynomial`, degree from κ(L/α) and ε) applied matrix-free to ĉ = c/‖c‖ through the
  singular-value Chebyshev recurrence with L and Lᵀ products (:func:`qcarleman.quantum.qsvt.
  qsvt_apply_operator`), α = σ_max(1 + margin); its fidelity with the exact history state
  L⁻¹c (forward substitution: L is block lower-bidiagonal, so this is exact), over the whole
  history and after post-selection on the output blocks t = T..T+p, and the success probability
  of the un-amplified polynomial output ‖y_post‖² (which carries the polynomial's 1/K scale);
* order 2 (low-rank level 2, :func:`qcarleman.autodiff.lowrank.emulate_order2`): P_succ of the
  truncated order-2 history state from ‖ŷ1(t)‖ and ‖ŷ2(t)‖_F at the Carleman scale
  γ = √(‖G0‖/‖G2‖) (ALGORITHM.md §2), and the §3 κ formula with ‖G0‖, ‖G1‖₂ (Lanczos intervals)
  and the power-method ‖G2‖ — labelled *estimated*, since the power method gives a lower estimate
  of ‖G2‖ and the formula is then not a guaranteed bound.

Growth exponents: least squares of log y on log T (y ~ T^a) for κ, 1/P_succ, the QSVT degree and
the query count degree/√P_succ of one amplified output sample (amplitude amplification,
ALGORITHM.md §7), set beside the paper's claim for the measured regime (exponent 1 fully
dissipative, 2 almost dissipative, none otherwise: κ grows exponentially).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autodiff.gdmap import GDMap
from ..autodiff.history_operator import HistoryOperator
from ..autodiff.lowrank import emulate_order2
from ..carleman.history import success_probability
from ..carleman.kappa import NonlinearNorms, kappa_bound
from ..dissipation import TrainedMap, regime
from ..errors import UsageError
from ..quantity import Quantity
from ..quantum.exact import state_fidelity
from ..quantum.qsvt import inverse_polynomial, qsvt_apply_operator

__all__ = [
    "QSVTOutput",
    "ScalingStudy",
    "qsvt_history",
    "fit_exponent",
    "scaling_study",
    "scaling_checkpoint",
    "scaling_markdown",
]

# The paper's claimed growth of the QLSA cost in T per regime (Theorem 1 / Methods).
PAPER_EXPONENT = {"fully dissipative": 1.0, "almost dissipative": 2.0, "non-dissipative": None}


@dataclass(frozen=True)
class QSVTOutput:
    """The matrix-free QSVT inversion of one history system (module docstring)."""

    degree: int
    alpha: float
    kappa_poly: float  # κ of L/α the polynomial was built for
    fidelity: float  # post-selected output blocks t = T..T+p against L⁻¹c
    fidelity_history: float  # the whole history state
    p_succ: float  # ‖y_post‖², success probability of the un-amplified polynomial output
    products: int  # L or Lᵀ products (each one HVP per time block)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def qsvt_history(
    op: HistoryOperator,
    c: np.ndarray,
    *,
    epsilon: float,
    sigma_max: float,
    sigma_min: float,
    margin: float = 1e-3,
    exact: np.ndarray | None = None,
) -> QSVTOutput:
    r"""Apply the QSVT inverse polynomial P ≈ 1/(Kx) on [1/κ_A, 1] to ĉ = c/‖c‖ through L and Lᵀ
    products (:func:`qcarleman.quantum.qsvt.qsvt_apply_operator`), α = σ_max(1 + margin),
    κ_A = α/(σ_min(1 − margin)) (the margin covers the Lanczos estimates of the extremes, which
    lie inside the true singular range). Fidelity against ``exact`` (default: L⁻¹c by forward
    substitution)."""
    if not (sigma_max > 0 and 0 < sigma_min <= sigma_max):
        raise UsageError("need 0 < σ_min ≤ σ_max of L for the QSVT polynomial")
    t0 = time.perf_counter()
    alpha = sigma_max * (1 + margin)
    kappa_a = alpha / (sigma_min * (1 - margin))
    poly = inverse_polynomial(kappa_a, epsilon)
    c = np.asarray(c, dtype=float)
    chat = c / np.linalg.norm(c)
    y = qsvt_apply_operator(op.matvec, op.rmatvec, chat, poly, alpha)
    x = op.solve(c) if exact is None else exact
    sel = slice(op.T * op.d, op.dim)
    return QSVTOutput(
        degree=poly.degree,
        alpha=float(alpha),
        kappa_poly=float(kappa_a),
        fidelity=state_fidelity(x[sel], y[sel]),
        fidelity_history=state_fidelity(x, y),
        p_succ=float(y[sel] @ y[sel]),
        products=poly.degree,
        seconds=time.perf_counter() - t0,
    )


def fit_exponent(Ts, values) -> float | None:
    """Slope a of the least-squares line log y = a log T + b over the points with finite y > 0
    (None with fewer than two distinct T)."""
    T = np.asarray(Ts, dtype=float)
    y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    ok = np.isfinite(y) & (y > 0) & (T > 0)
    if np.unique(T[ok]).size < 2:
        return None
    return float(np.polyfit(np.log(T[ok]), np.log(y[ok]), 1)[0])


@dataclass
class ScalingStudy:
    """Per-T measurements and fitted exponents (module docstring). Lists run over ``T``."""

    T: list[int]
    kappa: list[Quantity]
    kappa_bound: list[Quantity]
    p_succ: list[Quantity]
    qsvt: list[QSVTOutput | None]
    order2_kappa: list[Quantity]
    order2_p_succ: list[Quantity]
    rho: float
    norm_linear: float
    regime: str
    exponents: dict[str, float | str | None]
    settings: dict[str, Any]
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The output contract: ``T``, ``kappa`` ({value, kind} per T), ``p_succ``,
        ``qsvt_fidelity`` (None where skipped), ``exponents``, and the rest."""
        q = self.qsvt
        return {
            "T": self.T,
            "kappa": [k.to_json() for k in self.kappa],
            "kappa_bound": [k.to_json() for k in self.kappa_bound],
            "p_succ": [float(p.value) for p in self.p_succ],
            "qsvt_fidelity": [None if o is None else o.fidelity for o in q],
            "qsvt_fidelity_history": [None if o is None else o.fidelity_history for o in q],
            "qsvt_degree": [None if o is None else o.degree for o in q],
            "qsvt_p_succ": [None if o is None else o.p_succ for o in q],
            "qsvt_seconds": [None if o is None else o.seconds for o in q],
            "order2_kappa": [k.to_json() for k in self.order2_kappa],
            "order2_p_succ": [float(p.value) for p in self.order2_p_succ],
            "rho": self.rho,
            "norm_linear": self.norm_linear,
            "regime": self.regime,
            "exponents": self.exponents,
            "settings": self.settings,
            "seconds": self.seconds,
            "notes": self.notes,
        }


def _order2(
    gmap: GDMap, z0: np.ndarray, Ts: list[int], idle: int, intervals, f2_iters: int
) -> tuple[list[Quantity], list[Quantity], float, str]:
    """Order-2 P_succ (low-rank levels, scale γ) and κ estimates for every T (module doc)."""
    Tmax = max(Ts)
    res = emulate_order2(gmap, z0, Tmax)
    g0 = float(np.linalg.norm(gmap.tg0(0).cpu().numpy()))
    _, f2 = gmap.operators(0).nonlinear_norms(gmap.lr, f2_iters)
    # G2 = (F2, −F2/η) with momentum (GDMap: ½K on the velocity block), F2 = −(η/2)K
    g2 = f2 * math.sqrt(1.0 + 1.0 / gmap.lr**2) if gmap.momentum else f2
    gamma = math.sqrt(g0 / g2) if g0 > 0 and g2 > 0 else 1.0
    y1 = [float(np.linalg.norm(v)) ** 2 / gamma**2 for v in res.trajectory.cpu().numpy()]
    y2 = [v**2 / gamma**4 for v in res.level2_norms]
    tmap = TrainedMap(gmap.lr, gmap.momentum, gmap.weight_decay)
    kappas, probs = [], []
    for T in Ts:
        blocks = [a + b for a, b in zip(y1[: T + 1], y2[: T + 1])]
        src = f"order-2 low-rank levels, γ = {gamma:.4g} (ALGORITHM.md §2, §3)"
        probs.append(Quantity(success_probability(blocks, y1[T], idle), "exact", source=src))
        k = kappa_bound(
            tmap,
            intervals[:T] if len(intervals) > 1 else intervals,
            T,
            idle,
            includes_weight_decay=True,
            order=2,
            nonlinear=NonlinearNorms(g0_norm=g0, g2_norm=g2, gamma=gamma),
        )
        kappas.append(
            Quantity(
                k.value,
                "estimated",
                source=k.source + "; ‖G2‖ from the power method (a lower estimate), so this "
                "is the §3 formula, not a guaranteed bound",
            )
        )
    return kappas, probs, gamma, f"γ = {gamma:.4g}, ‖G0‖ = {g0:.4g}, ‖G2‖ ≈ {g2:.4g}"


def scaling_study(  # noqa: PLR0913 — landed with the rule (docs/DEVELOPING.md, Lint)
    gmap: GDMap,
    Ts,
    *,
    z0: np.ndarray | None = None,
    idle: int = 0,
    epsilon: float = 0.1,
    qsvt_max_degree: int = 1500,
    order2: bool = True,
    tol: float = 1e-8,
    f2_iters: int = 10,
    progress: bool = False,
) -> ScalingStudy:
    """κ, P_succ and the QSVT output of the order-1 history system (and order-2 estimates) for
    every T in ``Ts`` (module docstring). The QSVT polynomial is applied only where its degree is
    ≤ ``qsvt_max_degree`` (each degree costs one L or Lᵀ product, i.e. T HVPs); larger ones are
    skipped and say so in ``notes``."""
    Ts = sorted({int(t) for t in Ts})
    if not Ts or Ts[0] < 1:
        raise UsageError("horizons T must be integers ≥ 1; e.g. --t-max 8")
    if not 0 < epsilon < 1:
        raise UsageError(f"epsilon = {epsilon} is invalid; use 0 < ε < 1")
    gmap.check_horizon(Ts[-1])
    z0 = gmap.initial_state() if z0 is None else np.asarray(z0, dtype=float)
    secs: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    intervals = HistoryOperator(gmap, Ts[-1], idle).intervals(tol=tol)
    tmap = TrainedMap(gmap.lr, gmap.momentum, gmap.weight_decay)
    ends = np.array(intervals, dtype=float)
    lam = np.array([ends[:, 0].min(), ends[:, 1].max()])
    rho = float(tmap.factor(lam).max())
    norm_lin = float(tmap.norm(lam).max())
    secs["intervals"] = time.perf_counter() - t0
    kap, kb, ps = [], [], []
    qs: list[QSVTOutput | None] = []
    for T in Ts:
        if progress:
            print(f"scaling: T = {T} of {Ts[-1]}: κ by Lanczos …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        op = HistoryOperator(gmap, T, idle)
        smax, smin, rel, info = op.singular_extremes(tol=tol)
        val = smax / smin
        kap.append(
            Quantity(val, "measured", uncertainty=val * rel, source=f"{info} (ALGORITHM.md §3)")
        )
        kb.append(
            kappa_bound(
                tmap,
                intervals[:T] if len(intervals) > 1 else intervals,
                T,
                idle,
                includes_weight_decay=True,
            )
        )
        c = op.rhs(z0)
        x = op.solve(c)
        Y = x.reshape(op.blocks, op.d)
        ps.append(
            Quantity(
                (idle + 1) * float(Y[T] @ Y[T]) / float(np.sum(Y * Y)),
                "exact",
                source="forward solve of the order-1 history system (§3)",
            )
        )
        secs[f"kappa_T{T}"] = time.perf_counter() - t0
        poly_deg = _degree_guess(val * (1 + 1e-3) ** 2, epsilon)
        if poly_deg > qsvt_max_degree:
            qs.append(None)
            notes.append(
                f"T = {T}: QSVT skipped, degree ≈ {poly_deg} > --qsvt-max-degree "
                f"{qsvt_max_degree} (≈ {poly_deg * T} HVPs)"
            )
            continue
        qs.append(qsvt_history(op, c, epsilon=epsilon, sigma_max=smax, sigma_min=smin, exact=x))
    o2k: list[Quantity] = []
    o2p: list[Quantity] = []
    gamma = None
    if order2:
        t0 = time.perf_counter()
        o2k, o2p, gamma, info2 = _order2(gmap, z0, Ts, idle, intervals, f2_iters)
        notes.append(f"order 2: {info2}")
        secs["order2"] = time.perf_counter() - t0
    reg = regime(rho, Ts[-1])
    qsvt_T = [T for T, q in zip(Ts, qs) if q is not None]
    qsvt_ok = [q for q in qs if q is not None]
    p_of = {T: float(p.value) for T, p in zip(Ts, ps)}
    exps = {
        "kappa": fit_exponent(Ts, [k.value for k in kap]),
        "kappa_bound": fit_exponent(Ts, [k.value for k in kb]),
        "inverse_p_succ": fit_exponent(Ts, [1.0 / p.value if p.value > 0 else None for p in ps]),
        "qsvt_degree": fit_exponent(qsvt_T, [q.degree for q in qsvt_ok]),
        "queries": fit_exponent(
            qsvt_T, [q.degree / math.sqrt(p_of[T]) for T, q in zip(qsvt_T, qsvt_ok)]
        ),
        "order2_kappa": fit_exponent(Ts, [k.value for k in o2k]) if o2k else None,
        "order2_inverse_p_succ": fit_exponent(
            Ts, [1.0 / p.value if p.value > 0 else None for p in o2p]
        )
        if o2p
        else None,
        "paper_claim": PAPER_EXPONENT[reg],
        "paper_regime": reg,
    }
    if reg == "non-dissipative":
        notes.append(
            f"ρ = {rho:.6g} > 1 + 1/T: the paper's O(T)/O(T²) claims do not apply (κ may grow "
            "exponentially in T)"
        )
    return ScalingStudy(
        T=Ts,
        kappa=kap,
        kappa_bound=kb,
        p_succ=ps,
        qsvt=qs,
        order2_kappa=o2k,
        order2_p_succ=o2p,
        rho=rho,
        norm_linear=norm_lin,
        regime=reg,
        exponents=exps,
        settings={
            "n": gmap.n,
            "d": gmap.dim,
            "lr": gmap.lr,
            "momentum": gmap.momentum,
            "weight_decay": gmap.weight_decay,
            "sgd": gmap.per_step,
            "idle": idle,
            "epsilon": epsilon,
            "qsvt_max_degree": qsvt_max_degree,
            "order2_gamma": gamma,
            "lambda_min": float(lam[0]),
            "lambda_max": float(lam[1]),
        },
        seconds=secs,
        notes=notes,
    )


def _degree_guess(kappa: float, epsilon: float) -> int:
    """Cheap a-priori degree of :func:`~qcarleman.quantum.qsvt.inverse_polynomial` used only to
    skip QSVT runs that would be too long: 4.8κ·ln(2/ε)/ln 20 fits the measured degrees
    (49, 239, 479, 2063 at ε = 0.1 and 91, 457, 913, 3929 at ε = 0.01 for κ = 10, 50, 100, 430)
    within 10%."""
    return int(math.ceil(4.8 * kappa * math.log(2.0 / epsilon) / math.log(20.0)))


def scaling_checkpoint(  # noqa: PLR0913 — landed with the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    step: int | None,
    t_max: int,
    *,
    t_min: int = 1,
    idle: int = 0,
    epsilon: float = 0.1,
    qsvt_max_degree: int = 1500,
    order2: bool = True,
    batch_size: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`scaling_study` for T = t_min..t_max on checkpoint ``step`` of a training run (the
    map of :func:`qcarleman.analysis.emulate.checkpoint_map`: the run's η, μ, λ — or the given
    ones, e.g. a setting of :mod:`qcarleman.analysis.advise` — mask, momentum buffer and
    batches). Returns the JSON form plus run, checkpoint and timings."""
    from .emulate import checkpoint_map

    if int(t_max) != t_max or t_max < max(1, t_min):
        raise UsageError(f"--t-max {t_max} is invalid; use an integer ≥ {max(1, t_min)}")
    t0 = time.perf_counter()
    gd, z0, ck = checkpoint_map(
        run_dir,
        step,
        int(t_max),
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    study = scaling_study(
        gd,
        range(int(t_min), int(t_max) + 1),
        z0=z0,
        idle=idle,
        epsilon=epsilon,
        qsvt_max_degree=qsvt_max_degree,
        order2=order2,
        progress=progress,
    )
    out = study.to_json()
    out.update(run_dir=str(run_dir), checkpoint=ck.step, seconds_total=time.perf_counter() - t0)
    return out


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "—" if v is None else format(v, spec)


def scaling_markdown(r: dict[str, Any]) -> str:
    """A markdown table of a :func:`scaling_checkpoint` result and its exponents."""
    s = r["settings"]
    lines = [
        f"Scaling study of {r.get('run_dir', '?')} step {r.get('checkpoint', '?')}: n = {s['n']}, "
        f"η = {s['lr']:g}, μ = {s['momentum']:g}, λ = {s['weight_decay']:g}, p = {s['idle']}, "
        f"ε = {s['epsilon']:g}; ρ = {r['rho']:.6g}, ‖A_lin‖₂ = {r['norm_linear']:.6g} "
        f"({r['regime']}).",
        "",
        "| T | κ measured | κ bound | P_succ | QSVT degree | QSVT fidelity | QSVT P_succ | "
        "κ order 2 (est.) | P_succ order 2 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    o2k = r["order2_kappa"] or [None] * len(r["T"])
    o2p = r["order2_p_succ"] or [None] * len(r["T"])
    for i, T in enumerate(r["T"]):
        fid = r["qsvt_fidelity"][i]
        lines.append(
            f"| {T} | {r['kappa'][i]['value']:.4g} | {r['kappa_bound'][i]['value']:.4g} | "
            f"{r['p_succ'][i]:.4g} | {_fmt(r['qsvt_degree'][i], 'd')} | "
            f"{_fmt(fid, '.6f')} | {_fmt(r['qsvt_p_succ'][i], '.3g')} | "
            f"{_fmt(None if o2k[i] is None else o2k[i]['value'], '.4g')} | "
            f"{_fmt(o2p[i], '.4g')} |"
        )
    e = r["exponents"]
    lines += [
        "",
        "Fitted growth exponents a (y ~ T^a, log-log least squares): "
        + ", ".join(
            f"{k} {_fmt(v)}" for k, v in e.items() if k not in ("paper_claim", "paper_regime")
        )
        + f". Paper's claim for the measured regime ({e['paper_regime']}): "
        + ("none (not dissipative)" if e["paper_claim"] is None else f"O(T^{e['paper_claim']:g})")
        + ".",
    ]
    lines += [f"- {n}" for n in r["notes"]]
    return "\n".join(lines)
