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

If E(t) exceeds 1 already at t = 1 there is no window: the summary says so with the numbers,
and the quantum segments are run over ``segment_steps`` steps anyway to show what they would do.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..errors import UsageError
from ..hybrid.trainer import HybridSettings, HybridTrainer, load_records, run_baseline

__all__ = ["run_demo", "run_pipeline", "demo_config", "load_hybrid_config"]


def demo_config(quick: bool = False) -> tuple[dict[str, Any], HybridSettings, dict[str, Any]]:
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
    options = {
        "spectrum_steps": 2 if quick else 6,
        "spectrum_stride": 2,
        "spectrum_probes": 3 if quick else 4,
        "spectrum_iters": 20 if quick else 30,
        "horizon": 20,
        "shot_budgets": [100, 1_000_000] if quick else [10, 100, 1_000, 10_000, 100_000, 1_000_000],
        "emulation_backends": ["linear", "carleman"] if quick else ["linear", "carleman", "taylor"],
    }
    return cfg, hybrid, options


def load_hybrid_config(path: str | os.PathLike) -> tuple[dict[str, Any], HybridSettings, dict]:
    """Read a hybrid TOML file: the training config (see :mod:`qcarleman.training.config`) plus a
    ``[hybrid]`` table (:class:`HybridSettings` keys) and an optional ``[pipeline]`` table
    (keys of :func:`demo_config`'s options)."""
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
    _, _, defaults = demo_config()
    bad = sorted(set(pipe) - set(defaults))
    if bad:
        raise UsageError(
            f"unknown key pipeline.{bad[0]}; allowed keys: {', '.join(sorted(defaults))}"
        )
    return raw, HybridSettings.from_dict(hyb), {**defaults, **pipe}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def run_pipeline(
    config: dict[str, Any],
    hybrid: HybridSettings,
    out: str | os.PathLike,
    options: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    report: Callable[[Path], object] | None = None,
    title: str = "qcarleman hybrid run",
) -> dict[str, Any]:
    """Run the whole pipeline (module docstring) into ``out`` and return the summary dict.

    ``report`` builds the HTML report from the finished directory (the CLI passes
    :func:`qcarleman.report.build_report`; the pipeline layer does not import the report layer).
    """
    import torch
    from tqdm.auto import tqdm

    from ..analysis.spectrum import run_spectra
    from ..training.config import load_config
    from ..training.run import RunDir
    from ..training.trainer import evaluate, sparse_train, train_dense

    t_start = time.perf_counter()
    _, _, defaults = demo_config()
    opt = {**defaults, **(options or {})}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_steps = int(opt["spectrum_steps"])
    cfg_dict = json.loads(json.dumps(config))
    cfg_dict.setdefault("sparse", {})
    cfg_dict["sparse"]["max_steps"] = spec_steps
    cfg_dict["sparse"]["every_step_first"] = max(spec_steps, 1)
    cfg = load_config(cfg_dict)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stages = tqdm(total=8, desc="pipeline", unit="stage", disable=not progress)
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        timings[name] = time.perf_counter() - t_start
        stages.set_postfix_str(name)
        stages.update(1)

    # 1-2. dense training, pruning, the first sparse steps with per-step checkpoints
    dense = train_dense(cfg, out / "dense", progress=progress)
    stage("dense")
    sparse_train(cfg, out / "sparse", source=out / "dense", progress=progress)
    run = RunDir(out / "sparse")
    data = run.dataset()
    dense_acc = evaluate(RunDir(out / "dense").load().model, data, "test")[1]
    pruned_ck = run.load(0)
    pruned_loss, pruned_acc = evaluate(pruned_ck.model, data, "test")
    n_active = sum(int(m.sum()) for m in pruned_ck.mask.values())
    n_total = sum(int(m.numel()) for m in pruned_ck.mask.values())
    stage("prune")

    # 3. spectra after pruning
    spectra = _read_json(out / "spectra.json")
    if spectra is None:
        steps = list(range(0, spec_steps + 1, int(opt["spectrum_stride"])))
        reps = run_spectra(
            out / "sparse",
            steps,
            horizon=int(opt["horizon"]),
            curve_steps=max(60, int(opt["horizon"])),
            method="slq" if n_active > 300 else "exact",
            probes=int(opt["spectrum_probes"]),
            iters=int(opt["spectrum_iters"]),
            k=3,
            show_progress=progress,
        )
        spectra = [r.to_json() | {"nodes": r.nodes, "weights": r.weights} for r in reps]
        write_json(out / "spectra.json", spectra)
        spectra = _read_json(out / "spectra.json")
    first = spectra[0]
    window, closed = int(first["window"]), bool(first["window_closed"])
    stage("spectra")

    # 4. hybrid vs classical over the measured window
    K = hybrid.segment_steps if hybrid.segment_steps != "auto" else hybrid.max_segment_steps
    if hybrid.quantum_steps:
        qsteps, why = hybrid.quantum_steps, "fixed by the config"
    elif window == 0:
        qsteps, why = int(K), "no window (E(1) > 1): quantum segments forced for demonstration"
    elif closed:
        qsteps, why = window, "the measured window t* at the pruned weights"
    else:
        qsteps, why = hybrid.total_steps, "window still open at the end of the E(t) curve"
    qsteps = min(qsteps, hybrid.total_steps)
    settings = replace(hybrid, quantum_steps=qsteps, rho=hybrid.rho or float(first["rho"]))
    dev = cfg.device
    hyb = HybridTrainer(
        out / "sparse", out / "hybrid", settings, device=dev, progress=progress
    ).run()
    base = run_baseline(out / "sparse", out / "classical", settings, device=dev, progress=progress)
    stage("hybrid")

    # 5. degradation as the shot budget shrinks: the quantum phase only (true-gd emulation, so
    #    only the download differs), compared with the baseline at the same step
    crecs = load_records(out / "classical")
    ref = next((r for r in crecs if r["start"] + r["steps"] == qsteps), crecs[-1])
    sweep = []
    for M in tqdm(opt["shot_budgets"], desc="shots", disable=not progress, leave=False):
        sM = replace(settings, backend="true-gd", shots=int(M), total_steps=qsteps)
        d = out / "shots" / f"M_{int(M)}"
        res = HybridTrainer(out / "sparse", d, sM, device=dev, progress=False).run()
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
    write_json(out / "shots.json", sweep)
    stage("shots")

    # 6. emulation error per backend over the first segment after pruning
    emulation = _read_json(out / "emulation.json")
    if emulation is None:
        emulation = []
        for b in opt["emulation_backends"]:
            sE = replace(settings, backend=b, shots=0, total_steps=int(K), quantum_steps=0)
            d = out / "emulation" / b
            HybridTrainer(out / "sparse", d, sE, device=dev, progress=False).run()
            rec = next(r for r in load_records(d) if r["kind"] == "quantum")
            emulation.append(
                {
                    "backend": b,
                    "order": rec["order"],
                    "errors": rec["emulation_errors"],
                    "seconds": rec["seconds"],
                }
            )
        write_json(out / "emulation.json", emulation)
    stage("emulation")

    # 7. the estimate of one quantum segment (the first of the hybrid run)
    hrecs = load_records(out / "hybrid")
    qrecs = [r for r in hrecs if r["kind"] == "quantum"]
    estimate = qrecs[0]["estimate"] if qrecs else None
    stage("estimate")

    # 8. summary + report
    summary = {
        "title": title,
        "dense_accuracy": dense_acc,
        "dense_final_epoch": dense,
        "pruned_accuracy": pruned_acc,
        "pruned_loss": pruned_loss,
        "classical_sparse_accuracy": base["test_acc"],
        "hybrid_accuracy": hyb["test_acc"],
        "accuracy_gap_points": 100.0 * (hyb["test_acc"] - base["test_acc"]),
        "window": window,
        "window_closed": closed,
        "window_statement": _window_statement(first, window, closed),
        "regime": first["regime"],
        "rho": first["rho"],
        "lambda_min": first["lambda_min"],
        "lambda_max": first["lambda_max"],
        "negative_mass": first["negative_mass"],
        "spectrum_method": first["method"],
        "lr": first["lr"],
        "quantum_steps": qsteps,
        "quantum_steps_reason": why,
        "segment_steps": settings.segment_steps,
        "backend": settings.backend,
        "order": settings.order,
        "shots_per_segment": settings.shots,
        "shots_total": hyb["shots_total"],
        "emulation_error_max": hyb["emulation_error_max"],
        "readout_error_max": hyb["readout_error_max"],
        "n_active": n_active,
        "parameters": n_total,
        "total_steps": settings.total_steps,
        "degradation": [
            {
                k: s[k]
                for k in (
                    "shots",
                    "step",
                    "test_acc",
                    "test_loss",
                    "classical_test_acc",
                    "classical_test_loss",
                    "readout_error_mean",
                )
            }
            for s in sweep
        ],
        "degradation_backend": "true-gd",
        "emulation": [{k: e[k] for k in ("backend", "order", "errors")} for e in emulation],
        "estimate": estimate,
        "qlsa": "ideal (exact-backend semantics); κ from the §3 bound, P_succ from the emulated "
        "levels — labelled in each segment record",
        "config": cfg.to_dict(),
        "hybrid_settings": settings.to_dict(),
        "timings_s": timings,
    }
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    stages.close()
    if report is not None:
        report(out)
    summary["seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", summary)
    return summary


def _window_statement(first: dict[str, Any], window: int, closed: bool) -> str:
    """One honest sentence about the dissipative window at the pruned weights."""
    E = first.get("E") or []
    e1 = E[1] if len(E) > 1 else math.nan
    if window == 0:
        return (
            f"no dissipative window: E(1) = {e1:.6g} > 1 at the pruned weights "
            f"(λ_min = {first['lambda_min']:.4g}, ρ = {first['rho']:.6g})"
        )
    emin = min(E[: window + 1]) if E else math.nan
    tmin = E.index(emin) if E else -1
    tail = (
        f"E(t) ≤ 1 for t ≤ t* = {window}, then exceeds 1"
        if closed
        else f"E(t) ≤ 1 over the whole computed range t ≤ {window} (window not closed)"
    )
    return (
        f"dissipative window after pruning: {tail}; minimum E = {emin:.6g} at t = {tmin}; "
        f"ρ = {first['rho']:.6g} ({first['regime']} for the horizon {first['horizon']})"
    )


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
