r"""Dissipation diagnostics of gradient descent from the Hessian spectrum (ALGORITHM.md §6).

With a_ν = ηλ_ν for the eigenvalues λ_ν of H (active coordinates), the linearized GD map
F1 = I − ηH has eigenvalues 1 − a_ν. A spectrum is passed either as exact eigenvalues (each with
weight 1/n) or as a weighted measure — e.g. SLQ nodes θ_i and weights w_i
(:class:`qcarleman.spectral.SLQResult`); weights are normalized to sum to 1.

* :func:`error_curve`  E(t) = (1/n) Σ_ν |1 − a_ν|^t, or Σ_i w_i |1 − ηθ_i|^t from SLQ.
* :func:`dissipative_split`  D(t), G(t), r(t) = D/G.
* :func:`window`  the enhancement window t*.
* :func:`rho`, :func:`regime`  ρ = ‖F1‖ = max_ν |1 − a_ν| and the regime for a horizon T.
* :func:`f0_norm`, :func:`f2_norm`, :func:`rd_star`  the nonlinear ratio R_d*.

Source for every formula: ALGORITHM.md §6, after Liu et al., Nat. Commun. 15, 434 (2024),
Methods ("dissipative" condition and the Hessian-spectrum error bound) and Liu et al., PNAS 118
(2021) (R < 1 condition, eq. 2.3 there).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import UsageError

__all__ = [
    "error_curve",
    "dissipative_split",
    "window",
    "window_closed",
    "rho",
    "regime",
    "f0_norm",
    "f2_norm",
    "rd",
    "rd_star",
    "REGIMES",
]

Array = np.ndarray

REGIMES = ("fully dissipative", "almost dissipative", "non-dissipative")

# E(t) ≤ 1 is tested with this relative slack (E(0) = 1 up to rounding of the weights).
_EPS = 1e-12


def _measure(values: Array, weights: Array | None) -> tuple[Array, Array]:
    """Flattened eigenvalues/nodes and their weights, normalized to sum to 1."""
    lam = np.asarray(values, dtype=float).reshape(-1)
    if lam.size == 0:
        raise UsageError(
            "the spectrum is empty (no active coordinates, e.g. everything pruned); "
            "unprune some parameters or include the pruned ones"
        )
    if not np.all(np.isfinite(lam)):
        raise UsageError("the spectrum has NaN or inf entries; check the model and the loss")
    if weights is None:
        return lam, np.full(lam.size, 1.0 / lam.size)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.shape != lam.shape:
        raise UsageError(f"{w.size} weights for {lam.size} nodes; give one weight per node")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or not w.sum() > 0:
        raise UsageError("quadrature weights must be finite, ≥ 0 and not all 0")
    return lam, w / w.sum()


def _check_lr_T(lr: float, T: int) -> None:
    if not (np.isfinite(lr) and lr > 0):
        raise UsageError(f"learning rate η = {lr} is invalid; use a finite η > 0")
    if int(T) != T or T < 0:
        raise UsageError(f"T = {T} is invalid; use an integer T ≥ 0")


def error_curve(values: Array, lr: float, T: int, weights: Array | None = None) -> Array:
    r"""E(t) for t = 0..T (ALGORITHM.md §6).

    Exact eigenvalues λ_ν: E(t) = (1/n) Σ_ν |1 − ηλ_ν|^t. Nodes θ_i with weights w_i (e.g. SLQ,
    all probes concatenated): E(t) = Σ_i w_i |1 − ηθ_i|^t with Σ w_i = 1 (the probe average).
    """
    _check_lr_T(lr, T)
    lam, w = _measure(values, weights)
    f = np.abs(1.0 - lr * lam)
    return np.array([float(np.sum(w * f**t)) for t in range(int(T) + 1)])


def dissipative_split(
    values: Array, lr: float, T: int, weights: Array | None = None
) -> tuple[Array, Array, Array]:
    r"""D(t), G(t) and r(t) = D(t)/G(t) for t = 0..T (ALGORITHM.md §6).

    D(t) = Σ_{ν: |1−a_ν| < 1} w_ν |1 − a_ν|^t is the dissipative modes' share of E(t) and
    G(t) = Σ_{ν: |1−a_ν| ≥ 1} w_ν |1 − a_ν|^t the divergent (non-contracting) rest, so
    E = D + G (w_ν = 1/n for exact eigenvalues). r(t) = inf where G(t) = 0 and D(t) > 0.
    Modes with a_ν = 0 (λ = 0, e.g. pruned coordinates) do not contract and count in G.
    """
    _check_lr_T(lr, T)
    lam, w = _measure(values, weights)
    f = np.abs(1.0 - lr * lam)
    diss = f < 1.0
    D = np.array([float(np.sum(w[diss] * f[diss] ** t)) for t in range(int(T) + 1)])
    G = np.array([float(np.sum(w[~diss] * f[~diss] ** t)) for t in range(int(T) + 1)])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(G > 0, D / np.where(G > 0, G, 1.0), np.where(D > 0, np.inf, np.nan))
    return D, G, r


def window(E: Array) -> int:
    r"""The enhancement window t* (ALGORITHM.md §6): the last t with E(t) ≤ 1 before E first
    exceeds 1, 0 if E(1) > 1. If E never exceeds 1 on the given range, t* = len(E) − 1 (the
    window is open up to the end of the curve; see :func:`window_closed`)."""
    E = np.asarray(E, dtype=float).reshape(-1)
    if E.size == 0:
        raise UsageError("E(t) is empty; compute the error curve for T ≥ 0 first")
    above = np.flatnonzero(E > 1.0 + _EPS)
    return int(above[0] - 1) if above.size else int(E.size - 1)


def window_closed(E: Array) -> bool:
    """True when E(t) exceeds 1 somewhere on the curve (so :func:`window` is not truncated)."""
    return bool(np.any(np.asarray(E, dtype=float) > 1.0 + _EPS))


def rho(values: Array, lr: float) -> float:
    r"""ρ = ‖F1‖ = max_ν |1 − ηλ_ν| (ALGORITHM.md §6). |1 − ηλ| is convex in λ, so the extreme
    eigenvalues (λ_min, λ_max) suffice: pass all eigenvalues, SLQ nodes or just the two ends."""
    _check_lr_T(lr, 0)
    lam, _ = _measure(values, None)
    return float(max(abs(1.0 - lr * lam.min()), abs(1.0 - lr * lam.max())))


def regime(rho_value: float, T: int) -> str:
    r"""The dissipation regime for horizon T (ALGORITHM.md §6): "fully dissipative" if ρ < 1
    (QLSA cost O(T·polylog)), "almost dissipative" if ρ ≤ 1 + 1/T (O(T²·polylog)), else
    "non-dissipative"."""
    if int(T) != T or T < 1:
        raise UsageError(f"horizon T = {T} is invalid; use an integer T ≥ 1")
    if not np.isfinite(rho_value) or rho_value < 0:
        raise UsageError(f"ρ = {rho_value} is invalid; use a finite ρ ≥ 0")
    if rho_value < 1.0:
        return REGIMES[0]
    if rho_value <= 1.0 + 1.0 / T:
        return REGIMES[1]
    return REGIMES[2]


def f0_norm(grad: Array, lr: float) -> float:
    r"""‖f0‖ = η‖g‖ with f0 = −ηg, g = ∇L(θ̄) + λθ̄ on the active set (ALGORITHM.md §1, §6)."""
    _check_lr_T(lr, 0)
    return float(lr * np.linalg.norm(np.asarray(grad, dtype=float).reshape(-1)))


def f2_norm(
    F2_apply: Callable[[Array, Array], Array],
    n: int,
    iters: int = 50,
    seed: int | None = 0,
    *,
    restarts: int = 3,
    tol: float = 1e-8,
) -> float:
    r"""‖F2‖ = sup_{‖u‖=1} ‖F2(u, u)‖ by a symmetric higher-order power method (ALGORITHM.md §6).

    For GD, F2(u, v) = −(η/2) K[·, u, v] with K the symmetric third-derivative tensor, so by
    Banach's theorem sup_{‖u‖=1} ‖F2(u,u)‖ = sup_{‖u‖=1} |⟨u, F2(u,u)⟩| (spectral norm of a
    symmetric tensor). The iteration is S-HOPM (De Lathauwer, De Moor & Vandewalle, SIAM J.
    Matrix Anal. Appl. 21, 1324 (2000); Kolda & Mayo, ibid. 32, 1095 (2011)):
    u ← F2(u,u)/‖F2(u,u)‖, with ``restarts`` random starts. Every visited unit u is feasible, so
    the returned max ‖F2(u,u)‖ is a lower bound on ‖F2‖, tight at convergence (tested against
    tensors with known norm). Costs ``restarts × iters`` third-order products at most.
    """
    if int(n) != n or n < 1:
        raise UsageError(f"n = {n} is invalid; F2 needs a dimension n ≥ 1")
    if int(iters) != iters or iters < 1 or int(restarts) != restarts or restarts < 1:
        raise UsageError("iters and restarts must be integers ≥ 1")
    rng = np.random.default_rng(seed)
    best = 0.0
    for _ in range(int(restarts)):
        u = rng.standard_normal(int(n))
        u /= np.linalg.norm(u)
        prev = -1.0
        for _ in range(int(iters)):
            w = np.asarray(F2_apply(u, u), dtype=float).reshape(-1)
            if w.shape != (n,) or not np.all(np.isfinite(w)):
                raise UsageError(f"F2(u, u) must return a finite vector of length {n}")
            val = float(np.linalg.norm(w))
            best = max(best, val)
            if val == 0.0 or abs(val - prev) <= tol * val:
                break
            prev = val
            u = w / val
    return best


def rd(r: float, f0: float, F2: float, rho_value: float) -> float:
    r"""R_d(r) = (‖F2‖ r + ‖f0‖/r)/(1 − ρ): the ball of radius r is invariant when R_d(r) ≤ 1
    (ALGORITHM.md §6). inf when ρ ≥ 1 (no contraction)."""
    if not r > 0:
        raise UsageError(f"radius r = {r} is invalid; use r > 0")
    if rho_value >= 1.0:
        return math.inf
    return float((F2 * r + f0 / r) / (1.0 - rho_value))


def rd_star(f0: float, F2: float, rho_value: float) -> float:
    r"""R_d* = 2√(‖f0‖‖F2‖)/(1 − ρ), the minimum of R_d(r) at r* = √(‖f0‖/‖F2‖)
    (ALGORITHM.md §6). Defined only for ρ < 1; returns inf when ρ ≥ 1."""
    if min(f0, F2) < 0 or not np.isfinite(f0 + F2 + rho_value):
        raise UsageError("‖f0‖, ‖F2‖ and ρ must be finite and ‖f0‖, ‖F2‖ ≥ 0")
    if rho_value >= 1.0:
        return math.inf
    return float(2.0 * math.sqrt(f0 * F2) / (1.0 - rho_value))
