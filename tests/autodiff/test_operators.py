"""LossOperators: HVP and third-order operators against dense autograd derivatives (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.autodiff.operators import ActiveParams, LossOperators
from qcarleman.errors import UsageError

DEFAULT_DTYPE = torch.float64  # applied per test by conftest.py


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Tanh(), nn.Dropout(0.5), nn.Linear(2, 3)
    ).double()


def _data(seed: int = 1, m: int = 6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, 3, generator=g), torch.randint(0, 3, (m,), generator=g)


def _mask(model: nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"0.weight": torch.rand(model[0].weight.shape, generator=g) > 0.4}


def _full_function(model, mask, batches):
    """Independent reference: the loss as a function of the active coordinates, with the forward
    written out by hand (linear → train-mode batch norm with batch statistics → tanh → linear;
    dropout off). Written with elementary ops because PyTorch's fused batch-norm kernel has
    inexact third derivatives."""
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    keep = torch.cat(
        [mask.get(k, torch.ones(s, dtype=torch.bool)).reshape(-1) for k, s in zip(names, shapes)]
    )
    active = keep.nonzero().reshape(-1)
    P = keep.numel()
    eps = model[1].eps

    def forward(p, x):
        h = x @ p["0.weight"].T + p["0.bias"]
        mu = h.mean(0)
        var = ((h - mu) ** 2).mean(0)
        h = (h - mu) / torch.sqrt(var + eps) * p["1.weight"] + p["1.bias"]
        return torch.tanh(h) @ p["4.weight"].T + p["4.bias"]

    def f(theta_s):
        full = torch.zeros(P).index_put((active,), theta_s)
        params, off = {}, 0
        for k, s in zip(names, shapes):
            num = int(np.prod(s))
            params[k] = full[off : off + num].reshape(s)
            off += num
        total = 0.0
        for x, y in batches:
            total = total + x.shape[0] * nn.functional.cross_entropy(forward(params, x), y)
        return total / sum(x.shape[0] for x, _ in batches)

    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])[active]
    return f, theta


def test_grad_hvp_third_match_autograd():
    model = _model()
    mask = _mask(model)
    with torch.no_grad():
        model[0].weight.mul_(mask["0.weight"])
    batches = [_data(1), _data(2, m=4)]
    lam = 0.03
    ops = LossOperators(model, nn.functional.cross_entropy, batches, mask=mask, weight_decay=lam)
    f, theta = _full_function(model, mask, batches)
    n = theta.numel()
    assert ops.n == n == ActiveParams(model, mask).n
    assert torch.allclose(ops.theta, theta, atol=0, rtol=0)

    g_ref = torch.autograd.functional.jacobian(f, theta) + lam * theta
    H_ref = torch.autograd.functional.hessian(f, theta, vectorize=True) + lam * torch.eye(n)
    K_ref = torch.autograd.functional.jacobian(
        lambda t: torch.autograd.functional.hessian(f, t, create_graph=True, vectorize=True),
        theta,
        vectorize=True,
    )
    assert abs(ops.loss() - float(f(theta))) < 1e-12
    assert torch.allclose(ops.grad(), g_ref, atol=1e-10)

    rng = torch.Generator().manual_seed(5)
    U = torch.randn(n, 3, generator=rng)
    V = torch.randn(n, 3, generator=rng)
    assert (ops.hvp(U[:, 0]) - H_ref @ U[:, 0]).abs().max() < 1e-8
    assert (ops.hvp_batch(U) - H_ref @ U).abs().max() < 1e-8
    K_uv = torch.einsum("iab,am,bm->im", K_ref, U, V)
    assert (ops.third(U[:, 0], V[:, 0]) - K_uv[:, 0]).abs().max() < 1e-8
    assert (ops.third_batch(U, V, chunk_size=2) - K_uv).abs().max() < 1e-8
    assert (ops.dense_hessian() - H_ref).abs().max() < 1e-8
    assert (ops.dense_third() - K_ref).abs().max() < 1e-8
    # The SciPy view of H.
    A = ops.linear_operator()
    u = U[:, 1].numpy()
    assert np.abs(A @ u - (H_ref @ U[:, 1]).numpy()).max() < 1e-8
    assert np.abs(A.matmat(U.numpy()) - (H_ref @ U).numpy()).max() < 1e-8


def test_third_matches_finite_differences_conv_batchnorm():
    """Conv + BatchNorm2d + ReLU + pooling: K[·, u, v] equals the central difference of the
    Hessian-vector product H(θ̄ ± εv)u (the fused batch-norm kernel would fail this)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 3, 3),
        nn.BatchNorm2d(3),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 4),
    ).double()
    x = torch.randn(5, 1, 6, 6)
    y = torch.randint(0, 4, (5,))
    ops = LossOperators(model, nn.functional.cross_entropy, (x, y))
    u, v = torch.randn(ops.n), torch.randn(ops.n)
    theta, eps = ops.theta.clone(), 1e-5
    ops.theta = theta + eps * v
    plus = ops.hvp(u)
    ops.theta = theta - eps * v
    minus = ops.hvp(u)
    ops.theta = theta
    k = ops.third(u, v)
    assert (k - (plus - minus) / (2 * eps)).abs().max() < 1e-6 * k.abs().max()


def test_running_stats_untouched_and_pruned_zero():
    model = _model()
    before = {k: b.clone() for k, b in model.named_buffers()}
    mask = _mask(model)
    ops = LossOperators(model, nn.functional.cross_entropy, _data(), mask=mask)
    ops.hvp(torch.ones(ops.n))
    for k, b in model.named_buffers():
        assert torch.equal(b, before[k]), k
    full = ops.active.unflatten(torch.arange(ops.n, dtype=torch.float64) + 1.0)
    assert torch.all(full["0.weight"][~mask["0.weight"]] == 0)
    assert torch.all(full["0.weight"][mask["0.weight"]] > 0)
    assert torch.equal(ops.active.flatten(full), torch.arange(ops.n, dtype=torch.float64) + 1.0)


def test_float32_close_to_float64():
    model = _model()
    ops64 = LossOperators(model, nn.functional.cross_entropy, _data())
    ops32 = LossOperators(model, nn.functional.cross_entropy, _data(), dtype=torch.float32)
    u = torch.linspace(-1, 1, ops64.n)
    assert ops32.hvp(u).dtype == torch.float32
    assert torch.allclose(ops32.hvp(u).double(), ops64.hvp(u), atol=1e-4)


def test_bad_inputs_one_line_errors():
    model = _model()
    with pytest.raises(UsageError, match="shape") as e:
        LossOperators(
            model,
            nn.functional.cross_entropy,
            _data(),
            mask={"0.weight": torch.ones(2, 2, dtype=torch.bool)},
        )
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="not trainable parameters"):
        ActiveParams(model, {"nope": torch.ones(1)})
    with pytest.raises(UsageError, match="no active parameters"):
        ActiveParams(nn.Linear(2, 2, bias=False), {"weight": torch.zeros(2, 2, dtype=torch.bool)})
    bad = _model()
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(UsageError, match="non-finite"):
        LossOperators(bad, nn.functional.cross_entropy, _data())
    with pytest.raises(UsageError, match="weight decay"):
        LossOperators(model, nn.functional.cross_entropy, _data(), weight_decay=-1.0)
    ops = LossOperators(model, nn.functional.cross_entropy, _data())
    with pytest.raises(UsageError, match="length n"):
        ops.hvp(torch.ones(ops.n + 1))
    with pytest.raises(UsageError, match="no batches"):
        LossOperators(model, nn.functional.cross_entropy, [])
