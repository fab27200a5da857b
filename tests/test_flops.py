"""Per-layer classical FLOPs (counting active weights only)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qcarleman.training.flops import layer_flops, model_flops, training_flops
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
