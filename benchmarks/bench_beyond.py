"""Issue 17 studies on the demo run: the measured scaling of κ, P_succ and the QSVT output with T
(`qcarleman scaling`, original and advised settings) and the advise study (accuracy with the
advised vs the original setting). Appends the markdown reports with times, machine and load to
RESULTS.md.

    python benchmarks/bench_beyond.py --run demo-out/sparse [--t-max 6] [--accuracy-steps 20]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from common import append_results, load, machine

from qcarleman.analysis.advise import advise_checkpoint, advise_markdown
from qcarleman.analysis.scaling import scaling_checkpoint, scaling_markdown
from qcarleman.hybrid.compare import compare_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a sparse run dir, e.g. demo-out/sparse")
    ap.add_argument("--step", type=int, default=0)
    ap.add_argument("--t-max", type=int, default=6)
    ap.add_argument("--steps", type=int, default=5, help="segment length K of the advice")
    ap.add_argument("--accuracy-steps", type=int, default=20)
    ap.add_argument("--out", default="/tmp/bench-beyond")
    args = ap.parse_args()
    head = (
        f"\n## Issue 17 studies on {args.run} step {args.step} (`bench_beyond.py`)\n\n"
        f"Date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load at start {load()}.\n"
    )
    t0 = time.perf_counter()
    adv = advise_checkpoint(args.run, args.step, args.steps)
    if adv["settings"]:
        best = adv["settings"][0]
        adv["accuracy"] = compare_settings(
            args.run,
            adv["checkpoint"],
            {k: best[k] for k in ("lr", "momentum", "weight_decay")},
            {k: adv[k] for k in ("lr", "momentum", "weight_decay")},
            K=args.steps,
            total_steps=args.accuracy_steps,
            shots=100_000,
            out=args.out,
        )
    t_adv = time.perf_counter() - t0
    parts = [head, "### Scaling with the run's own setting\n", ""]
    r = scaling_checkpoint(args.run, args.step, args.t_max)
    parts += [scaling_markdown(r), f"\nWall time {r['seconds_total']:.0f} s.\n"]
    if adv["settings"]:
        best = adv["settings"][0]
        parts.append(
            f"### Scaling, first advised setting (weight decay {best['weight_decay']:.4g})\n"
        )
        r2 = scaling_checkpoint(
            args.run,
            args.step,
            args.t_max,
            weight_decay=best["weight_decay"],
            lr=best["lr"],
            momentum=best["momentum"],
            qsvt_max_degree=1200,
        )
        parts += [scaling_markdown(r2), f"\nWall time {r2['seconds_total']:.0f} s.\n"]
    parts += [
        "### Advise\n",
        advise_markdown(adv),
        f"\nWall time {t_adv:.0f} s; load at end {load()}.\n",
    ]
    append_results("\n".join(parts))


if __name__ == "__main__":
    main()
