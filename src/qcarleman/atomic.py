"""Atomic file output: every result, figure and checkpoint is written to a temp file in the same
folder, flushed, and moved into place with :func:`os.replace`, so an interrupted run never leaves
a truncated file. Files get the mode a plain ``open(path, "w")`` would give (0o666 less the
user's umask), not :func:`tempfile.mkstemp`'s private 0o600. Also the JSON conversion used by
every ``--json`` output (non-finite floats become ``null``, NumPy scalars and arrays become
Python values; bare NaN/Infinity is never written), the JSON reader, and the one JSONL
appender/reader of run logs: a record is appended as one line and fsynced; a torn last line (a
kill mid-append) is dropped on read and cut off before the next append.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import UsageError

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "write_json",
    "jsonable",
    "dumps_json",
    "read_json",
    "append_jsonl",
    "read_jsonl",
    "write_jsonl",
    "remove_stale_temps",
]


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        os.chmod(tmp, 0o666 & ~_umask())
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
    return atomic_write_text(path, dumps_json(payload, indent=indent))


def dumps_json(payload: Any, indent: int | None = None) -> str:
    """``json.dumps(jsonable(payload))`` with ``allow_nan=False`` (strict JSON, no bare NaN)."""
    return json.dumps(jsonable(payload), indent=indent, allow_nan=False)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored in ``path``, or None when the file does not exist; a damaged file
    raises :class:`UsageError` naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:60]}); "
            "delete it to have it rewritten"
        ) from None


def _torn_tail(path: Path) -> int | None:
    """Byte offset just after the last newline if the file does not end with one, else None."""
    size = path.stat().st_size
    if size == 0:
        return None
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        f.seek(0)
        data = f.read()
    return data.rfind(b"\n") + 1


def append_jsonl(path: str | os.PathLike, record: Any) -> None:
    """Append ``record`` as one strict-JSON line to ``path`` and fsync it. A torn last line left
    by a killed writer is cut off first, so the new record starts on its own line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (dumps_json(record) + "\n").encode()
    if path.is_file():
        cut = _torn_tail(path)
        if cut is not None:
            os.truncate(path, cut)
    with open(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Records of a JSONL file (empty if absent). A torn last line (no newline, or not valid
    JSON) is dropped; a damaged line before it raises :class:`UsageError` naming the line."""
    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    torn = lines.pop()  # text after the last newline: b"" unless the last line is torn
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line.decode()))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == len(lines) and not torn:  # unparsable last line: torn by a kill
                break
            raise UsageError(
                f"{path} line {i} is not valid JSON ({type(exc).__name__}); "
                "delete that line or the file to continue"
            ) from None
    return out


def write_jsonl(path: str | os.PathLike, records: list[Any]) -> Path:
    """Replace ``path`` with ``records``, one strict-JSON line each, atomically."""
    return atomic_write_text(path, "".join(dumps_json(r) + "\n" for r in records))


_TEMP = re.compile(r"\..+\..+\.tmp")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files :func:`atomic_write` leaves when a writer is killed
    mid-write; call when a run (re)starts. Returns the removed paths."""
    folder = Path(folder)
    gone = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and _TEMP.fullmatch(p.name):
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone
