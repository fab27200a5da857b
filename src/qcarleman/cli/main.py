"""Entry point of the ``qcarleman`` command.

Each command lives in its own module ``qcarleman.cli.<name>`` exposing
``register(subparsers)``, which adds a sub-parser whose ``func(args) -> int`` runs it.
Command modules import heavy dependencies (torch, pennylane) inside ``func`` so that
``qcarleman --help`` and light commands start fast.

Errors: a :class:`~qcarleman.errors.UsageError` prints one line and exits with code 2, a
:class:`~qcarleman.errors.DivergenceError` (NaN/inf in training) with code 3; any other
:class:`~qcarleman.errors.QCarlemanError` prints one line and exits with code 1.
Arguments are parsed into typed, ranged values by :mod:`qcarleman.cli.validate` before any work
starts. Anything else (a bug) is one line naming it as an internal error, exit 1;
``QCARLEMAN_DEBUG=1`` re-raises it with its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: a one-line usage error is exit 2; --help exits 0
        if exc.code in (0, None):
            raise
        return 2
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
    except KeyboardInterrupt as exc:  # a command may say what it kept (the exception's text)
        kept = str(exc) or "completed results and checkpoints are kept; rerun to resume"
        print(f"qcarleman: interrupted; {kept}", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            "qcarleman: error: out of memory; use smaller sizes or a lower --memory-limit / "
            "QCARLEMAN_MEMORY_LIMIT so the size checks refuse it up front",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        if os.environ.get("QCARLEMAN_DEBUG"):
            raise
        msg = " ".join(str(exc).split())[:200]
        print(
            f"qcarleman: internal error ({type(exc).__name__}: {msg}); please report it with the "
            "command line (QCARLEMAN_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
