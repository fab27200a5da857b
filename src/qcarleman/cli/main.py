"""Entry point of the ``qcarleman`` command.

Each command lives in its own module ``qcarleman.cli.<name>`` exposing
``register(subparsers)``, which adds a sub-parser whose ``func(args) -> int`` runs it.
Command modules import heavy dependencies (torch, pennylane) inside ``func`` so that
``qcarleman --help`` and light commands start fast.

Errors: a :class:`~qcarleman.errors.UsageError` prints one line and exits with code 2, a
:class:`~qcarleman.errors.DivergenceError` (NaN/inf in training) with code 3; any other
:class:`~qcarleman.errors.QCarlemanError` prints one line and exits with code 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import DivergenceError, QCarlemanError, UsageError

# One module per command, in the order `qcarleman --help` lists them.
COMMANDS = [
    "demo",
    "paper",
    "hybrid",
    "report",
    "burgers",
    "train",
    "prune",
    "sparse_train",
    "estimate",
    "spectrum",
    "emulate",
    "scaling",
    "advise",
    "configs",
]


class _Parser(argparse.ArgumentParser):
    """argparse prints usage + error and exits 2; keep that, but make it one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"qcarleman: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qcarleman",
        description="Implement, emulate and cost the quantum Carleman training algorithm "
        "(Liu et al., Nat. Commun. 15, 434, 2024).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"qcarleman.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"qcarleman: error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"qcarleman: error: {exc}", file=sys.stderr)
        return 3
    except QCarlemanError as exc:
        print(f"qcarleman: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unreadable input or unwritable output path
        if isinstance(exc, BrokenPipeError):  # e.g. `... --json | head`: the reader left
            sys.stderr.close()
            return 0
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"qcarleman: error: {exc.strerror or exc}{where}; check the path and its permissions",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("qcarleman: interrupted; completed results and checkpoints are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
