"""The one solver interface (quantum/solve.py): every backend against numpy.linalg.solve."""

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.quantum.solve import exact_solution, reduce_copies, solve, solve_linear


def _history(d=2, N=1, T=3, p=0, seed=0, contraction=0.8):
    rng = np.random.default_rng(seed)
    G1 = contraction * np.eye(d) + 0.05 * rng.standard_normal((d, d))
    q = QuadraticMap(0.1 * rng.standard_normal(d), G1, 0.05 * rng.standard_normal((d, d, d)))
    return CarlemanSystem(q, N).history(0.3 * rng.standard_normal(d), T, idle=p)


def _numpy_output(h):
    Y = np.linalg.solve(h.matrix().toarray(), h.rhs())
    return Y, Y[h.output_indices()]


def test_exact_backend_matches_numpy_and_history():
    h = _history(d=2, N=2, T=2, p=1)
    Y, ys = _numpy_output(h)
    res = solve(h, "exact")
    assert np.allclose(res.state, ys / np.linalg.norm(ys), atol=1e-12)
    assert res.fidelity == 1.0
    assert res.success_probability == pytest.approx(float(ys @ ys / (Y @ Y)), rel=1e-12)
    assert res.success_probability == pytest.approx(h.success_probability, rel=1e-12)
    assert res.solution_norm == pytest.approx(np.linalg.norm(ys), rel=1e-12)
    assert np.allclose(res.output_state, h.output_state(), atol=1e-12)
    assert np.allclose(res.output_vector(), h.output_vector(), atol=1e-12)
    assert res.kappa == pytest.approx(np.linalg.cond(h.matrix().toarray()), rel=1e-9)


def test_exact_solution_general_matrix():
    rng = np.random.default_rng(3)
    L = rng.standard_normal((7, 7)) + 4 * np.eye(7)
    c = rng.standard_normal(7)
    assert np.allclose(exact_solution(L, c), np.linalg.solve(L, c), atol=1e-12)


@pytest.mark.parametrize(
    "backend,opts,tol",
    [("hhl", {"clock": 6}, 0.99), ("qsvt", {"epsilon": 1e-2}, 0.999)],
)
def test_quantum_backends_match_numpy(backend, opts, tol):
    h = _history(d=2, N=1, T=2, p=1, seed=1)
    _, ys = _numpy_output(h)
    res = solve(h, backend, **opts)
    assert res.fidelity >= tol
    assert abs(np.dot(res.state, ys / np.linalg.norm(ys))) ** 2 == pytest.approx(res.fidelity)
    # the solver's normalization recovers the norm of the solution (within the polynomial /
    # clock error)
    assert res.solution_norm == pytest.approx(np.linalg.norm(ys), rel=0.05)
    z = h.output_vector()
    assert np.linalg.norm(res.output_vector() - z) <= 0.05 * np.linalg.norm(z)


def test_reduce_copies_traces_time_register():
    v = np.array([0.6, -0.8])
    B = np.concatenate([v, v]) / np.sqrt(2)
    assert np.allclose(reduce_copies(B, 2), v)
    assert np.allclose(reduce_copies(-B, 2), -v)  # sign follows the copies' sum


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((np.eye(3), np.ones(2)), {}, "square and match"),
        ((np.eye(3), np.zeros(3)), {}, "zero"),
        ((np.eye(3), np.ones(3), [5]), {}, "post_select"),
        ((np.eye(3), np.ones(3), [1, 1]), {}, "repeated"),
        ((np.eye(3), np.ones(3)), {"backend": "magic"}, "unknown backend"),
        ((np.eye(3), np.ones(3)), {"clock": 4}, "takes no options"),
    ],
)
def test_usage_errors(args, kwargs, match):
    with pytest.raises(UsageError, match=match):
        solve_linear(*args, **kwargs)


def test_solve_rejects_non_history():
    with pytest.raises(UsageError, match="HistorySystem"):
        solve(np.eye(2))
