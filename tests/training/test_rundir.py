"""Run directories under attack or damage: crafted data pickles never run, damaged checkpoints
and metadata give one-line errors (exit 2), divergence stops training (exit 3), JSONL survives a
kill, resumes match uninterrupted runs, and run folders can be moved."""

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qcarleman.atomic import append_jsonl, read_jsonl, remove_stale_temps, write_json
from qcarleman.cli.main import main
from qcarleman.errors import DivergenceError, UsageError
from qcarleman.training.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from qcarleman.training.config import dump_config, load_config
from qcarleman.training.run import RunDir
from qcarleman.training.trainer import Trainer, sparse_train, train_dense

torch.set_num_threads(1)

MLP = {"name": "mlp", "hidden": [12], "activation": "tanh"}


def _raw(**train):
    return {
        "seed": 1,
        "data": {"name": "digits", "subset": 120},
        "model": dict(MLP),
        "train": {
            "lr": 0.05,
            "momentum": 0.9,
            "batch_size": 32,
            "epochs": 2,
            "milestones": [1],
            "every_step_first": 3,
            **train,
        },
        "prune": {"amount": 0.5},
        "sparse": {"epochs": 1, "every_step_first": 2},
    }


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dense"
    train_dense(load_config(_raw()), out, progress=False)
    return out


def _copy(run, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def _rewrite(path, edit):
    ck = torch.load(path, weights_only=True)
    edit(ck)
    save_checkpoint(path, ck)


# -- code execution from a run directory ---------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker`` (what a malicious data file would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _plant(folder, marker):
    """Crafted CIFAR-10 and CIFAR-100 files (python-pickle layout) in ``folder``."""
    layouts = {
        "cifar-10-batches-py": ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)],
        "cifar-100-python": ["train", "test", "meta"],
    }
    for sub, names in layouts.items():
        (folder / sub).mkdir(parents=True)
        for name in names:
            payload = {b"data": _Payload(marker), b"labels": [0], b"fine_labels": [0]}
            (folder / sub / name).write_bytes(pickle.dumps(payload))


def test_crafted_cifar_pickle_never_runs(dense, tmp_path, monkeypatch, capsys):
    run = _copy(dense, tmp_path)
    for p in (run / "checkpoints").glob("*.pt"):
        _rewrite(p, lambda ck: ck["meta"].update(data={"name": "cifar10", "root": "data"}))
    marker = tmp_path / "PWNED"
    _plant(run / "data", marker)
    elsewhere = tmp_path / "cwd"
    _plant(elsewhere / "data", marker)  # the current directory's data/ is never read
    monkeypatch.chdir(elsewhere)
    commands = [
        ["spectrum", str(run), "--quiet", "--no-plots"],
        ["emulate", str(run), "--quiet", "--no-plot", "--steps", "2"],
        ["estimate", "--run", str(run)],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "refused" in err, err
        assert str((run / "data").resolve()) in err, err
        assert not marker.exists()
    # a training config pointing at the crafted folder (train and hybrid read it the same way)
    cfg = tmp_path / "cifar.toml"
    raw = _raw()
    raw["data"] = {"name": "cifar10", "root": str(elsewhere / "data")}
    cfg.write_text(dump_config(raw))
    data = str(elsewhere / "data")
    for argv in (
        ["train", str(cfg), "--out", "t", "--quiet"],
        ["hybrid", "--config", str(cfg), "--out", "h", "--quiet"],
        # `qcarleman paper`: the CIFAR-100 preset (on the CPU) and the tiny one switched to CIFAR-10
        ["paper", "--preset", "paper", "--data", data, "--device", "cpu", "--out", "p1", "--quiet"],
        ["paper", "--preset", "tiny", "--data", data, "--set", "data.name=cifar10",
         "--out", "p2", "--quiet"],
    ):
        assert main(argv) == 2, argv
        assert "refused" in capsys.readouterr().err
        assert not marker.exists()


def test_safe_unpickler_reads_real_layouts(tmp_path):
    import numpy as np

    from qcarleman.training.data import load_cifar, safe_unpickle

    sub = tmp_path / "cifar-10-batches-py"
    sub.mkdir()
    rng = np.random.default_rng(0)
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        d = {
            b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            b"labels": [1, 2, 3, 4],
            b"batch_label": b"x",
            b"filenames": [b"a.png"] * 4,
        }
        for proto in (2, 4):
            (sub / name).write_bytes(pickle.dumps(d, protocol=proto))
    (train_x, train_y), (test_x, _) = load_cifar("cifar10", tmp_path)
    assert train_x.shape == (20, 3, 32, 32) and train_y.tolist()[:4] == [1, 2, 3, 4]
    with open(sub / "test_batch", "rb") as f:
        assert safe_unpickle(f, "x")[b"labels"] == [1, 2, 3, 4]
    (sub / "data_batch_1").write_bytes(pickle.dumps({b"data": os.getcwd}))
    with pytest.raises(UsageError, match="refused"):
        load_cifar("cifar10", tmp_path)


# -- damaged checkpoints and metadata: one-line errors, exit 2 ---------------------------------
class Foreign:
    pass


def _damage_cases():
    def trunc(p):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    return {
        "foreign": (lambda p: torch.save({"x": Foreign()}, p), "untrusted source"),
        "truncated": (trunc, "truncated or corrupted"),
        "empty": (lambda p: p.write_bytes(b""), "truncated or corrupted"),
        "garbage": (lambda p: p.write_bytes(b"\x80\x02garbage" * 10), "not a qcarleman"),
        "not a dict": (lambda p: torch.save([1, 2], p), "not a qcarleman checkpoint"),
        "no model": (lambda p: _rewrite(p, lambda ck: ck.pop("model")), "'model'"),
        "no meta lr": (lambda p: _rewrite(p, lambda ck: ck["meta"].pop("lr")), "'lr'"),
        "meta lr str": (lambda p: _rewrite(p, lambda ck: ck["meta"].update(lr="x")), "'lr'"),
        "meta lr inf": (lambda p: _rewrite(p, lambda ck: ck["meta"].update(lr=float("inf"))), "lr"),
        "meta list": (lambda p: _rewrite(p, lambda ck: ck.update(meta=[1])), "not a dict"),
        "bad data spec": (
            lambda p: _rewrite(p, lambda ck: ck["meta"]["data"].update(size="x")),
            "data\\.size",
        ),
        "mask shape": (
            lambda p: _rewrite(
                p,
                lambda ck: ck["mask"].update(
                    {k: torch.ones(3, dtype=torch.bool) for k in ck["mask"]}
                ),
            ),
            "mask",
        ),
        "mask missing": (lambda p: _rewrite(p, lambda ck: ck.update(mask={})), "mask"),
        "weight shape": (
            lambda p: _rewrite(
                p, lambda ck: ck["model"].update({k: torch.zeros(2) for k in ck["model"]})
            ),
            "shape",
        ),
        "width changed": (
            lambda p: _rewrite(p, lambda ck: ck["meta"]["model"].update(hidden=[13])),
            "model",
        ),
        "nan weights": (
            lambda p: _rewrite(p, lambda ck: next(iter(ck["model"].values())).fill_(float("nan"))),
            "NaN or inf",
        ),
    }


@pytest.mark.parametrize("case", list(_damage_cases()))
def test_damaged_checkpoint_is_a_one_line_error(dense, tmp_path, capsys, case):
    damage, words = _damage_cases()[case]
    run = _copy(dense, tmp_path)
    step = RunDir(run).latest_step()
    damage(RunDir(run).checkpoint_path(step))
    with pytest.raises(UsageError, match=words.replace("(", r"\(")) as exc:
        RunDir(run).load(step)
    assert "\n" not in str(exc.value)
    argv = ["emulate", str(run), "--quiet", "--no-plot", "--steps", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "step_" in err, err


def test_odd_checkpoint_names_are_ignored(dense, tmp_path):
    run = _copy(dense, tmp_path)
    steps = RunDir(run).steps()
    for name in ("step_³.pt", "step_x.pt", "step_.pt", "step_12.pt.bak", "notes.txt"):
        (run / "checkpoints" / name).write_bytes(b"junk")
    assert RunDir(run).steps() == steps


def test_checkpoint_meta_is_typed_and_a_mapping(dense):
    meta = RunDir(dense).load().meta
    assert isinstance(meta, CheckpointMeta)
    assert meta.optimizer == "sgd" and meta.milestones == (1,) and meta.phase == "dense"
    assert meta["lr"] == meta.lr and meta.get("nothing", 7) == 7 and dict(meta) == meta.to_dict()
    assert CheckpointMeta.parse(meta.to_dict()) == meta
    assert meta.lr_at(meta.steps_per_epoch) == pytest.approx(0.1 * meta.lr)
    assert "root" not in meta.data  # digits: no folder


# -- wrong successes refused ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit,key",
    [
        ({"train": {"lr": float("inf")}}, "train.lr"),
        ({"train": {"weight_decay": float("inf")}}, "train.weight_decay"),
        ({"train": {"gamma": float("nan")}}, "train.gamma"),
        ({"sparse": {"lr": float("inf")}}, "sparse.lr"),
        ({"train": {"epochs": 1.5}}, "train.epochs"),
        ({"data": {"val_fraction": 1.5}}, "data.val_fraction"),
        ({"data": {"size": -3}}, "data.size"),
        ({"prune": {"amount": float("nan")}}, "prune.amount"),
    ],
)
def test_config_values_are_validated(edit, key):
    raw = _raw()
    for section, values in edit.items():
        raw[section] = {**raw[section], **values}
    with pytest.raises(UsageError, match=key.replace(".", r"\.")):
        load_config(raw)


def test_self_referencing_config_is_refused(tmp_path):
    raw = _raw()
    loop: list = []
    loop.append(loop)
    raw["model"] = {**MLP, "hidden": loop}
    with pytest.raises(UsageError, match="model.hidden"):
        load_config(raw)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"seed = \xff\xfe")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(bad)


def test_resume_with_other_config_names_the_keys(dense, tmp_path, capsys):
    run = _copy(dense, tmp_path)
    raw = _raw()
    raw["model"] = {**MLP, "hidden": [13]}
    raw["train"]["lr"] = 0.07
    with pytest.raises(UsageError, match=r"model\.hidden, sparse\.lr, train\.lr"):
        train_dense(load_config(raw), run, progress=False)


def test_sparse_from_equal_to_out_is_refused(dense, tmp_path):
    run = _copy(dense, tmp_path)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    with pytest.raises(UsageError, match="same folder"):
        sparse_train(load_config(_raw()), run, source=run, progress=False)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


# -- divergence ----------------------------------------------------------------------------------
def test_divergence_stops_with_exit_3(tmp_path, capsys):
    cfg = tmp_path / "hot.toml"
    cfg.write_text(dump_config(_raw(lr=1e30, momentum=0.0)))
    out = tmp_path / "hot"
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "diverged at step" in err and "smaller learning rate" in err
    for p in (out / "checkpoints").glob("*.pt"):
        ck = load_checkpoint(p)
        assert all(torch.isfinite(v).all() for v in ck["model"].values())
    text = (out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").exists() else ""
    assert "NaN" not in text and "Infinity" not in text


def test_divergence_error_type(dense, tmp_path):
    ck = RunDir(dense).load(0)
    data = RunDir(dense).dataset()
    cfg = load_config(_raw(lr=1e30, momentum=0.0))
    tr = Trainer(ck.model, data, cfg.train, tmp_path / "x", meta=ck.meta, progress=False)
    with pytest.raises(DivergenceError, match="diverged"):
        tr.fit()


def test_json_output_is_strict(tmp_path):
    path = write_json(tmp_path / "a.json", {"x": float("nan"), "y": [float("inf"), 1.0]})
    assert json.loads(path.read_text(), parse_constant=lambda c: 1 / 0) == {
        "x": None,
        "y": [None, 1.0],
    }
    append_jsonl(tmp_path / "m.jsonl", {"v": float("-inf")})
    assert read_jsonl(tmp_path / "m.jsonl") == [{"v": None}]


# -- nothing is lost ---------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    records=st.lists(st.dictionaries(st.text(max_size=4), st.integers()), max_size=4),
    cut=st.integers(min_value=0, max_value=400),
)
def test_torn_jsonl_tail_is_dropped_and_repaired(tmp_path_factory, records, cut):
    path = tmp_path_factory.mktemp("j") / "m.jsonl"
    for r in records:
        append_jsonl(path, r)
    if records:
        data = path.read_bytes()
        path.write_bytes(data[: min(cut, len(data))])
    got = read_jsonl(path)
    assert got == records[: len(got)]
    append_jsonl(path, {"new": 1})
    assert read_jsonl(path) == got + [{"new": 1}]


def test_damaged_middle_line_is_an_error(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(UsageError, match="line 2"):
        read_jsonl(path)


def _interrupt_at(monkeypatch, at):
    """Make the next training run die (like a kill) when it reaches step ``at``."""
    real = Trainer.train_step

    def step(self, x, y, lr):
        if self.step == at:
            monkeypatch.setattr(Trainer, "train_step", real)
            # what a kill mid-write leaves behind
            (self.run_dir / "checkpoints" / ".step_00000099.pt.abc.tmp").write_bytes(b"x")
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write('{"kind": "ep')
            raise KeyboardInterrupt
        return real(self, x, y, lr)

    monkeypatch.setattr(Trainer, "train_step", step)


def _same_checkpoints(a, b):
    ra, rb = RunDir(a), RunDir(b)
    assert ra.steps() == rb.steps()
    for s in ra.steps():
        ca, cb = ra.raw(s), rb.raw(s)
        for key in ("model", "mask"):
            assert all(torch.equal(ca[key][k], cb[key][k]) for k in ca[key])
        assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
        assert torch.equal(ca["rng"]["numpy"]["keys"], cb["rng"]["numpy"]["keys"])
        assert ca["rng"]["python"] == cb["rng"]["python"]
        assert ca["meta"] == cb["meta"] and ca["epoch_stats"] == cb["epoch_stats"]


def _metrics(run):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in RunDir(run).metrics()]


def test_kill_and_resume_train_and_sparse_train_match(tmp_path, monkeypatch):
    cfg = load_config(_raw())
    train_dense(cfg, tmp_path / "ref" / "dense", progress=False)
    sparse_train(cfg, tmp_path / "ref" / "sparse", tmp_path / "ref" / "dense", progress=False)

    _interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train_dense(cfg, tmp_path / "k" / "dense", progress=False)
    train_dense(cfg, tmp_path / "k" / "dense", progress=False)
    _interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        sparse_train(cfg, tmp_path / "k" / "sparse", tmp_path / "k" / "dense", progress=False)
    # the run folder stays resumable after a move (it stores relative paths)
    shutil.move(tmp_path / "k", tmp_path / "moved")
    sparse_train(cfg, tmp_path / "moved" / "sparse", progress=False)

    for phase in ("dense", "sparse"):
        _same_checkpoints(tmp_path / "ref" / phase, tmp_path / "moved" / phase)
        assert _metrics(tmp_path / "ref" / phase) == _metrics(tmp_path / "moved" / phase)
        assert not list((tmp_path / "moved" / phase).rglob("*.tmp"))
    assert RunDir(tmp_path / "moved" / "sparse").meta()["source"] == "../dense"


def test_stale_temps_removed(tmp_path):
    (tmp_path / ".a.json.x1.tmp").write_text("x")
    (tmp_path / "keep.tmp").write_text("x")
    assert [p.name for p in remove_stale_temps(tmp_path)] == [".a.json.x1.tmp"]
    assert (tmp_path / "keep.tmp").exists()


def test_relative_data_root_resolves_against_the_run(dense, tmp_path):
    run = _copy(dense, tmp_path)
    for p in (run / "checkpoints").glob("*.pt"):
        _rewrite(p, lambda ck: ck["meta"].update(data={"name": "cifar10", "root": "../d"}))
    assert RunDir(run).data_spec()["root"] == str((tmp_path / "d").resolve())


def test_two_sparse_runs_write_identical_checkpoints(dense, tmp_path):
    import filecmp
    import random

    import numpy as np

    cfg = load_config(_raw())
    for name in ("a", "b"):
        np.random.rand(), random.random(), torch.rand(1)  # whatever ran before in the process
        sparse_train(cfg, tmp_path / name, dense, progress=False)
    a = sorted((tmp_path / "a" / "checkpoints").iterdir())
    b = sorted((tmp_path / "b" / "checkpoints").iterdir())
    assert [p.name for p in a] == [p.name for p in b]
    assert all(filecmp.cmp(x, y, shallow=False) for x, y in zip(a, b, strict=True))
