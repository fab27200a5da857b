"""GDMap: the (S)GD update of a PyTorch model as a quadratic map (ALGORITHM.md §1), float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qcarleman.autodiff.gdmap import GDMap
from qcarleman.carleman import CarlemanSystem
from qcarleman.dynamics import QuadraticMap
from qcarleman.errors import UsageError
from qcarleman.training.pruning import apply_mask, mask_gradients

DEFAULT_DTYPE = torch.float64  # applied per test by conftest.py


class Cubic(nn.Module):
    """Outputs trilinear and linear in the parameters: with ``cubic_loss`` the loss is an exact
    cubic polynomial of (W, u, s), so its Taylor map at any θ̄ is exact."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(0.5 * torch.randn(3, 4, generator=g))
        self.u = nn.Parameter(0.5 * torch.randn(3, generator=g))
        self.s = nn.Parameter(torch.tensor([0.7]))

    def forward(self, x):
        h = x @ self.W.T
        return torch.stack([self.s * (h @ self.u), h.sum(1)], dim=1)


def cubic_loss(out, y):
    return (y * out[:, 0]).mean() + 0.25 * (out[:, 1] ** 2).mean()


def _batches(T: int, m: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(m, 4, generator=g), torch.randn(m, generator=g)) for _ in range(T)]


def _torch_sgd(model, batches, loss_fn, lr, momentum, wd, mask):
    """The trainer's masked SGD step, with torch.optim.SGD."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    states = []
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        mask_gradients(model, mask)
        opt.step()
        apply_mask(model, mask)
        states.append({k: p.detach().clone() for k, p in model.named_parameters()})
    return opt, states


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.0, 0.05), (0.9, 0.0), (0.9, 0.05)])
def test_cubic_loss_map_equals_torch_sgd(momentum, wd):
    """Exactly cubic loss: the map's trajectory is torch.optim.SGD's to 1e-10 (SGD batches, a
    mask, and with momentum an expansion point with a nonzero momentum buffer)."""
    model = Cubic()
    mask = {"W": torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.bool)}
    apply_mask(model, mask)
    lr, T, loss_fn = 0.1, 6, cubic_loss
    warm = _batches(2, seed=7)
    opt, _ = _torch_sgd(model, warm, loss_fn, lr, momentum, wd, mask)  # θ̄ mid-training
    batches = _batches(T)
    gd = GDMap(
        model, loss_fn, batches, lr, mask=mask, weight_decay=wd, momentum=momentum, per_step=True
    )
    velocity = None
    if momentum:
        buf = {k: opt.state[p]["momentum_buffer"] for k, p in model.named_parameters()}
        velocity = gd.active.flatten(buf)
        assert velocity.abs().max() > 0
    z0 = gd.initial_state(velocity)
    traj = gd.iterate(z0, T)
    true = gd.true_trajectory(T, z0)
    opt2 = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    opt2.load_state_dict(opt.state_dict())
    for t, (x, y) in enumerate(batches, start=1):
        opt2.zero_grad()
        loss_fn(model(x), y).backward()
        mask_gradients(model, mask)
        opt2.step()
        apply_mask(model, mask)
        theta = gd.active.flatten(model).numpy()
        ref = theta - gd.theta.numpy()
        assert np.abs(traj[t, : gd.n] - ref).max() < 1e-10
        assert np.abs(true[t, : gd.n] - ref).max() < 1e-10
        assert np.abs(gd.parameters_of(traj[t]).numpy() - theta).max() < 1e-10
    assert np.abs(traj[-1, : gd.n]).max() > 1e-3  # the parameters moved


def _bn_mlp():
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3)).double()


def test_true_trajectory_is_masked_torch_sgd_on_real_loss():
    """Non-polynomial loss with batch norm: true_trajectory = torch SGD (trainer convention)."""
    model = _bn_mlp()
    mask = {"0.weight": torch.rand(5, 4, generator=torch.Generator().manual_seed(0)) > 0.3}
    apply_mask(model, mask)
    g = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(4)
    ]
    loss_fn = nn.functional.cross_entropy
    gd = GDMap(
        model, loss_fn, batches, 0.3, mask=mask, weight_decay=0.01, momentum=0.5, per_step=True
    )
    true = gd.true_trajectory(4)
    _, states = _torch_sgd(model, batches, loss_fn, 0.3, 0.5, 0.01, mask)
    for t, st in enumerate(states, start=1):
        ref = gd.active.flatten(st) - gd.theta
        assert np.abs(true[t, : gd.n] - ref.numpy()).max() < 1e-12
    # The cubic Taylor map differs from true GD by O(‖x‖³) per step, so its relative error
    # shrinks like η² (ALGORITHM.md §1): nonzero, and ~100× smaller at a 10× smaller η.
    errs = []
    for lr in (0.3, 0.03):
        gd = GDMap(model, loss_fn, batches, lr, mask=mask, weight_decay=0.01, per_step=True)
        true, taylor = gd.true_trajectory(4)[-1], gd.iterate(gd.initial_state(), 4)[-1]
        errs.append(np.linalg.norm(taylor - true) / np.linalg.norm(true))
    assert 0 < errs[1] < errs[0] / 30, errs


def test_dense_coefficients_match_operator_form():
    model = _bn_mlp()
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g))]
    for mu in (0.0, 0.8):
        gd = GDMap(model, nn.functional.cross_entropy, batches, 0.2, momentum=mu, weight_decay=0.02)
        G0, G1, G2 = gd.dense()
        rng = np.random.default_rng(0)
        U, V = rng.standard_normal((gd.dim, 3)), rng.standard_normal((gd.dim, 3))
        assert np.allclose(G0, gd.g0(0), atol=1e-13)
        assert np.abs(G1 @ U - gd.g1(0, U)).max() < 1e-10
        assert np.abs(np.einsum("iab,am,bm->im", G2, U, V) - gd.g2(0, U, V)).max() < 1e-10
        z0 = 0.01 * rng.standard_normal(gd.dim)
        dm = gd.dense_map()
        assert isinstance(dm, QuadraticMap) and not dm.time_dependent
        assert np.abs(dm.iterate(z0, 3) - gd.iterate(z0, 3)).max() < 1e-12


def test_carleman_orders_on_pruned_digits_mlp(digits_setup):
    """Carleman N = 1, 2, 3 against the exact Taylor iteration: errors decrease with N at a small
    learning rate (ALGORITHM.md §2); the operator-form map lifts like its dense twin."""
    T = 4
    model, mask, batches = digits_setup(T)
    gd = GDMap(model, nn.functional.cross_entropy, batches, 0.05, mask=mask, per_step=True)
    assert gd.n < 60
    z0 = gd.initial_state()
    dense = gd.dense_map()
    taylor = dense.iterate(z0, T)
    assert np.abs(taylor - gd.iterate(z0, T)).max() < 1e-12
    errors = []
    for N in (1, 2, 3):
        emu = CarlemanSystem(dense, N).iterate(z0, T)
        errors.append(np.linalg.norm(emu[T] - taylor[T]) / np.linalg.norm(taylor[T]))
    assert errors[0] > errors[1] > errors[2] > 0, errors
    assert errors[2] < 1e-6
    # The operator-form GDMap lifts like the dense map (order 2, structural apply).
    op2 = CarlemanSystem(gd, 2).iterate(z0, 2)
    assert np.abs(op2 - CarlemanSystem(dense, 2).iterate(z0, 2)).max() < 1e-12


def test_bad_inputs_one_line_errors():
    model = _bn_mlp()
    b = _batches(1)[0]
    batch = (b[0], torch.zeros(5, dtype=torch.long))
    ce = nn.functional.cross_entropy
    for kwargs, match in [
        ({"lr": 0.0}, "learning rate"),
        ({"lr": -1.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum"),
        ({"lr": 0.1, "mask": {"0.weight": torch.ones(4, 5, dtype=torch.bool)}}, "shape"),
        ({"lr": 0.1, "theta": torch.full((10,), 1.0)}, "θ̄"),
    ]:
        with pytest.raises(UsageError, match=match) as e:
            GDMap(model, ce, [batch], **kwargs)
        assert "\n" not in str(e.value)
    bad = _bn_mlp()
    with torch.no_grad():
        bad[3].bias[0] = float("inf")
    with pytest.raises(UsageError, match="non-finite"):
        GDMap(bad, ce, [batch], 0.1)
    gd = GDMap(model, ce, [batch, batch], 0.1, per_step=True)
    with pytest.raises(UsageError, match="horizon"):
        gd.iterate(gd.initial_state(), 3)
    with pytest.raises(UsageError, match="momentum"):
        gd.initial_state(torch.zeros(gd.n))
