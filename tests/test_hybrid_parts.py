"""The parts of the hybrid loop and the pipeline that need no training: the segment schedule,
records, the output store, the download stage, pipeline options and the output layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qcarleman.atomic import read_json, read_jsonl, write_json, write_jsonl
from qcarleman.errors import UsageError
from qcarleman.hybrid.records import SegmentRecord
from qcarleman.hybrid.schedule import clip_segment, constant_lr_steps, quantum_steps_left
from qcarleman.hybrid.settings import HybridSettings
from qcarleman.hybrid.stages import download
from qcarleman.hybrid.store import HybridStore, load_records
from qcarleman.pipeline.layout import RunLayout
from qcarleman.pipeline.options import PipelineOptions
from qcarleman.pipeline.stages import demo_config, quantum_phase
from qcarleman.training.config import lr_at_step, settings_from_meta


def step_lr(step: int) -> float:
    """η = 0.1 before step 10, 0.01 from there."""
    return 0.1 if step < 10 else 0.01


def test_schedule_never_crosses_an_lr_change_or_the_quantum_phase():
    assert constant_lr_steps(0, 5, step_lr) == 5
    assert constant_lr_steps(7, 5, step_lr) == 3
    assert constant_lr_steps(10, 5, step_lr) == 5
    assert quantum_steps_left(3, 0, 0) is None and quantum_steps_left(3, 0, 8) == 5
    common = dict(start_step=0, end_step=20, lr_at=step_lr)
    assert clip_segment(5, step=0, quantum_steps=0, **common) == (5, False)
    assert clip_segment(5, step=5, quantum_steps=7, **common) == (2, False)  # phase end at 7
    assert clip_segment(5, step=7, quantum_steps=7, **common) == (3, True)  # lr change at 10
    assert clip_segment(5, step=18, quantum_steps=0, **common) == (2, False)  # run end at 20
    # segments tile the run exactly
    step, lengths = 0, []
    while step < 20:
        K, _ = clip_segment(4, step=step, quantum_steps=6, **common)
        lengths.append(K)
        step += K
    assert lengths == [4, 2, 4, 4, 4, 2]  # phase end at 6, lr change at 10, run end at 20


def test_lr_at_step_is_the_training_schedule():
    meta = {"lr": 0.1, "milestones": [2], "gamma": 0.5, "steps_per_epoch": 10, "batch_size": 8}
    assert [lr_at_step(meta, s) for s in (0, 19, 20, 35)] == [0.1, 0.1, 0.05, 0.05]
    ts = settings_from_meta(meta)
    assert ts.lr_at(2) == lr_at_step(meta, 20) and ts.batch_size == 8
    with pytest.raises(UsageError, match="learning rate"):
        lr_at_step({"steps_per_epoch": 10}, 0)


def test_segment_record_is_keyword_only():
    with pytest.raises(TypeError):
        SegmentRecord(0, "classical", 0, 1, 0.1)  # type: ignore[misc]
    rec = SegmentRecord(segment=0, kind="classical", start=0, steps=1, lr=0.1)
    data = rec.to_json()
    assert data["test_acc"] is None and data["kappa"] is None and data["notes"] == []


def test_store_claims_its_directory_and_rewrites_records_atomically(tmp_path):
    store = HybridStore(tmp_path / "h")
    store.claim({"settings": {"shots": 1}, "n": 3})
    store.claim({"settings": {"shots": 1}, "n": 3})  # same run: fine
    with pytest.raises(UsageError, match="other settings"):
        store.claim({"settings": {"shots": 2}, "n": 3})
    recs = [{"segment": -1, "kind": "start"}, {"segment": 0, "kind": "quantum", "x": 1.5}]
    store.write_records(recs)
    assert load_records(tmp_path / "h") == recs == store.records()
    assert store.load_state() is None
    assert not list((tmp_path / "h").glob(".*.tmp"))


def test_json_readers_beside_the_writers(tmp_path):
    assert read_json(tmp_path / "none.json") is None and read_jsonl(tmp_path / "none") == []
    write_json(tmp_path / "a.json", {"x": np.float64(2.0), "y": float("nan")})
    assert read_json(tmp_path / "a.json") == {"x": 2.0, "y": None}
    write_jsonl(tmp_path / "b.jsonl", [{"a": 1}, {"b": [1, 2]}])
    (tmp_path / "b.jsonl").write_text((tmp_path / "b.jsonl").read_text() + "\n\n")
    assert read_jsonl(tmp_path / "b.jsonl") == [{"a": 1}, {"b": [1, 2]}]


def test_download_stage_against_the_exact_state():
    rng = np.random.default_rng(1)
    x, v = torch.from_numpy(rng.standard_normal(50)), torch.from_numpy(rng.standard_normal(50))
    x[::7] = 0.0  # exact zeros stay zeros
    exact = download([x, v], 0.3, HybridSettings(shots=0), seed=5)
    assert exact.mode == "exact" and exact.shots_used == 0 and exact.error == 0.0
    errs = []
    for M in (1_000, 100_000):
        dl = download([x, v], 0.3, HybridSettings(shots=M, readout="shots"), seed=5)
        assert dl.mode == "shots" and dl.shots_used == 2 * 3 * M  # magnitudes, signs, norm
        np.testing.assert_array_equal(dl.z, np.concatenate([x.numpy(), v.numpy()]))
        assert np.all(dl.z_hat[:50][::7] == 0)
        errs.append(dl.error)
    assert errs[1] < errs[0] < 1
    s = HybridSettings(shots=1_000, readout="shots")
    np.testing.assert_array_equal(
        download([x, v], 0.3, s, seed=5).z_hat, download([x, v], 0.3, s, seed=5).z_hat
    )
    noise = download([x, v], 0.3, HybridSettings(shots=100_000, readout="noise-model"), seed=5)
    assert noise.mode == "noise-model" and noise.error < 0.1


def test_pipeline_options_typed_and_strict():
    opt = PipelineOptions.from_dict({"shot_budgets": [10, 20], "horizon": 5})
    assert opt.shot_budgets == (10, 20) and opt.horizon == 5
    assert opt.spectrum_steps == PipelineOptions().spectrum_steps
    with pytest.raises(UsageError, match="pipeline.foo"):
        PipelineOptions.from_dict({"foo": 1})
    with pytest.raises(AttributeError):
        opt.horizon = 3  # type: ignore[misc]
    assert json.loads(json.dumps(opt.to_dict()))["shot_budgets"] == [10, 20]
    _, _, quick = demo_config(quick=True)
    assert len(quick.shot_budgets) < len(PipelineOptions().shot_budgets)


def test_quantum_phase_follows_the_window():
    h = HybridSettings(segment_steps=5, total_steps=40)
    spec = {"window": 12, "window_closed": True, "rho": 0.5}
    assert quantum_phase(h, spec).steps == 12
    assert quantum_phase(h, spec).settings.rho == 0.5
    assert quantum_phase(h, {**spec, "window": 0}).steps == 5
    assert quantum_phase(h, {**spec, "window_closed": False}).steps == 40
    fixed = quantum_phase(HybridSettings(quantum_steps=3, rho=2.0), spec)
    assert (fixed.steps, fixed.reason, fixed.settings.rho) == (3, "fixed by the config", 2.0)


def test_report_reads_through_the_layout(tmp_path):
    from qcarleman.report.figures import load_run

    lay = RunLayout(tmp_path)
    write_json(lay.shots, [{"shots": 100}])
    write_json(lay.summary, {"title": "t"})
    write_jsonl(lay.shots_run(100) / "segments.jsonl", [{"segment": -1}])
    HybridStore(lay.hybrid).write_records([{"segment": 0}])
    run = load_run(tmp_path)
    assert run["summary"] == {"title": "t"} and run["sweep"] == {100: [{"segment": -1}]}
    assert run["hybrid"] == [{"segment": 0}] and run["classical"] == [] and run["spectra"] == []
    assert lay.shots_run(100) == tmp_path / "shots" / "M_100"
