"""The scripts in examples/ run as a user would run them (a fresh interpreter, an empty working
folder, the Agg backend) and print their key results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, tmp_path: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_every_example_has_a_docstring_and_a_test():
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert scripts == ["qsvt_history.py", "resource_bill.py", "your_model.py"]
    for name in scripts:
        text = (ROOT / "examples" / name).read_text()
        assert text.startswith('"""') and "Run: ``python examples/" in text, name


def test_your_model(tmp_path):
    out = _run("your_model.py", tmp_path)
    assert re.search(r"pruned [\d,]+ of [\d,]+ prunable weights \(80\.0%\)", out)
    assert re.search(r"spectrum: n = \d+ active, regime [a-z -]+, t\* = \d+", out)
    errs = re.search(r"N = 1: ([0-9.e+-]+), N = 2: ([0-9.e+-]+)", out)
    assert errs and float(errs.group(2)) < float(errs.group(1)) < 1  # order 2 beats order 1
    assert "Verdict:" in out and re.search(r"→ (classical|quantum) wins\.", out)


def test_resource_bill_writes_the_breakeven_plot(tmp_path):
    png = tmp_path / "be.png"
    out = _run("resource_bill.py", tmp_path, str(png))
    assert "logical_qubits" in out and "shots_for_epsilon" in out and "wall-clock:" in out
    assert len(re.findall(r"^  (fully|almost) dissipative +T = \d+", out, flags=re.M)) == 8
    assert f"break-even plot: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_qsvt_history_matches_the_exact_solution(tmp_path):
    pytest.importorskip("pennylane")
    out = _run("qsvt_history.py", tmp_path)
    fid = float(re.search(r"state fidelity ([0-9.]+)", out).group(1))
    rel = float(re.search(r"relative error ([0-9.e+-]+)\)", out).group(1))
    assert fid > 0.999 and rel < 0.05
    wires = [ln for ln in out.splitlines() if re.match(r"\d: ", ln)]
    assert {ln[0] for ln in wires} == set("0123456") and len(wires) % 7 == 0  # 7 wires, wrapped
    degree = int(re.search(r"polynomial degree (\d+), 7 qubits", out).group(1))
    assert sum(ln.count("BlockEncode") for ln in wires) == degree * 6  # on wires 1..6
