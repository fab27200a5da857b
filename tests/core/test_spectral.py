"""Spectral tools on explicit matrices: Lanczos vs eigh, SLQ moments/density, traces, edges."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from qcarleman import UsageError
from qcarleman.errors import MemoryLimitError
from qcarleman.spectral import (
    as_linear_operator,
    exact_eigenvalues,
    hutchinson,
    hutchpp,
    lanczos,
    operator_matrix,
    probe_vectors,
    slq,
)


def sym_matrix(lam, seed=0):
    rng = np.random.default_rng(seed)
    n = len(lam)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.asarray(lam)) @ Q.T


@pytest.fixture(scope="module")
def spectrum_and_matrix():
    rng = np.random.default_rng(3)
    n = 400
    lam = np.concatenate([rng.uniform(-0.2, 1.0, n - 6), [6.0, 5.5, 4.0, -2.0, -1.5, -1.2]])
    return lam, sym_matrix(lam, 1)


@pytest.mark.parametrize("form", ["dense", "sparse", "linop", "callable"])
def test_lanczos_extremes_match_eigh(spectrum_and_matrix, form):
    lam, A = spectrum_and_matrix
    op = {
        "dense": A,
        "sparse": sp.csr_matrix(A),
        "linop": aslinearoperator(A),
        "callable": lambda v: A @ v,
    }[form]
    res = lanczos(op, k=3, n=A.shape[0])
    ref = np.sort(lam)
    assert res.converged
    np.testing.assert_allclose(res.largest, ref[::-1][:3], rtol=1e-10)
    np.testing.assert_allclose(res.smallest, ref[:3], rtol=1e-10)
    assert np.all(res.residual_largest <= 1e-9 * 6.0)
    assert res.matvecs == res.iterations < A.shape[0]


def test_lanczos_ritz_vectors_are_eigenvectors(spectrum_and_matrix):
    _, A = spectrum_and_matrix
    res = lanczos(A, k=2, return_vectors=True)
    for vals, vecs in ((res.largest, res.vectors_largest), (res.smallest, res.vectors_smallest)):
        R = A @ vecs - vecs * vals
        assert np.linalg.norm(R, axis=0).max() < 1e-8
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=0), 1.0, atol=1e-10)


def test_lanczos_which_and_maxiter_not_converged(spectrum_and_matrix):
    lam, A = spectrum_and_matrix
    top = lanczos(A, k=1, which="largest")
    assert top.converged and abs(top.largest[0] - lam.max()) < 1e-9
    short = lanczos(A, k=3, maxiter=4)
    assert not short.converged and short.iterations == 4


def test_lanczos_zero_operator_and_multiplicity_restart():
    res = lanczos(np.zeros((6, 6)), k=3)
    assert res.converged
    np.testing.assert_array_equal(res.largest, 0.0)
    # identity: breakdown after one step; restarts find k copies of the eigenvalue 1.
    res = lanczos(2.0 * np.eye(5), k=4)
    assert res.converged
    np.testing.assert_allclose(res.largest, 2.0)
    # projector of rank 2 in R^8: one start vector sees the distinct eigenvalues {1, 0} once
    # each (documented); both are exact and the extremes are right.
    P = sym_matrix([1, 1, 0, 0, 0, 0, 0, 0], 2)
    res = lanczos(P, k=2)
    assert res.converged and res.iterations == 2
    np.testing.assert_allclose(res.largest, [1, 0], atol=1e-10)
    np.testing.assert_allclose(res.smallest, [0, 1], atol=1e-10)


def test_lanczos_single_coordinate():
    res = lanczos(np.array([[-3.5]]), k=1)
    assert res.largest[0] == res.smallest[0] == -3.5 and res.converged


def test_slq_density_moments_and_batching(spectrum_and_matrix):
    lam, A = spectrum_and_matrix
    n = A.shape[0]
    res = slq(A, probes=16, iters=60, seed=1)
    assert res.nodes.shape == res.weights.shape == res.probe.shape
    assert abs(res.weights.sum() - 1.0) < 1e-12
    assert set(np.unique(res.probe)) == set(range(16))
    grid, dens = res.density()
    assert abs(np.trapezoid(dens, grid) - 1.0) < 1e-6
    assert res.moment(1) == pytest.approx(lam.mean(), rel=0.05)
    assert res.moment(2) == pytest.approx((lam**2).mean(), rel=0.05)
    assert res.trace() == pytest.approx(n * res.moment(1))
    # quadrature with m steps is exact for polynomials of degree ≤ 2m−1: per-probe forms
    Z = probe_vectors(n, 16, "rademacher", 1)
    V = Z / np.linalg.norm(Z, axis=0)
    np.testing.assert_allclose(res.quad_forms, np.einsum("ij,ij->j", V, A @ V), rtol=1e-9)
    # batching changes nothing (same probes, independent recurrences)
    one = slq(A, probes=16, iters=60, seed=1, batch=3)
    np.testing.assert_allclose(np.sort(one.nodes), np.sort(res.nodes), atol=1e-9)
    assert one.matvecs == res.matvecs == 16 * 60


def test_slq_exact_on_small_operator_and_gaussian_probes():
    lam = np.array([-1.0, 0.5, 0.5, 2.0, 3.0])
    A = sym_matrix(lam, 4)
    res = slq(A, probes=4, iters=50, dist="gaussian", seed=2)
    assert res.iters == 5  # capped at n
    # every node is an eigenvalue (Krylov space spans the probe's eigencomponents)
    assert np.min(np.abs(res.nodes[:, None] - np.unique(lam)[None, :]), axis=1).max() < 1e-9
    noreorth = slq(A, probes=4, iters=5, dist="gaussian", seed=2, reorth=False)
    assert abs(noreorth.moment(2) - res.moment(2)) < 1e-8


def test_slq_zero_operator_density():
    res = slq(np.zeros((10, 10)), probes=3, iters=5)
    np.testing.assert_array_equal(res.nodes, 0.0)
    grid, dens = res.density()
    assert abs(np.trapezoid(dens, grid) - 1.0) < 1e-6
    assert res.mass_below(0.0) == 0.0


def test_trace_estimators():
    rng = np.random.default_rng(5)
    n = 300
    # low-rank-dominated PSD matrix: Hutch++ should beat plain Hutchinson
    lam = np.concatenate([100.0 / np.arange(1, 11), 0.01 * rng.random(n - 10)])
    A = sym_matrix(lam, 6)
    tr = lam.sum()
    h = hutchinson(A, probes=96, seed=0)
    hpp = hutchpp(A, matvecs=96, seed=0)
    assert h.matvecs == hpp.matvecs == 96
    assert abs(h.value - tr) < 4 * h.stderr + 1e-9
    assert abs(hpp.value - tr) / tr < 0.01
    assert abs(hpp.value - tr) < abs(h.value - tr)
    # exact on a diagonal matrix with Rademacher probes
    assert hutchinson(np.diag(np.arange(5.0)), probes=2).value == pytest.approx(10.0)


def test_operator_matrix_and_exact_eigenvalues(spectrum_and_matrix):
    lam, A = spectrum_and_matrix
    M = operator_matrix(lambda v: A @ v, n=A.shape[0], chunk=64)
    np.testing.assert_allclose(M, A, atol=1e-12)
    np.testing.assert_allclose(exact_eigenvalues(A), np.sort(lam), atol=1e-10)
    with pytest.raises(MemoryLimitError):
        operator_matrix(A, memory_limit=1000)
    with pytest.raises(MemoryLimitError):
        lanczos(A, memory_limit=1000)


def test_bad_inputs():
    with pytest.raises(UsageError, match="dimension 0"):
        lanczos(np.zeros((0, 0)))
    with pytest.raises(UsageError, match="dimension"):
        as_linear_operator(lambda v: v)
    with pytest.raises(UsageError, match="square"):
        lanczos(np.zeros((3, 4)))
    with pytest.raises(UsageError, match="k = 5"):
        lanczos(np.eye(3), k=5)
    with pytest.raises(UsageError, match="which"):
        lanczos(np.eye(3), which="middle")
    with pytest.raises(UsageError, match="distribution"):
        slq(np.eye(3), dist="uniform")
    with pytest.raises(UsageError, match="probes"):
        slq(np.eye(3), probes=0)
    with pytest.raises(UsageError, match="sigma"):
        slq(np.eye(3), probes=1).density(sigma=0.0)


def test_slq_deflation_exact_parts_and_bad_inputs(spectrum_and_matrix):
    lam, A = spectrum_and_matrix
    n = A.shape[0]
    w, V = np.linalg.eigh(A)
    defl = (w[-3:], V[:, -3:])
    res = slq(A, probes=8, iters=40, seed=0, deflate=defl, dist="gaussian")
    assert res.deflated == 3
    np.testing.assert_array_equal(res.nodes[res.probe == -1], w[-3:])
    assert abs(res.weights.sum() - 1) < 1e-12
    # the complement rules never see the deflated eigenvalues
    assert res.nodes[res.probe >= 0].max() < w[-3] - 1e-6
    assert res.moment(2) == pytest.approx(np.mean(lam**2), rel=0.05)
    with pytest.raises(UsageError, match="orthonormal"):
        slq(A, deflate=(w[-2:], 2.0 * V[:, -2:]))
    with pytest.raises(UsageError, match="values but"):
        slq(A, deflate=(w[-2:], V[:, -3:]))
    with pytest.raises(UsageError, match="deflate fewer"):
        slq(np.eye(2), deflate=(np.ones(2), np.eye(2)))
    assert n == 400


def test_gap_bounds_never_below_the_true_error_once_the_top_pair_is_seen():
    """Lanczos' error_largest (Kato–Temple with Ritz gaps, gap_bounds) covers λ_max − θ_1 at
    every step once the top two Ritz intervals are disjoint, and is ≤ the residual bound; with
    rule="gap" the NumPy Lanczos stops earlier for the same accuracy."""
    from qcarleman.spectral import gap_bounds, lanczos

    rng = np.random.default_rng(0)
    eigs = np.r_[np.linspace(0.0, 1.0, 200), [1.3, 2.0]]
    Q, _ = np.linalg.qr(rng.standard_normal((202, 202)))
    A = Q @ np.diag(eigs) @ Q.T
    seen = 0
    for steps in range(4, 40, 3):
        r = lanczos(A, k=2, which="largest", maxiter=steps, tol=0.0)
        (t1, t2), (r1, r2) = r.largest, r.residual_largest
        assert r.error_largest[0] <= r1
        if t1 - r1 > t2 + r2:  # the top pair separated: the bound applies
            seen += 1
            assert 0 <= 2.0 - t1 <= r.error_largest[0] + 1e-12
    assert seen >= 5
    np.testing.assert_allclose(gap_bounds([0.0, 1.0], [0.1, 0.2]), [0.1**2 / 0.8, 0.2**2 / 0.9])
    np.testing.assert_allclose(gap_bounds([0.0, 0.1], [0.2, 0.3]), [0.2, 0.3])  # no gap: r
    gap = lanczos(A, k=1, which="largest", tol=1e-8, rule="gap")
    res = lanczos(A, k=1, which="largest", tol=1e-8)
    assert gap.converged and gap.iterations < res.iterations
    assert 2.0 - gap.largest[0] <= 1e-8 * 2.0
    with pytest.raises(UsageError, match="rule"):
        lanczos(A, rule="exact")
