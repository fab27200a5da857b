"""Training throughput on the CPU: samples per second of forward + backward + SGD step.

Models: ResNet-20 (w = 1) and ResNet-32×4 (the paper's 7,451,044-parameter model) on 32×32×3
inputs with 100/10 classes, batch 128, random data (throughput does not depend on pixel values);
the digits SmallCNN of ``configs/digits-cnn.toml`` at batch 128 and its batch 32. Also the wall
time of the shipped digits pipeline (dense training to its final test accuracy).

    .venv/bin/python benchmarks/bench_training.py [--threads 1] [--quick]

Prints a markdown section and appends it to benchmarks/RESULTS.md. The machine is shared with
other jobs; the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import torch
from common import machine, publish

from qcarleman.training.config import example_config, load_config
from qcarleman.training.models import ResNet, SmallCNN, count_parameters
from qcarleman.training.trainer import train_dense


def throughput(model: torch.nn.Module, shape: tuple[int, ...], classes: int, batch: int,
               steps: int) -> float:  # fmt: skip
    """Samples/s of SGD steps (momentum 0.9, wd 2e-4) after one warm-up step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load0 = os.getloadavg()
    rows = []
    cases = [
        ("ResNet-20 (w=1), CIFAR-10 shape", ResNet(20, 1, 3, 10), (3, 32, 32), 10, 128,
         2 if args.quick else 5),
        ("ResNet-32×4, CIFAR-100 shape", ResNet(32, 4, 3, 100), (3, 32, 32), 100, 128,
         1 if args.quick else 2),
        ("digits SmallCNN (width 32, 8×8)", SmallCNN(1, 10, 8, 32, 2), (1, 8, 8), 10, 128,
         10 if args.quick else 50),
        ("digits SmallCNN (width 32, 8×8)", SmallCNN(1, 10, 8, 32, 2), (1, 8, 8), 10, 32,
         20 if args.quick else 100),
    ]  # fmt: skip
    for name, model, shape, classes, batch, steps in cases:
        sps = throughput(model, shape, classes, batch, steps)
        rows.append((name, count_parameters(model), batch, steps, sps))
        print(f"{name}: {sps:.1f} samples/s", flush=True)

    cfg = load_config(example_config("digits-cnn"))
    cfg.threads = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rec = train_dense(cfg, Path(tmp) / "dense", progress=False)
        wall = time.perf_counter() - t0
    load1 = os.getloadavg()

    lines = [
        "",
        f"## Training throughput on CPU — {dt.date.today().isoformat()}",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_training.py --threads {args.threads}"
        f"{' --quick' if args.quick else ''}`. Machine: {machine()}, torch "
        f"{torch.__version__}, {args.threads} thread(s). Shared machine: load average "
        f"{load0[0]:.2f} at start, {load1[0]:.2f} at end (1-min), so absolute rates are "
        "pessimistic and noisy.",
        "",
        "Forward + backward + SGD step (momentum 0.9, weight decay 2e-4), random inputs:",
        "",
        "| model | parameters | batch | timed steps | samples/s |",
        "|---|---:|---:|---:|---:|",
        *[f"| {n} | {p:,} | {b} | {s} | {v:.1f} |" for n, p, b, s, v in rows],
        "",
        f"Shipped `digits-cnn` pipeline, dense phase ({cfg.train.epochs} epochs, batch "
        f"{cfg.train.batch_size}, {rec['step']} steps, checkpoints and evaluation included): "
        f"{wall:.1f} s wall, final test accuracy {rec['test_acc']:.4f}.",
        "",
    ]
    publish(lines, append=not args.no_append)


if __name__ == "__main__":
    main()
