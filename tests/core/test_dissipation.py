"""Dissipation metrics (ALGORITHM.md §6) against hand-computed values and brute force."""

import math

import numpy as np
import pytest

from qcarleman import UsageError
from qcarleman.dissipation import (
    dissipative_split,
    error_curve,
    f0_norm,
    f2_norm,
    rd,
    rd_star,
    regime,
    rho,
    window,
    window_closed,
)
from qcarleman.spectral import lanczos, slq


def test_error_curve_by_hand():
    lam = np.array([0.0, 1.0, 3.0, -1.0])
    E = error_curve(lam, lr=0.5, T=3)
    # |1 - a| = 1, 0.5, 0.5, 1.5
    ref = [np.mean([1, 0.5**t, 0.5**t, 1.5**t]) for t in range(4)]
    np.testing.assert_allclose(E, ref, rtol=1e-15)
    assert E[0] == 1.0


def test_error_curve_weighted_equals_repeated_eigenvalues():
    nodes = np.array([0.2, 1.0, -0.5])
    w = np.array([2.0, 1.0, 1.0])  # not normalized on purpose
    lam = np.array([0.2, 0.2, 1.0, -0.5])
    np.testing.assert_allclose(
        error_curve(nodes, 0.3, 10, weights=w), error_curve(lam, 0.3, 10), rtol=1e-14
    )


def test_error_curve_from_slq_matches_exact():
    # bulk near 0 plus isolated negative outliers, which dominate |1 − ηλ|^t at large t: deflating
    # the extreme Ritz pairs removes their probe variance (plain SLQ is checked too, looser).
    rng = np.random.default_rng(0)
    n = 800
    lam = np.concatenate([rng.gamma(0.5, 0.3, n - 20), -rng.gamma(0.5, 0.05, 20)])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * lam) @ Q.T
    lr = 1.0 / lam.max()
    E_ex = error_curve(lam, lr, 50)
    ext = lanczos(A, k=8, return_vectors=True)
    assert ext.converged
    defl = (
        np.r_[ext.largest, ext.smallest],
        np.hstack([ext.vectors_largest, ext.vectors_smallest]),
    )
    res = slq(A, probes=64, iters=30, seed=0, deflate=defl)
    assert res.deflated == 16 and abs(res.weights.sum() - 1) < 1e-12
    assert np.all(res.weights[res.probe == -1] == 1.0 / n)
    E_slq = error_curve(res.nodes, lr, 50, weights=res.weights)
    assert np.max(np.abs(E_slq / E_ex - 1)) < 0.01
    plain = slq(A, probes=64, iters=30, seed=0)
    E_plain = error_curve(plain.nodes, lr, 50, weights=plain.weights)
    assert np.max(np.abs(E_plain / E_ex - 1)) < 0.03


def test_split_sums_to_E_and_ratio():
    lam = np.array([0.0, 1.0, 3.0, -1.0])
    D, G, r = dissipative_split(lam, lr=0.5, T=5)
    E = error_curve(lam, 0.5, 5)
    np.testing.assert_allclose(D + G, E, rtol=1e-15)
    np.testing.assert_allclose(D, [0.5 * 0.5**t for t in range(6)])  # two modes at 0.5
    np.testing.assert_allclose(G, [0.25 + 0.25 * 1.5**t for t in range(6)])
    np.testing.assert_allclose(r, D / G)
    D, G, r = dissipative_split(np.array([1.0, 2.0]), lr=0.5, T=2)
    assert np.all(G == 0) and np.all(np.isinf(r))


def test_window():
    assert window([1.0, 0.8, 0.7, 0.9, 1.2, 0.5]) == 3
    assert window([1.0, 1.1, 0.9]) == 0
    assert window([1.0, 0.9, 0.8]) == 2 and not window_closed([1.0, 0.9, 0.8])
    assert window_closed([1.0, 1.1])
    assert window([1.0 + 1e-15, 1.0]) == 1  # rounding of E(0) is not "above 1"
    # zero Hessian: E ≡ 1, the window never closes
    E = error_curve(np.zeros(5), 0.1, 20)
    assert np.all(E == 1.0) and window(E) == 20


def test_rho_and_regime():
    lam = np.array([-0.1, 0.5, 2.0])
    assert rho(lam, 0.5) == pytest.approx(1.05)
    assert rho([-0.1, 2.0], 0.5) == rho(lam, 0.5)  # extremes suffice
    assert rho([0.5, 3.9], 0.5) == pytest.approx(0.95)
    assert regime(0.95, 20) == "fully dissipative"
    assert regime(1.05, 20) == "almost dissipative"
    assert regime(1.0, 20) == "almost dissipative"
    assert regime(1.06, 20) == "non-dissipative"
    assert regime(1.5, 2) == "almost dissipative"


def test_f2_norm_known_tensors():
    # orthogonally decomposable symmetric tensor Σ c_i q_i⊗q_i⊗q_i: ‖F2‖ = max |c_i|
    rng = np.random.default_rng(1)
    d = 6
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    c = np.array([0.3, -2.0, 1.1, 0.2, 0.0, -0.5])
    K = np.einsum("r,ir,jr,kr->ijk", c, Q, Q, Q)
    est = f2_norm(lambda u, v: np.einsum("ijk,j,k->i", K, u, v), d, iters=200, seed=0)
    assert est == pytest.approx(2.0, rel=1e-6)


def test_f2_norm_random_symmetric_vs_brute_force():
    rng = np.random.default_rng(2)
    d = 3
    K = rng.standard_normal((d, d, d))
    K = sum(
        K.transpose(p) for p in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    )
    F2 = lambda u, v: -0.05 * np.einsum("ijk,j,k->i", K, u, v)
    # brute force on a fine grid of the unit sphere
    th, ph = np.meshgrid(np.linspace(0, np.pi, 400), np.linspace(0, 2 * np.pi, 800))
    U = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)]).reshape(3, -1)
    brute = np.linalg.norm(-0.05 * np.einsum("ijk,jm,km->im", K, U, U), axis=0).max()
    est = f2_norm(F2, d, iters=300, restarts=5, seed=0)
    assert est <= brute * (1 + 1e-4)
    assert est == pytest.approx(brute, rel=1e-3)


def test_f2_norm_zero_and_rd():
    assert f2_norm(lambda u, v: 0 * u, 4) == 0.0
    assert f0_norm(np.array([3.0, 4.0]), 0.1) == pytest.approx(0.5)
    # R_d* is the minimum of R_d(r), attained at r* = sqrt(f0/F2)
    f0, F2, p = 0.01, 0.4, 0.8
    rs = np.sqrt(f0 / F2)
    assert rd_star(f0, F2, p) == pytest.approx(rd(rs, f0, F2, p))
    assert rd_star(f0, F2, p) == pytest.approx(2 * math.sqrt(f0 * F2) / 0.2)
    assert min(rd(r, f0, F2, p) for r in np.linspace(0.01, 1, 500)) >= rd_star(f0, F2, p) - 1e-12
    assert rd_star(f0, F2, 1.0) == math.inf and rd(0.1, f0, F2, 1.2) == math.inf


def test_bad_inputs():
    with pytest.raises(UsageError, match="empty"):
        error_curve(np.array([]), 0.1, 5)
    with pytest.raises(UsageError, match="learning rate"):
        error_curve(np.ones(3), 0.0, 5)
    with pytest.raises(UsageError, match="weights"):
        error_curve(np.ones(3), 0.1, 5, weights=np.ones(2))
    with pytest.raises(UsageError, match="horizon"):
        regime(0.5, 0)
    with pytest.raises(UsageError, match="NaN"):
        rho(np.array([np.nan]), 0.1)
    with pytest.raises(UsageError, match="length 3"):
        f2_norm(lambda u, v: np.ones(2), 3)
