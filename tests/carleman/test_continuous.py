"""ContinuousCarleman (PNAS 2021 form): lifted generator vs an explicit Kronecker build, exactness
of the lift, Euler equivalence when F2 = 0, convergence in N, scaling, diagnostics, history."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp

import qcarleman.carleman.continuous as cont
from qcarleman import UsageError
from qcarleman.carleman import ContinuousCarleman, HistorySystem
from qcarleman.carleman.continuous import CarlemanDiagnosticWarning


def random_system(d=3, seed=0):
    rng = np.random.default_rng(seed)
    F1 = rng.standard_normal((d, d))
    F2 = rng.standard_normal((d, d, d))
    c = rng.standard_normal(d)
    return (lambda t: c * np.cos(2.0 * t) + 0.1), F1, F2


def kron_generator(f0, F1, F2, N, gamma):
    """A (PNAS eq. 3.2) built densely with np.kron, independently of the class."""
    d = F1.shape[0]
    F2m = gamma * F2.reshape(d, d * d)
    f0c = (f0 / gamma).reshape(d, 1)
    dims = [d**j for j in range(1, N + 1)]
    off = np.concatenate([[0], np.cumsum(dims)])
    A = np.zeros((off[-1], off[-1]))

    def ksum(F, j):
        return sum(np.kron(np.kron(np.eye(d**i), F), np.eye(d ** (j - 1 - i))) for i in range(j))

    for j in range(1, N + 1):
        r = slice(off[j - 1], off[j])
        A[r, off[j - 1] : off[j]] = ksum(F1, j)
        if j < N:
            A[r, off[j] : off[j + 1]] = ksum(F2m, j)
        if j > 1:
            A[r, off[j - 2] : off[j - 1]] = ksum(f0c, j)
    return A


@pytest.mark.parametrize("dense_d", [64, 0], ids=["dense-path", "operator-path"])
def test_generator_and_matrix_match_kronecker_build(monkeypatch, dense_d):
    monkeypatch.setattr(cont, "_DENSE_D", dense_d)
    f0, F1, F2 = random_system()
    cc = ContinuousCarleman(f0, F1, F2, 3, 0.01, t0=0.2, scale=0.7)
    A = kron_generator(f0(0.5), F1, F2, 3, 0.7)
    y = np.random.default_rng(1).standard_normal(cc.dim)
    np.testing.assert_allclose(cc.generator(0.5, y), A @ y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cc.generator_matrix(0.5).toarray(), A, atol=1e-13)
    k = 3  # t_k = 0.2 + 3·0.01 = 0.23
    Ak = kron_generator(f0(0.23), F1, F2, 3, 0.7)
    np.testing.assert_allclose(cc.matrix(k).toarray(), np.eye(cc.dim) + 0.01 * Ak, atol=1e-13)
    assert cc.matrix_nnz(k) >= cc.matrix(k).nnz
    np.testing.assert_allclose(cc.apply(k, y), y + 0.01 * Ak @ y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cc.rhs(k)[:3], 0.01 * f0(0.23) / 0.7, rtol=1e-14)
    assert not cc.rhs(k)[3:].any()


def test_lift_is_exact_below_the_truncation_level():
    """d/dt (u/γ)^{⊗j} = Σ_i …⊗ f(u)/γ ⊗… equals (A ŷ + b)_j for j < N (PNAS eq. 3.2)."""
    f0, F1, F2 = random_system(seed=2)
    g = 1.7
    cc = ContinuousCarleman(f0, F1, F2, 3, 0.01, scale=g)
    u = np.array([0.3, -0.2, 0.5])
    du = cc.vector_field(0.4, u) / g
    v = u / g
    lhs = cc.generator(0.4, cc.lift(u)) + cc.forcing(0.4)
    np.testing.assert_allclose(cc.level(lhs, 1), du, rtol=1e-12)
    np.testing.assert_allclose(
        cc.level(lhs, 2), (np.outer(du, v) + np.outer(v, du)).ravel(), rtol=1e-12, atol=1e-14
    )


def test_lifted_euler_equals_direct_euler_when_F2_is_zero():
    """With F2 = 0 level 1 decouples, so the lifted Euler trajectory is direct Euler."""
    f0, F1, _ = random_system(d=4, seed=3)
    F1 = F1 - 3 * np.eye(4)
    cc = ContinuousCarleman(f0, F1, np.zeros((4, 4, 4)), 3, 0.01)
    u0 = np.array([0.5, -1.0, 0.25, 2.0])
    lifted, direct = cc.iterate(u0, 200), cc.euler(u0, 200)
    np.testing.assert_allclose(lifted, direct, rtol=1e-13, atol=1e-15)
    # …and this is not trivially true: with F2 ≠ 0 they differ.
    cc2 = ContinuousCarleman(f0, F1, 0.3 * random_system(d=4)[2], 3, 0.01)
    assert np.abs(cc2.iterate(u0, 50) - cc2.euler(u0, 50)).max() > 1e-6


def dissipative_system():
    """d = 3 with R < 1: F1 = −diag(2, 3, 4), small F2 and forcing."""
    rng = np.random.default_rng(4)
    F2 = 0.1 * rng.standard_normal((3, 9))
    return (lambda t: 0.05 * math.sin(t) * np.ones(3)), -np.diag([2.0, 3.0, 4.0]), F2


def test_truncation_error_decreases_with_order():
    """The truncated lifted ODE dŷ/dt = Aŷ + b (solved accurately, no Euler) converges to the
    nonlinear solution as N grows when R < 1 (PNAS Theorem 1)."""
    f0, F1, F2 = dissipative_system()
    u0 = np.array([0.3, -0.2, 0.25])
    t = np.linspace(0, 3, 31)
    opts = dict(method="DOP853", t_eval=t, rtol=1e-12, atol=1e-14)
    cc = ContinuousCarleman(f0, F1, F2, 1, 0.01)
    assert cc.diagnostics(u0, steps=300)["R"] < 1
    exact = solve_ivp(cc.vector_field, (0, 3), u0, **opts).y
    errs = []
    for N in (1, 2, 3, 4):
        cc = ContinuousCarleman(f0, F1, F2, N, 0.01)
        ode = lambda s, y, cc=cc: cc.generator(s, y) + cc.forcing(s)
        errs.append(np.abs(solve_ivp(ode, (0, 3), cc.lift(u0), **opts).y[:3] - exact).max())
    assert all(b < a / 5 for a, b in zip(errs, errs[1:])), errs


def test_euler_carleman_converges_to_the_lifted_ode_as_h_shrinks():
    """Carleman-Euler is first order in h: halving h halves the error at fixed N."""
    f0, F1, F2 = dissipative_system()
    u0 = np.array([0.3, -0.2, 0.25])
    cc = ContinuousCarleman(f0, F1, F2, 3, 0.01)
    ode = lambda s, y: cc.generator(s, y) + cc.forcing(s)
    ref = solve_ivp(ode, (0, 1), cc.lift(u0), method="DOP853", rtol=1e-12, atol=1e-14).y[:3, -1]
    errs = [
        np.abs(ContinuousCarleman(f0, F1, F2, 3, 1 / n).iterate(u0, n)[-1] - ref).max()
        for n in (100, 200, 400)
    ]
    assert all(1.8 < a / b < 2.2 for a, b in zip(errs, errs[1:])), errs


def test_scale_does_not_change_the_trajectory():
    f0, F1, F2 = dissipative_system()
    u0 = np.array([0.3, -0.2, 0.25])
    base = ContinuousCarleman(f0, F1, F2, 3, 0.01).iterate(u0, 100)
    auto = ContinuousCarleman(f0, F1, F2, 3, 0.01, steps=100, scale="auto")
    f2 = np.linalg.norm(F2, 2)
    f0max = max(np.linalg.norm(f0(0.01 * k)) for k in range(101))
    assert auto.scale == pytest.approx(math.sqrt(f0max / f2), rel=1e-12)
    np.testing.assert_allclose(auto.iterate(u0, 100), base, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(auto.lift(u0)[:3], u0 / auto.scale)


def test_diagnostics_follow_the_pnas_formulas():
    F1 = np.diag([-1.0, -2.0, 0.0])  # the zero eigenvalue is excluded: λ1 = −1
    F2 = np.zeros((3, 9))
    F2[0, 0] = 0.2  # ‖F2‖ = 0.2
    f0 = np.array([0.0, 0.03, 0.04])  # ‖F0‖ = 0.05
    u0 = np.array([0.6, 0.0, 0.8])  # ‖u0‖ = 1
    cc = ContinuousCarleman(f0, F1, F2, 2, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = cc.diagnostics(u0)
    assert diag["lambda1"] == pytest.approx(-1.0)
    assert diag["R"] == pytest.approx((1 * 0.2 + 0.05 / 1) / 1)
    disc = 1 - 4 * 0.2 * 0.05
    assert diag["r_minus"] == pytest.approx((1 - math.sqrt(disc)) / 0.4)
    assert diag["r_plus"] == pytest.approx((1 + math.sqrt(disc)) / 0.4)
    # r± are the roots of ‖F2‖r² − |λ1| r + ‖F0‖
    for r in (diag["r_minus"], diag["r_plus"]):
        assert 0.2 * r**2 - r + 0.05 == pytest.approx(0, abs=1e-12)
    assert diag["h_max"] == pytest.approx(1 / (2 * 2.0)) and diag["step_condition"]
    assert diag["dissipation_condition"]
    assert ContinuousCarleman(f0, F1, F2, 2, 0.3).diagnostics(u0)["step_condition"] is False


def test_diagnostics_warn_when_dissipation_is_too_weak():
    F1 = np.diag([-0.1, -0.2])
    F2 = np.zeros((2, 4))
    F2[1, 0] = 1.0
    cc = ContinuousCarleman(np.array([0.5, 0.0]), F1, F2, 2, 0.01)
    with pytest.warns(CarlemanDiagnosticWarning, match="PNAS convergence"):
        diag = cc.diagnostics(np.array([1.0, 0.0]))
    assert diag["r_minus"] is None and diag["r_plus"] is None and diag["discriminant"] < 0
    assert not diag["dissipation_condition"]


def test_norm_bound_bounds_the_step_matrix():
    f0, F1, F2 = random_system(seed=5)
    cc = ContinuousCarleman(f0, F1, F2, 3, 0.05, scale=0.5)
    for k in (0, 4):
        assert np.linalg.norm(cc.matrix(k).toarray(), 2) <= cc.norm_bound(k) * (1 + 1e-12)


def test_history_solution_is_the_lifted_euler_trajectory():
    f0, F1, F2 = dissipative_system()
    u0 = np.array([0.3, -0.2, 0.25])
    cc = ContinuousCarleman(f0, F1, F2, 2, 0.02, scale=0.5)
    hist = cc.history(u0, 25, idle=2)
    assert isinstance(hist, HistorySystem) and hist.dim == 28 * cc.dim
    Y = sp.linalg.spsolve(hist.matrix().tocsc(), hist.rhs())
    np.testing.assert_allclose(Y, hist.solve(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hist.output_vector(), cc.iterate(u0, 25)[-1], rtol=1e-12)


def test_usage_errors():
    f0, F1, F2 = random_system()
    with pytest.raises(UsageError, match="order"):
        ContinuousCarleman(f0, F1, F2, 0, 0.1)
    with pytest.raises(UsageError, match="Euler step"):
        ContinuousCarleman(f0, F1, F2, 2, -1.0)
    with pytest.raises(UsageError, match="scale"):
        ContinuousCarleman(f0, F1, F2, 2, 0.1, scale="big")
    with pytest.raises(UsageError, match="steps="):
        ContinuousCarleman(f0, F1, F2, 2, 0.1, scale="auto")
    with pytest.raises(UsageError, match="shape"):
        ContinuousCarleman(np.ones(4), F1, F2, 2, 0.1)
    cc = ContinuousCarleman(f0, F1, F2, 2, 0.1)
    with pytest.raises(UsageError, match="u0"):
        cc.iterate(np.ones(2), 3)
    with pytest.raises(UsageError, match="steps"):
        cc.euler(np.ones(3), 0)
    with pytest.raises(UsageError, match="memory limit"):
        ContinuousCarleman(f0, F1, F2, 6, 0.1, memory_limit="10K")
