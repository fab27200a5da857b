"""The hand-written double backwards of qcarleman.autodiff.fast_hvp — batch norm
(autodiff/batchnorm.py) and convolutions on data (autodiff/conv.py) — against PyTorch's own
double backward, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qcarleman.autodiff.batchnorm import BatchNormTrain
from qcarleman.autodiff.fast_hvp import fast_hvp

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
    """Inside fast_hvp() a BN without running buffers (train mode) runs BatchNormTrain;
    one with running buffers, in eval mode, or without affine weights runs PyTorch's own."""
    x = torch.randn(6, 3, 4, requires_grad=True)
    plain = nn.BatchNorm1d(3, track_running_stats=False)
    buffered = nn.BatchNorm1d(3)
    no_affine = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    with fast_hvp():
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


def _conv_hvp(conv, x, w, b, G, V):
    """(y, ∇, H·V) of L = Σ G·tanh(conv(x)) w.r.t. (w, b) (x is data: no gradient)."""
    params = (w,) if b is None else (w, b)
    y = conv(x, w, b)
    grads = torch.autograd.grad((G * y.tanh()).sum(), params, create_graph=True)
    hv = torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, V)), params)
    return y.detach(), [t.detach() for t in grads], hv


@pytest.mark.parametrize(
    "dims, kw",
    [
        (1, dict(stride=2, padding=1)),
        (2, dict(padding=1)),
        (2, dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=2)),
        (3, dict(padding=1, bias=False)),
    ],
)
def test_data_input_conv_double_backward_equals_pytorch(dims, kw):
    """ConvDataInput (no input-gradient convolution in the derivative) gives PyTorch's values,
    gradient and Hessian-vector product."""
    kw = dict(kw)
    use_bias = kw.pop("bias", True)
    g = torch.Generator().manual_seed(dims)
    groups = kw.get("groups", 1)
    x = torch.randn(3, 4, *[6] * dims, generator=g)
    w = torch.randn(6, 4 // groups, *[3] * dims, generator=g).requires_grad_()
    b = torch.randn(6, generator=g).requires_grad_() if use_bias else None
    fn = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    ref_conv = lambda x, w, b: fn(x, w, b, **kw)  # noqa: E731

    def ours(x, w, b):
        with fast_hvp():
            y = fn(x, w, b, **kw)
        assert y.grad_fn.name() == "ConvDataInputBackward"
        return y

    G = torch.randn(ref_conv(x, w, b).shape, generator=g)
    V = [torch.randn(w.shape, generator=g)] + ([torch.randn(6, generator=g)] if use_bias else [])
    ref, got = _conv_hvp(ref_conv, x, w, b, G, V), _conv_hvp(ours, x, w, b, G, V)
    assert torch.allclose(ref[0], got[0], rtol=0, atol=0)
    for r, o in zip(ref[1] + list(ref[2]), got[1] + list(got[2])):
        assert (r - o).abs().max() <= 1e-12 * max(1.0, float(r.abs().max()))


def test_conv_routes_only_data_inputs_with_trainable_weights():
    """A convolution whose input needs a gradient, whose weight needs none, or with string
    padding runs PyTorch's own; only the bias's cotangent still gets its (broadcast) adjoint."""
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    x = torch.randn(2, 2, 5, 5)
    with fast_hvp():
        inner = conv(x.clone().requires_grad_())
        frozen = F.conv2d(x, conv.weight.detach(), conv.bias)
        same = F.conv2d(x, conv.weight, conv.bias, padding="same")
        routed = conv(x)
    for y in (inner, frozen, same):
        assert "ConvDataInput" not in y.grad_fn.name()
    assert routed.grad_fn.name() == "ConvDataInputBackward"
    # H·v in the bias direction alone: the double backward gets no weight cotangent
    G = torch.randn(routed.shape, dtype=torch.float64)

    def bias_hvp(y):
        _, gb = torch.autograd.grad(
            (G * y.tanh()).sum(), (conv.weight, conv.bias), create_graph=True
        )
        return torch.autograd.grad(gb.sum(), conv.bias)[0]

    assert torch.allclose(bias_hvp(routed), bias_hvp(conv(x)), rtol=1e-12, atol=1e-14)


def test_docstring_example_runs():
    import doctest

    import qcarleman.autodiff.fast_hvp as mod

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
