"""``qcarleman prune CONFIG --from DENSE_RUN --out SPARSE_RUN``: global (or layer-wise) L1
magnitude pruning of a dense checkpoint with the config's [prune] table (ALGORITHM.md §9).

Writes step 0 of the sparse run (the pruned weights, or re-initialised weights under the mask in
``sparse.mode = "scratch"``) and prints the sparsity report; continue with ``qcarleman
sparse-train CONFIG --out SPARSE_RUN``.

Examples::

    qcarleman prune digits-cnn --from runs/digits-dense --out runs/digits-sparse
    qcarleman prune digits-cnn --from runs/digits-dense --step 300 --out runs/digits-sparse --json
"""

from __future__ import annotations

import argparse

from .helptext import command_help
from .train import add_common, load, report
from .validate import integer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prune",
        help="magnitude-prune a dense run's checkpoint (sparse step 0)",
        **command_help(__doc__),
    )
    add_common(p)
    p.add_argument("--from", dest="source", required=True, help="dense run directory")
    p.add_argument(
        "--step", type=integer(0, 10**9), default=None, help="checkpoint step (default: latest)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.trainer import prune_run

    rep = prune_run(load(args.config, args.force), args.source, args.out, args.step, not args.quiet)
    report(args, f"pruned {args.source} -> {args.out} (step 0)", rep)
    return 0
