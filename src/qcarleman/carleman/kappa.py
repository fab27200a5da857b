r"""κ of the history system of the map actually trained, with its kind (ALGORITHM.md §3, §6.1).

Every κ is a :class:`~qcarleman.quantity.Quantity`:

* :func:`kappa_bound` — **bound**: the §3 bound κ ≤ (1 + ‖S‖)·Σ_k max_s Π‖A‖ from the norm of
  the *actual* linear part, ‖G1‖₂ = max over [λ_min, λ_max] of ‖B(λ)‖₂ (the 2n×2n momentum
  block of :class:`qcarleman.dissipation.TrainedMap`), never from ρ of I − ηH; per-step
  SGD maps give one interval per step. Orders N > 1 add ‖G0‖ and ‖G2‖ through the block sums of
  §2.
* :func:`kappa_modes` — **exact** κ of the order-1 history system of a time-independent map from
  the exact eigenvalues of H: L is orthogonally similar to the direct sum of the per-mode
  history matrices L(λ_ν) (size (T+p+1)·q, q = 1 or 2), so
  κ(L) = max_ν σ_max(L(λ_ν)) / min_ν σ_min(L(λ_ν)).
* :func:`kappa_of_history` — κ of a :class:`~qcarleman.carleman.history.HistorySystem` with the
  kind its method gives (SVD: exact, Lanczos: measured, §3: bound).

The matrix-free *measured* κ of a real model's order-1 system is
:meth:`qcarleman.autodiff.history_operator.HistoryOperator.kappa`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dissipation import TrainedMap, linear_norm
from ..errors import UsageError
from ..quantity import Quantity
from .blocks import block_sums, history_norm_bound, inverse_norm_bound

__all__ = ["kappa_bound", "kappa_modes", "kappa_of_history"]

Array = np.ndarray

# Bytes of one chunk of stacked per-mode history matrices in :func:`kappa_modes`.
_CHUNK_BYTES = 2**26


def _check_T_p(T: int, idle: int) -> None:
    if isinstance(T, bool) or int(T) != T or T < 1:
        raise UsageError(f"horizon T = {T!r} is invalid; use an integer T ≥ 1")
    if isinstance(idle, bool) or int(idle) != idle or idle < 0:
        raise UsageError(f"idle steps p = {idle!r} is invalid; use an integer p ≥ 0")


def kappa_bound(
    tmap: TrainedMap,
    intervals: tuple[float, float] | Sequence[tuple[float, float]],
    T: int,
    idle: int = 0,
    *,
    includes_weight_decay: bool | None,
    order: int = 1,
    g0_norm: float = 0.0,
    g2_norm: float = 0.0,
    gamma: float = 1.0,
) -> Quantity:
    r"""Upper bound on κ(L) of the order-N history system of the trained map (ALGORITHM.md §3,
    §6.1).

    ``intervals``: (λ_min, λ_max) of H for a time-independent map, or one pair per step t < T
    (per-step SGD batches). ‖G1(t)‖₂ = max over the interval of ‖B(λ)‖₂
    (:func:`qcarleman.dissipation.linear_norm`); for N > 1, ‖A(t)‖₂ ≤ ‖(Σ_a Π‖G_{a_i}‖)_{jk}‖₂
    with ‖G0‖ = ``g0_norm``/γ, ‖G2‖ = γ·``g2_norm`` (‖G2‖ as a d×d² matrix; §2 scaling γ).
    Then κ ≤ ‖L‖ ‖L⁻¹‖ with ‖L‖ ≤ :func:`~qcarleman.carleman.blocks.history_norm_bound` and
    ‖L⁻¹‖ ≤ Σ_{k ≤ T+p} max_s Π‖A‖ (:func:`qcarleman.carleman.blocks.inverse_norm_bound`).
    """
    _check_T_p(T, idle)
    if int(order) != order or order < 1:
        raise UsageError(f"order N = {order} is invalid; use an integer N ≥ 1")
    if min(g0_norm, g2_norm) < 0 or not gamma > 0:
        raise UsageError("‖G0‖, ‖G2‖ must be ≥ 0 and the scale γ > 0")
    pairs = np.asarray(intervals, dtype=float)
    if pairs.shape == (2,):
        pairs = pairs[None, :]
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] not in (1, int(T)):
        raise UsageError(
            f"intervals must be one (λ_min, λ_max) pair or one per step (T = {T}), got shape "
            f"{pairs.shape}"
        )
    norms = []
    for lo, hi in pairs:
        g1 = linear_norm([lo, hi], tmap, includes_weight_decay=includes_weight_decay)
        if order == 1:
            norms.append(g1)
        else:
            M = block_sums((g0_norm / gamma, g1, gamma * g2_norm), int(order))
            norms.append(float(np.linalg.norm(M, 2)))
    per_step = norms * int(T) if len(norms) == 1 else norms
    value = history_norm_bound(per_step, idle) * inverse_norm_bound(per_step, int(idle))
    mom = f", μ = {tmap.momentum:g}" if tmap.momentum else ""
    return Quantity(
        value,
        "bound",
        source=(
            f"§3 bound from ‖A‖ of the trained map (η = {tmap.lr:g}{mom}, order {order}, "
            f"max ‖A(t)‖ = {max(norms):.6g}; ALGORITHM.md §3, §6.1)"
        ),
    )


def kappa_modes(
    eigenvalues: Array,
    tmap: TrainedMap,
    T: int,
    idle: int = 0,
    *,
    includes_weight_decay: bool | None,
) -> Quantity:
    r"""Exact κ(L) of the order-1 history system of a time-independent (full-batch) trained map
    from the exact eigenvalues of H (ALGORITHM.md §3, §6.1).

    With H = VΛVᵀ, the permutation-and-rotation z ↦ (Vᵀx, Vᵀv) maps L to the direct sum over
    modes of L(λ_ν): identity diagonal, −B(λ_ν) below block t < T, −I below the idle blocks. So
    σ(L) = ∪_ν σ(L(λ_ν)) and κ = max_ν σ_max / min_ν σ_min, from n small SVDs (chunked).
    """
    _check_T_p(T, idle)
    lam = tmap.curvature(
        np.asarray(eigenvalues, dtype=float).reshape(-1),
        includes_weight_decay=includes_weight_decay,
    )
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        raise UsageError("the eigenvalues must be finite and not empty")
    lam = np.unique(lam)
    q = tmap.block_size
    blocks = int(T) + int(idle) + 1
    D = blocks * q
    smax, smin = 0.0, np.inf
    chunk = max(1, _CHUNK_BYTES // (8 * 3 * D * D))
    for lo in range(0, lam.size, chunk):
        B = tmap.block(lam[lo : lo + chunk])
        L = np.broadcast_to(np.eye(D), (B.shape[0], D, D)).copy()
        for t in range(blocks - 1):
            r, c = slice((t + 1) * q, (t + 2) * q), slice(t * q, (t + 1) * q)
            L[:, r, c] = -B if t < T else -np.eye(q)
        sv = np.linalg.svd(L, compute_uv=False)
        smax, smin = max(smax, float(sv[:, 0].max())), min(smin, float(sv[:, -1].min()))
    value = smax / smin if smin > 0 else np.inf
    return Quantity(
        value,
        "exact",
        source=(
            f"order-1 history system, SVD per eigenmode of H ({lam.size} distinct, blocks "
            f"{D}×{D}; ALGORITHM.md §3, §6.1)"
        ),
    )


def kappa_of_history(hist, method: str = "exact") -> Quantity:
    r"""κ of a :class:`~qcarleman.carleman.history.HistorySystem` by ``method`` with its kind:
    "exact" (dense SVD) → exact, "estimate" (Lanczos on LᵀL and on L⁻¹L⁻ᵀ) → measured,
    "bound" (§3) → bound."""
    kinds = {"exact": "exact", "estimate": "measured", "bound": "bound"}
    if method not in kinds:
        raise UsageError(f"κ method {method!r} is unknown; use one of {', '.join(kinds)}")
    return Quantity(
        float(hist.kappa(method)),
        kinds[method],  # type: ignore[arg-type]
        source=f"HistorySystem.kappa({method!r}) (ALGORITHM.md §3)",
    )
