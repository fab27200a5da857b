"""QuadraticMap: coefficient forms agree, time dependence, scaling, bad inputs."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from qcarleman import QuadraticMap, UsageError


def random_map(d=5, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(d) * 0.1,
        rng.standard_normal((d, d)) * 0.3,
        rng.standard_normal((d, d, d)) * 0.05,
    )


def reference(G0, G1, G2, z0, T):
    out = [z0]
    for _ in range(T):
        z = out[-1]
        out.append(G0 + G1 @ z + np.einsum("iab,a,b->i", G2, z, z))
    return np.array(out)


def test_iterate_matches_reference_for_every_form():
    G0, G1, G2 = random_map()
    d = G0.size
    z0 = np.linspace(-0.2, 0.3, d)
    ref = reference(G0, G1, G2, z0, 6)
    forms = [
        QuadraticMap(G0, G1, G2),
        QuadraticMap(G0, G1, G2.reshape(d, d * d)),
        QuadraticMap(G0, sp.csr_matrix(G1), sp.csr_matrix(G2.reshape(d, d * d))),
        QuadraticMap(G0, aslinearoperator(G1), G2),
        QuadraticMap(G0, lambda u: G1 @ u, lambda u, v: np.einsum("iab,a,b->i", G2, u, v), dim=d),
    ]
    for q in forms:
        np.testing.assert_allclose(q.iterate(z0, 6), ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(q.dense()[2], G2, atol=1e-15)
        W = np.random.default_rng(1).standard_normal((d, d, 3))
        np.testing.assert_allclose(q.g2_contract(0, W), np.einsum("iab,abm->im", G2, W), atol=1e-13)


def test_time_dependent_and_scaling():
    maps = [random_map(seed=s) for s in range(4)]
    q = QuadraticMap(*[list(c) for c in zip(*maps)])
    assert q.horizon == 4
    z = np.full(5, 0.1)
    traj = q.iterate(z, 4)
    for t, (G0, G1, G2) in enumerate(maps):
        np.testing.assert_allclose(traj[t + 1], reference(G0, G1, G2, traj[t], 1)[1])
    gamma = 0.25
    np.testing.assert_allclose(q.scaled(gamma).iterate(z / gamma, 4) * gamma, traj, rtol=1e-12)
    with pytest.raises(UsageError, match="horizon"):
        q.iterate(z, 5)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros(3), np.eye(4), np.zeros((3, 9))), "shape"),
        ((np.zeros(3), np.eye(3), np.zeros((3, 3, 2))), "shape"),
        ((np.array([0.0, np.nan, 0.0]), np.eye(3), np.zeros((3, 9))), "non-finite"),
        ((np.zeros(3), np.full((3, 3), np.inf), np.zeros((3, 9))), "non-finite"),
        ((np.zeros(3), "eye", np.zeros((3, 9))), "G1 must be"),
    ],
)
def test_bad_inputs(args, match):
    with pytest.raises(UsageError, match=match):
        QuadraticMap(*args)


def test_bad_horizon_and_scale():
    q = QuadraticMap(*random_map())
    for T in (0, -1, 2.5):
        with pytest.raises(UsageError, match="T ≥ 1"):
            q.iterate(np.zeros(5), T)
    with pytest.raises(UsageError, match="γ"):
        q.scaled(0.0)
