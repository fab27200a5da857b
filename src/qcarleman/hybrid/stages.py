r"""The stages of one quantum segment (ALGORITHM.md §8), each a function of typed values.

1. :func:`emulate` — the emulated trajectory x̂_t (and v̂_t with momentum) of the K steps'
   gradient-descent map (:class:`~qcarleman.autodiff.gdmap.GDMap`) with the chosen backend;
2. :func:`solve_history` — with a real solver (``qlsa`` ≠ ideal) the dense history system (§3) of
   a tiny map is solved by :func:`qcarleman.quantum.solve.solve`;
3. :func:`emulated_success_probability` — P_succ of the ideal QLSA from the emulated levels
   (:func:`qcarleman.carleman.history.success_probability`);
4. :func:`download` — ℓ2 tomography of the output blocks with M shots
   (:func:`qcarleman.quantum.readout.download`, §5).

The cost of the segment (κ, resource estimate) is :func:`qcarleman.hybrid.cost.segment_cost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from .settings import READOUT_MODELS, HybridSettings

__all__ = [
    "MapSource",
    "Reference",
    "Emulation",
    "SolverOutput",
    "Download",
    "emulate",
    "carleman_trajectory",
    "solve_history",
    "emulated_success_probability",
    "download",
]

#: Largest dense history system each real solver is run on (``qlsa`` setting).
SOLVER_LIMITS = {"exact": 200_000, "qsvt": 4096, "hhl": 64}


@dataclass(frozen=True)
class MapSource:
    """What the gradient-descent map of a segment is built from (the trainer's model state)."""

    model: torch.nn.Module
    loss_fn: Any
    mask: dict[str, torch.Tensor]
    weight_decay: float
    momentum: float
    device: str


@dataclass(frozen=True)
class Reference:
    """True masked SGD from θ̄ on the segment's batches: x_t = θ_t − θ̄ and (with momentum) v_t
    for t = 0..K, the batch losses and θ_K."""

    x: list[torch.Tensor]
    v: list[torch.Tensor] | None
    losses: list[float]
    theta: torch.Tensor


@dataclass(frozen=True)
class Emulation:
    """The emulated trajectory x̂_t (t = 0..K), v̂_t or None, the order N of the costed Carleman
    system, the level norms ‖ŷ_j(t)‖ when known, notes, and the map and z0 it came from."""

    x: list[torch.Tensor]
    v: list[torch.Tensor] | None
    order: int
    levels: list[list[float]] | None = None
    notes: tuple[str, ...] = ()
    gmap: Any = None
    z0: np.ndarray | None = None

    def errors(self, ref: Reference) -> list[float]:
        """‖x̂_t − x_t‖/‖x_t‖ for t = 1..K against true GD (ALGORITHM.md §8)."""
        return [
            float(torch.linalg.norm(xe - xr) / max(float(torch.linalg.norm(xr)), 1e-300))
            for xe, xr in zip(self.x[1:], ref.x[1:])
        ]

    def final_blocks(self) -> list[torch.Tensor]:
        """The downloaded blocks of z_K: x̂_K, and v̂_K with momentum."""
        return [self.x[-1]] + ([self.v[-1]] if self.v is not None else [])


@dataclass(frozen=True)
class SolverOutput:
    """A real solver's answer on the history system: γ·ν·|ŷ1(T)⟩ (original units), κ and how it
    was computed, P_succ, the fidelity against ``exact``, notes."""

    vector: np.ndarray
    kappa: float
    kappa_method: str
    p_succ: float
    fidelity: float
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Download:
    """The downloaded ẑ (blocks concatenated) against the state z that was read out."""

    z_hat: np.ndarray
    z: np.ndarray
    mode: str  # "exact" | "shots" | "noise-model"
    shots_used: int
    notes: tuple[str, ...]

    @property
    def error(self) -> float:
        """‖ẑ − z‖/‖z‖ (0 for z = 0)."""
        zn = float(np.linalg.norm(self.z))
        return float(np.linalg.norm(self.z_hat - self.z) / zn) if zn > 0 else 0.0


def emulate(
    settings: HybridSettings,
    source: MapSource,
    *,
    batches: list,
    lr: float,
    theta_bar: torch.Tensor,
    v_bar: torch.Tensor | None,
    reference: Reference,
) -> Emulation:
    """The emulated trajectory of one segment with ``settings.backend`` (module docstring of
    :mod:`qcarleman.hybrid.trainer`); the map is SGD with batch t at step t."""
    s = settings
    if s.backend == "true-gd":
        note = "true-gd backend: the emulated state is true masked SGD (no emulation)"
        return Emulation(reference.x, reference.v, int(s.order), notes=(note,))
    from ..autodiff.gdmap import GDMap

    K = len(batches)
    gmap = GDMap(
        source.model,
        source.loss_fn,
        batches,
        lr,
        mask=source.mask,
        weight_decay=source.weight_decay,
        momentum=source.momentum,
        theta=theta_bar.to(source.device),
        per_step=True,
        dtype=torch.float64 if s.dtype == "float64" else torch.float32,
    )
    z0 = gmap.initial_state(v_bar)
    notes: list[str] = []
    levels = None
    if s.backend == "taylor":
        Z, order = gmap.iterate(z0, K), int(s.order)
        notes.append("taylor backend: exact iteration of the cubic Taylor map (no truncation)")
    elif s.backend == "linear":
        from ..autodiff.lowrank import emulate_order1

        Z, order = emulate_order1(gmap, z0, K).trajectory.cpu().numpy(), 1
    else:
        order = int(s.order)
        Z, levels, more = carleman_trajectory(gmap, z0, K, order, s.max_rank)
        notes += more
    Zt = torch.from_numpy(np.asarray(Z, dtype=float))
    n = gmap.n
    v = list(Zt[:, n:]) if source.momentum else None
    return Emulation(list(Zt[:, :n]), v, order, levels, tuple(notes), gmap, z0)


def carleman_trajectory(
    gmap, z0: np.ndarray, K: int, order: int, max_rank: int
) -> tuple[np.ndarray, list[list[float]] | None, list[str]]:
    """Order-N truncated Carleman trajectory (level 1, original units, t = 0..K), the level norms
    ‖ŷ_j(t)‖ when computed, and notes: the low-rank order-2 emulation
    (:func:`qcarleman.autodiff.lowrank.emulate_order2`, ALGORITHM.md §2) for N = 2, the dense
    :class:`~qcarleman.carleman.CarlemanSystem` (its history solution, §3) for other orders."""
    from ..carleman import CarlemanSystem

    if order == 2:
        from ..autodiff.lowrank import emulate_order2

        res = emulate_order2(gmap, z0, K, max_rank=max_rank or None)
        note = f"low-rank order-2 Carleman, final rank {res.ranks[-1]}"
        if max_rank:
            note += f", truncated to ≤ {max_rank} (max discarded weight {max(res.discarded):.3g})"
        return res.trajectory.cpu().numpy(), None, [note]
    d = gmap.dim
    if sum(d**j for j in range(1, order + 1)) > 20_000:
        raise UsageError(
            f"Carleman order {order} of a d = {d} map is too large to emulate densely; "
            "use order = 2 (low-rank) or backend = 'linear'/'taylor'"
        )
    cs = CarlemanSystem(gmap.dense_map(), order)
    ys = cs.history(z0, K).solve().reshape(K + 1, cs.dim)
    traj = np.array([cs.scale * cs.level(y, 1) for y in ys])
    levels = [[float(np.linalg.norm(cs.level(y, j))) for j in range(1, order + 1)] for y in ys]
    return traj, levels, [f"dense Carleman N = {order}, γ = {cs.scale:g}"]


def solve_history(settings: HybridSettings, emu: Emulation, K: int) -> SolverOutput:
    """Solve the segment's dense history system (ALGORITHM.md §3) with the real solver
    ``settings.qlsa`` (:func:`qcarleman.quantum.solve.solve`)."""
    from ..carleman import CarlemanSystem
    from ..quantum.solve import solve

    s = settings
    N, p, d = int(emu.order), s.idle_steps(K), emu.gmap.dim
    dim = (K + p + 1) * sum(d**j for j in range(1, N + 1))
    limit = SOLVER_LIMITS[s.qlsa]
    if dim > limit:
        raise UsageError(
            f"the history system of this segment has dimension {dim} (d = {d}, N = {N}, "
            f"T = {K}, p = {p}); the {s.qlsa} solver handles ≤ {limit}; use qlsa = 'ideal'"
        )
    hist = CarlemanSystem(emu.gmap.dense_map(), N).history(emu.z0, K, idle=p)
    method = "exact" if hist.dim <= 1024 else "estimate"
    kappa = float(hist.kappa(method))
    res = solve(hist, backend=s.qlsa, kappa=kappa)
    note = (
        f"QLSA {s.qlsa} on the dense history system (dim {hist.dim}), fidelity "
        f"{res.fidelity:.6g} against exact"
    )
    return SolverOutput(
        vector=np.asarray(res.output_vector(), dtype=float),
        kappa=kappa,
        kappa_method=f"κ {method}",
        p_succ=float(res.success_probability),
        fidelity=float(res.fidelity),
        notes=(note,),
    )


def emulated_success_probability(emu: Emulation, p: int) -> tuple[float, str]:
    """P_succ of the ideal QLSA on the segment's history system with p idle steps, and its
    source: the emulated level norms where known, else ‖ŷ_j(t)‖ = ‖z_t‖^j, exact for the
    untruncated lift z^{⊗j} (scale γ = 1)."""
    from ..carleman.history import success_probability

    levels = emu.levels
    source = "emulated Carleman levels (ALGORITHM.md §3)"
    if levels is None:
        z_norms = [
            float(torch.linalg.norm(xt if emu.v is None else torch.cat([xt, emu.v[t]])))
            for t, xt in enumerate(emu.x)
        ]
        levels = [[zn**j for j in range(1, emu.order + 1)] for zn in z_norms]
        source = "levels ‖z_t‖^j of the emulated trajectory (exact lift, γ = 1)"
    blocks2 = [sum(v * v for v in lv) for lv in levels]
    return success_probability(blocks2, levels[-1][0] ** 2, p), source


@dataclass(frozen=True)
class _BlockOutput:
    """One output block as :func:`qcarleman.quantum.readout.download` reads a solver's result:
    the state z (normalized by the tomography), P_succ of its flag, ν = norm_scale·√P_succ."""

    output_state: np.ndarray
    success_probability: float
    norm_scale: float
    copies: int = 1
    scale: float = 1.0


def download(
    blocks: list[torch.Tensor], p_succ: float, settings: HybridSettings, *, seed: int
) -> Download:
    """Tomography of the output blocks (ALGORITHM.md §5): each block b is post-selected with
    probability P_b = P_succ·‖b‖²/‖z‖², read out by :func:`qcarleman.quantum.readout.download`
    (ψ̂ from M shots, ν̂ = ‖b‖·√(P̂_b/P_b) from M shots of the flag) with seed 2·``seed`` + i.
    ``shots = 0`` is the exact download."""
    s = settings
    z_norm2 = sum(float(torch.sum(b * b)) for b in blocks)
    hats, used, mode, notes = [], 0, "exact", []
    for i, b in enumerate(blocks):
        z = b.numpy()
        if s.shots == 0 or not np.any(z):
            hats.append(z.copy())
            mode, more = "exact", ["exact download (shots = 0): no tomography noise"]
            notes += [m for m in more if m not in notes]
            continue
        p_block = p_succ * float(np.sum(z * z)) / z_norm2 if z_norm2 > 0 else 0.0
        z_hat, ro = _read_block(z, p_block, s.shots, READOUT_MODELS[s.readout], seed * 2 + i)
        mode = "shots" if ro.model == "sampled" else "noise-model"
        hats.append(z_hat)
        used += int(ro.shots["total"])
        more = list(ro.notes) + [f"norm from {s.shots} shots of the success flag (P_succ known)"]
        notes += [m for m in more if m not in notes]
    z_all = np.concatenate([b.numpy() for b in blocks])
    return Download(np.concatenate(hats), z_all, mode, used, tuple(notes))


def _read_block(z: np.ndarray, p: float, shots: int, model: str, seed: int):
    """ẑ = ν̂ψ̂ of one block and the :class:`~qcarleman.quantum.readout.Readout`."""
    from ..quantum.readout import download as ro_download

    zn = float(np.linalg.norm(z))
    if not 0 < p <= 1:  # P_succ unknown (underflow): the norm is taken as exact, P̂ = 1
        p = 1.0
    result = _BlockOutput(z, p, zn / np.sqrt(p))
    zeros, every = np.zeros(z.size), np.ones(z.size, dtype=bool)
    z_hat, ro = ro_download(zeros, every, result, shots, seed=seed, model=model)
    return z_hat, ro
