"""The pipeline behind `qcarleman demo` / `qcarleman hybrid`: summary keys, honest statements,
resume, config files; the quick demo itself is marked slow (about a minute on a loaded box)."""

from __future__ import annotations

import json

import pytest

from qcarleman.cli.main import main
from qcarleman.errors import UsageError
from qcarleman.hybrid.settings import HybridSettings
from qcarleman.pipeline.stages import demo_config, load_hybrid_config, run_pipeline
from qcarleman.report import build_report

KEYS = (
    "dense_accuracy",
    "pruned_accuracy",
    "classical_sparse_accuracy",
    "hybrid_accuracy",
    "window",
    "regime",
    "shots_total",
    "emulation_error_max",
    "estimate",
)


def tiny_pipeline(out, report=build_report):
    """A seconds-scale pipeline: a tiny MLP on a digits subset."""
    cfg = {
        "seed": 0,
        "threads": 1,
        "data": {"name": "digits", "subset": 300},
        "model": {"name": "mlp", "hidden": [8], "activation": "tanh"},
        "train": {"lr": 0.1, "momentum": 0.9, "batch_size": 32, "epochs": 2, "milestones": []},
        "prune": {"amount": 0.9},
        "sparse": {"lr": 0.1, "milestones": []},
    }
    hyb = HybridSettings(backend="carleman", segment_steps=3, total_steps=8, shots=10_000)
    opts = {
        "spectrum_steps": 2,
        "spectrum_probes": 2,
        "spectrum_iters": 10,
        "shot_budgets": [100, 10_000],
        "emulation_backends": ["linear", "carleman"],
    }
    return run_pipeline(cfg, hyb, out, opts, progress=False, report=report, title="tiny")


def shared_tiny(tmp_path_factory):
    """The tiny pipeline in one folder per test session (test_report reuses it)."""
    out = tmp_path_factory.getbasetemp() / "tiny-pipeline"
    if (out / "report.html").is_file():
        return out, json.loads((out / "summary.json").read_text())
    return out, tiny_pipeline(out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return shared_tiny(tmp_path_factory)


def test_summary_keys_and_numbers(tiny):
    out, s = tiny
    saved = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in s.items() if k != "seconds"} == {
        k: v for k, v in saved.items() if k != "seconds"
    }
    for k in KEYS:
        assert k in s, k
    assert 0 <= s["pruned_accuracy"] <= 1 and 0 <= s["hybrid_accuracy"] <= 1
    assert s["regime"] in ("fully dissipative", "almost dissipative", "non-dissipative")
    assert str(s["window"]) in s["window_statement"]
    assert s["accuracy_gap_points"] == pytest.approx(
        100 * (s["hybrid_accuracy"] - s["classical_sparse_accuracy"])
    )
    assert s["shots_total"] > 0 and s["estimate"]["t_count"] > 0
    e = s["estimate"]  # a consistent bill: κ with its kind, the FLOP rate, shots priced for ε
    assert {e["kappa"]["kind"], e["kappa_eff"]["kind"]} <= {"exact", "measured", "bound", "assumed"}
    assert e["flop_rate"] > 0 and e["classical_seconds"] == e["classical_flops"] / e["flop_rate"]
    assert e["shots"] == e["shots_for_epsilon"] and e["shots_given"] == s["shots_per_segment"]
    assert e["epsilon_at_shots_given"]["kind"] == "bound"
    assert (
        e["classical_flops_dense"] >= e["classical_flops"]
        and e["classical_flops_kind"] == "measured"
    )
    assert [d["shots"] for d in s["degradation"]] == [100, 10_000]
    errs = {e["backend"]: e["errors"] for e in s["emulation"]}
    assert set(errs) == {"linear", "carleman"} and all(len(v) == 3 for v in errs.values())
    # the first emulated step is exact up to float32 rounding of the true SGD reference
    assert all(v[0] < 1e-4 for v in errs.values())


def test_rerun_resumes_without_retraining(tiny):
    out, s = tiny
    stamp = (out / "hybrid" / "state.pt").stat().st_mtime_ns
    again = tiny_pipeline(out, report=None)
    assert (out / "hybrid" / "state.pt").stat().st_mtime_ns == stamp
    for k in ("hybrid_accuracy", "classical_sparse_accuracy", "window", "shots_total"):
        assert again[k] == s[k]


def test_no_window_is_stated_honestly():
    from qcarleman.pipeline.stages import window_statement

    first = {"E": [1.0, 1.5, 2.0], "lambda_min": -3.0, "rho": 1.5, "regime": "non-dissipative"}
    text = window_statement(first, 0, True)
    assert text.startswith("no dissipative window") and "E(1) = 1.5" in text


def test_hybrid_config_files(tmp_path):
    for name in ("hybrid-digits-cpu", "hybrid-paper-gpu", "hybrid_digits_cpu", "mnist-cnn"):
        from qcarleman.training.config import example_config, load_config

        cfg, hyb, opts = load_hybrid_config(example_config(name))
        load_config(cfg)
        assert isinstance(hyb, HybridSettings)
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "mlp"\n[hybrid]\nbackend = "qpu"\n')
    with pytest.raises(UsageError, match="hybrid.backend"):
        load_hybrid_config(bad)
    bad.write_text('[model]\nname = "mlp"\n[pipeline]\nfoo = 1\n')
    with pytest.raises(UsageError, match="pipeline.foo"):
        load_hybrid_config(bad)
    assert main(["hybrid", "--config", str(tmp_path / "missing.toml"), "--out", "x"]) == 2


def test_demo_config_quick_is_smaller():
    cfg_q, h_q, o_q = demo_config(quick=True)
    cfg, h, o = demo_config()
    assert cfg_q["model"]["width"] < cfg["model"]["width"]
    assert h_q.total_steps < h.total_steps


@pytest.mark.slow
def test_quick_demo_cli(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "report.html" in text and "window" in text
    s = json.loads((tmp_path / "summary.json").read_text())
    for k in KEYS:
        assert k in s
    assert (tmp_path / "report.html").is_file()
    assert s["seconds"] < 120
