r"""Carleman emulation at scale: order 1 by HVPs, order 2 with a low-rank level 2 (ALGORITHM.md §2).

The order-2 truncated Carleman system of z' = G0 + G1 z + G2(z, z) (ALGORITHM.md §2,
A = (B_{j,k})_{j,k ≤ 2}, b = (G0, G0⊗G0)) reads, with B_{1,k} = G_k and
B_{2,1} = G0⊗G1 + G1⊗G0, B_{2,2} = G1⊗G1 + G0⊗G2 + G2⊗G0:

    ŷ1' = G0 + G1 ŷ1 + G2·ŷ2
    ŷ2' = G0⊗G0 + G0⊗(G1ŷ1) + (G1ŷ1)⊗G0 + (G1⊗G1) ŷ2 + G0⊗(G2·ŷ2) + (G2·ŷ2)⊗G0

(the k = 3, 4 blocks are truncated). As a d×d matrix ŷ2 = Y2, (G1⊗G1)ŷ2 = G1 Y2 G1ᵀ and
G2·ŷ2 = Σ_ab G2[:, a, b] Y2[a, b]. Writing w = G2·ŷ2 and c = G1ŷ1 + w, so that ŷ1' = G0 + c:

    Y2' = G1 Y2 G1ᵀ + G0G0ᵀ + G0cᵀ + cG0ᵀ = G1 Y2 G1ᵀ + ŷ1'ŷ1'ᵀ − ccᵀ.

Hence Y2 stays symmetric and is kept as Y2 = U diag(s) Uᵀ (U: d×r, s: signs/weights):
U' = [G1U, ŷ1', c], s' = [s, 1, −1]; w = Σ_r s_r G2(u_r, u_r). From Y2(0) = z0z0ᵀ the rank is
r(t) = 2t (+1 if z0 ≠ 0), so T steps cost Σ_t (r(t) + 1) ≈ T² products G1·u (Hessian-vector
products) and ≈ T² third-order products G2(u, u), and memory O(d·T) — no d² anywhere.

One sweep per step (a :class:`~qcarleman.autodiff.gdmap.GDMap`, :meth:`~.gdmap.GDMap.tg12`):
the first pass of each third-order product K[·, u_r, u_r] is the HVP H u_r, so G1 U comes with
the G2 products, and w is accumulated column by column — no d×r block of G2 columns. The
factors are kept as rows (U = Fᵀ, contiguous columns) and G1 U is written straight into the
next step's block [G1U, ŷ1', c]; the old block is dropped when the step ends, so at most two
blocks (d×r and d×(r+2)) and the trajectory are alive. After step t the map releases that step's
cached gradient graphs (``hvp_mode="cached"``; step t's batch is not used again; they are rebuilt
lazily if it is).
The truncated dynamics are invariant under the Carleman scaling γ (ŷ_j = y_j/γ^j with
G0/γ, G1, γG2), so the result equals ``CarlemanSystem(qmap, 2, scale=γ)`` for every γ.

Optional rank truncation: Y2 = Q (R diag(s) Rᵀ) Qᵀ with U = QR; the symmetric r×r core is
diagonalized (its eigenvalues are the singular values of Y2 up to sign) and only the ``max_rank``
largest |λ| (and those above ``rtol``·max|λ|) are kept; the discarded weight
‖Y2 − Y2_k‖_F / ‖Y2‖_F is reported per step.

Order 1 (linearized GD, ALGORITHM.md §2): ŷ1' = G0 + G1 ŷ1, one G1 product per step.

Maps: a :class:`~qcarleman.autodiff.gdmap.GDMap` is used through its torch-native coefficients,
and every tensor (trajectory, factors U, weights s) lives on its device; any other
:class:`~qcarleman.dynamics.QuadraticMap` through its NumPy ones (on the CPU).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..display import html_table, short_repr, to_pandas
from ..dynamics import QuadraticMap
from ..errors import UsageError, check_memory

__all__ = ["LowRankResult", "emulate_order1", "emulate_order2"]

Tensor = torch.Tensor


@dataclass
class LowRankResult:
    """An emulated level-1 trajectory and its costs.

    trajectory: (T+1, d) torch tensor on the map's device and dtype, ŷ1(t) in original units
        (ŷ1(0) = z0); :meth:`numpy` gives it as a NumPy array (what ``GDMap.iterate`` returns),
        so results compare without ``.cpu()``. Everything else is plain Python.
    ranks: stored rank r of ŷ2 at t = 0..T (order 2; zeros for order 1).
    discarded: ‖Y2 − Y2_k‖_F/‖Y2‖_F dropped by truncation at each step (0 when none).
    g1_products / g2_products: number of G1·u (HVP) and G2(u, u) (third-order) products used.
    seconds: wall time of each step.
    level2_norms: ‖ŷ2(t)‖_F at t = 0..T (order 2, from the factors: ‖U diag(s) Uᵀ‖_F² =
    Σ_ij s_i s_j (UᵀU)_ij²; empty for order 1).
    notes: how the model was evaluated (a :class:`~qcarleman.autodiff.gdmap.GDMap`'s
    ``evaluation``: dropout off, batch-norm batch statistics), when the map comes from a model.
    """

    order: int
    trajectory: Tensor
    ranks: list[int] = field(default_factory=list)
    discarded: list[float] = field(default_factory=list)
    g1_products: int = 0
    g2_products: int = 0
    seconds: list[float] = field(default_factory=list)
    level2_norms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> Tensor:
        """ŷ1(T), the emulated z_T."""
        return self.trajectory[-1]

    def numpy(self) -> np.ndarray:
        """The trajectory as a (T+1, d) float64 NumPy array (copied to the CPU)."""
        return self.trajectory.detach().cpu().double().numpy()

    def _headline(self) -> dict:
        return {
            "order": self.order,
            "steps": self.trajectory.shape[0] - 1,
            "dim": self.trajectory.shape[1] if self.trajectory.ndim > 1 else 0,
            "max_rank": max(self.ranks, default=0),
            "g1_products": self.g1_products,
            "g2_products": self.g2_products,
            "seconds": float(sum(self.seconds)),
        }

    def __repr__(self) -> str:
        return short_repr("LowRankResult", self._headline() | {"trajectory": self.trajectory})

    def _repr_html_(self) -> str:
        return html_table(
            f"LowRankResult: Carleman order {self.order} emulation (ALGORITHM.md §2)",
            self._headline() | {"trajectory": self.trajectory},
            "per-step table: to_pandas(); trajectory as NumPy: numpy(); plot: "
            "qcarleman.report.plots.plot_trajectory(result)",
        )

    def to_dict(self) -> dict:
        """JSON-able dict (trajectory as nested lists); inverse of :meth:`from_dict`."""
        return {
            "order": self.order,
            "trajectory": self.numpy().tolist(),
            "ranks": list(self.ranks),
            "discarded": [float(v) for v in self.discarded],
            "g1_products": self.g1_products,
            "g2_products": self.g2_products,
            "seconds": [float(v) for v in self.seconds],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LowRankResult:
        """Rebuild from :meth:`to_dict` (trajectory as a float64 CPU tensor)."""
        return cls(**(d | {"trajectory": torch.tensor(d["trajectory"], dtype=torch.float64)}))

    def to_pandas(self):
        """One row per step t: ‖ŷ1(t)‖, rank and discarded weight of level 2 (pandas optional)."""
        T = self.trajectory.shape[0]
        pad = lambda v, fill: list(v) + [fill] * (T - len(v))
        return to_pandas(
            {
                "t": np.arange(T),
                "norm": np.linalg.norm(self.numpy().reshape(T, -1), axis=1),
                "rank": pad(self.ranks, 0),
                "discarded": pad(self.discarded, 0.0),
            }
        )


@runtime_checkable
class _TorchNative(Protocol):
    """A map with torch-native coefficients (a GDMap): tg0(t), tg1(t, U), tg2(t, U, V)."""

    def tg0(self, t: int) -> Tensor: ...

    def tg1(self, t: int, U: Tensor) -> Tensor: ...

    def tg2(self, t: int, U: Tensor, V: Tensor) -> Tensor: ...

    def tg12(
        self, t: int, U: Tensor, s: Tensor, out: Tensor | None = None
    ) -> tuple[Tensor, Tensor]: ...

    def release_graphs(self, t: int | None = None) -> None: ...


class _TorchCoefficients:
    """G0(t), G1(t)·U, G2(t)(U, V) as torch tensors: a GDMap's native ones, or a NumPy map's."""

    def __init__(self, qmap: QuadraticMap):
        if not isinstance(qmap, QuadraticMap):
            raise UsageError(
                f"low-rank emulation needs a QuadraticMap (e.g. a GDMap), got {type(qmap).__name__}"
            )
        self.qmap = qmap
        self.d = qmap.dim
        self._tmap = qmap if isinstance(qmap, _TorchNative) else None
        self.native = self._tmap is not None
        self.dtype = getattr(qmap, "dtype", torch.float64) if self.native else torch.float64
        self.device = getattr(qmap, "device", torch.device("cpu")) if self.native else None

    def g0(self, t: int) -> Tensor:
        if self._tmap is not None:
            return self._tmap.tg0(t)
        return torch.as_tensor(self.qmap.g0(t))

    def g1(self, t: int, U: Tensor) -> Tensor:
        if self._tmap is not None:
            return self._tmap.tg1(t, U)
        return torch.as_tensor(self.qmap.g1(t, U.numpy()))  # a NumPy map: on the CPU

    def g2(self, t: int, U: Tensor, V: Tensor) -> Tensor:
        if self._tmap is not None:
            return self._tmap.tg2(t, U, V)
        return torch.as_tensor(self.qmap.g2(t, U.numpy(), V.numpy()))

    def g12(self, t: int, U: Tensor, s: Tensor, out: Tensor) -> Tensor:
        """G1(t) U written into ``out``; returns w = Σ_k s_k G2(t)(u_k, u_k) (GDMap: one sweep,
        no block of G2 columns; skipped for a NumPy map when s = 0)."""
        if self._tmap is not None:
            return self._tmap.tg12(t, U, s, out)[1]
        out.copy_(self.g1(t, U))
        return self.g2(t, U, U) @ s if torch.any(s != 0) else torch.zeros(self.d)

    def done(self, t: int) -> None:
        """Step t's products are done: a GDMap releases its cached graphs (SGD)."""
        if self._tmap is not None:
            self._tmap.release_graphs(t)


def _start(qmap: QuadraticMap, z0, T: int, extra_vectors: int) -> tuple[_TorchCoefficients, Tensor]:
    co = _TorchCoefficients(qmap)
    qmap.check_horizon(T)
    z = torch.as_tensor(qmap._check_state(np.asarray(z0, dtype=float)))
    z = z.to(dtype=co.dtype, device=co.device)
    itemsize = torch.finfo(co.dtype).bits // 8
    check_memory(
        float(itemsize) * co.d * (T + 1 + extra_vectors),
        f"the emulated trajectory and factors (d = {co.d}, T = {T})",
    )
    return co, z


def _progress(T: int, desc: str, show: bool):
    from tqdm import tqdm

    return tqdm(range(T), desc=desc, disable=not show, leave=False)


def emulate_order1(qmap: QuadraticMap, z0, T: int, progress: bool = False) -> LowRankResult:
    """Order-1 Carleman (linearized GD): ŷ1(t+1) = G0(t) + G1(t) ŷ1(t) (ALGORITHM.md §2)."""
    co, y1 = _start(qmap, z0, T, 2)
    traj = torch.empty((T + 1, co.d), dtype=co.dtype, device=y1.device)
    traj[0] = y1
    res = LowRankResult(order=1, trajectory=traj, ranks=[0] * (T + 1), discarded=[0.0] * (T + 1))
    res.notes += [qmap.evaluation] if hasattr(qmap, "evaluation") else []
    for t in _progress(T, "order-1 emulation", progress):
        start = time.perf_counter()
        y1 = co.g0(t) + co.g1(t, y1[:, None])[:, 0]
        traj[t + 1] = y1
        res.g1_products += 1
        co.done(t)
        res.seconds.append(time.perf_counter() - start)
    return res


def emulate_order2(
    qmap: QuadraticMap,
    z0,
    T: int,
    max_rank: int | None = None,
    rtol: float = 0.0,
    progress: bool = False,
) -> LowRankResult:
    """Order-2 Carleman with ŷ2 = U diag(s) Uᵀ (module docstring; ALGORITHM.md §2, last bullet).

    ``max_rank`` / ``rtol`` switch on truncation (module docstring); without them the result is
    the exact order-2 truncated dynamics (rank 2t, or 2t+1 from z0 ≠ 0). One sweep of products
    per step into a preallocated factor block; a GDMap's cached graphs of step t are released
    after step t (module docstring).
    """
    if max_rank is not None and (int(max_rank) != max_rank or max_rank < 1):
        raise UsageError(f"max_rank = {max_rank} is invalid; use an integer ≥ 1 or None")
    if not np.isfinite(rtol) or not 0 <= rtol < 1:
        raise UsageError(f"rtol = {rtol} is invalid; use 0 ≤ rtol < 1")
    r_max = 2 * T + 1 if max_rank is None else min(int(max_rank) + 2, 2 * T + 1)
    co, y1 = _start(qmap, z0, T, 2 * r_max + 4)
    dt, dev = co.dtype, y1.device
    traj = torch.empty((T + 1, co.d), dtype=dt, device=dev)
    traj[0] = y1
    # The factors as rows: F[k] = u_k, so the columns of U = Fᵀ are contiguous vectors.
    F = y1[None].clone() if torch.any(y1 != 0) else torch.empty((0, co.d), dtype=dt, device=dev)
    s = torch.ones(F.shape[0], dtype=dt, device=dev)
    pm, zero = torch.tensor([1.0, -1.0], dtype=dt, device=dev), torch.zeros(1, dtype=dt, device=dev)
    res = LowRankResult(
        order=2, trajectory=traj, ranks=[F.shape[0]], discarded=[0.0], level2_norms=[_fro(F, s)]
    )
    res.notes += [qmap.evaluation] if hasattr(qmap, "evaluation") else []
    for t in _progress(T, "order-2 low-rank emulation", progress):
        start = time.perf_counter()
        r = F.shape[0]
        new = torch.empty((r + 2, co.d), dtype=dt, device=dev)  # [G1 U, ŷ1', c], in place
        c = new[r + 1]
        co.g12(t, y1[:, None], zero, new[r : r + 1].T)  # G1 ŷ1 (an HVP only)
        c.copy_(new[r])
        if r:  # G1 U into the new block, w = G2·ŷ2 = Σ_k s_k G2(u_k, u_k) accumulated
            c.add_(co.g12(t, F.T, s, new[:r].T))
        res.g1_products += r + 1
        res.g2_products += r
        co.done(t)  # step t's batch is not used again
        torch.add(co.g0(t), c, out=new[r])
        traj[t + 1] = new[r]
        y1, F, s = traj[t + 1], new, torch.cat([s, pm])  # ŷ1' as a row of traj, not of F
        dropped = 0.0
        if max_rank is not None or rtol > 0:
            F, s, dropped = _truncate(F, s, max_rank, rtol)
        res.ranks.append(int(F.shape[0]))
        res.discarded.append(dropped)
        res.level2_norms.append(_fro(F, s))
        res.seconds.append(time.perf_counter() - start)
    return res


def _fro(F: Tensor, s: Tensor) -> float:
    """‖Fᵀ diag(s) F‖_F = √(Σ_ij s_i s_j (F Fᵀ)_ij²) for factor rows F (O(d r²), no d×d)."""
    if F.shape[0] == 0:
        return 0.0
    G = F @ F.T
    return float(torch.sqrt(torch.clamp(s @ (G * G) @ s, min=0.0)))


def _truncate(
    F: Tensor, s: Tensor, max_rank: int | None, rtol: float
) -> tuple[Tensor, Tensor, float]:
    """Best rank-k approximation of Y2 = U diag(s) Uᵀ (U = Fᵀ) via U = QR and the
    eigendecomposition of the r×r core R diag(s) Rᵀ (module docstring). Returns (F_k, s_k,
    ‖dropped‖_F/‖Y2‖_F), F_k the kept factors as rows."""
    Q, R = torch.linalg.qr(F.T)
    core = (R * s) @ R.T
    lam, V = torch.linalg.eigh(0.5 * (core + core.T))
    order = torch.argsort(lam.abs(), descending=True)
    lam, V = lam[order], V[:, order]
    total = float(torch.linalg.vector_norm(lam))
    if total == 0.0:
        return F[:0], s[:0], 0.0
    keep = lam.abs() > rtol * lam.abs().max()
    if max_rank is not None:
        keep[int(max_rank) :] = False
    dropped = float(torch.linalg.vector_norm(lam[~keep])) / total
    return V[:, keep].T @ Q.T, lam[keep], dropped
