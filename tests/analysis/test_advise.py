"""Dissipation engineering (issue 17, part 2): the advised settings really are fully
dissipative on the measured spectrum (exact eigenvalues of the dense linear part)."""

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.analysis.advise import advise_map, candidates
from qcarleman.autodiff.gdmap import GDMap
from qcarleman.training.models import MLP
from qcarleman.training.pruning import prune_global

DEFAULT_DTYPE = torch.float64


def digits_model():
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0), torch.tensor(d.target)
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(4,), activation="tanh").double()
    mask = prune_global(model, 0.9, include_classifier=True)
    return model, mask, [(x[32 * i : 32 * (i + 1)], y[32 * i : 32 * (i + 1)]) for i in range(3)]


def spectral_radius(gm: GDMap, t: int) -> float:
    G1 = gm.g1(t, np.eye(gm.dim))
    return float(np.max(np.abs(np.linalg.eigvals(G1))))


@pytest.mark.parametrize("momentum,lr", [(0.9, 0.5), (0.0, 2.0)])
def test_advised_settings_have_spectral_radius_below_one(momentum, lr):
    model, mask, batches = digits_model()
    CE = nn.functional.cross_entropy
    gm = GDMap(
        model, CE, batches, lr, mask=mask, weight_decay=1e-3, momentum=momentum, per_step=True
    )
    r = advise_map(gm, 3)
    eig = [np.linalg.eigvalsh(gm.operators(t).dense_hessian().numpy()) for t in range(3)]
    lo, hi = min(e[0] for e in eig), max(e[-1] for e in eig)
    assert r["lambda_min"] <= lo + 1e-9 and r["lambda_max"] >= hi - 1e-9  # contains H's spectrum
    assert r["weight_decay"] == 1e-3
    assert r["settings"], r["verdict"]
    rho0 = max(spectral_radius(gm, t) for t in range(3))
    assert rho0 == pytest.approx(r["rho_original"], abs=0.02) or rho0 <= r["rho_original"]
    for s in r["settings"][:6] + r["settings"][-3:]:
        assert s["rho"] < 1
        adv = GDMap(
            model,
            CE,
            batches,
            s["lr"],
            mask=mask,
            weight_decay=s["weight_decay"],
            momentum=s["momentum"],
            per_step=True,
        )
        for t in range(3):
            assert spectral_radius(adv, t) <= s["rho"] + 1e-9 < 1 + 1e-9


def test_no_setting_is_stated_plainly():
    model, mask, batches = digits_model()
    grid = candidates(0.1, 0.9, 0.0, -1.0, 5.0)
    assert any(m.weight_decay > 1.0 for m in grid)  # the grid offers the curing shift
    assert {m.momentum for m in grid} == {0.9, 0.45, 0.0}
    # η so large that even η/100 overshoots every curvature: η·λ_max > 2(1 + μ) everywhere
    gm = GDMap(model, nn.functional.cross_entropy, batches[:1], 1e5, mask=mask)
    r = advise_map(gm, 2)
    assert r["settings"] == []
    assert r["verdict"] == "no setting in the grid makes this segment fully dissipative"


def test_advise_on_a_run_and_measured_accuracy_of_overrides(tmp_path, sparse_run):
    """The run-level contract and the optimizer overrides the accuracy study relies on."""

    from qcarleman.cli.main import main
    from qcarleman.hybrid.compare import compare_settings
    from qcarleman.hybrid.settings import HybridSettings
    from qcarleman.hybrid.trainer import HybridTrainer

    torch.set_default_dtype(torch.float32)  # the trainer's dtype (restored by conftest)
    run = sparse_run(tmp_path, [4], 0.9)
    h = HybridTrainer(
        run,
        tmp_path / "h",
        HybridSettings(backend="linear", segment_steps=2, total_steps=2, shots=0),
        progress=False,
        optimizer={"lr": 0.01, "momentum": 0.5, "weight_decay": 0.2},
    )
    g = h.trainer.optimizer.param_groups[0]
    assert (g["momentum"], g["weight_decay"], h.lr_at(h.step)) == (0.5, 0.2, 0.01)
    orig = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0}
    same = compare_settings(run, 0, orig, orig, K=2, total_steps=4, shots=0, out=tmp_path / "c")
    assert same["original"] == same["advised"]
    assert 0 < same["original"]["classical_test_acc"] <= 1
    assert (
        main(
            [
                "advise",
                str(run),
                "--step",
                "0",
                "--steps",
                "2",
                "--json",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
