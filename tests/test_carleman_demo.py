"""The interim `qcarleman demo` (Carleman engine on its built-in map); remove with the demo."""

import json

from qcarleman.cli.main import main


def test_interim_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    assert "INTERIM" in capsys.readouterr().out
    result = json.loads((tmp_path / "demo.json").read_text())
    errs = [r["max_relative_error"] for r in result["orders"]]
    assert errs[0] > 5 * errs[1] > 25 * errs[2]
    assert all(0 < r["success_probability"] < 1 and r["kappa"] >= 1 for r in result["orders"])
