"""Shared helpers of the benchmark scripts: where results go and what machine measured them."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """CPU model (from lscpu) and the number of cores visible to this process."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
            model,
        )
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores visible"


def load() -> str:
    """The 1/5/15-minute load averages (the machine may be shared with other jobs)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def append_results(text: str) -> None:
    """Append a measured section to benchmarks/RESULTS.md."""
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")


def publish(lines: list[str], append: bool) -> None:
    """Print a measured section and, if ``append``, add it to benchmarks/RESULTS.md."""
    text = "\n".join(lines)
    print(text)
    if append:
        append_results(text)
