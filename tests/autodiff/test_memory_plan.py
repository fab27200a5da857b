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


def _digits_mlp():
    """A small MLP without batch norm on 120 digits (float64)."""
    from qcarleman.training.data import load_dataset

    torch.manual_seed(0)
    x, y = load_dataset({"name": "digits"}).train
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2), nn.Tanh(), nn.Linear(2, 10)).double()
    return model, (x[:120].double(), y[:120])


def test_gd_map_micro_batches_automatically_and_reports_the_plan():
    from qcarleman.analysis.emulate import emulation_report
    from qcarleman.autodiff.gdmap import GDMap

    model, batch = _digits_mlp()
    ce = nn.CrossEntropyLoss()
    fixed, per = predict_bytes(LossOperators(model, ce, batch), "third")
    limit = int((fixed + per * 30.5) / 0.5)  # third-order products of 30 samples fit
    small = GDMap(model, ce, batch, lr=0.1, memory_limit=limit)
    full = GDMap(model, ce, batch, lr=0.1, memory_limit="64G")
    plan = small.memory_plan
    assert plan.split and plan.product == "third" and plan.micro_batches == 4
    assert len(small.operators(0).batches) == 4 and not full.memory_plan.split
    g = torch.Generator().manual_seed(3)
    U, V = (torch.randn(small.n, 3, generator=g, dtype=torch.float64) for _ in range(2))
    assert (small.tg1(0, U) - full.tg1(0, U)).abs().max() < 1e-10
    assert (small.tg2(0, U, V) - full.tg2(0, U, V)).abs().max() < 1e-10
    rep = emulation_report(small, 2, order=1, f2_iters=2)
    assert rep["memory_plan"]["micro_batches"] == 4
    assert any("micro-batches" in s for s in rep["notes"])


def test_spectrum_micro_batches_automatically_and_reports_the_plan():
    from qcarleman.analysis.spectrum import model_spectrum

    model, batch = _digits_mlp()
    ce = nn.CrossEntropyLoss()
    fixed, per = predict_bytes(LossOperators(model, ce, batch), "hvp")
    limit = int((fixed + per * 30.5) / 0.5)  # HVPs of 30 samples fit
    kw = dict(lr=0.1, method="slq", k=1, probes=2, iters=8, lanczos_maxiter=40, deflate=False)
    small = model_spectrum(model, ce, [batch], memory_limit=limit, **kw)
    full = model_spectrum(model, ce, [batch], memory_limit="64G", **kw)
    assert small.extra["memory_plan"]["micro_batches"] == 4
    assert any("memory plan" in s and "micro-batches" in s for s in small.notes)
    assert full.extra["memory_plan"]["micro_batches"] == 1
    assert abs(small.lambda_max - full.lambda_max) < 1e-10 * abs(full.lambda_max)
    assert abs(small.trace - full.trace) < 1e-8 * abs(full.trace)
