"""Trainer: bit-exact kill-and-resume, RunDir replay, full-batch GD, digits accuracy, pipelines."""

import json

import pytest
import torch

from qcarleman.training.checkpoint import load_checkpoint
from qcarleman.training.config import TrainSettings, example_config, load_config
from qcarleman.training.data import load_dataset
from qcarleman.training.models import MLP, SmallCNN
from qcarleman.training.run import RunDir
from qcarleman.training.trainer import Trainer, prune_run, sparse_train, train_dense

torch.set_num_threads(1)

SETTINGS = dict(
    lr=0.05,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=64,
    epochs=2,
    milestones=[1],
    every_step_first=5,
    checkpoint_every=1,
)


class Killed(Exception):
    pass


def _trainer(path, data, callback_free=True):
    torch.manual_seed(0)
    return Trainer(
        SmallCNN(width=8),
        data,
        TrainSettings(**SETTINGS),
        path,
        seed=3,
        meta={"model": {"name": "smallcnn", "width": 8}},
        progress=False,
    )


def _epochs(run):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in run.metrics()]


def test_kill_and_resume_is_bit_exact(tmp_path):
    # augment=True exercises the seeded crop/flip path as well
    data = load_dataset({"name": "digits", "subset": 600, "augment": True})
    ref = _trainer(tmp_path / "ref", data)
    ref.fit()

    def kill(trainer):
        if trainer.step == 13:
            raise Killed

    killed = _trainer(tmp_path / "run", data)
    with pytest.raises(Killed):
        killed.fit(callback=kill)
    run = RunDir(tmp_path / "run")
    assert run.steps() == [0, 1, 2, 3, 4, 5, 10]  # 10 steps per epoch; the kill lost 11..13
    resumed = _trainer(tmp_path / "run", data)
    torch.manual_seed(12345)  # resume must restore the RNG, whatever the current state
    assert resumed.resume() == 10
    resumed.fit()
    assert resumed.step == ref.step == 20
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    oa, ob = ref.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(oa[k]["momentum_buffer"], ob[k]["momentum_buffer"]) for k in oa)
    assert _epochs(RunDir(tmp_path / "ref")) == _epochs(run)
    # checkpoints load with weights_only=True and hold the contract's keys
    ck = load_checkpoint(run.checkpoint_path(20))
    assert {"model", "mask", "optimizer", "rng", "step", "epoch", "meta"} <= set(ck)
    assert ck["step"] == 20 and ck["epoch"] == 2 and ck["meta"]["lr_now"] == pytest.approx(0.005)
    json.dumps(ck["meta"])


def test_rundir_replays_the_trainer_steps(tmp_path):
    data = load_dataset({"name": "digits", "subset": 300, "augment": True})
    trainer = _trainer(tmp_path, data)
    trainer.fit()
    run = RunDir(tmp_path)
    ck = run.load(0)
    model, meta = ck.model, ck.meta
    opt = torch.optim.SGD(
        model.parameters(),
        lr=meta["lr"],
        momentum=meta["momentum"],
        weight_decay=meta["weight_decay"],
    )
    for x, y in run.batches(5):
        opt.zero_grad()
        ck.loss_fn(model(x), y).backward()
        opt.step()
    target = run.load(5).model.state_dict()
    assert all(torch.equal(v, target[k]) for k, v in model.state_dict().items())
    assert len(run.batches(3, split="test")) == 3


def test_full_batch_gd_step_is_exact_gradient_step(tmp_path):
    data = load_dataset({"name": "digits", "subset": 200})
    torch.manual_seed(0)
    model = MLP(64, 10, [16], "tanh")
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref = MLP(64, 10, [16], "tanh")
    ref.load_state_dict(model.state_dict())
    eta, lam = 0.3, 1e-2
    s = TrainSettings(
        optimizer="gd", lr=eta, momentum=0.0, weight_decay=lam, epochs=3, milestones=[]
    )
    trainer = Trainer(model, data, s, tmp_path, progress=False)
    assert trainer.steps_per_epoch == 1 and trainer.batch_size == 200
    trainer.fit()
    losses = []
    for _ in range(3):  # θ' = θ − η(∇L(θ) + λθ) on the whole training split
        ref.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(data.train[0]), data.train[1])
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for p in ref.parameters():
                p -= eta * (p.grad + lam * p)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, dict(ref.named_parameters())[n], rtol=1e-5, atol=1e-6)
        assert not torch.equal(p, theta0[n])
    assert losses[2] < losses[0]


def test_lr_schedule():
    s = TrainSettings(lr=0.1, milestones=[100, 150], gamma=0.1)
    assert [s.lr_at(e) for e in (0, 99, 100, 149, 150, 199)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )


def test_digits_cnn_pipeline_reaches_95_percent(tmp_path):
    """Shipped digits config: dense ≥ 95 % test accuracy; 90 % pruned + sparse finetune keeps
    the classifier, the exact sparsity and per-step checkpoints 0..20."""
    cfg = load_config(example_config("digits-cnn"))
    rec = train_dense(cfg, tmp_path / "dense", progress=False)
    assert rec["test_acc"] >= 0.95
    dense = RunDir(tmp_path / "dense")
    assert dense.steps()[0] == 0 and dense.load().meta["phase"] == "dense"
    cfg.sparse.epochs = 1
    rec = sparse_train(cfg, tmp_path / "sparse", source=tmp_path / "dense", progress=False)
    assert rec["test_acc"] >= 0.9
    run = RunDir(tmp_path / "sparse")
    assert run.steps()[:21] == list(range(21))
    ck0, last = run.load(0), run.load()
    assert ck0.meta["phase"] == "sparse" and ck0.meta["mode"] == "finetune"
    w0 = dict(ck0.model.named_parameters())
    src = dict(dense.load().model.named_parameters())
    assert torch.equal(w0["classifier.weight"], src["classifier.weight"])
    for n, p in last.model.named_parameters():
        assert bool((p[~last.mask[n]] == 0).all())
    prune = [r for r in run.metrics() if r["kind"] == "prune"][0]
    assert abs(prune["pruned"] - 0.9 * prune["prunable"]) <= 1


def test_scratch_mode_reinitialises_under_the_same_mask(tmp_path):
    raw = {
        "threads": 1,
        "data": {"subset": 200},
        "model": {"name": "smallcnn", "width": 4},
        "train": {"epochs": 1, "batch_size": 50},
        "sparse": {"epochs": 1, "every_step_first": 2},
    }
    train_dense(load_config(raw), tmp_path / "dense", progress=False)
    fine = load_config(raw)
    prune_run(fine, tmp_path / "dense", tmp_path / "fine", progress=False)
    scratch = load_config({**raw, "sparse": {**raw["sparse"], "mode": "scratch"}})
    sparse_train(scratch, tmp_path / "scratch", source=tmp_path / "dense", progress=False)
    f0, s0 = RunDir(tmp_path / "fine").load(0), RunDir(tmp_path / "scratch").load(0)
    assert s0.meta["mode"] == "scratch" and f0.meta["mode"] == "finetune"
    assert all(torch.equal(f0.mask[k], s0.mask[k]) for k in f0.mask)
    wf, ws = dict(f0.model.named_parameters()), dict(s0.model.named_parameters())
    w = "features.0.weight"
    assert not torch.equal(wf[w], ws[w])
    assert bool((ws[w][~s0.mask[w]] == 0).all()) and bool((ws[w][s0.mask[w]] != 0).all())
    last = RunDir(tmp_path / "scratch").load()
    assert last.step == 4 and bool(
        (dict(last.model.named_parameters())[w][~last.mask[w]] == 0).all()
    )


def test_checkpoint_name_and_step_are_inverse():
    from qcarleman.training.checkpoint import checkpoint_name, checkpoint_step

    for step in (0, 7, 12345678):
        assert checkpoint_step(checkpoint_name(step)) == step
    assert checkpoint_name(7) == "step_00000007.pt"
    assert checkpoint_step("state.pt") is None and checkpoint_step("step_x.pt") is None
