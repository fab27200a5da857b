"""``qcarleman scaling RUN_DIR --step S``: measured growth of κ, P_succ and the QSVT output with
the horizon T on a real checkpoint (issue 17; :mod:`qcarleman.analysis.scaling`).

For T = 1..``--t-max`` the order-1 history system of the map actually trained (momentum and SGD
batches included) is held matrix-free (HVPs): κ measured by Lanczos on LᵀL, the §3 bound, exact
P_succ, the output of the actual QSVT inverse polynomial applied matrix-free with its fidelity
against forward substitution (where its degree ≤ ``--qsvt-max-degree``), order-2 κ estimates and
P_succ from the low-rank levels, and the fitted exponents beside the paper's O(T)/O(T²) claims.
Writes ``OUT/scaling_step_<step:08d>.json`` and ``.md``.

Examples::

    qcarleman scaling demo-out/sparse --step 0 --t-max 6 --json
    qcarleman scaling demo-out/sparse --step 0 --weight-decay 3.31 --t-max 8
    qcarleman scaling runs/mnist-sparse --step 0 --t-max 4 --qsvt-max-degree 0 --no-order2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .helptext import command_help

JSON_KEYS = ("T", "kappa", "p_succ", "qsvt_fidelity", "exponents")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scaling",
        help="measured κ, P_succ and QSVT fidelity against T on a checkpoint, fitted exponents",
        **command_help(__doc__),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run directory")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--t-max", type=int, default=6, help="largest horizon T (default 6)")
    p.add_argument("--t-min", type=int, default=1, help="smallest horizon T (default 1)")
    p.add_argument("--idle", type=int, default=0, help="idle copies p (default 0)")
    p.add_argument("--epsilon", type=float, default=0.1, help="QSVT polynomial error ε (0.1)")
    p.add_argument(
        "--qsvt-max-degree",
        type=int,
        default=600,
        help="apply the QSVT polynomial only up to this degree (each degree = T HVPs; 600)",
    )
    p.add_argument("--no-order2", action="store_true", help="skip the order-2 estimates")
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's")
    p.add_argument("--lr", type=float, default=None, help="η (default: the run's schedule)")
    p.add_argument("--momentum", type=float, default=None, help="μ (default: the run's)")
    p.add_argument("--weight-decay", type=float, default=None, help="λ (default: the run's)")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/scaling)")
    p.add_argument("--json", action="store_true", help="print the contract keys as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines (on stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.scaling import scaling_checkpoint, scaling_markdown
    from ..atomic import atomic_write_text, dumps_json, write_json
    from ..errors import UsageError

    if args.qsvt_max_degree < 0:
        raise UsageError("--qsvt-max-degree must be ≥ 0 (0 skips the QSVT output)")
    r = scaling_checkpoint(
        args.run_dir,
        args.step,
        args.t_max,
        t_min=args.t_min,
        idle=args.idle,
        epsilon=args.epsilon,
        qsvt_max_degree=args.qsvt_max_degree,
        order2=not args.no_order2,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        progress=not args.quiet,  # on stderr; --json output stays clean
    )
    out = Path(args.out) if args.out else Path(args.run_dir) / "scaling"
    stem = out / f"scaling_step_{r['checkpoint']:08d}"
    md = scaling_markdown(r)
    write_json(stem.with_suffix(".json"), r)
    atomic_write_text(stem.with_suffix(".md"), md + "\n")
    files = [str(stem.with_suffix(".json")), str(stem.with_suffix(".md"))]
    if args.json:
        print(dumps_json({**{k: r[k] for k in JSON_KEYS}, "files": files, "notes": r["notes"]}))
        return 0
    print(md)
    print(f"time {r['seconds_total']:.1f} s; wrote {', '.join(files)}")
    return 0
