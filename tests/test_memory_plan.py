"""Memory planning (issue 14): predicted intermediates, micro-batch plans, and micro-batched
products equal to the full-batch products (mean loss, no batch norm; float64)."""

from __future__ import annotations

import torch
from torch import nn

from qcarleman.autodiff.memory import micro_batched, plan_products, predict_bytes
from qcarleman.autodiff.operators import LossOperators

DEFAULT_DTYPE = torch.float64


def _mlp_ops(bn: bool = False, **kw) -> LossOperators:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(16, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(48, 5, generator=g), torch.randint(0, 3, (48,), generator=g)
    mask = {"0.weight": torch.rand(16, 5, generator=g) > 0.3}
    return LossOperators(model, nn.CrossEntropyLoss(), (x, y), mask=mask, **kw)


def test_micro_batched_products_equal_the_full_batch_products():
    ops = _mlp_ops(weight_decay=0.01, hvp_mode="cached")
    fixed, per = predict_bytes(ops, "third")
    plan = plan_products(ops, "third", memory_limit=int((fixed + per * 10.5) / 0.5))  # 10 fit
    assert plan.split and plan.micro_batches == 5 and plan.micro_batch == 10
    assert "micro-batches" in plan.describe() and not plan.batchnorm
    small = micro_batched(ops, plan)
    assert len(small.batches) == 5
    g = torch.Generator().manual_seed(2)
    u, v = torch.randn(ops.n, generator=g), torch.randn(ops.n, generator=g)
    assert (small.grad() - ops.grad()).abs().max() < 1e-13
    assert (small.hvp(u) - ops.hvp(u)).abs().max() < 1e-12
    assert (small.third(u, v) - ops.third(u, v)).abs().max() < 1e-12
    assert abs(small.loss() - ops.loss()) < 1e-13


def test_prediction_tracks_the_cached_graph_and_orders_products():
    ops = _mlp_ops(hvp_mode="cached")
    (f2, hvp), (f3, third) = predict_bytes(ops, "hvp"), predict_bytes(ops, "third")
    assert third > hvp > 0 and f3 >= f2 >= 0
    ops.hvp(torch.ones(ops.n))  # builds the cached graph and measures it on the whole batch
    predicted = f2 + hvp * 48
    assert 0.5 * ops.graph_bytes < predicted < 2.0 * ops.graph_bytes


def test_plan_fits_without_split_and_batchnorm_micro_batches_keep_two_samples():
    ops = _mlp_ops()
    plan = plan_products(ops, "hvp", memory_limit="64G")
    assert not plan.split and micro_batched(ops, plan) is ops and "fits" in plan.describe()
    bn = _mlp_ops(bn=True)
    fixed, per = predict_bytes(bn)
    tight = plan_products(bn, "hvp", memory_limit=int((fixed + 3 * per) / 0.5))
    assert tight.batchnorm and tight.split
    parts = micro_batched(bn, tight).batches
    assert len(parts) == tight.micro_batches and min(x.shape[0] for x, _ in parts) >= 2
    assert "batch norm" in tight.describe()
    assert tight.to_json()["predicted_bytes"]["kind"] == "estimated"
