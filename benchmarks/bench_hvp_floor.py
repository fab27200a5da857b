"""Benchmark: how close one Hessian-vector product is to the bare matrix products it contains —
the ceiling on what any implementation of the same product (PyHessian's, ours) could gain.

Issue 14 asked for SLQ at equal probes × steps ≥ 1.5× faster than PyHessian. SLQ at equal
probes × steps is that many HVPs plus O(n) vector work, and both packages take the HVP as one
reverse pass through the same cached gradient graph. This script measures, side by side:

* the HVP (qcarleman's cached graph; PyHessian's, if installed) and one plain gradient;
* for the MLP, every matrix product (``aten::mm``/``addmm``) the profiler records inside one HVP:
  its FLOPs (``torch.profiler`` ``with_flops``), and the same ``torch.mm`` calls replayed on
  random operands of the same shapes ("bare products": no autograd, no element-wise work) — a
  floor no HVP of this graph can beat;
* the share of the HVP's time spent in those kernels (profiler self time).

The ratio HVP time / bare-product time bounds the speed-up any implementation of the same
products can reach; beyond it one needs fewer FLOPs than reverse-over-reverse (Pearlmutter's
R-op does the same products: for a dense layer 2 matrix products forward, 4 backward).

Usage::

    .venv/bin/python benchmarks/bench_hvp_floor.py [--rounds 15] [--threads 1] [--no-append]
    .venv/bin/python benchmarks/bench_hvp_floor.py --tiny --no-append   # seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import datetime
import sys

import torch
from bench_spectrum import (
    CE,
    MODELS,
    _torch_eig_shim,
    digits_batch,
    interleave,
    machine_line,
    peer_model,
)
from common import append_results, load

from qcarleman.autodiff.lanczos import slq as slq_torch
from qcarleman.autodiff.operators import LossOperators
from qcarleman.training.models import build_model

PRODUCT_OPS = ("aten::mm", "aten::addmm", "aten::bmm")
KERNEL_PREFIXES = ("aten::mm", "aten::addmm", "aten::bmm", "aten::conv", "aten::mkldnn_conv")


def profile_products(fn):
    """(FLOPs of the matrix products, their shapes [(m, k, n)], product/convolution self-time
    share)
    of one call of ``fn``, from ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        fn()
    flops, shapes, kernel_us, total_us = 0.0, [], 0.0, 0.0
    for ev in prof.events():
        total_us += ev.self_cpu_time_total
        if ev.name.startswith(KERNEL_PREFIXES):
            kernel_us += ev.self_cpu_time_total
        if ev.name in PRODUCT_OPS:
            flops += float(ev.flops or 0)
        if ev.name in ("aten::mm", "aten::addmm"):
            a, b = ev.input_shapes[-2], ev.input_shapes[-1]
            if len(a) == 2 and len(b) == 2:
                shapes.append((a[0], a[1], b[1]))
    return flops, shapes, kernel_us / max(total_us, 1e-9)


def replay(shapes, dtype):
    """A function running ``torch.mm`` on random operands of each (m, k, n) into preallocated
    outputs: the products of the HVP with nothing else."""
    g = torch.Generator().manual_seed(0)
    ops = [
        (torch.randn(m, k, generator=g, dtype=dtype), torch.randn(k, n, generator=g, dtype=dtype))
        for m, k, n in shapes
    ]
    outs = [torch.empty(a.shape[0], b.shape[1], dtype=dtype) for a, b in ops]

    def run():
        for (a, b), o in zip(ops, outs):
            torch.mm(a, b, out=o)

    return run


def pyhessian_runs(model, batch, slq: tuple[int, int] | None):
    """PyHessian's HVP on the peer copy of ``model`` and, with ``slq`` = (probes, steps), its
    SLQ (``density``) divided by its probes × steps products: {name: function returning the
    seconds-per-product divisor} ({} if PyHessian is not installed)."""
    try:
        import pyhessian  # noqa: F401
    except ImportError:
        return {}
    ph_mod = sys.modules["pyhessian.hessian"]
    torch.eig = _torch_eig_shim  # density() calls torch.eig (removed from torch)
    ph = ph_mod.hessian(peer_model(model), CE, data=batch, cuda=False)

    def hvp():
        v = [torch.randn_like(p) for p in ph.params]
        return ph_mod.hessian_vector_product(ph.gradsH, ph.params, v)

    runs = {"HVP (PyHessian)": (hvp, 1)}
    if slq is not None:
        probes, steps = slq
        runs[f"PyHessian SLQ {probes} × {steps}, per product"] = (
            lambda: ph.density(iter=steps, n_v=probes),
            probes * steps,
        )
    return runs


def measure(name, spec, batch, rounds, log, slq=None):
    torch.manual_seed(0)
    model = build_model(spec).float()
    ops = LossOperators(model, CE, [batch], dtype=torch.float32, hvp_mode="cached")
    u = torch.randn(ops.n)
    ops.hvp(u)  # builds the cached graph outside the timings
    flops, shapes, share = profile_products(lambda: ops.hvp(u))

    def gradient():
        model.zero_grad()
        CE(model(batch[0]), batch[1]).backward()

    fns = {"HVP (qcarleman, cached graph)": lambda: ops.hvp(u), "gradient": gradient}
    per = dict.fromkeys(fns, 1)
    if slq is not None:
        probes, steps = slq
        key = f"qcarleman SLQ {probes} × {steps} (reorth=False), per product"
        fns[key] = lambda: slq_torch(ops, probes=probes, iters=steps, seed=0, reorth=False)
        per[key] = probes * steps
    for k, (fn, products) in pyhessian_runs(model, batch, slq).items():
        fns[k], per[k] = fn, products
    mlp = not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if mlp:
        fns["bare products (same torch.mm calls)"] = replay(shapes, torch.float32)
        per["bare products (same torch.mm calls)"] = 1
    med, _ = interleave(fns, rounds, warm=True)
    med = {k: t / per[k] for k, t in med.items()}  # seconds per product
    hvp = med["HVP (qcarleman, cached graph)"]
    log(f"\n### {name}: n = {ops.n:,}, batch {len(batch[1])}, float32\n")
    log(
        f"One HVP: {100 * share:.0f}% of its CPU time in matrix-product and convolution kernels "
        "(profiler self time)"
        + (
            f"; {len(shapes)} matrix products, {flops / 1e9:.3f} GFLOP (profiler count)."
            if mlp
            else " (the profiler counts no FLOPs for convolution backward: no rate given)."
        )
    )
    log("\n| operation | median s per product | × HVP | GFLOP/s (HVP FLOPs / time) |")
    log("|---|---|---|---|")
    for k, t in med.items():
        rate = f"{flops / t / 1e9:.1f}" if mlp and k != "gradient" else ""
        log(f"| {k} | {t:.4f} | {t / hvp:.2f} | {rate} |")
    if mlp:
        bare = med["bare products (same torch.mm calls)"]
        log(
            f"\nCeiling for any implementation of these products: HVP / bare products = "
            f"{hvp / bare:.2f}× (ours); "
            + (
                f"PyHessian / bare products = {med['HVP (PyHessian)'] / bare:.2f}×."
                if "HVP (PyHessian)" in med
                else "PyHessian not installed."
            )
        )
        for k in med:
            if k.startswith("PyHessian SLQ"):
                log(
                    f"SLQ at equal probes × steps: PyHessian's time per product / bare products = "
                    f"{med[k] / bare:.2f}× — the most any SLQ doing these products could gain "
                    "over PyHessian's (before its own Lanczos vector work)."
                )
            if k.startswith("qcarleman SLQ"):
                log(f"Our SLQ per product / bare products = {med[k] / bare:.2f}×.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--tiny", action="store_true", help="a 3-round, 32-sample smoke test")
    ap.add_argument(
        "--slq",
        action="store_true",
        help="also PyHessian's SLQ (4 probes × 20 steps) per product, on the MLP",
    )
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    if args.tiny:
        args.rounds, args.batch = 3, 32
    torch.set_num_threads(max(1, args.threads))
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(max(1, args.threads))
    batch = digits_batch(args.batch)
    lines: list[str] = []

    def log(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    log(f"\n## HVP against its bare matrix products ({datetime.date.today()})\n")
    log(f"Machine: {machine_line()}.")
    log(
        f"Command: `python benchmarks/bench_hvp_floor.py --rounds {args.rounds} --threads "
        f"{args.threads} --batch {args.batch} --models {args.models}"
        f"{' --slq' if args.slq else ''}`; interleaved rounds, medians (per product)."
    )
    for key in args.models.split(","):
        slq = (4, 20) if args.slq and key == "mlp" else None
        measure(*MODELS[key], batch, args.rounds, log, slq=slq)
    log(f"\nLoad average at the end: {load()}.")
    if not args.no_append:
        append_results("\n".join(lines))


if __name__ == "__main__":
    main()
