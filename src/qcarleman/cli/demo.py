"""``qcarleman demo [--quick] [--out DIR]``: the end-to-end example on embedded data.

On scikit-learn's digits: train a small CNN dense, prune 90%, measure the Hessian spectra of the
first steps after pruning and the dissipative window, run hybrid training (emulated quantum
segments with tomography download and re-upload) against classical sparse training, sweep the
shot budget, estimate the fault-tolerant cost, and write ``summary.json``, PNG figures and a
self-contained ``report.html`` into DIR (:func:`qcarleman.pipeline.stages.run_demo`). About two
minutes on a 2-core CPU; ``--quick`` (used by CI) in well under one. Rerunning resumes.

Examples::

    qcarleman demo
    qcarleman demo --quick --out demo-quick
    qcarleman demo --json --quiet > summary.json
"""

from __future__ import annotations

import argparse

from .helptext import command_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end example on the embedded default data",
        **command_help(__doc__),
    )
    p.add_argument("--quick", action="store_true", help="smallest settings (used by CI)")
    p.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of a summary")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def print_summary(s: dict, out: str) -> None:
    """The short human summary of a pipeline run (every number from ``summary.json``): the
    verdict (:func:`qcarleman.report.verdict.verdict`) first, then the details."""
    import textwrap

    from ..report.verdict import breakeven_crossovers, human, verdict

    pct = lambda v: f"{100 * v:.1f}%"
    print(f"{s['title']} — results in {out}")
    print("Verdict:")
    for i, sentence in enumerate(verdict(s, crossovers=breakeven_crossovers(s)), 1):
        print(textwrap.fill(sentence, 100, initial_indent=f" {i}. ", subsequent_indent="    "))
    print("Details (terms: docs/report.md, ALGORITHM.md §6–§7):")
    print(f"  model: {s['parameters']:,} parameters, n = {s['n_active']:,} active after pruning")
    print(f"  dense accuracy            {pct(s['dense_accuracy'])}")
    print(f"  after pruning             {pct(s['pruned_accuracy'])}")
    print(f"  window                    {s['window_statement']}")
    print(
        f"  quantum segments          {s['quantum_steps']} steps ({s['quantum_steps_reason']}), "
        f"backend {s['backend']}"
        + (f" N = {s['order']}" if s["backend"] == "carleman" else "")
        + f", K = {s['segment_steps']}"
    )
    print(
        f"  after {s['total_steps']} sparse steps: classical {pct(s['classical_sparse_accuracy'])}"
        f", hybrid {pct(s['hybrid_accuracy'])} (gap {s['accuracy_gap_points']:+.2f} points) "
        f"at M = {s['shots_per_segment']:,} shots per segment per block "
        f"({s['shots_total']:,} shots in all)"
    )
    emu, ro = s["emulation_error_max"], s["readout_error_max"]
    if emu is not None:
        print(f"  max emulation error       {emu:.3g} (vs true GD)   max readout error {ro:.3g}")
    deg = s.get("degradation") or []
    if deg:
        pts = ", ".join(
            f"M={d['shots']:.0e}: {pct(d['test_acc'])} / {d['test_loss']:.3f}" for d in deg
        )
        print(
            f"  shots → accuracy / loss at step {deg[0]['step']}: {pts} (classical "
            f"{pct(deg[0]['classical_test_acc'])} / {deg[0]['classical_test_loss']:.3f}; "
            f"{s['degradation_backend']} emulation)"
        )
    e = s.get("estimate")
    if e:
        print(
            f"  estimate (one segment)    {e['logical_qubits']} logical qubits, T-count "
            f"{human(e['t_count'], 'count')}, quantum {human(e['quantum_seconds'], 's')} vs "
            f"classical {human(e['classical_seconds'], 's')}"
            + (f" at {e['flop_rate']:.3g} FLOP/s" if "flop_rate" in e else "")
            + f" → {e['winner']}"
        )
    print(f"  report: {out}/report.html ({s['seconds']:.0f} s)")


def run(args: argparse.Namespace) -> int:

    from ..atomic import dumps_json
    from ..pipeline.stages import run_demo
    from ..report import build_report

    summary = run_demo(args.out, quick=args.quick, progress=not args.quiet, report=build_report)
    if args.json:
        print(dumps_json(summary))
    else:
        print_summary(summary, args.out)
    return 0
