r"""Emulation report: emulated quantum output vs training (ALGORITHM.md §1, §2, §6).

For a :class:`~qcarleman.autodiff.gdmap.GDMap` at θ̄ and a horizon T, :func:`emulation_report`
computes the per-step relative error of the emulated parameter update x̂_t (Carleman order N)

    e_N(t) = ‖x̂_t − x_t‖ / ‖x_t‖,  t = 1..T  (e(0) = 0; x = θ_S − θ̄_S, the active coordinates)

against (a) **true GD**: masked (S)GD on the real loss with the same batches
(:meth:`GDMap.true_trajectory`, the trainer's update) and (b) **Taylor**: exact iteration of the
cubic Taylor map (:meth:`QuadraticMap.iterate`). Orders: N = 1 (linearized GD, HVPs only) and
N = 2 (low-rank level 2, :mod:`qcarleman.autodiff.lowrank`) at any size; N ≥ 3 only through the
dense :class:`~qcarleman.carleman.CarlemanSystem` on tiny models (memory predicted first). The
first step where e_N(t) exceeds a user threshold is reported.

Nonlinear diagnostics (ALGORITHM.md §6), on the step-0 coefficients of the GD map x' = f0 + F1x +
F2(x, x) (with momentum these are the coefficients of the position update without the velocity):
‖f0‖ = η‖g‖ (exact), ‖F2‖ = sup_{‖u‖=1} ‖F2(u, u)‖ by the power method of
:func:`qcarleman.dissipation.f2_norm` (a lower bound, labelled), ρ = max|1 − ηλ| from the extreme
Hessian eigenvalues (exact eigendecomposition when n ≤ ``EXACT_MAX``, else Lanczos extremes,
labelled approximate), and R_d* = 2√(‖f0‖‖F2‖)/(1 − ρ) (None when ρ ≥ 1).

:func:`emulate_checkpoint` does all of this for a checkpoint of a training run directory
(docs/training.md): the run's learning rate at that step, momentum, weight decay, mask, momentum
buffer, and the batches the trainer would use next. :func:`plot_report` draws e_N(t) per order.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import dissipation as dis
from ..autodiff.gdmap import GDMap
from ..autodiff.lowrank import emulate_order1, emulate_order2
from ..errors import UsageError

__all__ = ["emulation_report", "emulate_checkpoint", "checkpoint_map", "relative_errors"]


def relative_errors(emulated: np.ndarray, reference: np.ndarray, n: int) -> list[float]:
    """e(t) = ‖x̂_t − x_t‖/‖x_t‖ over the first n coordinates (x), t = 0..T; 0 where x_t = 0
    and x̂_t = x_t, inf where only x_t = 0."""
    out = []
    for a, b in zip(np.asarray(emulated)[:, :n], np.asarray(reference)[:, :n]):
        diff, ref = float(np.linalg.norm(a - b)), float(np.linalg.norm(b))
        out.append(diff / ref if ref > 0 else (0.0 if diff == 0 else math.inf))
    return out


def _crossing(errors: list[float], threshold: float) -> int | None:
    return next((t for t, e in enumerate(errors) if e > threshold), None)


#: Exact eigendecomposition of H up to this n; Lanczos extremes above it, at most this many
#: steps, stopped when both ends' gap bounds are ≤ LANCZOS_TOL·max|θ|.
EXACT_MAX, LANCZOS_ITERS, LANCZOS_TOL = 1500, 60, 1e-8


def _spectrum_ends(gd: GDMap) -> tuple[float, float, str]:
    """(λ_min, λ_max, method) of H at step 0: exact up to n = EXACT_MAX, else the extreme Ritz
    values of Lanczos with the residual-plus-gap rule (Kato–Temple, :func:`spectral.gap_bounds`),
    whose error bounds ``method`` states (on the map's device and in its dtype)."""
    from ..autodiff.lanczos import lanczos
    from ..spectral import exact_eigenvalues

    ops = gd.operators(0)
    if gd.n <= EXACT_MAX:
        lam = exact_eigenvalues(ops.linear_operator())
        return float(lam[0]), float(lam[-1]), "exact"
    res = lanczos(ops, k=1, which="both", maxiter=LANCZOS_ITERS, tol=LANCZOS_TOL, rule="gap")
    method = (
        f"lanczos ({res.iterations} steps; gap bounds |λ_min − θ| ≤ {res.error_smallest[0]:.1e}, "
        f"|λ_max − θ| ≤ {res.error_largest[0]:.1e}"
        f"{'' if res.converged else f', not converged to {LANCZOS_TOL:g}·max|θ|'})"
    )
    return float(res.smallest[0]), float(res.largest[0]), method


def _diagnostic_notes(gd: GDMap, f2_iters: int, method: str, rd: float) -> list[str]:
    """What the diagnostics are (bounds, approximations) and the memory plan, if it split."""
    notes = [f"F2_norm: power-method lower bound ({f2_iters} steps, 1 start)"]
    if method != "exact":
        notes.append(
            f"rho from {method} extreme Ritz values (approximate: the gap bounds hold once the "
            "extreme eigenvalues are separated from the rest, Kato–Temple)"
        )
    if gd.momentum:
        notes.append("f0, F2, rho are the plain-GD coefficients (velocity block excluded)")
    if not math.isfinite(rd):
        notes.append("R_d is undefined (null) because rho ≥ 1")
    if gd.per_step:
        notes.append("diagnostics use the step-0 batch")
    plan = gd.memory_plan
    if plan is not None and plan.split:
        notes.append(f"memory plan: {plan.describe()}")
    return notes


def emulation_report(  # noqa: PLR0913 — landed with the rule (docs/DEVELOPING.md, Lint)
    gd: GDMap,
    T: int,
    order: int = 2,
    threshold: float = 0.1,
    z0: np.ndarray | None = None,
    max_rank: int | None = None,
    f2_iters: int = 20,
    *,
    progress: bool = False,
    keep_trajectories: bool = False,
) -> dict[str, Any]:
    """The emulation report of orders N = 1..``order`` over T steps (module docstring).
    ``keep_trajectories`` adds ``trajectories`` ({"gd", "taylor", "N": (T+1, d) arrays}; not
    JSON) for downstream use, e.g. the download of the emulated output.

    Returns a JSON-able dict: ``steps``, ``order``, ``orders``, ``rel_error_vs_gd`` and
    ``rel_error_vs_taylor`` ({"N": [e(0..T)]}), ``taylor_vs_gd`` (the Taylor model's own error),
    ``threshold``, ``first_above_threshold_vs_gd`` / ``_vs_taylor`` ({"N": t or None}),
    ``f0_norm``, ``F2_norm``, ``rho``, ``lambda_min``, ``lambda_max``, ``regime``, ``R_d``,
    ``ranks`` (order-2 rank per step), ``discarded`` (truncation), ``seconds`` per part, ``n``,
    ``d``, ``lr``, ``momentum``, ``weight_decay``, ``notes`` (approximations, labelled).
    """
    if int(order) != order or order < 1:
        raise UsageError(f"order N = {order} is invalid; use an integer N ≥ 1")
    if not np.isfinite(threshold) or threshold <= 0:
        raise UsageError(f"threshold = {threshold} is invalid; use a relative error > 0")
    gd.check_horizon(T)
    z0 = gd.initial_state() if z0 is None else gd._check_state(z0)
    n, seconds, notes = gd.n, {}, [gd.evaluation]

    t0 = time.perf_counter()
    true = gd.true_trajectory(T, z0)
    seconds["true_gd"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    taylor = gd.iterate(z0, T)
    seconds["taylor"] = time.perf_counter() - t0

    trajectories = {"gd": true, "taylor": taylor}
    vs_gd: dict[str, list[float]] = {}
    vs_taylor: dict[str, list[float]] = {}
    ranks: list[int] = []
    discarded: list[float] = []
    dense_map = None
    for N in range(1, int(order) + 1):
        t0 = time.perf_counter()
        if N == 1:
            traj = emulate_order1(gd, z0, T, progress=progress).trajectory.cpu().numpy()
        elif N == 2:
            res = emulate_order2(gd, z0, T, max_rank=max_rank, progress=progress)
            traj = res.trajectory.cpu().numpy()
            ranks, discarded = res.ranks, res.discarded
            if max_rank is not None:
                notes.append(
                    f"order 2 truncated to rank ≤ {max_rank}: max discarded weight "
                    f"{max(discarded):.3e} (relative Frobenius norm of ŷ2)"
                )
        else:
            from ..carleman import CarlemanSystem

            dense_map = dense_map or gd.dense_map()
            traj = CarlemanSystem(dense_map, N).iterate(z0, T)
            notes.append(f"order {N} by the dense CarlemanSystem (d = {gd.dim})")
        seconds[f"order_{N}"] = time.perf_counter() - t0
        trajectories[str(N)] = traj
        vs_gd[str(N)] = relative_errors(traj, true, n)
        vs_taylor[str(N)] = relative_errors(traj, taylor, n)

    t0 = time.perf_counter()
    f0, f2 = gd.operators(0).nonlinear_norms(gd.lr, f2_iters)
    lam_min, lam_max, method = _spectrum_ends(gd)
    rho = dis.rho(np.array([lam_min, lam_max]), gd.lr)
    rd = dis.rd_star(f0, f2, rho)
    seconds["diagnostics"] = time.perf_counter() - t0
    notes += _diagnostic_notes(gd, f2_iters, method, rd)
    plan = gd.memory_plan

    report = {
        "steps": int(T),
        "order": int(order),
        "orders": list(range(1, int(order) + 1)),
        "rel_error_vs_gd": vs_gd,
        "rel_error_vs_taylor": vs_taylor,
        "taylor_vs_gd": relative_errors(taylor, true, n),
        "threshold": float(threshold),
        "first_above_threshold_vs_gd": {k: _crossing(v, threshold) for k, v in vs_gd.items()},
        "first_above_threshold_vs_taylor": {
            k: _crossing(v, threshold) for k, v in vs_taylor.items()
        },
        "f0_norm": f0,
        "F2_norm": f2,
        "lambda_min": lam_min,
        "lambda_max": lam_max,
        "rho": rho,
        "regime": dis.regime(rho, T),
        "R_d": rd if math.isfinite(rd) else None,
        "ranks": ranks,
        "discarded": discarded,
        "update_norm_gd": [float(np.linalg.norm(x[:n])) for x in true],
        "n": n,
        "d": gd.dim,
        "lr": gd.lr,
        "momentum": gd.momentum,
        "weight_decay": gd.weight_decay,
        "sgd": gd.per_step,
        "seconds": seconds,
        "memory_plan": None if plan is None else plan.to_json(),
        "notes": notes,
    }
    if keep_trajectories:
        report["trajectories"] = trajectories
    return report


def _velocity(ck, gd: GDMap) -> torch.Tensor | None:
    """PyTorch's momentum buffers of a checkpoint on the active set (None if μ = 0 or absent)."""
    if not gd.momentum:
        return None
    opt = ck.optimizer or {}
    state = opt.get("state", {})
    groups = opt.get("param_groups", [])
    ids = [i for g in groups for i in g.get("params", [])]
    bufs = {}
    for (name, p), i in zip(ck.model.named_parameters(), ids):
        buf = state.get(i, {}).get("momentum_buffer")
        bufs[name] = torch.zeros_like(p) if buf is None else buf
    if not bufs:
        return None
    return gd.active.flatten(bufs)


def checkpoint_map(  # noqa: PLR0913 — landed with the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    step: int | None,
    T: int,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float64,
    chunk_size: int | None = None,
    device: str | None = None,
    memory_limit: int | str | None = None,
    hvp_mode: str = "functional",
) -> tuple[GDMap, np.ndarray, Any]:
    """The GD map of checkpoint ``step`` (latest if None) of a training run and its start state:
    the run's η (schedule at that step, or ``lr``), μ, λ (or the overrides), mask, the T batches
    the trainer uses from that step on (SGD) or the full batch (``optimizer = "gd"``), and
    z0 with the checkpoint's momentum buffer; ``device`` where the products run (default: the
    model's); ``memory_limit`` for the map's memory plan (micro-batches when a product would not
    fit, :class:`~qcarleman.autodiff.gdmap.GDMap`); ``hvp_mode`` of the map ("cached" for many
    products at θ̄). Returns (map, z0, loaded checkpoint)."""
    from ..training.run import RunDir

    if int(T) != T or T < 1:
        raise UsageError(f"steps T = {T} is invalid; use an integer T ≥ 1")
    run = RunDir(run_dir)
    ck = run.load(step)
    meta = ck.meta
    eta = meta.lr_at(ck.step) if lr is None else float(lr)
    sgd = meta.optimizer != "gd"
    batches = run.batches(int(T) if sgd else 1, batch_size=batch_size, start_step=ck.step)
    mu = meta.momentum if momentum is None else float(momentum)
    wd = meta.weight_decay if weight_decay is None else float(weight_decay)
    gd = GDMap(
        ck.model,
        ck.loss_fn,
        batches,
        eta,
        mask=ck.mask,
        weight_decay=wd,
        momentum=mu,
        per_step=sgd,
        dtype=dtype,
        chunk_size=chunk_size,
        device=device,
        memory_limit=memory_limit,
        hvp_mode=hvp_mode,
    )
    return gd, gd.initial_state(_velocity(ck, gd)), ck


def emulate_checkpoint(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    step: int | None,
    T: int,
    order: int = 2,
    threshold: float = 0.1,
    lr: float | None = None,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float64,
    max_rank: int | None = None,
    f2_iters: int = 20,
    chunk_size: int | None = None,
    progress: bool = False,
    keep_trajectories: bool = False,
    device: str | None = None,
    memory_limit: int | str | None = None,
    hvp_mode: str = "cached",
) -> dict[str, Any]:
    """:func:`emulation_report` for checkpoint ``step`` (latest if None) of a training run, on
    the map of :func:`checkpoint_map`. ``chunk_size`` bounds the columns per vmapped product
    call (functional mode; memory O(P·chunk) instead of O(P·rank) for large models); ``device``
    where the products run (default: the checkpoint model's device); ``memory_limit`` for the
    memory plan (:func:`checkpoint_map`); ``hvp_mode`` "cached" (default: the order-2 emulation
    runs ≈ 2t products per step at one θ̄ and batch, one reverse pass each through that step's
    cached gradient graph, released after the step) or "functional" (vmapped from scratch)."""
    gd, z0, ck = checkpoint_map(
        run_dir,
        step,
        T,
        lr=lr,
        batch_size=batch_size,
        dtype=dtype,
        chunk_size=chunk_size,
        device=device,
        memory_limit=memory_limit,
        hvp_mode=hvp_mode,
    )
    report = emulation_report(
        gd,
        T,
        order=order,
        threshold=threshold,
        z0=z0,
        max_rank=max_rank,
        f2_iters=f2_iters,
        progress=progress,
        keep_trajectories=keep_trajectories,
    )
    report.update(
        run_dir=str(Path(run_dir)),
        checkpoint=ck.step,
        P=gd.active.P,
        dtype=str(dtype),
        device=str(gd.device),
        hvp_mode=gd.operators(0).hvp_path,
    )
    return report
