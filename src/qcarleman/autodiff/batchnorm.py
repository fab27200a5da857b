r"""Train-mode batch norm with a hand-derived double backward, for cached-graph HVPs.

A Hessian-vector product by reverse over reverse differentiates the batch-norm *backward*.
PyTorch's derivative of ``native_batch_norm_backward`` is composite: on the digits CNN of
``benchmarks/bench_spectrum.py`` it runs ≈ 70 element-wise multiplications per HVP and is half
the HVP's time. Here the first backward is PyTorch's fused kernel and its derivative is written
out once, as per-channel combinations of four full-size tensors.

Per channel, over the M elements of the batch and spatial axes (⟨·⟩ their mean; Ioffe &
Szegedy 2015, Alg. 1): μ = ⟨x⟩, r = (⟨(x − μ)²⟩ + ε)^{-1/2}, x̂ = (x − μ) r, y = γ x̂ + β.
The backward, given g = ∂L/∂y:

    dβ = M⟨g⟩,   dγ = M⟨g x̂⟩,   dx = γ r (g − ⟨g⟩ − x̂ ⟨g x̂⟩).

Its derivative, for cotangents A of dx and b_γ, b_β of dγ, dβ, with P = ⟨A x̂⟩, Q = ⟨g x̂⟩,
S = ⟨A g⟩ − ⟨A⟩⟨g⟩ (derived from ∂x̂_j/∂x_i = r(δ_ij − 1/M) − r x̂_i x̂_j / M and
∂r/∂x_i = −r² x̂_i / M):

    ∂/∂g = γr A + (b_γ − γr P) x̂ + (b_β − γr ⟨A⟩)
    ∂/∂γ = M r (S − P Q)
    ∂/∂x = (γr² (3PQ − S) − b_γ r Q) x̂ − γr² Q A + (b_γ r − γr² P) g
           + γr² (Q⟨A⟩ + P⟨g⟩) − b_γ r ⟨g⟩

Five reductions and five fused multiply-adds over full-size tensors. Checked against PyTorch's
double backward and the elementary-op :class:`~qcarleman.autodiff.evaluation.BatchStatNorm` in
float64 (``tests/autodiff/test_fast_hvp.py``). Second derivatives only: differentiating the
derivative (``create_graph=True`` through it) raises — PyTorch's ``once_differentiable`` would
not, when the gradient is taken with respect to chosen inputs — and third-order products use the
elementary-op copy.

Used through :func:`~qcarleman.autodiff.fast_hvp.fast_hvp`, which routes train-mode
``F.batch_norm`` calls without running buffers (the operators' fused copy,
:func:`~qcarleman.autodiff.evaluation.functional_copy`) to :class:`BatchNormTrain` while the
cached gradient graphs are built.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["BatchNormTrain", "BatchNormBackward"]


def _layout(x: Tensor) -> tuple[list[int], list[int], int]:
    """(reduction axes, per-channel broadcast shape, M elements per channel) of x (N, C, ...)."""
    axes = [0, *range(2, x.ndim)]
    return axes, [1, -1] + [1] * (x.ndim - 2), x.numel() // x.shape[1]


class BatchNormTrain(torch.autograd.Function):
    """y = γ x̂ + β with batch statistics (PyTorch's fused kernels forward and backward); the
    backward is itself a :class:`BatchNormBackward`, so a graph built with ``create_graph=True``
    has the module docstring's double backward."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Any:
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        return y, mean, invstd

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        x, weight, _, eps = inputs
        _, mean, invstd = output
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, invstd)

    @staticmethod
    def backward(ctx: Any, g: Tensor, *_: Any) -> Any:
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dw, db = BatchNormBackward.apply(g, x, weight, mean, invstd, ctx.eps)
        return dx, dw, db, None


class BatchNormBackward(torch.autograd.Function):
    """(dx, dγ, dβ) of train-mode batch norm from g = ∂L/∂y (fused kernel), differentiable once
    by the closed form of the module docstring (μ and r enter as functions of x)."""

    @staticmethod
    def forward(
        g: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor, eps: float
    ) -> Any:
        return torch.ops.aten.native_batch_norm_backward(
            g, x, weight, None, None, mean, invstd, True, eps, [True, True, True]
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        g, x, weight, mean, invstd, _ = inputs
        ctx.save_for_backward(g, x, weight, mean, invstd)

    @staticmethod
    def backward(ctx: Any, A: Tensor | None, b_w: Tensor | None, b_b: Tensor | None) -> Any:
        if torch.is_grad_enabled():  # create_graph=True: a third derivative was asked for
            raise RuntimeError(
                "the batch-norm double backward of qcarleman.autodiff.batchnorm is differentiable "
                "once; take third derivatives through the elementary-op BatchStatNorm"
            )
        g, x, weight, mean, invstd = ctx.saved_tensors
        axes, shape, M = _layout(x)
        r, gr = invstd, weight * invstd
        xh = torch.mul(x, r.view(shape)).sub_((mean * r).view(shape))  # x̂
        tmp = torch.empty_like(x)  # one buffer for the products under the reductions

        def mean_of_product(a: Tensor, b: Tensor) -> Tensor:
            return torch.mul(a, b, out=tmp).mean(axes)

        mg, Q = g.mean(axes), mean_of_product(g, xh)
        zero = torch.zeros_like(r)
        if A is None:
            mA = P = S = zero
        else:
            mA, P = A.mean(axes), mean_of_product(A, xh)
            S = mean_of_product(A, g) - mA * mg
        bw = zero if b_w is None else b_w
        bb = zero if b_b is None else b_b
        gr2 = gr * r
        # ∂/∂g = γr A + (b_γ − γr P) x̂ + (b_β − γr ⟨A⟩); full-size operands first (a broadcast
        # first operand is a slow path of addcmul), in place after the first allocation
        d_g = torch.mul(xh, (bw - gr * P).view(shape)).add_((bb - gr * mA).view(shape))
        # ∂/∂x = c_x x̂ + c_A A + c_g g + c_0
        c_x = gr2 * (3 * P * Q - S) - bw * r * Q
        c_0 = gr2 * (Q * mA + P * mg) - bw * r * mg
        d_x = torch.mul(xh, c_x.view(shape)).add_(c_0.view(shape))
        d_x.addcmul_(g, (bw * r - gr2 * P).view(shape))
        if A is not None:
            d_g.addcmul_(A, gr.view(shape))
            d_x.addcmul_(A, (-gr2 * Q).view(shape))
        d_w = M * r * (S - P * Q)
        return d_g, d_x, d_w, None, None, None
