r"""Inputs of the resource estimate measured on a training checkpoint (ALGORITHM.md §6–§7).

:func:`measure_run` loads checkpoint ``step`` of a run directory (docs/training.md,
:class:`~qcarleman.training.run.RunDir`) and measures, on the active set of its mask:

* n (active parameters), P (all parameters), per-step classical FLOPs by layer, sparse and
  dense (:func:`qcarleman.training.flops.step_flops`, kind measured);
* η: the run's schedule at ``step`` (:meth:`CheckpointMeta.lr_at`) or ``lr``;
* the Hessian H = ∇²L(θ̄) + λI of the mean loss over ``n_batches`` batches of the trainer's data
  order starting at ``step`` (the batches of the first steps of the segment), as a
  :class:`~qcarleman.autodiff.operators.LossOperators` (float64);
* λ_min, λ_max by Lanczos with full reorthogonalization (:func:`qcarleman.autodiff.lanczos.lanczos`,
  k = 1 at each end, stopped when both gap bounds (Kato–Temple) are ≤ ``lanczos_tol``·max|θ|;
  the bounds go into the source text), hence
  ρ = ‖F1‖ = max|1 − ηλ| = max(|1 − ηλ_min|, |1 − ηλ_max|) (:func:`qcarleman.dissipation.rho`;
  ALGORITHM.md §6; |1 − ηλ| is convex in λ, so the ends suffice) and the regime for the
  horizon T;
* ‖f0‖ = η‖g‖ with g = ∇L(θ̄) + λθ̄ (:func:`qcarleman.dissipation.f0_norm`) and
  ‖F2‖ = sup ‖F2(u,u)‖, F2(u,v) = −(η/2)K[·,u,v], by the power method on third-order products
  (:func:`qcarleman.dissipation.f2_norm`; a lower bound, tight at convergence), as in
  :func:`~qcarleman.analysis.spectrum.model_spectrum` with ``nonlinear=True``;
* the Hessian row sparsity s, **sampled**: the nonzeros of H·e_i (|H_ji| > ``rtol``·max_j|H_ji|)
  for ``sparsity_samples`` random rows i (all rows when that is ≥ n, then exact); s = the
  maximum over the sample, a lower bound on the true maximum row count.

Caveat stated in every ``source``: ρ, ‖F2‖ and s are those of the Hessian of these batches,
not a bound over the different per-step maps F1(t) of SGD (ALGORITHM.md §1).

:func:`estimate_run` feeds the measurements into :func:`qcarleman.quantum.cost.estimate.estimate`,
so κ is the §3 bound from the measured ρ, ‖f0‖ and ‖F2‖; each measured input is a
:class:`~qcarleman.quantity.Quantity` of kind ``"measured"`` whose ``source`` says how it was
measured. Explicit keywords (e.g. ``rho=``, ``kappa=``, ``sparsity=``) override the measurement.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .. import dissipation as dis
from ..autodiff.lanczos import lanczos
from ..errors import UsageError
from ..quantity import Quantity
from ..quantum.cost.estimate import DEFAULT_MODEL, ResourceEstimate, estimate
from ..quantum.cost.inputs import Conditioning, CostModel, Problem, split_inputs

__all__ = ["measure_run", "estimate_run"]


def measure_run(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    step: int | None = None,
    *,
    T: int = 20,
    n_batches: int = 1,
    batch_size: int | None = None,
    lr: float | None = None,
    split: str = "train",
    f2_iters: int = 20,
    sparsity_samples: int = 8,
    rtol: float = 1e-12,
    lanczos_tol: float = 1e-8,
    lanczos_maxiter: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure the estimate's inputs on checkpoint ``step`` (default: the first) of a run.

    Returns ``{"inputs": {...}, "details": {...}}``: the named inputs of
    :class:`~qcarleman.quantum.cost.inputs.Problem` and
    :class:`~qcarleman.quantum.cost.inputs.Conditioning` (n, P, batch_size, flops_per_step,
    momentum; rho, f0_norm, F2_norm, sparsity as measured Quantities whose ``source`` says how)
    and the raw numbers (η, λ_min, λ_max, regime, Lanczos iterations, sampled row counts,
    seconds). See the module docstring.
    """
    from ..autodiff.operators import LossOperators
    from ..training.flops import step_flops
    from ..training.run import RunDir

    if int(n_batches) != n_batches or n_batches < 1:
        raise UsageError(f"--batches {n_batches} is invalid; use at least 1 batch")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr {lr} is invalid; use a finite learning rate > 0")
    if int(sparsity_samples) != sparsity_samples or sparsity_samples < 0:
        raise UsageError(f"--sparsity-samples {sparsity_samples} is invalid; use an integer ≥ 0")
    say = progress or (lambda s: None)
    t0 = time.perf_counter()
    run = RunDir(run_dir)
    steps = run.steps()
    if not steps:
        raise UsageError(f"{run_dir} has no checkpoints; train it first")
    step = steps[0] if step is None else int(step)
    if step not in steps:
        raise UsageError(f"no checkpoint at step {step} in {run_dir}; it has steps {steps}")
    ck = run.load(step)
    model, mask, meta = ck.model, ck.mask, ck.meta
    eta = float(lr) if lr is not None else meta.lr_at(step)
    wd = meta.weight_decay
    B = int(batch_size or meta.batch_size)
    batches = run.batches(int(n_batches), B, split, start_step=step)
    B = int(batches[0][0].shape[0])
    P = sum(p.numel() for p in model.parameters())
    x0 = batches[0][0]
    flops = step_flops(model, tuple(x0.shape[1:]), B, mask)
    ops = LossOperators(model, ck.loss_fn, batches, mask=mask, weight_decay=wd, hvp_mode="cached")
    n = ops.n
    data = f"{n_batches} batch(es) of {B} from step {step} ({split})"

    say("lanczos")
    ext = lanczos(  # on the model's device, float64
        ops,
        k=1,
        tol=lanczos_tol,
        rule="gap",
        maxiter=lanczos_maxiter,
        seed=seed,
    )
    lam_min, lam_max = float(ext.smallest[0]), float(ext.largest[0])
    rho = dis.rho(np.array([lam_min, lam_max]), eta)
    conv = "converged" if ext.converged else f"NOT converged to tol {lanczos_tol}"
    src_rho = (
        f"measured: max|1 − ηλ| at η = {eta:.6g}, λ_min/λ_max by Lanczos (full reorth., "
        f"{ext.iterations} iterations, {ext.matvecs} HVPs, {conv}; gap bounds "
        f"{ext.error_smallest[0]:.1e} / {ext.error_largest[0]:.1e}) on the Hessian of {data}; "
        "not a bound over the per-step maps F1(t)"
    )

    say("‖f0‖, ‖F2‖")
    f0, f2 = ops.nonlinear_norms(eta, f2_iters, seed)
    src_f0 = f"measured: η‖∇L(θ̄) + λθ̄‖ on {data}"
    src_f2 = (
        f"measured: power method (S-HOPM, {f2_iters} steps, 1 start) on third-order products "
        f"K[·,u,u] of {data}; a lower bound on ‖F2‖"
    )

    inputs: dict[str, Any] = dict(
        n=n,
        P=P,
        batch_size=B,
        flops_per_step=flops,
        rho=Quantity(rho, "measured", source=src_rho),
        f0_norm=Quantity(f0, "measured", source=src_f0),
        F2_norm=Quantity(f2, "measured", source=src_f2),
        momentum=bool(meta.momentum),
    )
    details: dict[str, Any] = dict(
        step=step,
        lr=eta,
        weight_decay=wd,
        lambda_min=lam_min,
        lambda_max=lam_max,
        regime=dis.regime(rho, T),
        lanczos_iterations=ext.iterations,
        lanczos_converged=bool(ext.converged),
        n_batches=int(n_batches),
    )

    if sparsity_samples > 0:
        say("sparsity")
        k = min(int(sparsity_samples), n)
        rows = (
            np.arange(n)
            if k == n
            else np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
        )
        E = torch.zeros(n, k, dtype=ops.dtype)
        E[torch.as_tensor(rows), torch.arange(k)] = 1.0
        H = ops.hvp_batch(E).abs()  # columns H·e_i = rows of the symmetric H
        counts = (H > rtol * H.amax(dim=0, keepdim=True)).sum(dim=0).tolist()
        how = "exact: all n rows" if k == n else f"sampled: max over {k} random rows (seed {seed})"
        inputs["sparsity"] = Quantity(
            max(1, int(max(counts))),
            "measured",
            source=f"measured ({how}): nonzeros of H·e_i, |H_ji| > {rtol:g}·max_j|H_ji|, on {data}"
            + ("" if k == n else "; a lower bound on the maximum row count"),
        )
        details.update(
            sparsity_rows=[int(r) for r in rows],
            sparsity_counts=[int(c) for c in counts],
            sparsity_mean=float(np.mean(counts)),
        )
    details["seconds"] = time.perf_counter() - t0
    return {"inputs": inputs, "details": details}


def estimate_run(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    step: int | None = None,
    *,
    T: int = 20,
    n_batches: int = 1,
    batch_size: int | None = None,
    lr: float | None = None,
    f2_iters: int = 20,
    sparsity_samples: int = 8,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model: CostModel = DEFAULT_MODEL,
    **given: Any,
) -> ResourceEstimate:
    """:func:`~qcarleman.quantum.cost.estimate.estimate` with n, P, FLOPs, ρ, ‖f0‖, ‖F2‖ and s
    measured on a checkpoint (:func:`measure_run`), priced by ``model``. ``given``: keywords of
    Problem or Conditioning (N, p, epsilon, rho, kappa, sparsity, …) that override the
    measurement (None: measured). The result's ``measured`` holds the raw numbers and the run."""
    m = measure_run(
        run_dir,
        step,
        T=T,
        n_batches=n_batches,
        batch_size=batch_size,
        lr=lr,
        f2_iters=f2_iters,
        sparsity_samples=sparsity_samples,
        seed=seed,
        progress=progress,
    )
    problem, cond = split_inputs(
        {**m["inputs"], **{k: v for k, v in given.items() if v is not None}, "T": T}
    )
    est = estimate(problem=Problem(**problem), conditioning=Conditioning(**cond), model=model)
    return replace(est, measured={**m["details"], "run": os.fspath(run_dir)})
