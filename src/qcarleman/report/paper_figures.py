r"""Figures of a ``qcarleman paper`` output directory, laid out like Liu et al., Nat. Commun. 15,
434 (2024), rebuilt from its saved JSON (:class:`~qcarleman.pipeline.layout.PaperLayout`):

* ``accuracy.png`` (Fig. 2): test accuracy per step after pruning ("Step", "Accuracy");
* ``spectra.png`` (Fig. 3): Hessian spectral densities per step, offset ("Eigenvalue",
  "Density");
* ``error_curve.png`` (Fig. 3 inset / Methods): E(T) of the paper's map and of the momentum map
  ("Step T", the E(T) formula) with both windows;
* ``modes.png`` (Fig. 4): dissipative and divergent sums and their ratio at several points of
  training ("Step T", "Sum", "Sum ratio");
* ``emulation.png`` (new): relative error of the emulated quantum output (Carleman orders 1, 2,
  and the order-2 output downloaded at each shot budget) against true GD ("Step T",
  "Relative error"), the momentum map's window marked.

Each ``fig_*`` returns a :class:`~qcarleman.report.figures.FigureInfo` whose caption names the
axes; :func:`make_paper_figures` writes all and ``figures/index.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import read_json, write_json
from ..pipeline.layout import PaperLayout
from ..spectral import smoothed_density
from .figures import FigureInfo
from .plots import pyplot, save_figure

__all__ = ["make_paper_figures", "load_paper_run", "E_LABEL"]

E_LABEL = r"$E(T)=\frac{1}{n}\sum_{\nu}|1-\eta\lambda_\nu|^{T}$"
#: E_LABEL in words, for captions (mathtext renders only inside the figure).
E_TEXT = "E(T) = (1/n) Σ_ν |1 − ηλ_ν|^T"
#: Decades of density shown by the spectra figure (log scale, as the paper's Fig. 3).
DENSITY_DECADES = 6


def load_paper_run(out: str | os.PathLike) -> dict[str, Any]:
    """The saved results of a paper run (missing parts are None)."""
    lay = PaperLayout(out)
    return {
        k: read_json(getattr(lay, k))
        for k in ("summary", "accuracy", "spectra", "analysis", "emulation", "estimate")
    }


def _info(
    path: Path, root: Path, title: str, caption: str, ax, *, y_text: str | None = None
) -> FigureInfo:
    """The figure's index entry; ``y_text`` names a mathtext y label in words."""
    axes = f" Axes: x = “{ax.get_xlabel()}”, y = “{y_text or ax.get_ylabel()}”."
    return FigureInfo(str(path.relative_to(root)), title, caption + axes)


def _windows(ax, an: dict[str, Any]) -> None:
    ax.axvline(an["window_paper"], color="C0", ls=":", lw=1, label="window (paper)")
    ax.axvline(an["window_momentum"], color="C3", ls=":", lw=1, label="window (momentum map)")


def fig_accuracy(run: dict, root: Path) -> FigureInfo | None:
    acc, an = run["accuracy"], run["analysis"]
    if not acc:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, style in (("finetune", "o-"), ("scratch", "s--")):
        if name in acc:
            rows = acc[name]
            ax.plot([r["step"] for r in rows], [r["test_acc"] for r in rows], style, ms=3,
                    label=f"sparse {name}")  # fmt: skip
    ax.axhline(acc["dense_accuracy"], color="k", ls="--", lw=1, label="dense")
    if an:
        _windows(ax, an)
    ax.set_xlabel("Step")
    ax.set_ylabel("Accuracy")
    ax.legend(fontsize=8)
    path = PaperLayout(root).figures / "accuracy.png"
    save_figure(fig, path)
    title = "Test accuracy per step after 90% pruning (paper Fig. 2)"
    return _info(path, root, title, "Step 0 is the pruned model; dashed: dense accuracy.", ax)


def fig_spectra(run: dict, root: Path) -> FigureInfo | None:
    spectra = run["spectra"]
    if not spectra:
        return None
    plt = pyplot()
    lo = min(r["lambda_min"] for r in spectra)
    hi = max(r["lambda_max"] for r in spectra)
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 600)
    sigma = 0.01 * (hi - lo or 1.0)
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.3 * len(spectra)))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(spectra):
        _, d = smoothed_density(np.asarray(r["nodes"]), np.asarray(r["weights"]), grid, sigma)
        logd = np.log10(np.maximum(d / (d.max() or 1.0), 10.0**-DENSITY_DECADES))
        height = 1.0 + logd / DENSITY_DECADES  # 0 at 10^-DECADES of the peak, 1 at the peak
        color = cmap(i / max(1, len(spectra) - 1))
        ax.fill_between(grid, i, i + 0.9 * height, color=color, alpha=0.8)
    ax.set_yticks(range(len(spectra)), [str(r["step"]) for r in spectra], fontsize=7)
    ax.set_xlabel("Eigenvalue")
    ax.set_ylabel("Density")
    ax.set_title(f"log density over {DENSITY_DECADES} decades, offset by step", fontsize=8)
    path = PaperLayout(root).figures / "spectra.png"
    save_figure(fig, path)
    s0 = spectra[0]
    return _info(path, root, "Hessian spectral density per step (paper Fig. 3)",
                 f"SLQ ({s0['spectrum_method']}), Gaussian-smoothed, each row the log10 of the "
                 f"density relative to its peak over {DENSITY_DECADES} decades (the outlying "
                 "eigenvalues are invisible on a linear scale); row labels are the steps after "
                 "pruning.", ax)  # fmt: skip


def fig_error_curve(run: dict, root: Path) -> FigureInfo | None:
    an = run["analysis"]
    if not an:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, color in (("paper", "C0"), ("momentum", "C3")):
        E = np.asarray(an["error_curve"][name], dtype=float)
        label = "paper map |1 − ηλ|" if name == "paper" else "momentum map ‖B^T‖"
        ax.plot(np.arange(E.size), E, color=color, label=label)
    ax.axhline(1.0, color="k", lw=0.8)
    _windows(ax, an)
    ax.set_yscale("log")
    ax.set_xlabel("Step T")
    ax.set_ylabel(E_LABEL)
    ax.legend(fontsize=8)
    path = PaperLayout(root).figures / "error_curve.png"
    save_figure(fig, path)
    caption = (
        f"Paper window t* = {an['window_paper']}, momentum map t* = {an['window_momentum']} "
        "(ALGORITHM.md §6, §6.1)."
    )
    title = "Error-bound curve E(T) from the step-0 spectrum"
    return _info(path, root, title, caption, ax, y_text=E_TEXT)


def fig_modes(run: dict, root: Path) -> FigureInfo | None:
    an = run["analysis"]
    if not an:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    for i, mc in enumerate(an["mode_contributions"]):
        p = mc["paper"]
        T = np.arange(len(p["D"]))
        c = f"C{i}"
        axes[0].plot(T, p["D"], color=c, label=f"step {mc['step']}")
        axes[1].plot(T, p["G"], color=c)
        r = np.asarray([np.nan if v is None else v for v in p["r"]], dtype=float)
        axes[2].plot(T, r, color=c)
    for ax, name in zip(axes, ("Sum (dissipative modes)", "Sum (divergent modes)", "Sum ratio")):
        ax.set_xlabel("Step T")
        ax.set_ylabel(name)
        ax.set_yscale("log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center",
               ncol=len(an["mode_contributions"]), fontsize=8)  # fmt: skip
    path = PaperLayout(root).figures / "modes.png"
    save_figure(fig, path)
    steps = ", ".join(str(mc["step"]) for mc in an["mode_contributions"])
    return _info(path, root, "Dissipative and divergent modes (paper Fig. 4)",
                 f"Paper definition at sparse steps {steps}; the momentum map's sums are in "
                 "summary.json; one colour per step (legend above).", axes[2])  # fmt: skip


def fig_emulation(run: dict, root: Path) -> FigureInfo | None:
    emu = run["emulation"]
    if not emu:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    exact = []
    for i, (N, errs) in enumerate(emu["orders"].items()):
        e = np.asarray(errs[1:], dtype=float)
        exact += [f"order {N} at T = {t}" for t in np.flatnonzero(e == 0) + 1]
        ax.plot(range(1, len(errs)), _positive(e), "o-", ms=3, color=f"C{i}",
                label=f"Carleman order {N}")  # fmt: skip
    for j, d in enumerate(emu["downloads"]):
        e = np.asarray(d["errors"][1:], dtype=float)
        ax.plot(range(1, len(e) + 1), _positive(e), ":", color=f"C{j + 2}",
                label=f"order 2 + download, M = {d['shots']:.0e}")  # fmt: skip
    ax.axhline(emu["threshold"], color="k", lw=0.8, ls="--", label="stated error")
    if emu["window_momentum"] <= emu["steps"]:
        ax.axvline(emu["window_momentum"], color="0.4", ls="-.", label="momentum window closes")
    ax.set_yscale("log")
    ax.set_xlabel("Step T")
    ax.set_ylabel("Relative error vs true GD")
    ax.legend(fontsize=7)
    path = PaperLayout(root).figures / "emulation.png"
    save_figure(fig, path)
    return _info(path, root, "Emulated quantum output against true GD (momentum SGD)",
                 f"From step 0 over T = {emu['steps']} steps; ‖x̂_T − x_T‖/‖x_T‖ on the active "
                 f"coordinates. {emu['download_model']}. Exact (error 0, not drawn on the log "
                 f"axis): {', '.join(exact) or 'none'}.", ax)  # fmt: skip


def _positive(values: np.ndarray) -> np.ndarray:
    """``values`` with non-positive entries as NaN (gaps on a log axis, not drops to −∞)."""
    return np.where(values > 0, values, np.nan)


def make_paper_figures(out: str | os.PathLike) -> list[FigureInfo]:
    """All figures of a paper run (module docstring) and ``figures/index.json``."""
    root = Path(out)
    run = load_paper_run(root)
    lay = PaperLayout(root)
    lay.figures.mkdir(parents=True, exist_ok=True)
    made = [
        f(run, root)
        for f in (fig_accuracy, fig_spectra, fig_error_curve, fig_modes, fig_emulation)
    ]
    figs = [f for f in made if f is not None]
    write_json(lay.figure_index, [asdict(f) for f in figs])
    return figs
