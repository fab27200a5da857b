r"""Derivative operators of a PyTorch loss on the active set S (ALGORITHM.md §1).

For parameters θ ∈ R^P with a pruning mask m, the active set is S = {i : m_i = 1}, n = |S|, and
every operator here acts on flat vectors of length n (the coordinates θ_S):

* :class:`ActiveParams` — the flat view of θ_S (gather / scatter between a model's parameter
  tensors and a length-n vector). Pruned entries are exactly 0 in every scattered tensor.
* :class:`LossOperators` — at an expansion point θ̄ (ALGORITHM.md §1):

  - ``grad()``       g = ∇L(θ̄) + λθ̄,
  - ``hvp(u)``       H u with H = ∇²L(θ̄) + λI (forward-over-reverse, ``jvp(grad(L))``),
  - ``third(u, v)``  K[·, u, v] = ∇_θ(uᵀ H(θ) v) at θ̄, the third-order directional derivative
    (``jvp`` of the Hessian-vector product in direction v; the quadratic weight-decay term adds 0),
  - ``hvp_third_sum(U, s)``  (H U, Σ_k s_k K[·, u_k, u_k]) in one sweep: the first pass of each
    third-order product is the HVP of its column (the jvp's primal, or the value of the reverse
    pass built with its graph), and the weighted sum is accumulated without a block of columns
    (the order-2 emulation, :mod:`qcarleman.autodiff.lowrank`),
  - dense H and K for tiny models (memory predicted first), and a SciPy ``LinearOperator`` for H.

  **HVP modes.** ``hvp_mode="functional"`` (default) builds each product from scratch by
  forward-over-reverse autodiff (``jvp`` of ``grad``; usable under ``torch.func`` transforms).
  ``hvp_mode="cached"`` is for many products at the same θ̄ (Lanczos, SLQ): per batch, the
  gradient ∇L_b(θ̄) is built once with its graph (``torch.autograd.grad(create_graph=True)`` on
  one leaf per parameter tensor's segment of θ_S) and every product is one reverse pass through
  it,
  H_b u = ∂(∇L_b · u)/∂θ = ``autograd.grad(∇L_b, θ, grad_outputs=u, retain_graph=True)``
  (Pearlmutter 1994; H symmetric, so this vjp equals the jvp of the functional mode). The graph is
  valid for every product because the private model copy is a pure function of θ (batch
  statistics, no buffer updates, dropout off) and the mask enters through the flat view (pruned
  entries are constants 0). Memory: the graph of batch 1 is measured as the bytes of the tensors
  autograd saves while building it (forward and the differentiable backward), scaled to all
  batches by sample count; if that exceeds the memory limit (:func:`qcarleman.errors.check_memory`)
  the operators fall back to the functional mode (``hvp_path`` tells which one ran).
  ``release_graphs()`` drops the graphs (the emulation does so after each SGD step); the next
  cached product rebuilds them.

  L is the loss of the given batches: with several batches, the batch-size weighted mean
  L = Σ_b |B_b| L_b / Σ_b |B_b| (the full-batch loss when ``loss_fn`` averages over samples).
  Weight decay enters as λ/2·‖θ_S‖² (ALGORITHM.md §1).

**Batch norm and dropout.** The operators evaluate private copies of the model in *train mode*
with *batch statistics*, exactly like the trainer's forward pass during a training step, but the
running buffers are never updated (the user's model is untouched, and the loss is a pure function
of θ). Two copies, built by :func:`functional_copy`:

* ``fused`` (loss, g, H·u — spectra, κ, order-1 emulation): PyTorch's own batch-norm layers with
  their running buffers removed (``track_running_stats=False``), so every forward uses batch
  statistics through the fused kernel. Double backward (and forward-over-reverse) through the
  fused kernel is exact for *second* derivatives; ``tests/test_operators.py`` checks the HVP
  against the elementary-op copy to 1e-10 in float64. While the cached gradient graphs are
  built, :func:`~qcarleman.autodiff.fast_hvp.fast_hvp` swaps PyTorch's composite
  derivative of the batch-norm backward for a closed form, and skips the unneeded input-gradient
  convolution of a first layer on data (same values, 1e-12 in float64; the digits CNN's HVP
  1.2 – 1.5× faster than PyHessian's, benchmarks/RESULTS.md).
* ``elementary`` (third-order products K[·, u, v] only): each batch-norm module replaced by
  :class:`BatchStatNorm`, the same normalization written with elementary tensor ops. Needed
  because PyTorch's fused kernel has inexact *third* derivatives (nested forward/reverse autodiff
  through ``native_batch_norm_backward`` disagrees with finite differences of the HVP;
  ``tests/test_operators.py`` checks the replacement against finite differences). Built lazily,
  only when a third-order product is taken.

Dropout modules are switched to eval mode (disabled), and so is the dropout inside
``nn.MultiheadAttention`` and between ``nn.LSTM``/``nn.GRU`` layers: the loss must be
deterministic for its derivatives to exist. Attention runs through PyTorch's math kernel, and
``params`` restricts the free coordinates to some tensors (:mod:`qcarleman.autodiff.evaluation`).

**Device.** Every tensor (θ̄, batches, the model copies, products) lives on ``device`` (default:
the device of the model's first parameter); inputs are moved there once, at construction.

Only this module (and the rest of ``qcarleman.training``) imports torch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.func import functional_call, grad, jvp, vjp, vmap

from ..errors import MemoryLimitError, UsageError, check_memory
from .active import ActiveParams, as_batches, resolve_device
from .evaluation import evaluation_note, functional_copy, math_attention
from .fast_hvp import fast_hvp

__all__ = ["LossOperators", "HVP_MODES"]

#: HVP modes of :class:`LossOperators` (module docstring).
HVP_MODES = ("functional", "cached")

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor]
#: A cached gradient graph: segment leaves of θ̄, the gradients that depend on θ, their indices.
_Graph = tuple[list[Tensor], list[Tensor], list[int]]


class LossOperators:
    r"""g, H·u, K[·, u, v] of a loss at θ̄ on the active set (ALGORITHM.md §1).

    Parameters
    ----------
    model, loss_fn:
        The network and ``loss_fn(outputs, targets) -> scalar``.
    batches:
        (x, y) pairs, a DataLoader, or one (x, y) pair; L is their size-weighted mean loss.
    mask, include_pruned:
        The active set (see :class:`ActiveParams`).
    weight_decay:
        λ ≥ 0 (as λ/2·‖θ_S‖²): g gets +λθ̄ and H gets +λI.
    dtype:
        torch.float64 (default, for exactness) or torch.float32.
    theta:
        θ̄_S, a flat vector of length n; default: the model's current parameters.
    hvp_mode:
        "functional" (default: each product from scratch) or "cached" (gradient graphs kept
        for repeated products; falls back to "functional" when they do not fit — module
        docstring).
    memory_limit:
        Limit for the cached graphs (default: :func:`qcarleman.errors.memory_limit`).
    params:
        Free parameter tensors (names or regular expressions; see :class:`ActiveParams`).
    device:
        Where every tensor lives (default: the device of the model's parameters).
    """

    def __init__(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        batches: Iterable[Sequence[Tensor]] | Sequence[Tensor],
        mask: Mapping[str, Tensor] | None = None,
        weight_decay: float = 0.0,
        dtype: torch.dtype = torch.float64,
        include_pruned: bool = False,
        theta: Tensor | None = None,
        hvp_mode: str = "functional",
        memory_limit: int | str | None = None,
        params: str | Iterable[str] | None = None,
        device: str | torch.device | None = None,
    ):
        if dtype not in (torch.float32, torch.float64):
            raise UsageError(f"dtype {dtype} is not supported; use torch.float64 or torch.float32")
        if hvp_mode not in HVP_MODES:
            raise UsageError(f"hvp_mode {hvp_mode!r} is unknown; use one of {', '.join(HVP_MODES)}")
        self.hvp_mode = hvp_mode
        self.memory_limit = memory_limit
        if not np.isfinite(weight_decay) or weight_decay < 0:
            raise UsageError(f"weight decay λ = {weight_decay} is invalid; use a finite λ ≥ 0")
        self.device = resolve_device(device, model)
        self.active = ActiveParams(model, mask, include_pruned, params, device=self.device)
        self.n = self.active.n
        #: How the model is evaluated (:func:`evaluation_note`).
        self.evaluation = evaluation_note(model)
        self.dtype = dtype
        self.weight_decay = float(weight_decay)
        self.loss_fn = loss_fn
        self.module = functional_copy(model, dtype, fused=True, device=self.device)
        self._module3: nn.Module | None = None  # elementary-op copy, for third-order products
        theta = self.active.flatten(model) if theta is None else torch.as_tensor(theta)
        if theta.shape != (self.n,):
            raise UsageError(
                f"θ̄ has shape {tuple(theta.shape)} but the active set has n = {self.n}; "
                "pass a flat vector of the active parameters"
            )
        if theta.device.type != "meta" and not torch.isfinite(theta).all():
            raise UsageError(
                "the parameters θ̄ have non-finite entries (NaN or inf); "
                "load a checkpoint from before training diverged"
            )
        self.theta = theta.detach().to(dtype=dtype, device=self.device).clone()
        self._set_batches(batches)

    def _set_batches(self, batches) -> None:
        self.batches = as_batches(batches, self.dtype, self.device)
        sizes = np.array([x.shape[0] for x, _ in self.batches], dtype=float)
        self._weights = (sizes / sizes.sum()).tolist()
        self._grad: Tensor | None = None
        self._graphs: list[_Graph | None] | None = None
        #: Predicted bytes of the cached gradient graphs (None until built or in functional mode).
        self.graph_bytes: float | None = None
        self._graph_fallback = False
        self._graphs3: list[_Graph | None] | None = None  # elementary-op graphs (third order)
        self._graph3_fallback = False

    def release_graphs(self) -> None:
        """Drop the cached gradient graphs (both copies); the next cached product rebuilds them.
        For callers done with these batches (the order-2 emulation after each SGD step)."""
        self._graphs = None
        self._graphs3 = None

    @property
    def holds_graphs(self) -> bool:
        """True while cached gradient graphs (fused or elementary-op) are alive."""
        return self._graphs is not None or self._graphs3 is not None

    def with_batches(self, batches) -> LossOperators:
        """The same model, mask, λ and θ̄ on other batches (shares the model copy)."""
        new = copy.copy(self)
        new._set_batches(batches)
        return new

    # -- the loss as a pure function of θ_S ------------------------------------------------
    def batch_loss(self, theta: Tensor, batch: Batch, third: bool = False) -> Tensor:
        """L_B(θ) for one batch (θ a flat active vector), differentiable by torch.func: through
        the fused batch norm, or the elementary-op copy with ``third`` (module docstring)."""
        x, y = batch
        module = self._elementary() if third else self.module
        with math_attention():
            out = functional_call(module, self.active.unflatten(theta), (x,))
        return self.loss_fn(out, y)

    def _elementary(self) -> nn.Module:
        """The elementary-op (BatchStatNorm) copy for third-order products, built once."""
        if self._module3 is None:  # from the fused copy: same θ-free state, no buffers
            self._module3 = functional_copy(self.module, self.dtype, device=self.device)
        return self._module3

    def _sum(self, fn: Callable[[Batch], Tensor]) -> Tensor:
        total = None
        for w, b in zip(self._weights, self.batches):
            term = w * fn(b)
            total = term if total is None else total + term
        assert total is not None  # _set_batches rejects an empty batch list
        return total

    def loss_at(self, theta: Tensor) -> Tensor:
        """L(θ) (data loss, no weight-decay term)."""
        with torch.no_grad():
            return self._sum(lambda b: self.batch_loss(theta, b))

    def grad_at(self, theta: Tensor) -> Tensor:
        """∇L(θ) + λθ on S (the gradient a masked SGD step uses)."""
        g = self._sum(lambda b: grad(self.batch_loss)(theta, b))
        return g + self.weight_decay * theta

    # -- coefficients at θ̄ -----------------------------------------------------------------
    def loss(self) -> float:
        """L(θ̄), the data loss without the weight-decay term."""
        return float(self.loss_at(self.theta))

    def grad(self, build_graphs: bool = True) -> Tensor:
        """g = ∇L(θ̄) + λθ̄ (ALGORITHM.md §1), cached; with ``hvp_mode="cached"`` taken from the
        cached gradient graphs (built here if needed: no extra backward pass), unless
        ``build_graphs`` is False (a caller that takes no HVPs here soon, e.g. a GD map's G0(t)
        of every SGD step at construction: graphs built and dropped at once fragment memory)."""
        if self._grad is None and build_graphs:
            self._cached_graphs()  # sets self._grad as a by-product when it builds them
        if self._grad is None:
            self._grad = self.grad_at(self.theta)
        return self._grad

    def _hvp_raw(self, u: Tensor) -> Tensor:
        def one(b: Batch) -> Tensor:
            return jvp(lambda th: grad(self.batch_loss)(th, b), (self.theta,), (u,))[1]

        return self._sum(one)

    # -- cached gradient graphs (hvp_mode="cached", module docstring) -----------------------
    @property
    def hvp_path(self) -> str:
        """The HVP path in use: "cached" or "functional" (also after a memory fallback)."""
        return "cached" if self._cached_graphs() is not None else "functional"

    def _cached_graphs(self) -> list[_Graph | None] | None:
        """Per batch the segment leaves of θ̄ and ∇L_b(θ̄) with its graph (None where H_b = 0),
        built once; None = functional path."""
        if self.hvp_mode != "cached" or self._graph_fallback:
            return None
        if self._graphs is None:
            self._graphs = self._build_graphs()
        return self._graphs

    def _build_graphs(self, third: bool = False) -> list[_Graph | None] | None:
        module = self._elementary() if third else self.module
        samples = [x.shape[0] for x, _ in self.batches]
        graphs = []
        saved: dict[int, int] = {}  # storages autograd saves for batch 1's graph

        def pack(t: Tensor) -> Tensor:
            st = t.untyped_storage()
            saved[st.data_ptr()] = st.nbytes()
            return t

        want_grad = not third and self._grad is None
        total = None  # Σ_b w_b ∇L_b(θ̄), the gradient the graphs compute anyway
        for i, (w, b) in enumerate(zip(self._weights, self.batches)):
            with torch.enable_grad(), saved_tensors_hooks(pack, lambda t: t):
                segs = [
                    s.detach().requires_grad_(True) for s in self.theta.split(self.active.sizes)
                ]
                x, y = b
                with math_attention(), (nullcontext() if third else fast_hvp()):
                    out = functional_call(module, self.active.unflatten_segments(segs), (x,))
                    gs = torch.autograd.grad(
                        self.loss_fn(out, y), segs, create_graph=True, allow_unused=True
                    )
            if i == 0:  # measured on batch 1 (+ the gradient itself), scaled by sample count
                per_sample = (sum(saved.values()) + self.theta.nbytes) / samples[0]
                nbytes = per_sample * sum(samples) * (3.0 if third else 1.0)  # + H(θ)u graph
                if not third:
                    self.graph_bytes = nbytes
                what = "third-order products" if third else "HVPs"
                try:
                    check_memory(nbytes, f"cached gradient graphs for {what}", self.memory_limit)
                except MemoryLimitError:
                    if third:
                        self._graph3_fallback = True
                    else:
                        self._graph_fallback = True
                    return None
            keep = [k for k, g in enumerate(gs) if g is not None and g.requires_grad]
            graphs.append((segs, [gs[k] for k in keep], keep) if keep else None)
            if not want_grad:
                continue
            flat = torch.cat(
                [g.detach() if g is not None else torch.zeros_like(s) for g, s in zip(gs, segs)]
            )
            total = w * flat if total is None else total.add_(flat, alpha=w)
        if want_grad and total is not None:
            self._grad = total.add_(self.theta, alpha=self.weight_decay)
        return graphs

    def _hvp_cached(self, graphs: list[_Graph | None], u: Tensor) -> Tensor:
        """Σ_b w_b H_b u by one reverse pass per batch through the cached graphs."""
        total = None
        parts = u.split(self.active.sizes)
        for w, graph in zip(self._weights, graphs):
            if graph is None:  # ∇L_b does not depend on θ: H_b = 0
                continue
            segs, gs, keep = graph
            hu = torch.autograd.grad(
                gs, segs, [parts[k] for k in keep], retain_graph=True, allow_unused=True
            )
            flat = torch.cat(
                [h if h is not None else torch.zeros_like(s) for h, s in zip(hu, segs)]
            )
            if w != 1.0:
                flat.mul_(w)
            total = flat if total is None else total.add_(flat)
        return torch.zeros_like(u) if total is None else total

    def hvp(self, u: Tensor) -> Tensor:
        """H u = ∇²L(θ̄) u + λu (forward-over-reverse autodiff, or one reverse pass through the
        cached gradient graph with ``hvp_mode="cached"``)."""
        u = self._vector(u, "u")
        graphs = None if u.requires_grad else self._cached_graphs()
        if graphs is not None:
            hu = self._hvp_cached(graphs, u.detach())
            return hu.add_(u, alpha=self.weight_decay) if self.weight_decay else hu
        return self._hvp_raw(u) + self.weight_decay * u

    def hvp_batch(
        self, U: Tensor, chunk_size: int | None = None, *, vmapped: bool = False
    ) -> Tensor:
        """H U for U of shape (n, m), columnwise (vmap, ``chunk_size`` columns at a time; with
        the cached graphs, one reverse pass per column — measured faster than a batched pass —
        unless ``vmapped``: the dense forms' n columns of a small model)."""
        U = self._block(U, "U")
        cached = not (vmapped or U.requires_grad or U.shape[1] == 0)
        graphs = self._cached_graphs() if cached else None
        if graphs is not None:  # columns written into one (m, n) block: (n, m) column-major
            HU = torch.empty_like(U.T, memory_format=torch.contiguous_format).T
            for k, u in enumerate(U.detach().T):
                HU[:, k] = self._hvp_cached(graphs, u.contiguous())
            return HU.add_(self.weight_decay * U) if self.weight_decay else HU  # as HU + λU
        # "+ 0·u" keeps the vmap batch dimension when H u does not depend on u (H = 0).
        raw = lambda u: self._hvp_raw(u) + 0.0 * u
        HU = vmap(raw, in_dims=1, out_dims=1, chunk_size=chunk_size)(U)
        return HU + self.weight_decay * U

    def _hvp_third_raw(self, u: Tensor, v: Tensor) -> Tensor:
        """(H_raw u, K[·, u, v]) stacked as (2, n), without weight decay. Forward over
        reverse-over-reverse: θ ↦ H(θ)u by double backward (elementary-op copy), differentiated
        in direction v by jvp, whose primal output is H(θ̄)u. Under vmap this is far faster than
        jvp∘jvp∘grad (measured ~50× on a masked MLP), with the same result."""

        def one(b: Batch) -> Tensor:
            def hvp_u(th: Tensor) -> Tensor:
                return vjp(lambda t: grad(self.batch_loss)(t, b, True), th)[1](u)[0]

            return torch.stack(jvp(hvp_u, (self.theta,), (v,)))

        return self._sum(one)

    def _third_raw(self, u: Tensor, v: Tensor) -> Tensor:
        return self._hvp_third_raw(u, v)[1]

    def _third_graphs(self) -> list[_Graph | None] | None:
        """Cached gradient graphs through the elementary-op copy (``hvp_mode="cached"``), or
        None for the functional path (other mode, or they would not fit)."""
        if self.hvp_mode != "cached" or self._graph3_fallback:
            return None
        if self._graphs3 is None:
            self._graphs3 = self._build_graphs(third=True)
        return self._graphs3

    def _hvp_third_cached(
        self, graphs: list[_Graph | None], u: Tensor, v: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(Σ_b w_b H_b u, Σ_b w_b K_b[·, u, v]) by reverse over reverse through the cached
        gradient graphs: h = ∂(∇L_b · u)/∂θ with its graph (its value is H_b u), then
        ∂(h · v)/∂θ = K_b[·, u, v]. Without weight decay."""
        hu_total = kv_total = None
        pu, pv = u.split(self.active.sizes), v.split(self.active.sizes)
        for w, graph in zip(self._weights, graphs):
            if graph is None:
                continue
            segs, gs, keep = graph
            hu = torch.autograd.grad(
                gs,
                segs,
                [pu[k] for k in keep],
                create_graph=True,
                retain_graph=True,
                allow_unused=True,
            )
            flat = torch.cat(
                [h.detach() if h is not None else torch.zeros_like(s) for h, s in zip(hu, segs)]
            )
            hu_total = w * flat if hu_total is None else hu_total.add_(flat, alpha=w)
            live = [(h, k) for k, h in enumerate(hu) if h is not None and h.requires_grad]
            if not live:
                continue
            kv = torch.autograd.grad(
                [h for h, _ in live],
                segs,
                [pv[k] for _, k in live],
                retain_graph=True,  # keeps the cached gradient graph (the H(θ)u part is freed
                allow_unused=True,  # with its last reference)
            )
            flat = torch.cat(
                [t if t is not None else torch.zeros_like(s) for t, s in zip(kv, segs)]
            )
            kv_total = w * flat if kv_total is None else kv_total.add_(flat, alpha=w)
        zero = torch.zeros_like(u)
        return (zero if hu_total is None else hu_total), (zero if kv_total is None else kv_total)

    def third(self, u: Tensor, v: Tensor) -> Tensor:
        """K[·, u, v] = ∇_θ(uᵀ H(θ) v) at θ̄ (ALGORITHM.md §1): the derivative of θ ↦ H(θ)u in
        direction v. Symmetric in (u, v); weight decay adds nothing. With
        ``hvp_mode="cached"`` by reverse mode through one cached gradient graph per batch
        (elementary-op batch norm), else forward over reverse-over-reverse."""
        self._elementary()  # built outside any torch.func transform
        u, v = self._vector(u, "u"), self._vector(v, "v")
        graphs = None if (u.requires_grad or v.requires_grad) else self._third_graphs()
        if graphs is not None:
            return self._hvp_third_cached(graphs, u.detach(), v.detach())[1]
        return self._third_raw(u, v)

    def third_batch(
        self, U: Tensor, V: Tensor, chunk_size: int | None = None, *, vmapped: bool = False
    ) -> Tensor:
        """[K[·, u_k, v_k]]_k for U, V of shape (n, m) (one vmapped call when ``vmapped`` or
        outside the cached mode, else one reverse-over-reverse pass per column)."""
        U, V = self._block(U, "U"), self._block(V, "V")
        if U.shape != V.shape:
            raise UsageError(f"U and V have shapes {tuple(U.shape)} and {tuple(V.shape)}")
        self._elementary()  # built outside any torch.func transform
        grad_free = not (vmapped or U.requires_grad or V.requires_grad) and U.shape[1] > 0
        graphs = self._third_graphs() if grad_free else None
        if graphs is not None:  # one reverse-over-reverse pass per column, no vmap copies
            K = torch.empty_like(U.T, memory_format=torch.contiguous_format).T
            for k, (u, v) in enumerate(zip(U.detach().T, V.detach().T)):
                K[:, k] = self._hvp_third_cached(graphs, u.contiguous(), v.contiguous())[1]
            return K
        # "+ 0·(u + v)" keeps the vmap batch dimension when K = 0 (e.g. a linear model).
        raw = lambda u, v: self._third_raw(u, v) + 0.0 * (u + v)
        return vmap(raw, in_dims=(1, 1), out_dims=1, chunk_size=chunk_size)(U, V)

    def hvp_third_sum(
        self,
        U: Tensor,
        s: Tensor,
        *,
        out: Tensor | None = None,
        chunk_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""(H U, w) with w = Σ_k s_k K[·, u_k, u_k] for U of shape (n, m) and weights s (m,),
        without a block of third-order columns: each third-order product's first pass is the
        HVP of its column (the primal of the jvp, or the value of the reverse pass built with
        its graph), so H U comes with the products and w is accumulated as they run; both
        through the elementary-op copy (exact third derivatives; its H u equals the fused one up
        to rounding). Columns with s_k = 0 get only their HVP (cached: through the same graph;
        functional: the fused path). Cached mode: one column at a time through the cached
        graphs, ``hvp_mode="cached"``; functional: vmapped, ``chunk_size`` columns at a time.
        H U is written into ``out`` (n, m) when given (e.g. a column-major view of the next
        factor block) — what the order-2 emulation needs per step (:mod:`.lowrank`)."""
        U = self._block(U, "U")
        s = torch.as_tensor(s).to(dtype=self.dtype, device=self.device).reshape(-1)
        if s.shape != (U.shape[1],):
            raise UsageError(f"s has {s.numel()} weights for {U.shape[1]} columns of U")
        if out is None:
            out = torch.empty_like(U.T, memory_format=torch.contiguous_format).T
        elif out.shape != U.shape:
            raise UsageError(f"out has shape {tuple(out.shape)}; pass one of U's {tuple(U.shape)}")
        HU = out
        w = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        self._elementary()  # built outside any torch.func transform
        graphs = self._third_graphs() if U.shape[1] and not U.requires_grad else None
        weights = s.tolist()  # one device sync
        if graphs is not None:
            for k, u in enumerate(U.detach().T):
                u = u.contiguous()
                if weights[k] == 0.0:
                    HU[:, k] = self._hvp_cached(graphs, u)
                else:
                    hu, kv = self._hvp_third_cached(graphs, u, weights[k] * u)
                    HU[:, k] = hu
                    w.add_(kv)
        else:
            zero = [k for k, v in enumerate(weights) if v == 0.0]
            if zero:  # "+ 0·u" keeps the vmap batch dimension when H = 0 (as in hvp_batch)
                hvp = lambda u: self._hvp_raw(u) + 0.0 * u
                HU[:, zero] = vmap(hvp, in_dims=1, out_dims=1, chunk_size=chunk_size)(U[:, zero])
            cols = [k for k, v in enumerate(weights) if v != 0.0]
            step = max(len(cols) if chunk_size is None else int(chunk_size), 1)
            raw = lambda u, v: self._hvp_third_raw(u, v) + 0.0 * (u + v)
            for a in range(0, len(cols), step):
                idx = cols[a : a + step]
                Uc = U[:, idx]
                both = vmap(raw, in_dims=(1, 1), out_dims=2)(Uc, Uc * s[idx])
                HU[:, idx] = both[0]
                w.add_(both[1].sum(1))
        if self.weight_decay:
            HU.add_(U, alpha=self.weight_decay)
        return HU, w

    # -- dense forms for tiny models ---------------------------------------------------------
    def dense_hessian(self, memory_limit: int | str | None = None) -> Tensor:
        """H as a dense (n, n) tensor (n HVPs in one vmapped call, in every mode)."""
        n = self.n
        check_memory(3.0 * n * n * 8, f"dense Hessian of n = {n} active parameters", memory_limit)
        eye = torch.eye(n, dtype=self.dtype, device=self.device)
        H = self.hvp_batch(eye, vmapped=True)
        return 0.5 * (H + H.T)

    def dense_third(self, memory_limit: int | str | None = None, chunk_size: int = 4096) -> Tensor:
        """K as a dense (n, n, n) tensor, K[i, a, b] = K[·, e_a, e_b]_i: the n² third-order
        products in one vmapped call, ``chunk_size`` columns at a time."""
        n = self.n
        check_memory(4.0 * n**3 * 8, f"dense third derivative of n = {n} parameters", memory_limit)
        eye = torch.eye(n, dtype=self.dtype, device=self.device)
        U, V = eye.repeat_interleave(n, dim=1), eye.repeat(1, n)  # column a·n + b: (e_a, e_b)
        K = self.third_batch(U, V, chunk_size=min(n * n, chunk_size), vmapped=True)
        return K.reshape(n, n, n)

    def linear_operator(self) -> LinearOperator:
        """H as a SciPy LinearOperator (float64 NumPy in and out; symmetric)."""

        def matvec(u: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(
                np.asarray(u, dtype=float).reshape(-1), dtype=self.dtype, device=self.device
            )
            return self.hvp(t).detach().cpu().numpy().astype(float)

        def matmat(U: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.asarray(U, dtype=float), dtype=self.dtype, device=self.device)
            return self.hvp_batch(t).detach().cpu().numpy().astype(float)

        return LinearOperator(
            (self.n, self.n), matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=np.float64
        )

    def nonlinear_norms(
        self, lr: float, f2_iters: int = 20, seed: int | None = 0
    ) -> tuple[float, float]:
        r"""(‖f0‖, ‖F2‖) of the GD map at η = ``lr`` (ALGORITHM.md §1, §6): f0 = −ηg and
        F2(u, v) = −(η/2)K[·, u, v]; ‖F2‖ by the power method of
        :func:`qcarleman.dissipation.f2_norm` on third-order products (a lower bound)."""
        from .. import dissipation

        def F2(u: np.ndarray, v: np.ndarray) -> np.ndarray:
            K = self.third(torch.as_tensor(u), torch.as_tensor(v))  # _vector moves to device
            return -0.5 * lr * K.detach().cpu().numpy().astype(float)

        f0 = dissipation.f0_norm(self.grad().detach().cpu().numpy(), lr)
        f2 = dissipation.f2_norm(F2, self.n, iters=f2_iters, seed=seed, restarts=1)
        return f0, f2

    # -- input checks ------------------------------------------------------------------------
    def _vector(self, u, name: str) -> Tensor:
        u = torch.as_tensor(u).to(dtype=self.dtype, device=self.device)
        if u.shape != (self.n,):
            raise UsageError(
                f"{name} has shape {tuple(u.shape)} but the operators act on n = {self.n} "
                "active coordinates; pass a vector of length n"
            )
        return u

    def _block(self, U, name: str) -> Tensor:
        U = torch.as_tensor(U).to(dtype=self.dtype, device=self.device)
        if U.ndim != 2 or U.shape[0] != self.n:
            raise UsageError(
                f"{name} has shape {tuple(U.shape)}; pass an (n, m) block with n = {self.n}"
            )
        return U

    def __repr__(self) -> str:
        return (
            f"LossOperators(n={self.n}, batches={len(self.batches)}, λ={self.weight_decay}, "
            f"dtype={self.dtype})"
        )
