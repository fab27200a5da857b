"""benchmarks/device_check.sh --tiny runs unchanged on the CPU and writes its JSON (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_tiny_writes_json_and_table(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PY=sys.executable, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--tiny", "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["tiny"] and report["device"] == "cpu"
    assert len(report["models"]) == 2
    first = report["models"][0]
    assert 0 < first["active_n"] < first["parameters"]  # 90% of the prunable weights pruned
    for name in ("gradient", "hvp", "third_order", "lambda_max", "slq", "order2_emulation"):
        part = first["parts"][name]
        assert part["status"] == "ok", (name, part)
        assert part["seconds"]["kind"] == "measured" and part["seconds"]["value"] > 0
    lam = first["parts"]["lambda_max"]
    assert lam["lambda_max"]["value"] <= lam["lambda_max_upper"]["value"]
    assert lam["lambda_max_upper"]["kind"] == "bound"
    assert first["parts"]["slq"]["products"] == 8
    emu = first["parts"]["order2_emulation"]
    assert (emu["hvp_products"], emu["third_products"]) == (4, 2)  # T² and T(T−1) at T = 2
    assert "| ResNet-8x1 |" in (tmp_path / "device_check.md").read_text()
