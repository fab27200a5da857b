"""Every matplotlib figure of the package outside the pipeline report (PNG, Agg backend).

The one place that selects the matplotlib backend is :func:`pyplot`; :func:`save_figure` writes a
figure atomically (temp file + ``os.replace``) and closes it. Plots, one function each, taking the
results of the lower layers:

* :func:`plot_spectra` — ``qcarleman spectrum``: ridge plot, E(t) (trained and paper map), D/G/r
  per checkpoint;
* :func:`plot_emulation` — ``qcarleman emulate``: e_N(t) per Carleman order;
* :func:`plot_breakeven` — ``qcarleman estimate --breakeven``: quantum vs classical wall clock;
* :func:`plot_burgers` — ``qcarleman burgers``: the PNAS 2021 Burgers panels.

For notebooks, one function per result object, each returning a ``matplotlib.figure.Figure``
(not registered with pyplot, so it shows once and is freed with the object; ``fig.savefig`` to
keep it): :func:`plot_spectrum` (SpectrumReport), :func:`plot_trajectory` (LowRankResult),
:func:`plot_solve` (SolveResult), :func:`plot_estimate` (ResourceEstimate).
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
    "auto_scale",
    "integer_ticks",
    "plot_spectra",
    "plot_emulation",
    "plot_breakeven",
    "plot_burgers",
    "plot_spectrum",
    "plot_trajectory",
    "plot_solve",
    "plot_estimate",
]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (the only ``matplotlib.use``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def auto_scale(ax, values, axis: str = "y", ratio: float = 20.0) -> str:
    """Log scale on ``axis`` when the positive finite ``values`` span more than ``ratio`` (a
    factor), else linear (a log axis over 0.99–1.08 only makes unreadable ticks); returns it."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    scale = "log" if v.size and v.max() / v.min() > ratio else "linear"
    (ax.set_yscale if axis == "y" else ax.set_xscale)(scale)
    return scale


def integer_ticks(ax, axis: str = "x") -> None:
    """Ticks only at integers (steps, segments): no tick at step 1.5."""
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


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
    # legend entries: every checkpoint up to 12, else the first and the last
    shown = [len(reports) <= 12 or i in (0, len(reports) - 1) for i in range(len(reports))]
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
    ax.set_ylabel("checkpoint (log density, offset per row)")
    methods = sorted({r.method for r in reports})
    ax.set_title(
        f"spectral density per checkpoint (log scale, σ = {sigma:.2g}; {'/'.join(methods)})"
    )
    paths.append(save_figure(fig, out / "spectrum_ridge.png"))

    # E(t) of the trained map (solid, band if SLQ) and of the paper's plain-GD map (dashed)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves: list = []
    for rep, c, lab, show in zip(reports, colors, label, shown):
        t = np.arange(rep.E.size)
        paper = rep.paper
        text = f"{lab}: t* = {rep.window}"
        if paper is not None:
            text += f", paper t* = {paper.window}"
        ax.plot(t, rep.E, color=c, lw=1.2, label=text if show else None)
        ax.plot(rep.window, rep.E[rep.window], "o", color=c, ms=4)
        if rep.band is not None:
            ax.fill_between(t, np.maximum(rep.band.low, 1e-300), rep.band.high, color=c, alpha=0.15)
        if paper is not None and (rep.momentum or not np.array_equal(paper.E, rep.E)):
            ax.plot(t, paper.E, color=c, lw=1.0, ls="--")
            ax.plot(paper.window, paper.E[paper.window], "s", color=c, ms=4, mfc="none")
            curves.append(paper.E)
        curves.append(rep.E)
    ax.axhline(1.0, color="k", lw=0.8, ls=":", label="E = 1 (errors neither grow nor shrink)")
    auto_scale(ax, curves)
    integer_ticks(ax)
    ax.set_xlabel("t (steps)")
    ax.set_ylabel("E(t), mean growth of a parameter error")
    ax.set_title(
        "error-bound curve: solid = map trained (mean ‖B_ν^t‖₂, §6.1), "
        "dashed = paper (mean |1 − ηλ|^t);\nmarkers: end of each window E ≤ 1"
        + ("; shaded: SLQ band over probes" if any(r.band is not None for r in reports) else ""),
        fontsize=9,
    )
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, out / "error_curve.png"))

    # D, G, r
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for rep, c, lab, show in zip(reports, colors, label, shown):
        t = np.arange(rep.E.size)
        lab = lab if show else None
        axes[0].plot(t, rep.D, color=c, lw=1, label=lab)
        axes[1].plot(t, rep.G, color=c, lw=1, label=lab)
        rr = np.where(np.isfinite(rep.r), rep.r, np.nan)
        axes[2].plot(t, rr, color=c, lw=1, label=lab)
    axes[2].axhline(1.0, color="k", lw=0.8, ls="--", label="r = 1")
    panels = (
        ("D(t): dissipative part", "mean error growth, modes with factor < 1", "D"),
        ("G(t): divergent part", "mean error growth, modes with factor ≥ 1", "G"),
        ("r(t) = D/G", "ratio r(t) = D(t) / G(t)", "r"),
    )
    for a, (name, ylabel, key) in zip(axes, panels):
        auto_scale(a, [np.asarray(getattr(rep, key), float) for rep in reports])
        integer_ticks(a)
        a.set_xlabel("t (steps)")
        a.set_ylabel(ylabel)
        a.set_title(name)
        if len(reports) > 1 or a is axes[2]:
            a.legend(fontsize=7)
    fig.tight_layout()
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


def _figure(ncols: int, width: float = 5.5, height: float = 3.8):
    """A pyplot-free Figure with ``ncols`` axes (Agg canvas)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def plot_spectrum(report) -> Any:
    """A SpectrumReport: smoothed spectral density of H (left) and E(t) with the window t*
    and the line E = 1 (right; ALGORITHM.md §6)."""
    fig, (a, b) = _figure(2)
    grid, dens = report.density()
    a.plot(grid, dens, lw=1)
    a.set_xlabel("Hessian eigenvalue λ")
    a.set_ylabel("smoothed spectral density")
    a.set_title(f"spectrum ({report.method}), n = {report.n:,}")
    t = np.arange(report.E.size)
    b.plot(t, report.E, lw=1.2, label=f"E(t), t* = {report.window}")
    b.plot(report.window, report.E[report.window], "o", ms=4)
    b.axhline(1.0, color="k", lw=0.8, ls="--", label="E = 1")
    auto_scale(b, report.E)
    integer_ticks(b)
    b.set_xlabel("t (steps)")
    b.set_ylabel("E(t) = mean |1 − ηλ|^t")
    b.set_title(f"error-bound curve, ρ = {report.rho:.4g} ({report.regime})")
    b.legend(fontsize=8)
    return fig


def plot_trajectory(result, reference=None) -> Any:
    """A LowRankResult: ‖ŷ1(t)‖ per step (and ‖reference(t)‖ when given, e.g. ``GDMap.iterate``)
    with, when a reference is given, the relative error per step."""
    traj = result.numpy()
    T = traj.shape[0]
    t = np.arange(T)
    fig, axes = _figure(1 if reference is None else 2)
    a = axes[0]
    a.plot(t, np.linalg.norm(traj.reshape(T, -1), axis=1), "-o", ms=3, label="emulated ŷ1(t)")
    if reference is not None:
        ref = np.asarray(reference, dtype=float).reshape(T, -1)
        a.plot(t, np.linalg.norm(ref, axis=1), "--", label="reference")
        err = np.linalg.norm(traj.reshape(T, -1) - ref, axis=1)
        err = err / np.maximum(np.linalg.norm(ref, axis=1), 1e-300)
        b = axes[1]
        b.plot(t[1:], np.maximum(err[1:], 1e-17), "-o", ms=3)
        auto_scale(b, err[1:])
        integer_ticks(b)
        b.set_xlabel("step t")
        b.set_ylabel("‖ŷ1(t) − x(t)‖ / ‖x(t)‖")
        b.set_title("relative error against the reference")
        a.legend(fontsize=8)
    integer_ticks(a)
    a.set_xlabel("step t")
    a.set_ylabel("parameter norm ‖z(t)‖")
    a.set_title(f"Carleman order {result.order} emulation")
    return fig


def plot_solve(result) -> Any:
    """A SolveResult: |amplitude| of the output state per index (the reduced |ŷ1(T)⟩ of a
    history system when present, else the full state)."""
    state = result.output_state if result.output_state is not None else result.state
    amp = np.abs(np.asarray(state))
    fig, (a,) = _figure(1)
    a.bar(np.arange(amp.size), amp, width=1.0)
    integer_ticks(a)
    a.set_xlabel("basis index" + (" of ŷ1(T)" if result.output_state is not None else ""))
    a.set_ylabel("|amplitude|")
    a.set_title(
        f"{result.backend}: fidelity {result.fidelity:.6f}, P_succ {result.success_probability:.3g}"
    )
    return fig


def plot_estimate(est) -> Any:
    """A ResourceEstimate: wall-clock seconds quantum against classical (left), the quantum
    operation counts (middle) and the read-out shots (right), one unit per panel."""
    fig, (a, b, c) = _figure(3, width=4.6)
    w = est.wall_clock
    a.bar(["quantum", "classical"], [w.quantum_s, w.classical_s], color=["tab:blue", "tab:orange"])
    a.set_yscale("log")
    a.set_xlabel(f"classical at {w.flop_rate:.3g} FLOP/s")
    a.set_ylabel("wall-clock seconds (log)")
    a.set_title(f"one segment → {w.winner}")
    ops = {
        "QLSA queries": est.queries[est.model.solver],
        "block-encoding calls": est.block_encoding_calls,
        "T gates": est.t_count,
    }
    b.barh(list(ops), list(ops.values()))
    b.set_xscale("log")
    b.set_xlabel("count (log)")
    b.set_ylabel("quantum operation")
    b.set_title(f"n = {est.problem.n:,}, T = {est.problem.T}, N = {est.problem.N}")
    t = est.tomography
    shots = {f"for ε = {t.epsilon:g}": t.for_epsilon}
    if t.given:
        shots["given (M)"] = t.given
    c.barh(list(shots), list(shots.values()), color="tab:green")
    c.set_xscale("log")
    c.set_xlabel("measurement shots (log)")
    c.set_ylabel("read-out")
    c.set_title("tomography shots")
    return fig
