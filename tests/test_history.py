"""HistorySystem (ALGORITHM.md §3): L⁻¹c is forward iteration, P_succ from block norms, κ(L)
exact/estimate/bound and its growth in T, structure, generic lifted systems, bad inputs."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from qcarleman import CarlemanSystem, HistorySystem, MemoryLimitError, QuadraticMap, UsageError


def carleman(d=3, N=2, g1=0.8, g0=0.05, g2=0.05, seed=0, **kw):
    rng = np.random.default_rng(seed)
    G0, G1, G2 = rng.standard_normal(d), rng.standard_normal((d, d)), rng.standard_normal((d, d, d))
    G0 *= g0 / np.linalg.norm(G0)
    G1 *= g1 / np.linalg.norm(G1, 2)
    G2 *= g2 / np.linalg.norm(G2.reshape(d, -1), 2)
    z0 = rng.standard_normal(d)
    return CarlemanSystem(QuadraticMap(G0, G1, G2), N, **kw), 0.3 * z0 / np.linalg.norm(z0)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("idle", [0, 3])
def test_inverse_is_forward_iteration(symmetric, idle):
    cs, z0 = carleman(N=3, symmetric=symmetric, scale=0.5)
    T = 8
    h = cs.history(z0, T, idle=idle)
    D = cs.dim
    assert (h.d, h.block_dim, h.dim, h.T, h.idle, h.scale) == (
        3,
        D,
        (T + idle + 1) * D,
        T,
        idle,
        0.5,
    )
    L, c = h.matrix(), h.rhs()
    Y_direct = spla.spsolve(L.tocsc(), c)
    Y = h.solve()
    np.testing.assert_allclose(Y, Y_direct, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(L @ Y, c, atol=1e-13)
    # Forward iteration of ŷ(t+1) = A ŷ(t) + b block by block (matrix form, independent path).
    A, b = cs.matrix().toarray(), cs.rhs(0)
    y = cs.lift(z0)
    for t in range(T + idle + 1):
        np.testing.assert_allclose(Y[t * D : (t + 1) * D], y, rtol=1e-10, atol=1e-13)
        if t < T:
            y = A @ y + b
    np.testing.assert_allclose(h.output_vector(), cs.iterate(z0, T)[-1], rtol=1e-12)


def test_success_probability_equals_block_norms():
    cs, z0 = carleman(N=2)
    T, p = 6, 4
    h = cs.history(z0, T, idle=p)
    Y = h.solve()
    D, d = cs.dim, cs.d
    blocks = Y.reshape(T + p + 1, D)
    y1T = blocks[T, :d]
    expected = (p + 1) * np.sum(y1T**2) / np.sum(Y**2)
    measured = sum(np.sum(blocks[t, :d] ** 2) for t in range(T, T + p + 1)) / np.sum(Y**2)
    np.testing.assert_allclose(h.success_probability, expected, rtol=1e-12)
    np.testing.assert_allclose(h.success_probability, measured, rtol=1e-12)
    idx = h.output_indices()
    assert idx.size == (p + 1) * d and set(idx // D) == set(range(T, T + p + 1))
    psi = h.state()
    np.testing.assert_allclose(np.linalg.norm(psi), 1.0, rtol=1e-14)
    np.testing.assert_allclose(h.output_state(), y1T / np.linalg.norm(y1T), rtol=1e-13)
    # More idle copies raise P_succ (the factor p + 1 in §3).
    assert cs.history(z0, T, idle=0).success_probability < h.success_probability


def kappas(g1, Ts=(10, 20, 40)):
    cs, z0 = carleman(d=2, N=2, g1=g1, g0=0.02, g2=0.02, seed=3)
    return cs, [cs.history(z0, T).kappa("exact") for T in Ts]


def test_kappa_bounded_when_contractive_and_growing_otherwise():
    cs, k = kappas(0.6)
    a = cs.norm_bound()
    assert a < 1
    # Bounded in T: κ ≤ (1 + ‖A‖)/(1 − ‖A‖) for every T, and the increments shrink.
    assert max(k) <= (1 + a) / (1 - a)
    assert k[2] - k[1] < k[1] - k[0]
    _, k = kappas(1.15)
    assert k[1] > 2 * k[0] and k[2] > 2 * k[1]  # grows (exponentially) with T


@pytest.mark.parametrize("g1, idle", [(0.8, 0), (1.05, 2)])
def test_kappa_methods_agree(g1, idle):
    cs, z0 = carleman(d=3, N=2, g1=g1, seed=1)
    h = cs.history(z0, 12, idle=idle)
    exact = h.kappa("exact")
    np.testing.assert_allclose(h.kappa("estimate"), exact, rtol=1e-6)
    L = h.matrix().toarray()
    np.testing.assert_allclose(exact, np.linalg.cond(L), rtol=1e-10)
    assert h.kappa("bound") >= exact
    # The matrix ingredients of the bound hold separately.
    assert np.linalg.norm(L, 2) <= 1 + cs.norm_bound() + 1e-12


def test_structure_of_L():
    cs, z0 = carleman(N=3)
    T, p = 5, 2
    h = cs.history(z0, T, idle=p)
    L = h.matrix()
    D = cs.dim
    dense = L.toarray()
    np.testing.assert_array_equal(np.diag(dense), 1.0)
    A = cs.matrix().toarray()
    for t in range(T + p):
        block = dense[(t + 1) * D : (t + 2) * D, t * D : (t + 1) * D]
        np.testing.assert_allclose(block, -A if t < T else -np.eye(D), atol=1e-15)
    assert np.count_nonzero(np.triu(dense, 1)) == 0
    for r in range(T + p + 1):  # nothing below the block subdiagonal
        assert not np.any(dense[r * D : (r + 1) * D, : max(0, r - 1) * D])
    assert np.diff(L.indptr).max() <= h.row_sparsity()
    assert abs(L).max() <= h.max_entry() + 1e-15 and h.max_entry() >= 1


def test_time_dependent_history():
    rng = np.random.default_rng(7)
    d, T = 2, 5
    coefs = [
        (
            0.05 * rng.standard_normal(d),
            0.4 * rng.standard_normal((d, d)),
            0.05 * rng.standard_normal((d, d, d)),
        )
        for _ in range(T)
    ]
    cs = CarlemanSystem(QuadraticMap(*[list(c) for c in zip(*coefs)]), 2)
    z0 = np.array([0.2, -0.1])
    h = cs.history(z0, T, idle=1)
    np.testing.assert_allclose(spla.spsolve(h.matrix().tocsc(), h.rhs()), h.solve(), atol=1e-13)
    np.testing.assert_allclose(h.output_vector(), cs.iterate(z0, T)[-1], rtol=1e-12)
    assert h.kappa("bound") >= h.kappa("exact")
    with pytest.raises(UsageError, match="exceeds the 5 steps"):
        cs.history(z0, 6)


class PlainLinear:
    """A lifted system with only the required interface: y' = M y + v (no optional extras)."""

    def __init__(self, M, v):
        self.M, self.v = sp.csr_matrix(M), v
        self.dim = self.d = M.shape[0]
        self.scale = 1.0

    def apply(self, t, y):
        return self.M @ y

    def rhs(self, t):
        return self.v

    def matrix(self, t=0):
        return self.M

    def norm_bound(self, t=0):
        return float(np.linalg.norm(self.M.toarray(), 2))

    def level(self, y, j):
        return y


def test_generic_lifted_system():
    rng = np.random.default_rng(2)
    M = 0.3 * rng.standard_normal((4, 4))
    M[0, 1] = 0.0
    v = rng.standard_normal(4)
    h = HistorySystem(PlainLinear(M, v), np.ones(4), 7, idle=2)
    np.testing.assert_allclose(spla.spsolve(h.matrix().tocsc(), h.rhs()), h.solve(), atol=1e-12)
    assert h.row_sparsity() == 1 + np.diff(sp.csr_matrix(M).indptr).max()
    assert h.max_entry() == max(1.0, np.abs(M).max())
    np.testing.assert_array_equal(h.output_indices(), np.arange(7 * 4, 10 * 4))
    assert h.kappa("bound") >= h.kappa("exact")


# -- bad inputs ----------------------------------------------------------------------------
def test_bad_inputs():
    cs, z0 = carleman()
    y = cs.lift(z0)
    for T in (0, -3, 2.0, True):
        with pytest.raises(UsageError, match="T ≥ 1"):
            HistorySystem(cs, y, T)
    with pytest.raises(UsageError, match="p ≥ 0"):
        HistorySystem(cs, y, 3, idle=-1)
    with pytest.raises(UsageError, match="y_in has shape"):
        HistorySystem(cs, y[:-1], 3)
    with pytest.raises(UsageError, match="non-finite"):
        HistorySystem(cs, np.full(cs.dim, np.nan), 3)
    with pytest.raises(UsageError, match="κ method"):
        cs.history(z0, 3).kappa("svd")
    still = CarlemanSystem(QuadraticMap(np.zeros(3), np.eye(3), np.zeros((3, 9))), 2)
    with pytest.raises(UsageError, match="zero"):
        HistorySystem(still, np.zeros(still.dim), 2).state()


def test_memory_limits():
    cs, z0 = carleman(N=2)
    h = HistorySystem(cs, cs.lift(z0), 50, memory_limit=2000)
    with pytest.raises(MemoryLimitError, match="history"):
        h.solve()
    with pytest.raises(MemoryLimitError, match="history"):
        h.matrix()
    with pytest.raises(MemoryLimitError, match="dense κ"):
        HistorySystem(cs, cs.lift(z0), 50, memory_limit=10**6).kappa("exact")
    # A large system is described without allocating; its κ bound needs only the norms:
    # ‖A‖ ≤ 0.5, so ‖L⁻¹‖ ≤ 1 + 5 (windows inside the idle steps) + Σ_{m=1}^{100} 0.5^m.
    d = 1500
    big = CarlemanSystem(QuadraticMap(np.zeros(d), 0.5 * sp.eye(d), sp.csr_matrix((d, d * d))), 2)
    hb = HistorySystem(big, np.zeros(big.dim), 100, idle=5, memory_limit=10**8)
    assert hb.dim == 106 * (d + d * d)
    # ‖L‖ ≤ 1 + max(‖A‖, 1): the idle blocks are identities
    assert hb.kappa("bound") == pytest.approx(2.0 * (6 + 1 - 0.5**100), rel=1e-12)
    with pytest.raises(MemoryLimitError, match="history solution"):
        hb.solve()
