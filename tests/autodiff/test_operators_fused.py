"""HVPs through PyTorch's fused batch norm against the elementary-op BatchStatNorm (float64),
and the operators on the ``meta`` / explicit device (issue 14)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import grad, jvp

from qcarleman.autodiff.evaluation import BatchStatNorm
from qcarleman.autodiff.operators import LossOperators

DEFAULT_DTYPE = torch.float64


def _bn_cnn() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.BatchNorm1d(8),
        nn.Tanh(),
        nn.Linear(8, 3),
    )


def _batches():
    g = torch.Generator().manual_seed(4)
    return [
        (torch.randn(10, 2, 6, 6, generator=g), torch.randint(0, 3, (10,), generator=g)),
        (torch.randn(7, 2, 6, 6, generator=g), torch.randint(0, 3, (7,), generator=g)),
    ]


@pytest.mark.parametrize("mode", ["functional", "cached"])
def test_fused_hvp_equals_elementary_batchnorm(mode):
    """H u by double backward through the fused kernel equals H u through BatchStatNorm."""
    model = _bn_cnn()
    mask = {"0.weight": torch.rand(4, 2, 3, 3) > 0.4}
    ops = LossOperators(
        model, nn.CrossEntropyLoss(), _batches(), mask=mask, weight_decay=0.01, hvp_mode=mode
    )
    assert not any(isinstance(m, BatchStatNorm) for m in ops.module.modules())
    assert any(isinstance(m, BatchStatNorm) for m in ops._elementary().modules())
    U = torch.randn(ops.n, 3, generator=torch.Generator().manual_seed(5))

    def hvp_elementary(u):  # forward-over-reverse through the elementary-op copy
        return (
            ops._sum(
                lambda b: jvp(lambda t: grad(ops.batch_loss)(t, b, True), (ops.theta,), (u,))[1]
            )
            + 0.01 * u
        )

    for k in range(3):
        ref = hvp_elementary(U[:, k])
        assert (ops.hvp(U[:, k]) - ref).abs().max() <= 1e-10 * ref.abs().max()
    ref = torch.stack([hvp_elementary(U[:, k]) for k in range(3)], 1)
    assert (ops.hvp_batch(U) - ref).abs().max() <= 1e-10 * ref.abs().max()
    # vmap outside the jvp through the fused kernel is exact; PyTorch 2.13's jvp of a *jacrev*
    # (vmap inside) through training-mode batch norm is not: it gets the rows of the batch-norm
    # weights wrong (see the next test), which is why curvlinops' HVP differs on BN models.
    assert (ops.hvp_batch(U, vmapped=True) - ref).abs().max() <= 1e-10 * ref.abs().max()
    # the loss and gradient through both copies agree too
    for b in ops.batches:
        assert abs(ops.batch_loss(ops.theta, b) - ops.batch_loss(ops.theta, b, True)) < 1e-12


def test_why_curvlinops_differs_on_batch_norm_models():
    """The 1e-2 gap between curvlinops' HVP and every other HVP on the BN CNN of
    benchmarks/bench_spectrum.py (RESULTS.md) is PyTorch's forward-mode derivative of a
    ``jacrev`` (a vmapped vjp) through training-mode batch norm: ``jvp(jacrev(L))`` (curvlinops'
    product) misses part of the batch-norm weight rows, ``jvp(grad(L))`` (our functional mode)
    and double backward (our cached mode) agree. If a PyTorch release fixes it, this test says
    so (the skip), and the RESULTS.md note can go."""
    from torch.func import jacrev

    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, 3, generator=g)
    P = tuple(torch.randn(*s, generator=g) for s in ((3, 3), (3,), (3,)))
    T = tuple(torch.randn(p.shape, generator=g) for p in P)

    def L(a, w, b):
        return torch.nn.functional.batch_norm(X @ a, None, None, w, b, training=True).pow(3).sum()

    Pr = [p.clone().requires_grad_() for p in P]
    gr = torch.autograd.grad(L(*Pr), Pr, create_graph=True)
    exact = torch.autograd.grad(sum((a * t).sum() for a, t in zip(gr, T)), Pr)
    fwd = jvp(grad(L, argnums=(0, 1, 2)), P, T)[1]
    assert all(torch.allclose(f, e, rtol=1e-10, atol=1e-12) for f, e in zip(fwd, exact))
    via_jacrev = jvp(jacrev(L, argnums=(0, 1, 2)), P, T)[1]
    if torch.allclose(via_jacrev[1], exact[1], rtol=1e-8):
        pytest.skip(f"torch {torch.__version__} fixed jvp(jacrev) through batch norm")
    assert torch.allclose(via_jacrev[0], exact[0], rtol=1e-10)  # only the weight rows differ
    assert torch.allclose(via_jacrev[2], exact[2], rtol=1e-10)


def test_running_buffers_of_the_users_model_untouched():
    model = _bn_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ops = LossOperators(model, nn.CrossEntropyLoss(), _batches(), hvp_mode="cached")
    ops.hvp(torch.ones(ops.n))
    ops.third(torch.ones(ops.n), torch.ones(ops.n))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.training


def test_operators_follow_the_device_meta():
    """Every tensor lives on the requested device: the meta device runs the same code without
    data (shapes and devices only)."""
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2))
    x, y = torch.randn(6, 4), torch.randint(0, 2, (6,))
    mask = {"0.weight": torch.rand(5, 4) > 0.5}
    ops = LossOperators(model, nn.CrossEntropyLoss(), (x, y), mask=mask, device="meta")
    assert ops.theta.device.type == "meta"
    assert all(t.device.type == "meta" for b in ops.batches for t in b)
    u = torch.ones(ops.n)
    h = ops.hvp(u)
    k = ops.third(u, u)
    assert h.device.type == "meta" and h.shape == (ops.n,)
    assert k.device.type == "meta" and k.shape == (ops.n,)
    assert next(model.parameters()).device.type == "cpu"  # the user's model stays put


def test_unknown_or_absent_device_is_a_one_line_usage_error():
    from qcarleman.errors import UsageError

    model = nn.Sequential(nn.Linear(3, 2))
    data = (torch.randn(4, 3), torch.randint(0, 2, (4,)))
    with pytest.raises(UsageError, match="unknown"):
        LossOperators(model, nn.CrossEntropyLoss(), data, device="warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            LossOperators(model, nn.CrossEntropyLoss(), data, device="cuda")


def test_gdmap_and_lowrank_on_an_explicit_device():
    """GDMap(device=...) keeps its operators and the low-rank factors there (cpu here; the same
    code runs on cuda), with the same trajectory as the default."""
    from qcarleman.autodiff.gdmap import GDMap
    from qcarleman.autodiff.lowrank import emulate_order2

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
    a = GDMap(model, nn.CrossEntropyLoss(), data, 0.1)
    b = GDMap(model, nn.CrossEntropyLoss(), data, 0.1, device="cpu")
    ra, rb = emulate_order2(a, a.initial_state(), 4), emulate_order2(b, b.initial_state(), 4)
    assert rb.trajectory.device == b.device == torch.device("cpu")
    assert torch.equal(ra.trajectory, rb.trajectory)


def test_cached_third_order_by_reverse_mode_equals_forward_over_reverse():
    """K[·, u, v] by reverse over reverse through one cached gradient graph (elementary-op batch
    norm) equals the vmapped forward-over-reverse-over-reverse product, in float64."""
    model = _bn_cnn()
    mask = {"0.weight": torch.rand(4, 2, 3, 3) > 0.4}
    args = (model, nn.CrossEntropyLoss(), _batches())
    fun = LossOperators(*args, mask=mask)
    fast = LossOperators(*args, mask=mask, hvp_mode="cached")
    g = torch.Generator().manual_seed(6)
    U, V = torch.randn(fun.n, 3, generator=g), torch.randn(fun.n, 3, generator=g)
    ref = fun.third_batch(U, V)
    scale = ref.abs().max()
    assert (fast.third_batch(U, V) - ref).abs().max() <= 1e-10 * scale
    assert (fast.third(U[:, 1], V[:, 1]) - ref[:, 1]).abs().max() <= 1e-10 * scale
    assert fast._graphs3 is not None  # the cached path ran
    tiny = LossOperators(*args, mask=mask, hvp_mode="cached", memory_limit=1)
    assert (tiny.third(U[:, 0], V[:, 0]) - ref[:, 0]).abs().max() <= 1e-10 * scale
    assert tiny._graphs3 is None  # fell back to the functional path
