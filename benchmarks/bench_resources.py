"""Resource estimate of the paper's setting and the break-even table.

Prints a markdown section and appends it to benchmarks/RESULTS.md: the bill for one quantum
segment of the 90%-pruned ResNet-32×4 (n = 745,104 active of P = 7,451,044, T = 20, N = 2,
ε = 1e-2), the qsharp-vs-model physical estimate on its logical counts where qsharp can take them,
the break-even table over n = 10³…10⁹, and the CLI wall time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import append_results, machine  # noqa: E402

from qcarleman.quantum.cost import physical  # noqa: E402
from qcarleman.quantum.cost.breakeven import breakeven, breakeven_table  # noqa: E402
from qcarleman.quantum.cost.estimate import estimate  # noqa: E402
from qcarleman.quantum.cost.inputs import Problem  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    load0 = os.getloadavg()
    cmd = "estimate --params 7451044 --active 745104 --steps 20 --order 2 --epsilon 1e-2 --json"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qcarleman.cli.main", *cmd.split()], check=True,
                   capture_output=True)  # fmt: skip
    cli_s = time.perf_counter() - t0
    est = estimate(problem=Problem(n=745104, P=7451044, T=20, N=2, epsilon=1e-2))
    rows = [
        f"| {k} | {v.value:.4g} | {v.approx or '—'} |" if isinstance(v.value, float)
        else f"| {k} | {v.value} | {v.approx or '—'} |"
        for k, v in est.figures.items()
    ]  # fmt: skip
    # qsharp vs model on counts qsharp accepts (the full T-count is beyond its 64-bit range)
    lq = est.logical_qubits
    cmp_lines = []
    for t in (1e9, 1e12, 1e15):
        q, s = physical.physical_estimate(lq, t)
        qs = "—" if q is None else f"{q.physical_qubits:.4g} qubits, {q.runtime_s:.3g} s"
        cmp_lines.append(
            f"| {t:.0e} | {qs} | {s.physical_qubits:.4g} qubits, "
            f"{s.runtime_s:.3g} s, d = {s.code_distance} |"
        )
    t1 = time.perf_counter()
    be = breakeven()
    be_s = time.perf_counter() - t1
    w = est.wall_clock
    load1 = os.getloadavg()
    text = "\n".join(
        [
            "",
            "## Resource estimate and break-even (`benchmarks/bench_resources.py`)",
            "",
            f"Machine: {machine()} (shared with other agents); date "
            f"{datetime.date.today().isoformat()}; load average {load0[0]:.2f} → {load1[0]:.2f}.",
            "",
            f"`qcarleman {cmd}` wall time: {cli_s:.2f} s (incl. Python start).",
            "",
            "One segment of the 90%-pruned ResNet-32×4 (defaults: ρ = 1 + 1/T, dense Hessian "
            "rows, P_succ model, costa-empirical solver, arithmetic oracle at b = 32):",
            "",
            "| figure | value | assumption |",
            "|---|---|---|",
            *rows,
            "",
            f"Wall clock: quantum {w.quantum_s:.3g} s ({w.quantum_source}) vs classical "
            f"{w.classical_s:.3g} s at {w.flop_rate:.0e} FLOP/s.",
            "",
            f"Physical estimate for {lq} logical qubits at smaller T-counts (qsharp vs model):",
            "",
            "| T-count | qsharp | surface-code model |",
            "|---|---|---|",
            *cmp_lines,
            "",
            f"Break-even (computed in {be_s:.1f} s; s = 10, ε = 1e-2, 1e15 FLOP/s, surface-code "
            "logical cycle):",
            "",
            breakeven_table(be),
            "",
        ]
    )
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
