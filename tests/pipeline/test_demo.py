"""The pipeline behind `qcarleman demo` / `qcarleman hybrid`: summary keys, honest statements,
resume, config files; the quick demo itself is marked slow (about a minute on a loaded box)."""

from __future__ import annotations

import json

import pytest

from qcarleman.cli.main import main
from qcarleman.errors import UsageError
from qcarleman.hybrid.settings import HybridSettings
from qcarleman.pipeline.stages import demo_config, load_hybrid_config

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


@pytest.fixture(scope="module")
def tiny(tiny_pipeline_run):
    return tiny_pipeline_run



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


def test_rerun_resumes_without_retraining(tiny, tiny_pipeline_factory):
    out, s = tiny
    stamp = (out / "hybrid" / "state.pt").stat().st_mtime_ns
    again = tiny_pipeline_factory(out, report=None)
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


def _no_clock(x):
    """``x`` without its wall-clock entries (``seconds``, ``timings_s``) at any depth."""
    if isinstance(x, dict):
        return {k: _no_clock(v) for k, v in x.items() if k not in ("seconds", "timings_s")}
    if isinstance(x, list):
        return [_no_clock(v) for v in x]
    return x


def _same_tensors(a, b, where):
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same_tensors(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _same_outputs(ref, got):
    """Every JSON/JSONL file (wall-clock fields aside) and every checkpoint/state of two
    pipeline folders are equal (checkpoints: weights, masks, optimizer, RNG state, meta)."""
    import torch

    from qcarleman.atomic import read_jsonl

    names = lambda d, pat: sorted(p.relative_to(d) for p in d.rglob(pat))  # noqa: E731
    skip = {"summary.json", "report.html"}  # the summary is compared beside; no report here
    for rel in names(ref, "*.json"):
        if rel.parts[0] != "figures" and rel.name not in skip:
            a, b = (json.loads((d / rel).read_text()) for d in (ref, got))
            assert _no_clock(a) == _no_clock(b), rel
    assert names(ref, "*.jsonl") == names(got, "*.jsonl")
    for rel in names(ref, "*.jsonl"):
        assert _no_clock(read_jsonl(ref / rel)) == _no_clock(read_jsonl(got / rel)), rel
    assert names(ref, "*.pt") == names(got, "*.pt")
    for rel in names(ref, "*.pt"):
        a, b = (torch.load(d / rel, weights_only=True) for d in (ref, got))
        _same_tensors(a, b, str(rel))


def test_kill_and_resume_equals_the_uninterrupted_run(tiny, tiny_pipeline_factory, tmp_path,
                                                      monkeypatch):  # fmt: skip
    """A kill in the middle of the hybrid stage (KeyboardInterrupt in its first classical
    segment; a temp file in the run folder, the figures folder and the hybrid run, a torn JSONL
    line), a move of the folder, and a rerun: every output equals the uninterrupted run's
    (summary.json, including the dense run's final epoch, every JSON/JSONL record, checkpoints
    with their RNG state), and no temp file is left."""
    import shutil

    from qcarleman.hybrid.trainer import HybridTrainer

    ref, ref_summary = tiny
    real, k = HybridTrainer._classical_segment, tmp_path / "k"

    def killed(self, K):
        if self.out == k / "hybrid":  # segment 1 of the hybrid run: segment 0 is saved
            assert self.segment == 1
            for where in (k, k / "figures", k / "hybrid"):
                where.mkdir(exist_ok=True)
                (where / ".x.png.k1ll.tmp").write_bytes(b"half")
            with open(k / "hybrid" / "segments.jsonl", "a") as f:
                f.write('{"segment": 1, "ki')
            raise KeyboardInterrupt
        return real(self, K)

    monkeypatch.setattr(HybridTrainer, "_classical_segment", killed)
    with pytest.raises(KeyboardInterrupt):
        tiny_pipeline_factory(k, report=None)
    monkeypatch.setattr(HybridTrainer, "_classical_segment", real)
    shutil.move(k, tmp_path / "moved")
    got = tiny_pipeline_factory(tmp_path / "moved", report=None)

    assert _no_clock(got) == _no_clock(ref_summary)
    assert got["dense_final_epoch"]["test_acc"] == ref_summary["dense_final_epoch"]["test_acc"]
    _same_outputs(ref, tmp_path / "moved")
    assert not list((tmp_path / "moved").rglob("*.tmp"))
