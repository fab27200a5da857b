r"""Memory planning for derivative products: predict, then split the batch instead of failing.

The intermediates of a product are the tensors autograd saves while building it. They grow
linearly with the number of samples (activations and their derivatives), so they are measured
on slices of 2 and 4 samples of the first batch (a saved-tensor hook sums the storages) and
fitted by a line, fixed bytes (weights, θ̄, the gradient) plus bytes per sample:

* ``"hvp"`` — the gradient graph ∇L_b(θ̄) built with ``create_graph=True`` (what the cached HVP
  keeps; one reverse pass per product, :class:`~.operators.LossOperators`), through the fused
  batch norm;
* ``"third"`` — that graph for the elementary-op copy plus the graph of H_b(θ)u built from it
  (reverse over reverse: K[·, u, v] = ∂(vᵀH(θ)u)/∂θ), the intermediates of a third-order product.

:func:`plan_products` turns the prediction into a :class:`MemoryPlan`: the largest micro-batch
whose product fits in the memory limit (:func:`qcarleman.errors.memory_limit`, half the RAM by
default), and :func:`micro_batched` returns operators on those micro-batches. :func:`plan_for`
picks the binding plan of several products: spectra
(:func:`qcarleman.analysis.spectrum.model_spectrum`) and the GD map (:class:`~.gdmap.GDMap`,
hence emulation) consult it before their first product and report it. Because the
operators' loss is the size-weighted mean L = Σ_k |B_k|/|B| L_{B_k} over its batches, every
product on the micro-batches is the weighted *sum of per-micro-batch products* — exactly the
full-batch product when the loss is a mean over samples and the model has no batch norm. With
batch norm each micro-batch is normalized by its own statistics (as in gradient accumulation):
the products are those of the mean of the micro-batch losses, not of the full-batch loss; the
plan says so (``batchnorm``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.func import functional_call

from ..errors import UsageError, format_bytes
from ..errors import memory_limit as _memory_limit
from .evaluation import math_attention
from .operators import LossOperators

__all__ = ["MemoryPlan", "predict_bytes", "plan_products", "plan_for", "micro_batched"]

PRODUCTS = ("hvp", "third")


@dataclass(frozen=True)
class MemoryPlan:
    """How a product is run within the memory limit (module docstring)."""

    product: str
    samples: int  # samples in all batches of the operators
    bytes_per_sample: float  # measured on a slice, per sample
    predicted_bytes: float  # intermediates of one product on the largest batch as given
    limit: float
    micro_batch: int  # samples per micro-batch (the largest batch when it fits)
    micro_batches: int  # micro-batches in all
    batchnorm: bool

    @property
    def split(self) -> bool:
        """True when the batches are split into micro-batches."""
        return self.micro_batches > self.batches_given

    batches_given: int = 1

    def describe(self) -> str:
        """One line for logs and reports."""
        what = (
            f"{self.product}: {format_bytes(self.predicted_bytes)} predicted per product "
            f"({format_bytes(self.bytes_per_sample)}/sample), limit {format_bytes(self.limit)}"
        )
        if not self.split:
            return what + "; fits"
        note = " (batch norm: each micro-batch uses its own statistics)" if self.batchnorm else ""
        return (
            f"{what}; {self.micro_batches} micro-batches of ≤ {self.micro_batch} samples, "
            f"products summed{note}"
        )

    def to_json(self) -> dict:
        """Plain JSON form (bytes as ``{"value", "kind"}``)."""
        return {
            "product": self.product,
            "samples": self.samples,
            "bytes_per_sample": {"value": self.bytes_per_sample, "kind": "estimated"},
            "predicted_bytes": {"value": self.predicted_bytes, "kind": "estimated"},
            "limit_bytes": {"value": self.limit, "kind": "assumed"},
            "micro_batch": self.micro_batch,
            "micro_batches": self.micro_batches,
            "batchnorm": self.batchnorm,
            "plan": self.describe(),
        }


def _saved_bytes(ops: LossOperators, product: str, m: int) -> float:
    """Bytes autograd saves building one ``product`` on the first m samples of batch 1."""
    x, y = ops.batches[0]
    x, y = x[:m], y[:m]
    saved: dict[int, int] = {}
    alive: list[torch.Tensor] = []  # no saved storage is freed and its address reused while
    # measuring, so the sum is the same on every run (reports stay reproducible)

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        saved[st.data_ptr()] = st.nbytes()
        alive.append(t)
        return t

    module = ops.module if product == "hvp" else ops._elementary()
    with torch.enable_grad(), saved_tensors_hooks(pack, lambda t: t):
        th = ops.theta.detach().clone().requires_grad_(True)
        with math_attention():  # as the operators: attention with exact higher derivatives
            out = functional_call(module, ops.active.unflatten(th), (x,))
        (g,) = torch.autograd.grad(ops.loss_fn(out, y), th, create_graph=True)
        if product == "third" and g.requires_grad:
            torch.autograd.grad(g, th, torch.ones_like(th), create_graph=True, allow_unused=True)
    return float(sum(saved.values()) + 2 * ops.theta.nbytes)


def predict_bytes(ops: LossOperators, product: str = "hvp") -> tuple[float, float]:
    """(fixed bytes, bytes per sample) of one ``product`` ("hvp" or "third"): the saved
    intermediates measured on the first 2 and 4 samples of batch 1 (fewer if the batch is
    smaller) and fitted by a line (module docstring)."""
    if product not in PRODUCTS:
        raise UsageError(f"product {product!r} is unknown; use one of {', '.join(PRODUCTS)}")
    B = int(ops.batches[0][0].shape[0])
    m1, m2 = min(2, B), min(4, B)
    b1 = _saved_bytes(ops, product, m1)
    if m2 == m1:
        return 0.0, b1 / m1
    b2 = _saved_bytes(ops, product, m2)
    per = max((b2 - b1) / (m2 - m1), b2 / m2 * 1e-3)
    return max(b1 - per * m1, 0.0), per


def plan_products(
    ops: LossOperators,
    product: str = "hvp",
    *,
    memory_limit: int | str | None = None,
    fraction: float = 0.5,
) -> MemoryPlan:
    """The micro-batch size at which one ``product`` fits in ``fraction`` of the memory limit
    (the rest is for the model copies, Lanczos bases and factors)."""
    if not 0 < fraction <= 1:
        raise UsageError(f"fraction = {fraction} is invalid; use 0 < fraction ≤ 1")
    fixed, per = predict_bytes(ops, product)
    sizes = [int(x.shape[0]) for x, _ in ops.batches]
    limit = float(_memory_limit(memory_limit))
    budget = fraction * limit
    largest = max(sizes)
    fits = fixed + per * largest <= budget
    micro = largest if fits else max(1, int((budget - fixed) // per))
    if fixed + per * micro > budget:
        raise UsageError(
            f"one sample's {product} needs {format_bytes(per)}, over the memory budget "
            f"{format_bytes(budget)}; raise --memory-limit or use a smaller model"
        )
    bn = _has_batchnorm(ops.module)
    if bn and micro < 2 and largest >= 2:
        micro = 2  # batch norm needs two samples per micro-batch
    count = sum(
        max(1, min(math.ceil(s / micro), s // 2)) if bn else math.ceil(s / micro) for s in sizes
    )
    return MemoryPlan(
        product=product,
        samples=sum(sizes),
        bytes_per_sample=per,
        predicted_bytes=fixed + per * largest,
        limit=limit,
        micro_batch=min(micro, largest),
        micro_batches=count,
        batchnorm=bn,
        batches_given=len(sizes),
    )


def plan_for(
    ops: LossOperators,
    products: tuple[str, ...] = ("hvp",),
    *,
    memory_limit: int | str | None = None,
) -> MemoryPlan | None:
    """The binding plan of ``products`` (the smallest micro-batch; on a tie the dearest product),
    to apply with :func:`micro_batched`; None on the meta device (shapes only, nothing to
    measure)."""
    if ops.device.type == "meta":
        return None
    plans = [plan_products(ops, p, memory_limit=memory_limit) for p in products]
    return min(plans, key=lambda p: (p.micro_batch, -p.predicted_bytes))


def micro_batched(ops: LossOperators, plan: MemoryPlan | None) -> LossOperators:
    """The same operators on the micro-batches of ``plan`` (``ops`` itself when nothing is
    split): products are weighted sums of per-micro-batch products (module docstring)."""
    if plan is None or not plan.split:
        return ops
    parts = []
    for x, y in ops.batches:
        k = math.ceil(x.shape[0] / plan.micro_batch)
        if plan.batchnorm:  # balanced pieces of ≥ 2 samples (batch statistics)
            k = max(1, min(k, x.shape[0] // 2))
        parts += list(zip(x.tensor_split(k), y.tensor_split(k)))
    return ops.with_batches(parts)


def _has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
