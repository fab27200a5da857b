"""Errors and resource guards shared by every layer.

Every error a user can trigger is a :class:`QCarlemanError` whose message is one line naming the
problem and the fix. The CLI turns :class:`UsageError` (bad input) into exit code 2 and
:class:`DivergenceError` (training produced NaN/inf) into exit code 3.
Memory is predicted before any big allocation with :func:`check_memory`.
"""

from __future__ import annotations

import os
import re

import numpy as np

__all__ = [
    "QCarlemanError",
    "UsageError",
    "MemoryLimitError",
    "DivergenceError",
    "memory_limit",
    "check_memory",
    "check_finite",
    "format_bytes",
]


class QCarlemanError(Exception):
    """Base class: a one-line, user-facing message naming the problem and the fix."""


class UsageError(QCarlemanError, ValueError):
    """Bad input (shapes, values, options, files). The CLI exits with code 2."""


class MemoryLimitError(UsageError):
    """A predicted allocation exceeds the memory limit."""


class DivergenceError(QCarlemanError):
    """Training diverged: a non-finite loss, gradient or weight. The CLI exits with code 3."""


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise UsageError(
            f"cannot read memory size {text!r}; write it like 8G, 512M or 1000000 (bytes)"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_bytes(n: float) -> str:
    """Human-readable byte count (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def memory_limit(limit: int | str | None = None) -> int:
    """The memory limit in bytes.

    Order of precedence: the explicit ``limit``, the environment variable
    ``QCARLEMAN_MEMORY_LIMIT`` (e.g. ``8G``), else half of this machine's physical RAM.
    """
    if limit is not None:
        return _parse_bytes(limit) if isinstance(limit, str) else int(limit)
    env = os.environ.get("QCARLEMAN_MEMORY_LIMIT")
    if env:
        return _parse_bytes(env)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 1024**3
    return total // 2


def check_memory(nbytes: float, what: str, limit: int | str | None = None) -> None:
    """Raise :class:`MemoryLimitError` if ``nbytes`` (predicted) exceeds the memory limit."""
    cap = memory_limit(limit)
    if nbytes > cap:
        raise MemoryLimitError(
            f"{what} needs about {format_bytes(nbytes)} but the memory limit is "
            f"{format_bytes(cap)}; use a smaller problem or raise the limit "
            f"(memory_limit=... or QCARLEMAN_MEMORY_LIMIT)"
        )


def check_finite(name: str, value) -> None:
    """Raise :class:`UsageError` if a dense or sparse array holds NaN or inf."""
    data = value.data if hasattr(value, "tocoo") else np.asarray(value)
    if not np.all(np.isfinite(data)):
        raise UsageError(f"{name} has non-finite entries (NaN or inf); pass finite coefficients")
