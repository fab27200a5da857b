"""`estimate --run`: ρ, ‖f0‖, ‖F2‖ and the Hessian row sparsity measured on a pruned checkpoint,
checked against a dense Hessian, and κ = the §3 bound from the measured ρ."""

import json

import numpy as np
import pytest
import torch

from qcarleman.analysis.estimate_run import estimate_run, measure_run
from qcarleman.autodiff.operators import LossOperators
from qcarleman.cli.main import main
from qcarleman.dissipation import regime
from qcarleman.quantum.cost.estimate import estimate
from qcarleman.quantum.cost.inputs import Conditioning, CostModel, Problem
from qcarleman.training.config import TrainSettings
from qcarleman.training.data import load_dataset
from qcarleman.training.flops import training_flops
from qcarleman.training.models import build_model
from qcarleman.training.pruning import prune_global
from qcarleman.training.run import RunDir
from qcarleman.training.trainer import Trainer

SPEC = {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [6], "activation": "tanh"}
LR, WD = 0.5, 1e-4


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A digits MLP (P = 460, n = 230 active), 50% globally pruned, 2 sparse SGD steps (B = 64)."""
    out = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    data = load_dataset({"name": "digits", "subset": 300})
    model = build_model(SPEC)
    mask = prune_global(model, 0.5, include_classifier=True)
    settings = TrainSettings(
        lr=LR, momentum=0.0, weight_decay=WD, batch_size=64, epochs=1, milestones=[],
        every_step_first=2, max_steps=2,
    )  # fmt: skip
    tr = Trainer(
        model, data, settings, out, mask=mask, seed=0, meta={"model": SPEC}, progress=False
    )
    tr.save()
    tr.fit()
    return out


def _dense(run_dir, step, n_batches):
    run = RunDir(run_dir)
    ck = run.load(step)
    ops = LossOperators(
        ck.model, ck.loss_fn, run.batches(n_batches, start_step=step), mask=ck.mask, weight_decay=WD
    )
    return run, ck, ops, ops.dense_hessian().numpy()


def test_measured_rho_f0_sparsity_match_dense_hessian(run_dir):
    m = measure_run(run_dir, 1, T=5, n_batches=2, sparsity_samples=5, f2_iters=5)
    run, ck, ops, H = _dense(run_dir, 1, 2)
    lam = np.linalg.eigvalsh(H)
    inp, det = m["inputs"], m["details"]
    prov = {k: inp[k].source for k in ("rho", "f0_norm", "F2_norm", "sparsity")}
    assert all(inp[k].kind == "measured" for k in prov)
    assert det["lr"] == LR and det["weight_decay"] == WD
    assert inp["n"] == ops.n == sum(int(v.sum()) for v in ck.mask.values())
    assert inp["P"] == sum(p.numel() for p in ck.model.parameters()) > inp["n"]
    rho_ref = np.max(np.abs(1.0 - LR * lam))
    assert inp["rho"].value == pytest.approx(rho_ref, abs=1e-6)
    assert det["lambda_min"] == pytest.approx(lam[0], abs=1e-6)
    assert det["lambda_max"] == pytest.approx(lam[-1], abs=1e-6)
    assert inp["f0_norm"].value == pytest.approx(LR * float(ops.grad().norm()), rel=1e-10)
    assert 0.0 < inp["F2_norm"].value < np.inf
    # sampled sparsity: the nonzero counts of the sampled rows of the dense H
    rows = det["sparsity_rows"]
    Ha = np.abs(H[rows])
    ref = (Ha > 1e-12 * Ha.max(axis=1, keepdims=True)).sum(axis=1)
    np.testing.assert_array_equal(det["sparsity_counts"], ref)
    assert inp["sparsity"].value == ref.max()
    x, _ = run.batches(1)[0]
    fps = inp["flops_per_step"]
    assert fps.sparse.value == training_flops(ck.model, tuple(x.shape[1:]), 64, 1, ck.mask)
    assert fps.dense.value == training_flops(ck.model, tuple(x.shape[1:]), 64, 1, None)
    assert fps.dense.value > fps.sparse.value and fps.sparse.kind == "measured"
    assert prov["rho"].startswith("measured: max|1 − ηλ|") and "Lanczos" in prov["rho"]
    assert "2 batch(es) of 64 from step 1" in prov["rho"]
    assert prov["sparsity"].startswith("measured (sampled: max over 5 random rows")
    assert "power method" in prov["F2_norm"]


def test_all_rows_sparsity_is_exact(run_dir):
    m = measure_run(run_dir, 0, sparsity_samples=10_000, f2_iters=1)
    *_, H = _dense(run_dir, 0, 1)
    Ha = np.abs(H)
    s = m["inputs"]["sparsity"]
    assert s.value == (Ha > 1e-12 * Ha.max(axis=1, keepdims=True)).sum(1).max()
    assert s.source.startswith("measured (exact: all n rows)")


def test_kappa_is_the_bound_from_the_measured_rho(run_dir):
    no_qs = CostModel(use_qsharp=False)
    est = estimate_run(run_dir, 0, T=5, f2_iters=5, sparsity_samples=3, model=no_qs)
    pb, c = est.problem, est.conditioning
    ref = estimate(
        problem=Problem(n=pb.n, P=pb.P, T=5, sparsity=pb.sparsity, batch_size=64),
        conditioning=Conditioning(rho=c.rho, f0_norm=c.f0_norm, F2_norm=c.F2_norm),
        model=no_qs,
    )
    assert est.kappa.value == ref.kappa.value and est.kappa.kind == "bound"
    default = estimate(problem=Problem(n=pb.n, T=5), model=no_qs)
    assert est.kappa.value != default.kappa.value  # not 1 + 1/T
    f = est.figures
    assert f["rho"].value == c.rho.value and f["rho"].source.startswith("measured")
    assert f["kappa"].source.endswith("from measured rho, f0_norm, F2_norm")
    assert f["kappa"].approx == ""  # nothing assumed
    assert f["sparsity_H"].source.startswith("measured") and f["sparsity_H"].approx == ""
    assert est.measured["regime"] == regime(c.rho.value, 5)
    assert est.classical_flops.kind == "measured"
    assert est.classical_flops_dense.value >= est.classical_flops.value
    # an explicit value wins over the measurement and is labelled as user input
    given = estimate_run(run_dir, 0, T=5, f2_iters=1, sparsity_samples=0, rho=0.5, model=no_qs)
    assert given.conditioning.rho.value == 0.5 and given.figures["rho"].source == "user input"
    assert given.figures["sparsity_H"].source == "assumed"  # sampling off: dense assumption


def test_cli_run_path_lr_override_and_errors(run_dir, capsys):
    args = ["estimate", "--run", str(run_dir), "--step", "0", "--steps", "5", "--json",
            "--no-qsharp", "--f2-iters", "3", "--sparsity-samples", "2", "--lr", "0.1"]  # fmt: skip
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    *_, H = _dense(run_dir, 0, 1)
    lam = np.linalg.eigvalsh(H)
    rho = d["conditioning"]["rho"]
    assert rho["value"] == pytest.approx(np.max(np.abs(1 - 0.1 * lam)), abs=1e-6)
    assert rho["kind"] == "measured" and d["kappa"]["kind"] == "bound"
    assert d["measured"]["lr"] == 0.1 and d["measured"]["run"] == str(run_dir)
    assert d["source"]["rho"].startswith("measured") and "η = 0.1" in d["source"]["rho"]
    assert "measured" in d["source"]["kappa"] and d["source"]["F2_norm"].startswith("measured")
    assert main(["estimate", "--run", str(run_dir), "--active", "10"]) == 2
    assert "drop --active" in capsys.readouterr().err
    assert main(["estimate", "--run", str(run_dir), "--step", "7"]) == 2
    assert "no checkpoint at step 7" in capsys.readouterr().err
    assert main(["estimate", "--run", str(run_dir), "--batches", "0"]) == 2
