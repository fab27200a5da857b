"""Benchmark: the cached HVP with and without :func:`qcarleman.autodiff.fast_hvp.fast_hvp` (the
closed-form batch-norm double backward and the data-input convolution), side by side on a
paper-scale model.

ResNet-32×4 (7,451,044 parameters, CIFAR-100 head) pruned to 90% by global magnitude, random
CIFAR-shaped data, float32, one torch thread. Two operators on the same model and batch, one
built with ``fast_hvp`` and one without (``hvp_mode="cached"`` both); interleaved rounds, medians;
the two HVPs agree to float32 rounding (reported).

Usage::

    .venv/bin/python benchmarks/bench_fast_hvp.py [--batch 32] [--rounds 5] [--no-append]
    .venv/bin/python benchmarks/bench_fast_hvp.py --tiny --no-append   # ResNet-8×1, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import time
from unittest import mock

import torch
from bench_spectrum import CE, interleave, machine_line
from common import load, publish

from qcarleman.autodiff import operators
from qcarleman.autodiff.operators import LossOperators
from qcarleman.training.models import ResNet
from qcarleman.training.pruning import prune_global


def build(with_fast: bool, model, mask, batch) -> tuple[LossOperators, float]:
    """Cached-graph operators with or without fast_hvp, graphs built; (ops, build seconds)."""
    ops = LossOperators(model, CE, [batch], mask=mask, dtype=torch.float32, hvp_mode="cached")
    patch = (
        contextlib.nullcontext()
        if with_fast
        else mock.patch.object(operators, "fast_hvp", contextlib.nullcontext)
    )
    t0 = time.perf_counter()
    with patch:
        assert ops.hvp_path == "cached"  # builds the graphs
    return ops, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="ResNet-8×1, batch 8, 2 rounds")
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args()
    depth, widen = (8, 1) if args.tiny else (32, 4)
    if args.tiny:
        args.batch, args.rounds = 8, 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ResNet(depth, widen, in_channels=3, classes=100)
    mask = prune_global(model, 0.9)
    g = torch.Generator().manual_seed(1)
    batch = (
        torch.randn(args.batch, 3, 32, 32, generator=g),
        torch.randint(0, 100, (args.batch,), generator=g),
    )
    fast, t_fast = build(True, model, mask, batch)
    plain, t_plain = build(False, model, mask, batch)
    u = torch.randn(fast.n, generator=g)
    fns = {
        "HVP, fast_hvp": lambda: fast.hvp(u),
        "HVP, PyTorch's double backwards": lambda: plain.hvp(u),
    }
    med, out = interleave(fns, args.rounds, warm=True)
    a, b = out["HVP, fast_hvp"], out["HVP, PyTorch's double backwards"]
    diff = float((a - b).norm() / b.norm())
    lines = [
        f"\n## fast_hvp on ResNet-{depth}×{widen} ({datetime.date.today()})\n",
        f"Machine: {machine_line()}.",
        f"Command: `python benchmarks/bench_fast_hvp.py --batch {args.batch} --rounds "
        f"{args.rounds}`; ResNet-{depth}×{widen} pruned 90% (n = {fast.n:,} active), random "
        f"CIFAR-shaped batch of {args.batch}, float32, 1 thread; interleaved, medians.\n",
        "| operation | median s | relative |",
        "|---|---|---|",
    ]
    ref = med["HVP, PyTorch's double backwards"]
    for k, t in med.items():
        lines.append(f"| {k} | {t:.3f} | {ref / t:.2f}× |")
    lines.append(
        f"\nGraph build: {t_fast:.1f} s with fast_hvp, {t_plain:.1f} s without (one each, not "
        f"interleaved). ‖Hu_fast − Hu‖/‖Hu‖ = {diff:.1e} (float32). Load average at the end: "
        f"{load()}."
    )
    publish(lines, append=not args.no_append)


if __name__ == "__main__":
    main()
