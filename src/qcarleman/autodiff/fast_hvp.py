"""Cheaper second derivatives for the cached gradient graphs: a ``TorchFunctionMode`` that, while
the graphs are built, routes two layers to functions with hand-written double backwards.

* Train-mode ``F.batch_norm`` without running buffers, with affine weights →
  :class:`~qcarleman.autodiff.batchnorm.BatchNormTrain` (closed-form derivative of the
  batch-norm backward instead of PyTorch's composite one).
* ``F.conv1d/2d/3d`` whose input needs no gradient (a first layer, on data) while its weight
  (and bias, if any) do → :class:`~qcarleman.autodiff.conv.ConvDataInput` (the derivative of
  the weight gradient skips PyTorch's unneeded input-gradient convolution).

Every other call runs unchanged. Values and first derivatives are PyTorch's own kernels; second
derivatives agree with PyTorch's to rounding (``tests/autodiff/test_fast_hvp.py``); a third
derivative through either raises. Measured on the digits CNN of ``benchmarks/bench_spectrum.py``:
one HVP 1.2 – 1.5× faster than PyHessian's, depending on the allocator (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .batchnorm import BatchNormTrain
from .conv import ConvDataInput

__all__ = ["fast_hvp"]

_CONVS = (F.conv1d, F.conv2d, F.conv3d)


def _batch_norm(  # noqa: PLR0913 — F.batch_norm's signature
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor | None:
    """BatchNormTrain's output if the call qualifies (module docstring), else None."""
    if not (training and running_mean is None and running_var is None and input.ndim >= 2):
        return None
    if weight is None or bias is None:
        return None
    return BatchNormTrain.apply(input, weight, bias, float(eps))[0]


def _conv(  # noqa: PLR0913 — F.conv2d's signature
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor | None:
    """ConvDataInput's output if the call qualifies (module docstring), else None."""
    if input.requires_grad or not weight.requires_grad or isinstance(padding, str):
        return None
    if bias is not None and not bias.requires_grad:
        return None
    k = input.ndim - 2

    def each(v: Any) -> list[int]:
        return [int(v)] * k if isinstance(v, int) else [int(i) for i in v]

    return ConvDataInput.apply(
        input, weight, bias, each(stride), each(padding), each(dilation), int(groups)
    )


class _FastHVP(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = None
        if func is F.batch_norm:
            out = _batch_norm(*args, **kwargs)
        elif func in _CONVS:
            out = _conv(*args, **kwargs)
        return func(*args, **kwargs) if out is None else out


def fast_hvp() -> TorchFunctionMode:
    """Context in which batch norm and data-input convolutions get the cheaper double backward
    (module docstring); values unchanged.

    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(3, track_running_stats=False).double()
    >>> x = torch.randn(8, 3, dtype=torch.double)
    >>> with fast_hvp():
    ...     y = bn(x)
    >>> torch.allclose(y, bn(x)), y.grad_fn.name()
    (True, 'BatchNormTrainBackward')
    """
    return _FastHVP()
