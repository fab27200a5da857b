r"""The end-to-end pipeline: dense → prune → spectra → hybrid vs classical → estimate → report.

:func:`run_pipeline` is what ``qcarleman hybrid --config FILE.toml`` runs for any supported model
and dataset; :func:`run_demo` runs it on the embedded default (scikit-learn digits, a small CNN,
everything on the CPU in about two minutes; ``quick=True`` in well under one). Stages, each
resumable (a finished stage is skipped when its output exists):

1. dense training (:func:`qcarleman.training.trainer.train_dense`) → ``OUT/dense``;
2. global magnitude pruning and ``spectrum_steps`` classical sparse steps with a checkpoint after
   every step (:func:`~qcarleman.training.trainer.sparse_train`) → ``OUT/sparse``;
3. Hessian spectra of the first checkpoints after pruning
   (:func:`qcarleman.analysis.spectrum.run_spectra`), E(t), the window t*, ρ and the regime
   (ALGORITHM.md §6) → ``OUT/spectra.json``;
4. the hybrid run (:class:`~qcarleman.hybrid.trainer.HybridTrainer`) with quantum segments over
   the measured window (``quantum_steps = t*`` unless the config fixes it) and the classical
   baseline with the same steps and data order → ``OUT/hybrid``, ``OUT/classical``;
5. the degradation sweep: the quantum phase of the hybrid run at each shot budget M (``true-gd``
   emulation, so only the download differs), against the baseline at the same step →
   ``OUT/shots/M_<M>``, ``OUT/shots.json``;
6. the emulation error of each backend against true GD over the first segment after pruning
   (``OUT/emulation.json``);
7. the resource estimate of one quantum segment (:func:`qcarleman.quantum.cost.estimate.estimate`);
8. ``OUT/summary.json`` and the HTML report (:func:`qcarleman.report.build_report`).

Paths are owned by :class:`~qcarleman.pipeline.layout.RunLayout`, the options are
:class:`~qcarleman.pipeline.options.PipelineOptions`; each stage is one function below.

If E(t) exceeds 1 already at t = 1 there is no window: the summary says so with the numbers,
and the quantum segments are run over ``segment_steps`` steps anyway to show what they would do.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..atomic import read_json, remove_stale_temps, write_json
from ..errors import UsageError
from ..hybrid.settings import HybridSettings
from ..hybrid.store import load_records
from ..hybrid.trainer import HybridTrainer, run_baseline
from .layout import RunLayout
from .options import PipelineOptions

__all__ = [
    "run_demo",
    "run_pipeline",
    "demo_config",
    "load_hybrid_config",
    "window_statement",
    "quantum_phase",
]


def demo_config(quick: bool = False) -> tuple[dict[str, Any], HybridSettings, PipelineOptions]:
    """The embedded default: (training config dict, hybrid settings, pipeline options).

    digits (8×8, 1,257 training images), SmallCNN(width 16, 2 stages, BN; 6,138 parameters),
    dense SGD (lr 0.05, momentum 0.9, wd 5e-4, batch 32, 6 epochs), 90% global magnitude
    pruning, sparse SGD at the same learning rate; ``quick`` halves the model and the run.
    """
    width, epochs = (8, 3) if quick else (16, 6)
    cfg = {
        "seed": 0,
        "threads": 1,
        "data": {"name": "digits", "val_fraction": 0.1, "test_fraction": 0.2},
        "model": {"name": "smallcnn", "width": width, "stages": 2},
        "train": {
            "optimizer": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "batch_size": 32,
            "epochs": epochs,
            "milestones": [],
            "checkpoint_every": 0,
        },
        "prune": {"amount": 0.9, "scope": "global", "include_classifier": False},
        "sparse": {"mode": "finetune", "lr": 0.05, "epochs": 1, "milestones": []},
    }
    hybrid = HybridSettings(
        backend="carleman",
        order=2,
        segment_steps=5,
        total_steps=20 if quick else 40,
        shots=1_000_000,
    )
    if not quick:
        return cfg, hybrid, PipelineOptions()
    options = PipelineOptions(
        spectrum_steps=2,
        spectrum_probes=3,
        spectrum_iters=20,
        shot_budgets=(100, 1_000_000),
        emulation_backends=("linear", "carleman"),
    )
    return cfg, hybrid, options


def load_hybrid_config(
    path: str | os.PathLike,
) -> tuple[dict[str, Any], HybridSettings, PipelineOptions]:
    """Read a hybrid TOML file: the training config (see :mod:`qcarleman.training.config`) plus a
    ``[hybrid]`` table (:class:`HybridSettings` keys) and an optional ``[pipeline]`` table
    (:class:`PipelineOptions` keys)."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file {p} not found; `qcarleman configs` lists the shipped ones")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {p} is not valid TOML ({exc}); fix the syntax") from None
    hyb = raw.pop("hybrid", {})
    pipe = raw.pop("pipeline", {})
    if not isinstance(hyb, dict) or not isinstance(pipe, dict):
        raise UsageError("[hybrid] and [pipeline] must be tables")
    return raw, HybridSettings.from_dict(hyb), PipelineOptions.from_dict(pipe)


@dataclass(frozen=True)
class Training:
    """Stages 1–2: the dense run's last epoch record and accuracy, the pruned model's accuracy
    and loss, the active-set size n and the number of maskable parameters."""

    dense_final_epoch: dict[str, Any]
    dense_accuracy: float
    pruned_accuracy: float
    pruned_loss: float
    n_active: int
    parameters: int


@dataclass(frozen=True)
class QuantumPhase:
    """How many steps the quantum segments cover, why, and the settings of the hybrid runs."""

    steps: int
    reason: str
    settings: HybridSettings


def run_pipeline(
    config: dict[str, Any],
    hybrid: HybridSettings,
    out: str | os.PathLike,
    options: PipelineOptions | dict[str, Any] | None = None,
    *,
    progress: bool = True,
    report: Callable[[Path], object] | None = None,
    title: str = "qcarleman hybrid run",
) -> dict[str, Any]:
    """Run the whole pipeline (module docstring) into ``out`` and return the summary dict.

    ``options``: :class:`PipelineOptions` or a partial ``[pipeline]`` table. ``report`` builds
    the HTML report from the finished directory (the CLI passes
    :func:`qcarleman.report.build_report`; the pipeline layer does not import the report layer).
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    opt = options if isinstance(options, PipelineOptions) else PipelineOptions.from_dict(options)
    layout = RunLayout(out)
    layout.root.mkdir(parents=True, exist_ok=True)
    for folder in (layout.root, layout.figures):  # temp files of a run killed mid-write
        remove_stale_temps(folder)
    cfg = _training_config(config, opt)
    stages = tqdm(total=8, desc="pipeline", unit="stage", disable=not progress)
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        timings[name] = time.perf_counter() - t_start
        stages.set_postfix_str(name)
        stages.update(1)

    training = train_and_prune(cfg, layout, progress=progress, stage=stage)
    spectra = measure_spectra(layout, opt, training.n_active, progress=progress)
    stage("spectra")
    first = spectra[0]
    phase = quantum_phase(hybrid, first)
    hyb, base = run_hybrid(layout, phase.settings, device=cfg.device, progress=progress)
    stage("hybrid")
    sweep = shot_sweep(layout, phase, opt.shot_budgets, device=cfg.device, progress=progress)
    stage("shots")
    emulation = emulation_errors(layout, phase.settings, opt.emulation_backends, cfg.device)
    stage("emulation")
    qrecs = [r for r in load_records(layout.hybrid) if r["kind"] == "quantum"]
    estimate = qrecs[0]["estimate"] if qrecs else None
    stage("estimate")
    summary = _summary(
        title=title,
        training=training,
        first=first,
        phase=phase,
        runs=(hyb, base),
        sweeps=_sweep_summary(sweep, emulation),
        estimate=estimate,
        config=cfg.to_dict(),
    )
    summary["timings_s"] = timings
    summary["seconds"] = time.perf_counter() - t_start
    write_json(layout.summary, summary)
    stages.close()
    if report is not None:
        report(layout.root)
    summary["seconds"] = time.perf_counter() - t_start
    write_json(layout.summary, summary)
    return summary


def _training_config(config: dict[str, Any], opt: PipelineOptions):
    """The validated training config, its sparse phase cut to ``spectrum_steps`` steps with a
    checkpoint after each; sets the torch thread count."""
    import torch

    from ..training.config import load_config

    cfg_dict = copy.deepcopy(config)
    cfg_dict.setdefault("sparse", {})
    cfg_dict["sparse"]["max_steps"] = opt.spectrum_steps
    cfg_dict["sparse"]["every_step_first"] = max(opt.spectrum_steps, 1)
    cfg = load_config(cfg_dict)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return cfg


def train_and_prune(
    cfg, layout: RunLayout, *, progress: bool, stage: Callable[[str], None]
) -> Training:
    """Stages 1–2: dense training, pruning and the first sparse steps (resumable)."""
    from ..training.run import RunDir
    from ..training.trainer import evaluate, sparse_train, train_dense

    dense = train_dense(cfg, layout.dense, progress=progress)
    stage("dense")
    sparse_train(cfg, layout.sparse, source=layout.dense, progress=progress)
    run = RunDir(layout.sparse)
    data = run.dataset()
    dense_acc = evaluate(RunDir(layout.dense).load().model, data, "test")[1]
    pruned_ck = run.load(0)
    pruned_loss, pruned_acc = evaluate(pruned_ck.model, data, "test")
    stage("prune")
    return Training(
        dense_final_epoch=dense,
        dense_accuracy=dense_acc,
        pruned_accuracy=pruned_acc,
        pruned_loss=pruned_loss,
        n_active=sum(int(m.sum()) for m in pruned_ck.mask.values()),
        parameters=sum(int(m.numel()) for m in pruned_ck.mask.values()),
    )


def measure_spectra(
    layout: RunLayout, opt: PipelineOptions, n_active: int, *, progress: bool
) -> list[dict[str, Any]]:
    """Stage 3: Hessian spectra of the first checkpoints after pruning → ``spectra.json``."""
    from ..analysis.spectrum import run_spectra

    if read_json(layout.spectra) is None:
        reps = run_spectra(
            layout.sparse,
            list(range(0, opt.spectrum_steps + 1, opt.spectrum_stride)),
            horizon=opt.horizon,
            curve_steps=max(60, opt.horizon),
            method="slq" if n_active > 300 else "exact",
            probes=opt.spectrum_probes,
            iters=opt.spectrum_iters,
            k=3,
            show_progress=progress,
        )
        spectra = [r.to_json() | {"nodes": r.nodes, "weights": r.weights} for r in reps]
        write_json(layout.spectra, spectra)
    return read_json(layout.spectra)


def quantum_phase(hybrid: HybridSettings, first: dict[str, Any]) -> QuantumPhase:
    """The quantum phase over the measured window t* at the pruned weights (``first``: the
    spectrum record of step 0), unless the config fixes ``quantum_steps``; ρ from the spectrum
    unless the config gives it."""
    window, closed = int(first["window"]), bool(first["window_closed"])
    if hybrid.quantum_steps:
        qsteps, why = hybrid.quantum_steps, "fixed by the config"
    elif window == 0:
        qsteps = hybrid.nominal_segment_steps
        why = "no window (E(1) > 1): quantum segments forced for demonstration"
    elif closed:
        qsteps, why = window, "the measured window t* at the pruned weights"
    else:
        qsteps, why = hybrid.total_steps, "window still open at the end of the E(t) curve"
    qsteps = min(qsteps, hybrid.total_steps)
    # ‖A_lin‖₂ of the trained map is the ‖G1‖ of the κ bound (ALGORITHM.md §6.1), not ρ
    norm_a = first.get("norm_linear") or first["rho"]
    settings = replace(hybrid, quantum_steps=qsteps, rho=hybrid.rho or float(norm_a))
    return QuantumPhase(qsteps, why, settings)


def run_hybrid(
    layout: RunLayout, settings: HybridSettings, *, device: str, progress: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 4: the hybrid run and its classical baseline; returns both summaries."""
    hyb = HybridTrainer(
        layout.sparse, layout.hybrid, settings, device=device, progress=progress
    ).run()
    base = run_baseline(layout.sparse, layout.classical, settings, device=device, progress=progress)
    return hyb, base


def shot_sweep(
    layout: RunLayout, phase: QuantumPhase, budgets, *, device: str, progress: bool
) -> list[dict[str, Any]]:
    """Stage 5: the quantum phase at each shot budget M (``true-gd`` emulation, so only the
    download differs) against the baseline at the same step → ``shots.json``."""
    from tqdm.auto import tqdm

    qsteps = phase.steps
    crecs = load_records(layout.classical)
    ref = next((r for r in crecs if r["start"] + r["steps"] == qsteps), crecs[-1])
    sweep = []
    for M in tqdm(budgets, desc="shots", disable=not progress, leave=False):
        sM = replace(phase.settings, backend="true-gd", shots=int(M), total_steps=qsteps)
        d = layout.shots_run(M)
        res = HybridTrainer(layout.sparse, d, sM, device=device, progress=False).run()
        recs = [r for r in load_records(d) if r["kind"] == "quantum"]
        ro = [r["readout_error"] for r in recs]
        sweep.append(
            {
                "shots": int(M),
                "step": qsteps,
                "test_acc": res["test_acc"],
                "test_loss": res["test_loss"],
                "classical_test_acc": ref["test_acc"],
                "classical_test_loss": ref["test_loss"],
                "classical_step": ref["start"] + ref["steps"],
                "readout_error_mean": float(sum(ro) / len(ro)) if ro else None,
                "readout_errors": ro,
                "readout": recs[0]["readout"] if recs else None,
            }
        )
    write_json(layout.shots, sweep)
    return sweep


def emulation_errors(
    layout: RunLayout, settings: HybridSettings, backends, device: str
) -> list[dict[str, Any]]:
    """Stage 6: the emulation error of each backend against true GD over the first segment after
    pruning → ``emulation.json`` (resumable)."""
    emulation = read_json(layout.emulation)
    if emulation is not None:
        return emulation
    K = settings.nominal_segment_steps
    emulation = []
    for b in backends:
        sE = replace(settings, backend=b, shots=0, total_steps=K, quantum_steps=0)
        d = layout.emulation_run(b)
        HybridTrainer(layout.sparse, d, sE, device=device, progress=False).run()
        rec = next(r for r in load_records(d) if r["kind"] == "quantum")
        emulation.append(
            {
                "backend": b,
                "order": rec["order"],
                "errors": rec["emulation_errors"],
                "seconds": rec["seconds"],
            }
        )
    write_json(layout.emulation, emulation)
    return emulation


# -- the summary --------------------------------------------------------------------------------
def _summary(
    *,
    title: str,
    training: Training,
    first: dict[str, Any],
    phase: QuantumPhase,
    runs: tuple[dict[str, Any], dict[str, Any]],
    sweeps: dict[str, Any],
    estimate: dict[str, Any] | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """``summary.json`` but its timings (``runs``: the hybrid and the baseline summaries;
    ``sweeps``: :func:`_sweep_summary` of the sweep and emulation records)."""
    hyb, base = runs
    return {
        "title": title,
        **_training_summary(training, base, hyb),
        **_window_summary(first),
        **_hybrid_summary(phase, hyb),
        "n_active": training.n_active,
        "parameters": training.parameters,
        "total_steps": phase.settings.total_steps,
        **sweeps,
        "estimate": estimate,
        "qlsa": "ideal (exact-backend semantics); κ from the §3 bound, P_succ from the emulated "
        "levels — labelled in each segment record",
        "config": config,
        "hybrid_settings": phase.settings.to_dict(),
    }


def _training_summary(t: Training, base: dict, hyb: dict) -> dict[str, Any]:
    return {
        "dense_accuracy": t.dense_accuracy,
        "dense_final_epoch": t.dense_final_epoch,
        "pruned_accuracy": t.pruned_accuracy,
        "pruned_loss": t.pruned_loss,
        "classical_sparse_accuracy": base["test_acc"],
        "hybrid_accuracy": hyb["test_acc"],
        "accuracy_gap_points": 100.0 * (hyb["test_acc"] - base["test_acc"]),
    }


def _window_summary(first: dict[str, Any]) -> dict[str, Any]:
    window, closed = int(first["window"]), bool(first["window_closed"])
    return {
        "window": window,
        "window_closed": closed,
        "window_statement": window_statement(first, window, closed),
        "regime": first["regime"],
        "horizon": first.get("horizon"),
        "rho": first["rho"],
        "lambda_min": first["lambda_min"],
        "lambda_max": first["lambda_max"],
        "negative_mass": first["negative_mass"],
        "spectrum_method": first["method"],
        "lr": first["lr"],
        "momentum": first.get("momentum", 0.0),
        "weight_decay": first.get("weight_decay", 0.0),
        "norm_linear": first.get("norm_linear"),
        "window_paper": first.get("window_paper"),
        "window_closed_paper": first.get("window_closed_paper"),
        "rho_paper": first.get("rho_paper"),
        "regime_paper": first.get("regime_paper"),
        "window_factor": first.get("window_factor"),
        "window_band": first.get("window_band"),
        "window_band_paper": first.get("window_band_paper"),
    }


def _hybrid_summary(phase: QuantumPhase, hyb: dict[str, Any]) -> dict[str, Any]:
    s = phase.settings
    return {
        "quantum_steps": phase.steps,
        "quantum_steps_reason": phase.reason,
        "segment_steps": s.segment_steps,
        "backend": s.backend,
        "order": s.order,
        "shots_per_segment": s.shots,
        "shots_total": hyb["shots_total"],
        "emulation_error_max": hyb["emulation_error_max"],
        "readout_error_max": hyb["readout_error_max"],
    }


_SWEEP_KEYS = (
    "shots",
    "step",
    "test_acc",
    "test_loss",
    "classical_test_acc",
    "classical_test_loss",
    "readout_error_mean",
)


def _sweep_summary(sweep: list[dict], emulation: list[dict]) -> dict[str, Any]:
    return {
        "degradation": [{k: s[k] for k in _SWEEP_KEYS} for s in sweep],
        "degradation_backend": "true-gd",
        "emulation": [{k: e[k] for k in ("backend", "order", "errors")} for e in emulation],
    }


def window_statement(first: dict[str, Any], window: int, closed: bool) -> str:
    """One honest sentence about the dissipative window at the pruned weights (``first``: the
    spectrum record of step 0 with E(t), λ_min, ρ, the regime and the horizon), for the map
    trained (momentum, weight decay; ALGORITHM.md §6.1), followed by the paper's plain-GD window
    (§6) when the record has it."""
    E = first.get("E") or []
    e1 = E[1] if len(E) > 1 else math.nan
    mu = first.get("momentum") or 0.0
    which = f"of the map trained (momentum μ = {mu:g})" if mu else "of the map trained"
    if window == 0:
        text = (
            f"no dissipative window {which}: E(1) = {e1:.6g} > 1 at the pruned weights "
            f"(λ_min = {first['lambda_min']:.4g}, ρ = {first['rho']:.6g})"
        )
    else:
        emin = min(E[: window + 1]) if E else math.nan
        tmin = E.index(emin) if E else -1
        tail = (
            f"E(t) ≤ 1 for t ≤ t* = {window}, then exceeds 1"
            if closed
            else f"E(t) ≤ 1 over the whole computed range t ≤ {window} (window not closed)"
        )
        text = (
            f"dissipative window {which} after pruning: {tail}; minimum E = {emin:.6g} at "
            f"t = {tmin}; ρ = {first['rho']:.6g} ({first['regime']} for the horizon "
            f"{first['horizon']})"
        )
    if first.get("window_paper") is not None:
        wp = first["window_paper"]
        state = "" if first.get("window_closed_paper", True) else " (not closed)"
        text += (
            f"; the paper's plain-GD definition (factor |1 − ηλ|) gives t* = {wp}{state}, "
            f"ρ = {first['rho_paper']:.6g}"
        )
    return text


def run_demo(
    out: str | os.PathLike = "demo-out",
    quick: bool = False,
    progress: bool = True,
    report: Callable[[Path], object] | None = None,
):
    """The embedded default demo (:func:`demo_config`) into ``out``; returns the summary."""
    cfg, hybrid, options = demo_config(quick)
    title = "qcarleman demo (quick)" if quick else "qcarleman demo"
    return run_pipeline(cfg, hybrid, out, options, progress=progress, report=report, title=title)
