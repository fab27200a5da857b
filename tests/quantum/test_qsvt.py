"""QSVT inversion (quantum/qsvt.py): polynomial, matrix level, circuit, U/V swap."""

from dataclasses import replace

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.quantum.qsvt import (
    CIRCUIT_MAX_DEGREE,
    blockencode_alpha,
    draw_qsvt,
    inverse_polynomial,
    qsp_phases,
    qsvt_angles,
    qsvt_apply_chebyshev,
    qsvt_apply_svd,
    qsvt_response,
    qsvt_solve,
)
from qcarleman.quantum.solve import solve


@pytest.mark.parametrize("kappa", [2.0, 10.0, 20.0])
def test_inverse_polynomial_properties(kappa):
    eps = 1e-2
    P = inverse_polynomial(kappa, eps)
    assert P.degree % 2 == 1 and np.all(P.cheb[0::2] == 0)  # odd
    x = np.linspace(-1, 1, 20001)
    assert np.max(np.abs(P(x))) <= 1.0  # QSVT-implementable
    xs = np.linspace(1 / kappa, 1, 5001)
    assert np.max(np.abs(P.K * xs * P(xs) - 1)) <= 1.5 * eps  # ≈ 1/(K x) on [1/κ, 1]
    assert P.degree <= P.degree_bound  # within the CKS bound


def _history(kappa_target, seed=0):
    """d=2 linear GD history; the contraction is tuned so κ(L) lands in [0.6, 1]·κ_target."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((2, 2)))[0]
    for rho in np.linspace(0.5, 0.999, 200):
        G1 = Q @ np.diag([rho, 0.5 * rho]) @ Q.T + 0.05 * np.array([[0, 1], [-1, 0]])
        q = QuadraticMap(0.1 * rng.standard_normal(2), G1, np.zeros((2, 2, 2)))
        h = CarlemanSystem(q, 1).history(np.array([0.3, -0.2]), 8, idle=1)
        if h.kappa() >= 0.6 * kappa_target:
            return h
    raise AssertionError("no history system with that κ")


@pytest.mark.parametrize("kappa_target", [5.0, 20.0])
def test_matrix_level_fidelity(kappa_target):
    h = _history(kappa_target)
    assert h.kappa() <= 20
    Y = np.linalg.solve(h.matrix().toarray(), h.rhs())
    ys = Y[h.output_indices()]
    res = solve(h, "qsvt", epsilon=1e-2)
    assert res.fidelity >= 0.999
    assert res.fidelity == pytest.approx(np.dot(res.state, ys / np.linalg.norm(ys)) ** 2)
    assert res.solution_norm == pytest.approx(np.linalg.norm(ys), rel=0.02)
    cheb = solve(h, "qsvt", epsilon=1e-2, method="chebyshev")
    assert np.allclose(cheb.state, res.state, atol=1e-10)


def test_uv_swap_inverts_non_hermitian():
    """P^{SV}(Lᵀ/α) ≈ α L⁻¹ / K for a non-symmetric L (the U/V swap)."""
    rng = np.random.default_rng(2)
    L = np.eye(6) + 0.3 * rng.standard_normal((6, 6))
    s = np.linalg.svd(L, compute_uv=False)
    alpha = s[0]
    P = inverse_polynomial(alpha / s[-1], 1e-4)
    v = rng.standard_normal(6)
    want = alpha * np.linalg.solve(L, v) / P.K
    got = qsvt_apply_svd(L, v, P, alpha)
    assert np.linalg.norm(got - want) <= 2e-4 * np.linalg.norm(want)
    assert np.allclose(qsvt_apply_chebyshev(L, v, P, alpha), got, atol=1e-10)


def test_circuit_matches_matrix_level():
    pytest.importorskip("pennylane")
    q = QuadraticMap(np.array([0.1]), np.array([[0.7]]), np.zeros((1, 1, 1)))
    h = CarlemanSystem(q, 1).history(np.array([1.0]), 3)
    L, c, idx = h.matrix(), h.rhs(), h.output_indices()
    alpha = blockencode_alpha(L)
    circ = qsvt_solve(L, c, np.arange(4), epsilon=0.05, method="circuit", shots=40_000, seed=3)
    mat = qsvt_solve(L, c, np.arange(4), epsilon=0.05, method="svd", alpha=alpha)
    shrink = circ.resources["poly_shrink"]
    assert circ.resources["degree"] == mat.resources["degree"]
    assert np.allclose(circ.state, mat.state, atol=1e-8)
    assert circ.success_probability == pytest.approx(shrink**2 * mat.success_probability, rel=1e-7)
    assert circ.solution_norm == pytest.approx(mat.solution_norm, rel=1e-7)
    p, m, M = circ.success_probability, circ.measured_success_probability, circ.shots
    assert abs(m - p) <= 4.5 * np.sqrt(p * (1 - p) / M)
    x = np.linalg.solve(L.toarray(), c)
    assert circ.fidelity >= 0.999
    assert circ.fidelity == pytest.approx(np.dot(circ.state, x / np.linalg.norm(x)) ** 2)
    # post-selection on the output indices only
    out = qsvt_solve(L, c, idx, epsilon=0.05, method="circuit")
    assert out.fidelity == pytest.approx(1.0, abs=1e-12)  # one output entry


def test_drawing_is_the_simulated_circuit():
    """draw_qsvt draws the circuit qsvt_solve(method="circuit") simulates: one state preparation,
    the degree's block encodings and its controlled phases, on every block-encoding wire."""
    pytest.importorskip("pennylane")
    q = QuadraticMap(np.array([0.1]), np.array([[0.7]]), np.zeros((1, 1, 1)))
    h = CarlemanSystem(q, 1).history(np.array([1.0]), 3)
    L, c = h.matrix(), h.rhs()
    res = qsvt_solve(L, c, np.arange(4), epsilon=0.05, method="circuit")
    text = draw_qsvt(L, c, epsilon=0.05, max_length=10**6)
    counts, wires = res.resources["gate_counts"], res.resources["qubits"] - 1
    lines = [ln for ln in text.splitlines() if ln[:1].isdigit() and ": " in ln[:4]]
    assert len(lines) == res.resources["qubits"] and lines[0].startswith("0: ──H")
    assert "M0 = " in text  # the block-encoded matrix Lᵀ/α is printed below the wires
    encodings = counts["BlockEncode"] + counts.get("Adjoint(BlockEncode)", 0)
    assert encodings == res.resources["degree"]
    assert text.count("BlockEncode") == encodings * wires
    assert text.count("∏_ϕ") == counts["C(PCPhase)"] * wires
    assert text.count("|Ψ⟩") == wires - 1  # the system wires


@pytest.mark.parametrize("kappa,eps,degree", [(8.3, 0.05, 51), (10.0, 0.05, 61), (33.0, 0.05, 201)])
def test_angles_stable_at_high_degree(kappa, eps, degree):
    """Degrees 51 and 61 crashed the monomial route (qml.poly_to_angles); the Chebyshev-basis
    Newton phases reproduce P to 1e-12 on a fine grid, without shrinking P, up to degree 201."""
    pytest.importorskip("pennylane")
    P = inverse_polynomial(kappa, eps)
    assert P.degree == degree
    angles, impl = qsvt_angles(P)
    assert impl.K == P.K and angles.size == degree + 1  # no shrink needed
    x = np.linspace(-1, 1, 4001)
    assert np.max(np.abs(qsvt_response(angles, x) - P(x))) <= 1e-12
    assert np.max(np.abs(P(x))) == pytest.approx(1.0, abs=1e-4)  # even with max |P| ≈ 1


def test_numpy_response_is_pennylane_qsvt():
    """qsvt_response (used to check every angle set) is what qml.QSVT implements."""
    qml = pytest.importorskip("pennylane")
    P = inverse_polynomial(3.0, 0.05)
    angles, _ = qsvt_angles(P)
    for x in (-0.7, 0.1, 0.37, 0.93):
        ops = [qml.PCPhase(a, dim=1, wires=[0]) for a in angles]
        U = qml.matrix(qml.QSVT(qml.BlockEncode(np.array([[x]]), wires=[0]), ops))
        assert U[0, 0].real == pytest.approx(qsvt_response(angles, x)[0], abs=1e-12)
        assert U[0, 0].real == pytest.approx(P(x), abs=1e-12)


def test_circuit_at_degree_above_100_matches_exact_solution():
    pytest.importorskip("pennylane")
    rng = np.random.default_rng(0)
    Q1, Q2 = (np.linalg.qr(rng.standard_normal((4, 4)))[0] for _ in range(2))
    L = Q1 @ np.diag([1.0, 0.6, 0.3, 0.1]) @ Q2.T  # non-symmetric, κ = 10
    c = rng.standard_normal(4)
    res = qsvt_solve(L, c, np.arange(4), epsilon=1e-2, method="circuit")
    assert res.resources["degree"] >= 100
    x = np.linalg.solve(L, c)
    assert res.fidelity >= 0.999
    assert res.fidelity == pytest.approx(np.dot(res.state, x / np.linalg.norm(x)) ** 2)
    assert res.solution_norm == pytest.approx(np.linalg.norm(x), rel=0.02)
    mat = qsvt_solve(L, c, np.arange(4), epsilon=1e-2, method="svd", alpha=res.resources["alpha"])
    assert np.allclose(res.state, mat.state, atol=1e-8)


def test_angle_failures_are_usage_errors():
    pytest.importorskip("pennylane")
    P = inverse_polynomial(3.0, 0.05)
    with pytest.raises(UsageError, match="odd polynomial"):
        qsp_phases(np.array([0.5, 0.0, 0.2]))
    too_big = replace(P, cheb=1.5 * P.cheb)  # |P| > 1: no phases exist
    with pytest.raises(UsageError, match="no accurate QSVT angles"):
        qsvt_angles(too_big)
    cheb = np.zeros(CIRCUIT_MAX_DEGREE + 3)
    cheb[-1] = 0.5  # 0.5·T_{401+2}
    deep = replace(P, cheb=cheb)
    assert deep.degree > CIRCUIT_MAX_DEGREE
    with pytest.raises(UsageError, match="degree"):
        qsvt_angles(deep)


def test_usage_errors():
    with pytest.raises(UsageError, match="kappa"):
        inverse_polynomial(0.5)
    with pytest.raises(UsageError, match="epsilon"):
        inverse_polynomial(3.0, 2.0)
    with pytest.raises(UsageError, match="method"):
        qsvt_solve(np.eye(2), np.ones(2), np.arange(2), method="magic")
    with pytest.raises(UsageError, match="alpha"):
        qsvt_solve(2 * np.eye(2), np.ones(2), np.arange(2), alpha=1.0)
