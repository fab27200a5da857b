r"""The block structure of the Carleman matrix A and of the history matrix L (ALGORITHM.md §2–§3).

A's block B_{j,k} (level j ← level k) is the sum over a ∈ {0,1,2}^j with Σa = k of the tensor
products G_{a_1}⊗…⊗G_{a_j} (:func:`compositions`). A multiplicative quantity of the factors
(norms, nonzeros, normalizations, max entries) therefore bounds a block by Σ_a Π values[a_i]
(:func:`block_sums`); the history matrix's inverse is bounded by windowed products of ‖A(t)‖
(:func:`inverse_norm_bound`) and L itself by :func:`history_norm_bound`. Used by
:class:`~qcarleman.carleman.discrete.CarlemanSystem`, :class:`~qcarleman.carleman.history.
HistorySystem`, :mod:`qcarleman.carleman.kappa` and the cost model
(:mod:`qcarleman.quantum.cost.estimate`), so each sum has one implementation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import UsageError

__all__ = [
    "compositions",
    "block_sums",
    "inverse_norm_bound",
    "history_norm_bound",
    "check_overflow",
]


def compositions(j: int, N: int) -> dict[int, list[tuple[int, ...]]]:
    r"""All a ∈ {0,1,2}^j with 1 ≤ Σa ≤ N, grouped by k = Σa (the terms of B_{j,k}, §2)."""
    out: dict[int, list[tuple[int, ...]]] = {k: [] for k in range(1, N + 1)}
    for a in itertools.product((0, 1, 2), repeat=j):
        k = sum(a)
        if 1 <= k <= N:
            out[k].append(a)
    return out


def block_sums(
    values: Sequence[float], N: int, combine: Callable[[list[float]], float] = sum
) -> np.ndarray:
    """M[j−1, k−1] = combine over a with Σa = k of Π_i values[a_i] (the blocks B_{j,k} of A, §2).

    ``values`` = (v0, v1, v2) is a multiplicative quantity of G0, G1, G2 (norm, nonzeros per row,
    block-encoding normalization, max entry); with ``combine = sum`` each entry bounds the block.

    >>> block_sums((0.0, 0.5, 1.0), 2).tolist()
    [[0.5, 1.0], [0.0, 0.25]]
    """
    M = np.zeros((N, N))
    for j in range(1, N + 1):
        for k, comps in compositions(j, N).items():
            M[j - 1, k - 1] = combine([math.prod(values[a] for a in c) for c in comps])
    return M


def inverse_norm_bound(
    norms_A: float | Sequence[float], idle: int = 0, *, steps: int | None = None
) -> float:
    r"""‖L⁻¹‖₂ ≤ Σ_{k=0}^{T+p} max_s Π_{i=s}^{s+k−1} ‖A(i)‖ (ALGORITHM.md §3).

    L⁻¹'s block diagonal k holds the products A(s+k−1)⋯A(s) (idle blocks are I), and a block
    matrix's norm is at most the sum of its block diagonals' norms. ``norms_A`` is
    (‖A(0)‖, …, ‖A(T−1)‖), or one value a for all ``steps`` = T steps; ``idle`` = p. Zero norms
    become 1e-300 so logs stay finite, which only enlarges the bound. A constant norm takes the
    closed form (a ≥ 1: a window holds at most min(k, T) factors a; a < 1: at least
    max(0, k − p)), so T may be large.

    >>> inverse_norm_bound([2.0, 0.5], idle=1)  # 1 + 2 + 1 + 1
    5.0
    >>> inverse_norm_bound(2.0, idle=1, steps=2)  # 1 + 2 + 4 + 4
    11.0
    """
    p = int(idle)
    if np.ndim(norms_A) == 0:
        if steps is None:
            raise UsageError("inverse_norm_bound: give steps = T with a single norm")
        a0, T = float(norms_A), int(steps)  # type: ignore[arg-type]
    else:
        vals = np.asarray(norms_A, dtype=float)
        a0, T = (float(vals[0]) if vals.size else 1.0), vals.size
        if not np.all(vals == a0):
            return _windowed_products(vals, p)
    a0 = max(a0, 1e-300)
    k = np.arange(T + p + 1)
    expo = np.minimum(k, T) if a0 >= 1 else np.maximum(0, k - p)
    with np.errstate(over="ignore"):
        return float(np.sum(np.exp(expo * math.log(a0))))


def history_norm_bound(norms_A: Sequence[float], idle: int = 0) -> float:
    r"""‖L‖₂ ≤ 1 + ‖S‖₂ with S the block subdiagonal of L: its blocks are A(t) for t < T and the
    identity for the p idle steps, so ‖S‖₂ = max(max_t ‖A(t)‖, 1 if p > 0) (ALGORITHM.md §3).
    (Without the idle term the bound fails for ‖A‖ < 1, p > 0: A = 0, T = p = 1 has
    ‖L‖ = (1 + √5)/2.)

    >>> history_norm_bound([0.5], idle=1)
    2.0
    """
    return 1.0 + max(max(float(a) for a in norms_A), 1.0 if idle else 0.0)


def _windowed_products(norms: np.ndarray, p: int) -> float:
    """Σ_k max_s Π_{i=s}^{s+k−1} a_i over the sequence of ``norms`` followed by p ones."""
    a = np.maximum(norms, 1e-300)
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate([np.log(a), np.zeros(p)]))])
    total = 1.0  # k = 0: the identity diagonal
    with np.errstate(over="ignore"):
        for k in range(1, a.size + p + 1):
            total += float(np.exp((cum[k:] - cum[:-k]).max()))
    return total


def check_overflow(y: np.ndarray, t: int) -> None:
    """Raise a one-line error if the lifted state has left the floating-point range."""
    if not np.all(np.isfinite(y)):
        raise UsageError(
            f"the lifted state overflowed (non-finite) after step {t}; the map is not "
            "dissipative at this scale: use a smaller horizon T, a smaller initial state, "
            "or scale='auto'"
        )
