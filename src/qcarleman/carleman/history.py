r"""The history linear system L Y = c of a lifted (Carleman) system (ALGORITHM.md §3).

Unknown Y = (ŷ(0), …, ŷ(T), ŷ(T+1), …, ŷ(T+p)) with p ≥ 0 idle copies; equations

    ŷ(0) = y_in,   ŷ(t+1) − A(t) ŷ(t) = b(t)  (t < T),   ŷ(t+1) − ŷ(t) = 0  (T ≤ t < T+p).

L is block lower-bidiagonal with identity diagonal blocks, so L⁻¹c is forward iteration. The
QLSA returns |Y⟩ = Y/‖Y‖; measuring the time register in {T..T+p} and the level register at
j = 1 leaves |ŷ_1(T)⟩ with probability P_succ = (p+1)‖ŷ_1(T)‖²/‖Y‖² (§3).

:class:`HistorySystem` works with any ``lifted`` object offering ``.dim``, ``.d``, ``.scale``,
``.apply(t, y)``, ``.rhs(t)``, ``.matrix(t)``, ``.norm_bound(t)`` and ``.level(y, 1)`` (the
discrete :class:`~qcarleman.carleman.discrete.CarlemanSystem` and the continuous-time Carleman
system). Optional extras it uses when present: ``.matrix_nnz(t)`` (predict nnz before
assembly), ``.row_sparsity(t)`` and ``.max_entry(t)`` (structural predictions), and
``.time_dependent`` (False: A(t) is built once).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import UsageError, check_finite, check_memory
from .blocks import check_overflow, history_norm_bound, inverse_norm_bound

__all__ = ["HistorySystem", "KAPPA_METHODS", "success_probability"]

Array = np.ndarray
KAPPA_METHODS = ("exact", "estimate", "bound")

# Bytes per nonzero of L during assembly (COO triple + CSR copy), and for the LU of "estimate".
_BYTES_PER_NNZ = 40


def success_probability(block_norms2: list[float], output_norm2: float, idle: int) -> float:
    r"""P_succ = (p+1)‖ŷ_1(T)‖²/‖Y‖² with ‖Y‖² = Σ_{t ≤ T} ‖ŷ(t)‖² + p‖ŷ(T)‖² (§3: the p idle
    copies repeat ŷ(T)), from ``block_norms2[t]`` = ‖ŷ(t)‖² (t = 0..T, all levels) and
    ``output_norm2`` = ‖ŷ_1(T)‖²; 0 when Y = 0."""
    Y2 = sum(block_norms2) + idle * block_norms2[-1]
    return float((idle + 1) * output_norm2 / Y2) if Y2 > 0 else 0.0


class HistorySystem:
    r"""L Y = c for T steps of ŷ(t+1) = A(t)ŷ(t) + b(t) plus p idle copies (ALGORITHM.md §3).

    Parameters
    ----------
    lifted: the lifted system (see the module docstring).
    y_in: ŷ(0), a flat vector of length ``lifted.dim`` (e.g. ``CarlemanSystem.lift(z0)``).
    T: horizon, an integer ≥ 1.
    idle: p ≥ 0 idle copies of ŷ(T) (raise P_succ by the factor p+1).
    memory_limit: default memory limit (None: :func:`qcarleman.errors.memory_limit`).
    """

    def __init__(
        self,
        lifted,
        y_in: Array,
        T: int,
        idle: int = 0,
        memory_limit: int | str | None = None,
    ):
        if isinstance(T, bool) or not isinstance(T, int | np.integer) or T < 1:
            raise UsageError(f"horizon T = {T!r} is invalid; use an integer T ≥ 1")
        if isinstance(idle, bool) or not isinstance(idle, int | np.integer) or idle < 0:
            raise UsageError(f"idle steps p = {idle!r} is invalid; use an integer p ≥ 0")
        y_in = np.asarray(y_in, dtype=float)
        if y_in.shape != (lifted.dim,):
            raise UsageError(
                f"y_in has shape {y_in.shape} but the lifted system has dimension {lifted.dim}; "
                "pass the lifted initial state (e.g. CarlemanSystem.lift(z0))"
            )
        check_finite("y_in", y_in)
        self.lifted = lifted
        self.y_in = y_in
        self.T = int(T)
        self.idle = int(idle)
        self.memory_limit = (
            memory_limit if memory_limit is not None else getattr(lifted, "memory_limit", None)
        )
        self._Y: Array | None = None

    # -- sizes -----------------------------------------------------------------------------
    @property
    def d(self) -> int:
        """d, the length of the output ŷ_1(T)."""
        return int(self.lifted.d)

    @property
    def block_dim(self) -> int:
        """D_N, the size of one time block."""
        return int(self.lifted.dim)

    @property
    def dim(self) -> int:
        """(T+p+1)·D_N."""
        return (self.T + self.idle + 1) * self.block_dim

    @property
    def scale(self) -> float:
        """γ of the lifted system (ŷ_1 = z/γ)."""
        return float(self.lifted.scale)

    def _time_steps(self) -> list[int]:
        """The steps t whose A(t) appears in L (one when A does not depend on t)."""
        return [0] if not getattr(self.lifted, "time_dependent", True) else list(range(self.T))

    # -- the linear system ------------------------------------------------------------------
    def rhs(self) -> Array:
        """c = (y_in, b(0), …, b(T−1), 0, …, 0), length (T+p+1)·D_N (§3)."""
        self._check_history_memory("the history right-hand side c")
        D = self.block_dim
        c = np.zeros(self.dim)
        c[:D] = self.y_in
        for t in range(self.T):
            c[(t + 1) * D : (t + 2) * D] = self.lifted.rhs(t)
        return c

    def matrix(self, memory_limit: int | str | None = None) -> sp.csr_matrix:
        """L as scipy.sparse CSR: identity diagonal, −A(t) below block t < T, −I below the
        idle blocks (§3). nnz and bytes are predicted before assembly."""
        limit = memory_limit if memory_limit is not None else self.memory_limit
        D, T, p = self.block_dim, self.T, self.idle
        steps = self._time_steps()
        predict = getattr(self.lifted, "matrix_nnz", None)
        if predict is not None:
            nnz_A = max(int(predict(t)) for t in steps)
            self._check_nnz(nnz_A * T + D * (T + 2 * p + 1), limit)
        A_cache = {}
        rows, cols, vals = [np.arange(self.dim)], [np.arange(self.dim)], [np.ones(self.dim)]
        for t in range(T):
            key = t if len(steps) > 1 else 0
            if key not in A_cache:
                A_cache = {key: sp.coo_matrix(self._lifted_matrix(t, limit))}
                if predict is None and t == 0:
                    self._check_nnz(A_cache[key].nnz * T + D * (T + 2 * p + 1), limit)
            A = A_cache[key]
            rows.append(A.row.astype(np.int64) + (t + 1) * D)
            cols.append(A.col.astype(np.int64) + t * D)
            vals.append(-A.data)
        if p:
            idx = np.arange(p * D, dtype=np.int64)
            rows.append(idx + (T + 1) * D)
            cols.append(idx + T * D)
            vals.append(-np.ones(p * D))
        L = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.dim, self.dim),
        )
        L.eliminate_zeros()
        return L

    def _lifted_matrix(self, t: int, limit) -> sp.spmatrix:
        if limit is None:
            return self.lifted.matrix(t)
        return self.lifted.matrix(t, memory_limit=limit)

    def solve(self) -> Array:
        """Y = L⁻¹c by block forward substitution with the structural A(t) (any size, §3).

        The result is cached and returned read-only."""
        if self._Y is None:
            self._check_history_memory("the history solution Y")
            D, T = self.block_dim, self.T
            Y = np.empty(self.dim)
            y = self.y_in
            Y[:D] = y
            with np.errstate(over="ignore", invalid="ignore"):  # reported by check_overflow
                for t in range(T):
                    y = self.lifted.apply(t, y) + self.lifted.rhs(t)
                    check_overflow(y, t)
                    Y[(t + 1) * D : (t + 2) * D] = y
            for t in range(T, T + self.idle):
                Y[(t + 1) * D : (t + 2) * D] = y
            Y.flags.writeable = False
            self._Y = Y
        return self._Y

    # -- the quantum output -----------------------------------------------------------------
    def state(self) -> Array:
        """|Y⟩ = Y/‖Y‖, the ideal QLSA output (§3, §4 `exact`)."""
        Y = self.solve()
        norm = np.linalg.norm(Y)
        if norm == 0:
            raise UsageError("the history solution Y is zero, so |Y⟩ is undefined; use z0 ≠ 0")
        return Y / norm

    def output_indices(self) -> Array:
        """Positions in Y of ŷ_1(t) for t = T..T+p: the post-selection set (§3)."""
        D = self.block_dim
        level1 = np.asarray(self.lifted.level(np.arange(D, dtype=float), 1)).astype(np.int64)
        return (np.arange(self.T, self.T + self.idle + 1)[:, None] * D + level1[None, :]).ravel()

    def _output_block(self) -> Array:
        D = self.block_dim
        Y = self.solve()
        return np.asarray(self.lifted.level(Y[self.T * D : (self.T + 1) * D], 1))

    def output_state(self) -> Array:
        """|ŷ_1(T)⟩ = ŷ_1(T)/‖ŷ_1(T)‖, the post-selected state (length d)."""
        y1 = self._output_block()
        norm = np.linalg.norm(y1)
        if norm == 0:
            raise UsageError("ŷ_1(T) is zero, so the post-selected state is undefined")
        return y1 / norm

    def output_vector(self) -> Array:
        """γ·ŷ_1(T): the emulated z_T in original units."""
        return self.scale * self._output_block()

    @property
    def success_probability(self) -> float:
        """P_succ: the probability that measuring |Y⟩ lands in :meth:`output_indices`, which
        equals (p+1)‖ŷ_1(T)‖²/‖Y‖² (§3; :func:`success_probability`)."""
        self.state()  # raises on Y = 0
        D, T = self.block_dim, self.T
        blocks = self.solve()[: (T + 1) * D].reshape(T + 1, D)
        out = self._output_block()
        return success_probability([float(b @ b) for b in blocks], float(out @ out), self.idle)

    # -- structure for resource estimates --------------------------------------------------
    def row_sparsity(self) -> int:
        """Max nonzeros per row of L: 1 + max_t row_sparsity(A(t)) (predicted structurally when
        the lifted system offers ``row_sparsity``; else counted on the materialized A)."""
        pred = getattr(self.lifted, "row_sparsity", None)
        if pred is not None:
            s = max(int(pred(t)) for t in self._time_steps())
        else:
            s = max(
                int(np.diff(sp.csr_matrix(self.lifted.matrix(t)).indptr).max())
                for t in self._time_steps()
            )
        return 1 + max(s, 1 if self.idle else 0)

    def max_entry(self) -> float:
        """max |L_ij| = max(1, max_t max|A(t)_ij|) (structural upper bound when the lifted system
        offers ``max_entry``; else read from the materialized A)."""
        pred = getattr(self.lifted, "max_entry", None)
        if pred is not None:
            m = max(float(pred(t)) for t in self._time_steps())
        else:
            m = max(float(abs(self.lifted.matrix(t)).max()) for t in self._time_steps())
        return max(1.0, m)

    # -- condition number ------------------------------------------------------------------
    def kappa(self, method: str = "exact") -> float:
        r"""κ(L) = ‖L‖₂‖L⁻¹‖₂ (§3).

        * ``"exact"``: singular values of the dense L (memory predicted; small systems).
        * ``"estimate"``: Lanczos (``scipy.sparse.linalg.eigsh``) on LᵀL for σ_max and on
          L⁻¹L⁻ᵀ (sparse LU of the triangular L, no fill) for 1/σ_min². Ritz values approach the
          extreme eigenvalues from inside, so the estimate is ≤ the exact κ (to tolerance 1e-8).
        * ``"bound"``: ‖L‖ ≤ 1 + max(max_t‖A(t)‖, 1 if p > 0) and, summing the block
          diagonals of L⁻¹ (block (s+k, s) is A(s+k−1)⋯A(s), idle blocks I),
          ‖L⁻¹‖ ≤ Σ_{k=0}^{T+p} max_s Π_{i=s}^{s+k−1}‖A(i)‖, with ``norm_bound`` for ‖A(t)‖.
        """
        if method == "exact":
            n = self.dim
            check_memory(8.0 * 3 * n * n, f"dense κ of a {n}×{n} history matrix", self.memory_limit)
            sv = np.linalg.svd(self.matrix().toarray(), compute_uv=False)
            return float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
        if method == "estimate":
            return self._kappa_estimate()
        if method == "bound":
            return self._kappa_bound()
        raise UsageError(f"κ method {method!r} is unknown; use one of {', '.join(KAPPA_METHODS)}")

    def _kappa_estimate(self) -> float:
        L = self.matrix()
        n = L.shape[0]
        if n < 3:  # eigsh needs n > k + 1
            return self.kappa("exact")
        self._check_nnz(2 * L.nnz, self.memory_limit)
        Lt = L.T.tocsr()
        gram = spla.LinearOperator((n, n), matvec=lambda x: Lt @ (L @ x), dtype=float)
        lam_max = spla.eigsh(gram, k=1, which="LA", tol=1e-8, return_eigenvectors=False)[0]
        lu = spla.splu(L.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0)
        inv = spla.LinearOperator(
            (n, n), matvec=lambda x: lu.solve(lu.solve(x, trans="T")), dtype=float
        )
        inv_max = spla.eigsh(inv, k=1, which="LA", tol=1e-8, return_eigenvectors=False)[0]
        return float(np.sqrt(lam_max * inv_max))

    def _kappa_bound(self) -> float:
        steps = self._time_steps()
        normA = [float(self.lifted.norm_bound(t)) for t in steps]
        per_step = [normA[t] if len(steps) > 1 else normA[0] for t in range(self.T)]
        return history_norm_bound(normA, self.idle) * inverse_norm_bound(per_step, self.idle)

    # -- memory guards ---------------------------------------------------------------------
    def _check_history_memory(self, what: str) -> None:
        check_memory(
            8.0 * (self.dim + 4 * self.block_dim),
            f"{what} ((T+p+1)·D_N = {self.dim} entries)",
            self.memory_limit,
        )

    def _check_nnz(self, nnz: int, limit) -> None:
        check_memory(
            _BYTES_PER_NNZ * nnz,
            f"the sparse history matrix L (T = {self.T}, p = {self.idle}, ≤ {nnz} nonzeros)",
            limit,
        )

    def __repr__(self) -> str:
        return (
            f"HistorySystem(T={self.T}, p={self.idle}, D_N={self.block_dim}, dim={self.dim}, "
            f"γ={self.scale:.6g})"
        )
