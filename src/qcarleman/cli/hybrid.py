"""``qcarleman hybrid --config FILE.toml --out DIR`` or ``qcarleman hybrid --from RUN --out DIR``:
hybrid quantum/classical sparse training against the classical baseline.

With ``--config``: FILE is a training config (:mod:`qcarleman.training.config`) plus a ``[hybrid]``
table (:class:`qcarleman.hybrid.settings.HybridSettings`) and an optional ``[pipeline]`` table
(spectra, shot sweep, emulation backends: :class:`qcarleman.pipeline.options.PipelineOptions`),
or the name of a shipped example (``hybrid-digits-cpu``, ``hybrid-paper-gpu``, ``mnist-cnn``;
``qcarleman configs`` lists them). Runs dense training, pruning, spectra, hybrid vs classical
sparse training, the shot sweep, the estimate and the report
(:func:`qcarleman.pipeline.stages.run_pipeline`).

With ``--from RUN``: no training from scratch. Model, data, mask, optimizer state and schedule
come from the sparse run RUN (``qcarleman sparse-train`` output, or OUT/sparse of a ``--config``
run), starting at its checkpoint ``--step`` (default: the first, the pruned weights); the hybrid
run and the classical baseline go to DIR/hybrid and DIR/classical, the summary to
DIR/comparison.json (:func:`qcarleman.hybrid.from_run.hybrid_from_run`). The hybrid settings are
the [hybrid] defaults changed by ``--backend``, ``--segment-steps``, ``--total-steps``,
``--shots`` and ``--set KEY=VALUE`` (any [hybrid] key; these also override a config's table).
Every stage resumes when rerun.

Examples::

    qcarleman hybrid --config hybrid-digits-cpu --out runs/hybrid-digits
    qcarleman hybrid --config mnist-cnn --out runs/hybrid-mnist --json
    qcarleman hybrid --from runs/hybrid-digits/sparse --out runs/from-digits --total-steps 20
    qcarleman hybrid --from runs/digits-sparse --step 5 --backend linear --set shots=0 --out runs/h5
    qcarleman configs show hybrid-digits-cpu > mine.toml
    qcarleman hybrid --config mine.toml --out runs/mine
"""

from __future__ import annotations

import argparse

from ..hybrid.settings import BACKENDS
from .helptext import command_help
from .validate import (
    add_force,
    check_config,
    check_hybrid_source,
    check_hybrid_tables,
    hybrid_overrides,
    integer,
    segment_steps,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hybrid",
        help="hybrid quantum/classical sparse training against the classical baseline",
        **command_help(__doc__),
    )
    p.add_argument("--config", default=None, help="TOML file or shipped example name")
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="RUN",
        help="start from this sparse run instead of training from a config",
    )
    p.add_argument(
        "--step",
        type=integer(0, 10**9),
        default=None,
        help="with --from: the checkpoint to start from (default: the run's first)",
    )
    p.add_argument("--out", required=True, help="output directory (resumed if present)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="hybrid.backend (default: the config's, else carleman)",
    )
    p.add_argument(
        "--segment-steps",
        type=segment_steps,
        default=None,
        help="hybrid.segment_steps: K ≥ 1 or auto",
    )
    p.add_argument("--total-steps", type=integer(1, 10**6), default=None, help="hybrid.total_steps")
    p.add_argument("--shots", type=integer(0, 10**15), default=None, help="hybrid.shots M")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other [hybrid] key, e.g. --set order=1 --set epsilon=1e-3 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the summary JSON instead")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = hybrid_overrides(args)  # checked before any work starts
    if args.source is not None:
        return _run_from(args, overrides)
    import tomllib
    from dataclasses import replace
    from pathlib import Path

    from ..atomic import dumps_json
    from ..pipeline.stages import load_hybrid_config, run_pipeline
    from ..report import build_report
    from ..training.config import example_config, load_config
    from .demo import print_summary

    path = args.config
    if not Path(path).is_file() and not path.endswith(".toml"):
        path = example_config(path)
    try:
        check_hybrid_tables(tomllib.loads(Path(path).read_text()))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        pass  # load_hybrid_config names the syntax error or the missing file
    cfg, settings, options = load_hybrid_config(path)
    if overrides:
        settings = replace(settings, **overrides)
    check_config(load_config(cfg), force=args.force)
    summary = run_pipeline(
        cfg,
        settings,
        args.out,
        options,
        progress=not args.quiet,
        report=build_report,
        title=f"qcarleman hybrid ({Path(path).stem})",
    )
    if args.json:
        print(dumps_json(summary))
    else:
        print_summary(summary, args.out)
    return 0


def _run_from(args: argparse.Namespace, overrides: dict) -> int:
    """``--from RUN``: :func:`qcarleman.hybrid.from_run.hybrid_from_run`."""
    from ..atomic import dumps_json
    from ..hybrid.from_run import COMPARISON, hybrid_from_run
    from ..hybrid.settings import HybridSettings
    from ..report.verdict import human

    source = check_hybrid_source(args)
    s = hybrid_from_run(
        source.run.path,
        args.out,
        HybridSettings(**overrides),
        step=source.step,
        progress=not args.quiet,
    )
    if args.json:
        print(dumps_json(s))
        return 0
    pct = lambda v: f"{100 * v:.2f}%"
    h, c = s["hybrid"], s["classical"]
    print(
        f"hybrid from {s['source']} step {s['step']}: n = {s['n_active']:,} active of "
        f"{s['parameters']:,} parameters (mask kept), {h['steps']} steps"
    )
    print(
        f"  test accuracy: start {pct(s['start_accuracy'])}, classical {pct(c['test_acc'])}, "
        f"hybrid {pct(h['test_acc'])} (gap {s['accuracy_gap_points']:+.2f} points); "
        f"{h['quantum_steps']} steps in {h['quantum_segments']} quantum segments "
        f"({h['backend']}), {h['shots_total']:,} shots"
    )
    if h["emulation_error_max"] is not None:
        print(
            f"  max emulation error {h['emulation_error_max']:.3g} (vs true GD), "
            f"max readout error {h['readout_error_max']:.3g}"
        )
    e = s["estimate"]
    if e:
        print(
            f"  one segment on a fault-tolerant machine: {e['logical_qubits']} logical qubits, "
            f"quantum {human(e['quantum_seconds'], 's')} vs classical "
            f"{human(e['classical_seconds'], 's')} → {e['winner']}"
        )
    print(f"  wrote {args.out}/hybrid, {args.out}/classical, {args.out}/{COMPARISON}")
    return 0
