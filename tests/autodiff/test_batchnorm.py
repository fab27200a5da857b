"""The hand-derived batch-norm double backward (qcarleman.autodiff.batchnorm) against PyTorch's
own double backward of F.batch_norm, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qcarleman.autodiff.batchnorm import BatchNormTrain, fast_batch_norm

DEFAULT_DTYPE = torch.float64


def _first_and_second(bn, x, w, b, G, V, *, use):
    """(y, ∇, H·V) of L = Σ G·tanh(BN(x)) w.r.t. (x, γ, β): g depends on x, so every term of
    the double backward is exercised; ``use`` picks which cotangents reach the backward."""
    y = bn(x, w, b)
    grads = torch.autograd.grad((G * y.tanh()).sum(), (x, w, b), create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi, u in zip(grads, V, use) if u)
    hv = torch.autograd.grad(dot, (x, w, b), allow_unused=True)
    return y.detach(), [t.detach() for t in grads], hv


def _torch_bn(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True, eps=1e-3)


def _ours(x, w, b):
    return BatchNormTrain.apply(x, w, b, 1e-3)[0]


@pytest.mark.parametrize("shape", [(9, 3), (5, 2, 7), (4, 3, 5, 6), (2, 2, 3, 3, 2)])
@pytest.mark.parametrize(
    "use", [(True, True, True), (True, False, False), (False, True, True), (False, False, True)]
)
def test_double_backward_equals_pytorch(shape, use):
    g = torch.Generator().manual_seed(sum(shape))
    C = shape[1]
    x = (3 * torch.randn(*shape, generator=g) + 1).requires_grad_()
    w = torch.randn(C, generator=g).requires_grad_()
    b = torch.randn(C, generator=g).requires_grad_()
    G = torch.randn(*shape, generator=g)
    V = [torch.randn(*shape, generator=g), torch.randn(C, generator=g), torch.randn(C, generator=g)]
    ref = _first_and_second(_torch_bn, x, w, b, G, V, use=use)
    got = _first_and_second(_ours, x, w, b, G, V, use=use)
    assert torch.equal(ref[0], got[0])  # the same fused forward and backward kernels
    for r, o in zip(ref[1], got[1]):
        assert torch.equal(r, o)
    for r, o in zip(ref[2], got[2]):
        r = torch.zeros_like(o) if r is None else r
        o = torch.zeros_like(r) if o is None else o
        assert (r - o).abs().max() <= 1e-12 * max(1.0, float(r.abs().max())), (shape, use)


def test_mode_routes_only_train_mode_without_running_buffers():
    """Inside fast_batch_norm() a BN without running buffers (train mode) runs BatchNormTrain;
    one with running buffers, in eval mode, or without affine weights runs PyTorch's own."""
    x = torch.randn(6, 3, 4, requires_grad=True)
    plain = nn.BatchNorm1d(3, track_running_stats=False)
    buffered = nn.BatchNorm1d(3)
    no_affine = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    with fast_batch_norm():
        y_plain, y_buf, y_noaff = plain(x), buffered(x), no_affine(x)
        buffered.eval()
        y_eval = buffered(x)
    assert y_plain.grad_fn.name() == "BatchNormTrainBackward"
    for y in (y_buf, y_noaff, y_eval):
        assert "BatchNormTrain" not in y.grad_fn.name()
    assert torch.equal(y_plain, plain(x))
    assert int(buffered.num_batches_tracked) == 1  # the buffered one still updated its stats


def test_third_derivative_is_refused_not_wrong():
    """The derivative is differentiable once: asking for a graph through it (a third
    derivative) raises instead of silently dropping terms (third-order products use the
    elementary-op batch norm)."""
    x = torch.randn(5, 2, requires_grad=True)
    w, b = torch.ones(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    (gx,) = torch.autograd.grad((_ours(x, w, b).tanh()).sum(), x, create_graph=True)
    torch.autograd.grad((gx**2).sum(), x, retain_graph=True)  # second derivative: fine
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad((gx**2).sum(), x, create_graph=True)
