"""Atomic file output: every result, figure and checkpoint is written to a temp file in the same
folder, flushed, and moved into place with :func:`os.replace`, so an interrupted run never leaves
a truncated file. Also the JSON conversion used by every ``--json`` output (non-finite floats
become ``null``, NumPy scalars and arrays become Python values) and the JSON / JSON-lines readers
that go with the writers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "write_json",
    "write_jsonl",
    "read_json",
    "read_jsonl",
    "jsonable",
]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temp file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON types: dict keys as str, arrays/tuples as lists, NumPy scalars as
    Python scalars, NaN/inf as None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [jsonable(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    return x


def write_json(path: str | os.PathLike, payload: Any, indent: int = 1) -> Path:
    """Write ``jsonable(payload)`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(jsonable(payload), indent=indent))


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored in ``path``, or None when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_jsonl(path: str | os.PathLike, records: list[Any]) -> Path:
    """Write one JSON line per record to ``path`` atomically (records as given: apply
    :func:`jsonable` first where they hold NumPy values)."""
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped); empty when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
