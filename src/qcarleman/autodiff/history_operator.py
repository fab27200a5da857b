r"""The order-1 history matrix L of a real model's (S)GD map, matrix-free (ALGORITHM.md §3, §6.1).

For the order-1 (linearized) map z' = G0(t) + G1(t) z of a :class:`~qcarleman.autodiff.gdmap.
GDMap` — plain GD (z = x) or heavy-ball momentum (z = (x, v) ∈ R^{2n}), full-batch or per-step
SGD — the history system of §3 has unknown Y = (z(0), …, z(T), z(T+1), …, z(T+p)) and

    (LY)_0 = Y_0,  (LY)_{t+1} = Y_{t+1} − G1(t) Y_t (t < T),  (LY)_{t+1} = Y_{t+1} − Y_t (idle).

:class:`HistoryOperator` applies L, Lᵀ, L⁻¹ (forward substitution) and L⁻ᵀ (backward
substitution) through Hessian-vector products only: with momentum
G1 (x, v) = ((I − ηH)x − ημv, Hx + μv) and G1ᵀ (a, b) = (a − H(ηa − b), μ(b − ηa)) (H symmetric),
one HVP per time block (all blocks in one batched call when the map is time-independent). Nothing
of size n² is formed, so it scales to the models the spectra are taken on.

:meth:`HistoryOperator.kappa` *measures* κ(L) = σ_max/σ_min: σ_max² = λ_max(LᵀL) and
1/σ_min² = λ_max(L⁻¹L⁻ᵀ) = λ_max((LᵀL)⁻¹), each by Lanczos (:func:`qcarleman.spectral.lanczos`,
full reorthogonalization). Ritz values approach the extremes from inside, so the measurement is
≤ the exact κ up to the Lanczos tolerance; it is labelled ``measured``.
:meth:`HistoryOperator.success_probability` is the exact P_succ = (p+1)‖z(T)‖²/‖Y‖² of the
order-1 system from a forward solve; :meth:`HistoryOperator.kappa_bound` the §3 bound from the
norm of the trained map's linear part over the Lanczos spectral interval of each step.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from ..carleman.kappa import kappa_bound
from ..dissipation import TrainedMap
from ..errors import UsageError
from ..quantity import Quantity
from ..spectral import lanczos
from .gdmap import GDMap

__all__ = ["HistoryOperator"]

Array = np.ndarray
Tensor = torch.Tensor


class HistoryOperator:
    r"""L of the order-1 history system of ``gmap`` for horizon T with p = ``idle`` idle copies
    (module docstring; ALGORITHM.md §3, §6.1). Vectors are flat float64 NumPy arrays of length
    (T+p+1)·d, d = ``gmap.dim`` (n, or 2n with momentum)."""

    def __init__(self, gmap: GDMap, T: int, idle: int = 0):
        if not isinstance(gmap, GDMap):
            raise UsageError(f"HistoryOperator needs a GDMap, got {type(gmap).__name__}")
        if isinstance(T, bool) or int(T) != T or T < 1:
            raise UsageError(f"horizon T = {T!r} is invalid; use an integer T ≥ 1")
        if isinstance(idle, bool) or int(idle) != idle or idle < 0:
            raise UsageError(f"idle steps p = {idle!r} is invalid; use an integer p ≥ 0")
        gmap.check_horizon(int(T))
        self.gmap = gmap
        self.T, self.idle = int(T), int(idle)
        self.d, self.n = int(gmap.dim), int(gmap.n)
        self.blocks = self.T + self.idle + 1
        self.dim = self.blocks * self.d
        self.hvps = 0  # Hessian-vector products spent so far

    # -- G1(t) and G1(t)ᵀ on the columns of a (d, m) tensor ---------------------------------
    def _hvp(self, t: int, X: Tensor) -> Tensor:
        self.hvps += X.shape[1]
        return self.gmap.operators(t).hvp_batch(X, self.gmap.chunk_size)

    def _g1(self, t: int, Z: Tensor) -> Tensor:
        self.hvps += Z.shape[1]
        return self.gmap.tg1(t, Z)

    def _g1t(self, t: int, W: Tensor) -> Tensor:
        eta, mu, n = self.gmap.lr, self.gmap.momentum, self.n
        a = W[:n]
        if not mu:
            return a - eta * self._hvp(t, a)
        b = W[n:]
        return torch.cat([a - self._hvp(t, eta * a - b), mu * (b - eta * a)])

    def _apply_steps(self, f, Z: Tensor) -> Tensor:
        """f(t, ·) on the columns Z[:, t] for t < T: one batched call when G1 is constant."""
        if not self.gmap.per_step:
            return f(0, Z)
        return torch.cat([f(t, Z[:, t : t + 1]) for t in range(Z.shape[1])], dim=1)

    def _blocks(self, y: Array) -> Tensor:
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape != (self.dim,):
            raise UsageError(f"vector of length {y.size}; the history system has {self.dim}")
        return torch.as_tensor(y.reshape(self.blocks, self.d).T.copy()).to(self.gmap.dtype)

    @staticmethod
    def _flat(Z: Tensor) -> Array:
        return Z.T.reshape(-1).cpu().numpy().astype(float)

    # -- L, Lᵀ, L⁻¹, L⁻ᵀ ----------------------------------------------------------------------
    def matvec(self, y: Array) -> Array:
        """L y (one HVP per time block t < T)."""
        Y, T = self._blocks(y), self.T
        out = Y.clone()
        out[:, 1 : T + 1] -= self._apply_steps(self._g1, Y[:, :T])
        out[:, T + 1 :] -= Y[:, T:-1]
        return self._flat(out)

    def rmatvec(self, w: Array) -> Array:
        """Lᵀ w: (Lᵀw)_t = w_t − G1(t)ᵀ w_{t+1} (t < T), w_t − w_{t+1} (idle)."""
        W, T = self._blocks(w), self.T
        out = W.clone()
        out[:, :T] -= self._apply_steps(self._g1t, W[:, 1 : T + 1])
        out[:, T:-1] -= W[:, T + 1 :]
        return self._flat(out)

    def solve(self, c: Array) -> Array:
        """L⁻¹ c by forward substitution: Y_0 = c_0, Y_{t+1} = c_{t+1} + G1(t) Y_t."""
        C = self._blocks(c)
        Y = torch.empty_like(C)
        Y[:, 0] = C[:, 0]
        for t in range(self.blocks - 1):
            step = self._g1(t, Y[:, t : t + 1])[:, 0] if t < self.T else Y[:, t]
            Y[:, t + 1] = C[:, t + 1] + step
        return self._flat(Y)

    def solve_transpose(self, c: Array) -> Array:
        """L⁻ᵀ c by backward substitution: W_last = c_last, W_t = c_t + G1(t)ᵀ W_{t+1}."""
        C = self._blocks(c)
        W = torch.empty_like(C)
        W[:, -1] = C[:, -1]
        for t in range(self.blocks - 2, -1, -1):
            step = self._g1t(t, W[:, t + 1 : t + 2])[:, 0] if t < self.T else W[:, t + 1]
            W[:, t] = C[:, t] + step
        return self._flat(W)

    def linear_operator(self) -> LinearOperator:
        """L as a SciPy LinearOperator (matvec and rmatvec)."""
        return LinearOperator(
            (self.dim, self.dim), matvec=self.matvec, rmatvec=self.rmatvec, dtype=float
        )

    # -- the figures -----------------------------------------------------------------------
    def rhs(self, z0: Array | None = None) -> Array:
        """c = (z0, G0(0), …, G0(T−1), 0, …, 0) (§3; z0 default ``gmap.initial_state()``)."""
        z0 = self.gmap.initial_state() if z0 is None else np.asarray(z0, dtype=float)
        if z0.shape != (self.d,):
            raise UsageError(f"z0 has shape {z0.shape}; the map has dimension d = {self.d}")
        c = np.zeros((self.blocks, self.d))
        c[0] = z0
        for t in range(self.T):
            c[t + 1] = self.gmap.tg0(t).cpu().numpy()
        return c.reshape(-1)

    def success_probability(self, z0: Array | None = None) -> Quantity:
        r"""Exact P_succ = (p+1)‖z(T)‖²/‖Y‖² of the order-1 system, Y = L⁻¹c (§3)."""
        Y = self.solve(self.rhs(z0)).reshape(self.blocks, self.d)
        total = float(np.sum(Y * Y))
        if total == 0:
            raise UsageError("the history solution Y is zero (z0 = 0 and g = 0); P_succ undefined")
        value = (self.idle + 1) * float(Y[self.T] @ Y[self.T]) / total
        return Quantity(value, "exact", source="forward solve of the order-1 history system (§3)")

    def kappa(self, *, tol: float = 1e-8, maxiter: int | None = None, seed: int = 0) -> Quantity:
        r"""Measured κ(L) = σ_max/σ_min by Lanczos on LᵀL and on L⁻¹L⁻ᵀ (module docstring).

        ``uncertainty`` is the relative Ritz residual bound carried to κ,
        κ·½(r_max/θ_max + r_inv/θ_inv); ``source`` records iterations and HVPs."""
        start = self.hvps
        gram = LinearOperator(
            (self.dim, self.dim), matvec=lambda y: self.rmatvec(self.matvec(y)), dtype=float
        )
        inv = LinearOperator(
            (self.dim, self.dim),
            matvec=lambda y: self.solve(self.solve_transpose(y)),
            dtype=float,
        )
        top = lanczos(gram, k=1, which="largest", tol=tol, maxiter=maxiter, seed=seed)
        low = lanczos(inv, k=1, which="largest", tol=tol, maxiter=maxiter, seed=seed + 1)
        t_max, t_inv = float(top.largest[0]), float(low.largest[0])
        if not (t_max > 0 and t_inv > 0):
            raise UsageError("LᵀL has a zero Ritz value; the history matrix is degenerate")
        value = math.sqrt(t_max * t_inv)
        rel = 0.5 * (
            float(top.residual_largest[0]) / t_max + float(low.residual_largest[0]) / t_inv
        )
        conv = "converged" if top.converged and low.converged else "NOT converged (raise maxiter)"
        return Quantity(
            value,
            "measured",
            uncertainty=value * rel,
            source=(
                f"Lanczos on LᵀL ({top.iterations} steps) and L⁻¹L⁻ᵀ ({low.iterations} steps), "
                f"matrix-free, {self.hvps - start} HVPs, tol {tol:g}, {conv}; "
                "order-1 history system (ALGORITHM.md §3, §6.1)"
            ),
        )

    def intervals(self, *, tol: float = 1e-8, seed: int = 0) -> list[tuple[float, float]]:
        """(λ_min, λ_max) of H(t) for each step t < T (one pair for a time-independent map) by
        Lanczos, each end widened by its Ritz residual (H includes weight decay)."""
        steps = range(self.T) if self.gmap.per_step else range(1)
        out = []
        for t in steps:
            ops = self.gmap.operators(t)
            ext = lanczos(ops.linear_operator(), k=1, tol=tol, seed=seed + t)
            self.hvps += ext.matvecs
            lo = float(ext.smallest[0] - ext.residual_smallest[0])
            hi = float(ext.largest[0] + ext.residual_largest[0])
            out.append((lo, hi))
        return out

    def kappa_bound(self, *, tol: float = 1e-8, seed: int = 0) -> Quantity:
        """The §3 bound on κ(L) from ‖G1(t)‖₂ of the map trained over the Lanczos intervals of
        :meth:`intervals` (:func:`qcarleman.carleman.kappa.kappa_bound`, order 1)."""
        g = self.gmap
        tmap = TrainedMap(g.lr, g.momentum, g.weight_decay)
        return kappa_bound(
            tmap,
            self.intervals(tol=tol, seed=seed),
            self.T,
            self.idle,
            includes_weight_decay=True,
        )

    def __repr__(self) -> str:
        return f"HistoryOperator(T={self.T}, p={self.idle}, d={self.d}, dim={self.dim})"
