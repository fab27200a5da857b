"""``qcarleman hybrid --config FILE.toml --out DIR``: the hybrid pipeline for any model and data.

FILE is a training config (:mod:`qcarleman.training.config`) plus a ``[hybrid]`` table
(:class:`qcarleman.hybrid.settings.HybridSettings`) and an optional ``[pipeline]`` table
(spectra, shot sweep, emulation backends: :class:`qcarleman.pipeline.options.PipelineOptions`),
or the name of a shipped example (``hybrid-digits-cpu``, ``hybrid-paper-gpu``, ``mnist-cnn``;
``qcarleman configs`` lists them). Runs dense training, pruning, spectra, hybrid vs classical
sparse training, the shot sweep, the estimate and the report
(:func:`qcarleman.pipeline.stages.run_pipeline`); every stage resumes when rerun.

Examples::

    qcarleman hybrid --config hybrid-digits-cpu --out runs/hybrid-digits
    qcarleman hybrid --config mnist-cnn --out runs/hybrid-mnist --json
    qcarleman configs show hybrid-digits-cpu > mine.toml
    qcarleman hybrid --config mine.toml --out runs/mine
"""

from __future__ import annotations

import argparse

from .helptext import command_help
from .validate import add_force, check_config, check_hybrid_tables


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hybrid",
        help="hybrid quantum/classical sparse training against the classical baseline",
        **command_help(__doc__),
    )
    p.add_argument("--config", required=True, help="TOML file or shipped example name")
    p.add_argument("--out", required=True, help="output directory (resumed if present)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of a summary")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tomllib
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
