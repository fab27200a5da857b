"""``qcarleman train CONFIG --out RUN``: dense training from a TOML config (ALGORITHM.md §9).

CONFIG is a TOML file or the name of a shipped example (digits-cnn, digits-cnn-large, mnist-cnn,
cifar100-resnet32x4). Writes RUN/config.toml, RUN/metrics.jsonl and RUN/checkpoints/; rerunning
the same command resumes from the latest checkpoint (bit for bit on the CPU).

Examples::

    qcarleman configs
    qcarleman train digits-cnn --out runs/digits-dense
    qcarleman train my-config.toml --out runs/mine --json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .helptext import command_help
from .validate import add_force, check_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="dense training from a TOML config into a run directory",
        **command_help(__doc__),
    )
    add_common(p)
    p.set_defaults(func=run)


def add_common(p: argparse.ArgumentParser) -> None:
    """Arguments shared by train, prune and sparse-train."""
    p.add_argument("config", help="TOML config file or the name of a shipped example config")
    p.add_argument("--out", required=True, help="run directory to write (resumed if present)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_force(p)


def load(path: str, force: bool = False):
    """The validated config of a file path or shipped example name, its numbers checked against
    their ranges and its size against the work guard (:func:`.validate.check_config`)."""
    from ..training.config import example_config, load_config

    cfg = load_config(
        path if Path(path).is_file() or path.endswith(".toml") else example_config(path)
    )
    check_config(cfg, force=force)
    return cfg


def report(args: argparse.Namespace, title: str, result: dict[str, Any]) -> None:
    """Print a result record as JSON or as aligned lines."""
    if args.json:
        from ..atomic import dumps_json

        print(dumps_json(result))
        return
    print(title)
    for k, v in result.items():
        print(f"  {k:<16} {v:.4g}" if isinstance(v, float) else f"  {k:<16} {v}")


def run(args: argparse.Namespace) -> int:
    from ..training.trainer import train_dense

    rec = train_dense(load(args.config, args.force), args.out, progress=not args.quiet)
    report(args, f"dense training finished: {args.out}", rec)
    return 0
