"""``qcarleman hybrid --from RUN`` (:mod:`qcarleman.hybrid.from_run`): the same result as the
config-driven run from the same checkpoint, the run's mask, parameters, data and schedule taken
over exactly, and one-line errors (exit 2) for a missing, dense or step-less source."""

from __future__ import annotations

import json

import pytest
import torch

from qcarleman.cli.main import main
from qcarleman.hybrid.from_run import COMPARISON, hybrid_from_run
from qcarleman.hybrid.settings import HybridSettings
from qcarleman.hybrid.store import load_records
from qcarleman.training.checkpoint import load_checkpoint
from qcarleman.training.run import RunDir
from qcarleman.training.trainer import evaluate


def _without_timing(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_from_run_equals_the_config_driven_run(tiny_pipeline_run, tmp_path):
    """``hybrid --config`` trains, prunes and runs the hybrid loop from step 0 of OUT/sparse with
    the settings in summary.json; ``--from OUT/sparse`` with those settings gives the same hybrid
    and classical records, record for record (timings aside)."""
    out, summary = tiny_pipeline_run
    settings = HybridSettings(**summary["hybrid_settings"])
    res = hybrid_from_run(out / "sparse", tmp_path / "o", settings, progress=False)
    for part in ("hybrid", "classical"):
        mine, theirs = load_records(tmp_path / "o" / part), load_records(out / part)
        assert len(mine) > 1 and _without_timing(mine) == _without_timing(theirs), part
    assert res["hybrid_accuracy"] == summary["hybrid_accuracy"]
    assert res["classical_sparse_accuracy"] == summary["classical_sparse_accuracy"]
    assert res["n_active"] == summary["n_active"] and res["parameters"] == summary["parameters"]
    assert json.loads((tmp_path / "o" / COMPARISON).read_text()) == res


def test_cli_from_a_later_step_keeps_mask_parameters_and_schedule(tiny_run, tmp_path, capsys):
    """From step 1 of the tiny sparse run: the start evaluation is the checkpoint's, the mask is
    the run's, pruned weights stay 0, and the classical baseline's 2 steps reproduce the run's
    own checkpoint 3 (same data order, schedule and optimizer state)."""
    _, _, sparse = tiny_run
    out = tmp_path / "o"
    argv = ["hybrid", "--from", str(sparse), "--step", "1", "--out", str(out), "--quiet"]
    rc = main([*argv, "--total-steps", "2", "--segment-steps", "2", "--set", "order=1", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["step"] == 1 and s["hybrid"]["quantum_segments"] == 1
    assert s["hybrid_settings"]["order"] == 1 and s["hybrid_settings"]["total_steps"] == 2
    run = RunDir(sparse)
    ck = run.load(1)
    loss, acc = evaluate(ck.model, run.dataset(), "test")
    start = load_records(out / "hybrid")[0]
    assert start["kind"] == "start" and (start["test_loss"], start["test_acc"]) == (loss, acc)
    header = json.loads((out / "hybrid" / "hybrid.json").read_text())
    assert header["source_step"] == 1 and header["n"] == sum(int(m.sum()) for m in ck.mask.values())
    for part in ("hybrid", "classical"):
        state = load_checkpoint(out / part / "state.pt")
        for name, m in ck.mask.items():
            assert torch.equal(state["mask"][name], m), (part, name)
            assert not state["model"][name][~m].any(), (part, name)  # pruned entries stay 0
    base = load_checkpoint(out / "classical" / "state.pt")
    ref = run.load(3)
    for name, p in ref.model.state_dict().items():
        assert torch.equal(base["model"][name], p), name
    q = [r for r in load_records(out / "hybrid") if r["kind"] == "quantum"]
    assert q[0]["start"] == 1 and q[0]["emulation_error"] < 0.05


def test_errors_are_one_line_exit_2(tiny_run, tmp_path, capsys):
    cfg, dense, sparse = tiny_run
    out = str(tmp_path / "o")
    cases = {
        "not found": ["--from", str(tmp_path / "nope"), "--out", out],
        "not a training run": ["--from", str(tmp_path), "--out", out],
        "dense run, not a sparse one": ["--from", str(dense), "--out", out],
        "no checkpoint at step 9": ["--from", str(sparse), "--step", "9", "--out", out],
        "give one of them": ["--from", str(sparse), "--config", str(cfg), "--out", out],
        "--out is the source run": ["--from", str(sparse), "--out", str(sparse)],
        "give --config CONFIG": ["--out", out],
        "it needs --from": ["--config", str(cfg), "--step", "1", "--out", out],
        "unknown key hybrid.nope": ["--from", str(sparse), "--set", "nope=1", "--out", out],
        "hybrid.shots": ["--from", str(sparse), "--set", "shots=-1", "--out", out],
        "not KEY=VALUE": ["--from", str(sparse), "--set", "order", "--out", out],
    }
    for needle, argv in cases.items():
        assert main(["hybrid", *argv, "--quiet"]) == 2, needle
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err, (needle, err)
    assert not (tmp_path / "o").exists()


def test_api_refuses_out_equal_to_source(tiny_run):
    from qcarleman.errors import UsageError

    _, _, sparse = tiny_run
    with pytest.raises(UsageError, match="own folder"):
        hybrid_from_run(sparse, sparse, HybridSettings(total_steps=1), progress=False)
