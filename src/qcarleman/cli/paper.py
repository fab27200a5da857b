"""``qcarleman paper --preset NAME --out DIR``: the paper's experiment on the paper's model family.

Liu et al., Nat. Commun. 15, 434 (2024), Figs. 2–4 — dense training, 90% global L1 pruning,
sparse finetuning with a checkpoint after each early step, test accuracy per step, Hessian
spectra (SLQ) at steps 0–20, 24, 28, 32, E(T) and the window (paper definition and the momentum
map trained), dissipative/divergent modes — plus the emulated quantum output over the window
(Carleman orders 1 and 2 against the momentum SGD trained, tomography download at stated shot
budgets) and its resource bill (:func:`qcarleman.pipeline.paper.run_paper`). Writes
``summary.json``, PNG figures and ``report.html`` into DIR; rerunning resumes stage by stage.

Presets (:mod:`qcarleman.pipeline.presets`): ``tiny`` (CI), ``cpu`` (ResNet-8 on MNIST, ≤ 30 min
on 2 cores), ``paper`` (ResNet-32×4 on CIFAR-100, CUDA, ``--data DIR``), ``paper-103m``
(ResNet-56×11, 103,703,700 parameters). ``--set section.key=value`` overrides a config key.

Examples::

    qcarleman paper --preset tiny --out paper-tiny
    qcarleman paper --preset cpu --out paper-cpu
    qcarleman paper --preset paper --data ~/data --out paper-r32x4
    qcarleman paper --preset paper --data ~/data --device cpu --set model.widen=1 --out small
"""

from __future__ import annotations

import argparse

from .helptext import command_help


def register(sub: argparse._SubParsersAction) -> None:
    from ..pipeline.presets import PRESETS

    p = sub.add_parser(
        "paper",
        help="the paper's experiment (Figs. 2-4) and the emulated output",
        **command_help(__doc__),
    )
    p.add_argument("--preset", required=True, help=f"one of {', '.join(PRESETS)} (or a TOML file)")
    p.add_argument("--out", required=True, help="output directory (rerun to resume)")
    p.add_argument("--data", default=None, help="folder holding cifar-100-python/ (CIFAR presets)")
    p.add_argument("--device", default=None, help="override the preset's device (cpu, cuda)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. model.widen=1 or paper.lanczos_steps=20",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print summary.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from ..atomic import dumps_json
    from ..pipeline.paper import run_paper
    from ..report.paper_html import build_paper_report

    summary = run_paper(
        args.preset,
        args.out,
        data_root=args.data,
        device=args.device,
        overrides=args.overrides,
        progress=not args.quiet,
        report=build_paper_report,
    )
    if args.json:
        print(dumps_json(summary))
    else:
        print(summary["findings"])
        print(f"report: {args.out}/report.html ({summary['seconds']:.0f} s)")
    return 0
