"""Every matplotlib figure of the package outside the pipeline report (PNG, Agg backend).

The one place that selects the matplotlib backend is :func:`pyplot`; :func:`save_figure` writes a
figure atomically (temp file + ``os.replace``) and closes it. Plots, one function each, taking the
results of the lower layers:

* :func:`plot_spectra` — ``qcarleman spectrum``: ridge plot, E(t) (trained and paper map), D/G/r
  per checkpoint;
* :func:`plot_emulation` — ``qcarleman emulate``: e_N(t) per Carleman order;
* :func:`plot_breakeven` — ``qcarleman estimate --breakeven``: quantum vs classical wall clock;
* :func:`plot_burgers` — ``qcarleman burgers``: the PNAS 2021 Burgers panels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_write
from ..errors import UsageError

if TYPE_CHECKING:
    from ..analysis.spectrum import SpectrumReport

__all__ = [
    "pyplot",
    "save_figure",
    "plot_spectra",
    "plot_emulation",
    "plot_breakeven",
    "plot_burgers",
]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (the only ``matplotlib.use``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    plt = pyplot()
    try:
        return atomic_write(
            path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def plot_spectra(reports: Sequence[SpectrumReport], out_dir: str | os.PathLike) -> list[Path]:
    """Three PNGs in ``out_dir``: ``spectrum_ridge.png`` (smoothed density per step, offset),
    ``error_curve.png`` (E(t) per step of the map trained — solid, with the SLQ band over probes
    when estimated — and of the paper's plain-GD map — dashed —, the line E = 1 and both windows
    t* marked; ALGORITHM.md §6, §6.1) and
    ``dissipative_split.png`` (D, G and r per step)."""
    plt = pyplot()

    if not reports:
        raise UsageError("no spectra to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmap = plt.get_cmap("viridis")
    colors = [cmap(i / max(1, len(reports) - 1)) for i in range(len(reports))]
    label = [f"step {r.step}" if r.step is not None else f"#{i}" for i, r in enumerate(reports)]
    paths = []

    # ridge plot: log10 density on a common grid, offset per step
    lo = min(r.lambda_min for r in reports)
    hi = max(r.lambda_max for r in reports)
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 800)
    sigma = 0.01 * (hi - lo or 1.0)
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.45 * len(reports)))
    for i, (rep, c) in enumerate(zip(reports, colors)):
        _, dens = rep.density(grid, sigma)
        y = np.log10(dens + 1e-8)
        y = (y - y.min()) / (np.ptp(y) or 1.0)
        ax.fill_between(grid, i, i + 0.9 * y, color=c, alpha=0.6, lw=0)
        ax.plot(grid, i + 0.9 * y, color="k", lw=0.5)
    ax.axvline(0.0, color="grey", lw=0.7, ls=":")
    ax.set_yticks(range(len(reports)), label)
    ax.set_xlabel("Hessian eigenvalue λ")
    methods = sorted({r.method for r in reports})
    ax.set_title(
        f"spectral density per checkpoint (log scale, σ = {sigma:.2g}; {'/'.join(methods)})"
    )
    paths.append(save_figure(fig, out / "spectrum_ridge.png"))

    # E(t) of the trained map (solid, band if SLQ) and of the paper's plain-GD map (dashed)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rep, c, lab in zip(reports, colors, label):
        t = np.arange(rep.E.size)
        paper = rep.paper
        text = f"{lab}: t* = {rep.window}"
        if paper is not None:
            text += f", paper t* = {paper.window}"
        ax.plot(t, rep.E, color=c, lw=1.2, label=text)
        ax.plot(rep.window, rep.E[rep.window], "o", color=c, ms=4)
        if rep.band is not None:
            ax.fill_between(t, np.maximum(rep.band.low, 1e-300), rep.band.high, color=c, alpha=0.15)
        if paper is not None and (rep.momentum or not np.array_equal(paper.E, rep.E)):
            ax.plot(t, paper.E, color=c, lw=1.0, ls="--")
            ax.plot(paper.window, paper.E[paper.window], "s", color=c, ms=4, mfc="none")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("t (steps)")
    ax.set_ylabel("E(t)")
    ax.set_title(
        "error-bound curve: solid = map trained (mean ‖B_ν^t‖₂, §6.1), "
        "dashed = paper (mean |1 − ηλ|^t);\nmarkers: end of each window E ≤ 1"
        + ("; shaded: SLQ band over probes" if any(r.band is not None for r in reports) else ""),
        fontsize=9,
    )
    if len(reports) <= 12:
        ax.legend(fontsize=7)
    paths.append(save_figure(fig, out / "error_curve.png"))

    # D, G, r
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for rep, c in zip(reports, colors):
        t = np.arange(rep.E.size)
        axes[0].plot(t, rep.D, color=c, lw=1)
        axes[1].plot(t, rep.G, color=c, lw=1)
        rr = np.where(np.isfinite(rep.r), rep.r, np.nan)
        axes[2].plot(t, rr, color=c, lw=1)
    for a, name in zip(axes, ("D(t): dissipative part", "G(t): divergent part", "r(t) = D/G")):
        a.set_yscale("log")
        a.set_xlabel("t (steps)")
        a.set_title(name)
    axes[2].axhline(1.0, color="k", lw=0.8, ls="--")
    paths.append(save_figure(fig, out / "dissipative_split.png"))
    return paths


def plot_emulation(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """PNG of e_N(t) against step t per order N (solid: vs true GD, dashed: vs Taylor), with the
    threshold; written atomically (temp file + os.replace)."""
    plt = pyplot()

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    steps = np.arange(report["steps"] + 1)
    floor = 1e-17
    for i, N in enumerate(report["rel_error_vs_gd"]):
        color = f"C{i}"
        ax.semilogy(
            steps[1:],
            np.maximum(report["rel_error_vs_gd"][N][1:], floor),
            "-o",
            color=color,
            ms=3,
            label=f"N = {N} vs true GD",
        )
        ax.semilogy(
            steps[1:],
            np.maximum(report["rel_error_vs_taylor"][N][1:], floor),
            "--",
            color=color,
            label=f"N = {N} vs Taylor",
        )
    ax.semilogy(
        steps[1:],
        np.maximum(report["taylor_vs_gd"][1:], floor),
        ":",
        color="k",
        label="Taylor vs true GD",
    )
    ax.axhline(report["threshold"], color="grey", lw=0.8, label="threshold")
    ax.set_xlabel("step t")
    ax.set_ylabel("relative error ‖x̂_t − x_t‖ / ‖x_t‖")
    rd = report["R_d"]
    ax.set_title(
        f"Carleman emulation, η = {report['lr']:.3g}, ρ = {report['rho']:.4g}, "
        f"R_d* = {'n/a' if rd is None else f'{rd:.3g}'}",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def plot_breakeven(result: dict, path: str) -> str:
    """Two panels (fully / almost dissipative): quantum (solid: with download, dotted: one
    sample) and classical (dashed) wall-clock over n, one colour per T. Written atomically."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    rows = result["rows"]
    Ts = sorted({r["T"] for r in rows})
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(Ts)))
    for ax, regime in zip(axes, ("fully dissipative", "almost dissipative")):
        for T, col in zip(Ts, colors):
            for download, style in ((True, "-"), (False, ":")):
                sel = [
                    r
                    for r in rows
                    if r["regime"] == regime and r["T"] == T and r["download"] == download
                ]
                n = [r["n"] for r in sel]
                ax.loglog(n, [r["quantum_s"] for r in sel], style, color=col)
            ax.loglog(n, [r["classical_s"] for r in sel], "--", color=col, label=f"T = {T}")
        for c in result["crossovers"]:
            if c["regime"] == regime and c["crossover_n"] is not None:
                ax.axvline(c["crossover_n"], color="red", lw=0.8, alpha=0.6)
        ax.set_title(
            f"{regime}\nquantum: — with download, ··· 1 sample; classical: - -", fontsize=9
        )
        ax.set_xlabel("active parameters n")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("wall-clock seconds")
    axes[0].legend(title="horizon", fontsize=8)
    s = result["settings"]
    fig.suptitle(
        f"Break-even (N = {s['N']}, ε = {s['epsilon']}, classical {s['flop_rate']:.0e} FLOP/s, "
        f"quantum clock: {s['quantum_clock']})",
        fontsize=9,
    )
    fig.tight_layout()
    path = os.fspath(path)
    save_figure(fig, path, dpi=110)
    return path


def plot_burgers(result: dict, path: str | os.PathLike) -> str:
    """Write the three-panel PNG of a :func:`burgers_experiment` result (atomically).

    (a) u(x) at t ≈ T_nl/3 for N = 1 and N = N_max with the reference; (b) ℓ2 error against the
    reference vs time per N (log scale); (c) max-over-time error vs N (log scale)."""
    plt = pyplot()

    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise UsageError(f"plot file {path!r} is not a .png; give a name ending in .png")
    arr, orders = result["arrays"], result["orders"]
    k = arr["snapshot"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    ax[0].plot(arr["x"], arr["reference"][k], "k-", lw=2, label="reference (solve_ivp)")
    for N, style in zip(sorted({orders[0], orders[-1]}), ("C0--", "C3:")):
        ax[0].plot(
            arr["x"], arr["carleman"][N][k], style, marker="o", ms=3, label=f"Carleman N={N}"
        )
    ax[0].set(xlabel="x", ylabel="u", title=f"t = {arr['t'][k]:.3f} ≈ T_nl/3")
    ax[0].legend(fontsize=8)
    for N in orders:
        e = arr["error_vs_reference"][N]
        ax[1].semilogy(arr["t"][1:], np.where(np.isfinite(e[1:]), e[1:], np.nan), label=f"N={N}")
    ax[1].set(xlabel="t", ylabel="‖u_N(t) − u_ref(t)‖₂", title="error vs reference")
    ax[1].legend(fontsize=8)
    errs = [np.nan if e is None else e for e in result["max_error_vs_reference"]]
    ax[2].semilogy(orders, errs, "o-", label="Carleman-Euler vs reference")
    ax[2].axhline(result["euler_vs_reference"], color="gray", ls="--", label="direct Euler")
    ax[2].set(xlabel="N", ylabel="max_t ℓ2 error", title="max error vs truncation order")
    ax[2].set_xticks(orders)
    ax[2].legend(fontsize=8)
    s = result["setting"]
    fig.suptitle(
        f"Forced viscous Burgers (PNAS 2021 setting): nx={s['nx']}, nt={s['nt']}, "
        f"Re0={s['Re0']:g}, T={s['T']:g}, R={result['R']:.3g}",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path
