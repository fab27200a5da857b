"""``--json`` output of every command is strict JSON: printed through
:func:`qcarleman.atomic.dumps_json`, so no bare ``NaN``/``Infinity`` ever reaches stdout (a
non-finite number is ``null``). Each command runs on a tiny input and its stdout is parsed by a
parser that refuses the non-standard constants (``report --json``: tests/report/test_report.py).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

import qcarleman.cli
from qcarleman.cli.main import main


def _refuse(token: str):
    raise ValueError(f"bare {token} in --json output")


def strict(text: str):
    """``json.loads`` that rejects NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_refuse)


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert rc == 0, (argv, out.err)
    return strict(out.out)


def test_strict_parser_refuses_bare_nan():
    with pytest.raises(ValueError, match="NaN"):
        strict(json.dumps({"x": math.nan}))
    assert strict('{"x": null}') == {"x": None}


def test_no_cli_module_writes_json_by_hand():
    """Every JSON the CLI prints or writes goes through qcarleman.atomic (dumps_json/write_json):
    no ``json.dumps``/``json.dump`` call in ``qcarleman/cli``."""
    bad = []
    for path in Path(qcarleman.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            f = getattr(node, "func", None)
            if isinstance(f, ast.Attribute) and f.attr in ("dumps", "dump"):
                if isinstance(f.value, ast.Name) and f.value.id == "json":
                    bad.append(f"{path.name}:{node.lineno}")
    assert not bad, bad


def test_run_commands_print_strict_json(tiny_run, tmp_path, capsys):
    cfg, dense, sparse = tiny_run
    assert _run(["train", cfg, "--out", tmp_path / "d", "--quiet", "--json"], capsys)
    p = ["prune", cfg, "--from", dense, "--out", tmp_path / "s", "--quiet", "--json"]
    assert _run(p, capsys)
    assert _run(["sparse-train", cfg, "--out", tmp_path / "s", "--quiet", "--json"], capsys)
    spec = ["spectrum", sparse, "--checkpoints", "0", "--method", "exact", "--curve-steps", "5",
            "--horizon", "3", "--quiet", "--no-plots", "--json",
            "--out", tmp_path / "spec"]  # fmt: skip
    assert _run(spec, capsys)[0]["step"] == 0
    emu = ["emulate", sparse, "--steps", "2", "--f2-iters", "2", "--quiet", "--no-plot", "--json",
           "--out", tmp_path / "emu"]  # fmt: skip
    assert _run(emu, capsys)
    # the file emulate writes is strict JSON too
    assert strict(next((tmp_path / "emu").glob("*.json")).read_text())
    est = ["estimate", "--no-qsharp", "--json", "--run", sparse, "--steps", "3", "--f2-iters", "2",
           "--sparsity-samples", "1"]  # fmt: skip
    assert _run(est, capsys)
    adv = ["advise", sparse, "--step", "0", "--steps", "2", "--json", "--out", tmp_path / "a"]
    assert _run(adv, capsys)
    sc = ["scaling", sparse, "--t-max", "1", "--no-order2", "--qsvt-max-degree", "10", "--json",
          "--out", tmp_path / "sc"]  # fmt: skip
    assert _run(sc, capsys)


def test_light_commands_print_strict_json(capsys):
    assert _run(["configs", "--json"], capsys)
    assert _run(["estimate", "--no-qsharp", "--json", "--active", "10", "--steps", "3"], capsys)
    argv = ["burgers", "--json", "--nx", "8", "--nt", "50", "--max-order", "2"]
    assert _run(argv, capsys)


NON_FINITE = {"a": math.nan, "b": [math.inf, -math.inf, 1.0], "c": {"d": math.nan}, "seconds": 1}


@pytest.mark.parametrize(
    "argv, target",
    [
        (["demo", "--quick", "--quiet", "--json"], "qcarleman.pipeline.stages.run_demo"),
        (["hybrid", "--config", "hybrid-digits-cpu", "--quiet", "--json"],
         "qcarleman.pipeline.stages.run_pipeline"),
        (["paper", "--preset", "tiny", "--quiet", "--json"], "qcarleman.pipeline.paper.run_paper"),
    ],
)  # fmt: skip
def test_pipeline_commands_print_non_finite_as_null(argv, target, tmp_path, capsys, monkeypatch):
    """A summary holding NaN/inf (e.g. an undefined ratio) prints as strict JSON with null."""
    monkeypatch.setattr(target, lambda *a, **k: dict(NON_FINITE))
    got = _run([*argv, "--out", tmp_path / "o"], capsys)
    assert got == {"a": None, "b": [None, None, 1.0], "c": {"d": None}, "seconds": 1}
