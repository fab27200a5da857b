"""LossOperators(hvp_mode="cached"): products through the cached gradient graphs equal the
functional (forward-over-reverse) products and the dense autograd Hessian (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qcarleman.autodiff.operators import LossOperators
from qcarleman.errors import UsageError

DEFAULT_DTYPE = torch.float64  # applied per test by conftest.py
CE = nn.functional.cross_entropy


def _model() -> nn.Module:
    """Linear → BatchNorm (train-mode batch statistics) → tanh → dropout → linear."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Dropout(0.5), nn.Linear(4, 3)
    ).double()


def _batches():
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(m, 3, generator=g), torch.randint(0, 3, (m,), generator=g)) for m in (6, 4)
    ]


def _mask(model: nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"0.weight": torch.rand(model[0].weight.shape, generator=g) > 0.4}


def _pair(**kw):
    model = _model()
    mask = _mask(model)
    with torch.no_grad():
        model[0].weight.mul_(mask["0.weight"])
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    args = (model, CE, _batches())
    fun = LossOperators(*args, mask=mask, weight_decay=0.03, **kw)
    fast = LossOperators(*args, mask=mask, weight_decay=0.03, hvp_mode="cached", **kw)
    return model, buffers, fun, fast


@pytest.mark.parametrize("include_pruned", [False, True])
def test_cached_equals_functional_and_dense(include_pruned):
    model, buffers, fun, fast = _pair(include_pruned=include_pruned)
    g = torch.Generator().manual_seed(5)
    U = torch.randn(fun.n, 5, generator=g)
    for j in range(U.shape[1]):  # repeated single products reuse the same graphs
        a, b = fun.hvp(U[:, j]), fast.hvp(U[:, j])
        assert torch.allclose(a, b, rtol=0, atol=1e-10 * a.abs().max())
    assert fast.hvp_path == "cached" and fun.hvp_path == "functional"
    assert len(fast._graphs) == 2 and fast.graph_bytes > 0
    HU_fun, HU_fast = fun.hvp_batch(U), fast.hvp_batch(U)
    assert torch.allclose(HU_fun, HU_fast, rtol=0, atol=1e-10 * HU_fun.abs().max())

    # the dense Hessian by an independent route: torch.autograd.functional.hessian of L(θ_S)
    def loss(th):
        return fun._sum(lambda b: fun.batch_loss(th, b)) + 0.015 * th @ th

    H = torch.autograd.functional.hessian(loss, fun.theta)
    assert torch.allclose(fast.dense_hessian(), H, rtol=0, atol=1e-8 * H.abs().max())
    # batch norm semantics unchanged: the user's model and its running buffers are untouched
    assert model.training
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k


def test_cached_zero_hessian_and_with_batches():
    torch.manual_seed(0)
    lin = nn.Linear(3, 1).double()
    x = torch.randn(5, 3)
    ops = LossOperators(lin, lambda out, y: out.sum(), (x, x), hvp_mode="cached")
    assert torch.equal(ops.hvp(torch.ones(ops.n)), torch.zeros(ops.n))  # L linear in θ: H = 0
    assert ops.hvp_batch(torch.ones(ops.n, 3)).shape == (ops.n, 3)
    _, _, fun, fast = _pair()
    one = fast.with_batches(_batches()[:1])
    u = torch.ones(fun.n)
    ref = fun.with_batches(_batches()[:1]).hvp(u)
    assert torch.allclose(one.hvp(u), ref, rtol=0, atol=1e-10 * ref.abs().max())
    assert len(one._graphs) == 1 and len(fast._graphs or []) == 0


def test_cached_falls_back_when_graphs_do_not_fit():
    model = _model()
    small = LossOperators(
        model, CE, _batches(), mask=_mask(model), hvp_mode="cached", memory_limit=16
    )
    u = torch.linspace(-1, 1, small.n)
    ref = LossOperators(model, CE, _batches(), mask=_mask(model)).hvp(u)
    assert torch.allclose(small.hvp(u), ref, rtol=0, atol=1e-12 * ref.abs().max())
    assert small.hvp_path == "functional" and small.graph_bytes > 16


def test_unknown_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="hvp_mode"):
        LossOperators(_model(), CE, _batches(), hvp_mode="fast")
