"""QSVT on a small Carleman history system, checked against the exact solution, circuit drawn.

A two-dimensional quadratic map z' = f0 + F1 z + F2(z, z) is lifted to Carleman order N = 2
and written as the history system L y = c of T = 2 steps with p = 1 idle step from
z0 = (0.2, 0.1) (ALGORITHM.md §2–§3; 24 unknowns, padded to 5 system qubits).
``qc.solve(..., backend="qsvt", method="circuit")`` simulates the gate-level QSVT inversion in
PennyLane (an odd polynomial ≈ 1/x applied to the singular values of a block encoding of Lᵀ/α;
Gilyén et al. 2019) and post-selects the output block ŷ1(T). The example checks the circuit's
output state and z_T against the exact classical solution of the same system
(``numpy.linalg.solve``), shows the Carleman truncation error against the map itself, and draws
the circuit (``qc.draw_qsvt``, PennyLane's text drawer).

Needs the ``quantum`` extra (PennyLane). Run: ``python examples/qsvt_history.py`` (≈ 10 s).
"""

import numpy as np

import qcarleman as qc

T, EPS = 2, 1e-2
f0 = np.array([0.1, -0.05])
F1 = np.array([[0.5, 0.1], [0.0, 0.4]])
F2 = 0.1 * np.array([[[1.0, 0.0], [0.0, 0.5]], [[0.0, 0.5], [0.5, -1.0]]])  # F2[i, a, b]
qmap = qc.QuadraticMap(f0, F1, F2)
history = qc.CarlemanSystem(qmap, order=2).history(np.array([0.2, 0.1]), T=T, idle=1)
L, c = history.matrix().toarray(), history.rhs()
print(f"history system: dim {history.dim}, κ(L) = {history.kappa():.4g}, ε = {EPS}")

result = qc.solve(history, backend="qsvt", method="circuit", epsilon=EPS)
res = result.resources
print(
    f"QSVT circuit: polynomial degree {res['degree']}, {res['qubits']} qubits, "
    f"{res['num_gates']} gates {res['gate_counts']}, P_succ = {result.success_probability:.4f}"
)

# the exact classical solution of the same L y = c: its first output copy ŷ1(T), in units of z
y = np.linalg.solve(L, c)
out = y[history.output_indices()].reshape(-1, history.d)[0]
state_exact = out / np.linalg.norm(out)
z_exact = history.scale * out
fidelity = float(np.dot(result.output_state, state_exact) ** 2)
z_qsvt = result.output_vector()
rel = float(np.linalg.norm(z_qsvt - z_exact) / np.linalg.norm(z_exact))
print(
    f"check against numpy.linalg.solve: state fidelity {fidelity:.8f}, "
    f"z_T: QSVT {np.round(z_qsvt, 6)} vs exact {np.round(z_exact, 6)} (relative error {rel:.2e})"
)
assert fidelity > 0.999 and rel < 5 * EPS, "QSVT output disagrees with the exact solution"

z_map = qmap.iterate(np.array([0.2, 0.1]), T)[-1]  # the quadratic map itself, not linearized
trunc = float(np.linalg.norm(z_exact - z_map) / np.linalg.norm(z_map))
print(f"Carleman N = 2 truncation error of z_T against the map itself: {trunc:.2e}")

print(
    f"circuit (wire 0: real-part ancilla, 1: block-encoding ancilla, 2-{res['qubits'] - 1}: "
    "system; M0 = Lᵀ/α, the block-encoded matrix):"
)
print(qc.draw_qsvt(L, c, epsilon=EPS))
print(f"verdict: the QSVT circuit reproduces the exact history solution (fidelity {fidelity:.7f})")
