"""Device check (issue 14): the paper's ResNets at 90% pruning on random CIFAR-shaped data.

Run through ``benchmarks/device_check.sh`` (``--tiny`` for seconds on a CPU). Per model:
gradient, HVP (cached gradient graph), third-order product, λ_max (torch Lanczos, certified
bound), SLQ (256 steps, 1 probe), and for the first model order-2 low-rank emulation at T = 20;
the peak device memory of each (on a CPU: the process's peak RSS so far). Writes
``$OUT/device_check.json`` (every number ``{"value", "kind"}``) and ``$OUT/device_check.md``
(a markdown table). Parts that would overrun ``--budget`` seconds are skipped and marked so; a
failing part (e.g. out of memory) is recorded, not fatal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from qcarleman.atomic import atomic_write_text, write_json
from qcarleman.autodiff.gdmap import GDMap
from qcarleman.autodiff.lanczos import lanczos, slq
from qcarleman.autodiff.lowrank import emulate_order2
from qcarleman.autodiff.memory import micro_batched, plan_products
from qcarleman.autodiff.operators import LossOperators
from qcarleman.quantity import Quantity
from qcarleman.training.models import ResNet, count_parameters
from qcarleman.training.pruning import prune_global

CE = torch.nn.functional.cross_entropy
#: (name, depth, widen, parameters with 100 classes) — the paper's models (ALGORITHM.md §9).
FULL = [("ResNet-32x4", 32, 4, 7_451_044), ("ResNet-56x11", 56, 11, 103_703_700)]
TINY = [("ResNet-8x1", 8, 1, None), ("ResNet-14x1", 14, 1, None)]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak(dev: torch.device) -> float:
    if dev.type == "cuda":
        return float(torch.cuda.max_memory_allocated(dev))
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024.0  # Linux: KiB


def _reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


class Runner:
    """Times named parts on one device within a wall-clock budget."""

    def __init__(self, dev: torch.device, budget: float):
        self.dev, self.deadline = dev, time.perf_counter() + budget

    def part(self, fn, estimate: float = 0.0) -> dict:
        left = self.deadline - time.perf_counter()
        if estimate > left:
            return {"status": f"skipped (needs ~{estimate:.0f} s, {max(left, 0):.0f} s left)"}
        _reset(self.dev)
        _sync(self.dev)
        t0 = time.perf_counter()
        try:
            extra = fn()
        except (RuntimeError, MemoryError) as exc:  # out of memory and friends: record, go on
            return {"status": f"failed: {str(exc).splitlines()[0][:200]}"}
        _sync(self.dev)
        sec = time.perf_counter() - t0
        out = {
            "status": "ok",
            "seconds": Quantity(sec, "measured", unit="s").to_json(),
            "peak_memory_bytes": Quantity(_peak(self.dev), "measured", unit="B").to_json(),
        }
        out.update(extra if isinstance(extra, dict) else {})
        return out


def check_model(name, depth, widen, expected, args, dev, run: Runner, emulate: bool) -> dict:
    torch.manual_seed(0)
    model = ResNet(depth, widen, in_channels=3, classes=100)
    P = count_parameters(model)
    if expected is not None and P != expected:
        raise SystemExit(f"{name}: {P:,} parameters, expected {expected:,}")
    mask = prune_global(model, 0.9)
    model = model.to(dev)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.image, args.image, generator=g)
    y = torch.randint(0, 100, (args.batch,), generator=g)
    rec: dict = {"model": name, "depth": depth, "widen": widen, "parameters": P}
    ops = LossOperators(
        model, CE, [(x, y)], mask=mask, dtype=torch.float32, hvp_mode="cached", device=dev
    )
    rec["active_n"] = ops.n
    rec["batch"] = args.batch
    limit = args.memory_limit
    if limit is None and dev.type == "cuda":
        limit = int(torch.cuda.get_device_properties(dev).total_memory * 0.9)
    plans = {p: plan_products(ops, p, memory_limit=limit) for p in ("hvp", "third")}
    rec["memory_plans"] = {p: plan.to_json() for p, plan in plans.items()}
    ops3 = micro_batched(ops, plans["third"])
    ops = micro_batched(ops, plans["hvp"])
    u = torch.randn(ops.n, generator=g).to(dev)
    u /= u.norm()
    ops.grad_at(ops.theta)  # warm (first-call overhead of torch.func)
    parts = {}
    parts["gradient"] = run.part(lambda: ops.grad_at(ops.theta))
    parts["hvp_graph_build"] = run.part(lambda: {"path": ops.hvp_path})
    ops.hvp(u)  # warm
    parts["hvp"] = run.part(lambda: ops.hvp(u))
    grad_s = parts["gradient"].get("seconds", {}).get("value")
    hvp_s = parts["hvp"].get("seconds", {}).get("value")
    if grad_s and hvp_s:
        rec["hvp_over_gradient"] = Quantity(hvp_s / grad_s, "measured").to_json()
    parts["third_order"] = run.part(lambda: ops3.third(u, u), estimate=3 * (hvp_s or 0))

    def lam():
        r = lanczos(
            ops,
            k=1,
            which="largest",
            tol=1e-3,
            rule="gap",
            v0="gradient",
            reorth=False,
            maxiter=args.lanczos_max,
            seed=0,
        )
        return {
            "lambda_max": Quantity(float(r.largest[0]), "estimated").to_json(),
            "lambda_max_gap_bound": Quantity(
                float(r.largest[0] + r.error_largest[0]),
                "bound",
                source="Kato–Temple r²/gap with the Ritz gap (stopping rule, tol 1e-3)",
            ).to_json(),
            "lambda_max_upper": Quantity(
                float(r.largest[0]) + r.bound_largest,
                "bound",
                source=f"Chebyshev certificate, probability ≥ {1 - r.delta:g}",
            ).to_json(),
            "products": r.matvecs,
        }

    parts["lambda_max"] = run.part(lam, estimate=args.lanczos_max * (hvp_s or 0) * 0.5)

    def density():
        r = slq(ops, probes=1, iters=args.slq_steps, seed=1)
        return {"products": r.matvecs, "trace": Quantity(r.trace(), "estimated").to_json()}

    parts["slq"] = run.part(density, estimate=args.slq_steps * (hvp_s or 0))
    if emulate:
        T = args.steps

        def order2():
            gd = GDMap(
                model,
                CE,
                [(x, y)],
                0.1,
                mask=mask,
                dtype=torch.float32,
                device=dev,
                hvp_mode="cached",
            )
            r = emulate_order2(gd, gd.initial_state(), T)
            return {"T": T, "hvp_products": r.g1_products, "third_products": r.g2_products}

        third_s = parts["third_order"].get("seconds", {}).get("value") or 0
        parts["order2_emulation"] = run.part(order2, estimate=T * T * ((hvp_s or 0) + third_s))
    rec["parts"] = parts
    return rec


def markdown(report: dict) -> str:
    lines = [
        f"## Device check ({report['date']}, {report['device']}, {report['machine']})",
        "",
        "| model | params | n | part | status | seconds | peak memory GiB | products |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        for part, r in m["parts"].items():
            sec = r.get("seconds", {}).get("value")
            mem = r.get("peak_memory_bytes", {}).get("value")
            prod = r.get("products", r.get("hvp_products", ""))
            if "third_products" in r:
                prod = f"{r['hvp_products']} HVP + {r['third_products']} third"
            lines.append(
                f"| {m['model']} | {m['parameters']:,} | {m['active_n']:,} | {part} | "
                f"{r['status']} | {'' if sec is None else f'{sec:.3f}'} | "
                f"{'' if mem is None else f'{mem / 2**30:.2f}'} | {prod} |"
            )
    lines.append(f"\nTotal {report['total_seconds']:.1f} s.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny ResNets, batch 8: seconds on a CPU")
    ap.add_argument("--out", default=os.environ.get("OUT", "device-check-out"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--memory-limit", default=None, help="e.g. 24G (default: 90%% of the GPU)")
    ap.add_argument("--budget", type=float, default=None, help="seconds (default 420; tiny 120)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    dev = torch.device(args.device)
    models = TINY if args.tiny else FULL
    args.batch, args.image = (8, 16) if args.tiny else (128, 32)
    args.slq_steps, args.steps, args.lanczos_max = (8, 2, 10) if args.tiny else (256, 20, 100)
    budget = args.budget if args.budget is not None else (120.0 if args.tiny else 420.0)
    run = Runner(dev, budget)
    torch.backends.cudnn.benchmark = False
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev),
        "torch": torch.__version__,
        "tiny": bool(args.tiny),
        "budget_seconds": budget,
        "models": [],
    }
    for i, (name, depth, widen, expected) in enumerate(models):
        report["models"].append(
            check_model(name, depth, widen, expected, args, dev, run, emulate=i == 0)
        )
        print(f"{name}: done at {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    report["total_seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    write_json(out / "device_check.json", report)
    atomic_write_text(out / "device_check.md", markdown(report))
    print(markdown(report))
    print(json.dumps({"total_seconds": report["total_seconds"]}), file=sys.stderr)


if __name__ == "__main__":
    main()
