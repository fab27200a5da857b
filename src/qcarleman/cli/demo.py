"""``qcarleman demo``: the main job on the embedded default example.

Interim version (foundation issue): runs the discrete Carleman engine (ALGORITHM.md §2–§3) on a
built-in dissipative quadratic map (‖G1‖ = 0.8, small G0 and G2) for orders N = 1..3 and prints,
per order, the max-over-t relative error of the level-1 trajectory against exact iteration, and
κ(L) and P_succ of the history system. Results go to OUT/demo.json. The end-to-end demo
(digits → prune → spectra → hybrid training → report) replaces it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end example on the embedded default data")
    p.add_argument("--quick", action="store_true", help="smallest settings (used by CI)")
    p.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..carleman import CarlemanSystem
    from ..dynamics import QuadraticMap

    d, T, idle = (4, 10, 2) if args.quick else (8, 20, 5)
    rng = np.random.default_rng(0)
    G1 = rng.standard_normal((d, d))
    G1 *= 0.8 / np.linalg.norm(G1, 2)
    G2 = 0.05 * rng.standard_normal((d, d * d)) / d
    qmap = QuadraticMap(0.01 * rng.standard_normal(d), G1, G2)
    z0 = 0.1 * rng.standard_normal(d)
    exact = qmap.iterate(z0, T)

    print("qcarleman demo — INTERIM: Carleman engine on a built-in quadratic map")
    print("(the end-to-end training demo is not implemented yet)")
    print(
        f"  d = {d}, horizon T = {T}, idle steps p = {idle}, ‖G1‖₂ = 0.8, ‖z0‖ = "
        f"{np.linalg.norm(z0):.3g}"
    )
    print(
        f"  {'N':>2} {'D_N':>6} {'γ':>8} {'max rel. error':>15} {'κ(L)':>10} "
        f"{'κ method':>9} {'P_succ':>10}"
    )
    rows = []
    for N in (1, 2, 3):
        cs = CarlemanSystem(qmap, N, scale="auto")
        traj = cs.iterate(z0, T)
        err = np.max(np.linalg.norm(traj - exact, axis=1) / np.linalg.norm(exact, axis=1))
        hist = cs.history(z0, T, idle=idle)
        method = "exact" if hist.dim <= 2000 else "estimate"
        kappa = hist.kappa(method)
        row = {
            "order": N,
            "D_N": cs.dim,
            "scale": cs.scale,
            "max_relative_error": float(err),
            "kappa": kappa,
            "kappa_method": method,
            "success_probability": hist.success_probability,
            "history_dim": hist.dim,
        }
        rows.append(row)
        print(
            f"  {N:>2} {cs.dim:>6} {cs.scale:>8.3g} {err:>15.3e} {kappa:>10.4g} "
            f"{method:>9} {row['success_probability']:>10.4g}"
        )
    print(
        "  κ 'estimate' = Lanczos (a lower estimate of the exact κ); errors are Carleman "
        "truncation errors vs exact iteration"
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"interim": True, "d": d, "T": T, "idle": idle, "orders": rows}
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(result, fh, indent=2)
    os.replace(tmp, out / "demo.json")
    print(f"  wrote {out / 'demo.json'}")
    return 0
