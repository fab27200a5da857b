r"""Discrete Carleman linearization of a quadratic map (ALGORITHM.md §2).

For z' = G0 + G1 z + G2 (z⊗z) in dimension d, the lift y_j = z^{⊗j} (j = 1..N) obeys
y_j' = Σ_{k=0}^{2j} B_{j,k} y_k with

    B_{j,k} = Σ_{a ∈ {0,1,2}^j, a_1+…+a_j = k} G_{a_1} ⊗ … ⊗ G_{a_j}        (ALGORITHM.md §2)

(mixed-product rule on (G0 + G1 z + G2 z⊗z)^{⊗j}; G0 is d×1). Truncating every k > N gives the
affine system ŷ(t+1) = A(t) ŷ(t) + b(t), A = (B_{j,k})_{1≤j,k≤N}, b = (G0^{⊗j})_j.

:class:`CarlemanSystem` applies A(t) *structurally*: level tensors are reshaped to (d,)*k and the
factors G1 (one input axis), G2 (two input axes, via ``QuadraticMap.g2_contract``) and G0 (no
input axis, an outer product) are applied one output axis at a time, so no Kronecker product is
ever formed and operator-form maps (Hessian-vector products) work unchanged. By linearity the
G0 factors are inserted last: with c_s = Σ over a ∈ {1,2}^s of G_{a_1}⊗…⊗G_{a_s} y_{Σa}
(the "cores"), level j of A y is Σ_{s ≤ j} Σ_{positions} c_s with G0 placed in the other j − s
output slots. :meth:`CarlemanSystem.matrix` materializes A as a scipy.sparse matrix by
Kronecker assembly, only on request and after predicting nnz and bytes.

Options
-------
* ``scale=γ``: work in z̃ = z/γ, coefficients G0/γ, G1, γG2 (ALGORITHM.md §2, scaling).
  ``"auto"`` picks γ = √(‖G0‖/‖G2‖) (max over steps), the radius r* of ALGORITHM.md §6 (and the
  rescaling of Liu et al., PNAS 118 (2021), arXiv:2011.03185, §"Carleman linearization"): it
  maps the invariant ball of radius r* onto the unit ball and makes ‖G0/γ‖ = ‖γG2‖, so the lifted
  levels stay balanced. γ = 1 when G0 or G2 vanishes (nothing to balance).
* ``symmetric=True``: level j is stored by its C(d+j−1, j) distinct entries, indexed by sorted
  multi-indices I, with weight √m_I (m_I = number of distinct permutations of I). The
  compressed vector is Vᵀy for the isometry V (Vᵀ V = I) onto the symmetric subspace, so norms,
  ‖Y‖ and P_succ are those of the full lift, the level-1 block is unchanged, and the compressed
  matrix is Vᵀ A V. The structural apply expands to full tensors internally (memory of the full
  level tensors is still needed; the saving is in the dimension the linear system has).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import reduce

import numpy as np
import scipy.sparse as sp

from ..dynamics import QuadraticMap
from ..errors import MemoryLimitError, UsageError, check_memory
from .blocks import block_sums, check_overflow, compositions
from .history import HistorySystem

__all__ = ["CarlemanSystem"]

Array = np.ndarray

# Bytes per stored nonzero while assembling a sparse matrix: COO triple (int64, int64, float64)
# plus the CSR copy (float64 data, int64 indices) made by the conversion.
_BYTES_PER_NNZ_ASSEMBLY = 40
# Transient full-size level tensors alive during one structural apply (input, output, cores,
# one contraction result and its transposed copy).
_STATE_COPIES = 6


@dataclass(frozen=True)
class _Stats:
    """Per-step structure of G0, G1, G2 (index 0, 1, 2) of the scaled map: nonzeros, max
    nonzeros per row, max |entry|."""

    nnz: tuple[int, int, int]
    row_nnz: tuple[int, int, int]
    max_abs: tuple[float, float, float]


def _norm2_bound(M: Array | sp.spmatrix) -> float:
    """An upper bound on the spectral norm ‖M‖₂ of a d×m matrix (m ≥ d).

    Exact (√λ_max(M Mᵀ), a d×d Gram matrix) for d ≤ 1000; otherwise the Hölder bound
    ‖M‖₂ ≤ √(‖M‖₁‖M‖_∞) (Golub & Van Loan, Matrix Computations, §2.3.3)."""
    d = M.shape[0]
    if sp.issparse(M):
        M = sp.csr_matrix(M)
        if M.nnz == 0:
            return 0.0
        if d <= 1000:
            gram = (M @ M.T).toarray()
            return float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)))
        A = abs(M)
        return float(np.sqrt(A.sum(axis=0).max() * A.sum(axis=1).max()))
    M = np.asarray(M)
    if d <= 1000:
        return float(np.sqrt(max(np.linalg.eigvalsh(M @ M.T)[-1], 0.0)))
    A = np.abs(M)
    return float(np.sqrt(A.sum(axis=0).max() * A.sum(axis=1).max()))


def _insert_g0(core: Array, g0: Array, pattern: tuple[bool, ...], d: int) -> Array:
    """The level tensor with the core's axes at the True slots and G0 at the False slots."""
    out = core.reshape([d if p else 1 for p in pattern])
    for i, p in enumerate(pattern):
        if not p:
            shape = [1] * len(pattern)
            shape[i] = d
            out = out * g0.reshape(shape)
    return out.reshape(-1)


class _SymmetricLevel:
    """Index tables of the symmetric subspace of level j (sorted multi-indices, §2).

    ``full_to_sym[f]``: compressed index of the sorted version of full index f;
    ``mult[I]``: m_I, the number of full indices in the orbit of I."""

    def __init__(self, d: int, j: int):
        idx = np.indices((d,) * j, dtype=np.int64).reshape(j, -1)
        srt = np.sort(idx, axis=0)
        sorted_flat = np.ravel_multi_index(tuple(srt), (d,) * j)
        canonical = np.flatnonzero(sorted_flat == np.arange(d**j))
        self.full_to_sym = np.searchsorted(canonical, sorted_flat)
        self.mult = np.bincount(self.full_to_sym).astype(float)
        self.sqrt_mult = np.sqrt(self.mult)
        self.size = canonical.size

    def compress(self, y: Array) -> Array:
        """Vᵀ y = (1/√m_I) Σ_{f ∈ orbit(I)} y_f."""
        return np.bincount(self.full_to_sym, weights=y, minlength=self.size) / self.sqrt_mult

    def expand(self, c: Array) -> Array:
        """V c: entry f is c_I/√m_I for I = sort(f)."""
        return (c / self.sqrt_mult)[self.full_to_sym]

    def isometry(self) -> sp.csr_matrix:
        """V as a sparse d^j × C(d+j−1, j) matrix."""
        n = self.full_to_sym.size
        return sp.csr_matrix(
            (1.0 / self.sqrt_mult[self.full_to_sym], (np.arange(n), self.full_to_sym)),
            shape=(n, self.size),
        )


class CarlemanSystem:
    r"""The order-N discrete Carleman lift of a :class:`~qcarleman.dynamics.QuadraticMap` (§2).

    ŷ(t+1) = A(t) ŷ(t) + b(t) on ŷ = (ŷ_1, …, ŷ_N), ŷ_j ≈ (z/γ)^{⊗j}; flat vectors of length
    D_N = Σ_j d^j (or Σ_j C(d+j−1, j) with ``symmetric=True``), levels in order j = 1..N.

    Parameters
    ----------
    qmap: the map z' = G0 + G1 z + G2 (z⊗z).
    order: N ≥ 1 (N = 1 is linearized GD; exact at every N when G2 = 0).
    scale: γ (float > 0), ``"auto"`` (γ = √(‖G0‖/‖G2‖), see the module docstring) or None (1).
    symmetric: store each level on the symmetric subspace (module docstring).
    memory_limit: default memory limit for allocations (bytes or "8G"; None: see
        :func:`qcarleman.errors.memory_limit`). Nothing is allocated at construction, so the
        dimensions of huge systems can be queried freely.
    """

    def __init__(
        self,
        qmap: QuadraticMap,
        order: int,
        scale: float | str | None = None,
        symmetric: bool = False,
        memory_limit: int | str | None = None,
    ):
        if not isinstance(qmap, QuadraticMap):
            raise UsageError(
                f"CarlemanSystem needs a QuadraticMap, got {type(qmap).__name__}; "
                "wrap the coefficients with qcarleman.QuadraticMap(G0, G1, G2)"
            )
        if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
            raise UsageError(f"Carleman order N = {order!r} is invalid; use an integer N ≥ 1")
        self.qmap = qmap
        self.order = int(order)
        self.d = qmap.dim
        self.symmetric = bool(symmetric)
        self.memory_limit = memory_limit
        self._explicit_cache: dict[tuple[int, bool], tuple[Array, sp.csr_matrix, sp.csr_matrix]]
        self._explicit_cache = {}
        self._stats_cache: dict[int, _Stats] = {}
        self._norm_cache: dict[int, tuple[float, float, float]] = {}
        self._rhs_cache: dict[int, Array] = {}
        self._sym: dict[int, _SymmetricLevel] = {}
        if scale is None:
            gamma = 1.0
        elif isinstance(scale, str):
            if scale != "auto":
                raise UsageError(f"scale {scale!r} is not understood; use a float γ > 0 or 'auto'")
            gamma = self._auto_scale()
        else:
            gamma = float(scale)
        if not np.isfinite(gamma) or gamma <= 0:
            raise UsageError(f"scale γ = {scale} is invalid; use a finite γ > 0 or 'auto'")
        self.scale = gamma
        self._map = qmap if gamma == 1.0 else qmap.scaled(gamma)

    # -- dimensions ------------------------------------------------------------------------
    @property
    def level_dims(self) -> list[int]:
        """Dimension of each level j = 1..N: d^j, or C(d+j−1, j) when symmetric (§2)."""
        d = self.d
        if self.symmetric:
            return [math.comb(d + j - 1, j) for j in range(1, self.order + 1)]
        return [d**j for j in range(1, self.order + 1)]

    @property
    def dim(self) -> int:
        """D_N = Σ_j level_dims[j] (ALGORITHM.md §2)."""
        return sum(self.level_dims)

    @property
    def full_dim(self) -> int:
        """Σ_j d^j: the size of the level tensors the structural apply works on."""
        return sum(self.d**j for j in range(1, self.order + 1))

    @property
    def time_dependent(self) -> bool:
        return self.qmap.time_dependent

    @property
    def _offsets(self) -> list[int]:
        return [0, *itertools.accumulate(self.level_dims)]

    def level(self, y: Array, j: int) -> Array:
        """The level-j block (1 ≤ j ≤ N) of a flat vector y of length D_N."""
        if not 1 <= j <= self.order:
            raise UsageError(f"level j = {j} is outside 1..N = 1..{self.order}")
        y = self._check_vector(y, "y")
        off = self._offsets
        return y[off[j - 1] : off[j]]

    # -- lifted vectors --------------------------------------------------------------------
    def lift(self, z0: Array) -> Array:
        """ŷ(0): the levels (z0/γ)^{⊗j}, j = 1..N, flattened and concatenated (§2)."""
        z = self.qmap._check_state(z0) / self.scale
        self._check_state_memory("the lifted state")
        return self._pack(self._powers(z))

    def rhs(self, t: int) -> Array:
        """b(t) = (G0(t)^{⊗j})_j, the k = 0 blocks B_{j,0} (§2), in scaled units."""
        key = self._map._index(t)
        if key not in self._rhs_cache:
            self._check_state_memory("the Carleman right-hand side b(t)")
            b = self._pack(self._powers(self._map.g0(t)))
            b.flags.writeable = False
            # Keep b only for time-independent maps (one vector); per-step maps recompute.
            if self.time_dependent:
                return b
            self._rhs_cache[key] = b
        return self._rhs_cache[key]

    def apply(self, t: int, y: Array) -> Array:
        """A(t) y, structurally (module docstring): no Kronecker product is formed."""
        y = self._check_vector(y, "y")
        return self._pack(self._apply_levels(t, self._unpack(y)))

    def iterate(self, z0: Array, T: int) -> Array:
        """The level-1 trajectory γ·ŷ_1(t), t = 0..T, shape (T+1, d), in original units."""
        self.qmap.check_horizon(T)
        y = self.lift(z0)
        out = np.empty((T + 1, self.d))
        out[0] = self.scale * self.level(y, 1)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            for t in range(T):
                y = self.apply(t, y)
                y += self.rhs(t)
                check_overflow(y, t)
                out[t + 1] = self.scale * self.level(y, 1)
        return out

    def history(self, z0: Array, T: int, idle: int = 0):
        """The history linear system L Y = c of §3 for horizon T with p = ``idle`` idle copies."""
        self.qmap.check_horizon(T)
        return HistorySystem(self, self.lift(z0), T, idle=idle)

    # -- structural apply ------------------------------------------------------------------
    def _powers(self, v: Array) -> list[Array]:
        """v^{⊗j} flattened, j = 1..N."""
        out = [v]
        for _ in range(1, self.order):
            out.append(np.multiply.outer(out[-1], v).reshape(-1))
        return out

    def _apply_levels(self, t: int, levels: list[Array]) -> list[Array]:
        """A(t) on full level tensors (flat, row-major (d,)*k), ALGORITHM.md §2."""
        d, N, qm = self.d, self.order, self._map
        cores: list[Array | None] = [None] * (N + 1)
        # Depth-first over a ∈ {1,2}^s; a stack item (X, r, s) holds (d,)*r unconsumed input
        # axes followed by s output axes (flat, row-major). An explicit stack, not a recursive
        # closure: a closure cycle would keep every intermediate tensor alive until gc runs.
        stack = [(x, k, 0) for k, x in enumerate(levels, start=1) if np.any(x)]
        while stack:
            X, r, s = stack.pop()
            if r == 0:
                if cores[s] is not None:
                    cores[s] += X
                elif any(np.may_share_memory(X, x) for x in levels):  # e.g. G1 = identity
                    cores[s] = X.copy()
                else:
                    cores[s] = X  # a fresh array: accumulated into in place
                continue
            if r >= 2:  # a = 2: G2 on the next two input axes
                Y = qm.g2_contract(t, X.reshape(d, d, -1))
                stack.append((np.ascontiguousarray(Y.T).reshape(-1), r - 2, s + 1))
            Y = qm.g1(t, X.reshape(d, -1))  # a = 1: G1 on the next input axis
            stack.append((np.ascontiguousarray(Y.T).reshape(-1), r - 1, s + 1))
            del X, Y
        g0 = qm.g0(t)
        has_g0 = bool(np.any(g0))
        out: list[Array] = [np.empty(0)] * N
        for j in range(N, 0, -1):  # descending: level j reuses cores[j] after levels > j used it
            core_j = cores[j]
            acc = np.zeros(d**j) if core_j is None else core_j
            for s in range(1, j if has_g0 else 0):
                core_s = cores[s]
                if core_s is None:
                    continue
                for slots in itertools.combinations(range(j), s):
                    pattern = tuple(i in slots for i in range(j))
                    acc += _insert_g0(core_s, g0, pattern, d)
            out[j - 1] = acc
        return out

    # -- packing (full or symmetric basis) -------------------------------------------------
    def _sym_level(self, j: int) -> _SymmetricLevel:
        if j not in self._sym:
            check_memory(
                8.0 * (j + 4) * self.d**j,
                f"symmetric index tables of level {j} (d = {self.d})",
                self.memory_limit,
            )
            self._sym[j] = _SymmetricLevel(self.d, j)
        return self._sym[j]

    def _pack(self, levels: list[Array]) -> Array:
        if self.symmetric:
            levels = [self._sym_level(j).compress(x) for j, x in enumerate(levels, start=1)]
        return np.concatenate(levels)

    def _unpack(self, y: Array) -> list[Array]:
        off = self._offsets
        blocks = [y[off[j - 1] : off[j]] for j in range(1, self.order + 1)]
        if self.symmetric:
            blocks = [self._sym_level(j).expand(b) for j, b in enumerate(blocks, start=1)]
        return blocks

    def _check_vector(self, y: Array, name: str) -> Array:
        y = np.asarray(y, dtype=float)
        if y.shape != (self.dim,):
            raise UsageError(
                f"{name} has shape {y.shape} but this order-{self.order} Carleman system needs "
                f"a flat vector of length D_N = {self.dim}; build it with lift()"
            )
        return y

    def _check_state_memory(self, what: str, limit: int | str | None = None) -> None:
        check_memory(
            8.0 * _STATE_COPIES * self.full_dim,
            f"{what} (order N = {self.order}, d = {self.d}, {self.full_dim} full entries)",
            limit if limit is not None else self.memory_limit,
        )

    # -- explicit coefficients, statistics, bounds -----------------------------------------
    def _explicit(
        self, t: int, scaled: bool = True, memory_limit: int | str | None = None
    ) -> tuple[Array, sp.csr_matrix, sp.csr_matrix]:
        """(G0 (d,), G1 csr d×d, G2 csr d×d²) at step t; operator-form coefficients are
        materialized (memory predicted by ``QuadraticMap.dense``)."""
        qm = self._map if scaled else self.qmap
        i = qm._index(t)
        key = (i, scaled)
        if key not in self._explicit_cache:
            d = self.d
            lin, bil = qm._g1[i], qm._g2[i]  # coefficient holders of QuadraticMap (dynamics.py)
            if lin.matrix is None or (bil.tensor is None and bil.matrix is None):
                _, G1d, G2d = qm.dense(t, memory_limit or self.memory_limit)
                G1, G2 = sp.csr_matrix(G1d), sp.csr_matrix(G2d.reshape(d, d * d))
            else:
                G1 = sp.csr_matrix(lin.matrix)
                if bil.matrix is not None:
                    G2 = sp.csr_matrix(bil.matrix)
                else:
                    assert bil.tensor is not None  # the branch above took maps with neither
                    G2 = sp.csr_matrix(bil.tensor.reshape(d, d * d))
            G1.eliminate_zeros()
            G2.eliminate_zeros()
            self._explicit_cache[key] = (qm.g0(t), G1, G2)
        return self._explicit_cache[key]

    def _auto_scale(self) -> float:
        n0 = n2 = 0.0
        for t in range(self.qmap.horizon or 1):
            try:
                g0, _, G2 = self._explicit(t, scaled=False)
            except MemoryLimitError as exc:
                raise MemoryLimitError(
                    f"scale='auto' needs the explicit G2 of this operator-form map: {exc}; "
                    "or pass scale=<float>"
                ) from None
            n0, n2 = max(n0, float(np.linalg.norm(g0))), max(n2, _norm2_bound(G2))
        self._explicit_cache.clear()
        return math.sqrt(n0 / n2) if n0 > 0 and n2 > 0 else 1.0

    def _stats(self, t: int) -> _Stats:
        i = self._map._index(t)
        if i not in self._stats_cache:
            g0, G1, G2 = self._explicit(t)
            nz0 = int(np.count_nonzero(g0))

            def row_max(M: sp.csr_matrix) -> int:
                return int(np.diff(M.indptr).max()) if M.shape[0] else 0

            def abs_max(M: sp.csr_matrix) -> float:
                return float(abs(M.data).max()) if M.nnz else 0.0

            self._stats_cache[i] = _Stats(
                nnz=(nz0, G1.nnz, G2.nnz),
                row_nnz=(min(nz0, 1), row_max(G1), row_max(G2)),
                max_abs=(float(np.abs(g0).max()), abs_max(G1), abs_max(G2)),
            )
        return self._stats_cache[i]

    def _norms(self, t: int) -> tuple[float, float, float]:
        """Upper bounds on ‖G0‖, ‖G1‖₂, ‖G2‖₂ (d×d²) of the scaled map at step t."""
        i = self._map._index(t)
        if i not in self._norm_cache:
            g0, G1, G2 = self._explicit(t)
            self._norm_cache[i] = (float(np.linalg.norm(g0)), _norm2_bound(G1), _norm2_bound(G2))
        return self._norm_cache[i]

    def norm_bound(self, t: int = 0) -> float:
        r"""Upper bound on ‖A(t)‖₂: the 2-norm of the N×N matrix of block bounds
        ‖B_{j,k}‖ ≤ Σ_a Π ‖G_{a_i}‖ (§2; ‖X⊗Y‖ = ‖X‖‖Y‖, and a block matrix's norm is at most
        the norm of its matrix of block norms). Valid for the symmetric basis too (‖VᵀAV‖ ≤
        ‖A‖)."""
        M = block_sums(self._norms(t), self.order, sum)
        return float(np.linalg.norm(M, 2))

    def matrix_nnz(self, t: int = 0) -> int:
        """Predicted nonzeros of matrix(t): Σ over compositions of Π nnz(G_{a_i}), an upper
        bound (nnz(X⊗Y) = nnz(X)·nnz(Y); terms of one block may overlap)."""
        return int(block_sums(self._stats(t).nnz, self.order, sum).sum())

    def row_sparsity(self, t: int = 0) -> int:
        """Upper bound on the nonzeros in any row of A(t): max_j Σ_k Σ_a Π rownnz(G_{a_i})."""
        return int(block_sums(self._stats(t).row_nnz, self.order, sum).sum(axis=1).max())

    def max_entry(self, t: int = 0) -> float:
        r"""Upper bound on max |A(t)_{IJ}|: max_{j,k} Σ_a Π max|G_{a_i}| (entries of different
        blocks do not add). In the symmetric basis an entry of VᵀAV is
        √(m_I/m_J)·Σ_{orbit(J)} A_{IJ'}, at most √(j!k!) times that."""
        M = block_sums(self._stats(t).max_abs, self.order, sum)
        if self.symmetric:
            N = self.order
            fact = np.sqrt(
                [
                    [math.factorial(j) * math.factorial(k) for k in range(1, N + 1)]
                    for j in range(1, N + 1)
                ]
            )
            M = M * fact
        return float(M.max())

    def matrix(self, t: int = 0, memory_limit: int | str | None = None) -> sp.csr_matrix:
        """A(t) as scipy.sparse CSR by Kronecker assembly of the B_{j,k} (§2), D_N × D_N.

        nnz and bytes are predicted first (:meth:`matrix_nnz`); symmetric: Vᵀ A V."""
        limit = memory_limit if memory_limit is not None else self.memory_limit
        nnz = self.matrix_nnz(t)
        check_memory(
            _BYTES_PER_NNZ_ASSEMBLY * nnz + 16.0 * self.full_dim,
            f"the sparse Carleman matrix A (order N = {self.order}, d = {self.d}, "
            f"≤ {nnz} nonzeros)",
            limit,
        )
        g0, G1, G2 = self._explicit(t, memory_limit=limit)
        G = (sp.csr_matrix(g0.reshape(-1, 1)), G1, G2)
        N, d = self.order, self.d
        off = [0, *itertools.accumulate(d**j for j in range(1, N + 1))]
        rows, cols, vals = [], [], []
        for j in range(1, N + 1):
            for k, comps in compositions(j, N).items():
                for a in comps:
                    block = reduce(lambda X, Y: sp.kron(X, Y, format="coo"), (G[i] for i in a))
                    block = sp.coo_matrix(block)
                    rows.append(block.row.astype(np.int64) + off[j - 1])
                    cols.append(block.col.astype(np.int64) + off[k - 1])
                    vals.append(block.data)
        n = off[-1]
        A = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        if self.symmetric:
            V = sp.block_diag([self._sym_level(j).isometry() for j in range(1, N + 1)], "csr")
            A = sp.csr_matrix(V.T @ A @ V)
        A.eliminate_zeros()
        return A

    def __repr__(self) -> str:
        basis = "symmetric" if self.symmetric else "full"
        return (
            f"CarlemanSystem(d={self.d}, N={self.order}, γ={self.scale:.6g}, {basis} basis, "
            f"D_N={self.dim})"
        )
