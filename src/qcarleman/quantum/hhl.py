r"""Gate-level HHL (Harrow–Hassidim–Lloyd, PRL 103, 150502, 2009) simulated with PennyLane.

Pipeline for L x = c (L real, ALGORITHM.md §3–§4):

1. **Hermitian H** (:func:`embed`). A symmetric L is inverted directly (textbook HHL:
   H = L padded to 2^m with ‖L‖₂ on the extra diagonal, m = ⌈log2 D⌉ system qubits); its
   eigenvalues may be negative. Otherwise the **Hermitian dilation** (HHL paper, "non-Hermitian
   A"; ALGORITHM.md §3) H = [[0, L], [Lᵀ, 0]], padded likewise (:func:`dilate`, one system qubit
   more): H (0, x) = (c, 0), so the solution lives in the lower half, and the eigenvalues of H
   are ±σ_i(L). In both cases the eigenvalues are **signed**, which the clock handles in two's
   complement (step 3). Padding entries are never excited: the right-hand side is 0 there.
2. **Eigenvalue rescaling**: U = exp(i H t0). An eigenvalue λ has phase φ = λ t0/2π, i.e.
   x = λ·s clock bins with s = t0·2^c/2π. ``t0="range"`` puts σ_max on bin 2^(c-1) − 1;
   ``t0="tuned"`` (default) scans s ∈ [s_max/2, s_max] and keeps the s whose *predicted*
   effective reciprocal (:func:`hhl_filter`) is flattest over the spectrum of H. Tuning reads the
   spectrum (an emulation-level choice, labelled in ``notes``), never the right-hand side.
3. **Phase estimation** on c clock qubits (Nielsen–Chuang §5.2): H^{⊗c}, clock wire j controls
   U^{2^(c-1-j)}, inverse QFT. The clock then reads k (wire 0 = most significant bit), signed
   k̃ = k − 2^c·[k ≥ 2^(c-1)], eigenvalue estimate λ̃ = k̃/s.
4. **Reciprocal rotation**: for every k̃ ≠ 0 a multi-controlled RY(θ_k) on the ancilla with
   sin(θ_k/2) = C/λ̃ = 1/k̃, i.e. C = 1/s ≤ λ_min (the smallest nonzero |λ̃|). k̃ = 0: no rotation.
5. **Uncomputation**: QFT, controlled U^{-2^(c-1-j)}, H^{⊗c}.
6. **Post-selection**: ancilla = 1 and clock = 0, then the system in the output set.

The post-selected (ancilla 1, clock 0) system state is exactly Σ_j β_j f(λ_j)|u_j⟩ with the
effective reciprocal f(λ) = Σ_k F_c(λs − k)/k̃ (F_c the QPE Fejér kernel, :func:`hhl_filter`):
for eigenvalues on the clock grid f = C/λ exactly. The norm follows from the flag amplitude:
‖x‖ ≈ ‖c‖·s·√P(flag) (C = 1/s).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import UsageError, check_memory
from .exact import SolveResult, exact_solution, state_fidelity

__all__ = ["dilate", "embed", "hhl_filter", "hhl_scale", "hhl_circuit", "hhl_solve"]

MAX_QUBITS = 24


def dilate(L) -> tuple[np.ndarray, int]:
    """Dense Hermitian dilation H = [[0, L], [Lᵀ, 0]] padded to a power of two.

    Returns (H, D): x sits at rows D..2D−1 of the dilated solution, the rhs c at rows 0..D−1.
    Padding entries get σ_max(L) on the diagonal (inside the spectrum, not excited).
    """
    A = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=float)
    D = A.shape[0]
    n = 1 << int(np.ceil(np.log2(2 * D)))
    check_memory(16.0 * n * n * 4, f"HHL dilation of a {D}×{D} system")
    H = np.zeros((n, n))
    H[:D, D : 2 * D] = A
    H[D : 2 * D, :D] = A.T
    if n > 2 * D:
        H[2 * D :, 2 * D :] = np.eye(n - 2 * D) * np.linalg.norm(A, 2)
    return H, D


def embed(L, dilation: bool | None = None) -> tuple[np.ndarray, int, int]:
    """The Hermitian matrix HHL inverts (module doc, step 1), padded to a power of two.

    ``dilation``: None (default) dilates only a non-symmetric L; True always dilates; False
    requires a symmetric L. Returns (H, D, offset): the rhs c sits at rows 0..D−1 of H's
    right-hand side and x at rows offset..offset+D−1 of its solution (offset 0, or D dilated).
    """
    A = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=float)
    scale = float(np.max(np.abs(A))) if A.size else 0.0
    symmetric = bool(np.max(np.abs(A - A.T)) <= 1e-12 * scale)
    if dilation is None:
        dilation = not symmetric
    if dilation:
        H, D = dilate(A)
        return H, D, D
    if not symmetric:
        raise UsageError("dilation=False needs a symmetric L; pass dilation=None or True")
    D = A.shape[0]
    n = 1 << int(np.ceil(np.log2(max(D, 2))))
    check_memory(16.0 * n * n * 4, f"HHL Hamiltonian of a {D}×{D} system")
    H = np.zeros((n, n))
    H[:D, :D] = (A + A.T) / 2
    if n > D:
        H[D:, D:] = np.eye(n - D) * np.linalg.norm(A, 2)
    return H, D, 0


def _signed(k: np.ndarray, clock: int) -> np.ndarray:
    """Two's complement reading of clock value k (0..2^c−1)."""
    return np.where(k >= 1 << (clock - 1), k - (1 << clock), k)


def _fejer(x: np.ndarray, clock: int) -> np.ndarray:
    """QPE outcome probabilities |α_k(x)|², shape (len(x), 2^c), for phase x (in bins).

    |α_k|² = sin²(π(x−k)) / (2^{2c} sin²(π(x−k)/2^c)), = 1 at x = k
    (Nielsen–Chuang §5.2.1, eqs. 5.26–5.27).
    """
    K = 1 << clock
    delta = np.asarray(x, dtype=float)[:, None] - np.arange(K)[None, :]
    den = (K * np.sin(np.pi * delta / K)) ** 2
    on_bin = den < 1e-20  # x on (or numerically at) bin k mod 2^c: probability 1
    return np.where(on_bin, 1.0, np.sin(np.pi * delta) ** 2 / np.where(on_bin, 1.0, den))


def hhl_filter(lam: np.ndarray, s: float, clock: int) -> np.ndarray:
    """Effective reciprocal of the HHL circuit, in units of C = 1/s.

    f(λ) = Σ_k |α_k(λ s)|² / k̃  (k̃ ≠ 0): the amplitude an eigenvector with eigenvalue λ keeps
    after phase estimation, the rotation sin(θ_k/2) = 1/k̃, uncomputation and post-selection on
    ancilla 1 and clock 0. Ideal value C/λ = 1/(λ s).
    """
    K = 1 << clock
    kt = _signed(np.arange(K), clock).astype(float)
    inv = np.zeros(K)
    inv[kt != 0] = 1.0 / kt[kt != 0]
    x = np.mod(np.asarray(lam, dtype=float) * s, K)
    return _fejer(x, clock) @ inv


def hhl_scale(eigs: np.ndarray, clock: int, t0: str | float = "tuned") -> tuple[float, str]:
    """Clock bins per unit eigenvalue s = t0·2^c/2π; returns (s, description)."""
    lam_max = float(np.max(np.abs(eigs)))
    s_max = ((1 << (clock - 1)) - 1) / lam_max
    if isinstance(t0, (int, float)) and not isinstance(t0, bool):
        if t0 <= 0:
            raise UsageError("t0 must be positive (evolution time of exp(iHt0))")
        s = float(t0) * (1 << clock) / (2 * np.pi)
        if s > s_max * (1 + 1e-12):
            raise UsageError(
                f"t0={t0} wraps the largest eigenvalue around the clock; use t0 ≤ "
                f"{2 * np.pi * s_max / (1 << clock):.4g} or t0='range'"
            )
        return s, "t0 given"
    if t0 == "range":
        return s_max, "t0 from the spectral range (σ_max on the top clock bin)"
    if t0 != "tuned":
        raise UsageError(f"t0 must be 'tuned', 'range' or a positive float; got {t0!r}")
    lam = np.unique(np.round(eigs, 12))  # signed: ±σ for a dilation, any sign otherwise
    grid = np.linspace(0.5 * s_max, s_max, 801)
    spread = [np.ptp(np.log(np.abs(hhl_filter(lam, s, clock) * lam * s) + 1e-300)) for s in grid]
    s = float(grid[int(np.argmin(spread))])
    return s, "t0 tuned on the spectrum of H (emulation-level choice; rhs not used)"


def hhl_circuit(H: np.ndarray, b: np.ndarray, clock: int, s: float):
    """The HHL quantum function on wires clock (0..c−1), system (c..c+m−1), ancilla (c+m).

    Returns (qfunc, wires) where ``qfunc()`` applies the circuit (call it inside a QNode) and
    ``wires`` = dict(clock=[...], system=[...], ancilla=int). Wire 0 is the most significant bit.
    """
    import pennylane as qml

    n = H.shape[0]
    m = int(np.log2(n))
    clk = list(range(clock))
    sysw = list(range(clock, clock + m))
    anc = clock + m
    t0 = 2 * np.pi * s / (1 << clock)
    w, V = np.linalg.eigh(H)
    powers = [V @ np.diag(np.exp(1j * w * t0 * 2**p)) @ V.conj().T for p in range(clock)]
    angles = {}
    for k in range(1, 1 << clock):
        kt = int(_signed(np.array(k), clock))
        angles[k] = 2 * np.arcsin(1.0 / kt)
    bits = {k: [int(ch) for ch in np.binary_repr(k, clock)] for k in angles}

    def qfunc() -> None:
        qml.StatePrep(b, wires=sysw)
        for j in clk:
            qml.Hadamard(j)
        for j in clk:
            qml.ctrl(qml.QubitUnitary(powers[clock - 1 - j], wires=sysw), control=j)
        qml.adjoint(qml.QFT)(wires=clk)
        for k, th in angles.items():
            qml.ctrl(qml.RY(th, wires=anc), control=clk, control_values=bits[k])
        # uncompute: the exact inverse of phase estimation
        qml.QFT(wires=clk)
        for j in reversed(clk):
            Up = powers[clock - 1 - j]
            qml.ctrl(qml.QubitUnitary(Up.conj().T, wires=sysw), control=j)
        for j in clk:
            qml.Hadamard(j)

    return qfunc, {"clock": clk, "system": sysw, "ancilla": anc}


def hhl_solve(
    L,
    c: np.ndarray,
    post_select: np.ndarray,
    *,
    clock: int = 6,
    t0: str | float = "tuned",
    shots: int | None = None,
    seed: int | None = 0,
    kappa: float | None = None,
    dilation: bool | None = None,
) -> SolveResult:
    """Run the HHL circuit on lightning.qubit (state vector), post-select, compare with exact.

    ``shots``: also sample the circuit that many times and report the measured post-selection
    rate (ancilla 1, clock 0, system in the output set) as ``measured_success_probability``.
    ``dilation``: see :func:`embed` (default: dilate only a non-symmetric L). Qubits:
    clock + ⌈log2 D⌉ + 1 for a symmetric L, clock + ⌈log2 2D⌉ + 1 dilated.
    """
    import pennylane as qml

    if clock < 2:
        raise UsageError("HHL needs at least 2 clock qubits; pass clock >= 2")
    H, D, offset = embed(L, dilation)
    m = int(np.log2(H.shape[0]))
    nq = clock + m + 1
    if nq > MAX_QUBITS:
        raise UsageError(
            f"HHL circuit needs {nq} qubits (> {MAX_QUBITS}); use a smaller system or fewer "
            "clock qubits, or backend='qsvt' (matrix level)"
        )
    check_memory(16.0 * 2**nq * 4 + 16.0 * H.size * clock, f"HHL simulation on {nq} qubits")
    eigs = np.linalg.eigvalsh(H)
    s, how = hhl_scale(eigs, clock, t0)
    c = np.asarray(c, dtype=float)
    b = np.zeros(H.shape[0])
    b[:D] = c / np.linalg.norm(c)
    qfunc, wires = hhl_circuit(H, b, clock, s)
    dev = qml.device("lightning.qubit", wires=nq)

    def circuit():
        qfunc()
        return qml.state()

    qnode = qml.QNode(circuit, dev)
    psi = np.asarray(qnode()).reshape(1 << clock, H.shape[0], 2)
    flagged = psi[0, :, 1]  # clock 0, ancilla 1
    out_idx = offset + np.asarray(post_select)
    amp = flagged[out_idx]
    p_flag = float(np.vdot(flagged, flagged).real)
    p_succ = float(np.vdot(amp, amp).real)
    if p_succ <= 0:
        raise UsageError("HHL post-selection probability is 0; increase clock qubits")
    x = exact_solution(L, c)
    xs = x[np.asarray(post_select)]
    # the flagged amplitudes are real up to an (unobservable) global phase: fix it so that the
    # overlap with the exact solution is positive
    phase = np.vdot(amp, xs)
    phase = phase / abs(phase) if abs(phase) > 0 else 1.0
    state = np.real(amp * phase) / np.sqrt(p_succ)
    specs = qml.specs(qnode)().resources
    res = SolveResult(
        backend="hhl",
        state=state,
        success_probability=p_succ,
        fidelity=state_fidelity(xs, amp),
        norm_scale=float(np.linalg.norm(c) * s),
        flag_probability=p_flag,
        kappa=kappa,
        resources={
            "qubits": nq,
            "system_qubits": m,
            "clock_qubits": clock,
            "ancilla_qubits": 1,
            "gate_counts": dict(specs.gate_types),
            "num_gates": int(specs.num_gates),
            "depth": int(specs.depth),
            "t0": 2 * np.pi * s / (1 << clock),
            "bins_per_unit_eigenvalue": s,
            "dilated": bool(offset),
            "kappa_hamiltonian": float(np.max(np.abs(eigs)) / np.min(np.abs(eigs))),
        },
        notes=[
            "Hermitian dilation [[0, L], [Lᵀ, 0]] (one system qubit more)"
            if offset
            else "no dilation: L is symmetric (textbook HHL, signed eigenvalues)",
            how,
            "post-selected on ancilla=1 and clock=0 (state vector, lightning.qubit)",
        ],
    )
    if shots:
        res.measured_success_probability = _sample_rate(
            qml, qfunc, wires, nq, offset, post_select, shots, seed
        )
        res.shots = int(shots)
    return res


def _sample_rate(qml, qfunc, wires, nq, offset, post_select, shots: int, seed) -> float:
    """Fraction of ``shots`` circuit samples passing ancilla=1, clock=0, system ∈ output set."""
    dev = qml.device("lightning.qubit", wires=nq, seed=seed)

    def circuit():
        qfunc()
        return qml.sample(wires=list(range(nq)))

    samples = np.asarray(qml.set_shots(qml.QNode(circuit, dev), shots=int(shots))())
    weights = 1 << np.arange(nq - 1, -1, -1)
    index = samples.reshape(-1, nq) @ weights
    m = len(wires["system"])
    anc = index & 1
    sysval = (index >> 1) & ((1 << m) - 1)
    clk = index >> (m + 1)
    ok = (anc == 1) & (clk == 0) & np.isin(sysval, offset + np.asarray(post_select))
    return float(ok.mean())
