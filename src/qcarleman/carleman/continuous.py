r"""Continuous-time Carleman linearization with forward Euler (PNAS form of the method).

Source: J.-P. Liu et al., "Efficient quantum algorithm for dissipative nonlinear differential
equations", PNAS 118, e2026805118 (2021), arXiv:2011.03185 — its problem class (the quadratic
ODE below, with R and the radii r±), its Carleman linearization (the block-tridiagonal A below)
and its forward-Euler discretization (the linear system of all time steps, step size
h ≤ 1/(N‖F1‖)). Section and equation numbers differ between the arXiv and journal versions, so
the quantities are cited by name:

    du/dt = F0(t) + F1 u + F2 (u⊗u),   u ∈ R^d,   F2 a d×d² matrix (index a·d + b ↔ u_a u_b).

Lift y_j = u^{⊗j}, j = 1..N (y_0 = 1). Then dy_j/dt = A_{j,j−1}(t) y_{j−1} + A_{j,j} y_j +
A_{j,j+1} y_{j+1} with (PNAS, Carleman linearization)

    A_{j,j+k−1} = Σ_{i=1}^{j} I^{⊗(i−1)} ⊗ F_k ⊗ I^{⊗(j−i)},   k = 0, 1, 2,

so level j couples to j−1 through F0, to itself through F1 and to j+1 through F2. Truncating at
order N drops A_{N,N+1}; the level-1 F0 term becomes the inhomogeneity b(t) = (F0(t), 0, …, 0):
dŷ/dt = A(t) ŷ + b(t). Forward Euler with step h at times t_k = t0 + k·h gives

    ŷ(k+1) = (I + h A(t_k)) ŷ(k) + h b(t_k),

which is the lifted-step protocol of :class:`~qcarleman.carleman.history.HistorySystem`
(``apply(k, y) = (I + hA(t_k)) y``, ``rhs(k) = h b(t_k)``), so :meth:`ContinuousCarleman.history`
builds the PNAS linear system of the Euler steps with the discrete machinery.

A(t) is applied structurally: each Σ_i I⊗…⊗F⊗…⊗I contracts one axis (F1), two consecutive axes
(F2) or inserts one axis (F0) of the level tensor; no Kronecker product is formed unless
:meth:`ContinuousCarleman.generator_matrix` / :meth:`~ContinuousCarleman.matrix` is asked for
(nonzeros predicted and checked against the memory limit first).

Scaling (the PNAS rescaling u = γ ũ, as in ALGORITHM.md §2): the coefficients become F0/γ, F1,
γF2 and R is unchanged. ``scale="auto"`` is this project's choice γ = √(r₋ r₊) =
√(max_t‖F0(t)‖/‖F2‖) (r± from :meth:`ContinuousCarleman.diagnostics`; r₋r₊ = ‖F0‖/‖F2‖ holds even
when r± are complex): it makes the rescaled radii satisfy r̃₋ r̃₊ = 1 and minimizes
‖F0‖/γ + γ‖F2‖ (= 2√(‖F0‖‖F2‖)), so the rescaled condition ‖F0‖/γ + γ‖F2‖ < |Re λ1| holds
exactly when r± are real. Lifted vectors are in scaled units;
:meth:`~ContinuousCarleman.iterate` and :meth:`~ContinuousCarleman.euler` return original units.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..dynamics import QuadraticMap
from ..errors import UsageError, check_finite, check_memory
from .history import HistorySystem

__all__ = ["ContinuousCarleman", "CarlemanDiagnosticWarning"]

Array = np.ndarray


_BLAS: Any = None  # threadpoolctl controller, created on first use
_SMALL_D = 128  # below this, one BLAS thread is faster for the per-axis products
_DENSE_D = 64  # up to this d, F1 and F2 are held dense (d³ ≤ 262,144 entries)


def _small_blas(d: int):
    """Limit BLAS to one thread while applying A(t) when d is small: the products are
    d×d by d×d^(j−1), where OpenBLAS threading costs far more than it gains (measured 30× slower
    on a loaded 2-core machine at d = 16)."""
    global _BLAS
    if d >= _SMALL_D:
        return contextlib.nullcontext()
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


class CarlemanDiagnosticWarning(UserWarning):
    """The PNAS convergence condition ‖F0‖ + ‖F2‖ < |Re λ1| fails (results may still converge)."""


class ContinuousCarleman:
    r"""Order-N Carleman linearization of du/dt = F0(t) + F1 u + F2(u⊗u), stepped by forward Euler.

    Parameters
    ----------
    F0:
        A vector of length d, or a callable ``t -> vector`` (time-dependent forcing).
    F1, F2:
        Any coefficient form :class:`~qcarleman.dynamics.QuadraticMap` accepts for G1 and G2
        (d×d array / sparse / LinearOperator / callable; d×d² or d×d×d array / sparse / bilinear
        callable).
    order:
        Truncation order N ≥ 1.
    h:
        Euler step size; step k evaluates F0 at t_k = t0 + k·h.
    t0:
        Initial time.
    steps:
        Number of Euler steps the system will be used for; needed for ``scale="auto"`` with a
        time-dependent F0 (max_t ‖F0(t)‖ is taken over t_0..t_steps).
    scale:
        γ: a float, None (γ = 1) or "auto" (γ = √(max‖F0‖/‖F2‖), see the module docstring).
    dim:
        d, when it cannot be inferred from F0 or F1.
    memory_limit:
        Limit for the predicted memory of the lifted state (default: see
        :func:`qcarleman.errors.memory_limit`).

    Attributes: ``d``, ``order`` (N), ``h``, ``t0``, ``scale`` (γ), ``dim`` (D_N = Σ_j d^j),
    ``level_dims``.
    """

    def __init__(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
        self,
        F0: Any,
        F1: Any,
        F2: Any,
        order: int,
        h: float,
        *,
        t0: float = 0.0,
        steps: int | None = None,
        scale: float | str | None = None,
        dim: int | None = None,
        memory_limit: int | str | None = None,
    ):
        if isinstance(order, bool) or int(order) != order or order < 1:
            raise UsageError(f"Carleman order N = {order} is invalid; use an integer N ≥ 1")
        if not (np.isfinite(h) and h > 0):
            raise UsageError(f"Euler step h = {h} is invalid; use a finite h > 0")
        if steps is not None and (int(steps) != steps or steps < 1):
            raise UsageError(f"steps = {steps} is invalid; use an integer ≥ 1")
        self._f0_fn: Callable[[float], Any] | None = F0 if callable(F0) else None
        f0_first = np.asarray(F0(t0) if callable(F0) else F0, dtype=float).reshape(-1)
        d = int(dim if dim is not None else f0_first.size)
        if d < 1:
            raise UsageError("cannot infer the dimension d; pass dim=... or a non-empty F0")
        # F1 and F2 are parsed and applied by QuadraticMap (G0 unused: F0 may depend on t).
        self.qmap = QuadraticMap(np.zeros(d), F1, F2, dim=d)
        self.d = d
        self._f0_const = None if callable(F0) else self._check_f0(f0_first, "F0")
        self._check_f0(f0_first, "F0(t0)")
        self.order = int(order)
        self.h = float(h)
        self.t0 = float(t0)
        self.steps = None if steps is None else int(steps)
        self.level_dims = [self.d**j for j in range(1, self.order + 1)]
        self.dim = int(sum(self.level_dims))
        self._offsets = np.concatenate([[0], np.cumsum(self.level_dims)]).astype(int)
        # A lifted state, A·y and a few temporaries per level.
        check_memory(
            8.0 * 4 * self.dim,
            f"the order-{self.order} lifted state (D_N = {self.dim:,})",
            memory_limit,
        )
        self.memory_limit = memory_limit
        self._norms: dict[str, float] | None = None
        self.scale = self._resolve_scale(scale)
        self._smap = self.qmap.scaled(self.scale) if self.scale != 1.0 else self.qmap
        # Small d: keep F1 and γF2 dense (d×d, d×d²) for batched products (any input form).
        self._dense: tuple[Array, Array] | None = None
        if self.d <= _DENSE_D:
            F1d, F2d = self._dense_coefficients()
            self._dense = (F1d, self.scale * F2d)

    # -- coefficients --------------------------------------------------------------------
    def _check_f0(self, v: Array, name: str) -> Array:
        if v.shape != (self.d,):
            raise UsageError(f"{name} has shape {v.shape} but the system needs ({self.d},)")
        check_finite(name, v)
        return v

    def time(self, k: int) -> float:
        """t_k = t0 + k·h, the time at which Euler step k evaluates F0."""
        return self.t0 + k * self.h

    def f0(self, t: float) -> Array:
        """F0(t) in original units, shape (d,)."""
        if self._f0_const is not None:
            return self._f0_const
        assert self._f0_fn is not None  # set whenever F0 is not a constant
        v = np.asarray(self._f0_fn(t), dtype=np.float64).reshape(-1)
        return self._check_f0(v, f"F0({t:g})")

    def vector_field(self, t: float, u: Array) -> Array:
        """F0(t) + F1 u + F2(u⊗u) (the PNAS problem), original units; solve_ivp-compatible."""
        u = np.asarray(u, dtype=float)
        return self.f0(t) + self.qmap.g1(0, u) + self.qmap.g2(0, u, u)

    def euler(self, u0: Array, steps: int) -> Array:
        """Direct forward Euler on the ODE: u_{k+1} = u_k + h f(t_k, u_k), shape (steps+1, d)."""
        self._check_steps(steps)
        u = self._check_u0(u0)
        out = np.empty((steps + 1, self.d))
        out[0] = u
        for k in range(steps):
            u = u + self.h * self.vector_field(self.time(k), u)
            out[k + 1] = u
        return out

    # -- lifted vectors ------------------------------------------------------------------
    def lift(self, u0: Array) -> Array:
        """ŷ(0): levels (u0/γ)^{⊗j}, j = 1..N, flattened (C order), length D_N."""
        u = self._check_u0(u0) / self.scale
        out = np.empty(self.dim)
        level = np.ones(1)
        for j in range(1, self.order + 1):
            level = np.multiply.outer(level, u).reshape(-1)
            out[self._offsets[j - 1] : self._offsets[j]] = level
        return out

    def level(self, y: Array, j: int) -> Array:
        """The level-j block of a flat lifted vector (scaled units), length d^j."""
        if not 1 <= j <= self.order:
            raise UsageError(f"level j = {j} does not exist; use 1 ≤ j ≤ N = {self.order}")
        y = self._check_y(y)
        return y[self._offsets[j - 1] : self._offsets[j]]

    def forcing(self, t: float) -> Array:
        """b(t) = (F0(t)/γ, 0, …, 0), the inhomogeneity of dŷ/dt = A(t)ŷ + b(t) (PNAS)."""
        b = np.zeros(self.dim)
        b[: self.d] = self.f0(t) / self.scale
        return b

    def generator(self, t: float, y: Array) -> Array:
        r"""A(t) y by structured contractions (PNAS Carleman matrix), scaled units.

        (A y)_j = Σ_i F1 on axis i of y_j + Σ_i F2 on axes (i, i+1) of y_{j+1} (j < N)
        + Σ_i F0(t) inserted at axis i of y_{j−1} (j > 1)."""
        y = self._check_y(y)
        with _small_blas(self.d):
            return self._generator(self.f0(t) / self.scale, y)

    def _generator(self, f0: Array, y: Array) -> Array:
        d, N = self.d, self.order
        out = np.empty(self.dim)
        for j in range(1, N + 1):
            acc = np.zeros(d**j)
            yj = y[self._offsets[j - 1] : self._offsets[j]]
            for i in range(j):  # F1 on axis i of level j
                acc += self._on_axes(1, yj, d**i, d ** (j - 1 - i))
            if j < N:  # F2 on axes (i, i+1) of level j+1
                yn = y[self._offsets[j] : self._offsets[j + 1]]
                for i in range(j):
                    acc += self._on_axes(2, yn, d**i, d ** (j - 1 - i))
            if j > 1:  # F0 inserted at axis i of level j−1
                yp = y[self._offsets[j - 2] : self._offsets[j - 1]]
                for i in range(j):
                    a, b = d**i, d ** (j - 1 - i)
                    acc += (yp.reshape(a, 1, b) * f0.reshape(1, d, 1)).reshape(-1)
            out[self._offsets[j - 1] : self._offsets[j]] = acc
        return out

    def _on_axes(self, k: int, Y: Array, a: int, b: int) -> Array:
        """F_k (k = 1: F1 on one axis; k = 2: γF2 on two consecutive axes) applied to the flat
        level tensor Y viewed as (a, d^k, b); returns the flat (a, d, b) result."""
        d, m = self.d, self.d**k
        M = self._dense[k - 1] if self._dense is not None else None
        if M is not None:  # batched products, no transposes
            if a == 1:
                return (M @ Y.reshape(m, b)).reshape(-1)
            if b == 1:
                return (Y.reshape(a, m) @ M.T).reshape(-1)
            return np.matmul(M, Y.reshape(a, m, b)).reshape(-1)
        Z = np.moveaxis(Y.reshape(a, m, b), 1, 0).reshape((d,) * k + (a * b,))
        W = self._smap.g1(0, Z) if k == 1 else self._smap.g2_contract(0, Z)
        return np.moveaxis(W.reshape(d, a, b), 0, 1).reshape(-1)

    # -- lifted-step protocol (HistorySystem) --------------------------------------------
    def apply(self, k: int, y: Array) -> Array:
        """(I + h A(t_k)) y: the homogeneous part of Euler step k (PNAS, forward Euler)."""
        y = self._check_y(y)
        return y + self.h * self.generator(self.time(k), y)

    def rhs(self, k: int) -> Array:
        """h b(t_k): the inhomogeneous part of Euler step k."""
        return self.h * self.forcing(self.time(k))

    def step(self, k: int, y: Array) -> Array:
        """One lifted Euler step ŷ(k+1) = (I + hA(t_k)) ŷ(k) + h b(t_k)."""
        out = self.apply(k, y)
        out[: self.d] += self.h * self.f0(self.time(k)) / self.scale
        return out

    def iterate(self, u0: Array, steps: int) -> Array:
        """Lifted Euler trajectory, level 1 in original units (γ·ŷ1(k)), shape (steps+1, d)."""
        self._check_steps(steps)
        y = self.lift(u0)
        out = np.empty((steps + 1, self.d))
        out[0] = self.scale * y[: self.d]
        for k in range(steps):
            y = self.step(k, y)
            out[k + 1] = self.scale * y[: self.d]
        return out

    def history(self, u0: Array, steps: int, idle: int = 0):
        """The PNAS linear system of `steps` Euler steps plus `idle` copies (PNAS), as
        the discrete :class:`~qcarleman.carleman.history.HistorySystem` (ALGORITHM.md §3)."""
        self._check_steps(steps)
        return HistorySystem(self, self.lift(u0), int(steps), idle=idle)

    # -- matrices and norms --------------------------------------------------------------
    def _dense_coefficients(self) -> tuple[Array, Array]:
        """F1 (d×d) and F2 (d×d²) as dense arrays, original units (memory checked by dense())."""
        _, F1, F2 = self.qmap.dense(0)
        return F1, F2.reshape(self.d, self.d * self.d)

    def generator_matrix(self, t: float = 0.0, memory_limit: int | str | None = None):
        """A(t) as a scipy.sparse CSR matrix (D_N × D_N), scaled units (PNAS Carleman matrix)."""
        d, N = self.d, self.order
        F1, F2 = self._dense_coefficients()
        F1s, F2s = sp.csr_matrix(F1), sp.csr_matrix(self.scale * F2)
        f0 = sp.csr_matrix((self.f0(t) / self.scale).reshape(d, 1))
        nnz = self._nnz(F1s.nnz, F2s.nnz, f0.nnz)
        # CSR (8-byte value + 4-byte index) plus the COO/Kronecker temporaries (about 3×).
        check_memory(
            36.0 * nnz + 8.0 * self.dim,
            f"the {self.dim:,}² Carleman matrix",
            memory_limit if memory_limit is not None else self.memory_limit,
        )

        def sum_kron(F: sp.csr_matrix, j: int) -> sp.csr_matrix:
            return sum(
                sp.kron(sp.kron(sp.identity(d**i, format="csr"), F), sp.identity(d ** (j - 1 - i)))
                for i in range(j)
            ).tocsr()

        blocks: list[list[Any]] = [[None] * N for _ in range(N)]
        for j in range(1, N + 1):
            blocks[j - 1][j - 1] = sum_kron(F1s, j)
            if j < N:
                blocks[j - 1][j] = sum_kron(F2s, j)
            if j > 1:
                blocks[j - 1][j - 2] = sum_kron(f0, j)
        return sp.bmat(blocks, format="csr")

    def _nnz(self, nnz1: int, nnz2: int, nnz0: int) -> int:
        """Nonzeros of A: level j holds j·d^(j−1) copies of each of F1, F2 (j < N), F0 (j > 1)."""
        N, d = self.order, self.d
        return sum(
            j * d ** (j - 1) * (nnz1 + (nnz2 if j < N else 0) + (nnz0 if j > 1 else 0))
            for j in range(1, N + 1)
        )

    def matrix_nnz(self, k: int = 0) -> int:
        """Upper bound on the nonzeros of I + hA(t_k), predicted without assembling it."""
        F1, F2 = self._dense_coefficients()
        nnz0 = int(np.count_nonzero(self.f0(self.time(k))))
        return self._nnz(int(np.count_nonzero(F1)), int(np.count_nonzero(F2)), nnz0) + self.dim

    @property
    def time_dependent(self) -> bool:
        """Whether A(t) changes with t (F0 is a callable)."""
        return self._f0_fn is not None

    def matrix(self, k: int = 0, memory_limit: int | str | None = None) -> sp.csr_matrix:
        """I + h A(t_k) as CSR: the matrix of the homogeneous part of Euler step k."""
        A = self.generator_matrix(self.time(k), memory_limit)
        return (sp.identity(self.dim, format="csr") + self.h * A).tocsr()

    def norms(self) -> dict[str, float]:
        """‖F1‖₂, ‖F2‖₂ (as a d×d² matrix) and Re λ1 (largest real part of the nonzero
        eigenvalues of F1), original units, from the dense coefficients (PNAS definitions)."""
        if self._norms is None:
            F1, F2 = self._dense_coefficients()
            n1 = float(np.linalg.norm(F1, 2))
            n2 = float(np.linalg.norm(F2, 2))
            eig = np.linalg.eigvals(F1)
            nonzero = eig[np.abs(eig) > 1e-12 * max(n1, 1e-300)]
            lam1 = float(np.max(nonzero.real)) if nonzero.size else 0.0
            self._norms = {"F1": n1, "F2": n2, "lambda1": lam1}
        return self._norms

    def f0_max(self, steps: int | None = None) -> float:
        """max_k ‖F0(t_k)‖ over k = 0..steps (the given steps, else those of the constructor)."""
        if self._f0_const is not None:
            return float(np.linalg.norm(self._f0_const))
        steps = self.steps if steps is None else steps
        if steps is None:
            raise UsageError(
                "F0 depends on time, so max‖F0(t)‖ needs the horizon; pass steps=... "
                "(number of Euler steps)"
            )
        return max(float(np.linalg.norm(self.f0(self.time(k)))) for k in range(steps + 1))

    def norm_bound(self, k: int = 0) -> float:
        """Upper bound on ‖I + hA(t_k)‖₂: 1 + h(N‖F1‖ + (N−1)γ‖F2‖ + N‖F0(t_k)‖/γ).

        Each Σ_i I⊗…⊗F⊗…⊗I on level j has norm ≤ j‖F‖, and a block matrix with one block
        diagonal and one block off-diagonal per row has norm ≤ the sum of the largest of each."""
        n = self.norms()
        N, g = self.order, self.scale
        f0 = float(np.linalg.norm(self.f0(self.time(k))))
        A = N * n["F1"] + (N - 1) * g * n["F2"] + (N * f0 / g if N > 1 else 0.0)
        return 1.0 + self.h * A

    def _resolve_scale(self, scale: float | str | None) -> float:
        if scale is None:
            return 1.0
        if isinstance(scale, str):
            if scale != "auto":
                raise UsageError(f"scale {scale!r} is unknown; use a number, None or 'auto'")
            f0, f2 = self.f0_max(), self.norms()["F2"]
            return math.sqrt(f0 / f2) if f0 > 0 and f2 > 0 else 1.0
        g = float(scale)
        if not (np.isfinite(g) and g > 0):
            raise UsageError(f"scale γ = {scale} is invalid; use a finite γ > 0")
        return g

    # -- PNAS diagnostics ----------------------------------------------------------------
    def diagnostics(self, u0: Array, steps: int | None = None, warn: bool = True) -> dict:
        r"""The PNAS quantities (Liu et al. 2021: R, r± and the Euler step bound), original units.

        * λ1: largest real part of the nonzero eigenvalues of F1 (zero eigenvalues, e.g. from
          Dirichlet boundary rows, are excluded);
        * R = (‖u0‖‖F2‖ + max_t‖F0(t)‖/‖u0‖)/|λ1|  (PNAS; convergence proved for R < 1);
        * r± = (|λ1| ± √(λ1² − 4‖F2‖‖F0‖))/(2‖F2‖), the roots of ‖F2‖r² − |λ1|r + ‖F0‖ = 0
          (None when the discriminant is negative; r₊ = ∞ when F2 = 0);
        * the Euler step condition h ≤ 1/(N‖F1‖) (PNAS, forward Euler);
        * ‖F0‖/γ + γ‖F2‖ < |λ1| (the PNAS condition on the rescaled coefficients); a
          :class:`CarlemanDiagnosticWarning` is issued when it fails and ``warn`` is true.
        """
        u = self._check_u0(u0)
        n = self.norms()
        lam1 = n["lambda1"]
        f0, f2, u_norm = self.f0_max(steps), n["F2"], float(np.linalg.norm(u))
        if lam1 >= 0:
            R = math.inf
        else:
            R = (u_norm * f2 + (f0 / u_norm if u_norm > 0 else math.inf)) / abs(lam1)
        disc = lam1**2 - 4 * f2 * f0
        if f2 == 0:
            r_minus, r_plus = (f0 / abs(lam1) if lam1 < 0 else None), math.inf
        elif disc < 0 or lam1 >= 0:
            r_minus = r_plus = None
        else:
            r_minus = (abs(lam1) - math.sqrt(disc)) / (2 * f2)
            r_plus = (abs(lam1) + math.sqrt(disc)) / (2 * f2)
        h_max = 1.0 / (self.order * n["F1"]) if n["F1"] > 0 else math.inf
        lhs = f0 / self.scale + self.scale * f2
        condition = lam1 < 0 and lhs < abs(lam1)
        if warn and not condition:
            warnings.warn(
                f"‖F0‖/γ + γ‖F2‖ = {lhs:.4g} ≥ |Re λ1| = {abs(lam1):.4g}: the PNAS convergence "
                "condition fails, so Carleman convergence is not guaranteed",
                CarlemanDiagnosticWarning,
                stacklevel=2,
            )
        return {
            "lambda1": lam1,
            "norm_F0_max": f0,
            "norm_F1": n["F1"],
            "norm_F2": f2,
            "norm_u0": u_norm,
            "R": R,
            "discriminant": disc,
            "r_minus": r_minus,
            "r_plus": r_plus,
            "scale": self.scale,
            "h": self.h,
            "h_max": h_max,
            "step_condition": self.h <= h_max,
            "condition_lhs": lhs,
            "dissipation_condition": bool(condition),
        }

    # -- validation ----------------------------------------------------------------------
    def _check_u0(self, u0: Array) -> Array:
        u = np.asarray(u0, dtype=float).reshape(-1)
        if u.shape != (self.d,):
            raise UsageError(f"u0 has shape {u.shape} but the system needs ({self.d},)")
        check_finite("u0", u)
        return u

    def _check_y(self, y: Array) -> Array:
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape != (self.dim,):
            raise UsageError(
                f"lifted vector has length {y.size} but D_N = {self.dim}; use lift() to build one"
            )
        return y

    def _check_steps(self, steps: int) -> None:
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise UsageError(f"steps = {steps} is invalid; use an integer ≥ 1")

    def __repr__(self) -> str:
        return (
            f"ContinuousCarleman(d={self.d}, N={self.order}, D_N={self.dim:,}, h={self.h:g}, "
            f"γ={self.scale:g})"
        )
