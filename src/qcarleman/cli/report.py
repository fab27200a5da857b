"""``qcarleman report RUN_DIR``: rebuild the figures and ``report.html`` of a pipeline run.

RUN_DIR is the output directory of ``qcarleman demo``, ``qcarleman hybrid`` or
``qcarleman paper`` (:func:`qcarleman.report.paper_html.build_paper_report`); the page is
rebuilt from its saved JSON (``summary.json``, ``spectra.json``, ``shots.json``,
``emulation.json``, ``hybrid/segments.jsonl``, ``classical/segments.jsonl``) without retraining
(:func:`qcarleman.report.build_report`).

Examples::

    qcarleman report demo-out
    qcarleman report runs/hybrid-digits --json
"""

from __future__ import annotations

import argparse

from .helptext import command_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild report.html of a demo/hybrid output directory",
        **command_help(__doc__),
    )
    p.add_argument("run_dir", help="output directory of `qcarleman demo`, `hybrid` or `paper`")
    p.add_argument("--json", action="store_true", help="print the figure list as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..atomic import dumps_json, read_json
    from ..errors import UsageError
    from ..pipeline.layout import PaperLayout, RunLayout
    from ..report import build_report
    from ..report.figures import FigureInfo
    from ..report.paper_html import build_paper_report

    paper = PaperLayout(args.run_dir)
    build = build_paper_report if paper.analysis.is_file() else build_report
    try:
        path = build(args.run_dir)
        figs = [FigureInfo(**f) for f in read_json(RunLayout(args.run_dir).figure_index)]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(
            f"{args.run_dir} holds a damaged or foreign result file ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); rerun `qcarleman demo`/`hybrid` into it"
        ) from None
    if args.json:
        print(dumps_json({"report": str(path), "figures": [asdict(f) for f in figs]}))
    else:
        print(f"wrote {path} with {len(figs)} figures:")
        for f in figs:
            print(f"  {f.file}: {f.title}")
    return 0
