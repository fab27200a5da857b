"""``qcarleman sparse-train CONFIG --out SPARSE_RUN [--from DENSE_RUN]``: sparse training under
the pruning mask with the config's [sparse] table (finetune or scratch; ALGORITHM.md §9).

If SPARSE_RUN has no step-0 checkpoint, the latest checkpoint of DENSE_RUN is pruned first. A
checkpoint is written after each of the first ``sparse.every_step_first`` (default 20) steps,
then per epoch; rerunning resumes from the latest one.

Examples::

    qcarleman sparse-train digits-cnn --from runs/digits-dense --out runs/digits-sparse
    qcarleman sparse-train digits-cnn --out runs/digits-sparse --quiet
"""

from __future__ import annotations

import argparse

from .helptext import command_help
from .train import add_common, load, report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sparse-train",
        help="sparse training (finetune or scratch) after pruning",
        **command_help(__doc__),
    )
    add_common(p)
    p.add_argument("--from", dest="source", default=None, help="dense run to prune first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.trainer import sparse_train

    rec = sparse_train(load(args.config, args.force), args.out, args.source, not args.quiet)
    report(args, f"sparse training finished: {args.out}", rec)
    return 0
