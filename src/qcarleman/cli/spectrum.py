"""``qcarleman spectrum RUN_DIR``: Hessian spectra and dissipation diagnostics at checkpoints.

Per checkpoint: λ_min, λ_max, trace, negative mass, E(t), window t*, ρ and the regime for the
horizon T of the map actually trained — η, momentum μ and weight decay from the checkpoint
(ALGORITHM.md §6.1) — beside the paper's plain-GD ``rho_paper`` / ``window_paper`` (§6),
written to ``OUT/spectra.json`` (each finished checkpoint also to ``OUT/steps/step_<k>.json`` at
once, so Ctrl-C keeps it and a rerun of the same command skips it) with three plots (ridge plot
of the densities, E(t) of both maps with both windows marked, D/G/r). ``--json`` prints the
records to stdout; each carries ``lr``, ``momentum``, ``weight_decay``, ``lambda_min``,
``lambda_max``, ``rho``, ``window``, ``rho_paper``, ``window_paper`` and ``spectrum_method``
(``exact`` or ``slq``).
Thin wrapper over :func:`qcarleman.analysis.spectrum.run_spectra`. Sharded over processes with
``torchrun --nproc-per-node W -m qcarleman.cli.torchrun RUN_DIR ...`` (same options).

Examples::

    qcarleman spectrum runs/digits-sparse --checkpoints 0:20:4 --probes 8 --iters 40 --json
    qcarleman spectrum runs/digits-sparse --checkpoints 0:20 --json
    qcarleman spectrum runs/digits-sparse --checkpoints 0,5,10 --method exact --lr 0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .helptext import command_help
from .validate import add_force, check_work, integer, memory, positive

#: Work guard: Hessian-vector products per checkpoint, batches × (probes × iters + Lanczos).
HVP_LIMIT = 1e6


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run directory")
    p.add_argument(
        "--checkpoints",
        default="0:20",
        help="steps: A:B (inclusive), A:B:STRIDE, 3,5,8, all or latest (default 0:20)",
    )
    p.add_argument("--json", action="store_true", help="print the per-checkpoint records as JSON")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/spectrum)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--lr", type=positive(1e6), default=None, help="η (default: the run's schedule)")
    p.add_argument(
        "--horizon", type=integer(1, 10**5), default=20, help="horizon T for the regime (20)"
    )
    p.add_argument(
        "--curve-steps", type=integer(0, 10**5), default=100, help="E(t) for t = 0..this (100)"
    )
    p.add_argument(
        "--method",
        choices=["auto", "exact", "slq"],
        default="auto",
        help="exact: dense Hessian eigenvalues; slq: Lanczos extremes + stochastic Lanczos "
        "quadrature density; auto: exact up to --exact-max active parameters (default auto)",
    )
    p.add_argument(
        "--exact-max",
        type=integer(0, 20_000),
        default=4096,
        help="auto: exact eigh up to this n (4096)",
    )
    p.add_argument(
        "--k", type=integer(1, 1000), default=10, help="Lanczos extremes per end, deflated (10)"
    )
    p.add_argument("--probes", type=integer(1, 10**4), default=16, help="SLQ probes (16)")
    p.add_argument(
        "--iters", type=integer(1, 10**4), default=80, help="SLQ Lanczos steps per probe (80)"
    )
    p.add_argument(
        "--dist",
        choices=["rademacher", "gaussian"],
        default="rademacher",
        help="SLQ probe vector distribution (default rademacher)",
    )
    p.add_argument("--batches", type=integer(1, 10**4), default=1, help="batches in the loss (1)")
    p.add_argument("--batch-size", type=integer(1, 10**6), default=None, help="default: the run's")
    p.add_argument(
        "--data",
        choices=["fixed", "step"],
        default="fixed",
        help="fixed: the same first batches for every checkpoint; step: the batches of the "
        "steps that follow each checkpoint",
    )
    p.add_argument("--include-pruned", action="store_true", help="keep pruned coordinates")
    p.add_argument(
        "--nonlinear", action="store_true", help="also ‖f0‖, ‖F2‖ (power method) and R_d*"
    )
    p.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="autodiff precision of the Hessian products (Lanczos/SLQ stay float64; float64)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where the products run: cpu, cuda, cuda:1, ... (default: the model's, i.e. cpu)",
    )
    p.add_argument(
        "--seed",
        type=integer(0, 2**32 - 1),
        default=0,
        help="seed of the random probes (Lanczos start, SLQ, power method; 0)",
    )
    p.add_argument(
        "--memory-limit", type=memory, default=None, help="e.g. 8G (default: half the RAM)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_force(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spectrum",
        help="Hessian spectra and dissipation diagnostics at checkpoints of a run",
        **command_help(__doc__),
    )
    add_arguments(p)
    p.set_defaults(func=run, distributed=False)


KEYS = (
    "step",
    "lr",
    "momentum",
    "weight_decay",
    "spectrum_method",
    "lambda_min",
    "lambda_max",
    "trace",
    "negative_mass",
    "E",
    "window",
    "window_closed",
    "regime",
    "rho",
    "norm_linear",
    "window_factor",
    "rho_paper",
    "window_paper",
    "window_closed_paper",
    "regime_paper",
)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis.spectrum import run_spectra
    from ..atomic import dumps_json, remove_stale_temps, write_json
    from ..errors import check_memory
    from ..report.plots import plot_spectra

    check_work(
        args.batches * (args.probes * args.iters + 20 * args.k),
        HVP_LIMIT,
        "spectrum: batches × (probes × iters + Lanczos) Hessian-vector products per checkpoint",
        force=args.force,
    )
    # E, D, G take |1 − ηθ|^t for t = 0..T_c on every node: (T_c + 1) × nodes float64 arrays,
    # nodes = n ≤ --exact-max (exact) or probes × iters (SLQ); a few of them at once.
    nodes = max(args.exact_max, args.probes * args.iters)
    check_memory(
        4 * 8.0 * (max(args.curve_steps, args.horizon) + 1) * nodes,
        f"the E(t) curves (t ≤ {max(args.curve_steps, args.horizon)}, up to {nodes} nodes)",
        args.memory_limit,
    )
    distributed = bool(getattr(args, "distributed", False))
    out = Path(args.out) if args.out else Path(args.run_dir) / "spectrum"
    remove_stale_temps(out)  # left by a run killed while writing
    reports = run_spectra(
        args.run_dir,
        args.checkpoints,
        lr=args.lr,
        horizon=args.horizon,
        n_batches=args.batches,
        batch_size=args.batch_size,
        data=args.data,
        include_pruned=args.include_pruned,
        distributed=distributed,
        nonlinear=args.nonlinear,
        show_progress=not args.quiet,
        curve_steps=args.curve_steps,
        method=args.method,
        exact_max=args.exact_max,
        k=args.k,
        probes=args.probes,
        iters=args.iters,
        dist=args.dist,
        seed=args.seed,
        memory_limit=args.memory_limit,
        dtype=args.dtype,
        device=args.device,
        # each finished checkpoint is kept at once: Ctrl-C keeps it, a rerun skips it
        store=None if distributed else out / "steps",
    )
    if distributed and torch.distributed.get_rank() != 0:
        return 0
    records = [r.to_json() for r in reports]
    write_json(out / "spectra.json", {"run_dir": str(args.run_dir), "checkpoints": records})
    plots = [] if args.no_plots else plot_spectra(reports, out)
    if args.json:
        print(dumps_json([{k: rec[k] for k in KEYS} | _extra(rec) for rec in records]))
        return 0
    print(f"Hessian spectra of {args.run_dir} (active coordinates; horizon T = {args.horizon})")
    print(
        f"{'step':>6} {'n':>8} {'method':>6} {'eta':>9} {'mu':>5} {'lambda_min':>11} "
        f"{'lambda_max':>11} {'trace':>11} {'neg.mass':>8} {'rho':>8} {'t*':>4} "
        f"{'rho_pap':>8} {'t*_pap':>6}  regime"
    )
    for rec in records:
        star = f"{rec['window']}" + ("" if rec["window_closed"] else "+")
        star_p = f"{rec['window_paper']}" + ("" if rec["window_closed_paper"] else "+")
        print(
            f"{rec['step']:>6} {rec['n']:>8} {rec['method']:>6} {rec['lr']:>9.3g} "
            f"{rec['momentum']:>5.3g} {rec['lambda_min']:>11.4e} {rec['lambda_max']:>11.4e} "
            f"{rec['trace']:>11.4e} {rec['negative_mass']:>8.4f} {rec['rho']:>8.5f} {star:>4} "
            f"{rec['rho_paper']:>8.5f} {star_p:>6}  {rec['regime']}"
        )
    print(
        "  rho, t*: the map trained (momentum, weight decay; ALGORITHM.md §6.1); "
        "rho_pap, t*_pap: the paper's plain-GD map (§6)"
    )
    notes = sorted({n for rec in records for n in rec["notes"]})
    for n in notes:
        print(f"  note: {n}")
    if not all(rec["window_closed"] and rec["window_closed_paper"] for rec in records):
        print("  t*+ : E(t) ≤ 1 up to --curve-steps, the window did not close")
    print(f"  wrote {out / 'spectra.json'}" + "".join(f", {p.name}" for p in plots))
    return 0


def _extra(rec: dict) -> dict:
    return {
        k: rec[k]
        for k in (
            "n",
            "method",
            "window_band",
            "window_band_paper",
            "notes",
            "f0_norm",
            "f2_norm",
            "rd_star",
        )
        if k in rec
    }
