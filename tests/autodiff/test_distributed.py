"""Sharded Hessian products over 2 gloo processes equal the single-process spectrum."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from qcarleman import UsageError
from qcarleman.analysis.spectrum import analyze_operator
from qcarleman.autodiff.distributed import shard_batches
from qcarleman.autodiff.operators import LossOperators
from qcarleman.training.data import load_dataset
from qcarleman.training.models import build_model

SPEC = {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [12], "activation": "tanh"}
CE = torch.nn.functional.cross_entropy


def problem():
    """A small MLP with a mask and 4 batches of unequal size (deterministic in every process)."""
    torch.manual_seed(0)
    model = build_model(SPEC)
    mask = {"features.1.weight": torch.rand(12, 64) > 0.3}
    x, y = load_dataset({"name": "digits"}).train
    cuts = [0, 40, 100, 130, 200]
    batches = [(x[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]
    return model, mask, batches


def spectra(ops, lr=0.5):
    A = ops.linear_operator()
    ex = analyze_operator(A, lr=lr, method="exact")
    sl = analyze_operator(A, lr=lr, method="slq", k=3, probes=4, iters=20, seed=3)
    u = np.linspace(-1, 1, ops.n)
    third = ops.third(torch.as_tensor(u), torch.as_tensor(u)).numpy()
    return {
        "eigs": ex.nodes,
        "slq_nodes": sl.nodes,
        "slq_weights": sl.weights,
        "lmax": sl.lambda_max,
        "lmin": sl.lambda_min,
        "grad": ops.grad().numpy(),
        "loss": ops.loss(),
        "third": third,
    }


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    from qcarleman.autodiff.distributed import DistributedLossOperators

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, mask, batches = problem()
    ops = DistributedLossOperators(model, CE, batches, mask=mask, weight_decay=1e-3)
    res = spectra(ops)
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **res)
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    model, mask, batches = problem()
    ref = spectra(LossOperators(model, CE, batches, mask=mask, weight_decay=1e-3))
    r0 = dict(np.load(tmp_path / "rank0.npz"))
    r1 = dict(np.load(tmp_path / "rank1.npz"))
    for key in ref:
        np.testing.assert_array_equal(r0[key], r1[key])  # every rank holds the same result
        np.testing.assert_allclose(r0[key], ref[key], rtol=1e-6, atol=1e-9, err_msg=key)
    assert np.max(np.abs(r0["eigs"] - ref["eigs"])) < 1e-10


def test_shard_batches_and_uninitialized_group():
    assert shard_batches(list(range(5)), 1, 2) == [1, 3]
    with pytest.raises(UsageError, match="at least 3 batches"):
        shard_batches([1, 2], 0, 3)
    from qcarleman.autodiff.distributed import DistributedLossOperators

    model, mask, batches = problem()
    with pytest.raises(UsageError, match="not initialized"):
        DistributedLossOperators(model, CE, batches)


@pytest.mark.slow
def test_torchrun_cli_entry_point(tmp_path):
    """`torchrun -m qcarleman.cli.torchrun RUN_DIR` writes the single-process spectra."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun is not None, "torchrun ships with torch: it must sit beside this python"
    from qcarleman.cli.main import main
    from qcarleman.training.config import TrainSettings
    from qcarleman.training.trainer import Trainer

    model, mask, _ = problem()
    data = load_dataset({"name": "digits"})
    st = TrainSettings(
        lr=0.2,
        momentum=0.0,
        batch_size=64,
        epochs=1,
        milestones=[],
        every_step_first=1,
        max_steps=1,
    )
    Trainer(
        model, data, st, tmp_path / "run", mask=mask, meta={"model": SPEC}, progress=False
    ).fit()
    args = [str(tmp_path / "run"), "--checkpoints", "0:1", "--batches", "4", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [
            torchrun,
            "--nproc-per-node",
            "2",
            "-m",
            "qcarleman.cli.torchrun",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        check=True,
        env=env,
        timeout=300,
        capture_output=True,
    )
    assert main(["spectrum", *args, "--out", str(tmp_path / "one")]) == 0
    two = json.loads((tmp_path / "two" / "spectra.json").read_text())["checkpoints"]
    one = json.loads((tmp_path / "one" / "spectra.json").read_text())["checkpoints"]
    for a, b in zip(two, one):
        assert a["lambda_max"] == pytest.approx(b["lambda_max"], rel=1e-9)
        np.testing.assert_allclose(a["E"], b["E"], rtol=1e-9)
