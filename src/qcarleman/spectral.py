r"""Spectral tools for symmetric operators given only by products A·v (ALGORITHM.md §6).

Everything here works on any symmetric operator of dimension n: a NumPy array, a scipy.sparse
matrix, a :class:`scipy.sparse.linalg.LinearOperator` (its ``matmat`` is used for blocks, so a
Hessian operator that batches products — ``LossOperators.linear_operator()`` — is driven one
block per step), or a plain callable ``matvec(v)`` (then pass ``n``).

* :func:`lanczos` — Lanczos with full reorthogonalization for the k largest and k smallest
  eigenvalues (Golub & Van Loan, *Matrix Computations*, 4th ed., Alg. 10.1.1 with complete
  reorthogonalization §10.3.1); stopped by the Ritz residual bound |θ − λ| ≤ β_j |s_{j,i}|
  (ibid. Thm 10.1.4 / Parlett, *The Symmetric Eigenvalue Problem*, Thm 13.1.1), or with
  ``rule="gap"`` by the gap bound of :func:`gap_bounds` (Kato–Temple: |θ − λ| ≤ r²/gap).
* :func:`slq` — stochastic Lanczos quadrature (Golub & Meurant 2010; Ubaru, Chen & Saad, SIAM
  J. Matrix Anal. Appl. 38, 1075 (2017), Alg. 1): for a unit probe v, the m-point Gauss rule of
  the spectral measure of A seen from v has nodes θ_i = eigenvalues of the Lanczos tridiagonal
  T_m and weights τ_i² = (first component of the i-th eigenvector of T_m)², so
  vᵀ f(A) v ≈ Σ_i τ_i² f(θ_i) (exact for polynomials of degree ≤ 2m − 1). Averaging over
  probes with E[v vᵀ] = I/n estimates (1/n) tr f(A). All probes run as one block recurrence.
* :func:`hutchinson` (Hutchinson 1990) and :func:`hutchpp` (Meyer, Musco, Musco & Woodruff,
  SOSA 2021, Alg. 1) trace estimates.
* :func:`operator_matrix` / :func:`exact_eigenvalues` — the dense matrix by n products (memory
  predicted first) and ``numpy.linalg.eigvalsh``, for small n.

All arithmetic is float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from .errors import UsageError, check_memory
from .errors import memory_limit as _memory_limit

__all__ = [
    "as_linear_operator",
    "probe_vectors",
    "LanczosResult",
    "gap_bounds",
    "ritz_converged",
    "lanczos_steps",
    "lanczos",
    "SLQResult",
    "slq",
    "smoothed_density",
    "TraceEstimate",
    "hutchinson",
    "hutchpp",
    "operator_matrix",
    "exact_eigenvalues",
]

Array = np.ndarray
Operator: TypeAlias = Array | sp.spmatrix | LinearOperator | Callable[[Array], Array]

# β ≤ _BREAKDOWN · ‖T‖ means the Krylov space is invariant (Lanczos breakdown).
_DGKS = 0.717  # reorthogonalize again while ‖w‖ drops below this fraction
_BREAKDOWN = 1e-12


def as_linear_operator(A: Operator | Any, n: int | None = None) -> LinearOperator:
    """A square float64 :class:`LinearOperator` for an array, sparse matrix, operator or matvec.

    A callable is a matvec ``v -> A v`` on vectors of shape (n,) and needs ``n``.
    """
    if isinstance(A, LinearOperator) or isinstance(A, np.ndarray) or sp.issparse(A):
        op = A if isinstance(A, LinearOperator) else aslinearoperator(A)
    elif callable(A):
        if n is None:
            raise UsageError("a matvec callable needs its dimension; pass n=...")
        f = A
        op = LinearOperator(
            (int(n), int(n)),
            matvec=lambda v: np.asarray(f(np.asarray(v).reshape(-1)), dtype=float).reshape(-1),
            dtype=float,
        )
    else:
        raise UsageError(
            f"cannot use a {type(A).__name__} as an operator; pass an array, a scipy.sparse "
            "matrix, a LinearOperator or a matvec callable"
        )
    if op.shape[0] != op.shape[1]:
        raise UsageError(f"operator has shape {op.shape}; spectral tools need a square operator")
    if n is not None and op.shape[0] != n:
        raise UsageError(f"operator has dimension {op.shape[0]} but n = {n} was given")
    if op.shape[0] < 1:
        raise UsageError(
            "operator has dimension 0 (no active coordinates, e.g. everything pruned); "
            "nothing to analyze — unprune some parameters or pass include_pruned=True"
        )
    return op


def _matmat(op: LinearOperator, X: Array) -> Array:
    return np.asarray(op.matmat(X), dtype=float).reshape(X.shape)


def probe_vectors(n: int, m: int, dist: str = "rademacher", seed: int | None = 0) -> Array:
    """m random probes as columns of an (n, m) array: Rademacher ±1 or standard Gaussian."""
    rng = np.random.default_rng(seed)
    if dist == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(n, m))
    if dist == "gaussian":
        return rng.standard_normal((n, m))
    raise UsageError(f"unknown probe distribution {dist!r}; use 'rademacher' or 'gaussian'")


# -- Lanczos for extreme eigenvalues -------------------------------------------------------


@dataclass
class LanczosResult:
    """Extreme Ritz values of a Lanczos run (full reorthogonalization).

    ``largest`` is descending, ``smallest`` ascending; ``residual_*`` are the bounds
    β_j|s_{j,i}| ≥ |θ_i − λ| for the matching Ritz values (some eigenvalue λ lies that close:
    always valid); ``error_*`` the sharper gap bounds of :func:`gap_bounds` (valid when the other
    Ritz intervals separate λ from the rest of the spectrum). ``converged`` is True when every
    requested Ritz value met ``tol`` under the run's ``rule``. Lanczos from one start vector
    sees one copy of each eigenvalue until it exhausts an invariant subspace, so repeated
    eigenvalues appear once unless the run restarted after a breakdown.
    """

    largest: Array
    smallest: Array
    residual_largest: Array
    residual_smallest: Array
    ritz_values: Array
    iterations: int
    matvecs: int
    converged: bool
    error_largest: Array = field(default_factory=lambda: np.zeros(0))
    error_smallest: Array = field(default_factory=lambda: np.zeros(0))
    # (n, k) Ritz vectors when asked for: arrays here, torch tensors from autodiff.lanczos
    vectors_largest: Any = None
    vectors_smallest: Any = None


def _reorthogonalize(V: Array, j: int, w: Array) -> float:
    """Full reorthogonalization of w against V[:j+1] by classical Gram–Schmidt, repeated while a
    sweep removes more than 1 − η of the norm (η = 0.717, the DGKS test of ARPACK dsaitr; "twice
    is enough", Kahan–Parlett); w is updated in place, its final norm returned. After the
    three-term recurrence one sweep usually suffices."""
    prev = float(np.linalg.norm(w))
    for _ in range(2):
        w -= (V[: j + 1] @ w) @ V[: j + 1]
        b = float(np.linalg.norm(w))
        if b > _DGKS * prev:
            break
        prev = b
    return b


def gap_bounds(theta: Array, res: Array) -> Array:
    r"""Gap error bounds e_i = min(r_i, r_i²/gap_i) of Ritz values θ_i with residuals r_i.

    Kato–Temple (Kato 1949; Parlett, *The Symmetric Eigenvalue Problem*, Thm 11.7.1): if the
    eigenvalue λ nearest θ_i is the only one within distance gap_i of θ_i, then
    |λ − θ_i| ≤ r_i²/gap_i. The gap is estimated from the other Ritz intervals,
    gap_i = min_{j≠i} |θ_i − θ_j| − r_j (each holds an eigenvalue); where it is not positive,
    e_i = r_i. For the top Ritz value θ_1 this bounds λ_max − θ_1 (θ_1 ≤ λ_max always) as soon as
    the Krylov space has seen the top two eigenvalues — the residual-plus-gap rule; an eigenvalue
    above every Ritz interval, never seen, is what no a-posteriori rule can exclude (the
    probabilistic certificate of :mod:`qcarleman.autodiff.lanczos` does)."""
    theta, res = np.asarray(theta, dtype=float), np.asarray(res, dtype=float)
    if theta.size < 2:
        return res.copy()
    dist = np.abs(theta[:, None] - theta[None, :]) - res[None, :]
    np.fill_diagonal(dist, np.inf)
    gap = dist.min(axis=1)
    with np.errstate(divide="ignore"):
        quad = np.where(gap > 0, res**2 / np.where(gap > 0, gap, 1.0), np.inf)
    return np.minimum(res, quad)


def ritz_converged(theta: Array, res: Array, k: int, which: str, tol: float, rule: str) -> bool:
    """Whether the k requested Ritz values at the ``which`` end(s) have error ≤ tol·max|θ|,
    the error being the residual bound (``rule="residual"``) or the gap bound ("gap")."""
    m = theta.size
    kk = min(k, m)
    err = gap_bounds(theta, res) if rule == "gap" else res
    scale = max(float(np.max(np.abs(theta))), 0.0)
    want = []
    if which in ("both", "smallest"):
        want.append(err[:kk])
    if which in ("both", "largest"):
        want.append(err[m - kk :])
    return kk == k and all(np.all(e <= tol * scale) for e in want)


def lanczos_steps(n: int, k: int, *, which: str, rule: str, maxiter: int | None) -> int:
    """The arguments shared by both Lanczos implementations checked (UsageError naming the
    fix); returns the step limit min(n, maxiter or 300)."""
    if which not in ("both", "largest", "smallest"):
        raise UsageError(f"which = {which!r} is invalid; use 'both', 'largest' or 'smallest'")
    if int(k) != k or not 1 <= k <= n:
        raise UsageError(f"k = {k} is invalid for an operator of dimension {n}; use 1 ≤ k ≤ {n}")
    if rule not in ("residual", "gap"):
        raise UsageError(f"rule = {rule!r} is invalid; use 'residual' or 'gap'")
    m_max = min(n, 300) if maxiter is None else min(int(maxiter), n)
    if m_max < k:
        raise UsageError(f"maxiter = {maxiter} is below k = {k}; use maxiter ≥ k")
    return m_max


def _ritz(  # noqa: PLR0913 — the Lanczos state
    alpha: Array,
    beta: Array,
    m: int,
    b: float,
    breakdown: bool,
    k: int,
    which: str,
    tol: float,
    rule: str,
) -> tuple:
    """Ritz values θ, vectors S and residuals β_m|s_{m,i}| of the m-step tridiagonal matrix, and
    whether the requested ends have converged: (θ, S, res, m, done)."""
    theta, S = eigh_tridiagonal(alpha[:m], beta[: m - 1])
    res = (0.0 if breakdown else b) * np.abs(S[-1])
    return theta, S, res, m, ritz_converged(theta, res, k, which, tol, rule)


def _restart_vector(rng: np.random.Generator, V: Array, m: int) -> Array | None:
    """A random unit vector orthogonal to V[:m] (after breakdown), or None if V[:m] spans R^n."""
    n = int(V.shape[1])
    v = rng.standard_normal(n)
    for _ in range(2):
        v -= V[:m].T @ (V[:m] @ v)
    nv = np.linalg.norm(v)
    if nv <= 1e-8 * np.sqrt(n):  # basis already spans R^n
        return None
    return v / nv


def lanczos(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    A: Operator,
    k: int = 1,
    *,
    n: int | None = None,
    which: str = "both",
    maxiter: int | None = None,
    tol: float = 1e-10,
    rule: str = "residual",
    seed: int | None = 0,
    return_vectors: bool = False,
    memory_limit: int | str | None = None,
) -> LanczosResult:
    r"""The k largest and k smallest eigenvalues of a symmetric operator by Lanczos.

    Full reorthogonalization (classical Gram–Schmidt, applied twice) keeps the basis orthonormal
    to machine precision, so no spurious copies appear (Golub & Van Loan §10.3.1). The run stops
    when each requested Ritz value θ_i has residual β_j|s_{j,i}| ≤ tol·max_i|θ_i| (with
    ``rule="gap"``: gap bound, :func:`gap_bounds`, ≤ tol·max_i|θ_i|; fewer steps for the same
    error) (``which`` = "both", "largest" or "smallest" selects which ends must converge), or after
    ``maxiter`` steps (default min(n, 300)). On breakdown (an invariant subspace) the Ritz values
    are exact; the run restarts from a random vector orthogonal to the basis if fewer than k
    have been found. Memory: the basis, 8·n·(maxiter+1) bytes, is checked first.
    """
    op = as_linear_operator(A, n)
    n = op.shape[0]
    m_max = lanczos_steps(n, k, which=which, rule=rule, maxiter=maxiter)
    check_memory(8.0 * n * (m_max + 1), f"the Lanczos basis (n = {n}, {m_max} steps)", memory_limit)
    rng = np.random.default_rng(seed)
    V = np.empty((m_max + 1, n))
    v = rng.standard_normal(n)
    V[0] = v / np.linalg.norm(v)
    alpha = np.zeros(m_max)
    beta = np.zeros(m_max)  # beta[j] couples basis vectors j and j+1
    anorm = 0.0
    matvecs = 0
    state: tuple | None = None
    for j in range(m_max):
        w = np.asarray(op.matvec(V[j]), dtype=float).reshape(-1)
        matvecs += 1
        alpha[j] = V[j] @ w
        w -= alpha[j] * V[j]
        if j > 0:
            w -= beta[j - 1] * V[j - 1]
        b = _reorthogonalize(V, j, w)
        anorm = max(anorm, abs(alpha[j]), b)
        breakdown = b <= _BREAKDOWN * anorm
        m = j + 1
        last = m == m_max
        if breakdown or last or m < 100 or m % max(1, m // 10) == 0:
            state = _ritz(alpha, beta, m, b, breakdown, k, which, tol, rule)
            if state[-1] or last:
                break
        if breakdown:
            # Invariant subspace: restart orthogonally to the basis (fewer than k values found).
            restart = _restart_vector(rng, V, m)
            if restart is None:
                break
            beta[j] = 0.0
            V[m] = restart
        else:
            beta[j] = b
            V[m] = w / b
    assert state is not None
    theta, S, res, m, done = state
    fields, lo, hi = ritz_extremes(theta, res, k, m)
    out = LanczosResult(**fields, matvecs=matvecs, converged=bool(done))
    if return_vectors:
        out.vectors_largest = V[:m].T @ S[:, hi]
        out.vectors_smallest = V[:m].T @ S[:, lo]
    return out


def ritz_extremes(
    theta: np.ndarray, res: np.ndarray, k: int, m: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The k largest and smallest of the ascending Ritz values ``theta`` of an m-step Lanczos
    run with their residual bounds ``res`` (and gap bounds), as :class:`LanczosResult` fields,
    and the indices (lo, hi) of those Ritz values in ``theta`` (for their vectors)."""
    kk = min(k, m)
    lo, hi = np.arange(kk), np.arange(m - 1, m - 1 - kk, -1)
    err = gap_bounds(theta, res)
    fields = {
        "largest": theta[hi],
        "smallest": theta[lo],
        "residual_largest": res[hi],
        "residual_smallest": res[lo],
        "error_largest": err[hi],
        "error_smallest": err[lo],
        "ritz_values": theta,
        "iterations": m,
    }
    return fields, lo, hi


# -- stochastic Lanczos quadrature ---------------------------------------------------------


@dataclass
class SLQResult:
    r"""Gauss-quadrature nodes and weights of the spectral density of A, over all probes.

    ``nodes[i]``, ``weights[i]`` (weights sum to 1) and ``probe[i]`` (which probe; −1 for a
    deflated eigenvalue, which carries weight exactly 1/n). The density estimate is
    φ(λ) = Σ_i w_i δ(λ − θ_i), so Σ_i w_i f(θ_i) ≈ (1/n) tr f(A) (Ubaru, Chen & Saad 2017,
    eq. 2.5). ``quad_forms`` holds vᵀAv for each unit probe v.
    """

    nodes: Array
    weights: Array
    probe: Array
    n: int
    probes: int
    iters: int
    matvecs: int
    dist: str
    reorth: bool
    deflated: int = 0
    quad_forms: Array = field(default_factory=lambda: np.zeros(0))

    def moment(self, k: int) -> float:
        """Σ_i w_i θ_i^k ≈ tr(A^k)/n."""
        return float(np.sum(self.weights * self.nodes**k))

    def trace(self) -> float:
        """n · Σ_i w_i θ_i ≈ tr(A) (the Hutchinson estimate with the same probes)."""
        return self.n * self.moment(1)

    def mass_below(self, x: float) -> float:
        """Σ_{θ_i < x} w_i ≈ (number of eigenvalues below x)/n."""
        return float(np.sum(self.weights[self.nodes < x]))

    def density(
        self, grid: Array | None = None, sigma: float | None = None, num: int = 1000
    ) -> tuple[Array, Array]:
        """The Gaussian-smoothed density of the nodes (see :func:`smoothed_density`)."""
        return smoothed_density(self.nodes, self.weights, grid, sigma, num)


def smoothed_density(
    nodes: Array,
    weights: Array | None = None,
    grid: Array | None = None,
    sigma: float | None = None,
    num: int = 1000,
) -> tuple[Array, Array]:
    r"""Gaussian-smoothed density φ_σ(λ) = Σ_i w_i N(λ; θ_i, σ²) on a grid.

    ``weights`` default to 1/len(nodes) (exact eigenvalues). Default σ: 1% of the node range
    (of max|θ| if the range is 0, 1e-3 if both are); default grid: ``num`` points from
    min θ − 6σ to max θ + 6σ, so the density integrates to Σ w_i = 1 up to the trapezoid rule's
    error (Ubaru, Chen & Saad 2017, §3; Ghorbani, Krishnan & Xiao, ICML 2019, §2).
    """
    nodes = np.asarray(nodes, dtype=float).reshape(-1)
    if nodes.size == 0:
        raise UsageError("no nodes to smooth; compute a spectrum first")
    w = np.full(nodes.size, 1.0 / nodes.size) if weights is None else np.asarray(weights, float)
    if sigma is None:
        scale = float(np.ptp(nodes)) or float(np.max(np.abs(nodes))) or 0.1
        sigma = 0.01 * scale
    s = float(sigma)
    if not s > 0:
        raise UsageError(f"sigma = {sigma} is invalid; use a smoothing width > 0")
    if grid is None:
        grid = np.linspace(nodes.min() - 6 * s, nodes.max() + 6 * s, int(num))
    grid = np.asarray(grid, dtype=float)
    vals = np.zeros_like(grid)
    for lo in range(0, nodes.size, 512):  # bounded (grid × 512) temporaries
        th, wi = nodes[lo : lo + 512], w[lo : lo + 512]
        vals += (wi * np.exp(-0.5 * ((grid[:, None] - th) / s) ** 2)).sum(axis=1)
    return grid, vals / (s * np.sqrt(2 * np.pi))


def _block_lanczos_rules(
    op: LinearOperator, Z: Array, m: int, reorth: bool, U: Array | None
) -> tuple[list[Array], list[Array], int]:
    """Independent Lanczos recurrences for the columns of Z, advanced together (one matmat per
    step), kept orthogonal to the columns of U (deflated eigenvectors) when given. Returns per
    column the Gauss nodes, the weights and the total products used."""
    n, b = Z.shape
    # Row layout (b, n) throughout: each probe's vectors are contiguous.
    Q = np.empty((b, m, n)) if reorth else None
    alphas = np.zeros((b, m))
    betas = np.zeros((b, m))
    length = np.full(b, m)
    active = np.ones(b, dtype=bool)
    q = np.ascontiguousarray(Z.T)
    q /= np.linalg.norm(q, axis=1)[:, None]
    q_prev = np.zeros_like(q)
    beta_prev = np.zeros(b)
    anorm = np.zeros(b)
    matvecs = 0
    for j in range(m):
        if Q is not None:
            Q[:, j, :] = q
        w = np.ascontiguousarray(_matmat(op, q.T).T)
        matvecs += int(active.sum())
        a = np.einsum("ij,ij->i", q, w)
        w -= a[:, None] * q + beta_prev[:, None] * q_prev
        # full reorthogonalization, a second sweep only where the first removed more than
        # 1 − η of a row's norm (DGKS test, as in :func:`lanczos`)
        bnew = np.linalg.norm(w, axis=1)
        for _ in range(2 if (Q is not None or U is not None) else 0):
            prev = bnew
            if U is not None:
                w -= (w @ U) @ U.T
            if Q is not None:  # per probe: two BLAS gemv (stacked matmul is far slower)
                for i in range(b):
                    w[i] -= (Q[i, : j + 1] @ w[i]) @ Q[i, : j + 1]
            bnew = np.linalg.norm(w, axis=1)
            if np.all(bnew > _DGKS * prev):
                break
        alphas[active, j] = a[active]
        anorm = np.maximum(anorm, np.maximum(np.abs(a), bnew))
        stop = active & (bnew <= _BREAKDOWN * anorm)
        length[stop] = j + 1
        active &= ~stop
        if j == m - 1 or not active.any():
            break
        betas[active, j] = bnew[active]
        q_prev = q
        q = np.where(active[:, None], w / np.where(active, bnew, 1.0)[:, None], 0.0)
        beta_prev = np.where(active, bnew, 0.0)
    nodes, weights = [], []
    for c in range(b):
        L = int(length[c])
        theta, S = eigh_tridiagonal(alphas[c, :L], betas[c, : L - 1])
        nodes.append(theta)
        weights.append(S[0] ** 2)
    return nodes, weights, matvecs


def slq(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    A: Operator,
    *,
    n: int | None = None,
    probes: int = 16,
    iters: int = 80,
    dist: str = "rademacher",
    seed: int | None = 0,
    reorth: bool = True,
    batch: int | None = None,
    deflate: tuple[Array, Array] | None = None,
    memory_limit: int | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SLQResult:
    r"""Stochastic Lanczos quadrature of the spectral density of a symmetric operator.

    ``probes`` unit probes v = z/‖z‖ (z Rademacher or Gaussian, so E[v vᵀ] = I/n), each run for
    ``iters`` Lanczos steps (capped at n), ``batch`` probes at a time as one block recurrence
    (default: as many as fit in memory). With ``reorth`` each probe's basis is kept
    (8·batch·iters·n bytes, checked first) for full reorthogonalization; without it the rules
    can hold ghost copies of converged nodes (their weights stay consistent). Sources: Ubaru,
    Chen & Saad (2017) Alg. 1; Golub & Meurant (2010) §6.2.

    ``deflate = (values, vectors)`` with k exact eigenpairs (orthonormal columns, e.g. converged
    Ritz pairs from :func:`lanczos`): they enter the density exactly with weight 1/n each and
    the probes are projected onto their orthogonal complement, whose rule carries weight
    (n − k)/n. This removes the probe variance of isolated outliers, which dominate
    |1 − ηλ|^t for large t (deflated trace estimation as in Hutch++, Meyer et al. 2021; for
    Rademacher probes the normalization of the projected probe is an approximation,
    Gaussian probes make it exact). ``progress(k)`` is called after each block with the number
    of probes finished.
    """
    op = as_linear_operator(A, n)
    n = op.shape[0]
    if int(probes) != probes or probes < 1:
        raise UsageError(f"probes = {probes} is invalid; use at least 1 probe")
    if int(iters) != iters or iters < 1:
        raise UsageError(f"iters = {iters} is invalid; use at least 1 Lanczos step")
    U, dvals = None, np.zeros(0)
    if deflate is not None:
        dvals = np.asarray(deflate[0], dtype=float).reshape(-1)
        U = np.asarray(deflate[1], dtype=float).reshape(n, -1)
        if U.shape[1] != dvals.size:
            raise UsageError(f"deflate has {dvals.size} values but {U.shape[1]} vectors")
        if dvals.size >= n:
            raise UsageError(f"cannot deflate {dvals.size} of {n} eigenvalues; deflate fewer")
        if np.abs(U.T @ U - np.eye(dvals.size)).max() > 1e-6:
            raise UsageError("deflation vectors must be orthonormal; pass converged Ritz vectors")
    k = dvals.size
    m = min(int(iters), n - k)
    per_probe = 8.0 * n * (m if reorth else 0) + 8.0 * n * 6
    if batch is None:
        batch = int(max(1, min(probes, (_memory_limit(memory_limit) // 2) // per_probe)))
    batch = int(max(1, min(batch, probes)))
    check_memory(batch * per_probe, f"SLQ with {batch} probes × {m} steps (n = {n})", memory_limit)
    Z = probe_vectors(n, probes, dist, seed)
    if U is not None:
        Z = Z - U @ (U.T @ Z)
    nodes, weights, owner, qf = [dvals], [np.full(k, 1.0 / n)], [np.full(k, -1)], []
    share = (n - k) / n / probes
    matvecs = 0
    for lo in range(0, probes, batch):
        nb, wb, mv = _block_lanczos_rules(op, Z[:, lo : lo + batch], m, reorth, U)
        matvecs += mv
        for c, (th, w) in enumerate(zip(nb, wb)):
            nodes.append(th)
            weights.append(share * w / w.sum())
            owner.append(np.full(th.size, lo + c))
            qf.append(float(np.sum(w * th) / w.sum()))
        if progress is not None:
            progress(min(lo + batch, probes))
    return SLQResult(
        nodes=np.concatenate(nodes),
        weights=np.concatenate(weights),
        probe=np.concatenate(owner),
        n=n,
        probes=int(probes),
        iters=m,
        matvecs=matvecs,
        dist=dist,
        reorth=bool(reorth),
        deflated=k,
        quad_forms=np.array(qf),
    )


# -- trace estimators ----------------------------------------------------------------------


@dataclass
class TraceEstimate:
    """A stochastic trace estimate, its standard error (None when not available) and cost."""

    value: float
    stderr: float | None
    matvecs: int
    method: str


def hutchinson(
    A: Operator,
    *,
    n: int | None = None,
    probes: int = 64,
    dist: str = "rademacher",
    seed: int | None = 0,
    batch: int = 32,
) -> TraceEstimate:
    r"""Hutchinson's estimate tr(A) ≈ (1/m) Σ_k z_kᵀ A z_k with E[z zᵀ] = I (Hutchinson,
    Commun. Stat. Simul. Comput. 19, 433 (1990)); stderr = sample std / √m."""
    op = as_linear_operator(A, n)
    n = op.shape[0]
    if int(probes) != probes or probes < 1:
        raise UsageError(f"probes = {probes} is invalid; use at least 1 probe")
    Z = probe_vectors(n, probes, dist, seed)
    vals = np.concatenate(
        [
            np.einsum("ij,ij->j", Z[:, lo : lo + batch], _matmat(op, Z[:, lo : lo + batch]))
            for lo in range(0, probes, batch)
        ]
    )
    se = float(vals.std(ddof=1) / np.sqrt(probes)) if probes > 1 else None
    return TraceEstimate(float(vals.mean()), se, int(probes), "hutchinson")


def hutchpp(
    A: Operator,
    *,
    n: int | None = None,
    matvecs: int = 96,
    dist: str = "rademacher",
    seed: int | None = 0,
) -> TraceEstimate:
    r"""Hutch++ (Meyer, Musco, Musco & Woodruff, SOSA 2021, Alg. 1) with ``matvecs`` products:
    S, G with m/3 columns each, Q = orth(A S),
    tr(A) ≈ tr(Qᵀ A Q) + (3/m) tr(Gᵀ (I − QQᵀ) A (I − QQᵀ) G)."""
    op = as_linear_operator(A, n)
    n = op.shape[0]
    k = int(matvecs) // 3
    if k < 1:
        raise UsageError(f"matvecs = {matvecs} is too few for Hutch++; use at least 3")
    rng_seed = np.random.default_rng(seed).integers(2**32)
    S = probe_vectors(n, k, dist, int(rng_seed))
    G = probe_vectors(n, k, dist, int(rng_seed) + 1)
    Q, _ = np.linalg.qr(_matmat(op, S))
    G = G - Q @ (Q.T @ G)
    value = float(np.trace(Q.T @ _matmat(op, Q)) + np.trace(G.T @ _matmat(op, G)) / k)
    return TraceEstimate(value, None, 3 * k, "hutch++")


# -- exact -----------------------------------------------------------------------------------


def operator_matrix(
    A: Operator,
    *,
    n: int | None = None,
    chunk: int = 256,
    symmetrize: bool = True,
    memory_limit: int | str | None = None,
) -> Array:
    """The dense n×n matrix of an operator from n products (``chunk`` columns per block).

    Memory (8n² bytes plus one block) is predicted first. ``symmetrize`` returns (M + Mᵀ)/2,
    removing the rounding asymmetry of autodiff Hessian products."""
    op = as_linear_operator(A, n)
    n = op.shape[0]
    check_memory(8.0 * n * n + 16.0 * n * chunk, f"the dense {n}×{n} operator", memory_limit)
    M = np.empty((n, n))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        E = np.zeros((n, hi - lo))
        E[np.arange(lo, hi), np.arange(hi - lo)] = 1.0
        M[:, lo:hi] = _matmat(op, E)
    if symmetrize:
        M = 0.5 * (M + M.T)
    return M


def exact_eigenvalues(
    A: Operator, *, n: int | None = None, memory_limit: int | str | None = None
) -> Array:
    """All eigenvalues (ascending) by ``numpy.linalg.eigvalsh`` of :func:`operator_matrix`."""
    return np.linalg.eigvalsh(operator_matrix(A, n=n, memory_limit=memory_limit))
