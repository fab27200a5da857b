r"""The paper's experiment (Liu et al., Nat. Commun. 15, 434 (2024), Figs. 2–4) on the paper's
model family, plus the emulated quantum output over the window: ``qcarleman paper``.

Stages (each resumable: a finished stage is skipped when its output exists; training resumes
from its checkpoints and the spectra from the per-checkpoint files):

1. ``train``: dense training → global L1 pruning (classifier excluded) → sparse finetuning with
   a checkpoint after every one of the first ``every_step`` steps (and the scratch variant when
   asked) — :func:`qcarleman.training.trainer.train_dense` / :func:`~qcarleman.training.trainer.
   sparse_train`;
2. ``accuracy``: test accuracy and loss of every checkpoint 0..``every_step`` (Fig. 2);
3. ``spectra``: Hessian spectrum by SLQ at ``spectra_steps`` (Fig. 3) —
   :func:`qcarleman.analysis.spectrum.run_spectra`, fixed batches so that steps compare;
4. ``analysis``: E(T) and the window from the step-0 spectrum in the paper's definition (§6) and
   for the momentum map actually trained (§6.1), where E dips and crosses 1, and the
   dissipative / divergent sums D, G and their ratio r at ``mode_points`` (Fig. 4);
5. ``emulation``: order-1 and order-2 (low-rank) Carleman trajectories from step 0 over T =
   the paper-definition window clamped to [emulation_min_steps, emulation_max_steps], against
   true GD (the momentum SGD the trainer applies, same batches), per-step relative error
   (:func:`qcarleman.analysis.emulate.emulate_checkpoint`); the order-2 output downloaded by ℓ2
   tomography (:func:`qcarleman.quantum.readout.tomography`) at each shot budget M;
6. ``estimate``: the resource bill of that segment (:func:`qcarleman.analysis.estimate_run.
   estimate_run`, order 2, horizon T, target ε, largest M as the shots used);
7. ``summary.json`` with the opening findings, then the report (passed in by the CLI).

Paths are owned by :class:`~qcarleman.pipeline.layout.PaperLayout`; presets and options by
:mod:`qcarleman.pipeline.presets`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import dissipation as dis
from ..atomic import read_json, remove_stale_temps, write_json
from .layout import PaperLayout
from .presets import PaperOptions, load_preset

__all__ = ["STAGES", "run_paper", "momentum_window", "findings"]

STAGES = ("train", "accuracy", "spectra", "analysis", "emulation", "estimate")


def run_paper(
    preset: str,
    out: str | os.PathLike,
    *,
    data_root: str | None = None,
    device: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    progress: bool = True,
    report: Callable[[Path], object] | None = None,
) -> dict[str, Any]:
    """Run preset ``preset`` (module docstring) into ``out``; returns the summary dict.
    ``report`` builds the HTML report from the finished directory (the CLI passes
    :func:`qcarleman.report.paper_html.build_paper_report`)."""
    from tqdm.auto import tqdm

    raw, opt = load_preset(preset, data_root=data_root, device=device, overrides=overrides)
    t0 = time.perf_counter()
    lay = PaperLayout(out)
    lay.root.mkdir(parents=True, exist_ok=True)
    for folder in (lay.root, lay.spectrum(0).parent, lay.figures):  # left by a killed run
        remove_stale_temps(folder)
    cfg = _config(raw)
    bar = tqdm(total=len(STAGES), desc="paper", unit="stage", disable=not progress)
    timings: dict[str, float] = {}

    def done(name: str) -> None:
        timings[name] = time.perf_counter() - t0
        bar.set_postfix_str(name)
        bar.update(1)

    training = train_stage(cfg, lay, opt, progress=progress)
    done("train")
    accuracy = accuracy_stage(lay, opt, training, device=cfg.device, progress=progress)
    done("accuracy")
    spectra = spectra_stage(lay, opt, progress=progress)
    done("spectra")
    analysis = analysis_stage(lay, opt, spectra)
    done("analysis")
    emulation = emulation_stage(lay, opt, analysis, progress=progress)
    done("emulation")
    estimate = estimate_stage(lay, opt, emulation, progress=progress)
    done("estimate")
    bar.close()
    summary = _summary(preset, cfg, opt, accuracy, spectra, analysis, emulation, estimate)
    summary["timings_s"] = timings
    summary["seconds"] = time.perf_counter() - t0
    write_json(lay.summary, summary)
    if report is not None:
        report(lay.root)
    return summary


def _config(raw: dict[str, Any]):
    import torch

    from ..training.config import load_config

    cfg = load_config(raw)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return cfg


# -- stage 1: training ----------------------------------------------------------------------------
def train_stage(cfg, lay: PaperLayout, opt: PaperOptions, *, progress: bool) -> dict[str, Any]:
    """Dense → prune → sparse finetune (and scratch); returns sizes and the dense accuracy."""
    from dataclasses import replace

    from ..training.run import RunDir
    from ..training.trainer import evaluate, sparse_train, train_dense

    train_dense(cfg, lay.dense, progress=progress)
    sparse_train(cfg, lay.sparse, source=lay.dense, progress=progress)
    if opt.scratch:
        sparse_train(replace(cfg, sparse_mode="scratch"), lay.scratch, lay.dense, progress)
    ck = RunDir(lay.sparse).load(0)
    data = RunDir(lay.sparse).dataset()
    dense = RunDir(lay.dense).load().model.to(cfg.device)
    loss, acc = evaluate(dense, data, "test", cfg.device)
    return {
        "dense_accuracy": acc,
        "dense_loss": loss,
        "test_samples": len(data.test[1]),
        "parameters": sum(p.numel() for p in ck.model.parameters()),
        "maskable": sum(int(m.numel()) for m in ck.mask.values()),
        "n_active": sum(int(m.sum()) for m in ck.mask.values())
        + sum(p.numel() for name, p in ck.model.named_parameters() if name not in ck.mask),
    }


# -- stage 2: accuracy per step ------------------------------------------------------------------
def accuracy_stage(
    lay: PaperLayout,
    opt: PaperOptions,
    training: dict[str, Any],
    *,
    device: str = "cpu",
    progress: bool,
) -> dict[str, Any]:
    """Test accuracy/loss of checkpoints 0..every_step of each sparse run → accuracy.json."""
    from tqdm.auto import tqdm

    from ..training.run import RunDir
    from ..training.trainer import evaluate

    acc = read_json(lay.accuracy)
    if acc is not None:
        return acc
    runs = {"finetune": lay.sparse} | ({"scratch": lay.scratch} if opt.scratch else {})
    acc = {"dense_accuracy": training["dense_accuracy"], **training}
    for name, path in runs.items():
        run = RunDir(path)
        data, steps = run.dataset(), list(range(opt.every_step + 1))
        rows = []
        for s in tqdm(steps, desc=f"accuracy ({name})", disable=not progress, leave=False):
            loss, a = evaluate(run.load(s).model.to(device), data, "test", device)
            rows.append({"step": s, "test_acc": a, "test_loss": loss})
        acc[name] = rows
    write_json(lay.accuracy, acc)
    return acc


# -- stage 3: spectra ------------------------------------------------------------------------------
def spectra_stage(lay: PaperLayout, opt: PaperOptions, *, progress: bool) -> list[dict[str, Any]]:
    """SLQ spectra at ``spectra_steps`` ∪ ``mode_points`` → spectra/step_k.json, spectra.json."""
    from tqdm.auto import tqdm

    from ..analysis.spectrum import run_spectra

    spectra = read_json(lay.spectra)
    if spectra is not None:
        return spectra
    steps = sorted(set(opt.spectra_steps) | set(opt.mode_points))
    todo = [s for s in steps if read_json(lay.spectrum(s)) is None]
    for s in tqdm(todo, desc="spectra", unit="ckpt", disable=not progress):
        (rep,) = run_spectra(
            lay.sparse,
            [s],
            horizon=opt.emulation_min_steps,
            curve_steps=opt.curve_steps,
            n_batches=opt.hessian_batches,
            method="slq",
            probes=opt.probes,
            iters=opt.lanczos_steps,
            k=opt.extremes,
            lanczos_maxiter=opt.extreme_steps,
            dtype=opt.dtype,
            show_progress=False,
        )
        write_json(lay.spectrum(s), rep.to_json() | {"nodes": rep.nodes, "weights": rep.weights})
    spectra = [read_json(lay.spectrum(s)) for s in steps]
    write_json(lay.spectra, spectra)
    return spectra


# -- stage 4: E(t), windows, mode contributions --------------------------------------------------
def momentum_window(record: dict[str, Any]) -> tuple[int, bool, list[float]]:
    """(t*, closed, E) of the momentum map actually trained (ALGORITHM.md §6.1) from a spectrum
    record of :func:`~qcarleman.analysis.spectrum.run_spectra` — the one place that reads it."""
    return int(record["window"]), bool(record["window_closed"]), list(record["E"])


def _curve_facts(curve: list[float]) -> dict[str, Any]:
    """Where E(t) dips (minimum over t ≥ 1) and first exceeds 1 (None if it never does)."""
    E = np.asarray(curve, dtype=float)
    tmin = int(np.argmin(E[1:]) + 1) if E.size > 1 else 0
    above = np.flatnonzero(~(E[1:] <= 1.0 + 1e-12))
    return {
        "dip_step": tmin,
        "dip_value": float(E[tmin]),
        "crossing_step": int(above[0] + 1) if above.size else None,
    }


def _modes(rec: dict[str, Any], T: int) -> dict[str, Any]:
    """D(T), G(T), r(T) of one spectrum for the paper's map and the momentum map (§6, §6.1)."""
    nodes, w = np.asarray(rec["nodes"], float), np.asarray(rec["weights"], float)
    trained = dis.TrainedMap(rec["lr"], rec.get("momentum", 0.0), rec.get("weight_decay", 0.0))
    out: dict[str, Any] = {"step": rec["step"], "lr": rec["lr"]}
    for name, m in (("paper", trained.paper()), ("momentum", trained)):
        D, G, r = dis.dissipative_split(nodes, m, T, w, includes_weight_decay=True)
        out[name] = {"D": D.tolist(), "G": G.tolist(), "r": r.tolist()}
    return out


def analysis_stage(
    lay: PaperLayout, opt: PaperOptions, spectra: list[dict[str, Any]]
) -> dict[str, Any]:
    """E(T) and both windows at step 0, the dip and crossing, D/G/r at the mode points →
    analysis.json (cheap; recomputed when missing)."""
    an = read_json(lay.analysis)
    if an is not None:
        return an
    by_step = {int(r["step"]): r for r in spectra}
    first = by_step[0]
    w_mu, closed_mu, E_mu = momentum_window(first)
    E_paper = list(first["E_paper"])
    an = {
        "spectrum_method": first["spectrum_method"],
        "lr": first["lr"],
        "momentum": first.get("momentum", 0.0),
        "weight_decay": first.get("weight_decay", 0.0),
        "error_curve": {"paper": E_paper, "momentum": E_mu},
        "window_paper": int(first["window_paper"]),
        "window_paper_closed": bool(first["window_closed_paper"]),
        "window_momentum": w_mu,
        "window_momentum_closed": closed_mu,
        "curve_paper": _curve_facts(E_paper),
        "curve_momentum": _curve_facts(E_mu),
        "rho_paper": first["rho_paper"],
        "rho": first["rho"],
        "mode_contributions": [_modes(by_step[s], opt.curve_steps) for s in opt.mode_points],
    }
    write_json(lay.analysis, an)
    return an


# -- stage 5: the emulated quantum output ----------------------------------------------------------
def emulation_steps(opt: PaperOptions, analysis: dict[str, Any]) -> int:
    """T of the emulated segment: the paper-definition window clamped to the preset's range."""
    return min(max(int(analysis["window_paper"]), opt.emulation_min_steps), opt.emulation_max_steps)


def emulation_stage(
    lay: PaperLayout, opt: PaperOptions, analysis: dict[str, Any], *, progress: bool
) -> dict[str, Any]:
    """Order-1/2 Carleman vs true GD from step 0 and the download at each M → emulation.json."""
    import torch

    from ..analysis.emulate import emulate_checkpoint, relative_errors
    from ..quantum.readout import tomography

    emu = read_json(lay.emulation)
    if emu is not None:
        return emu
    T = emulation_steps(opt, analysis)
    dtype = torch.float64 if opt.dtype == "float64" else torch.float32
    rep = emulate_checkpoint(  # cached-graph products (the default); chunks if functional
        lay.sparse, 0, T, order=2, threshold=opt.error_threshold, dtype=dtype,
        f2_iters=5, progress=progress, keep_trajectories=True, chunk_size=opt.emulation_chunk,
    )  # fmt: skip
    traj = rep.pop("trajectories")
    n = int(rep["n"])
    gd, out2 = traj["gd"][:, :n], traj["2"][:, :n]
    downloads = []
    for M in opt.shot_budgets:
        emulated = [out2[0]]
        for t in range(1, T + 1):
            nu = float(np.linalg.norm(out2[t]))
            psi = tomography(out2[t] / nu, M, seed=t).psi if nu > 0 else out2[t]
            emulated.append(nu * psi)
        downloads.append({"shots": int(M), "errors": relative_errors(np.array(emulated), gd, n)})
    emu = {
        "steps": T,
        "window_paper": analysis["window_paper"],
        "window_momentum": analysis["window_momentum"],
        "orders": {N: rep["rel_error_vs_gd"][N] for N in ("1", "2")},
        "vs_taylor": rep["rel_error_vs_taylor"],
        "taylor_vs_gd": rep["taylor_vs_gd"],
        "downloads": downloads,
        "download_model": "ℓ2 tomography (Kerenidis–Prakash) of the order-2 output direction with "
        "M magnitude + M sign shots; the norm ‖x̂_t‖ taken as exact (amplitude estimation "
        "assumed)",
        "threshold": opt.error_threshold,
        "within_threshold_until": {
            N: _within(rep["rel_error_vs_gd"][N], opt.error_threshold) for N in ("1", "2")
        },
        **{k: rep[k] for k in ("n", "d", "lr", "momentum", "weight_decay", "ranks", "notes")},
        "f0_norm": rep["f0_norm"],
        "F2_norm": rep["F2_norm"],
        "seconds": rep["seconds"],
        "dtype": opt.dtype,
    }
    write_json(lay.emulation, emu)
    return emu


def _within(errors: list[float], threshold: float) -> int:
    """The last step t such that e(s) ≤ threshold for every s ≤ t."""
    bad = [t for t, e in enumerate(errors) if not (e <= threshold)]
    return (bad[0] - 1) if bad else len(errors) - 1


# -- stage 6: the resource bill -------------------------------------------------------------------
def estimate_stage(
    lay: PaperLayout, opt: PaperOptions, emulation: dict[str, Any], *, progress: bool
) -> dict[str, Any]:
    """The fault-tolerant bill of the emulated segment (order 2, T steps) → estimate.json."""
    from ..analysis.estimate_run import estimate_run
    from ..quantum.cost.inputs import CostModel

    est = read_json(lay.estimate)
    if est is not None:
        return est
    res = estimate_run(
        lay.sparse,
        0,
        T=int(emulation["steps"]),
        N=2,
        epsilon=opt.epsilon,
        f2_iters=5,
        sparsity_samples=4,
        model=CostModel(shots=max(opt.shot_budgets)),
    )
    est = res.to_dict() | {"text": res.summary()}
    write_json(lay.estimate, est)
    return est


# -- summary ----------------------------------------------------------------------------------
def _recovery(acc: dict[str, Any]) -> dict[str, Any]:
    """The first step at which finetuning regains 90% of the accuracy lost to pruning."""
    rows = acc["finetune"]
    a0, dense = rows[0]["test_acc"], acc["dense_accuracy"]
    drop = dense - a0
    if drop <= 0.02:
        return {"step": 0, "drop_points": 100 * drop, "note": "pruning cost < 2 points"}
    target = a0 + 0.9 * drop
    step = next((r["step"] for r in rows if r["test_acc"] >= target), None)
    best = max(rows, key=lambda r: r["test_acc"])
    return {"step": step, "drop_points": 100 * drop, "target": target,
            "best": best["test_acc"], "best_step": best["step"]}  # fmt: skip


def findings(summary: dict[str, Any]) -> str:
    """The report's opening paragraph: window, dip and crossing of E(t), recovery vs window,
    and how far the emulated output stays within the threshold of true GD."""
    s = summary
    cp, cm = s["curve_paper"], s["curve_momentum"]

    def cross(c: dict) -> str:
        return (
            f"first exceeds 1 at T = {c['crossing_step']}"
            if c["crossing_step"] is not None
            else f"stays ≤ 1 up to T = {s['curve_steps']}"
        )

    rec = s["recovery"]
    wp, wm = s["window_paper"], s["window_momentum"]
    if rec.get("note"):
        rtext = f"pruning cost {rec['drop_points']:.1f} points of test accuracy (< 2): no recovery"
    elif rec["step"] is None:
        rtext = (
            f"test accuracy does not regain 90% of the {rec['drop_points']:.1f}-point pruning "
            f"loss within the logged steps (best {100 * rec['best']:.1f}% at step "
            f"{rec['best_step']}, dense {100 * s['dense_accuracy']:.1f}%)"
        )
    else:
        inside = "inside" if rec["step"] <= wp else "outside"
        rtext = (
            f"test accuracy regains 90% of the {rec['drop_points']:.1f}-point pruning loss by "
            f"step {rec['step']}, {inside} the paper-definition window"
        )
    emu = s["emulation"]
    thr = 100 * emu["threshold"]
    etext = "; ".join(
        f"order {N} stays within {thr:g}% of true GD up to step {emu['within_threshold_until'][N]}"
        f" (max error {max(e[1:]):.3g} over T = {emu['steps']})"
        for N, e in emu["orders"].items()
    )
    return (
        f"{s['model_text']}: at the pruned weights the paper-definition window is t* = {wp} "
        f"(E(T) dips to {cp['dip_value']:.4g} at T = {cp['dip_step']} and {cross(cp)}); for the "
        f"momentum map actually trained (μ = {s['momentum']:g}) t* = {wm} (E dips to "
        f"{cm['dip_value']:.4g} at T = {cm['dip_step']} and {cross(cm)}). {rtext[0].upper()}"
        f"{rtext[1:]}. Emulated quantum output from step 0: {etext}."
    )


def _summary(preset, cfg, opt, acc, spectra, an, emu, est) -> dict[str, Any]:
    m = cfg.model
    model_text = (
        f"{m.get('name')} depth {m.get('depth')} × widen {m.get('widen')} on {cfg.data['name']} "
        f"(P = {acc['parameters']:,}, n = {acc['n_active']:,} active after pruning)"
    )
    s = {
        "title": f"qcarleman paper — preset {preset}",
        "preset": preset,
        "model_text": model_text,
        "parameters": acc["parameters"],
        "n_active": acc["n_active"],
        "dense_accuracy": acc["dense_accuracy"],
        "accuracy_per_step": {
            k: [r["test_acc"] for r in acc[k]] for k in ("finetune", "scratch") if k in acc
        },
        "recovery": _recovery(acc),
        "spectra_steps": [int(r["step"]) for r in spectra],
        "spectrum_method": an["spectrum_method"],
        "lanczos_steps": opt.lanczos_steps,
        "probes": opt.probes,
        "lambda_range": {str(r["step"]): [r["lambda_min"], r["lambda_max"]] for r in spectra},
        "error_curve": an["error_curve"],
        "curve_steps": opt.curve_steps,
        "window_paper": an["window_paper"],
        "window_momentum": an["window_momentum"],
        "window_paper_closed": an["window_paper_closed"],
        "window_momentum_closed": an["window_momentum_closed"],
        "curve_paper": an["curve_paper"],
        "curve_momentum": an["curve_momentum"],
        "rho_paper": an["rho_paper"],
        "rho": an["rho"],
        "lr": an["lr"],
        "momentum": an["momentum"],
        "mode_contributions": [
            {
                "step": mc["step"],
                **{f"{k}_{name}": mc[name][k] for name in ("paper", "momentum") for k in "DGr"},
            }
            for mc in an["mode_contributions"]
        ],
        "emulation": {
            "steps": emu["steps"],
            "orders": emu["orders"],
            "downloads": emu["downloads"],
            "threshold": emu["threshold"],
            "within_threshold_until": emu["within_threshold_until"],
            "window_momentum": emu["window_momentum"],
            "download_model": emu["download_model"],
        },
        "estimate": {k: v for k, v in est.items() if k != "text"},
        "options": opt.to_dict(),
        "config": cfg.to_dict(),
    }
    s["findings"] = findings(s)
    return s

