"""The files of a hybrid output directory (ALGORITHM.md §8), all written atomically::

OUT/hybrid.json       settings, source run (relative to OUT), active-set size n, model P (written
                      once)
OUT/segments.jsonl    one :class:`~qcarleman.hybrid.records.SegmentRecord` per segment, plus a
                      ``kind = "start"`` record with the evaluation at the first step
OUT/state.pt          the hybrid state after the last finished segment (resume)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import (
    jsonable,
    read_json,
    read_jsonl,
    remove_stale_temps,
    write_json,
    write_jsonl,
)
from ..errors import UsageError

__all__ = ["HybridStore", "load_records", "HEADER", "SEGMENTS", "STATE"]

HEADER, SEGMENTS, STATE = "hybrid.json", "segments.jsonl", "state.pt"


def load_records(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``OUT/segments.jsonl`` (empty if none)."""
    return read_jsonl(Path(out) / SEGMENTS)


class HybridStore:
    """Reads and writes the files of one hybrid output directory ``out`` (module docstring)."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)

    @property
    def header_path(self) -> Path:
        return self.out / HEADER

    @property
    def segments_path(self) -> Path:
        return self.out / SEGMENTS

    @property
    def state_path(self) -> Path:
        return self.out / STATE

    def claim(self, header: dict[str, Any]) -> None:
        """Write ``hybrid.json``, or check that the one there describes the same run (its
        ``source`` compared as a path resolved against OUT, so an absolute path written by an
        older version still matches). Removes the temp files a killed writer left in OUT."""
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.out)
        old = read_json(self.header_path)
        if old is None:
            write_json(self.header_path, header)
        elif self._canonical(old) != self._canonical(jsonable(header)):
            raise UsageError(
                f"{self.out} holds a hybrid run with other settings or source; "
                "use a new output directory"
            )

    def _canonical(self, header: Any) -> Any:
        """``header`` with its ``source`` resolved against OUT (for comparison)."""
        if isinstance(header, dict) and isinstance(header.get("source"), str):
            return header | {"source": str((self.out / header["source"]).resolve())}
        return header

    def records(self) -> list[dict[str, Any]]:
        return load_records(self.out)

    def write_records(self, records: list[dict[str, Any]]) -> None:
        write_jsonl(self.segments_path, records)

    def load_state(self) -> dict[str, Any] | None:
        """The saved state dict (``weights_only`` load), or None before the first segment."""
        from ..training.checkpoint import load_checkpoint

        return load_checkpoint(self.state_path) if self.state_path.is_file() else None

    def save_state(self, state: dict[str, Any]) -> None:
        from ..training.checkpoint import save_checkpoint

        save_checkpoint(self.state_path, state)
