"""``--help`` text of a command from its module docstring: the prose becomes the description and
the ``Examples::`` block the epilog, both shown verbatim (RawDescriptionHelpFormatter) with the
reST markup (``:func:`x```, double backticks) reduced to plain text."""

from __future__ import annotations

import argparse
import re
import textwrap

__all__ = ["command_help"]

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _plain(text: str) -> str:
    return _ROLE.sub(r"\1", text).replace("``", "`")


def command_help(doc: str | None) -> dict:
    """Keyword arguments for ``add_parser``: ``description``, ``epilog`` and the raw formatter.

    The docstring must end with an ``Examples::`` block (one command per line)."""
    head, sep, examples = (doc or "").partition("Examples::")
    if not sep:
        raise ValueError("command docstring has no 'Examples::' block")
    lines = [ln.strip() for ln in examples.strip().splitlines() if ln.strip()]
    return {
        "description": _plain(textwrap.dedent(head).strip()),
        "epilog": "Examples:\n" + "\n".join(f"  {ln}" for ln in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
