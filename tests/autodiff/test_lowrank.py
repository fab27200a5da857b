"""Low-rank order-2 and order-1 Carleman emulation against the dense CarlemanSystem (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.autodiff.gdmap import GDMap
from qcarleman.autodiff.lowrank import emulate_order1, emulate_order2
from qcarleman.carleman import CarlemanSystem
from qcarleman.dynamics import QuadraticMap
from qcarleman.errors import UsageError

DEFAULT_DTYPE = torch.float64  # applied per test by conftest.py


def _random_map(d: int = 5, steps: int = 6, seed: int = 0) -> QuadraticMap:
    rng = np.random.default_rng(seed)
    G0 = [0.1 * rng.standard_normal(d) for _ in range(steps)]
    G1 = [0.9 * np.eye(d) + 0.1 * rng.standard_normal((d, d)) for _ in range(steps)]
    G2 = [0.2 * rng.standard_normal((d, d, d)) for _ in range(steps)]
    return QuadraticMap(G0, G1, G2)


@pytest.mark.parametrize("nonzero_start", [False, True])
def test_random_map_equals_dense_carleman(nonzero_start):
    qmap = _random_map()
    z0 = 0.3 * np.random.default_rng(1).standard_normal(5) if nonzero_start else np.zeros(5)
    T = 6
    lr2 = emulate_order2(qmap, z0, T)
    for gamma in (None, "auto", 0.37):  # the truncated dynamics do not depend on γ
        ref = CarlemanSystem(qmap, 2, scale=gamma).iterate(z0, T)
        assert np.abs(lr2.trajectory.numpy() - ref).max() < 1e-12
    ref1 = CarlemanSystem(qmap, 1).iterate(z0, T)
    assert np.abs(emulate_order1(qmap, z0, T).trajectory.numpy() - ref1).max() < 1e-13
    r0 = int(nonzero_start)
    assert lr2.ranks == [r0 + 2 * t for t in range(T + 1)]
    assert lr2.discarded == [0.0] * (T + 1)
    assert lr2.g1_products == sum(r0 + 2 * t + 1 for t in range(T))
    assert lr2.g2_products == sum(r0 + 2 * t for t in range(T))
    # Not just the exact map: order 2 differs from the exact quadratic iteration.
    assert np.abs(lr2.trajectory.numpy() - qmap.iterate(z0, T)).max() > 1e-6


def test_truncation_reports_discarded_weight():
    qmap = _random_map(d=6, steps=8, seed=2)
    z0 = np.zeros(6)
    exact = emulate_order2(qmap, z0, 8)
    # Rank ≤ d always holds, so truncating at d loses nothing (up to rounding).
    same = emulate_order2(qmap, z0, 8, max_rank=6)
    assert max(same.ranks) <= 6 and max(same.discarded) < 1e-12
    assert np.abs(same.trajectory.numpy() - exact.trajectory.numpy()).max() < 1e-12
    cut = emulate_order2(qmap, z0, 8, max_rank=1)
    assert max(cut.ranks) == 1 and max(cut.discarded) > 1e-6
    err = np.abs(cut.trajectory.numpy() - exact.trajectory.numpy()).max()
    assert 0 < err < 0.5 * np.abs(exact.trajectory.numpy()).max()


def test_lowrank_gdmap_equals_dense_order2_on_pruned_digits_mlp(digits_setup):
    """The spec test: low-rank N = 2 (torch-native HVP / third-order products) equals the dense
    CarlemanSystem at N = 2 to 1e-9, with and without momentum."""
    T = 4
    model, mask, batches = digits_setup(T)
    for mu in (0.0, 0.9):
        gd = GDMap(
            model,
            nn.functional.cross_entropy,
            batches,
            0.05,
            mask=mask,
            momentum=mu,
            weight_decay=1e-3,
            per_step=True,
        )
        z0 = gd.initial_state(None if not mu else 0.01 * torch.ones(gd.n))
        dense = gd.dense_map()
        ref2 = CarlemanSystem(dense, 2).iterate(z0, T)
        lr2 = emulate_order2(gd, z0, T)
        assert np.abs(lr2.trajectory.numpy() - ref2).max() < 1e-9
        ref1 = CarlemanSystem(dense, 1).iterate(z0, T)
        assert np.abs(emulate_order1(gd, z0, T).trajectory.numpy() - ref1).max() < 1e-9


def test_float32_gdmap_runs_natively(digits_setup):
    T = 3
    model, mask, batches = digits_setup(T)
    gd32 = GDMap(
        model.float(),
        nn.functional.cross_entropy,
        batches,
        0.05,
        mask=mask,
        per_step=True,
        dtype=torch.float32,
    )
    gd64 = GDMap(
        model.double(), nn.functional.cross_entropy, batches, 0.05, mask=mask, per_step=True
    )
    r32 = emulate_order2(gd32, gd32.initial_state(), T)
    r64 = emulate_order2(gd64, gd64.initial_state(), T)
    assert r32.trajectory.dtype == torch.float32
    scale = r64.trajectory.abs().max()
    assert (r32.trajectory.double() - r64.trajectory).abs().max() < 1e-4 * scale


def test_bad_inputs():
    qmap = _random_map()
    with pytest.raises(UsageError, match="max_rank"):
        emulate_order2(qmap, np.zeros(5), 3, max_rank=0)
    with pytest.raises(UsageError, match="horizon"):
        emulate_order2(qmap, np.zeros(5), 7)
    with pytest.raises(UsageError, match="z0"):
        emulate_order1(qmap, np.zeros(4), 3)
    with pytest.raises(UsageError, match="QuadraticMap"):
        emulate_order2("not a map", np.zeros(5), 3)


def _bn_digits_map(T: int, hvp_mode: str, momentum: float = 0.0, chunk_size=None) -> GDMap:
    """A pruned digits MLP with batch norm (64 → 4 → BN → tanh → 10), SGD batches of 16."""
    from sklearn.datasets import load_digits

    from qcarleman.training.pruning import prune_global

    d = load_digits()
    x, y = torch.tensor(d.data[: 16 * T] / 16.0), torch.tensor(d.target[: 16 * T])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 10))
    mask = prune_global(model.double(), 0.9, include_classifier=True)
    batches = [(x[16 * i : 16 * (i + 1)], y[16 * i : 16 * (i + 1)]) for i in range(T)]
    return GDMap(
        model,
        nn.functional.cross_entropy,
        batches,
        0.1,
        mask=mask,
        momentum=momentum,
        weight_decay=1e-3,
        per_step=True,
        hvp_mode=hvp_mode,
        chunk_size=chunk_size,
    )


@pytest.mark.parametrize(
    ("hvp_mode", "momentum", "chunk_size"),
    [("cached", 0.0, None), ("cached", 0.9, None), ("functional", 0.9, 3)],
)
def test_one_sweep_products_equal_dense_order2_with_batchnorm(hvp_mode, momentum, chunk_size):
    """The memory-saving step (G1 U and Σ s_k G2(u_k, u_k) in one sweep, written into the next
    factor block; graphs released after each step) equals the dense order-2 CarlemanSystem on a
    batch-norm model, in both HVP modes, with momentum and functional chunks."""
    T = 4
    gd = _bn_digits_map(T, hvp_mode, momentum, chunk_size)
    z0 = gd.initial_state(None if not momentum else 0.01 * torch.ones(gd.n))
    dense = _bn_digits_map(T, "functional", momentum).dense_map()  # n² products, vmapped
    ref = CarlemanSystem(dense, 2).iterate(z0, T)
    res = emulate_order2(gd, z0, T)
    assert np.abs(res.trajectory.numpy() - ref).max() < 1e-9 * np.abs(ref).max()
    assert res.ranks == [int(momentum > 0) + 2 * t for t in range(T + 1)]
    # Each step's cached graphs were released once the emulation had passed it …
    assert not any(gd.operators(t).holds_graphs for t in range(T))
    # … and are rebuilt lazily when the map is used again: the same trajectory.
    again = emulate_order2(gd, z0, T)
    assert torch.equal(again.trajectory, res.trajectory)
    assert gd.operators(0).hvp_path == hvp_mode


@pytest.mark.parametrize("hvp_mode", ["functional", "cached"])
def test_hvp_third_sum_equals_blocks(hvp_mode):
    """(H U, Σ_k s_k K[·, u_k, u_k]) in one sweep = hvp_batch and third_batch @ s (s_k = 0
    columns: HVP only), written into a given column-major block."""
    gd = _bn_digits_map(1, hvp_mode)
    ops = gd.operators(0)
    g = torch.Generator().manual_seed(4)
    U = torch.randn(ops.n, 5, generator=g)
    s = torch.tensor([1.0, -1.0, 0.0, 0.5, 2.0])
    out = torch.empty(5, ops.n).T
    HU, w = ops.hvp_third_sum(U, s, out=out, chunk_size=2)
    assert HU.data_ptr() == out.data_ptr()
    ref_H, ref_w = ops.hvp_batch(U), ops.third_batch(U, U) @ s
    assert torch.allclose(HU, ref_H, rtol=0, atol=1e-10 * ref_H.abs().max())
    assert torch.allclose(w, ref_w, rtol=0, atol=1e-10 * ref_w.abs().max())
    with pytest.raises(UsageError, match="weights"):
        ops.hvp_third_sum(U, s[:4])
