r"""Gradient descent of a PyTorch model as a quadratic map (ALGORITHM.md §1).

:class:`GDMap` expands the loss of a real network at θ̄ (the uploaded parameters) on the active
set S (n = |S|) and writes the masked (S)GD update as z' = G0 + G1 z + G2(z, z), i.e. exact
gradient descent on the cubic Taylor model of the loss at θ̄:

* plain GD (μ = 0), z = x = θ_S − θ̄_S:
  G0 = f0 = −ηg,  G1 = F1 = I − ηH,  G2 = F2(u, v) = −(η/2) K[·, u, v];
* heavy-ball momentum in PyTorch's convention (v' = μv + ∇L + λθ, θ' = θ − ηv'),
  z = (x, v) ∈ R^{2n}:
  G0 = (−ηg, g),  G1 (x, v) = ((I − ηH)x − ημv, Hx + μv),  G2 = (−(η/2)K[x, x'], ½K[x, x'])

with g = ∇L(θ̄) + λθ̄, H = ∇²L(θ̄) + λI, K = ∇³L(θ̄) (weight decay λ/2‖θ_S‖²) from
:class:`~qcarleman.autodiff.operators.LossOperators`. The velocity v is PyTorch's momentum buffer
(zero before the first step; a checkpoint's buffer can be passed as the initial velocity).
Dampening 0, no Nesterov (the trainer's optimizer).

Batches: with ``per_step=False`` (full-batch GD) all batches define one loss and the map is
time-independent; with ``per_step=True`` (SGD) step t uses batch t, so G0(t), G1(t), G2(t) depend
on t, all expanded at the same θ̄. Batch norm uses batch statistics without running-stat updates
(see :mod:`qcarleman.autodiff.operators`).

A ``GDMap`` *is* a :class:`~qcarleman.dynamics.QuadraticMap` in operator form (NumPy float64 at
its boundary), so Carleman lifting and history systems apply unchanged. Torch-native
counterparts (:meth:`GDMap.tg0`, :meth:`GDMap.tg1`, :meth:`GDMap.tg2`, and :meth:`GDMap.tg12`:
G1 U with Σ_k s_k G2(u_k, u_k) in one sweep) serve the low-rank emulation of large models without
NumPy round trips (it releases each SGD step's cached graphs after the step,
:meth:`GDMap.release_graphs`); :meth:`GDMap.dense_map` gives the explicit
map (dense H and K) for tiny models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..dynamics import QuadraticMap
from ..errors import UsageError, check_memory
from .active import as_batches
from .memory import micro_batched, plan_for
from .operators import LossOperators

__all__ = ["GDMap"]

Tensor = torch.Tensor


class GDMap(QuadraticMap):
    r"""The (S)GD update of a model at θ̄ as a quadratic map (module docstring, ALGORITHM.md §1).

    Parameters
    ----------
    model, loss_fn:
        The network (its current parameters are θ̄ unless ``theta`` is given) and
        ``loss_fn(outputs, targets) -> scalar``.
    batches:
        (x, y) batches (a list, a DataLoader, or one pair).
    lr:
        Learning rate η > 0.
    mask, include_pruned:
        The active set (:class:`~qcarleman.autodiff.active.ActiveParams`).
    weight_decay, momentum:
        λ ≥ 0 and μ ∈ [0, 1).
    theta:
        θ̄_S (flat, length n); default: the model's parameters.
    per_step:
        False: full-batch GD on all batches (time-independent). True: SGD, batch t at step t.
    dtype:
        torch.float64 (default) or torch.float32 for the autodiff; the QuadraticMap interface is
        float64 NumPy either way.
    chunk_size:
        Columns per vmapped HVP / third-order call (None: a whole block at once).
    params:
        Free parameter tensors, names or regular expressions (default: all trainable ones; the
        others keep their values). ``evaluation`` states how the model is evaluated (dropout
        off, batch-norm batch statistics: :mod:`qcarleman.autodiff.evaluation`).
    device:
        Where the operators' tensors live (default: the model's device); the torch-native
        coefficients (``tg0``, ``tg1``, ``tg2``) take and return tensors there.
    hvp_mode:
        "functional" (default) or "cached": HVPs and third-order products by reverse passes
        through cached gradient graphs (:class:`~qcarleman.autodiff.operators.LossOperators`).
    memory_limit:
        Before the first product, the intermediates of an HVP and of a third-order product are
        predicted (:func:`~qcarleman.autodiff.memory.plan_for`); when one would not fit in half
        this limit (default: :func:`qcarleman.errors.memory_limit`) every batch is split into
        micro-batches and products are sums of per-micro-batch products (exact without batch
        norm; with it each micro-batch uses its own statistics). ``memory_plan`` says what ran.
    """

    def __init__(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        batches: Iterable[Sequence[Tensor]] | Sequence[Tensor],
        lr: float,
        mask: Mapping[str, Tensor] | None = None,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        theta: Tensor | None = None,
        per_step: bool = False,
        dtype: torch.dtype = torch.float64,
        include_pruned: bool = False,
        chunk_size: int | None = None,
        params: str | Iterable[str] | None = None,
        device: str | torch.device | None = None,
        hvp_mode: str = "functional",
        memory_limit: int | str | None = None,
    ):
        if not np.isfinite(lr) or lr <= 0:
            raise UsageError(f"learning rate η = {lr} is invalid; use a finite η > 0")
        if not np.isfinite(momentum) or not 0 <= momentum < 1:
            raise UsageError(f"momentum μ = {momentum} is invalid; use 0 ≤ μ < 1")
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise UsageError(f"chunk_size = {chunk_size} is invalid; use an integer ≥ 1 or None")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.per_step = bool(per_step)
        self.chunk_size = chunk_size
        batch_list = as_batches(batches, dtype)
        base = LossOperators(
            model,
            loss_fn,
            batch_list,
            mask,
            weight_decay,
            dtype,
            include_pruned,
            theta,
            params=params,
            hvp_mode=hvp_mode,
            device=device,
            memory_limit=memory_limit,
        )
        #: How the model is evaluated (dropout off, batch-norm batch statistics; in words).
        self.evaluation = base.evaluation
        #: The binding memory plan of HVPs and third-order products (None on the meta device).
        self.memory_plan = plan_for(base, ("hvp", "third"), memory_limit=memory_limit)
        plan = self.memory_plan
        #: One LossOperators per step (SGD) or one for all steps (full-batch GD), on the
        #: micro-batches of the plan.
        self.ops: list[LossOperators] = (
            [micro_batched(base.with_batches([b]), plan) for b in batch_list]
            if self.per_step
            else [micro_batched(base, plan)]
        )
        self.active = base.active
        self.n = base.n
        self.theta = base.theta
        self.dtype = dtype
        self.device = base.device
        d = 2 * self.n if self.momentum else self.n
        g0 = [self.tg0(t).cpu().numpy().astype(float) for t in range(len(self.ops))]
        g1 = [self._numpy1(t) for t in range(len(self.ops))]
        g2 = [self._numpy2(t) for t in range(len(self.ops))]
        if self.per_step:
            super().__init__(g0, g1, g2, dim=d, vectorized=True)
        else:
            super().__init__(g0[0], g1[0], g2[0], dim=d, vectorized=True)

    # -- torch-native coefficients ---------------------------------------------------------
    def operators(self, t: int) -> LossOperators:
        """The LossOperators of step t (batch t under SGD)."""
        if not self.per_step:
            return self.ops[0]
        if not 0 <= t < len(self.ops):
            raise UsageError(
                f"step {t} is outside this SGD map's {len(self.ops)} batches; "
                f"use a horizon T ≤ {len(self.ops)} or pass more batches"
            )
        return self.ops[t]

    def tg0(self, t: int = 0) -> Tensor:
        """G0(t): −ηg, or (−ηg, g) with momentum. Under SGD g(t) is a plain gradient (no cached
        graphs built for it: step t's graphs live only while step t's products run)."""
        g = self.operators(t).grad(build_graphs=not self.per_step)
        return torch.cat([-self.lr * g, g]) if self.momentum else -self.lr * g

    def tg1(self, t: int, U: Tensor) -> Tensor:
        """G1(t) U for U of shape (d, m) (module docstring)."""
        ops, eta, mu, n = self.operators(t), self.lr, self.momentum, self.n
        X = U[:n]
        HX = ops.hvp_batch(X, self.chunk_size)
        if not mu:
            return X - eta * HX
        V = U[n:]
        return torch.cat([X - eta * HX - eta * mu * V, HX + mu * V])

    def tg2(self, t: int, U: Tensor, V: Tensor) -> Tensor:
        """G2(t)(U, V) columnwise for U, V of shape (d, m): −(η/2)K[·, x, x'] (and ½K[·, x, x']
        for the velocity block with momentum)."""
        ops, n = self.operators(t), self.n
        K = ops.third_batch(U[:n], V[:n], self.chunk_size)
        if not self.momentum:
            return -0.5 * self.lr * K
        return torch.cat([-0.5 * self.lr * K, 0.5 * K])

    def tg12(
        self, t: int, U: Tensor, s: Tensor, out: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(G1(t) U, Σ_k s_k G2(t)(u_k, u_k)) for U of shape (d, m) and weights s (m,): the HVPs
        come with the third-order products and the weighted sum is accumulated without a block
        of G2 columns (:meth:`LossOperators.hvp_third_sum`); G1 U is written into ``out``
        (d, m) when given. Columns with s_k = 0 cost only their HVP."""
        ops, eta, mu, n = self.operators(t), self.lr, self.momentum, self.n
        X, chunk = U[:n], self.chunk_size
        if not mu:
            G1X, K = ops.hvp_third_sum(X, s, out=out, chunk_size=chunk)
            return G1X.mul_(-eta).add_(X), -0.5 * eta * K  # (I − ηH) X, in place
        V = U[n:]
        if out is None:
            out = torch.empty_like(U.T, memory_format=torch.contiguous_format).T
        HX, K = ops.hvp_third_sum(X, s, out=out[n:], chunk_size=chunk)
        out[:n].copy_(X).add_(HX, alpha=-eta).add_(V, alpha=-eta * mu)
        out[n:].add_(V, alpha=mu)
        return out, torch.cat([-0.5 * eta * K, 0.5 * K])

    def release_graphs(self, t: int | None = None) -> None:
        """Drop the cached gradient graphs of step t under SGD (all steps when t is None); they
        are rebuilt lazily if step t's products are asked again. A full-batch map keeps its one
        set of graphs for t given (every step uses it). The order-2 emulation calls this after
        each step, so only one step's graphs are alive at a time."""
        if t is None:
            for ops in self.ops:
                ops.release_graphs()
        elif self.per_step:
            self.operators(t).release_graphs()

    def _numpy1(self, t: int) -> Callable[[np.ndarray], np.ndarray]:
        def apply(U: np.ndarray) -> np.ndarray:
            return self.tg1(t, self._torch(U)).cpu().numpy().astype(float)

        return apply

    def _numpy2(self, t: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def apply(U: np.ndarray, V: np.ndarray) -> np.ndarray:
            return self.tg2(t, self._torch(U), self._torch(V)).cpu().numpy().astype(float)

        return apply

    def _torch(self, U: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(U, dtype=float)).to(dtype=self.dtype, device=self.device)

    # -- states ------------------------------------------------------------------------------
    def initial_state(self, velocity: Tensor | np.ndarray | None = None) -> np.ndarray:
        """z_0: x_0 = 0, and with momentum v_0 = ``velocity`` (PyTorch's buffer on S; 0 if None)."""
        if velocity is not None and not self.momentum:
            raise UsageError("a velocity was given but momentum μ = 0; drop it or set μ > 0")
        z = np.zeros(self.dim)
        if velocity is not None:
            v = np.asarray(torch.as_tensor(velocity).detach().cpu(), dtype=float).reshape(-1)
            if v.shape != (self.n,):
                raise UsageError(
                    f"velocity has shape {v.shape} but the active set has n = {self.n}; "
                    "pass the momentum buffer restricted to the active set"
                )
            if not np.all(np.isfinite(v)):
                raise UsageError("velocity has non-finite entries; pass a finite momentum buffer")
            z[self.n :] = v
        return z

    def parameters_of(self, z: np.ndarray) -> Tensor:
        """θ_S = θ̄_S + x for a state z (or a (T+1, d) trajectory: rowwise)."""
        x = torch.as_tensor(np.asarray(z)[..., : self.n]).to(dtype=self.dtype, device=self.device)
        return self.theta + x

    def true_trajectory(self, T: int, z0: np.ndarray | None = None) -> np.ndarray:
        """z_0..z_T of masked (S)GD on the *real* loss (not its Taylor model), shape (T+1, d):
        θ' = θ − ηv', v' = μv + ∇L_t(θ) + λθ on S, pruned entries fixed at 0 — the trainer's
        update (torch.optim.SGD with masked gradients) in the coordinates of this map."""
        self.check_horizon(T)
        z = self.initial_state() if z0 is None else self._check_state(z0)
        n, eta, mu = self.n, self.lr, self.momentum
        out = torch.empty((T + 1, self.dim), dtype=self.dtype, device=self.device)
        out[0] = torch.as_tensor(z)
        x, v = out[0, :n].clone(), out[0, n:].clone()
        for t in range(T):  # on the device; one copy to NumPy at the end
            grad = self.operators(t).grad_at(self.theta + x)
            v = mu * v + grad if mu else grad
            x = x - eta * v
            out[t + 1, :n] = x
            if mu:
                out[t + 1, n:] = v
        return out.cpu().numpy().astype(float)

    # -- dense forms for tiny models ---------------------------------------------------------
    def dense(
        self, t: int = 0, memory_limit: int | str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(G0, G1, G2) at step t as dense arrays (d,), (d, d), (d, d, d), from the dense H and K
        of the loss (n HVPs and n² third-order products, batched)."""
        d, n, eta, mu = self.dim, self.n, self.lr, self.momentum
        check_memory(8.0 * (d**3 + d**2 + d), f"dense coefficients of a d = {d} map", memory_limit)
        ops = self.operators(t)
        H = ops.dense_hessian(memory_limit).cpu().numpy().astype(float)
        K = ops.dense_third(memory_limit).cpu().numpy().astype(float)
        G0 = self.tg0(t).cpu().numpy().astype(float)
        if not mu:
            return G0, np.eye(n) - eta * H, -0.5 * eta * K
        G1 = np.zeros((d, d))
        G1[:n, :n] = np.eye(n) - eta * H
        G1[:n, n:] = -eta * mu * np.eye(n)
        G1[n:, :n] = H
        G1[n:, n:] = mu * np.eye(n)
        G2 = np.zeros((d, d, d))
        G2[:n, :n, :n] = -0.5 * eta * K
        G2[n:, :n, :n] = 0.5 * K
        return G0, G1, G2

    def dense_map(self, memory_limit: int | str | None = None) -> QuadraticMap:
        """The same map with explicit dense coefficients (per step under SGD), for the exact
        Carleman engine on tiny models."""
        steps = len(self.ops)
        d = self.dim
        check_memory(
            8.0 * steps * (d**3 + d**2 + d), f"{steps} dense d = {d} coefficient sets", memory_limit
        )
        coeffs = [self.dense(t, memory_limit) for t in range(steps)]
        if not self.per_step:
            return QuadraticMap(*coeffs[0])
        return QuadraticMap(*(list(c) for c in zip(*coeffs)))

    def __repr__(self) -> str:
        kind = f"SGD, {len(self.ops)} steps" if self.per_step else "full-batch GD"
        return (
            f"GDMap(n={self.n}, d={self.dim}, η={self.lr}, μ={self.momentum}, "
            f"λ={self.weight_decay}, {kind})"
        )
