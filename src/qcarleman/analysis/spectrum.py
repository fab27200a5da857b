r"""Hessian spectra and dissipation diagnostics of models, checkpoints and runs (ALGORITHM.md §6).

The Hessian H = ∇²L(θ̄) + λI of the active coordinates (pruned ones only with
``include_pruned``) is an operator from :class:`~qcarleman.autodiff.operators.LossOperators`
(or its sharded twin :class:`~qcarleman.autodiff.distributed.DistributedLossOperators`); the
spectral work is :mod:`qcarleman.spectral` and the metrics are :mod:`qcarleman.dissipation`.

Per spectrum (:func:`analyze_operator`; the result type is
:class:`~qcarleman.analysis.spectrum_report.SpectrumReport`):

* ``method="exact"`` (n ≤ ``exact_max`` by default): the dense H from n products and
  ``eigvalsh``; every number is exact.
* ``method="slq"``: Lanczos (full reorthogonalization) for the k largest and k smallest
  eigenvalues (λ_max, λ_min to ``lanczos_tol``), then SLQ with ``probes`` probes × ``iters``
  steps, deflating the converged extreme Ritz pairs (they enter exactly; this removes the probe
  variance of the isolated outliers that dominate |1 − ηλ|^t). E(t), D/G/r, the trace
  (n·Σ w_i θ_i, a Hutchinson estimate with the same probes plus the exact deflated part) and the
  negative mass are then **stochastic estimates**, labelled as such in the output; λ_min, λ_max
  and ρ come from the converged Lanczos extremes.

``negative_mass`` is the fraction of the spectrum (eigenvalue count / n, or SLQ weight) strictly
below −10⁻¹⁰·max|λ|.

**Two maps** (ALGORITHM.md §6.1): E, D, G, r, ``window``, ``rho`` and ``regime`` are those of the
map actually trained, :class:`qcarleman.dissipation.TrainedMap` (η, heavy-ball μ, weight decay;
H from :class:`~qcarleman.autodiff.operators.LossOperators` already contains λ_wd I), with
``norm_linear`` = ‖A_lin‖₂ over [λ_min, λ_max]; ``E_paper``, ``window_paper``, ``rho_paper`` and
``regime_paper`` are the paper's plain-GD definition (§6) on the same H. With μ = 0 they agree.
With SLQ, ``band`` holds the confidence band of E(t) and of t* from the spread over probes
(:func:`qcarleman.dissipation.probe_band`); exact spectra have none.

Over a run (:func:`run_spectra`): η at a checkpoint is the run's schedule at that step
(meta ``lr``·``gamma``^#milestones passed) unless overridden, and the trained map's momentum
and weight decay are the checkpoint meta's ``momentum`` and ``weight_decay``; the Hessian is
taken on ``n_batches`` batches of the trainer's data order — the same batches for every
checkpoint (``data="fixed"``, comparable across steps) or the batches of the steps that follow
each checkpoint (``data="step"``, the map GD actually applies). Plots
(:func:`qcarleman.report.plots.plot_spectra`): a ridge plot of the densities per step, E(t) of
both maps with both windows marked, and D/G/r. With ``store=DIR`` each finished checkpoint's
report is written at once (atomically) to ``DIR/step_<k>.json`` with the settings and the
checkpoint's SHA-256; a rerun with the same settings on the same checkpoint reads it instead of
recomputing, so an interrupted run keeps what it finished.

Products: the operators keep each batch's gradient graph and apply H by one reverse pass per
product (``LossOperators(hvp_mode="cached")``; functional products when the graphs would exceed
the memory limit), in ``dtype`` float64 (default) or float32, on ``device`` (default: the model's).
On such operators Lanczos and SLQ run as torch tensors on that device in that dtype
(:mod:`qcarleman.autodiff.lanczos`; float64 only for the small tridiagonal problems), and the
notes carry the probabilistic certificate of λ_max; the report's ``hvp_path``, ``dtype`` and
``device`` say what ran. Before the first product the intermediates of one product are predicted
(:mod:`qcarleman.autodiff.memory`); when they would not fit in half the memory limit the batches
are split into micro-batches and every product is the size-weighted sum of per-micro-batch
products — the same H without batch norm; with batch norm each micro-batch is normalized by its
own statistics (stated in the notes). ``memory_plan`` in the report says which plan ran.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import dissipation as dis
from ..atomic import jsonable, read_json, remove_stale_temps, write_json
from ..errors import UsageError
from ..spectral import (
    as_linear_operator,
    exact_eigenvalues,
    lanczos,
    slq,
)
from .spectrum_report import SpectrumReport

__all__ = [
    "SpectrumReport",
    "analyze_operator",
    "model_spectrum",
    "run_spectra",
    "parse_checkpoints",
]

Array = np.ndarray

#: ``method="auto"`` takes the exact eigendecomposition up to this n (ALGORITHM.md §6.1).
EXACT_MAX = 4096


def analyze_operator(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    A: Any,
    *,
    n: int | None = None,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    includes_weight_decay: bool = True,
    horizon: int = 20,
    curve_steps: int = 100,
    method: str = "auto",
    exact_max: int = EXACT_MAX,
    k: int = 10,
    probes: int = 16,
    iters: int = 80,
    dist: str = "rademacher",
    seed: int = 0,
    deflate: bool = True,
    lanczos_tol: float = 1e-8,
    lanczos_maxiter: int | None = None,
    memory_limit: int | str | None = None,
    progress: Callable[[str], None] | None = None,
) -> SpectrumReport:
    r"""Spectrum + dissipation diagnostics of a symmetric operator H (ALGORITHM.md §6).

    ``method``: "exact" (dense eigh), "slq" (Lanczos extremes + deflated SLQ) or "auto"
    (exact when n ≤ ``exact_max``). E, D, G, r are computed for t = 0..max(curve_steps, horizon);
    t* and the regime for ``horizon``. ``momentum`` and ``weight_decay`` define the trained map
    (§6.1; ``includes_weight_decay``: whether H already contains λ_wd I, as LossOperators' H
    does); the paper's plain-GD metrics come beside them. See the module docstring for what is
    exact and what is estimated.
    """
    tmap = dis.TrainedMap(float(lr), float(momentum), float(weight_decay))
    t0 = time.perf_counter()
    on_device = hasattr(A, "hvp_batch") and hasattr(A, "theta")  # torch operators: device path
    op = as_linear_operator(A.linear_operator() if on_device else A, n)
    n = op.shape[0]
    if method == "auto":
        method = "exact" if n <= exact_max else "slq"
    if method not in ("exact", "slq"):
        raise UsageError(f"method {method!r} is unknown; use exact, slq or auto")
    Tc = max(int(curve_steps), int(horizon))
    notes: list[str] = []
    converged = True
    if method == "exact":
        lam = exact_eigenvalues(op, memory_limit=memory_limit)
        nodes, weights = lam, np.full(n, 1.0 / n)
        kk = min(k, n)
        top, bottom = lam[::-1][:kk], lam[:kk]
        trace = float(lam.sum())
        matvecs = n
    else:
        if progress:
            progress("lanczos")
        ext = (torch_lanczos if on_device else lanczos)(
            A if on_device else op,
            k=min(k, n),
            tol=lanczos_tol,
            maxiter=lanczos_maxiter,
            seed=seed,
            return_vectors=deflate,
            memory_limit=memory_limit,
        )
        converged = ext.converged
        top, bottom = ext.largest, ext.smallest
        defl = None
        if deflate and 2 * len(top) < n and ext.iterations >= 2 * len(top):
            scale = max(abs(top[0]), abs(bottom[0]), 1e-300)
            ok_t = ext.residual_largest <= 1e-6 * scale
            ok_b = ext.residual_smallest <= 1e-6 * scale
            vals = np.r_[top[ok_t], bottom[ok_b]]
            if vals.size:
                assert ext.vectors_largest is not None and ext.vectors_smallest is not None
                parts = [ext.vectors_largest[:, ok_t], ext.vectors_smallest[:, ok_b]]
                vecs = _torch().cat(parts, 1) if on_device else np.hstack(parts)
                defl = (vals, vecs)
        if progress:
            progress("slq")
        res = (torch_slq if on_device else slq)(
            A if on_device else op,
            probes=probes,
            iters=iters,
            dist=dist,
            seed=seed + 1,
            deflate=defl,
            memory_limit=memory_limit,
        )
        nodes, weights = res.nodes, res.weights
        trace = res.trace()
        matvecs = ext.matvecs + res.matvecs
        notes.append(
            f"E, D, G, r, trace and negative_mass are stochastic estimates (SLQ, {probes} "
            f"{dist} probes × {res.iters} Lanczos steps, {res.deflated} extreme eigenpairs "
            "deflated exactly); lambda_min, lambda_max and rho from Lanczos"
        )
        if not converged:
            notes.append(
                f"Lanczos extremes not converged to tol {lanczos_tol} in {ext.iterations} steps; "
                "raise lanczos_maxiter"
            )
        if on_device:
            from ..autodiff.lanczos import CertifiedLanczosResult

            assert isinstance(ext, CertifiedLanczosResult)  # the device path certifies λ_max
            notes.append(
                f"lambda_max < {float(top[0]) + ext.bound_largest:.6g} with probability "
                f"≥ {1 - ext.delta:g} (Lanczos certificate, qcarleman.autodiff.lanczos)"
            )
    lam_min, lam_max = float(bottom[0]), float(top[0])
    kw: dict[str, Any] = dict(
        horizon=horizon,
        weights=weights,
        interval=(lam_min, lam_max),
        includes_weight_decay=includes_weight_decay,
    )
    trained = dis.diagnose(nodes, tmap, Tc, **kw)
    paper = dis.diagnose(nodes, tmap.paper(), Tc, **kw)
    band = band_paper = None
    if method == "slq" and probes >= 2:
        bkw: dict[str, Any] = dict(includes_weight_decay=includes_weight_decay)
        band = dis.probe_band(nodes, weights, res.probe, tmap, Tc, **bkw)
        band_paper = dis.probe_band(nodes, weights, res.probe, tmap.paper(), Tc, **bkw)
        notes.append(
            f"window_band: t* read off E ± {band.z:g} standard errors over the {probes} probes "
            "(optimistic with few probes)"
        )
    thresh = -1e-10 * max(abs(lam_min), abs(lam_max))
    return SpectrumReport(
        n=n,
        lr=float(lr),
        horizon=int(horizon),
        method=method,
        lambda_min=lam_min,
        lambda_max=lam_max,
        top=[float(v) for v in top],
        bottom=[float(v) for v in bottom],
        trace=float(trace),
        negative_mass=float(np.sum(weights[nodes < thresh])),
        E=trained.E,
        D=trained.D,
        G=trained.G,
        r=trained.r,
        window=trained.window,
        window_closed=trained.window_closed,
        rho=trained.rho,
        regime=trained.regime,
        nodes=np.asarray(nodes),
        weights=np.asarray(weights),
        matvecs=int(matvecs),
        seconds=time.perf_counter() - t0,
        lanczos_converged=bool(converged),
        momentum=tmap.momentum,
        weight_decay=tmap.weight_decay,
        norm_linear=trained.norm,
        window_factor=trained.window_factor,
        paper=paper,
        band=band,
        band_paper=band_paper,
        probe=None if method == "exact" else np.asarray(res.probe),
        notes=notes,
    )


def model_spectrum(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    model,
    loss_fn,
    batches,
    *,
    lr: float,
    mask=None,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    include_pruned: bool = False,
    distributed: bool = False,
    nonlinear: bool = False,
    f2_iters: int = 20,
    dtype: Any = "float64",
    hvp_mode: str = "cached",
    params: Any = None,
    device: Any = None,
    **kwargs: Any,
) -> SpectrumReport:
    r"""Spectrum of the loss Hessian of ``model`` on ``batches`` (active set of ``mask``).

    ``distributed`` shards the batches over the processes of the initialized
    ``torch.distributed`` group (:mod:`qcarleman.autodiff.distributed`); the result equals one
    process's. ``momentum`` and ``weight_decay`` define the trained map (§6.1; H includes
    λ_wd I). ``nonlinear`` adds ‖f0‖ = η‖g‖, ‖F2‖ = (η/2)‖K‖ (power method on third-order
    products, ``f2_iters`` steps) and R_d* (ALGORITHM.md §6). ``dtype`` ("float64", "float32"
    or a torch dtype) is the autodiff precision; ``hvp_mode`` "cached" or "functional" (module
    docstring); ``device`` where every tensor lives (default: the model's). ``params`` (names or
    regular expressions) restricts the Hessian to those parameter tensors
    (:mod:`qcarleman.autodiff.evaluation`). The first note says how the model was evaluated
    (dropout off, batch-norm batch statistics). Other keywords go to
    :func:`analyze_operator`.
    """
    if params is not None and distributed:
        raise UsageError("params= is not supported with distributed=True; select on one process")
    from ..autodiff.evaluation import evaluation_note

    ops = _operators(
        model,
        loss_fn,
        batches,
        distributed=distributed,
        mask=mask,
        weight_decay=weight_decay,
        include_pruned=include_pruned,
        dtype=_torch_dtype(dtype),
        hvp_mode=hvp_mode,
        memory_limit=kwargs.get("memory_limit"),
        device=device,
        **({} if params is None else {"params": params}),
    )
    ops, plan = _fit_to_memory(ops, nonlinear, kwargs.get("memory_limit"))
    rep = analyze_operator(
        ops,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        includes_weight_decay=True,
        **kwargs,
    )
    rep.notes.insert(0, evaluation_note(model))
    rep.extra.update(
        dtype=str(ops.dtype).removeprefix("torch."),
        hvp_path=ops.hvp_path,
        device=str(ops.theta.device),
        memory_plan=None if plan is None else plan.to_json(),
    )
    if plan is not None and plan.split:
        rep.notes.append(f"memory plan: {plan.describe()}")
    if nonlinear:
        f0, f2 = ops.nonlinear_norms(lr, f2_iters, kwargs.get("seed", 0))
        rho_p = rep.paper.rho if rep.paper is not None else rep.rho
        rep.extra.update(f0_norm=f0, f2_norm=f2, rd_star=dis.rd_star(f0, f2, rho_p))
        rep.notes.append(
            f"f2_norm is a power-method lower bound ({f2_iters} steps, 1 start); f0_norm, "
            "f2_norm and rd_star are the paper's plain-GD map's; rd_star is null when "
            "rho_paper ≥ 1"
        )
    return rep


def _fit_to_memory(ops, nonlinear: bool, memory_limit):
    """The operators on the micro-batches of their memory plan (HVPs, and third-order products
    with ``nonlinear``; :func:`qcarleman.autodiff.memory.plan_for`) and the plan; sharded
    operators as they are (each process holds its own shard), plan None."""
    from ..autodiff.memory import micro_batched, plan_for
    from ..autodiff.operators import LossOperators

    if not isinstance(ops, LossOperators):
        return ops, None
    products = ("hvp", "third") if nonlinear else ("hvp",)
    plan = plan_for(ops, products, memory_limit=memory_limit)
    return micro_batched(ops, plan), plan


def torch_lanczos(A, **kw):
    """:func:`qcarleman.autodiff.lanczos.lanczos` (imported lazily: torch only when used)."""
    from ..autodiff.lanczos import lanczos as run

    return run(A, **kw)


def torch_slq(A, **kw):
    """:func:`qcarleman.autodiff.lanczos.slq` (imported lazily)."""
    from ..autodiff.lanczos import slq as run

    return run(A, **kw)


def _torch():
    import torch

    return torch


def _torch_dtype(dtype: Any):
    """torch.float32 / torch.float64 from a torch dtype or its name."""
    import torch

    names = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, str):
        if dtype not in names:
            raise UsageError(f"dtype {dtype!r} is not supported; use float64 or float32")
        return names[dtype]
    return dtype


def _operators(model, loss_fn, batches, *, distributed: bool, **options: Any):
    """LossOperators (or DistributedLossOperators) of the model; ``options`` are their keywords
    (mask, weight_decay, include_pruned, dtype, hvp_mode, memory_limit, device; params for one
    process)."""
    if distributed:
        from ..autodiff.distributed import DistributedLossOperators

        return DistributedLossOperators(model, loss_fn, batches, **options)
    from ..autodiff.operators import LossOperators

    return LossOperators(model, loss_fn, batches, **options)


def parse_checkpoints(spec: str, available: Sequence[int]) -> list[int]:
    """Checkpoint steps from ``A:B`` (inclusive, existing steps in the range), ``A:B:S``,
    ``3,5,8`` (each must exist), ``all`` or ``latest``."""
    avail = sorted(int(s) for s in available)
    if not avail:
        raise UsageError("the run has no checkpoints; train it first")
    spec = str(spec).strip()
    try:
        if spec == "all":
            return avail
        if spec == "latest":
            return [avail[-1]]
        if ":" in spec:
            parts = [int(p) if p else None for p in spec.split(":")]
            if len(parts) > 3:
                raise ValueError
            lo = avail[0] if parts[0] is None else parts[0]
            hi = avail[-1] if len(parts) < 2 or parts[1] is None else parts[1]
            stride = 1 if len(parts) < 3 or parts[2] is None else parts[2]
            if stride < 1:
                raise ValueError
            steps = [s for s in avail if lo <= s <= hi and (s - lo) % stride == 0]
            if not steps:
                raise UsageError(f"no checkpoints in {spec!r}; the run has steps {_brief(avail)}")
            return steps
        steps = sorted({int(p) for p in spec.split(",") if p.strip()})
    except ValueError:
        raise UsageError(
            f"cannot read checkpoints {spec!r}; write A:B (inclusive), A:B:STRIDE, 3,5,8, "
            "all or latest"
        ) from None
    missing = [s for s in steps if s not in avail]
    if missing or not steps:
        raise UsageError(f"no checkpoint at steps {missing}; the run has steps {_brief(avail)}")
    return steps


def _brief(steps: Sequence[int]) -> str:
    s = list(steps)
    return str(s) if len(s) <= 12 else f"[{s[0]}, {s[1]}, ..., {s[-1]}] ({len(s)} in all)"


def run_spectra(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    run_dir: str | os.PathLike,
    checkpoints: str | Sequence[int] = "0:20",
    *,
    lr: float | None = None,
    horizon: int = 20,
    n_batches: int = 1,
    batch_size: int | None = None,
    data: str = "fixed",
    split: str = "train",
    include_pruned: bool = False,
    distributed: bool = False,
    nonlinear: bool = False,
    show_progress: bool = True,
    store: str | os.PathLike | None = None,
    **kwargs: Any,
) -> list[SpectrumReport]:
    """Spectra at checkpoints of a training run directory (docs/training.md); see the module
    docstring for η, the data used and ``store`` (per-checkpoint results kept across runs; not
    with ``distributed``). Other keywords go to :func:`model_spectrum` /
    :func:`analyze_operator`."""
    import torch
    from tqdm import tqdm

    from ..training.run import RunDir

    run = RunDir(run_dir)
    steps = (
        parse_checkpoints(checkpoints, run.steps())
        if isinstance(checkpoints, str)
        else parse_checkpoints(",".join(str(int(s)) for s in checkpoints), run.steps())
    )
    if data not in ("fixed", "step"):
        raise UsageError(f"data = {data!r} is unknown; use fixed or step")
    if int(n_batches) != n_batches or n_batches < 1:
        raise UsageError(f"n_batches = {n_batches} is invalid; use at least 1 batch")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr {lr} is invalid; use a finite learning rate > 0")
    settings = jsonable(
        dict(lr=lr, horizon=horizon, n_batches=n_batches, batch_size=batch_size, data=data,
             split=split, include_pruned=include_pruned, nonlinear=nonlinear)
        | {k: str(v) if not isinstance(v, int | float | str | None) else v
           for k, v in sorted(kwargs.items())}
    )  # fmt: skip
    if store is not None and distributed:
        raise UsageError("store= is not supported with distributed=True")
    cache = _SpectrumStore(store, run, settings) if store is not None else None
    fixed = run.batches(n_batches, batch_size, split) if data == "fixed" else None
    rank0 = not distributed or torch.distributed.get_rank() == 0
    reports = []
    bar = tqdm(steps, desc="spectra", unit="ckpt", disable=not (show_progress and rank0))
    try:
        for step in bar:
            kept = cache.get(step) if cache is not None else None
            if kept is None:
                kept = _checkpoint_spectrum(
                    run,
                    step,
                    batches=fixed or run.batches(n_batches, batch_size, split, start_step=step),
                    lr=lr,
                    options=dict(include_pruned=include_pruned, distributed=distributed,
                                 nonlinear=nonlinear, horizon=horizon, **kwargs),
                    progress=(lambda s, st=step: bar.set_postfix_str(f"step {st}: {s}")),
                )  # fmt: skip
                if cache is not None:
                    cache.put(step, kept)
            reports.append(kept)
    except KeyboardInterrupt:
        if cache is None:
            raise
        raise KeyboardInterrupt(cache.kept([r.step for r in reports], steps)) from None
    finally:
        bar.close()
    return reports


def _checkpoint_spectrum(run, step: int, *, batches, lr, options: dict[str, Any], progress):
    """The spectrum of checkpoint ``step`` of ``run`` (η: ``lr`` or the run's schedule)."""
    ck = run.load(step)
    rep = model_spectrum(
        ck.model,
        ck.loss_fn,
        batches,
        lr=float(lr) if lr is not None else ck.meta.lr_at(step),
        mask=ck.mask,
        weight_decay=ck.meta.weight_decay,
        momentum=ck.meta.momentum,
        progress=progress,
        **options,
    )
    rep.step = int(step)
    rep.extra.update(phase=ck.meta.phase)
    return rep


class _SpectrumStore:
    """The finished checkpoints of :func:`run_spectra` in ``folder/step_<k>.json``: the report
    (:meth:`SpectrumReport.to_dict`), the settings and the checkpoint file's SHA-256, so a
    result is reused only for the same settings on the same checkpoint."""

    def __init__(self, folder: str | os.PathLike, run: Any, settings: dict[str, Any]):
        from pathlib import Path

        self.folder, self.run, self.settings = Path(folder), run, settings
        remove_stale_temps(self.folder)  # left by a writer killed mid-write

    def path(self, step: int):
        return self.folder / f"step_{int(step):08d}.json"

    def _digest(self, step: int) -> str:
        import hashlib

        h = hashlib.sha256()
        with open(self.run.checkpoint_path(step), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def get(self, step: int) -> SpectrumReport | None:
        """The stored report of ``step``, or None (absent, other settings or checkpoint)."""
        try:
            kept = read_json(self.path(step))
        except UsageError:  # damaged (e.g. edited by hand): recomputed and rewritten
            return None
        if not isinstance(kept, dict) or kept.get("settings") != self.settings:
            return None
        if kept.get("checkpoint_sha256") != self._digest(step):
            return None
        try:
            return SpectrumReport.from_dict(kept["report"])
        except (KeyError, TypeError, ValueError):
            return None

    def kept(self, done: list, steps: list[int]) -> str:
        """What an interrupted run keeps (the message of the re-raised KeyboardInterrupt)."""
        if not done:
            return f"no checkpoint of {_brief(steps)} had finished; nothing was kept"
        return (
            f"the spectra of checkpoints {_brief(done)} are kept in {self.folder} and a rerun "
            f"of the same command skips them; {len(steps) - len(done)} of {len(steps)} remain"
        )

    def put(self, step: int, rep: SpectrumReport) -> None:
        record = {"settings": self.settings, "checkpoint_sha256": self._digest(step)}
        write_json(self.path(step), record | {"report": rep.to_dict()})
