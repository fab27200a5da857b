"""ResNet-32×4 at 90% pruning, batch 128, on this CPU (issue 14): gradient, cached HVP and the
micro-batched third-order product, with the memory plans, by ``device_check.check_model``.

λ_max and SLQ are skipped by the time budget (their estimate from the HVP time is printed).
Usage: ``python benchmarks/resnet32_cpu.py [OUT.json]`` (≈ 20 minutes on 2 loaded cores).
"""

import json
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import device_check as dc  # noqa: E402


def main() -> None:
    torch.set_num_threads(2)
    args = types.SimpleNamespace(
        batch=128, image=32, memory_limit="10G", lanczos_max=300, slq_steps=256, steps=20
    )
    dev = torch.device("cpu")
    t0 = time.time()
    rec = dc.check_model(
        "ResNet-32x4", 32, 4, 7_451_044, args, dev, dc.Runner(dev, 3000.0), emulate=False
    )
    rec["wall_s"] = time.time() - t0
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resnet32_cpu.json")
    out.write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
