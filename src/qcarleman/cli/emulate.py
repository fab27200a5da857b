"""``qcarleman emulate RUN_DIR``: Carleman emulation of T training steps from a checkpoint.

Builds the gradient-descent map of the checkpoint (the run's η at that step, μ, λ, mask, momentum
buffer and the next T batches in the trainer's order) and reports, for Carleman orders
N = 1..``--order``, the per-step relative error of the emulated parameter update against true
(S)GD on the real loss and against the exact cubic Taylor iteration, the first step above
``--threshold``, and ‖f0‖, ‖F2‖, ρ, R_d* (ALGORITHM.md §6). N = 2 uses the low-rank level 2 (any
model size); N ≥ 3 needs the dense Carleman system (tiny models only). Writes
``OUT/emulate_step_<step:08d>.json`` and a PNG of error against step per order. Thin wrapper over
:func:`qcarleman.analysis.emulate.emulate_checkpoint`.

Examples::

    qcarleman emulate runs/digits-sparse --checkpoint 0 --steps 20 --order 2 --json
    qcarleman emulate runs/tiny --checkpoint 0 --steps 10 --order 3 --threshold 0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .helptext import command_help
from .validate import add_force, check_work, integer, memory, positive

#: Work guard: products (Hessian-vector G1·u and third-order G2(u, u)) of the emulation; the
#: order-2 level has rank r(t) ≈ 2t, so T steps take ≈ 2·T·(r + 1) of them (autodiff.lowrank).
PRODUCT_LIMIT = 1e6

JSON_KEYS = (
    "steps",
    "order",
    "rel_error_vs_gd",
    "rel_error_vs_taylor",
    "f0_norm",
    "F2_norm",
    "R_d",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "emulate",
        help="Carleman emulation of T steps from a checkpoint vs true GD and Taylor",
        **command_help(__doc__),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run directory")
    p.add_argument(
        "--checkpoint", type=integer(0, 10**9), default=None, help="step (default: the latest)"
    )
    p.add_argument("--steps", type=integer(1, 10**4), default=10, help="horizon T (10; ≤ 10⁴)")
    p.add_argument("--order", type=integer(1, 6), default=2, help="emulate orders 1..N (2; ≤ 6)")
    p.add_argument(
        "--threshold", type=positive(1e100), default=0.1, help="relative-error threshold (0.1)"
    )
    p.add_argument("--lr", type=positive(1e6), default=None, help="η (default: the run's schedule)")
    p.add_argument("--batch-size", type=integer(1, 10**6), default=None, help="default: the run's")
    p.add_argument(
        "--max-rank", type=integer(1, 10**6), default=None, help="truncate order-2 rank (SVD)"
    )
    p.add_argument(
        "--f2-iters", type=integer(1, 10**4), default=20, help="power-method steps for ‖F2‖ (20)"
    )
    p.add_argument("--float32", action="store_true", help="autodiff in float32 (large models)")
    p.add_argument(
        "--chunk-size",
        type=integer(1, 10**6),
        default=None,
        help="columns per vmapped product (bounds memory)",
    )
    p.add_argument(
        "--hvp-mode",
        choices=("cached", "functional"),
        default="cached",
        help="products by reverse passes through each step's cached gradient graph (cached, "
        "default) or vmapped from scratch (functional; with --chunk-size)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where the products run: cpu, cuda, cuda:1, ... (default: the model's, i.e. cpu)",
    )
    p.add_argument(
        "--memory-limit",
        type=memory,
        default=None,
        help="e.g. 8G (default: half the RAM); products that would not fit run on micro-batches",
    )
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/emulate)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--json", action="store_true", help="print the report keys as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_force(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis.emulate import emulate_checkpoint
    from ..atomic import dumps_json, remove_stale_temps, write_json
    from ..report.plots import plot_emulation

    T = args.steps
    rank = 1 if args.order == 1 else min(2 * T + 1, (args.max_rank or 2 * T) + 2)
    check_work(
        2.0 * T * (rank + 1),
        PRODUCT_LIMIT,
        "emulate: Hessian-vector and third-order products (≈ 2·T·(rank + 1), T = --steps)",
        force=args.force,
    )
    out = Path(args.out) if args.out else Path(args.run_dir) / "emulate"
    remove_stale_temps(out)  # left by a run killed while writing
    try:
        report = emulate_checkpoint(
            args.run_dir,
            args.checkpoint,
            args.steps,
            order=args.order,
            threshold=args.threshold,
            lr=args.lr,
            batch_size=args.batch_size,
            dtype=torch.float32 if args.float32 else torch.float64,
            max_rank=args.max_rank,
            f2_iters=args.f2_iters,
            chunk_size=args.chunk_size,
            device=args.device,
            memory_limit=args.memory_limit,
            hvp_mode=args.hvp_mode,
            progress=not args.quiet,  # tqdm writes to stderr; --json output stays clean
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            "the emulation had not finished and nothing of it was written; rerun the command"
        ) from None
    stem = f"emulate_step_{report['checkpoint']:08d}"
    write_json(out / f"{stem}.json", report)
    report["files"] = [str(out / f"{stem}.json")]
    if not args.no_plot:
        report["files"].append(str(plot_emulation(report, out / f"{stem}.png")))
    if args.json:
        print(dumps_json({k: report[k] for k in (*JSON_KEYS, "files", "notes")}))
        return 0
    _print(report)
    return 0


def _print(r: dict) -> None:
    rd = "undefined (ρ ≥ 1)" if r["R_d"] is None else f"{r['R_d']:.4g}"
    print(
        f"Carleman emulation of {r['run_dir']} from step {r['checkpoint']}: T = {r['steps']}, "
        f"n = {r['n']} active of P = {r['P']}, η = {r['lr']:.4g}, μ = {r['momentum']}, "
        f"λ = {r['weight_decay']}, {'SGD batches' if r['sgd'] else 'full batch'}, {r['dtype']}"
    )
    print(
        f"  ‖f0‖ = {r['f0_norm']:.4e}  ‖F2‖ ≥ {r['F2_norm']:.4e}  λ ∈ [{r['lambda_min']:.4e}, "
        f"{r['lambda_max']:.4e}]  ρ = {r['rho']:.6f} ({r['regime']})  R_d* = {rd}"
    )
    T = r["steps"]
    shown = sorted({1, max(1, T // 4), max(1, T // 2), T})
    head = "".join(f"{'t=' + str(t):>11}" for t in shown)
    print(f"  relative error of x̂_t{'':<14}{head}   first > {r['threshold']:g}")
    rows = [("Taylor vs true GD", r["taylor_vs_gd"], None)]
    for N in r["rel_error_vs_gd"]:
        rows.append(
            (f"N = {N} vs true GD", r["rel_error_vs_gd"][N], r["first_above_threshold_vs_gd"][N])
        )
        rows.append(
            (
                f"N = {N} vs Taylor",
                r["rel_error_vs_taylor"][N],
                r["first_above_threshold_vs_taylor"][N],
            )
        )
    for name, errs, cross in rows:
        vals = "".join(f"{errs[t]:>11.3e}" for t in shown)
        mark = "" if name.startswith("Taylor") else ("never" if cross is None else f"t = {cross}")
        print(f"  {name:<34}{vals}   {mark}")
    if r["ranks"]:
        print(f"  order-2 rank of ŷ2 per step: {r['ranks']}")
    secs = ", ".join(f"{k} {v:.2f}s" for k, v in r["seconds"].items())
    print(f"  time: {secs}")
    for note in r["notes"]:
        print(f"  note: {note}")
    print(f"  wrote {', '.join(r['files'])}")
