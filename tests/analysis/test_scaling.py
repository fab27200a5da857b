"""Measured scaling (issue 17, part 1): matrix-free κ, QSVT output and order-2 P_succ of the
history system of a real model's map against dense/exact algebra."""

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.analysis.scaling import (
    QSVT_MAX_DEGREE,
    fit_exponent,
    qsvt_history,
    scaling_checkpoint,
    scaling_study,
)
from qcarleman.autodiff.gdmap import GDMap
from qcarleman.autodiff.history_operator import HistoryOperator
from qcarleman.carleman import CarlemanSystem
from qcarleman.quantum.qsvt import inverse_polynomial, qsvt_apply_operator, qsvt_apply_svd
from qcarleman.training.models import MLP
from qcarleman.training.pruning import prune_global

DEFAULT_DTYPE = torch.float64


def digits_map(momentum=0.9, lr=0.05, per_step=False, steps=1, hvp_mode="functional"):
    """A 90%-pruned tanh MLP on sklearn digits (n ≈ 40; d = 2n with momentum)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0), torch.tensor(d.target)
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(4,), activation="tanh").double()
    mask = prune_global(model, 0.9, include_classifier=True)
    batches = [(x[32 * i : 32 * (i + 1)], y[32 * i : 32 * (i + 1)]) for i in range(steps)]
    return GDMap(
        model,
        nn.functional.cross_entropy,
        batches,
        lr,
        mask=mask,
        weight_decay=5e-4,
        momentum=momentum,
        per_step=per_step,
        hvp_mode=hvp_mode,
    )


def dense_history(gm: GDMap, T: int, idle: int) -> np.ndarray:
    """L of §3 from the dense G1(t) (independent of HistoryOperator)."""
    d = gm.dim
    L = np.eye((T + idle + 1) * d)
    for t in range(T + idle):
        G = gm.g1(t if gm.per_step else 0, np.eye(d)) if t < T else np.eye(d)
        L[(t + 1) * d : (t + 2) * d, t * d : (t + 1) * d] = -G
    return L


@pytest.fixture(scope="module")
def sgd_map():
    return digits_map(momentum=0.9, lr=0.3, per_step=True, steps=4)


@pytest.mark.parametrize("T,idle", [(2, 0), (4, 1)])
def test_matrix_free_kappa_within_5_percent_of_dense(sgd_map, T, idle):
    study = scaling_study(sgd_map, [T], idle=idle, qsvt_max_degree=0, order2=False)
    exact = np.linalg.cond(dense_history(sgd_map, T, idle))
    k = study.kappa[0]
    assert k.kind == "measured"
    assert k.value == pytest.approx(exact, rel=0.05)
    assert study.kappa_bound[0].value >= exact * (1 - 1e-12)
    assert study.qsvt == [None] and "QSVT skipped" in study.notes[0]


@pytest.mark.parametrize("hvp_mode", ["functional", "cached"])
def test_matrix_free_qsvt_equals_dense_emulation(sgd_map, hvp_mode):
    """Both HVP paths (cached gradient graphs: what `qcarleman scaling` uses) give the dense
    QSVT emulation to 1e-8."""
    T, idle = 3, 1
    gm = sgd_map if hvp_mode == "functional" else digits_map(0.9, 0.3, True, 4, hvp_mode)
    assert gm.operators(0).hvp_path == hvp_mode
    op = HistoryOperator(gm, T, idle)
    L = dense_history(gm, T, idle)
    s = np.linalg.svd(L, compute_uv=False)
    alpha = s[0] * 1.001
    poly = inverse_polynomial(alpha / s[-1], 0.05)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(op.dim)
    v /= np.linalg.norm(v)
    free = qsvt_apply_operator(op.matvec, op.rmatvec, v, poly, alpha)
    dense = qsvt_apply_svd(L, v, poly, alpha)
    np.testing.assert_allclose(free, dense, atol=1e-8, rtol=0)
    # and the polynomial output is the history state up to ε (fidelity near 1)
    c = op.rhs()
    out = qsvt_history(op, c, epsilon=0.01, sigma_max=s[0], sigma_min=s[-1])
    assert out.fidelity_history > 0.99 and out.fidelity > 0.98
    assert 0 < out.p_succ <= 1


def test_scaling_checkpoint_applies_qsvt_at_every_horizon(tmp_path, sparse_run):
    """On a run, the study's map takes HVPs through cached graphs, and with the default degree
    limit every T gets the QSVT output, its fidelity against forward substitution near 1."""
    torch.set_default_dtype(torch.float32)  # the trainer's dtype (restored by conftest)
    run = sparse_run(tmp_path, [4], 0.9)
    r = scaling_checkpoint(run, 0, 3, order2=False)
    assert r["settings"]["hvp_path"] == "cached"
    assert r["settings"]["qsvt_max_degree"] == QSVT_MAX_DEGREE
    assert r["T"] == [1, 2, 3] and None not in r["qsvt_fidelity"], r["notes"]
    assert min(r["qsvt_fidelity"]) > 0.99
    assert all(0 < d <= QSVT_MAX_DEGREE for d in r["qsvt_degree"])


def test_order2_p_succ_from_low_rank_levels_matches_dense_carleman():
    gm = digits_map(momentum=0.9, lr=0.05, per_step=False)
    T, idle = 3, 1
    study = scaling_study(gm, [1, T], idle=idle, qsvt_max_degree=0, order2=True)
    gamma = study.settings["order2_gamma"]
    z0 = gm.initial_state()
    hist = CarlemanSystem(gm.dense_map(), 2, scale=gamma).history(z0, T, idle=idle)
    assert study.order2_p_succ[1].value == pytest.approx(hist.success_probability, rel=1e-8)
    assert study.order2_kappa[1].kind == "estimated"
    # order-1 P_succ is the forward-solve value of the dense order-1 system
    ref1 = CarlemanSystem(gm.dense_map(), 1).history(z0, T, idle=idle).success_probability
    assert study.p_succ[1].value == pytest.approx(ref1, rel=1e-10)


def test_fit_exponent_recovers_power_laws():
    T = np.arange(1, 9)
    assert fit_exponent(T, 3.0 * T**2) == pytest.approx(2.0)
    assert fit_exponent(T, 5.0 * T**0.5) == pytest.approx(0.5)
    assert fit_exponent([1], [2.0]) is None
    assert fit_exponent([1, 2, 3], [None, 4.0, 9.0]) == pytest.approx(2.0)
