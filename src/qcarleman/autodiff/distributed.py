r"""Hessian operators over a dataset sharded across processes (``torch.distributed``).

The loss of B batches is the size-weighted mean L = Σ_b |B_b| L_b / Σ_b |B_b| (as in
:class:`~qcarleman.autodiff.operators.LossOperators`). Rank r of W processes owns batches
r, r+W, r+2W, … and builds an ordinary ``LossOperators`` on them (no second HVP
implementation); every product is the local one scaled by N_r/N (N_r its samples, N all) and
summed with ``all_reduce``. Weight decay λ is added once, after the sum. Sharding is by whole
batches, so batch-norm statistics (computed per batch) are exactly those of one process, and the
results equal one process's up to float64 rounding of the sum.

Every rank runs the same (deterministic) Lanczos/SLQ on the reduced products, so all ranks hold
the same spectrum; rank 0 writes the output. Backend: NCCL when CUDA is available, else gloo.

Launch (one command per machine, e.g. 2 processes here)::

    torchrun --nproc-per-node 2 -m qcarleman.cli.torchrun RUN_DIR \
        --checkpoints 0:20 --batches 8 --out spectra.json

which takes the options of ``qcarleman spectrum`` (run ``... --help``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from scipy.sparse.linalg import LinearOperator

from ..errors import UsageError
from .operators import LossOperators, as_batches

__all__ = ["init_distributed", "shard_batches", "DistributedLossOperators"]

Tensor = torch.Tensor


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Initialize the default process group from the torchrun environment (once) and return
    (rank, world size). Without torchrun variables, a single process: (0, 1), no group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def shard_batches(batches: Sequence, rank: int, world: int) -> list:
    """Batches r, r+W, r+2W, … of rank r (round robin). Needs at least W batches."""
    batches = list(batches)
    if len(batches) < world:
        raise UsageError(
            f"{len(batches)} batches cannot be shared by {world} processes; "
            f"use at least {world} batches (--batches) or fewer processes"
        )
    return batches[rank::world]


class DistributedLossOperators:
    r"""g, H·u, K[·,u,v] of the loss of all batches, computed by the processes of a group.

    Same constructor and methods as :class:`~qcarleman.autodiff.operators.LossOperators`
    (``grad``, ``hvp``, ``hvp_batch``, ``third``, ``loss``, ``linear_operator``); ``batches``
    is the full list, identical on every rank — each rank keeps its shard. Collective: every
    rank must call the same methods in the same order.
    """

    def __init__(
        self,
        model,
        loss_fn,
        batches,
        mask=None,
        weight_decay: float = 0.0,
        dtype: torch.dtype = torch.float64,
        include_pruned: bool = False,
        theta: Tensor | None = None,
        group=None,
        hvp_mode: str = "functional",
        memory_limit: int | str | None = None,
        device: str | torch.device | None = None,
    ):
        if not (dist.is_available() and dist.is_initialized()):
            raise UsageError(
                "torch.distributed is not initialized; launch with torchrun (or call "
                "init_distributed() under torchrun) or use LossOperators"
            )
        if not np.isfinite(weight_decay) or weight_decay < 0:
            raise UsageError(f"weight decay λ = {weight_decay} is invalid; use a finite λ ≥ 0")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        mine = shard_batches(as_batches(batches, dtype), self.rank, self.world)
        # λ = 0 locally: weight decay is added once after the reduction.
        self.local = LossOperators(
            model,
            loss_fn,
            mine,
            mask,
            0.0,
            dtype,
            include_pruned,
            theta,
            hvp_mode=hvp_mode,
            memory_limit=memory_limit,
            device=device,
        )
        self.hvp_mode = hvp_mode
        self.n = self.local.n
        self.dtype = dtype
        self.weight_decay = float(weight_decay)
        self.theta = self.local.theta
        self.active = self.local.active
        self._device = self.theta.device
        if dist.get_backend(group) == "nccl" and self._device.type != "cuda":
            self._device = torch.device("cuda", torch.cuda.current_device())
        local_n = float(sum(x.shape[0] for x, _ in self.local.batches))
        total = self._reduce(torch.tensor([local_n], dtype=torch.float64))
        self.share = local_n / float(total[0])
        self._grad: Tensor | None = None

    def _reduce(self, t: Tensor) -> Tensor:
        buf = t.detach().to(self._device, copy=True)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=self.group)
        return buf.to(t.device)

    @property
    def hvp_path(self) -> str:
        """This rank's HVP path, "cached" or "functional" (see ``LossOperators``)."""
        return self.local.hvp_path

    def loss(self) -> float:
        """L(θ̄), the data loss of all batches (no weight-decay term)."""
        local = torch.tensor([self.share * self.local.loss()], dtype=torch.float64)
        return float(self._reduce(local)[0])

    def grad(self) -> Tensor:
        """g = ∇L(θ̄) + λθ̄ over all batches, cached."""
        if self._grad is None:
            g = self._reduce(self.share * self.local.grad())
            self._grad = g + self.weight_decay * self.theta
        return self._grad

    def hvp(self, u: Tensor) -> Tensor:
        """H u = ∇²L(θ̄) u + λu over all batches."""
        u = self.local._vector(u, "u")
        return self._reduce(self.share * self.local.hvp(u)) + self.weight_decay * u

    def hvp_batch(self, U: Tensor, chunk_size: int | None = None) -> Tensor:
        """H U for U of shape (n, m), one reduction for the whole block."""
        U = self.local._block(U, "U")
        HU = self.local.hvp_batch(U, chunk_size=chunk_size)
        return self._reduce(self.share * HU) + self.weight_decay * U

    def third(self, u: Tensor, v: Tensor) -> Tensor:
        """K[·, u, v] over all batches (weight decay adds nothing)."""
        return self._reduce(self.share * self.local.third(u, v))

    def linear_operator(self) -> LinearOperator:
        """H as a SciPy LinearOperator (float64 NumPy in and out); collective per product."""

        def matvec(u: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.asarray(u, dtype=float).reshape(-1), dtype=self.dtype)
            return self.hvp(t.to(self.theta.device)).detach().cpu().numpy().astype(float)

        def matmat(U: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.asarray(U, dtype=float), dtype=self.dtype)
            return self.hvp_batch(t.to(self.theta.device)).detach().cpu().numpy().astype(float)

        return LinearOperator(
            (self.n, self.n), matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=np.float64
        )

    def __repr__(self) -> str:
        return f"DistributedLossOperators(n={self.n}, rank={self.rank}/{self.world})"
