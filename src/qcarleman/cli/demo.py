"""``qcarleman demo``: the main job on the embedded default example.

Interim version (foundation issue): iterates a built-in dissipative quadratic map exactly and prints
its trajectory norm. The end-to-end demo (digits → prune → spectra → hybrid training → report)
replaces it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end example on the embedded default data")
    p.add_argument("--quick", action="store_true", help="smallest settings (used by CI)")
    p.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..dynamics import QuadraticMap

    rng = np.random.default_rng(0)
    d = 8
    G1 = rng.standard_normal((d, d))
    G1 *= 0.8 / np.linalg.norm(G1, 2)
    G2 = 0.05 * rng.standard_normal((d, d * d)) / d
    qmap = QuadraticMap(0.01 * rng.standard_normal(d), G1, G2)
    traj = qmap.iterate(0.1 * rng.standard_normal(d), 20)
    print("qcarleman demo (interim: built-in quadratic map, exact iteration only)")
    print(f"  d = {d}, T = 20, ‖z_T‖ = {np.linalg.norm(traj[-1]):.6e}")
    return 0
