r"""Figures of a pipeline output directory (PNG, matplotlib Agg), rebuilt from its saved JSON.

Each ``fig_*`` function reads the saved results of :func:`qcarleman.pipeline.stages.run_pipeline`
and writes one PNG into ``figures/``; it returns a :class:`FigureInfo` (file, title, caption) or
None when the directory holds no data for it. :func:`make_figures` runs them all and writes the
list to ``figures/index.json``. Nothing is retrained or recomputed except plotting.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import read_json, write_json
from ..hybrid.store import load_records
from ..pipeline.layout import RunLayout
from ..quantity import human_count, human_seconds
from .plots import auto_scale, integer_ticks, plot_spectra, pyplot, save_figure

__all__ = ["FigureInfo", "make_figures", "load_run"]


@dataclass
class FigureInfo:
    file: str  # path relative to the output directory
    title: str
    caption: str


def load_run(out: str | os.PathLike) -> dict[str, Any]:
    """Everything the report needs from an output directory (missing parts are None/empty);
    paths from :class:`~qcarleman.pipeline.layout.RunLayout`."""
    lay = RunLayout(out)
    shots = read_json(lay.shots) or []
    return {
        "summary": read_json(lay.summary),
        "spectra": read_json(lay.spectra) or [],
        "emulation": read_json(lay.emulation) or [],
        "shots": shots,
        "hybrid": load_records(lay.hybrid),
        "classical": load_records(lay.classical),
        "sweep": {s["shots"]: load_records(lay.shots_run(s["shots"])) for s in shots},
    }


def _curve(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, test accuracy, test loss) at the segment ends (the start record first)."""
    pts = [(r["start"] + r["steps"], r["test_acc"], r["test_loss"]) for r in records]
    a = np.array(pts, dtype=float).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def fig_training(run: dict, out: Path) -> FigureInfo | None:
    hyb, cls = run["hybrid"], run["classical"]
    if not hyb or not cls:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for recs, label, style in ((cls, "classical sparse", "-o"), (hyb, "hybrid", "-s")):
        s, acc, loss = _curve(recs)
        axes[0].plot(s, 100 * acc, style, ms=3, label=label)
        axes[1].plot(s, loss, style, ms=3, label=label)
    for ax in axes:
        q = [r for r in hyb if r["kind"] == "quantum"]
        for i, r in enumerate(q):  # alternate two shades so adjacent segments stay apart
            ax.axvspan(
                r["start"],
                r["start"] + r["steps"],
                color="tab:purple",
                alpha=0.22 if i % 2 == 0 else 0.12,
                lw=0,
                label="quantum segment" if i == 0 else None,
            )
        integer_ticks(ax)
        ax.set_xlabel("sparse training step")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("test loss (cross-entropy)")
    axes[0].set_title("test accuracy (shaded: emulated quantum segments)")
    axes[1].set_title("test loss")
    path = RunLayout(out).figures / "training_curves.png"
    save_figure(fig, path, dpi=110)
    q = [r for r in hyb if r["kind"] == "quantum"]
    return FigureInfo(
        str(path.relative_to(out)),
        "Accuracy and loss: hybrid vs classical sparse training",
        f"Test accuracy and loss at segment ends. {len(q)} quantum segments (shaded) of "
        f"backend {q[0]['backend'] if q else '—'} with M = {q[0]['shots'] if q else 0} shots "
        "each; the classical baseline uses the same batches in the same order.",
    )


def _spectrum_reports(spectra: list[dict[str, Any]]):
    from ..analysis.spectrum import SpectrumReport

    return [SpectrumReport.from_dict(s) for s in spectra]


def fig_spectra(run: dict, out: Path) -> list[FigureInfo]:
    spectra = run["spectra"]
    if not spectra:
        return []

    paths = plot_spectra(_spectrum_reports(spectra), RunLayout(out).figures)
    first = spectra[0]
    method = first["method"]
    est = "exact eigenvalues" if method == "exact" else "SLQ estimate (stochastic)"
    steps = ", ".join(str(s["step"]) for s in spectra)
    caps = {
        "spectrum_ridge.png": (
            "Hessian spectrum after pruning (ridge plot)",
            f"Smoothed spectral density of H on the active coordinates at sparse steps {steps} "
            f"({est}); log scale, one row per checkpoint.",
        ),
        "error_curve.png": (
            "Error-bound curve E(t) and the window",
            f"E(t) = mean |1 − ηλ|^t (ALGORITHM.md §6), η = {first['lr']:g}; the dot marks the "
            f"window t* (last t with E ≤ 1). At the pruned weights t* = {first['window']}"
            + ("" if first["window_closed"] else " (still open at the end of the curve)")
            + ".",
        ),
        "dissipative_split.png": (
            "Dissipative and divergent parts D(t), G(t), r(t)",
            "Error growth of the map trained split by mode: D over the modes whose per-step "
            "factor is < 1 (|1 − ηλ| without momentum), G over the rest, r = D/G "
            "(ALGORITHM.md §6, §6.1).",
        ),
    }
    return [FigureInfo(str(p.relative_to(out)), *caps[p.name]) for p in paths]


def fig_emulation(run: dict, out: Path) -> FigureInfo | None:
    emu = run["emulation"]
    if not emu:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for e in emu:
        err = np.array([np.nan if v is None else v for v in e["errors"]], dtype=float)
        t = np.arange(1, err.size + 1)
        label = e["backend"] + (f" (N = {e['order']})" if e["backend"] == "carleman" else "")
        ax.plot(t, np.maximum(err, 1e-17), "-o", ms=3, label=label)
    auto_scale(ax, [e["errors"] for e in emu if all(v is not None for v in e["errors"])])
    integer_ticks(ax)
    ax.set_xlabel("step t within the segment")
    ax.set_ylabel("‖x̂_t − x_t‖ / ‖x_t‖ vs true GD")
    ax.set_title("emulation error against step, per backend/order")
    ax.legend(fontsize=8)
    path = RunLayout(out).figures / "emulation_error.png"
    save_figure(fig, path, dpi=110)
    return FigureInfo(
        str(path.relative_to(out)),
        "Emulation error against step per order",
        "Relative error of the emulated parameter update against true masked SGD over the "
        "first segment after pruning (same batches): linear = Carleman N = 1, carleman = "
        "order N, taylor = exact iteration of the cubic Taylor map (no truncation).",
    )


def fig_readout(run: dict, out: Path) -> FigureInfo | None:
    sweep = [s for s in run["shots"] if s.get("readout_error_mean") is not None]
    if not sweep:
        return None
    plt = pyplot()
    M = np.array([s["shots"] for s in sweep], dtype=float)
    err = np.array([s["readout_error_mean"] for s in sweep], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for s in sweep:
        ax.plot([s["shots"]] * len(s["readout_errors"]), s["readout_errors"], ".", color="0.6")
    ax.plot(M, err, "o-", label="mean over quantum segments")
    ref = err[-1] * np.sqrt(M[-1] / M)
    ax.plot(M, ref, "k--", lw=0.8, label="∝ M^(−1/2) reference")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tomography shots M per segment")
    ax.set_ylabel("‖ẑ − z‖ / ‖z‖")
    ax.set_title(f"readout error against shots ({sweep[0]['readout']} readout)")
    ax.legend(fontsize=8)
    path = RunLayout(out).figures / "readout_error.png"
    save_figure(fig, path, dpi=110)
    n = (run["summary"] or {}).get("n_active") or 0
    big = M >= n  # √(n/M) holds once there are more shots than coordinates
    if big.sum() > 1:
        slope = float(np.polyfit(np.log(M[big]), np.log(err[big]), 1)[0])
        fit = (
            f" Fitted slope of log error against log M over M ≥ n = {n:,}: {slope:.2f} "
            "(theory −0.5); below n most coordinates get no shot and the error saturates near 1."
        )
    else:
        fit = ""
    return FigureInfo(
        str(path.relative_to(out)),
        "Readout error against shots",
        "Relative ℓ2 error of the downloaded state (tomography, ALGORITHM.md §5) per quantum "
        "segment (grey) and its mean, for each shot budget M." + fit,
    )


def fig_degradation(run: dict, out: Path) -> FigureInfo | None:
    sweep = run["shots"]
    if not sweep:
        return None
    plt = pyplot()
    M = np.array([s["shots"] for s in sweep], dtype=float)
    acc = 100 * np.array([s["test_acc"] for s in sweep], dtype=float)
    base = 100 * sweep[0]["classical_test_acc"]
    step = sweep[0]["step"]
    loss = np.array([s["test_loss"] for s in sweep], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    ax.plot(M, acc, "o-", label="hybrid (true-gd emulation, M-shot download)")
    ax.axhline(base, color="k", ls="--", lw=0.8, label=f"classical sparse ({base:.1f}%)")
    for sign in (-1, 1):  # edges only: a filled ±2 band would cover the whole panel
        ax.axhline(
            base + 2 * sign,
            color="0.5",
            ls=":",
            lw=0.8,
            label="classical ± 2 points" if sign < 0 else None,
        )
    ax.set_ylabel(f"test accuracy at step {step} (%)")
    ax.set_title("degradation as the shot budget shrinks")
    axes[1].plot(M, loss, "o-", label="hybrid")
    axes[1].axhline(sweep[0]["classical_test_loss"], color="k", ls="--", lw=0.8, label="classical")
    axes[1].set_ylabel(f"test loss at step {step}")
    axes[1].set_title("loss")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("tomography shots M per segment and block")
        ax.legend(fontsize=8)
    path = RunLayout(out).figures / "degradation.png"
    save_figure(fig, path, dpi=110)
    return FigureInfo(
        str(path.relative_to(out)),
        "Accuracy against the shot budget",
        f"Test accuracy at the end of the quantum phase (step {step}) for each shot budget "
        "(emulation exact, so only the download differs) against classical sparse training "
        "after the same steps and batches.",
    )


def fig_cost(run: dict, out: Path) -> FigureInfo | None:
    """Three panels, each with one unit: wall-clock seconds per segment (quantum against
    classical, human forms on the bars), the quantum operation counts of the first segment, and
    the read-out shots (those ε needs against those the run used)."""
    q = [r for r in run["hybrid"] if r["kind"] == "quantum" and r.get("estimate")]
    if not q:
        return None
    plt = pyplot()
    qs = np.array([r["estimate"]["quantum_seconds"] or np.inf for r in q], dtype=float)
    cs = np.array([r["estimate"]["classical_seconds"] for r in q], dtype=float)
    x = np.arange(len(q))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    ax = axes[0]
    bq = ax.bar(x - 0.2, qs, 0.4, color="tab:blue", label="quantum (fault-tolerant estimate)")
    bc = ax.bar(x + 0.2, cs, 0.4, color="tab:orange", label="classical (FLOPs / FLOP rate)")
    for bars, vals in ((bq, qs), (bc, cs)):
        for b, v in zip(bars, vals):
            ax.annotate(
                human_seconds(v).split(" (")[0],
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90 if len(q) > 2 else 0,
            )
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * (1e8 if len(q) > 2 else 1e3))  # room for the labels
    ax.set_xticks(x, [f"segment {r['segment']}" for r in q])
    ax.set_xlim(-0.8, len(q) - 0.2)  # bars keep their width with one segment
    ax.set_xlabel("quantum segment of the hybrid run")
    ax.set_ylabel("wall-clock seconds per segment (log)")
    ax.set_title("run time of one segment")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    e = q[0]["estimate"]
    ops = [
        ("QLSA queries\n(one solve)", e["queries"]),
        ("block-encoding\ncalls (all shots)", e["block_encoding_calls"]),
        ("T gates", e["t_count"]),
    ]
    ax = axes[1]
    ax.barh([o[0] for o in ops], [float(o[1]) for o in ops], color="tab:blue")
    for i, (_, v) in enumerate(ops):
        ax.annotate(f" {human_count(v)}", (float(v), i), va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=ax.get_xlim()[1] * 1e4)
    ax.set_xlabel("count (log)")
    ax.set_ylabel("quantum operation")
    ax.set_title(f"segment {q[0]['segment']}: T = {e['T']} steps, N = {e['N']}")
    shots = [("needed for\nε = " + f"{e['epsilon']:g}", e.get("shots_for_epsilon") or e["shots"])]
    if e.get("shots_given"):
        shots.append(("used by\nthe run (M)", e["shots_given"]))
    ax = axes[2]
    ax.barh([s_[0] for s_ in shots], [float(s_[1]) for s_ in shots], color="tab:green")
    for i, (_, v) in enumerate(shots):
        ax.annotate(f" {human_count(v)}", (float(v), i), va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=ax.get_xlim()[1] * 1e4)
    ax.set_xlabel("measurement shots per segment (log)")
    ax.set_ylabel("read-out (tomography)")
    ax.set_title("shots to read the parameters out")
    fig.tight_layout()
    path = RunLayout(out).figures / "cost_comparison.png"
    save_figure(fig, path, dpi=110)
    return FigureInfo(
        str(path.relative_to(out)),
        "Cost comparison: quantum segment vs classical steps",
        f"Left: estimated fault-tolerant wall-clock of each quantum segment (T-count × logical "
        f"cycle of the surface-code model; QLSA {e['solver']}, read-out priced for the target ε) "
        f"against the same steps computed classically at {e.get('flop_rate', 1e15):.3g} FLOP/s. "
        "Middle: the quantum operation counts of the first segment (queries of one linear-system "
        "solve; block-encoding calls over all shots and amplification rounds; T gates). Right: "
        "the tomography shots the target ε needs against the shot budget M the run used "
        "(qcarleman.quantum.cost.estimate.estimate).",
    )


def make_figures(out: str | os.PathLike) -> list[FigureInfo]:
    """Write every figure the saved results allow; list them in ``figures/index.json``."""
    out = Path(out)
    run = load_run(out)
    figs: list[FigureInfo] = []
    for f in (fig_training, fig_degradation):
        info = f(run, out)
        if info:
            figs.append(info)
    figs += fig_spectra(run, out)
    for f in (fig_emulation, fig_readout, fig_cost):
        info = f(run, out)
        if info:
            figs.append(info)

    write_json(RunLayout(out).figure_index, [asdict(f) for f in figs])
    return figs
