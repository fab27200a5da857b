r"""Quadratic maps z' = G0 + G1 z + G2 (z⊗z) (ALGORITHM.md §1–§2).

A :class:`QuadraticMap` holds the coefficients of one step, or one set per step (time-dependent
maps, e.g. SGD with a batch per step). Coefficients may be

* ``G0``: a vector of length d (dense or sparse);
* ``G1``: a d×d NumPy array, a scipy.sparse matrix, a :class:`scipy.sparse.linalg.LinearOperator`,
  or a callable ``G1(u)``;
* ``G2``: a d×d² matrix acting on z⊗z (index ``a*d + b`` for z_a z_b, NumPy or scipy.sparse), a
  d×d×d array with ``G2[i, a, b]``, or a bilinear callable ``G2(u, v)``.

Callables take vectors of shape (d,); pass ``vectorized=True`` if they also accept (d, m) blocks
(columnwise). A list of any of these, one per step, makes the map time-dependent.

Everything downstream (Carleman lifting, history systems, solvers) talks to a map only through
:meth:`QuadraticMap.g0`, :meth:`~QuadraticMap.g1`, :meth:`~QuadraticMap.g2` and
:meth:`~QuadraticMap.g2_contract`, so operator-form maps (Hessian-vector products of a real
network) and explicit matrices are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .errors import UsageError, check_finite, check_memory

__all__ = ["QuadraticMap"]

Array = np.ndarray


class _Linear:
    """G1 as a block operator U (d, m) -> G1 U (d, m)."""

    def __init__(self, G1: Any, d: int, vectorized: bool, name: str):
        self.d = d
        self.matrix: Array | sp.spmatrix | None = None
        if isinstance(G1, LinearOperator):
            _check_shape(name, G1.shape, (d, d))
            self._apply = G1.matmat
        elif sp.issparse(G1) or isinstance(G1, np.ndarray):
            if isinstance(G1, np.ndarray):
                G1 = np.asarray(G1, dtype=float)
            _check_shape(name, G1.shape, (d, d))
            check_finite(name, G1)
            self.matrix = sp.csr_matrix(G1) if sp.issparse(G1) else G1
            self._apply = self.matrix.__matmul__
        elif callable(G1):
            self._apply = G1 if vectorized else _columnwise1(G1)
        else:
            raise UsageError(
                f"{name} must be an array, a scipy.sparse matrix, a LinearOperator or a callable"
            )

    def __call__(self, U: Array) -> Array:
        out = np.asarray(self._apply(U), dtype=float)
        return out.reshape(U.shape)


class _Bilinear:
    """G2 as a columnwise bilinear operator (U, V) -> [G2(u_k, v_k)]_k, plus contraction of a
    (d, d, m) tensor: W -> Σ_ab G2[:, a, b] W[a, b, :]."""

    def __init__(self, G2: Any, d: int, vectorized: bool, name: str):
        self.d = d
        self.tensor: Array | None = None  # (d, d, d)
        self.matrix: sp.csr_matrix | None = None  # (d, d*d)
        self.func: Callable | None = None
        if isinstance(G2, np.ndarray) or sp.issparse(G2):
            if sp.issparse(G2):
                _check_shape(name, G2.shape, (d, d * d))
                check_finite(name, G2)
                self.matrix = sp.csr_matrix(G2, dtype=float)
            else:
                G2 = np.asarray(G2, dtype=float)
                if G2.shape == (d, d * d):
                    G2 = G2.reshape(d, d, d)
                _check_shape(name, G2.shape, (d, d, d))
                check_finite(name, G2)
                self.tensor = G2
        elif callable(G2):
            self.func = G2 if vectorized else _columnwise2(G2)
        else:
            raise UsageError(
                f"{name} must be a d×d² or d×d×d array, a scipy.sparse matrix or a callable"
            )

    def scaled(self, gamma: float) -> _Bilinear:
        """The same bilinear form times γ (structure kept)."""
        new = object.__new__(_Bilinear)
        new.d = self.d
        new.tensor = None if self.tensor is None else gamma * self.tensor
        new.matrix = None if self.matrix is None else gamma * self.matrix
        f = self.func
        new.func = None if f is None else (lambda U, V: gamma * f(U, V))
        return new

    def __call__(self, U: Array, V: Array) -> Array:
        if self.tensor is not None:
            return np.einsum("iab,am,bm->im", self.tensor, U, V)
        if self.matrix is not None:
            m = U.shape[1]
            kron = (U[:, None, :] * V[None, :, :]).reshape(self.d * self.d, m)
            return np.asarray(self.matrix @ kron)
        assert self.func is not None  # exactly one of tensor / matrix / func is set
        return np.asarray(self.func(U, V), dtype=np.float64).reshape(U.shape)

    def contract(self, W: Array) -> Array:
        d = self.d
        m = W.shape[2]
        if self.tensor is not None:
            return np.tensordot(self.tensor, W, axes=([1, 2], [0, 1]))
        if self.matrix is not None:
            return np.asarray(self.matrix @ W.reshape(d * d, m))
        # Σ_ab G2[:, a, b] W[a, b] = Σ_a G2(e_a, W[a, :]): d bilinear calls per column.
        eye = np.eye(d)
        out = np.empty((d, m))
        for k in range(m):
            out[:, k] = self(eye, W[:, :, k].T).sum(axis=1)
        return out


def _columnwise1(f: Callable) -> Callable:
    def apply(U: Array) -> Array:
        return np.stack([np.asarray(f(U[:, k]), dtype=float) for k in range(U.shape[1])], axis=1)

    return apply


def _columnwise2(f: Callable) -> Callable:
    def apply(U: Array, V: Array) -> Array:
        cols = [np.asarray(f(U[:, k], V[:, k]), dtype=float) for k in range(U.shape[1])]
        return np.stack(cols, axis=1)

    return apply


def _check_shape(name: str, got: tuple, want: tuple) -> None:
    if tuple(got) != tuple(want):
        raise UsageError(f"{name} has shape {tuple(got)} but the map needs {tuple(want)}")


def _as_vector(G0: Any, d: int | None, name: str) -> Array:
    v = np.asarray(G0.toarray() if sp.issparse(G0) else G0, dtype=float).reshape(-1)
    if d is not None:
        _check_shape(name, v.shape, (d,))
    check_finite(name, v)
    return v


def _per_step(value: Any) -> list | None:
    """A list/tuple of per-step coefficients, or None for a time-independent coefficient.

    A list of numbers is a vector (e.g. G0 = [1.0, 2.0]), not a per-step list."""
    if isinstance(value, list | tuple) and len(value) and not np.isscalar(value[0]):
        return list(value)
    if isinstance(value, list | tuple) and not len(value):
        return []
    return None


class QuadraticMap:
    r"""The quadratic map z_{t+1} = G0(t) + G1(t) z_t + G2(t)(z_t ⊗ z_t) in dimension d.

    Source: ALGORITHM.md §1 (gradient descent on the cubic Taylor model is such a map, with
    f0 = −ηg, F1 = I − ηH, F2(u, v) = −(η/2)K[·, u, v]) and §2 (the map Carleman lifts).

    Parameters
    ----------
    G0, G1, G2:
        Coefficients (see the module docstring), or lists of them, one per step.
    dim:
        d; required when every coefficient is a callable, inferred otherwise.
    vectorized:
        Callables accept (d, m) blocks columnwise.
    """

    def __init__(
        self,
        G0: Any,
        G1: Any,
        G2: Any,
        *,
        dim: int | None = None,
        vectorized: bool = False,
    ):
        steps = [_per_step(G) for G in (G0, G1, G2)]
        lengths = {len(s) for s in steps if s is not None}
        if len(lengths) > 1:
            raise UsageError(
                f"per-step coefficient lists have different lengths {sorted(lengths)}; "
                "give G0, G1 and G2 one entry per step each"
            )
        self.horizon: int | None = lengths.pop() if lengths else None
        if self.horizon == 0:
            raise UsageError("per-step coefficient lists are empty; give at least one step")
        first = [s[0] if s is not None else G for s, G in zip(steps, (G0, G1, G2))]
        d = dim if dim is not None else _infer_dim(*first)
        if d is None or d < 1:
            raise UsageError("cannot infer the dimension d of the map; pass dim=...")
        self.dim = int(d)

        n = self.horizon or 1
        seq = [s if s is not None else [G] * n for s, G in zip(steps, (G0, G1, G2))]
        names = [
            (lambda i, k=k: f"G{k}[{i}]") if steps[k] is not None else (lambda i, k=k: f"G{k}")
            for k in range(3)
        ]
        self._g0 = [_as_vector(v, d, names[0](i)) for i, v in enumerate(seq[0])]
        self._g1 = [_Linear(v, d, vectorized, names[1](i)) for i, v in enumerate(seq[1])]
        self._g2 = [_Bilinear(v, d, vectorized, names[2](i)) for i, v in enumerate(seq[2])]

    # -- time-indexed access -------------------------------------------------------------
    @property
    def time_dependent(self) -> bool:
        return self.horizon is not None

    def _index(self, t: int) -> int:
        if self.horizon is None:
            return 0
        if not 0 <= t < self.horizon:
            raise UsageError(
                f"step {t} is outside this time-dependent map's {self.horizon} steps; "
                f"use a horizon T ≤ {self.horizon} or give more per-step coefficients"
            )
        return t

    def check_horizon(self, T: int) -> None:
        """Raise unless steps 0..T−1 have coefficients (and T ≥ 1)."""
        if int(T) != T or T < 1:
            raise UsageError(f"horizon T = {T} is invalid; use an integer T ≥ 1")
        if self.horizon is not None and T > self.horizon:
            raise UsageError(
                f"horizon T = {T} exceeds the {self.horizon} steps this map has coefficients "
                f"for; use T ≤ {self.horizon}"
            )

    def g0(self, t: int = 0) -> Array:
        """G0(t), shape (d,)."""
        return self._g0[self._index(t)]

    def g1(self, t: int, U: Array) -> Array:
        """G1(t) U for U of shape (d,) or (d, m)."""
        U = np.asarray(U, dtype=float)
        out = self._g1[self._index(t)](U.reshape(self.dim, -1))
        return out.reshape(U.shape)

    def g2(self, t: int, U: Array, V: Array) -> Array:
        """G2(t)(u, v) = G2 (u⊗v), columnwise for blocks of shape (d, m)."""
        U = np.asarray(U, dtype=float)
        V = np.asarray(V, dtype=float)
        if U.shape != V.shape:
            raise UsageError(f"G2 arguments have shapes {U.shape} and {V.shape}; they must match")
        out = self._g2[self._index(t)](U.reshape(self.dim, -1), V.reshape(self.dim, -1))
        return out.reshape(U.shape)

    def g2_contract(self, t: int, W: Array) -> Array:
        """Σ_ab G2(t)[:, a, b] W[a, b, ...] for W of shape (d, d) or (d, d, m)."""
        W = np.asarray(W, dtype=float)
        out = self._g2[self._index(t)].contract(W.reshape(self.dim, self.dim, -1))
        return out.reshape((self.dim,) + W.shape[2:])

    # -- dynamics ------------------------------------------------------------------------
    def step(self, t: int, z: Array) -> Array:
        """One exact step z_{t+1} = G0(t) + G1(t) z + G2(t)(z, z)."""
        return self.g0(t) + self.g1(t, z) + self.g2(t, z, z)

    def iterate(self, z0: Array, T: int) -> Array:
        """The exact trajectory z_0..z_T, shape (T+1, d)."""
        self.check_horizon(T)
        z = self._check_state(z0)
        out = np.empty((T + 1, self.dim))
        out[0] = z
        for t in range(T):
            z = self.step(t, z)
            out[t + 1] = z
        return out

    def _check_state(self, z0: Array) -> Array:
        z = np.asarray(z0, dtype=float).reshape(-1)
        _check_shape("z0", z.shape, (self.dim,))
        check_finite("z0", z)
        return z

    # -- transformations -----------------------------------------------------------------
    def scaled(self, gamma: float) -> QuadraticMap:
        r"""The map of z̃ = z/γ: coefficients G0/γ, G1, γG2 (ALGORITHM.md §2, scaling)."""
        if not np.isfinite(gamma) or gamma <= 0:
            raise UsageError(f"scale γ = {gamma} is invalid; use a finite γ > 0")
        new = object.__new__(QuadraticMap)
        new.horizon, new.dim = self.horizon, self.dim
        new._g0 = [g / gamma for g in self._g0]
        new._g1 = self._g1
        new._g2 = [B.scaled(gamma) for B in self._g2]
        return new

    def dense(
        self, t: int = 0, memory_limit: int | str | None = None
    ) -> tuple[Array, Array, Array]:
        """(G0, G1, G2) at step t as dense arrays of shapes (d,), (d, d), (d, d, d)."""
        d = self.dim
        check_memory(8.0 * (d**3 + d**2 + d), f"dense coefficients of a d = {d} map", memory_limit)
        i = self._index(t)
        G1 = self._g1[i]
        M = G1.matrix
        if M is None:
            G1d = G1(np.eye(d))
        elif isinstance(M, np.ndarray):
            G1d = M
        else:
            G1d = M.toarray()
        B = self._g2[i]
        if B.tensor is not None:
            G2d = B.tensor
        elif B.matrix is not None:
            G2d = B.matrix.toarray().reshape(d, d, d)
        else:
            eye = np.eye(d)
            G2d = np.empty((d, d, d))
            for a in range(d):
                G2d[:, a, :] = B(np.repeat(eye[:, a : a + 1], d, axis=1), eye)
        return self.g0(t).copy(), np.array(G1d, dtype=float), np.array(G2d, dtype=float)

    def __repr__(self) -> str:
        kind = "time-independent" if self.horizon is None else f"{self.horizon} steps"
        return f"QuadraticMap(d={self.dim}, {kind})"


def _infer_dim(G0: Any, G1: Any, G2: Any) -> int | None:
    if G0 is not None and not callable(G0):
        return int(np.asarray(G0.toarray() if sp.issparse(G0) else G0).size)
    for G in (G1, G2):
        if hasattr(G, "shape"):
            return int(G.shape[0])
    return None
