"""Benchmark of the end-to-end demo: wall time of `qcarleman demo` (full and --quick, start-up
and imports included) and the numbers its summary reports (accuracies, window, shots, errors,
degradation with the shot budget, estimate). The machine is shared with other jobs, so the load
average before and after is recorded.

    .venv/bin/python benchmarks/bench_hybrid.py [--no-append]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time

from common import load, machine, publish


def run_demo(quick: bool) -> tuple[dict, float, str, str]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "qcarleman.cli.main", "demo", "--json", "--quiet"]
        cmd += ["--out", out] + (["--quick"] if quick else [])
        before = load()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"demo failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1]), wall, before, load()


def section(s: dict, wall: float, before: str, after: str, quick: bool) -> list[str]:
    pct = lambda v: f"{100 * v:.1f}%"
    e = s["estimate"]
    lines = [
        f"### `qcarleman demo{' --quick' if quick else ''}`: {wall:.0f} s wall "
        f"(pipeline {s['seconds']:.0f} s; load {before} → {after})",
        "",
        f"{s['parameters']:,} parameters, n = {s['n_active']:,} active after 90% pruning; "
        f"backend {s['backend']} N = {s['order']}, K = {s['segment_steps']}, "
        f"M = {s['shots_per_segment']:,} shots per segment and block.",
        "",
        "| dense | pruned | classical sparse | hybrid | gap (points) | window t* | regime | "
        "quantum steps | shots used | max emulation err | max readout err |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {pct(s['dense_accuracy'])} | {pct(s['pruned_accuracy'])} | "
        f"{pct(s['classical_sparse_accuracy'])} | {pct(s['hybrid_accuracy'])} | "
        f"{s['accuracy_gap_points']:+.2f} | {s['window']} | {s['regime']} | "
        f"{s['quantum_steps']} | {s['shots_total']:,} | {s['emulation_error_max']:.3g} | "
        f"{s['readout_error_max']:.3g} |",
        "",
        f"Window: {s['window_statement']}.",
        "",
        f"Shot budget (true-gd emulation, accuracy / loss at step {s['degradation'][0]['step']}; "
        f"classical {pct(s['degradation'][0]['classical_test_acc'])} / "
        f"{s['degradation'][0]['classical_test_loss']:.4f}):",
        "",
        "| M | accuracy | loss | mean readout error |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {d['shots']:,} | {pct(d['test_acc'])} | {d['test_loss']:.4f} | "
        f"{d['readout_error_mean']:.3g} |"
        for d in s["degradation"]
    ]
    lines += [
        "",
        f"Estimate of one segment (T = {e['T']}, N = {e['N']}, p = {e['p']}): "
        f"{e['logical_qubits']} logical qubits, κ = {e['kappa']:.4g}, P_succ = {e['p_succ']:.3g}, "
        f"T-count {e['t_count']:.3g}, quantum {e['quantum_seconds']:.3g} s vs classical "
        f"{e['classical_seconds']:.3g} s → {e['winner']}.",
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    lines = [
        "",
        f"## Hybrid training demo ({datetime.date.today().isoformat()})",
        "",
        f"Machine: {machine()}; shared with other jobs (load averages below).",
        "",
    ]
    for quick in (False, True):
        lines += section(*run_demo(quick), quick)
    publish(lines, append=not args.no_append)


if __name__ == "__main__":
    main()
