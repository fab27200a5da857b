r"""Dissipation diagnostics from the Hessian spectrum (ALGORITHM.md §6, §6.1).

Two definitions are computed side by side:

* **paper** (§6): the plain-GD map F1 = I − ηH with per-mode factor |1 − ηλ_ν|;
* **trained** (§6.1): the map actually applied, a :class:`TrainedMap` (η, heavy-ball μ in
  PyTorch's convention, weight decay λ_wd). In the eigenbasis of H its linear part splits into
  blocks B_ν = B(λ_ν) = [[1 − ηλ_ν, −ημ], [λ_ν, μ]] acting on (x_ν, v_ν) (μ = 0: the 1×1 block
  1 − ηλ_ν, the paper's definition). Per-mode factor a_ν = max |z| over the roots of
  z² − (1 + μ − ηλ_ν) z + μ; error-bound curve E(t) = (1/n) Σ_ν ‖B_ν^t‖₂.

A spectrum is passed either as exact eigenvalues (weight 1/n each) or as a weighted measure —
e.g. SLQ nodes θ_i and weights w_i (:class:`qcarleman.spectral.SLQResult`); weights are
normalized to sum to 1. **Weight decay**: H of §1 (and :class:`~qcarleman.autodiff.operators.
LossOperators` with ``weight_decay``) already contains λ_wd I. Functions that take a
:class:`TrainedMap` with λ_wd > 0 therefore require ``includes_weight_decay``: True when the
eigenvalues are those of ∇²L + λ_wd I, False to shift them by λ_wd here.

* :class:`TrainedMap` — per-mode blocks, roots, factors a(λ), ‖B(λ)‖₂ and ‖B(λ)^t‖₂.
* :func:`error_curve`, :func:`dissipative_split`, :func:`window`, :func:`rho`,
  :func:`linear_norm`, :func:`regime` — E(t), D/G/r, t*, ρ, ‖A_lin‖₂, the regime (a float η
  means the paper's plain-GD map).
* :func:`diagnose` — all of them at once as a :class:`Diagnostics` value;
  :func:`probe_band` — the confidence band of an SLQ estimate of E(t) and t* from the spread
  over probes.
* :func:`f0_norm`, :func:`f2_norm`, :func:`rd_star` — the nonlinear ratio R_d* (paper map).

Source for every formula: ALGORITHM.md §6 and §6.1, after Liu et al., Nat. Commun. 15, 434
(2024), Methods ("dissipative" condition and the Hessian-spectrum error bound) and Liu et al.,
PNAS 118 (2021) (R < 1 condition, eq. 2.3 there); heavy-ball blocks: Polyak, USSR Comput. Math.
Math. Phys. 4, 1 (1964), in PyTorch's convention (ALGORITHM.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UsageError

__all__ = [
    "TrainedMap",
    "Diagnostics",
    "ProbeBand",
    "error_curve",
    "dissipative_split",
    "window",
    "window_closed",
    "rho",
    "linear_norm",
    "regime",
    "diagnose",
    "probe_band",
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


@dataclass(frozen=True)
class TrainedMap:
    r"""The update actually trained (ALGORITHM.md §1, §6.1): learning rate η, heavy-ball momentum
    μ ∈ [0, 1) in PyTorch's convention (v' = μv + ∇L, θ' = θ − ηv'; dampening 0, no Nesterov) and
    weight decay λ_wd ≥ 0 (as λ_wd/2·‖θ_S‖²). Per-step SGD batches: one spectrum per step, each
    analysed with the same TrainedMap.

    The methods take the curvature λ of the full H = ∇²L + λ_wd I (weight decay included; see
    :meth:`curvature`) and act per mode, vectorized over an array of λ.
    """

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"learning rate η = {self.lr} is invalid; use a finite η > 0")
        if not (np.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise UsageError(f"momentum μ = {self.momentum} is invalid; use 0 ≤ μ < 1")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UsageError(f"weight decay {self.weight_decay} is invalid; use a finite λ ≥ 0")

    @property
    def block_size(self) -> int:
        """2 with momentum (z = (x, v)), else 1 (z = x)."""
        return 2 if self.momentum else 1

    def paper(self) -> TrainedMap:
        """The paper's plain-GD map on the same H (§6): momentum dropped."""
        return TrainedMap(self.lr, 0.0, self.weight_decay)

    def curvature(self, values: Array, *, includes_weight_decay: bool | None) -> Array:
        """λ of H = ∇²L + λ_wd I from Hessian eigenvalues: unchanged when they include weight
        decay, shifted by λ_wd when not (§6.1). Required to be explicit when λ_wd > 0."""
        lam = np.asarray(values, dtype=float)
        if self.weight_decay == 0:
            return lam
        if includes_weight_decay is None:
            raise UsageError(
                f"weight decay λ = {self.weight_decay} is set: say whether the eigenvalues "
                "include it (includes_weight_decay=True for LossOperators(weight_decay=λ), "
                "False for eigenvalues of ∇²L alone)"
            )
        return lam if includes_weight_decay else lam + self.weight_decay

    def block(self, lam: Array) -> Array:
        """B(λ), shape (m, q, q) with q = :attr:`block_size`: [[1 − ηλ, −ημ], [λ, μ]] (§6.1)."""
        lam = np.asarray(lam, dtype=float).reshape(-1)
        eta, mu = self.lr, self.momentum
        if not mu:
            return (1.0 - eta * lam)[:, None, None]
        B = np.empty((lam.size, 2, 2))
        B[:, 0, 0], B[:, 0, 1] = 1.0 - eta * lam, -eta * mu
        B[:, 1, 0], B[:, 1, 1] = lam, mu
        return B

    def roots(self, lam: Array) -> Array:
        """Eigenvalues of B(λ), shape (m, q): the roots of z² − (1 + μ − ηλ)z + μ (μ = 0:
        1 − ηλ)."""
        lam = np.asarray(lam, dtype=float).reshape(-1)
        if not self.momentum:
            return (1.0 - self.lr * lam)[:, None].astype(complex)
        b = 1.0 + self.momentum - self.lr * lam
        s = np.sqrt((b * b - 4.0 * self.momentum).astype(complex))
        # the larger-modulus root without cancellation; the other from the product z1 z2 = μ
        z1 = np.where(b >= 0, b + s, b - s) / 2.0
        return np.stack([z1, self.momentum / z1], axis=1)

    def factor(self, lam: Array) -> Array:
        r"""a(λ) = max |z| over the roots (§6.1): (|b| + √(b² − 4μ))/2 for real roots, √μ for
        complex ones, b = 1 + μ − ηλ; |1 − ηλ| when μ = 0. a is a nondecreasing function of |b|,
        which is convex in λ, so a is quasi-convex: its maximum over an interval is at an end."""
        lam = np.asarray(lam, dtype=float).reshape(-1)
        mu = self.momentum
        b = np.abs(1.0 + mu - self.lr * lam)
        disc = b * b - 4.0 * mu
        return np.where(disc >= 0, (b + np.sqrt(np.maximum(disc, 0.0))) / 2.0, math.sqrt(mu))

    def norm(self, lam: Array) -> Array:
        r"""‖B(λ)‖₂ (§6.1). A norm of an affine function of λ is convex in λ, so its maximum over
        an interval is at an end."""
        return _norm2(self.block(lam))

    def power_norms(self, lam: Array, T: int) -> Array:
        r"""‖B(λ)^t‖₂ for t = 0..T, shape (T+1, m) (|1 − ηλ|^t when μ = 0)."""
        _check_T(T)
        lam = np.asarray(lam, dtype=float).reshape(-1)
        if not self.momentum:
            f = np.abs(1.0 - self.lr * lam)
            return f[None, :] ** np.arange(int(T) + 1)[:, None]
        B = self.block(lam)
        P = np.broadcast_to(np.eye(2), B.shape).copy()
        out = np.empty((int(T) + 1, lam.size))
        out[0] = 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(1, int(T) + 1):
                P = B @ P
                out[t] = _norm2(P)
        return out


def _norm2(M: Array) -> Array:
    """Spectral norms of a stack of 1×1 or 2×2 matrices, shape (m,), in closed form:
    σ_max² = (F + √(F² − 4 det²))/2 with F = ‖M‖_F², scaled against overflow."""
    if M.shape[1:] == (1, 1):
        return np.abs(M[:, 0, 0])
    s = np.max(np.abs(M), axis=(1, 2))
    safe = np.where((s > 0) & np.isfinite(s), s, 1.0)
    N = M / safe[:, None, None]
    F = np.sum(N * N, axis=(1, 2))
    det = N[:, 0, 0] * N[:, 1, 1] - N[:, 0, 1] * N[:, 1, 0]
    sig = np.sqrt((F + np.sqrt(np.maximum(F * F - 4.0 * det * det, 0.0))) / 2.0)
    return np.where(np.isfinite(s), sig * safe, np.inf)


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


def _check_T(T: int) -> None:
    if int(T) != T or T < 0:
        raise UsageError(f"T = {T} is invalid; use an integer T ≥ 0")


def _as_map(lr: float | TrainedMap) -> TrainedMap:
    """A float η is the paper's plain-GD map (no momentum, eigenvalues taken as given)."""
    return lr if isinstance(lr, TrainedMap) else TrainedMap(float(lr))


def _modes(
    values: Array, lr: float | TrainedMap, weights: Array | None, includes: bool | None
) -> tuple[TrainedMap, Array, Array]:
    m = _as_map(lr)
    lam, w = _measure(values, weights)
    return m, m.curvature(lam, includes_weight_decay=includes), w


def error_curve(
    values: Array,
    lr: float | TrainedMap,
    T: int,
    weights: Array | None = None,
    *,
    includes_weight_decay: bool | None = None,
) -> Array:
    r"""E(t) for t = 0..T (ALGORITHM.md §6, §6.1).

    Paper (``lr`` a float η): E(t) = (1/n) Σ_ν |1 − ηλ_ν|^t. Trained map (``lr`` a
    :class:`TrainedMap`): E(t) = (1/n) Σ_ν ‖B_ν^t‖₂. Nodes θ_i with weights w_i (e.g. SLQ, all
    probes concatenated): Σ_i w_i ‖B(θ_i)^t‖₂ with Σ w_i = 1 (the probe average).
    """
    _check_T(T)
    m, lam, w = _modes(values, lr, weights, includes_weight_decay)
    with np.errstate(invalid="ignore"):
        return m.power_norms(lam, T) @ w


def dissipative_split(
    values: Array,
    lr: float | TrainedMap,
    T: int,
    weights: Array | None = None,
    *,
    includes_weight_decay: bool | None = None,
) -> tuple[Array, Array, Array]:
    r"""D(t), G(t) and r(t) = D(t)/G(t) for t = 0..T (ALGORITHM.md §6, §6.1).

    D(t) = Σ_{ν: a_ν < 1} w_ν ‖B_ν^t‖₂ is the dissipative modes' share of E(t) and
    G(t) = Σ_{ν: a_ν ≥ 1} w_ν ‖B_ν^t‖₂ the divergent (non-contracting) rest, so E = D + G
    (w_ν = 1/n for exact eigenvalues; a_ν the per-mode factor, |1 − ηλ_ν| for the paper's map).
    r(t) = inf where G(t) = 0 and D(t) > 0. Modes with a_ν = 1 (λ = 0 in plain GD, e.g. pruned
    coordinates) do not contract and count in G.
    """
    _check_T(T)
    m, lam, w = _modes(values, lr, weights, includes_weight_decay)
    diss = m.factor(lam) < 1.0
    P = m.power_norms(lam, T)
    with np.errstate(invalid="ignore"):
        D, G = P[:, diss] @ w[diss], P[:, ~diss] @ w[~diss]
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
    above = np.flatnonzero(~(E <= 1.0 + _EPS))
    return int(above[0] - 1) if above.size else int(E.size - 1)


def window_closed(E: Array) -> bool:
    """True when E(t) exceeds 1 somewhere on the curve (so :func:`window` is not truncated)."""
    return bool(np.any(~(np.asarray(E, dtype=float) <= 1.0 + _EPS)))


def rho(
    values: Array, lr: float | TrainedMap, *, includes_weight_decay: bool | None = None
) -> float:
    r"""ρ = max_ν a_ν, the spectral radius of the linear part (ALGORITHM.md §6, §6.1): for the
    paper's map ‖F1‖ = max_ν |1 − ηλ_ν|, with momentum max_ν max|roots of
    z² − (1 + μ − ηλ_ν)z + μ|. a(λ) is quasi-convex (:meth:`TrainedMap.factor`), so the extreme
    eigenvalues suffice: pass all eigenvalues, SLQ nodes or just (λ_min, λ_max)."""
    m, lam, _ = _modes(values, lr, None, includes_weight_decay)
    return float(m.factor(np.array([lam.min(), lam.max()])).max())


def linear_norm(
    values: Array, lr: float | TrainedMap, *, includes_weight_decay: bool | None = None
) -> float:
    r"""‖A_lin‖₂ = max over the whole interval [λ_min, λ_max] of ‖B(λ)‖₂ (ALGORITHM.md §6.1):
    the 2-norm of the linear part G1 for every H with its spectrum in that interval (the
    eigenbasis is orthogonal, so ‖G1‖₂ = max_ν ‖B_ν‖₂). ‖B(λ)‖₂ is convex in λ, so the maximum
    over the interval is attained at an end. Equals ρ for the paper's map (F1 symmetric)."""
    m, lam, _ = _modes(values, lr, None, includes_weight_decay)
    return float(m.norm(np.array([lam.min(), lam.max()])).max())


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


@dataclass(frozen=True)
class Diagnostics:
    """E, D, G, r for t = 0..len−1, the window t*, ρ, ‖A_lin‖₂ and the regime of one map on one
    spectrum (ALGORITHM.md §6 for the paper's map, §6.1 for the trained one).

    ``window_factor`` is the window of the spectral-factor curve Σ_ν w_ν a_ν^t, which ignores
    the transient (non-normal) growth of ‖B_ν^t‖₂ ≥ a_ν^t; it equals ``window`` for the paper's
    map and is an upper bound on it with momentum — reported for comparison, not as t*."""

    map: TrainedMap
    E: Array
    D: Array
    G: Array
    r: Array
    window: int
    window_closed: bool
    rho: float
    norm: float
    regime: str
    window_factor: int

    def to_json(self, curves: bool = True) -> dict[str, Any]:
        """Plain dict (NumPy arrays as lists) with lr, momentum, weight_decay and the metrics."""
        out: dict[str, Any] = {
            "lr": self.map.lr,
            "momentum": self.map.momentum,
            "weight_decay": self.map.weight_decay,
            "window": self.window,
            "window_closed": self.window_closed,
            "window_factor": self.window_factor,
            "rho": self.rho,
            "norm_linear": self.norm,
            "regime": self.regime,
        }
        if curves:
            out.update(E=self.E.tolist(), D=self.D.tolist(), G=self.G.tolist(), r=self.r.tolist())
        return out


def diagnose(
    values: Array,
    lr: float | TrainedMap,
    T: int,
    *,
    horizon: int,
    weights: Array | None = None,
    interval: tuple[float, float] | None = None,
    includes_weight_decay: bool | None = None,
) -> Diagnostics:
    r"""Every §6/§6.1 metric of the map ``lr`` (a float η: the paper's plain GD; a
    :class:`TrainedMap`: the map trained) on a spectrum: E, D, G, r for t = 0..T, t*, ρ and
    ‖A_lin‖₂ over ``interval`` = (λ_min, λ_max) (default: the ends of ``values``; pass the
    Lanczos extremes with SLQ nodes), the regime for ``horizon`` and the window of the
    spectral-factor curve Σ w a^t (:class:`Diagnostics`)."""
    m = _as_map(lr)
    _check_T(T)
    _, lam, w = _modes(values, m, weights, includes_weight_decay)
    E_factor = (m.factor(lam)[None, :] ** np.arange(int(T) + 1)[:, None]) @ w
    E = error_curve(values, m, T, weights, includes_weight_decay=includes_weight_decay)
    D, G, r = dissipative_split(values, m, T, weights, includes_weight_decay=includes_weight_decay)
    ends = np.asarray(values, dtype=float) if interval is None else np.asarray(interval, float)
    rho_v = rho(ends, m, includes_weight_decay=includes_weight_decay)
    return Diagnostics(
        map=m,
        E=E,
        D=D,
        G=G,
        r=r,
        window=window(E),
        window_closed=window_closed(E),
        rho=rho_v,
        norm=linear_norm(ends, m, includes_weight_decay=includes_weight_decay),
        regime=regime(rho_v, horizon),
        window_factor=window(E_factor),
    )


@dataclass(frozen=True)
class ProbeBand:
    r"""Confidence band of an SLQ estimate of E(t) (ALGORITHM.md §6.1): ``low``/``high`` =
    E ∓ z·SE with SE the standard error over probes, and the window t* read off each edge
    (``window_low`` from ``high``, ``window_high`` from ``low``)."""

    low: Array
    high: Array
    stderr: Array
    window_low: int
    window_high: int
    probes: int
    z: float

    def to_json(self) -> dict[str, Any]:
        return {
            "E_low": self.low.tolist(),
            "E_high": self.high.tolist(),
            "window_low": self.window_low,
            "window_high": self.window_high,
            "probes": self.probes,
            "z": self.z,
        }


def probe_band(
    nodes: Array,
    weights: Array,
    probe: Array,
    lr: float | TrainedMap,
    T: int,
    *,
    z: float = 2.0,
    includes_weight_decay: bool | None = None,
) -> ProbeBand:
    r"""The spread over probes of an SLQ estimate of E(t) (ALGORITHM.md §6.1).

    ``probe[i]`` names the probe of node i (−1: a deflated exact eigenvalue, as in
    :class:`qcarleman.spectral.SLQResult`). Each probe j alone gives the estimate
    E_j(t) = Σ_{deflated} w_i f_i(t) + (W/W_j) Σ_{i ∈ j} w_i f_i(t) with f_i(t) = ‖B(θ_i)^t‖₂,
    W the weight of all probe nodes and W_j that of probe j's; E is their mean. The band is
    E ± z·s/√P (s the sample standard deviation of the E_j over the P probes; z = 2 is about
    95% for many probes — with P < 10 probes the t-quantile is larger, so the band is
    optimistic), clipped at 0. Needs P ≥ 2.
    """
    _check_T(T)
    m, lam, w = _modes(nodes, lr, weights, includes_weight_decay)
    probe = np.asarray(probe).reshape(-1)
    if probe.shape != lam.shape:
        raise UsageError(f"{probe.size} probe labels for {lam.size} nodes; give one per node")
    ids = np.unique(probe[probe >= 0])
    if ids.size < 2:
        raise UsageError(f"a probe band needs at least 2 SLQ probes, got {ids.size}; add probes")
    P = m.power_norms(lam, T)
    free = probe >= 0
    base = P[:, ~free] @ w[~free]
    W = w[free].sum()
    Ej = np.stack(
        [base + W / w[probe == j].sum() * (P[:, probe == j] @ w[probe == j]) for j in ids]
    )
    E = P @ w
    se = Ej.std(axis=0, ddof=1) / math.sqrt(ids.size)
    low, high = np.maximum(E - z * se, 0.0), E + z * se
    return ProbeBand(low, high, se, window(high), window(low), int(ids.size), float(z))


def f0_norm(grad: Array, lr: float) -> float:
    r"""‖f0‖ = η‖g‖ with f0 = −ηg, g = ∇L(θ̄) + λθ̄ on the active set (ALGORITHM.md §1, §6)."""
    _as_map(lr)
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
