"""Gate-level HHL (quantum/hhl.py): fidelity, success probability, bit order, two's complement."""

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.quantum.hhl import dilate, embed, hhl_filter, hhl_solve
from qcarleman.quantum.solve import solve

pytest.importorskip("pennylane")


def _history(d, N, T, contraction, seed):
    rng = np.random.default_rng(seed)
    G1 = contraction * np.eye(d) + 0.1 * rng.standard_normal((d, d))
    q = QuadraticMap(0.2 * rng.standard_normal(d), G1, 0.05 * rng.standard_normal((d, d, d)))
    return CarlemanSystem(q, N).history(0.5 * rng.standard_normal(d), T)


@pytest.mark.parametrize(
    "d,N,T,contraction,seed",
    [(1, 1, 3, 1.3, 0), (2, 1, 3, 1.25, 1), (1, 2, 3, 0.95, 2)],  # κ ≈ 9.4, 9.3, 6.1
)
def test_hhl_fidelity_and_measured_success(d, N, T, contraction, seed):
    h = _history(d, N, T, contraction, seed)
    assert h.dim in (4, 8)
    kappa = np.linalg.cond(h.matrix().toarray())
    assert 5 <= kappa <= 10
    res = solve(h, "hhl", clock=6, shots=100_000, seed=seed)
    Y = np.linalg.solve(h.matrix().toarray(), h.rhs())
    ys = Y[h.output_indices()]
    assert res.fidelity >= 0.99
    assert res.fidelity == pytest.approx(np.dot(res.state, ys / np.linalg.norm(ys)) ** 2)
    assert res.resources["clock_qubits"] == 6
    # state-vector post-selection probability vs the rate measured from circuit samples
    p, m, M = res.success_probability, res.measured_success_probability, res.shots
    assert abs(m - p) <= 4.5 * np.sqrt(p * (1 - p) / M) + 1.0 / M


def test_circuit_matches_analytic_filter():
    """Bit order and two's complement: the post-selected (ancilla 1, clock 0) amplitudes equal
    Σ_j β_j f(λ_j)|u_j⟩ with f the Fejér-weighted reciprocal (negative λ included)."""
    rng = np.random.default_rng(5)
    L = np.eye(4) + 0.3 * rng.standard_normal((4, 4))
    c = rng.standard_normal(4)
    res = hhl_solve(L, c, np.arange(4), clock=5, t0="range")
    H, D = dilate(L)
    w, V = np.linalg.eigh(H)
    b = np.zeros(H.shape[0])
    b[:D] = c / np.linalg.norm(c)
    pred = (V @ (hhl_filter(w, res.resources["bins_per_unit_eigenvalue"], 5) * (V.T @ b)))[D:]
    assert res.success_probability == pytest.approx(pred @ pred, rel=1e-8)
    pred *= np.sign(pred @ res.state)  # global phase is unobservable
    assert np.allclose(res.state, pred / np.linalg.norm(pred), atol=1e-7)


def test_on_grid_eigenvalues_are_exact():
    """λ = 1, 2, 3 on clock bins 4, 8, 12 (symmetric L: no dilation): exact, norm included."""
    L = np.diag([1.0, 2.0, 3.0, 2.0])
    c = np.array([1.0, -2.0, 0.5, 1.0])
    t0 = 2 * np.pi * 4 / 2**6
    res = hhl_solve(L, c, np.arange(4), clock=6, t0=t0)
    x = np.linalg.solve(L, c)
    assert res.fidelity == pytest.approx(1.0, abs=1e-10)
    assert res.solution_norm == pytest.approx(np.linalg.norm(x), rel=1e-9)
    assert np.allclose(res.state * np.linalg.norm(x), x, atol=1e-9)


def _symmetric_8x8(seed=0):
    """Symmetric 8×8 with eigenvalues of both signs, |λ| in [0.2, 1] (κ ≤ 5), off the clock grid."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    lam = rng.choice([-1.0, 1.0], 8) * rng.uniform(0.2, 1.0, 8)
    lam[:2] = [-0.83, 0.61]  # both signs present
    return Q @ np.diag(lam) @ Q.T, rng.standard_normal(8)


def test_symmetric_8x8_textbook_qubit_count():
    """A symmetric 8×8 is inverted without the dilation: 6 clock + 3 system + 1 ancilla = 10
    qubits (the dilation needs 11), with the same output state."""
    L, c = _symmetric_8x8()
    x = np.linalg.solve(L, c)
    res = hhl_solve(L, c, np.arange(8), clock=6, shots=100_000, seed=1)
    assert res.resources["qubits"] == 10 and res.resources["system_qubits"] == 3
    assert res.resources["dilated"] is False
    assert res.fidelity >= 0.99
    assert res.fidelity == pytest.approx(np.dot(res.state, x / np.linalg.norm(x)) ** 2)
    assert res.solution_norm == pytest.approx(np.linalg.norm(x), rel=0.05)
    p, m, M = res.success_probability, res.measured_success_probability, res.shots
    assert abs(m - p) <= 4.5 * np.sqrt(p * (1 - p) / M) + 1.0 / M
    dil = hhl_solve(L, c, np.arange(8), clock=6, dilation=True)
    assert dil.resources["qubits"] == 11 and dil.resources["dilated"] is True
    assert dil.fidelity == pytest.approx(res.fidelity, abs=1e-3)


def test_signed_eigenvalues_without_dilation_match_filter():
    """Two's complement on a symmetric L with negative eigenvalues: the post-selected state is
    V f(λ) Vᵀ b with f the Fejér-weighted reciprocal evaluated at the signed λ."""
    L, c = _symmetric_8x8(seed=3)
    res = hhl_solve(L, c, np.arange(8), clock=5, t0="range")
    H, D, offset = embed(L)
    assert offset == 0 and H.shape == (8, 8)
    w, V = np.linalg.eigh(H)
    assert w.min() < 0 < w.max()
    b = c / np.linalg.norm(c)
    pred = V @ (hhl_filter(w, res.resources["bins_per_unit_eigenvalue"], 5) * (V.T @ b))
    assert res.success_probability == pytest.approx(pred @ pred, rel=1e-8)
    pred *= np.sign(pred @ res.state)
    assert np.allclose(res.state, pred / np.linalg.norm(pred), atol=1e-7)
    # eigen-components: amplitude β_j/λ_j, so the sign flips exactly on the negative eigenvalues
    # (the state is phase-aligned with the exact solution)
    beta, out = V.T @ b, V.T @ res.state
    assert np.all(np.sign(out) == np.sign(beta / w))


def test_usage_errors():
    with pytest.raises(UsageError, match="wraps"):
        hhl_solve(np.diag([1.0, 2.0]), np.ones(2), np.arange(2), clock=4, t0=10.0)
    with pytest.raises(UsageError, match="clock"):
        hhl_solve(np.eye(2), np.ones(2), np.arange(2), clock=1)
    with pytest.raises(UsageError, match="symmetric"):
        hhl_solve(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones(2), np.arange(2), dilation=False)
    with pytest.raises(UsageError, match="qubits"):
        hhl_solve(np.eye(2**10), np.ones(2**10), np.arange(4), clock=14)


def test_conventions_wire0_msb_and_ry_angle():
    """docs/quantum.md: wire 0 is the most significant bit; RY(θ)|0⟩ = cos(θ/2)|0⟩ + sin(θ/2)|1⟩,
    so the HHL rotation θ = 2·arcsin(1/k̃) puts amplitude 1/k̃ (sign included) on ancilla |1⟩."""
    import pennylane as qml

    dev = qml.device("lightning.qubit", wires=2)
    theta = 2 * np.arcsin(-1.0 / 3.0)

    @qml.qnode(dev)
    def circuit():
        qml.PauliX(0)
        qml.RY(theta, wires=1)
        return qml.state()

    psi = np.asarray(circuit())
    assert psi[3] == pytest.approx(-1.0 / 3.0)  # |wire0=1, wire1=1⟩ = index 0b11
    assert psi[2] == pytest.approx(np.sqrt(8.0) / 3.0)  # |10⟩ = index 2: wire 0 is the MSB
