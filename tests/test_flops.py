"""Per-layer classical FLOPs (counting active weights only)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qcarleman.training.flops import layer_flops, model_flops, step_flops, training_flops
from qcarleman.training.models import ResNet


def test_hand_counted_small_network():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),  # 8×8 out: 2·9·1·4·64 = 4608
        nn.ReLU(),  # 4·64 = 256
        nn.Flatten(),
        nn.Linear(256, 10),  # 2·256·10 + 10 = 5130
    )
    recs = {r["name"]: r["flops"] for r in layer_flops(net, (1, 8, 8))}
    assert recs["0"] == 4608 and recs["1"] == 256 and recs["3"] == 5130
    assert model_flops(net, (1, 8, 8)) == 4608 + 256 + 5130
    assert training_flops(net, (1, 8, 8), batch_size=32, steps=5) == 3 * 32 * 5 * (9994)


def test_mask_counts_only_active_weights():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8, bias=False))
    mask = {"1.weight": torch.zeros(8, 16, dtype=torch.bool)}
    mask["1.weight"][:, :4] = True  # 25% active
    assert model_flops(net, (16,), mask) == pytest.approx(0.25 * 2 * 16 * 8)
    assert model_flops(net, (16,)) == 2 * 16 * 8


def test_resnet32x4_forward_flops_and_six_n_rule():
    # The paper's 7.45M-parameter ResNet-32×4 (ALGORITHM.md §9): ~1.1e9 MACs per 32×32 image
    # (conv layers dominate; parameters are reused over spatial positions, so FLOPs ≫ 2·P).
    m = ResNet(32, 4, 3, 100)
    P = sum(p.numel() for p in m.parameters())
    assert P == 7451044
    f = model_flops(m, (3, 32, 32))
    assert 2.0e9 < f < 2.5e9
    assert f > 2 * P  # the 6·n·B rule (dense-layer rule) undercounts convolutions


def test_one_flop_definition_dense_never_below_sparse():
    """The measured per-layer count (step_flops) keeps dense ≥ sparse on pruned convolutional
    and linear models. Mixing rules broke that: on the CNN the measured sparse count is above
    the analytic dense 6·P·B (convolutions reuse weights); the estimate now uses one rule for
    both figures, so dense ≥ sparse there too."""
    from qcarleman.quantum.cost.estimate import estimate
    from qcarleman.quantum.cost.inputs import CostModel, Problem
    from qcarleman.training.models import SmallCNN
    from qcarleman.training.pruning import prune_global

    torch.manual_seed(0)
    for net, shape in ((SmallCNN(width=4), (1, 8, 8)), (nn.Sequential(nn.Linear(16, 8)), (16,))):
        P = sum(p.numel() for p in net.parameters())
        mask = prune_global(net, 0.9, include_classifier=True)
        n = sum(int(m.sum()) for m in mask.values()) + sum(
            p.numel() for name, p in net.named_parameters() if name not in mask
        )
        fps = step_flops(net, shape, 32, mask)
        assert fps.dense.value >= fps.sparse.value > 0
        if isinstance(net, SmallCNN):
            assert fps.sparse.value > 6 * P * 32  # the old mix: "dense" below sparse
        assert fps.sparse.kind == fps.dense.kind == "measured"
        est = estimate(
            problem=Problem(n=n, P=P, T=4, batch_size=32, flops_per_step=fps),
            model=CostModel(use_qsharp=False),
        )
        assert est.classical_flops_dense.value >= est.classical_flops.value
        assert est.classical_flops.value == pytest.approx(4 * fps.sparse.value)
        analytic = estimate(
            problem=Problem(n=n, P=P, T=4, batch_size=32), model=CostModel(use_qsharp=False)
        )
        assert analytic.classical_flops_dense.value >= analytic.classical_flops.value


def test_estimate_from_run_directory(tmp_path, capsys):
    """`qcarleman estimate --run`: n, P, per-layer FLOPs and ‖f0‖ = η‖g‖ from a checkpoint
    (ρ, ‖F2‖ and s against a dense Hessian: tests/test_estimate_run.py)."""
    import json
    import math

    from qcarleman.cli.main import main
    from qcarleman.training.config import TrainSettings
    from qcarleman.training.data import load_dataset
    from qcarleman.training.models import SmallCNN
    from qcarleman.training.run import RunDir
    from qcarleman.training.trainer import Trainer

    torch.manual_seed(0)
    data = load_dataset({"name": "digits", "subset": 100})
    settings = TrainSettings(lr=0.05, momentum=0.0, batch_size=32, epochs=1, milestones=[])
    meta = {"model": {"name": "smallcnn", "width": 4}}
    Trainer(SmallCNN(width=4), data, settings, tmp_path, seed=1, meta=meta, progress=False).fit()
    rc = main(["estimate", "--run", str(tmp_path), "--step", "0", "--steps", "5", "--json",
               "--no-qsharp", "--f2-iters", "2", "--sparsity-samples", "2"])  # fmt: skip
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    run = RunDir(tmp_path)
    ck = run.load(0)
    P = sum(p.numel() for p in ck.model.parameters())
    assert d["problem"]["n"] == P and d["problem"]["P"] == P  # unpruned: every weight active
    x, y = run.batches(1, batch_size=32)[0]
    per_step = training_flops(ck.model, tuple(x.shape[1:]), 32, 1, ck.mask)
    assert d["classical_flops"] == pytest.approx(5 * per_step)
    assert d["classical_flops_kind"] == "measured"
    assert d["classical_flops_dense"] == pytest.approx(d["classical_flops"])  # nothing pruned
    ck.model.zero_grad()
    ck.loss_fn(ck.model(x), y).backward()
    wd = settings.weight_decay  # g = ∇L + λθ (ALGORITHM.md §1)
    g = math.sqrt(
        sum(float((p.grad + wd * p.detach()).pow(2).sum()) for p in ck.model.parameters())
    )
    f0 = d["conditioning"]["f0_norm"]
    assert f0["value"] == pytest.approx(0.05 * g, rel=1e-5)  # float32 backward here
    assert d["source"]["f0_norm"].startswith("measured") and d["measured"]["lr"] == 0.05
