"""Issue 17 studies on a sparse run: the measured scaling of κ, P_succ and the QSVT output with T
(`qcarleman scaling`, original and advised settings), the advise study (accuracy with the
advised vs the original setting), and the cost of one HVP through the two paths of
`LossOperators` (functional vs cached gradient graphs, interleaved rounds on the run's map).
Appends the markdown reports with times, machine and load to RESULTS.md (or prints them).

    python benchmarks/bench_beyond.py --run demo-out/sparse [--t-max 6] [--accuracy-steps 20]
    python benchmarks/bench_beyond.py --run R/sparse --scaling-only --t-max 6 --no-append
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import torch
from common import append_results, load, machine

from qcarleman.analysis.advise import advise_checkpoint, advise_markdown
from qcarleman.analysis.emulate import checkpoint_map
from qcarleman.analysis.scaling import QSVT_MAX_DEGREE, scaling_checkpoint, scaling_markdown
from qcarleman.hybrid.compare import compare_settings


def hvp_paths(run: str, step: int, *, rounds: int = 5, products: int = 20) -> str:
    """Seconds per HVP of step 0's batch through the functional and the cached path, in
    interleaved rounds (median), and their ratio."""
    maps = {m: checkpoint_map(run, step, 1, hvp_mode=m)[0] for m in ("functional", "cached")}
    u = torch.randn(maps["cached"].n, 1, dtype=torch.float64)
    per: dict[str, list[float]] = {m: [] for m in maps}
    for gd in maps.values():
        gd.operators(0).hvp_batch(u)  # warm-up (builds the cached graph)
    for _ in range(rounds):
        for m, gd in maps.items():
            t0 = time.perf_counter()
            for _ in range(products):
                gd.operators(0).hvp_batch(u)
            per[m].append((time.perf_counter() - t0) / products)
    f, c = (statistics.median(per[m]) for m in ("functional", "cached"))
    return (
        f"HVP of one column (n = {maps['cached'].n}), median of {rounds} interleaved rounds of "
        f"{products}: functional {1e3 * f:.2f} ms, cached graphs {1e3 * c:.2f} ms "
        f"(ratio {f / c:.1f}×)."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a sparse run dir, e.g. demo-out/sparse")
    ap.add_argument("--step", type=int, default=0)
    ap.add_argument("--t-max", type=int, default=6)
    ap.add_argument("--qsvt-max-degree", type=int, default=QSVT_MAX_DEGREE)
    ap.add_argument("--steps", type=int, default=5, help="segment length K of the advice")
    ap.add_argument("--accuracy-steps", type=int, default=20)
    ap.add_argument("--scaling-only", action="store_true", help="skip the advise studies")
    ap.add_argument("--out", default="/tmp/bench-beyond")
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    head = (
        f"\n## Issue 17 studies on {args.run} step {args.step} (`bench_beyond.py`)\n\n"
        f"Date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load at start {load()}.\n"
    )
    parts = [head, hvp_paths(args.run, args.step), ""]
    adv = None
    if not args.scaling_only:
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
    parts += ["### Scaling with the run's own setting\n", ""]
    r = scaling_checkpoint(
        args.run, args.step, args.t_max, qsvt_max_degree=args.qsvt_max_degree, progress=True
    )
    qs = ", ".join(
        f"T = {T}: {s:.0f} s" for T, s in zip(r["T"], r["qsvt_seconds"]) if s is not None
    )
    parts += [
        scaling_markdown(r),
        f"\nWall time {r['seconds_total']:.0f} s (QSVT outputs {qs or 'none'}); load {load()}.\n",
    ]
    if adv is not None and adv["settings"]:
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
            qsvt_max_degree=args.qsvt_max_degree,
        )
        parts += [scaling_markdown(r2), f"\nWall time {r2['seconds_total']:.0f} s.\n"]
    if adv is not None:
        parts += [
            "### Advise\n",
            advise_markdown(adv),
            f"\nWall time {t_adv:.0f} s; load at end {load()}.\n",
        ]
    text = "\n".join(parts)
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
