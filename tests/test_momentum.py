"""The map actually trained (ALGORITHM.md §6.1): momentum/weight-decay factors, E(t), window,
ρ and ‖A_lin‖ against the dense linear part of a real GDMap and brute-force iteration; κ bounds
never below the exact κ; the matrix-free measured κ against the dense SVD; SLQ probe bands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.autodiff.gdmap import GDMap
from qcarleman.autodiff.history_operator import HistoryOperator
from qcarleman.carleman import CarlemanSystem
from qcarleman.carleman.kappa import kappa_bound, kappa_modes, kappa_of_history
from qcarleman.dissipation import (
    TrainedMap,
    diagnose,
    dissipative_split,
    error_curve,
    linear_norm,
    probe_band,
    rho,
    window,
)
from qcarleman.dynamics import QuadraticMap
from qcarleman.errors import UsageError
from qcarleman.spectral import lanczos, slq
from qcarleman.training.models import MLP
from qcarleman.training.pruning import prune_global

DEFAULT_DTYPE = torch.float64  # applied per test by conftest.py
CE = nn.functional.cross_entropy


def digits_map(momentum=0.9, wd=5e-4, lr=0.05, steps=1, per_step=False, hidden=4):
    """A 90%-pruned tanh MLP on sklearn digits as a GDMap (n ≈ 40; d = 2n with momentum)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0), torch.tensor(d.target)
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(hidden,), activation="tanh").double()
    mask = prune_global(model, 0.9, include_classifier=True)
    batches = [(x[32 * i : 32 * (i + 1)], y[32 * i : 32 * (i + 1)]) for i in range(steps)]
    return GDMap(
        model, CE, batches, lr, mask=mask, weight_decay=wd, momentum=momentum, per_step=per_step
    )


def dense_g1(gm: GDMap, t: int = 0) -> np.ndarray:
    return gm.g1(t, np.eye(gm.dim))


def hessian_eig(gm: GDMap, t: int = 0):
    return np.linalg.eigh(gm.operators(t).dense_hessian().numpy())


@pytest.fixture(scope="module")
def sgd_map():
    """Heavy-ball SGD (μ = 0.9, weight decay) on 3 batches, η = 0.3."""
    return digits_map(momentum=0.9, lr=0.3, steps=3, per_step=True)


@pytest.fixture(scope="module")
def mom_map(sgd_map):
    lam, V = hessian_eig(sgd_map)
    return sgd_map, dense_g1(sgd_map), lam, V


def test_momentum_factor_equals_eigenvalues_of_the_dense_linear_part(mom_map):
    gm, G1, lam, _ = mom_map
    tm = TrainedMap(gm.lr, gm.momentum, gm.weight_decay)
    ev = np.linalg.eigvals(G1)
    roots = tm.roots(lam)  # H of LossOperators already contains λ_wd I
    assert G1.shape == (2 * gm.n, 2 * gm.n) and gm.n > 20
    np.testing.assert_allclose(np.sort(np.abs(ev)), np.sort(np.abs(roots).ravel()), atol=1e-12)
    # each eigenvalue of G1 is a root of its mode's polynomial
    dist = np.abs(ev[:, None] - roots.ravel()[None, :])
    assert dist.min(axis=0).max() < 1e-10 and dist.min(axis=1).max() < 1e-10
    np.testing.assert_allclose(tm.factor(lam), np.abs(roots).max(axis=1), atol=1e-14)
    assert rho(lam, tm, includes_weight_decay=True) == pytest.approx(np.abs(ev).max(), abs=1e-12)
    assert linear_norm(lam, tm, includes_weight_decay=True) == pytest.approx(
        np.linalg.norm(G1, 2), abs=1e-12
    )
    # the same map from eigenvalues of ∇²L alone, shifted by λ_wd here
    raw = lam - gm.weight_decay
    np.testing.assert_allclose(
        tm.factor(tm.curvature(raw, includes_weight_decay=False)), tm.factor(lam), atol=1e-15
    )
    with pytest.raises(UsageError, match="includes_weight_decay"):
        rho(lam, tm)
    # μ = 0: the paper's plain-GD definitions exactly
    plain = TrainedMap(gm.lr, 0.0, gm.weight_decay)
    for T in (0, 7):
        np.testing.assert_array_equal(
            error_curve(lam, plain, T, includes_weight_decay=True), error_curve(lam, gm.lr, T)
        )
    assert rho(lam, plain, includes_weight_decay=True) == rho(lam, gm.lr)
    assert tm.paper() == plain


def test_momentum_error_curve_by_brute_force_iteration(mom_map):
    gm, G1, lam, V = mom_map
    tm = TrainedMap(gm.lr, gm.momentum, gm.weight_decay)
    n, T = gm.n, 30
    Q = np.zeros((2 * n, 2 * n))  # mode ν ↦ columns (ν, n+ν): (v_ν, 0) and (0, v_ν)
    Q[:n, :n], Q[n:, n:] = V, V
    Z = Q.copy()
    E_bf, blocks = [1.0], []
    for _ in range(T):
        Z = gm.g1(0, Z)  # the linearized momentum map on all 2n starting states at once
        M = Q.T @ Z  # G1^t in the mode basis: block diagonal
        idx = np.arange(n)
        B = np.stack([M[np.ix_([i, n + i], [i, n + i])] for i in idx])  # (n, 2, 2) = B_ν^t
        off = M.copy()
        off[idx, idx] = off[idx, n + idx] = off[n + idx, idx] = off[n + idx, n + idx] = 0
        blocks.append(np.abs(off).max() / np.abs(M).max())
        E_bf.append(float(np.mean(np.linalg.norm(B, 2, axis=(1, 2)))))
    assert max(blocks) < 1e-12  # the linear part really splits into the 2×2 mode blocks
    E = error_curve(lam, tm, T, includes_weight_decay=True)
    np.testing.assert_allclose(E, E_bf, rtol=1e-10)
    D, G, r = dissipative_split(lam, tm, T, includes_weight_decay=True)
    np.testing.assert_allclose(D + G, E, rtol=1e-12)
    dg = diagnose(lam, tm, T, horizon=20, includes_weight_decay=True)
    assert dg.window == window(np.array(E_bf)) and dg.rho == rho(
        lam, tm, includes_weight_decay=True
    )
    assert dg.to_json()["momentum"] == gm.momentum
    assert dg.norm == pytest.approx(np.linalg.norm(G1, 2), abs=1e-12)


def test_factor_and_norm_closed_forms_on_a_grid():
    tm = TrainedMap(0.3, 0.7, 0.0)
    lam = np.linspace(-3, 12, 2001)
    blocks = tm.block(lam)
    np.testing.assert_allclose(
        tm.factor(lam), np.abs(np.linalg.eigvals(blocks)).max(axis=1), rtol=1e-7, atol=1e-12
    )  # eig of the Jordan-like blocks near b² = 4μ is only √ε accurate
    np.testing.assert_allclose(tm.norm(lam), np.linalg.norm(blocks, 2, axis=(1, 2)), rtol=1e-12)
    P = tm.power_norms(lam[::50], 30)
    ref = [np.linalg.norm(np.linalg.matrix_power(B, 30), 2) for B in blocks[::50]]
    np.testing.assert_allclose(P[30], ref, rtol=1e-10)
    # the maxima over an interval are at its ends (quasi-convex factor, convex norm)
    assert tm.factor(lam).max() == pytest.approx(tm.factor(lam[[0, -1]]).max(), rel=1e-15)
    assert tm.norm(lam).max() == pytest.approx(tm.norm(lam[[0, -1]]).max(), rel=1e-15)
    with pytest.raises(UsageError):
        TrainedMap(0.1, 1.0)
    with pytest.raises(UsageError):
        TrainedMap(-0.1)


def _history_exact(G1s, T, idle):
    d = G1s[0].shape[0]
    qm = QuadraticMap([np.zeros(d)] * T, list(G1s), [np.zeros((d, d, d))] * T)
    return CarlemanSystem(qm, 1).history(np.zeros(d), T, idle=idle)


def test_kappa_bound_never_below_exact_kappa_on_random_maps():
    rng = np.random.default_rng(7)
    ratios = []
    for case in range(60):
        n = int(rng.integers(1, 5))
        mu = 0.0 if case % 5 == 0 else float(rng.uniform(0, 0.99))
        tm = TrainedMap(float(rng.uniform(0.01, 1.2)), mu, float(rng.choice([0.0, 0.05, 0.3])))
        includes = bool(rng.integers(2))
        T, p = int(rng.integers(1, 6)), int(rng.integers(0, 4))
        steps = T if case % 2 else 1  # per-step SGD maps in half of the cases
        G1s, intervals, lams = [], [], []
        for _ in range(steps):
            lam = rng.uniform(-1.0, 3.0, n) * rng.choice([0.1, 1.0, 3.0])
            Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            H = (Q * tm.curvature(lam, includes_weight_decay=includes)) @ Q.T
            eta, I = tm.lr, np.eye(n)
            G1 = np.block([[I - eta * H, -eta * mu * I], [H, mu * I]]) if mu else I - eta * H
            G1s.append(G1)
            intervals.append((lam.min(), lam.max()))
            lams.append(lam)
        G1s = G1s * T if steps == 1 else G1s
        hist = _history_exact(G1s, T, p)
        exact = kappa_of_history(hist, "exact")
        bound = kappa_bound(tm, intervals, T, p, includes_weight_decay=includes)
        assert exact.kind == "exact" and bound.kind == "bound"
        assert bound.value >= exact.value * (1 - 1e-12), (case, bound.value, exact.value)
        assert hist.kappa("bound") >= exact.value * (1 - 1e-12)  # the fixed §3 bound of L
        if steps == 1:
            modes = kappa_modes(lams[0], tm, T, p, includes_weight_decay=includes)
            assert modes.kind == "exact"
            assert modes.value == pytest.approx(exact.value, rel=1e-9)
        ratios.append(bound.value / exact.value)
    assert min(ratios) >= 1 - 1e-12


def test_kappa_bound_order2_never_below_exact():
    rng = np.random.default_rng(3)
    for _ in range(8):
        n, mu = 2, float(rng.uniform(0, 0.95))
        tm = TrainedMap(float(rng.uniform(0.05, 0.8)), mu)
        lam = rng.uniform(-0.5, 2.0, n)
        eta, I = tm.lr, np.eye(n)
        H = np.diag(lam)
        G1 = np.block([[I - eta * H, -eta * mu * I], [H, mu * I]])
        g = 0.1 * rng.standard_normal(n)
        G0 = np.r_[-eta * g, g]
        K = rng.standard_normal((n, n, n))
        K = sum(K.transpose(p) for p in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]) / 3
        G2 = np.zeros((2 * n,) * 3)
        G2[:n, :n, :n], G2[n:, :n, :n] = -eta / 2 * K, K / 2
        T, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        cs = CarlemanSystem(QuadraticMap(G0, G1, G2), 2, scale=1.0)
        exact = cs.history(np.zeros(2 * n), T, idle=p).kappa("exact")
        bound = kappa_bound(
            tm,
            (lam.min(), lam.max()),
            T,
            p,
            includes_weight_decay=True,
            order=2,
            g0_norm=float(np.linalg.norm(G0)),
            g2_norm=float(np.linalg.norm(G2.reshape(2 * n, -1), 2)),
        )
        assert bound.value >= exact * (1 - 1e-12)


def test_history_norm_bound_counts_the_idle_identity_blocks():
    """A = 0, T = p = 1: ‖L‖ = ‖L⁻¹‖ = (1 + √5)/2, so κ = 2.618 exceeds 1·(1 + 0 + 1) = 2 (the
    bound without the idle blocks in ‖L‖)."""
    hist = _history_exact([np.zeros((1, 1))], 1, 1)
    exact = hist.kappa("exact")
    assert exact == pytest.approx(((1 + 5**0.5) / 2) ** 2, rel=1e-12)
    assert hist.kappa("bound") >= exact
    assert kappa_bound(TrainedMap(1.0), (1.0, 1.0), 1, 1, includes_weight_decay=None).value >= exact


@pytest.mark.parametrize("sgd", [True, False])
def test_measured_kappa_matrix_free_against_dense_svd(sgd, sgd_map):
    T, p = 3, 2
    gm = sgd_map if sgd else digits_map(momentum=0.0, lr=0.3, steps=T, per_step=False)
    momentum, per_step = gm.momentum, gm.per_step
    op = HistoryOperator(gm, T, p)
    G1s = [dense_g1(gm, t if per_step else 0) for t in range(T)]
    hist = _history_exact(G1s, T, p)
    L = hist.matrix().toarray()
    rng = np.random.default_rng(0)
    y, w = rng.standard_normal(op.dim), rng.standard_normal(op.dim)
    np.testing.assert_allclose(op.matvec(y), L @ y, atol=1e-11)
    np.testing.assert_allclose(op.rmatvec(w), L.T @ w, atol=1e-11)
    np.testing.assert_allclose(op.solve(y), np.linalg.solve(L, y), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(
        op.solve_transpose(w), np.linalg.solve(L.T, w), rtol=1e-9, atol=1e-11
    )
    exact = hist.kappa("exact")
    measured = op.kappa()
    assert measured.kind == "measured" and "converged" in measured.source
    assert measured.value == pytest.approx(exact, rel=0.05)
    assert measured.value <= exact * (1 + 1e-6)  # Ritz values lie inside the spectrum
    assert kappa_bound(
        TrainedMap(gm.lr, momentum, gm.weight_decay),
        [(hessian_eig(gm, t if per_step else 0)[0][[0, -1]]) for t in range(T)],
        T,
        p,
        includes_weight_decay=True,
    ).value >= exact * (1 - 1e-12)
    bound = op.kappa_bound()
    assert bound.kind == "bound" and bound.value >= exact * (1 - 1e-12)
    # P_succ of the order-1 system, exact from the forward solve
    z0 = gm.initial_state()
    G0s = [gm.g0(t if per_step else 0) for t in range(T)]
    qm = QuadraticMap(G0s, G1s, [np.zeros((gm.dim,) * 3)] * T)
    ref = CarlemanSystem(qm, 1).history(z0, T, idle=p).success_probability
    ps = op.success_probability(z0)
    assert ps.kind == "exact" and ps.value == pytest.approx(ref, rel=1e-10)


def test_probe_band_of_slq_momentum_curve():
    rng = np.random.default_rng(1)
    n = 600
    lam = np.concatenate([rng.gamma(0.5, 0.4, n - 10), -rng.gamma(0.5, 0.05, 10)])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * lam) @ Q.T
    tm = TrainedMap(0.5 / lam.max(), 0.9, 1e-3)
    ext = lanczos(A, k=5, return_vectors=True)
    defl = (
        np.r_[ext.largest, ext.smallest],
        np.hstack([ext.vectors_largest, ext.vectors_smallest]),
    )
    res = slq(A, probes=12, iters=40, seed=2, deflate=defl)
    kw = dict(includes_weight_decay=True)
    E_ex = error_curve(lam, tm, 60, **kw)
    band = probe_band(res.nodes, res.weights, res.probe, tm, 60, z=3.0, **kw)
    E = error_curve(res.nodes, tm, 60, res.weights, **kw)
    assert np.all(band.low <= E) and np.all(E <= band.high) and band.probes == 12
    assert np.all((band.low <= E_ex * (1 + 1e-12)) & (E_ex <= band.high * (1 + 1e-12)))
    assert band.window_low <= window(E_ex) <= band.window_high
    with pytest.raises(UsageError, match="2 SLQ probes"):
        probe_band(res.nodes, res.weights, np.where(res.probe > 0, 0, res.probe), tm, 5, **kw)
