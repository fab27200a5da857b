"""Global/layer-wise magnitude pruning; pruned weights stay exactly zero in sparse training."""

import pytest
import torch

from qcarleman.errors import UsageError
from qcarleman.training.config import TrainSettings
from qcarleman.training.data import load_dataset
from qcarleman.training.models import ResNet, SmallCNN
from qcarleman.training.pruning import (
    apply_mask,
    prunable_names,
    prune_global,
    prune_layerwise,
    sparsity_report,
)
from qcarleman.training.trainer import Trainer

torch.set_num_threads(1)


def _nonzero_init(model):
    # BN weights start at 1 and biases at 0: give every parameter a distinct nonzero value.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def test_global_pruning_exact_fraction_classifier_untouched():
    model = _nonzero_init(ResNet(20, 1, 3, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = prunable_names(model)
    assert "classifier.weight" not in names and "conv1.weight" in names
    assert not any("bn" in n or n.endswith("bias") for n in names)
    mask = prune_global(model, 0.9)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in names)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    assert abs(zeros - 0.9 * total) <= 1
    # everything outside the prunable set is unchanged and fully active
    for n, p in params.items():
        if n not in names:
            assert torch.equal(p, before[n]) and bool(mask[n].all()), n
    # the mask is exactly the zero pattern, and every kept |w| >= every pruned |w|
    kept = torch.cat([before[n][mask[n]].abs() for n in names])
    gone = torch.cat([before[n][~mask[n]].abs() for n in names])
    assert kept.min() >= gone.max()
    for n in names:
        assert torch.equal(mask[n], params[n] != 0)
    rep = sparsity_report(model, mask)
    assert rep["pruned"] == zeros and rep["active"] == rep["parameters"] - zeros
    assert rep["sparsity"] == pytest.approx(0.9, abs=1 / total)


def test_include_classifier_and_layerwise():
    model = _nonzero_init(SmallCNN(width=8))
    mask = prune_global(model, 0.5, include_classifier=True)
    assert not bool(mask["classifier.weight"].all())
    model = _nonzero_init(SmallCNN(width=8))
    mask = prune_layerwise(model, 0.75)
    for n in prunable_names(model):
        assert int((~mask[n]).sum()) == round(0.75 * mask[n].numel())
    assert bool(mask["classifier.weight"].all())
    with pytest.raises(UsageError, match="amount"):
        prune_global(model, 1.0)


def test_pruned_weights_stay_zero_through_momentum_and_weight_decay(tmp_path):
    data = load_dataset({"name": "digits", "subset": 400})
    torch.manual_seed(0)
    model = SmallCNN(width=8)
    mask = prune_global(model, 0.9)
    settings = TrainSettings(
        lr=0.05, momentum=0.9, weight_decay=1e-2, batch_size=32, epochs=3, milestones=[]
    )
    trainer = Trainer(model, data, settings, tmp_path, mask, progress=False)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.fit()
    assert trainer.step == 3 * 13
    for n, p in model.named_parameters():
        assert torch.equal(p[~mask[n]], torch.zeros_like(p[~mask[n]])), n
        buf = trainer.optimizer.state[p]["momentum_buffer"]
        assert torch.equal(buf[~mask[n]], torch.zeros_like(buf[~mask[n]])), n
        if bool(mask[n].any()):
            assert not torch.equal(p[mask[n]], start[n][mask[n]]), n  # active weights trained


def test_without_enforcement_weight_decay_revives_pruned_weights():
    # negative control: a plain SGD step (no gradient masking, no re-masking) moves pruned entries
    torch.manual_seed(0)
    model = SmallCNN(width=8)
    mask = prune_global(model, 0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 8, 8)), torch.arange(8)).backward()
    opt.step()
    w = dict(model.named_parameters())["features.0.weight"]
    assert bool((w[~mask["features.0.weight"]] != 0).any())
    apply_mask(model, mask)
    assert bool((w[~mask["features.0.weight"]] == 0).all())
