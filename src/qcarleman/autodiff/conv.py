r"""Convolution of an input that needs no gradient (the first layer, on data), with a backward
whose derivative skips the input gradient, for cached-graph HVPs.

Reverse over reverse through PyTorch's convolution differentiates ``convolution_backward`` by
``_convolution_double_backward``, which computes the gradient with respect to the layer's
input, a transposed convolution, even where the input is data and nobody asks for it (measured:
PyTorch 2.13, CPU; 11% of one HVP of the digits CNN). For y = conv(x, W) + b with x constant,
the backward is (dW, db) = (conv_backward_weight(g, x), Σ g), linear in g and independent of W,
so its derivative for cotangents (G_W, G_b) is the adjoint alone:

    ∂/∂g ⟨G_W, dW⟩ + ⟨G_b, db⟩ = conv(x, G_W) + G_b       (one convolution)

and nothing with respect to W. Checked against PyTorch's double backward in float64
(``tests/autodiff/test_fast_hvp.py``). Used through :func:`~qcarleman.autodiff.fast_hvp.fast_hvp`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["ConvDataInput", "ConvWeightGrad"]


class ConvDataInput(torch.autograd.Function):
    """y = conv(x, W) + b (PyTorch's kernel) for an input x that needs no gradient; the backward
    is a :class:`ConvWeightGrad`, so a graph built with ``create_graph=True`` has its cheap
    derivative (module docstring)."""

    @staticmethod
    def forward(  # noqa: PLR0913 — torch.convolution's arguments
        x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, groups: int
    ) -> Tensor:
        return torch.convolution(
            x, weight, bias, stride, padding, dilation, False, [0] * len(stride), groups
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, weight, bias, stride, padding, dilation, groups = inputs
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        x, weight = ctx.saved_tensors
        dw, db = ConvWeightGrad.apply(g, x, weight, ctx.conv, ctx.has_bias)
        return None, dw, db, None, None, None, None


class ConvWeightGrad(torch.autograd.Function):
    """(dW, db) of y = conv(x, W) + b from g = ∂L/∂y (PyTorch's kernel), differentiable once
    with respect to g by one convolution (module docstring)."""

    @staticmethod
    def forward(g: Tensor, x: Tensor, weight: Tensor, conv: tuple, has_bias: bool) -> Any:
        stride, padding, dilation, groups = conv
        _, dw, db = torch.ops.aten.convolution_backward(
            g,
            x,
            weight,
            [weight.shape[0]] if has_bias else None,
            stride,
            padding,
            dilation,
            False,
            [0] * len(stride),
            groups,
            [False, True, has_bias],
        )
        return dw, db

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        g, x, _, conv, has_bias = inputs
        ctx.save_for_backward(x)
        ctx.conv = conv
        ctx.g_shape, ctx.bias_shape = g.shape, [1, -1] + [1] * (g.ndim - 2)

    @staticmethod
    def backward(ctx: Any, G_w: Tensor | None, G_b: Tensor | None) -> Any:
        if torch.is_grad_enabled():  # create_graph=True: a third derivative was asked for
            raise RuntimeError(
                "the convolution double backward of qcarleman.autodiff.conv is differentiable "
                "once; take third derivatives outside fast_hvp()"
            )
        (x,) = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        if G_w is None:  # db = Σ g alone: its adjoint broadcasts G_b over the output
            d_g = None if G_b is None else G_b.view(ctx.bias_shape).expand(ctx.g_shape).clone()
            return d_g, None, None, None, None
        d_g = torch.convolution(
            x, G_w, G_b, stride, padding, dilation, False, [0] * len(stride), groups
        )
        return d_g, None, None, None, None
