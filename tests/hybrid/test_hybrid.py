"""HybridTrainer (ALGORITHM.md §8): bookkeeping, exactness against classical SGD, determinism,
resume, and the emulated Carleman segment against the dense Carleman engine (float64)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from qcarleman import QuadraticMap
from qcarleman.carleman import CarlemanSystem
from qcarleman.carleman.history import success_probability
from qcarleman.errors import UsageError
from qcarleman.hybrid.settings import HybridSettings
from qcarleman.hybrid.stages import carleman_trajectory
from qcarleman.hybrid.store import load_records
from qcarleman.hybrid.trainer import HybridTrainer, run_baseline
from qcarleman.training.run import RunDir


@pytest.fixture(scope="module")
def run_mom(tmp_path_factory, sparse_run):
    return sparse_run(tmp_path_factory.mktemp("mom"), [16], 0.9)


@pytest.fixture(scope="module")
def run_tiny(tmp_path_factory, sparse_run):
    return sparse_run(tmp_path_factory.mktemp("tiny"), [2], 0.0)


def _params(h: HybridTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in h.trainer.model.named_parameters()}


def test_exact_download_true_gd_equals_classical(run_mom, tmp_path):
    """true-gd emulation + exact download + carried momentum reproduces classical SGD exactly."""
    s = HybridSettings(backend="true-gd", segment_steps=3, total_steps=7, shots=0)
    h = HybridTrainer(run_mom, tmp_path / "h", s, progress=False)
    h.run()
    b = HybridTrainer(run_mom, tmp_path / "c", replace(s, backend="classical"), progress=False)
    b.run()
    for name, p in _params(h).items():
        assert torch.equal(p, _params(b)[name]), name
    recs = load_records(tmp_path / "h")
    assert [r["kind"] for r in recs] == ["start", "quantum", "quantum", "quantum"]
    assert [r["steps"] for r in recs[1:]] == [3, 3, 1]
    assert all(r["total_error"] == 0 and r["emulation_error"] == 0 for r in recs[1:])
    hb = load_records(tmp_path / "c")
    assert [r["test_acc"] for r in recs] == [r["test_acc"] for r in hb]


def test_momentum_not_carried_would_differ(run_mom, tmp_path):
    """Dropping the downloaded velocity changes the result: the buffer really is carried."""
    s = HybridSettings(backend="true-gd", segment_steps=3, total_steps=6, shots=0)
    h = HybridTrainer(run_mom, tmp_path / "h", s, progress=False)
    h.run()
    ref = _params(h)
    h2 = HybridTrainer(run_mom, tmp_path / "h2", replace(s, total_steps=3), progress=False)
    h2.run()
    h2.trainer.optimizer.state.clear()  # forget the momentum after segment 0
    for x, y in h2.batches(3, 3):
        h2.trainer.train_step(x, y, h2.lr_at(h2.trainer.step))
        h2.trainer.step += 1
    assert any(not torch.equal(ref[k], v) for k, v in _params(h2).items())


def test_mask_kept_and_noise_bookkeeping(run_mom, tmp_path):
    s = HybridSettings(backend="linear", segment_steps=3, total_steps=8, quantum_steps=6,
                       shots=2000)  # fmt: skip
    h = HybridTrainer(run_mom, tmp_path / "h", s, progress=False)
    summary = h.run()
    mask = h.trainer.mask
    bufs = h.momentum_buffers()
    for name, p in h.trainer.model.named_parameters():
        assert torch.all(p[~mask[name]] == 0), name
        assert torch.all(bufs[name][~mask[name]] == 0), name
    recs = load_records(tmp_path / "h")
    kinds = [r["kind"] for r in recs[1:]]
    assert kinds == ["quantum", "quantum", "classical"]  # classical once the window is spent
    q = [r for r in recs if r["kind"] == "quantum"]
    # two blocks (x, v), each: magnitudes + signs + norm shots
    assert all(r["shots_used"] == 2 * 3 * 2000 and r["readout"] == "shots" for r in q)
    assert all(0 < r["readout_error"] < 1 and 0 < r["success_probability"] <= 1 for r in q)
    assert all(r["kappa"] >= 1 and r["estimate"]["t_count"] > 0 for r in q)
    assert summary["shots_total"] == sum(r["shots_used"] for r in q)
    assert summary["quantum_steps"] == 6 and summary["steps"] == 8


def test_deterministic_with_seed(run_mom, tmp_path):
    s = HybridSettings(backend="true-gd", segment_steps=2, total_steps=4, shots=500, seed=3)
    outs = []
    for d in ("a", "b"):
        HybridTrainer(run_mom, tmp_path / d, s, progress=False).run()
        outs.append(
            [{k: v for k, v in r.items() if k != "seconds"} for r in load_records(tmp_path / d)]
        )
    assert outs[0] == outs[1]
    HybridTrainer(run_mom, tmp_path / "c", replace(s, seed=4), progress=False).run()
    other = load_records(tmp_path / "c")
    assert other[1]["readout_error"] != outs[0][1]["readout_error"]


class _Stop(Exception):
    pass


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _same_state(a, b):
    """Two hybrid ``state.pt`` files hold the same model, mask, optimizer state and counters."""
    from qcarleman.training.checkpoint import load_checkpoint

    sa, sb = load_checkpoint(a / "state.pt"), load_checkpoint(b / "state.pt")
    assert sa.keys() == sb.keys()
    for key in ("model", "mask"):
        assert sa[key].keys() == sb[key].keys()
        assert all(torch.equal(sa[key][k], sb[key][k]) for k in sa[key]), key
    oa, ob = sa["optimizer"], sb["optimizer"]
    assert oa["param_groups"] == ob["param_groups"]
    for i, st in oa["state"].items():
        assert all(torch.equal(v, ob["state"][i][k]) for k, v in st.items())
    assert [sa[k] == sb[k] for k in ("step", "segment", "quantum_open")] == [True] * 3


def test_interrupted_run_resumes_identically(run_mom, tmp_path, monkeypatch):
    """A kill in the middle of a segment (a classical step raising KeyboardInterrupt, leaving a
    temp file and a torn JSONL line), a move of the folder holding the source and the hybrid run,
    and a rerun: records, parameters, state.pt and hybrid.json equal the uninterrupted run's."""
    import shutil

    from qcarleman.training.trainer import Trainer

    s = HybridSettings(backend="linear", segment_steps=2, total_steps=4, shots=1000)
    full = HybridTrainer(run_mom, tmp_path / "full", s, progress=False)
    full.run()

    shutil.copytree(run_mom, tmp_path / "k" / "src")
    cut = tmp_path / "k" / "out"
    real, calls = Trainer.train_step, []

    def step(self, x, y, lr):  # the 3rd step is inside segment 1 (segment 0 is saved)
        calls.append(1)
        if len(calls) == 3:
            (cut / ".state.pt.k1ll.tmp").write_bytes(b"half a checkpoint")
            with open(cut / "segments.jsonl", "a") as f:
                f.write(json.dumps({"segment": 1, "kind": "quantum"}) + "\n" + '{"segm')
            raise KeyboardInterrupt
        return real(self, x, y, lr)

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(KeyboardInterrupt):
        HybridTrainer(tmp_path / "k" / "src", cut, s, progress=False).run()
    monkeypatch.setattr(Trainer, "train_step", real)
    # the run folder is moved between the kill and the rerun (hybrid.json holds relative paths)
    shutil.move(tmp_path / "k", tmp_path / "moved")
    cut = tmp_path / "moved" / "out"
    resumed = HybridTrainer(tmp_path / "moved" / "src", cut, s, progress=False)
    assert resumed.segment == 1 and resumed.step == 2
    assert not list(cut.glob("*.tmp"))  # the killed writer's temp file is gone on start
    resumed.run()
    for name, p in _params(full).items():
        assert torch.equal(p, _params(resumed)[name]), name
    assert _strip(load_records(tmp_path / "full")) == _strip(load_records(cut))
    _same_state(tmp_path / "full", cut)
    h_full = json.loads((tmp_path / "full" / "hybrid.json").read_text())
    h_cut = json.loads((cut / "hybrid.json").read_text())
    assert h_cut.pop("source") == "../src" and h_full.pop("source") != "../src"
    assert h_full == h_cut
    assert not list(cut.rglob("*.tmp"))
    with pytest.raises(UsageError, match="other settings"):
        HybridTrainer(tmp_path / "moved" / "src", cut, replace(s, shots=7), progress=False)


def test_callback_stop_keeps_finished_segments(run_mom, tmp_path):
    """An exception in the callback stops the run after a saved segment; a complete record
    written after the last saved state is dropped on resume."""
    s = HybridSettings(backend="linear", segment_steps=2, total_steps=4, shots=1000)

    def stop(h, rec):
        if rec["segment"] == 0:
            raise _Stop

    with pytest.raises(_Stop):
        HybridTrainer(run_mom, tmp_path / "cut", s, progress=False).run(callback=stop)
    with open(tmp_path / "cut" / "segments.jsonl", "a") as f:
        f.write(json.dumps({"segment": 1, "kind": "quantum"}) + "\n")
    resumed = HybridTrainer(run_mom, tmp_path / "cut", s, progress=False)
    assert resumed.segment == 1 and resumed.step == 2
    assert [r["segment"] for r in load_records(tmp_path / "cut")] == [-1, 0]


def test_lowrank_segment_matches_dense_carleman(run_tiny):
    """The order-2 emulation used by the carleman backend equals the dense CarlemanSystem."""
    from qcarleman.autodiff.gdmap import GDMap

    run = RunDir(run_tiny)
    ck = run.load(0)
    batches = run.batches(3)
    gmap = GDMap(ck.model, ck.loss_fn, batches, 0.05, mask=ck.mask, weight_decay=1e-4,
                 per_step=True)  # fmt: skip
    z0 = gmap.initial_state()
    traj, levels, notes = carleman_trajectory(gmap, z0, 3, 2, 0)
    dense = CarlemanSystem(gmap.dense_map(), 2).iterate(z0, 3)
    np.testing.assert_allclose(traj, dense, rtol=0, atol=1e-10 * np.abs(dense).max())
    assert "low-rank" in notes[0]
    taylor = gmap.iterate(z0, 3)
    assert np.linalg.norm(traj[-1] - taylor[-1]) < 0.05 * np.linalg.norm(taylor[-1])


def test_dense_carleman_segment_levels_and_p_succ(run_tiny):
    """Order N = 3 (dense CarlemanSystem): the level-1 trajectory equals CarlemanSystem.iterate,
    and P_succ from the emulated level norms equals the history system's (ALGORITHM.md §3)."""
    from qcarleman.autodiff.gdmap import GDMap
    from qcarleman.hybrid.stages import Emulation, emulated_success_probability

    run = RunDir(run_tiny)
    ck = run.load(0)
    mask, left = {}, 12  # keep the last 12 active entries: d = 12, dim of level 3 = 1728
    for k, m in reversed(ck.mask.items()):
        flat = m.flatten().clone()
        idx = torch.nonzero(flat).flatten()
        flat[idx[: max(0, len(idx) - left)]] = False
        left = max(0, left - len(idx))
        mask[k] = flat.reshape(m.shape)
    gmap = GDMap(ck.model, ck.loss_fn, run.batches(3), 0.05, mask=mask, per_step=True)
    assert gmap.dim == 12
    z0 = gmap.initial_state()
    traj, levels, notes = carleman_trajectory(gmap, z0, 3, 3, 0)
    cs = CarlemanSystem(gmap.dense_map(), 3)
    dense = cs.iterate(z0, 3)
    np.testing.assert_allclose(traj, dense, rtol=0, atol=1e-12 * np.abs(dense).max())
    assert len(levels) == 4 and "dense Carleman N = 3" in notes[0]
    x = [torch.from_numpy(t) for t in traj]
    emu = Emulation(x, None, 3, levels=levels)
    for p in (0, 3):
        p_succ, source = emulated_success_probability(emu, p)
        assert "levels" in source
        hist = cs.history(z0, 3, idle=p)
        assert p_succ == pytest.approx(hist.success_probability, rel=1e-10)


def test_success_probability_matches_history_system():
    rng = np.random.default_rng(0)
    d, T, p = 5, 4, 3
    G1 = 0.7 * rng.standard_normal((d, d)) / np.sqrt(d)
    qmap = QuadraticMap(0.1 * rng.standard_normal(d), G1, np.zeros((d, d, d)))
    z0 = rng.standard_normal(d)
    hist = CarlemanSystem(qmap, 1).history(z0, T, idle=p)
    norms2 = [float(z @ z) for z in qmap.iterate(z0, T)]
    assert success_probability(norms2, norms2[-1], p) == pytest.approx(
        hist.success_probability, rel=1e-12
    )


def test_baseline_and_settings_errors(run_mom, tmp_path):
    s = HybridSettings(backend="carleman", segment_steps=4, total_steps=4)
    out = run_baseline(run_mom, tmp_path / "b", s, progress=False)
    assert out["backend"] == "classical" and out["quantum_segments"] == 0
    with pytest.raises(UsageError, match="hybrid.backend"):
        HybridSettings(backend="qpu")
    with pytest.raises(UsageError, match="hybrid.segment_steps"):
        HybridSettings(segment_steps=0)
    with pytest.raises(UsageError, match="unknown key hybrid.foo"):
        HybridSettings.from_dict({"foo": 1})
    with pytest.raises(UsageError, match="not a training run"):
        HybridTrainer(tmp_path / "nothing", tmp_path / "x", s)


def test_auto_segment_length_from_the_window(run_mom, tmp_path):
    """K = "auto": each quantum segment's K is t* of the spectrum at its start (bounded)."""
    s = HybridSettings(
        backend="linear",
        segment_steps="auto",
        max_segment_steps=3,
        total_steps=5,
        shots=0,
        spectrum_probes=2,
        spectrum_iters=8,
    )
    HybridTrainer(run_mom, tmp_path / "a", s, progress=False).run()
    recs = [r for r in load_records(tmp_path / "a") if r["kind"] != "start"]
    assert sum(r["steps"] for r in recs) == 5
    for r in recs:
        if r["kind"] == "quantum":
            assert r["window"] >= 1 and r["steps"] == min(r["window"], 3, 5 - r["start"])
            assert r["rho"] > 0 and r["kappa_source"].startswith("§3 bound from ρ")
        else:  # the window closed (t* = 0) at this segment's start
            assert r["window"] in (0, None)


def test_real_qlsa_on_tiny_history_systems(run_tiny, tmp_path):
    """qlsa = exact / qsvt: the solver's output vector is checked against the emulated z_K."""
    base = HybridSettings(backend="linear", segment_steps=2, total_steps=2, shots=0)
    for qlsa, tol in (("exact", 1e-9), ("qsvt", 0.05)):
        s = replace(base, qlsa=qlsa)
        HybridTrainer(run_tiny, tmp_path / qlsa, s, progress=False).run()
        rec = load_records(tmp_path / qlsa)[1]
        assert rec["qlsa"] == qlsa and rec["qlsa_error"] < tol, rec["qlsa_error"]
        assert rec["kappa_source"].startswith("history system")
        assert 0 < rec["success_probability"] <= 1 and rec["qlsa_fidelity"] > 0.99
    # exact solver + exact download reproduces the ideal path
    HybridTrainer(run_tiny, tmp_path / "ideal", base, progress=False).run()
    ideal = load_records(tmp_path / "ideal")[1]
    exact = load_records(tmp_path / "exact")[1]
    assert exact["total_error"] == pytest.approx(ideal["total_error"], rel=1e-6)
    too_big = replace(base, backend="carleman", qlsa="hhl")
    with pytest.raises(UsageError, match="history system of this segment has dimension"):
        HybridTrainer(run_tiny, tmp_path / "hhl", too_big, progress=False).run()
    with pytest.raises(UsageError, match="hybrid.qlsa"):
        HybridSettings(backend="true-gd", qlsa="qsvt")
