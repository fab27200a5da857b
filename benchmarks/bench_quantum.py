"""Benchmark: HHL and QSVT circuit simulation time against the number of qubits (issue 7).

* HHL (``qcarleman.quantum.hhl.hhl_solve``, lightning.qubit state vector): linear-GD history
  systems of dimension 4..64 (dilation 8..128 → 3..7 system qubits) with 6 clock qubits, then a
  64-dim history (7 system qubits) with 6..12 clock qubits: total = system + clock + 1 ancilla,
  up to 20. Time = one full ``hhl_solve`` (circuit build + simulation + post-selection) with
  t0="range" (the spectral tuning scan is timed separately, it is classical pre-processing).
  Fidelity against numpy.linalg.solve is reported beside each time.
* HHL fidelity against the number of clock qubits, t0="tuned" vs "range", on a κ ≈ 10 history.
* QSVT circuit (``method="circuit"``): history dims 4..256, total qubits = system + 2 ancillas.
  PennyLane's BlockEncode builds the dense 2^(m+1)-dimensional unitary, which limits the size.
  The QSVT-angle computation is timed separately.
* QSVT matrix level (SVD up to 4096, Chebyshev recurrence beyond) for comparison.

Usage: ``python benchmarks/bench_quantum.py [--no-append]`` prints a markdown section and appends
it to benchmarks/RESULTS.md. The machine is shared with other jobs: the load average is reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from common import append_results, load, machine  # noqa: E402

from qcarleman import CarlemanSystem, QuadraticMap  # noqa: E402
from qcarleman.quantum.hhl import hhl_scale, hhl_solve  # noqa: E402
from qcarleman.quantum.qsvt import inverse_polynomial, qsvt_angles, qsvt_solve  # noqa: E402


def history(d: int, T: int, rho: float = 0.8, seed: int = 0):
    """Linear GD history (N = 1) of dimension (T+1)·d with ‖F1‖ ≈ rho."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    F1 = Q @ np.diag(np.linspace(0.3, rho, d)) @ Q.T
    q = QuadraticMap(0.1 * rng.standard_normal(d), F1, np.zeros((d, d, d)))
    return CarlemanSystem(q, 1).history(0.3 * rng.standard_normal(d), T)


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    lines = [
        "",
        "## Quantum layer: HHL and QSVT circuit simulation (issue 7)",
        "",
        f"Command: `python benchmarks/bench_quantum.py`; date "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}, "
        f"load average {load()} (shared machine).",
        "PennyLane lightning.qubit state vector, single-threaded BLAS. Times are wall clock of one",
        "call (build + simulate + post-select); fidelity = |⟨exact|emulated⟩|² vs numpy.",
        "",
    ]
    hhl_solve(np.eye(2), np.ones(2), np.arange(2), clock=2)  # warm-up (imports, JIT)
    lines += [
        "HHL, t0 = 'range' (σ_max on the top clock bin):",
        "",
        "| history dim | κ(dilation) | system qubits | clock | total qubits | gates | time (s) "
        "| fidelity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cases = [(2, 1, 6), (2, 3, 6), (4, 3, 6), (4, 7, 6), (8, 7, 6)]
    cases += [(8, 7, c) for c in (8, 10, 12)]
    for d, T, clock in cases:
        h = history(d, T)
        L, c, idx = h.matrix(), h.rhs(), h.output_indices()
        res, t = timed(hhl_solve, L, c, idx, clock=clock, t0="range")
        r = res.resources
        lines.append(
            f"| {h.dim} | {res.resources['kappa_dilation']:.2f} | {r['system_qubits']} | {clock} "
            f"| {r['qubits']} | {r['num_gates']} | {t:.2f} | {res.fidelity:.5f} |"
        )
        print(lines[-1], flush=True)
    h = history(2, 7, rho=0.97, seed=1)
    L, c, idx = h.matrix(), h.rhs(), h.output_indices()
    lines += [
        "",
        f"HHL fidelity vs clock qubits, history dim {h.dim}, κ(L) = {h.kappa():.2f} "
        "(t0 tuning scan time in brackets):",
        "",
        "| clock | fidelity (range) | fidelity (tuned) | P_succ (tuned) |",
        "|---|---|---|---|",
    ]
    eigs = np.concatenate([np.linalg.svd(L.toarray(), compute_uv=False)])
    for clock in (4, 5, 6, 7, 8):
        rr = hhl_solve(L, c, idx, clock=clock, t0="range")
        _, ts = timed(hhl_scale, eigs, clock, "tuned")
        rt = hhl_solve(L, c, idx, clock=clock, t0="tuned")
        lines.append(
            f"| {clock} | {rr.fidelity:.5f} | {rt.fidelity:.5f} ({ts:.2f} s) "
            f"| {rt.success_probability:.2e} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "QSVT circuit (ε = 0.05, block encoding of Lᵀ/α, 2 ancillas):",
        "",
        "| history dim | κ(Lᵀ/α) | degree | total qubits | angles (s) | circuit (s) | fidelity |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, T in [(1, 3), (2, 3), (4, 3), (4, 7), (8, 7), (16, 7), (32, 7)]:
        h = history(d, T, rho=0.5)
        L, c, idx = h.matrix(), h.rhs(), h.output_indices()
        res, t = timed(qsvt_solve, L, c, idx, epsilon=0.05, method="circuit")
        poly = inverse_polynomial(res.resources["kappa_block_encoded"], 0.05)
        _, ta = timed(qsvt_angles, poly)
        r = res.resources
        lines.append(
            f"| {h.dim} | {r['kappa_block_encoded']:.2f} | {r['degree']} | {r['qubits']} "
            f"| {ta:.2f} | {t - ta:.2f} | {res.fidelity:.6f} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "QSVT matrix level (ε = 1e-2, α = ‖L‖₂; κ exact up to dim 1024, else the history's "
        "iterative estimate; time includes the SVD or the ‖L‖₂ estimate):",
        "",
        "| history dim | method | κ(L) | degree | time (s) | fidelity |",
        "|---|---|---|---|---|---|",
    ]
    matrix_cases = [(16, 15, "svd"), (64, 15, "svd"), (64, 15, "chebyshev")]
    matrix_cases += [(256, 15, "svd"), (256, 15, "chebyshev"), (256, 63, "chebyshev")]
    for d, T, method in matrix_cases:
        h = history(d, T, rho=0.8)
        L, c, idx = h.matrix(), h.rhs(), h.output_indices()
        kappa = h.kappa("exact" if h.dim <= 1024 else "estimate")
        res, t = timed(qsvt_solve, L, c, idx, method=method, kappa=kappa)
        lines.append(
            f"| {h.dim} | {method} | {kappa:.2f} | {res.resources['degree']} | {t:.2f} "
            f"| {res.fidelity:.6f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
