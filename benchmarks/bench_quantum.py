"""Benchmark: HHL and QSVT circuit simulation time against the number of qubits.

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
* ``angles``: QSVT phases by Newton's method in the Chebyshev basis (``qsvt_angles``) against
  PennyLane's monomial route (``qml.poly_to_angles``, root finding) at degrees 51..401: time and
  max |P_angles − P| on [−1, 1].
* ``tomography``: sampled tomography (every shot) at n = 10⁶, M = 10⁹ and n = 10⁷, M = 10¹⁰,
  interleaved with the equivalent-noise model on the same state (ratio of the two times), the
  ℓ2 errors against the predicted √Σv_i, and the peak memory against ``tomography_memory``.

Usage: ``python benchmarks/bench_quantum.py [--sections circuits angles tomography]
[--no-append]`` prints a markdown section and appends it to benchmarks/RESULTS.md. The machine
is shared with other jobs: the load average (``uptime``) is reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from common import load, machine, publish  # noqa: E402

from qcarleman import CarlemanSystem, QuadraticMap  # noqa: E402
from qcarleman.errors import format_bytes  # noqa: E402
from qcarleman.quantum.hhl import hhl_scale, hhl_solve  # noqa: E402
from qcarleman.quantum.qsvt import (  # noqa: E402
    inverse_polynomial,
    qsvt_angles,
    qsvt_response,
    qsvt_solve,
)
from qcarleman.quantum.readout import (  # noqa: E402
    equivalent_noise,
    expected_error,
    tomography,
    tomography_memory,
)


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


def uptime() -> str:
    """The ``uptime`` line (load averages of the shared machine)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {load()}"


def angles_section() -> list[str]:
    """QSVT phases: Chebyshev-basis Newton (qsvt_angles) vs qml.poly_to_angles (monomials)."""
    import pennylane as qml
    from numpy.polynomial import chebyshev as C

    lines = [
        "QSVT angles for the inverse polynomial (ε = 0.05): time and max |P_angles(x) − P(x)| on",
        "4001 points of [−1, 1] (P_angles evaluated in NumPy, `qsvt_response`):",
        "",
        "| κ | degree | Newton, Chebyshev basis (s) | error | qml.poly_to_angles (s) | error |",
        "|---|---|---|---|---|---|",
    ]
    x = np.linspace(-1, 1, 4001)
    qsvt_angles(inverse_polynomial(2.0, 0.05))  # warm-up (PennyLane import)
    for kappa in (8.3, 16.6, 33.0, 66.0):
        poly = inverse_polynomial(kappa, 0.05)
        (ang, impl), t = timed(qsvt_angles, poly)
        err = np.max(np.abs(qsvt_response(ang, x) - impl(x)))
        mono = C.cheb2poly(poly.cheb)
        mono[0::2] = 0.0
        try:
            ref, tr = timed(qml.poly_to_angles, mono, "QSVT")
            ref_txt = f"{tr:.2f} | {np.max(np.abs(qsvt_response(ref, x) - poly(x))):.1e}"
        except (AssertionError, ValueError) as exc:
            ref_txt = f"fails: {type(exc).__name__} | —"
        lines.append(f"| {kappa} | {poly.degree} | {t:.2f} | {err:.1e} | {ref_txt} |")
        print(lines[-1], flush=True)
    return lines


def tomography_section(reps: int = 3) -> list[str]:
    """Sampled tomography vs the equivalent-noise model, interleaved, on a Gaussian state."""
    lines = [
        "Sampled ℓ2 tomography (every shot, `tomography`) vs the equivalent-noise model, Gaussian",
        f"ψ, interleaved runs (median of {reps} for n = 10⁶, one for n = 10⁷); error = ‖ψ̂ − ψ‖,",
        "predicted = `expected_error` (√Σv_i), peak = tracemalloc peak of one sampled call:",
        "",
        "| n | M | sampled (s) | noise model (s) | sampled/noise | error sampled | error noise "
        "| predicted | √(n/4M) | peak / predicted memory |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(2026)  # not a readout seed: the state and the noise must differ
    for n, M, r in ((10**6, 10**9, reps), (10**7, 10**10, 1)):
        psi = rng.standard_normal(n)
        psi /= np.linalg.norm(psi)
        equivalent_noise(psi[:10], 10)  # the cached error table, outside the timing
        ts, tn, es, en = [], [], [], []
        for i in range(r):
            ro, t = timed(tomography, psi, M, seed=i + 1)
            ts.append(t)
            es.append(ro.error)
            ro, t = timed(equivalent_noise, psi, M, seed=i + 1)
            tn.append(t)
            en.append(ro.error)
        tracemalloc.start()
        tomography(psi, M, seed=99)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        t_s, t_n = float(np.median(ts)), float(np.median(tn))
        lines.append(
            f"| {n:.0e} | {M:.0e} | {t_s:.2f} | {t_n:.2f} | {t_s / t_n:.2f} | {np.mean(es):.5f} "
            f"| {np.mean(en):.5f} | {expected_error(psi, M):.5f} | {np.sqrt(n / (4 * M)):.5f} "
            f"| {format_bytes(peak)} / {format_bytes(tomography_memory(n))} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-append", action="store_true", help="print only")
    ap.add_argument(
        "--sections",
        nargs="+",
        choices=("circuits", "angles", "tomography"),
        default=["circuits", "angles", "tomography"],
    )
    args = ap.parse_args()
    lines = [
        "",
        f"## Quantum layer: {', '.join(args.sections)} (`bench_quantum.py`)",
        "",
        f"Command: `python benchmarks/bench_quantum.py --sections {' '.join(args.sections)}`; "
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}; "
        f"`uptime` at start: {uptime()} (shared machine).",
        "",
    ]
    if "angles" in args.sections:
        lines += angles_section() + [""]
    if "tomography" in args.sections:
        lines += tomography_section() + [""]
    if "circuits" in args.sections:
        lines += circuits_section()
    lines.append(f"`uptime` at end: {uptime()}.")
    publish(lines, append=not args.no_append)


def circuits_section() -> list[str]:
    """HHL and QSVT circuit simulation times and fidelities."""
    lines = [
        "PennyLane lightning.qubit state vector, single-threaded BLAS. Times are wall clock of one",
        "call (build + simulate + post-select); fidelity = |⟨exact|emulated⟩|² vs numpy.",
        "",
    ]
    hhl_solve(np.eye(2), np.ones(2), np.arange(2), clock=2)  # warm-up (imports, JIT)
    lines += [
        "HHL, t0 = 'range' (σ_max on the top clock bin):",
        "",
        "| history dim | κ(H) | system qubits | clock | total qubits | gates | time (s) "
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
            f"| {h.dim} | {r['kappa_hamiltonian']:.2f} | {r['system_qubits']} | {clock} "
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
    return lines


if __name__ == "__main__":
    main()
