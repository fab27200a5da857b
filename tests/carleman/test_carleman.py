"""CarlemanSystem (ALGORITHM.md §2): exactness for G2 = 0, convergence in N, structural vs
materialized A, symmetric compression, scaling, bounds and bad inputs."""

import itertools
import math
from functools import reduce

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import aslinearoperator

from qcarleman import CarlemanSystem, MemoryLimitError, QuadraticMap, UsageError


def coefficients(d, seed, g1=0.8, g0=0.05, g2=0.05):
    """Random G0, G1, G2 with ‖G0‖ = g0, ‖G1‖₂ = g1, ‖G2‖₂ (as d×d²) = g2."""
    rng = np.random.default_rng(seed)
    G0 = rng.standard_normal(d)
    G1 = rng.standard_normal((d, d))
    G2 = rng.standard_normal((d, d, d))
    G0 *= g0 / np.linalg.norm(G0)
    G1 *= g1 / np.linalg.norm(G1, 2)
    G2 *= g2 / max(np.linalg.norm(G2.reshape(d, -1), 2), 1e-300)
    return G0, G1, G2


def start(d, seed, r=0.3):
    z = np.random.default_rng(seed + 100).standard_normal(d)
    return r * z / np.linalg.norm(z)


def reference_A(G0, G1, G2, N):
    """A = (B_{j,k}) from the definition of ALGORITHM.md §2 with dense np.kron (independent)."""
    d = G0.size
    G = (G0.reshape(d, 1), G1, G2.reshape(d, d * d))
    blocks = [[np.zeros((d**j, d**k)) for k in range(1, N + 1)] for j in range(1, N + 1)]
    for j in range(1, N + 1):
        for a in itertools.product((0, 1, 2), repeat=j):
            if 1 <= sum(a) <= N:
                blocks[j - 1][sum(a) - 1] += reduce(np.kron, (G[i] for i in a))
    return np.block(blocks)


def rel_err(traj, exact):
    return np.max(np.linalg.norm(traj - exact, axis=1) / np.linalg.norm(exact, axis=1))


@pytest.mark.parametrize("time_dependent", [False, True])
@pytest.mark.parametrize("gamma", [None, 0.37, 3.0])
def test_g2_zero_lift_is_exact(time_dependent, gamma):
    d, T = 3, 12
    if time_dependent:
        coefs = [coefficients(d, s, g1=0.9, g0=0.2, g2=0.0) for s in range(T)]
        q = QuadraticMap(*[list(c) for c in zip(*coefs)])
    else:
        q = QuadraticMap(*coefficients(d, 1, g1=0.9, g0=0.2, g2=0.0))
    z0 = start(d, 1, r=0.5)
    exact = q.iterate(z0, T)
    for N in range(1, 5):
        cs = CarlemanSystem(q, order=N, scale=gamma)
        assert rel_err(cs.iterate(z0, T), exact) < 1e-12


def test_error_falls_by_5x_per_order():
    d, T = 3, 30
    G0, G1, G2 = coefficients(d, 0)
    # R_d* = 2√(‖f0‖‖F2‖)/(1 − ρ) < 1 (ALGORITHM.md §6), ‖F2‖ ≤ ‖G2‖₂ as a d×d² matrix.
    rho = np.linalg.norm(G1, 2)
    assert 2 * np.sqrt(np.linalg.norm(G0) * np.linalg.norm(G2.reshape(d, -1), 2)) / (1 - rho) < 1
    q = QuadraticMap(G0, G1, G2)
    z0 = start(d, 0)
    exact = q.iterate(z0, T)
    errs = [rel_err(CarlemanSystem(q, N).iterate(z0, T), exact) for N in range(1, 5)]
    for e_lo, e_hi in zip(errs, errs[1:]):
        assert e_hi <= e_lo / 5, errs


def test_scaling_is_a_similarity():
    """With G2 ≠ 0 the truncated level-1 trajectory does not depend on γ (A_γ = S A S⁻¹,
    S = diag(γ^{-j}), ALGORITHM.md §2); 'auto' picks γ = √(‖G0‖/‖G2‖)."""
    G0, G1, G2 = coefficients(4, 2, g0=0.3, g2=0.01)
    q = QuadraticMap(G0, G1, G2)
    z0 = start(4, 2)
    ref = CarlemanSystem(q, 3).iterate(z0, 15)
    auto = CarlemanSystem(q, 3, scale="auto")
    np.testing.assert_allclose(auto.scale, np.sqrt(0.3 / 0.01), rtol=1e-10)
    for cs in (auto, CarlemanSystem(q, 3, scale=0.1)):
        np.testing.assert_allclose(cs.iterate(z0, 15), ref, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(auto.level(auto.lift(z0), 1), z0 / auto.scale, rtol=1e-15)
    assert CarlemanSystem(QuadraticMap(G0, G1, 0 * G2), 2, scale="auto").scale == 1.0


@pytest.mark.parametrize("N", [1, 2, 3, 4])
def test_structured_apply_matches_definition_and_matrix(N):
    d = 2
    G0, G1, G2 = coefficients(d, N, g1=1.1, g0=0.4, g2=0.7)
    q = QuadraticMap(G0, G1, G2)
    cs = CarlemanSystem(q, N)
    A_ref = reference_A(G0, G1, G2, N)
    A = cs.matrix()
    assert A.shape == (cs.dim, cs.dim) and cs.dim == sum(d**j for j in range(1, N + 1))
    np.testing.assert_allclose(A.toarray(), A_ref, atol=1e-12)
    y = np.random.default_rng(N).standard_normal(cs.dim)  # not a symmetric lift
    np.testing.assert_allclose(cs.apply(0, y), A_ref @ y, rtol=1e-12, atol=1e-12)
    b = np.concatenate([reduce(np.kron, [G0] * j) for j in range(1, N + 1)])
    np.testing.assert_allclose(cs.rhs(0), b, atol=1e-15)
    assert A.nnz <= cs.matrix_nnz()
    assert np.diff(A.indptr).max() <= cs.row_sparsity()
    assert abs(A).max() <= cs.max_entry() + 1e-15
    assert np.linalg.norm(A_ref, 2) <= cs.norm_bound() * (1 + 1e-12)


def test_operator_form_and_time_dependent_maps():
    d, T, N = 3, 4, 3
    coefs = [coefficients(d, s, g1=0.9, g0=0.1, g2=0.3) for s in range(T)]
    explicit = QuadraticMap(*[list(c) for c in zip(*coefs)])
    operator = QuadraticMap(
        [c[0] for c in coefs],
        [aslinearoperator(c[1]) for c in coefs],
        [(lambda u, v, G2=c[2]: np.einsum("iab,a,b->i", G2, u, v)) for c in coefs],
        dim=d,
    )
    z0 = start(d, 3)
    a, b = CarlemanSystem(explicit, N), CarlemanSystem(operator, N)
    np.testing.assert_allclose(b.iterate(z0, T), a.iterate(z0, T), rtol=1e-12)
    y = np.random.default_rng(0).standard_normal(a.dim)
    for t in range(T):
        A_ref = reference_A(*coefs[t], N)
        np.testing.assert_allclose(b.apply(t, y), A_ref @ y, atol=1e-12)
        np.testing.assert_allclose(b.matrix(t).toarray(), A_ref, atol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 3, 4])
def test_symmetric_compression(N):
    d = 3
    G0, G1, G2 = coefficients(d, 5, g1=0.9, g0=0.1, g2=0.2)
    q = QuadraticMap(G0, G1, G2)
    z0 = start(d, 5)
    full, sym = CarlemanSystem(q, N), CarlemanSystem(q, N, symmetric=True)
    assert sym.level_dims == [math.comb(d + j - 1, j) for j in range(1, N + 1)]
    np.testing.assert_allclose(sym.iterate(z0, 20), full.iterate(z0, 20), rtol=1e-12, atol=1e-15)
    # V is an isometry on symmetric vectors: equal norms, identical level 1.
    ys, yf = sym.lift(z0), full.lift(z0)
    np.testing.assert_allclose(np.linalg.norm(ys), np.linalg.norm(yf), rtol=1e-13)
    np.testing.assert_array_equal(sym.level(ys, 1), full.level(yf, 1))
    A = sym.matrix()
    assert A.shape == (sym.dim, sym.dim)
    np.testing.assert_allclose(A @ ys, sym.apply(0, ys), atol=1e-12)
    assert abs(A).max() <= sym.max_entry() + 1e-15
    assert np.linalg.norm(A.toarray(), 2) <= sym.norm_bound() * (1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 3),
    N=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    g1=st.floats(0.1, 1.2),
    g2=st.floats(0.0, 1.0),
    gamma=st.sampled_from([None, 0.5, 2.0, "auto"]),
)
def test_property_random_maps(d, N, seed, g1, g2, gamma):
    G0, G1, G2 = coefficients(d, seed, g1=g1, g0=0.2, g2=g2)
    q = QuadraticMap(G0, G1, G2)
    z0 = start(d, seed)
    cs = CarlemanSystem(q, N, scale=gamma)
    y = np.random.default_rng(seed).standard_normal(cs.dim)
    A = cs.matrix()
    np.testing.assert_allclose(cs.apply(0, y), A @ y, rtol=1e-12, atol=1e-12)
    traj = cs.iterate(z0, 6)
    np.testing.assert_allclose(
        CarlemanSystem(q, N, scale=gamma, symmetric=True).iterate(z0, 6),
        traj,
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(traj, CarlemanSystem(q, N).iterate(z0, 6), rtol=1e-9, atol=1e-12)
    # Level 1 after one step is exact at any order: G0 + G1 z0 + G2(z0, z0) when N ≥ 2.
    if N >= 2:
        np.testing.assert_allclose(traj[1], q.step(0, z0), rtol=1e-12, atol=1e-14)
    assert np.linalg.norm(A.toarray(), 2) <= cs.norm_bound() * (1 + 1e-10)


def test_sparse_map_large_d_runs_structurally():
    d = 300
    rng = np.random.default_rng(0)
    G1 = 0.5 * sp.eye(d) + sp.csr_matrix(
        (0.1 * rng.standard_normal(900), (rng.integers(0, d, 900), rng.integers(0, d, 900))),
        shape=(d, d),
    )
    G2 = sp.csr_matrix(
        (
            0.01 * rng.standard_normal(2700),
            (rng.integers(0, d, 2700), rng.integers(0, d * d, 2700)),
        ),
        shape=(d, d * d),
    )
    q = QuadraticMap(0.01 * rng.standard_normal(d), G1, G2)
    z0 = 0.01 * rng.standard_normal(d)
    cs = CarlemanSystem(q, 2)
    traj = cs.iterate(z0, 5)
    ref = q.iterate(z0, 5)
    assert rel_err(traj, ref) < 1e-3
    y = cs.lift(z0)
    np.testing.assert_allclose(cs.matrix() @ y, cs.apply(0, y), atol=1e-14)


def test_apply_leaves_its_input_alone_with_identity_operators():
    """Callables may return views of their input (here G1 = identity); apply must not write
    into y, and still equal the materialized A."""
    d, N = 2, 3
    q = QuadraticMap(np.array([0.1, -0.2]), lambda u: u, lambda u, v: u * v, dim=d)
    cs = CarlemanSystem(q, N)
    y = np.random.default_rng(0).standard_normal(cs.dim)
    y0 = y.copy()
    out = cs.apply(0, y)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_allclose(out, cs.matrix() @ y0, atol=1e-13)


# -- bad inputs ----------------------------------------------------------------------------
def small_map():
    return QuadraticMap(*coefficients(3, 0))


@pytest.mark.parametrize("order", [0, -1, 1.5, True, "2"])
def test_bad_order(order):
    with pytest.raises(UsageError, match="order N"):
        CarlemanSystem(small_map(), order)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "big"])
def test_bad_scale(scale):
    with pytest.raises(UsageError, match="scale"):
        CarlemanSystem(small_map(), 2, scale=scale)


def test_bad_shapes_and_values():
    cs = CarlemanSystem(small_map(), 2)
    with pytest.raises(UsageError, match="QuadraticMap"):
        CarlemanSystem(np.eye(3), 2)
    with pytest.raises(UsageError, match="z0 has shape"):
        cs.lift(np.zeros(4))
    with pytest.raises(UsageError, match="non-finite"):
        cs.iterate(np.array([0.0, np.inf, 0.0]), 3)
    with pytest.raises(UsageError, match="length D_N = 12"):
        cs.apply(0, np.zeros(11))
    with pytest.raises(UsageError, match="level j = 3"):
        cs.level(np.zeros(12), 3)
    for T in (0, -2, 1.5):
        with pytest.raises(UsageError, match="T ≥ 1"):
            cs.iterate(np.zeros(3), T)
    with pytest.raises(UsageError, match="non-finite"):
        QuadraticMap(np.zeros(3), np.eye(3), np.full((3, 9), np.nan))
    with pytest.raises(UsageError, match="shape"):
        QuadraticMap(np.zeros(3), np.eye(2), np.zeros((3, 9)))


def test_horizon_of_time_dependent_map():
    coefs = [coefficients(2, s) for s in range(3)]
    cs = CarlemanSystem(QuadraticMap(*[list(c) for c in zip(*coefs)]), 2)
    with pytest.raises(UsageError, match="exceeds the 3 steps"):
        cs.iterate(np.zeros(2), 4)


def test_overflow_and_nonfinite_operator_output():
    q = QuadraticMap(np.ones(2), 3.0 * np.eye(2), np.zeros((2, 4)))
    with pytest.raises(UsageError, match="overflowed"):
        CarlemanSystem(q, 3).iterate(np.ones(2), 2000)
    bad = QuadraticMap(np.zeros(2), lambda u: u * np.nan, lambda u, v: 0 * u, dim=2)
    with pytest.raises(UsageError, match="overflowed"):
        CarlemanSystem(bad, 2).iterate(np.ones(2), 1)


def test_memory_limits():
    cs = CarlemanSystem(small_map(), 4, memory_limit=1000)
    assert cs.dim == 3 + 9 + 27 + 81  # dimensions are available without allocating
    with pytest.raises(MemoryLimitError, match="memory limit"):
        cs.lift(np.zeros(3))
    with pytest.raises(MemoryLimitError, match="sparse Carleman matrix"):
        CarlemanSystem(small_map(), 4).matrix(memory_limit=10_000)
    huge = CarlemanSystem(
        QuadraticMap(np.zeros(10**5), sp.eye(10**5), sp.csr_matrix((10**5, 10**10))), 3
    )
    assert huge.dim == 10**5 + 10**10 + 10**15
    with pytest.raises(MemoryLimitError, match="needs about"):
        huge.iterate(np.zeros(10**5), 1)
    op = QuadraticMap(np.ones(3), lambda u: u, lambda u, v: u * v, dim=3)
    with pytest.raises(MemoryLimitError, match="scale=<float>"):
        CarlemanSystem(op, 2, scale="auto", memory_limit=100)
