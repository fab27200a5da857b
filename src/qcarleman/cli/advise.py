"""``qcarleman advise RUN_DIR --step S``: learning rates, momenta and weight decays that would make
a segment fully dissipative, with κ, cost and the measured accuracy cost (issue 17;
:mod:`qcarleman.analysis.advise`).

From the measured spectrum of H (Lanczos extremes over the segment's K batches, weight decay of
the run included) it lists the settings (η, μ, λ) whose actual linear part has spectral radius
ρ < 1 on [λ_min, λ_max], with R_d*, the §3 κ bound and the estimated quantum and classical time,
and says plainly when none works. With ``--accuracy-steps N`` it trains N steps hybrid (linear
backend, K-step segments) and classical with the first advised setting and with the original one
on the same batches, and reports their test accuracy. Writes ``OUT/advise_step_<step>.json`` and
``.md``.

Examples::

    qcarleman advise demo-out/sparse --step 0 --steps 5 --json
    qcarleman advise demo-out/sparse --step 0 --steps 5 --accuracy-steps 20 --shots 100000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .helptext import command_help

JSON_KEYS = ("lambda_min", "lambda_max", "weight_decay", "settings", "verdict")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "advise",
        help="η, μ, weight decay that make a segment fully dissipative; κ, cost, accuracy cost",
        **command_help(__doc__),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run directory")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--steps", type=int, default=5, help="segment length K (default 5)")
    p.add_argument(
        "--accuracy-steps",
        type=int,
        default=0,
        help="train this many steps with the advised and original settings (default 0: skip)",
    )
    p.add_argument("--shots", type=int, default=100_000, help="tomography shots (100000)")
    p.add_argument("--epsilon", type=float, default=1e-2, help="target ε of the estimate")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/advise)")
    p.add_argument("--json", action="store_true", help="print the contract keys as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.advise import advise_checkpoint, advise_markdown
    from ..atomic import atomic_write_text, dumps_json, write_json
    from ..errors import UsageError
    from ..hybrid.compare import compare_settings

    if args.accuracy_steps < 0 or args.shots < 0:
        raise UsageError("--accuracy-steps and --shots must be ≥ 0")
    out = Path(args.out) if args.out else Path(args.run_dir) / "advise"
    r = advise_checkpoint(args.run_dir, args.step, args.steps, epsilon=args.epsilon)
    if args.accuracy_steps and r["settings"]:
        best = r["settings"][0]
        r["accuracy"] = compare_settings(
            args.run_dir,
            r["checkpoint"],
            {k: best[k] for k in ("lr", "momentum", "weight_decay")},
            {k: r[k] for k in ("lr", "momentum", "weight_decay")},
            K=args.steps,
            total_steps=args.accuracy_steps,
            shots=args.shots,
            out=out,
        )
    stem = out / f"advise_step_{r['checkpoint']:08d}"
    md = advise_markdown(r)
    write_json(stem.with_suffix(".json"), r)
    atomic_write_text(stem.with_suffix(".md"), md + "\n")
    files = [str(stem.with_suffix(".json")), str(stem.with_suffix(".md"))]
    if args.json:
        extra = {"accuracy": r["accuracy"]} if "accuracy" in r else {}
        print(dumps_json({**{k: r[k] for k in JSON_KEYS}, **extra, "files": files}))
        return 0
    print(md)
    print(f"wrote {', '.join(files)}")
    return 0
