"""Run every benchmark of ``benchmarks/`` (``make bench``), one subprocess each, in a fixed order.

Each ``bench_*.py`` prints its markdown section and appends it to ``benchmarks/RESULTS.md`` (with
machine, date and load) unless ``--no-append`` is given, which is passed through. A benchmark that
fails does not stop the others; the exit code is the number of failures. ``--only NAME ...``
selects benchmarks by their short name (``carleman``, ``spectrum``, ...); ``--list`` lists them.

    .venv/bin/python benchmarks/run_all.py [--no-append] [--only carleman resources] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def benchmarks() -> dict[str, Path]:
    """Short name → script, for every ``bench_*.py`` beside this file."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    found = benchmarks()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-append", action="store_true", help="print only, do not touch RESULTS.md")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of: {', '.join(found)}")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(found))
        return 0
    names = args.only or list(found)
    unknown = sorted(set(names) - set(found))
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(found)}")
    failures = []
    for name in names:
        cmd = [sys.executable, str(found[name])] + (["--no-append"] if args.no_append else [])
        print(f"## {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"## {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failures.append(name)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return len(failures)


if __name__ == "__main__":
    sys.exit(main())
