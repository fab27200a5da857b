"""TOML config: shipped examples, presets, inheritance, round trip, bad keys/values (exit 2)."""

import tomllib

import pytest

from qcarleman.cli.main import main
from qcarleman.errors import UsageError
from qcarleman.training.config import dump_config, example_config, load_config

EXAMPLES = ["digits-cnn", "digits-cnn-large", "mnist-cnn", "cifar100-resnet32x4"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_load_and_round_trip(name):
    cfg = load_config(example_config(name))
    again = load_config(tomllib.loads(dump_config(cfg)))
    assert again == cfg


def test_paper_preset_and_sparse_inheritance():
    cfg = load_config(example_config("cifar100-resnet32x4"))
    t = cfg.train
    assert (t.lr, t.momentum, t.weight_decay, t.batch_size, t.epochs) == (0.1, 0.9, 2e-4, 128, 200)
    assert t.milestones == [100, 150] and t.gamma == 0.1
    assert cfg.model == {"name": "resnet", "depth": 32, "widen": 4}
    assert cfg.prune.amount == 0.9 and not cfg.prune.include_classifier
    # [sparse] overrides only what it names; the rest comes from [train]
    assert cfg.sparse.epochs == 1 and cfg.sparse.milestones == [] and cfg.sparse.lr == 0.1
    assert cfg.sparse.every_step_first == 20 and cfg.train.every_step_first == 0
    over = load_config({"model": {"name": "mlp"}, "train": {"preset": "paper", "lr": 0.05}})
    assert over.train.lr == 0.05 and over.train.epochs == 200
    gd = load_config({"model": {"name": "mlp"}, "train": {"preset": "gd"}})
    assert gd.train.optimizer == "gd" and gd.train.momentum == 0.0


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"model": {"name": "mlp"}, "learning_rate": 0.1}, "unknown key config.learning_rate"),
        ({"model": {"name": "mlp"}, "train": {"lr": "fast"}}, "train.lr"),
        ({"model": {"name": "mlp"}, "train": {"lr": -1.0}}, "train.lr"),
        ({"model": {"name": "mlp"}, "train": {"momentum": 1.5}}, "train.momentum"),
        ({"model": {"name": "mlp"}, "train": {"epochs": True}}, "train.epochs"),
        ({"model": {"name": "mlp"}, "train": {"milestones": [1.5]}}, "train.milestones"),
        ({"model": {"name": "mlp"}, "train": {"preset": "fast"}}, "train.preset"),
        ({"model": {"name": "mlp"}, "train": {"optimizer": "adam"}}, "train.optimizer"),
        ({"model": {"name": "mlp"}, "data": {"name": "imagenet"}}, "data.name"),
        ({"model": {"name": "mlp"}, "data": {"colour": 1}}, "unknown key data.colour"),
        ({"model": {"name": "mlp", "depth": 3}}, "no option 'depth'"),
        ({"model": {"name": "vgg"}}, "unknown model"),
        ({}, "needs a \\[model\\] table"),
        ({"model": {"name": "mlp"}, "prune": {"amount": 1.2}}, "prune.amount"),
        ({"model": {"name": "mlp"}, "prune": {"scope": "local"}}, "prune.scope"),
        ({"model": {"name": "mlp"}, "sparse": {"mode": "lottery"}}, "sparse.mode"),
        ({"model": {"name": "mlp"}, "device": "tpu"}, "device"),
        (
            {"model": {"name": "mlp"}, "train": 3},
            "config.train = 3 has the wrong type; expected a table",
        ),
    ],
)
def test_bad_config_raises_usage_error(raw, match):
    with pytest.raises(UsageError, match=match):
        load_config(raw)


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "smallcnn"\n[train]\nlr = "fast"\n')
    assert main(["train", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.lr" in err
    bad.write_text("[model\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["train", "no-such-example", "--out", str(tmp_path / "run")]) == 2
    assert "available: " in capsys.readouterr().err
    assert main(["sparse-train", "digits-cnn", "--out", str(tmp_path / "empty")]) == 2
    assert "--from" in capsys.readouterr().err


def test_cli_pipeline_with_json(tmp_path, capsys):
    import json

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'threads = 1\n[data]\nsubset = 200\n[model]\nname = "smallcnn"\nwidth = 4\n'
        "[train]\nepochs = 1\nbatch_size = 50\nlr = 0.05\n[sparse]\nevery_step_first = 2\n"
    )
    dense, sparse = str(tmp_path / "dense"), str(tmp_path / "sparse")
    assert main(["train", str(cfg), "--out", dense, "--json", "--quiet"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["step"] == 4 and rec["kind"] == "epoch"
    assert main(["prune", str(cfg), "--from", dense, "--out", sparse, "--json", "--quiet"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert abs(rep["pruned"] - 0.9 * rep["prunable"]) <= 1
    assert main(["sparse-train", str(cfg), "--out", sparse, "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 4
    # a different config in the same run directory is refused
    cfg.write_text(cfg.read_text().replace("lr = 0.05", "lr = 0.01"))
    assert main(["train", str(cfg), "--out", dense, "--quiet"]) == 2
    assert "different config" in capsys.readouterr().err
