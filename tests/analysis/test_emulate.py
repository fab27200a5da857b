"""Emulation report and ``qcarleman emulate`` on a tiny pruned digits run (float64)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qcarleman.analysis.emulate import emulate_checkpoint, relative_errors
from qcarleman.cli.main import main
from qcarleman.report.plots import plot_emulation
from qcarleman.training.config import TrainSettings
from qcarleman.training.data import load_dataset
from qcarleman.training.models import build_model
from qcarleman.training.pruning import prune_global
from qcarleman.training.run import RunDir
from qcarleman.training.trainer import Trainer

SPEC = {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [4], "activation": "tanh"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Sparse SGD (momentum, weight decay) from a 90%-pruned tiny MLP; a checkpoint per step."""
    out = tmp_path_factory.mktemp("run")
    data = load_dataset({"name": "digits"})
    torch.manual_seed(0)
    model = build_model(SPEC)
    mask = prune_global(model, 0.9, include_classifier=True)
    settings = TrainSettings(
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-3,
        batch_size=32,
        epochs=1,
        milestones=[],
        every_step_first=8,
        max_steps=7,
    )
    meta = {"model": SPEC, "phase": "sparse"}
    tr = Trainer(model, data, settings, out, mask=mask, seed=0, meta=meta, progress=False)
    tr.save()
    tr.fit()
    return out


def test_report_orders_and_true_gd_is_the_trainer(run_dir):
    T = 4
    rep = emulate_checkpoint(run_dir, 2, T, order=3, threshold=1e-3)
    assert rep["steps"] == T and rep["order"] == 3 and rep["orders"] == [1, 2, 3]
    assert rep["momentum"] == 0.9 and rep["lr"] == 0.05 and rep["sgd"]
    for key in ("rel_error_vs_gd", "rel_error_vs_taylor"):
        assert set(rep[key]) == {"1", "2", "3"}
        assert all(len(v) == T + 1 and v[0] == 0.0 for v in rep[key].values())
    # Against the exact Taylor iteration the error falls with the order N.
    e = [rep["rel_error_vs_taylor"][N][T] for N in ("1", "2", "3")]
    assert e[0] > e[1] > e[2] > 0, e
    assert rep["ranks"] == [1, 3, 5, 7, 9]  # z0 = (0, v0) ≠ 0: rank 2t + 1
    # "True GD" is what the trainer did from that checkpoint: same batches, η, μ (with the saved
    # momentum buffer), λ and mask (the run is float32, the emulation float64).
    run = RunDir(run_dir)
    ck = run.load(2)
    from qcarleman.autodiff.active import ActiveParams

    active = ActiveParams(ck.model, ck.mask)
    theta0 = active.flatten(ck.model).double()
    for t in range(1, T + 1):
        moved = float((active.flatten(run.load(2 + t).model).double() - theta0).norm())
        assert abs(rep["update_norm_gd"][t] - moved) < 1e-4 * moved
    # The threshold crossing is the first step above it.
    for N, errs in rep["rel_error_vs_gd"].items():
        cross = rep["first_above_threshold_vs_gd"][N]
        above = [t for t, v in enumerate(errs) if v > 1e-3]
        assert cross == (above[0] if above else None)
    assert rep["f0_norm"] > 0 and rep["F2_norm"] > 0 and rep["rho"] > 0
    assert rep["R_d"] is None or rep["R_d"] > 0
    assert any("lower bound" in n for n in rep["notes"])


def test_cached_default_equals_functional(run_dir):
    """emulate_checkpoint runs cached-graph products by default; the functional (vmapped) mode
    gives the same report to float rounding (float64), and the report says which ran."""
    kw = {"order": 2, "f2_iters": 3, "keep_trajectories": True}
    cached = emulate_checkpoint(run_dir, 1, 3, **kw)
    functional = emulate_checkpoint(run_dir, 1, 3, hvp_mode="functional", chunk_size=2, **kw)
    assert cached["hvp_mode"] == "cached" and functional["hvp_mode"] == "functional"
    for key in ("gd", "taylor", "1", "2"):
        a, b = cached["trajectories"][key], functional["trajectories"][key]
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max(), key
    assert cached["ranks"] == functional["ranks"] == [1, 3, 5, 7]
    assert abs(cached["F2_norm"] - functional["F2_norm"]) <= 1e-10 * functional["F2_norm"]


def test_relative_errors_and_plot(tmp_path):
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    emu = np.array([[0.0, 0.0], [1.1, 0.0], [0.0, 2.0]])
    assert relative_errors(emu, ref, 2) == pytest.approx([0.0, 0.1, 0.0])
    assert relative_errors(np.ones((1, 2)), np.zeros((1, 2)), 2) == [np.inf]
    rep = {
        "steps": 2,
        "rel_error_vs_gd": {"1": [0, 0.1, 0.2]},
        "rel_error_vs_taylor": {"1": [0, 0.01, 0]},
        "taylor_vs_gd": [0, 0.05, 0.1],
        "threshold": 0.1,
        "lr": 0.1,
        "rho": 0.9,
        "R_d": None,
    }
    path = plot_emulation(rep, tmp_path / "sub" / "e.png")
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


def test_cli_json_and_errors(run_dir, tmp_path, capsys):
    out = tmp_path / "emu"
    code = main(
        [
            "emulate",
            str(run_dir),
            "--checkpoint",
            "1",
            "--steps",
            "3",
            "--order",
            "2",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    rec = json.loads(captured.out)  # stdout is only the JSON …
    assert "order-2 low-rank emulation" in captured.err  # … and progress still goes to stderr
    for key in (
        "steps",
        "order",
        "rel_error_vs_gd",
        "rel_error_vs_taylor",
        "f0_norm",
        "F2_norm",
        "R_d",
    ):
        assert key in rec
    assert rec["steps"] == 3 and rec["order"] == 2 and len(rec["rel_error_vs_gd"]["2"]) == 4
    saved = json.loads((out / "emulate_step_00000001.json").read_text())
    assert saved["f0_norm"] == rec["f0_norm"]
    assert (out / "emulate_step_00000001.png").is_file()
    code = main(
        [
            "emulate",
            str(run_dir),
            "--checkpoint",
            "1",
            "--steps",
            "2",
            "--order",
            "1",
            "--no-plot",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "N = 1 vs true GD" in text and "ρ =" in text
    for argv, msg in [
        (["--steps", "0"], "argument --steps"),
        (["--lr", "-1"], "argument --lr"),
        (["--checkpoint", "99"], "no checkpoint at step 99"),
        (["--order", "0"], "argument --order"),
    ]:
        assert main(["emulate", str(run_dir), "--quiet", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert main(["emulate", str(tmp_path), "--quiet"]) == 2


def _no_seconds(x):
    if isinstance(x, dict):
        return {k: _no_seconds(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_no_seconds(v) for v in x]
    return x


def test_kill_and_rerun_equals_the_uninterrupted_run(tiny_run, tmp_path, monkeypatch, capsys):
    """Ctrl-C inside the order-2 emulation (a temp file left in the output folder): exit 130
    with a one-line message that nothing was written; the rerun removes the temp file and its
    outputs (--json, the JSON file) equal an uninterrupted run's."""
    import qcarleman.analysis.emulate as emulate

    argv = ["emulate", str(tiny_run[2]), "--checkpoint", "1", "--steps", "2", "--f2-iters", "2",
            "--quiet", "--no-plot", "--json", "--out"]  # fmt: skip
    strict = lambda s: json.loads(s, parse_constant=lambda c: pytest.fail(f"bare {c}"))  # noqa: E731
    assert main([*argv, str(tmp_path / "ref")]) == 0
    ref = strict(capsys.readouterr().out)

    out, real = tmp_path / "cut", emulate.emulate_order2

    def killed(*a, **k):
        out.mkdir(exist_ok=True)
        (out / ".emulate_step_00000001.json.k1ll.tmp").write_text("{")
        raise KeyboardInterrupt

    monkeypatch.setattr(emulate, "emulate_order2", killed)
    assert main([*argv, str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing of it was written" in err[0], err
    assert not list(out.glob("*.json"))
    monkeypatch.setattr(emulate, "emulate_order2", real)
    assert main([*argv, str(out)]) == 0
    got = strict(capsys.readouterr().out)
    assert got.pop("files") == [str(out / p.name) for p in map(Path, ref.pop("files"))]
    assert _no_seconds(got) == _no_seconds(ref)
    name = "emulate_step_00000001.json"
    saved = [json.loads((d / name).read_text()) for d in (tmp_path / "ref", out)]
    assert saved[0].pop("run_dir") == saved[1].pop("run_dir")
    assert _no_seconds(saved[0]) == _no_seconds(saved[1])
    names = lambda d: sorted(p.name for p in d.iterdir())  # noqa: E731
    assert names(out) == names(tmp_path / "ref")
    assert not list(out.glob("*.tmp"))
