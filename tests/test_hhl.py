"""Gate-level HHL (quantum/hhl.py): fidelity, success probability, bit order, two's complement."""

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.quantum.hhl import dilate, hhl_filter, hhl_solve
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
    """σ = 1, 2, 3 on clock bins 4, 8, 12 (and −4, −8, −12): HHL is exact, norm included."""
    L = np.diag([1.0, 2.0, 3.0, 2.0])
    c = np.array([1.0, -2.0, 0.5, 1.0])
    t0 = 2 * np.pi * 4 / 2**6
    res = hhl_solve(L, c, np.arange(4), clock=6, t0=t0)
    x = np.linalg.solve(L, c)
    assert res.fidelity == pytest.approx(1.0, abs=1e-10)
    assert res.solution_norm == pytest.approx(np.linalg.norm(x), rel=1e-9)
    assert np.allclose(res.state * np.linalg.norm(x), x, atol=1e-9)


def test_usage_errors():
    with pytest.raises(UsageError, match="wraps"):
        hhl_solve(np.diag([1.0, 2.0]), np.ones(2), np.arange(2), clock=4, t0=10.0)
    with pytest.raises(UsageError, match="clock"):
        hhl_solve(np.eye(2), np.ones(2), np.arange(2), clock=1)
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
