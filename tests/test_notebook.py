"""Notebook objects: short repr, an HTML table, dict round trips, optional pandas, plots that
take the object, and the bridge from a measured spectrum to the resource estimate."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import qcarleman as qc
from qcarleman.analysis.spectrum import SpectrumReport, analyze_operator
from qcarleman.autodiff.lowrank import LowRankResult, emulate_order2
from qcarleman.display import REPR_MAX
from qcarleman.errors import UsageError
from qcarleman.quantum.exact import SolveResult
from qcarleman.report import plots


@pytest.fixture(scope="module")
def objects():
    rng = np.random.default_rng(0)
    n = 600  # the old repr printed every array: ~10⁴ characters at this size
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    H = (Q * rng.uniform(-0.2, 4.0, n)) @ Q.T
    spec = analyze_operator(H, lr=0.1, method="exact")
    spec.extra.update(f0_norm=0.02, f2_norm=0.03)
    small = qc.QuadraticMap(0.1 * np.ones(3), 0.5 * np.eye(3), 0.05 * np.ones((3, 3, 3)))
    emu = emulate_order2(small, np.zeros(3), 6)
    history = qc.CarlemanSystem(small, order=2).history(np.zeros(3), T=3, idle=1)
    sol = qc.solve(history, backend="exact")
    bill = qc.estimate(
        problem=qc.Problem(n=820, T=5, N=2, epsilon=1e-2, batch_size=32),
        conditioning=qc.Conditioning.from_spectrum(spec),
        model=qc.CostModel(shots=10**6),
    )
    return {"spectrum": spec, "emulation": emu, "solve": sol, "estimate": bill, "map": small}


@pytest.mark.parametrize("name", ["spectrum", "emulation", "solve", "estimate"])
def test_short_repr_and_html(objects, name):
    obj = objects[name]
    text = repr(obj)
    assert len(text) < REPR_MAX and text.startswith(type(obj).__name__ + "(")
    assert "[" not in text.split("(", 1)[1] or "more" in text or "shape=" in text
    page = obj._repr_html_()
    assert page.startswith("<table") and "</table>" in page and len(page) < 6000
    json.dumps(obj.to_dict())  # JSON-able


def test_round_trips(objects):
    spec = objects["spectrum"]
    back = SpectrumReport.from_dict(spec.to_dict())
    assert back.to_dict() == spec.to_dict()
    assert np.array_equal(back.E, spec.E) and back.window == spec.window
    emu = objects["emulation"]
    back = LowRankResult.from_dict(json.loads(json.dumps(emu.to_dict())))
    assert np.array_equal(back.numpy(), emu.numpy()) and back.ranks == emu.ranks
    assert back.to_dict() == emu.to_dict()
    sol = objects["solve"]
    back = SolveResult.from_dict(json.loads(json.dumps(sol.to_dict())))
    assert np.array_equal(back.state, sol.state)
    assert np.array_equal(back.output_vector(), sol.output_vector())
    assert back.summary() == sol.summary()
    cplx = SolveResult("x", np.array([0.6, 0.8j]), 0.5, 1.0, 1.0)
    assert np.array_equal(SolveResult.from_dict(cplx.to_dict()).state, cplx.state)


def test_numpy_accessor_matches_the_exact_iteration(objects):
    """LowRankResult.trajectory is torch; .numpy() is the same numbers as NumPy, and it agrees
    with the exact order-2 Carleman iteration of the same small map."""
    emu, small = objects["emulation"], objects["map"]
    traj = emu.numpy()
    assert isinstance(traj, np.ndarray) and traj.dtype == np.float64
    assert np.array_equal(traj, emu.trajectory.numpy())
    exact = qc.CarlemanSystem(small, order=2).iterate(np.zeros(3), 6)
    assert np.allclose(traj, np.asarray(exact)[:, :3], rtol=1e-10, atol=1e-12)


def test_to_pandas_optional(objects, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas → ImportError
    for name in ("spectrum", "emulation", "estimate"):
        with pytest.raises(UsageError, match="pip install pandas"):
            objects[name].to_pandas()


def test_to_pandas_tables(objects):
    pytest.importorskip("pandas")
    spec = objects["spectrum"]
    df = spec.to_pandas()
    assert list(df.columns) == ["t", "E", "D", "G", "r"] and len(df) == spec.E.size
    assert len(objects["emulation"].to_pandas()) == 7
    bill = objects["estimate"]
    assert list(bill.to_pandas()["figure"]) == list(bill.figures)


def test_plots_take_the_object(objects):
    figs = [
        plots.plot_spectrum(objects["spectrum"]),
        plots.plot_trajectory(objects["emulation"], reference=objects["emulation"].numpy()),
        plots.plot_solve(objects["solve"]),
        plots.plot_estimate(objects["estimate"]),
    ]
    for fig in figs:
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_conditioning_from_spectrum(objects):
    spec = objects["spectrum"]
    c = qc.Conditioning.from_spectrum(spec, p_succ=0.5)
    assert c.rho.value == spec.rho and c.rho.kind == "measured"
    assert c.f0_norm.value == 0.02 and c.F2_norm.value == 0.03 and c.p_succ.value == 0.5
    assert qc.Conditioning.from_spectrum(spec.to_dict()) == qc.Conditioning.from_spectrum(spec)
    bill = objects["estimate"]
    assert bill.conditioning.f0_norm.value == 0.02
    assert "not given" not in bill.figures["kappa"].approx  # ‖f0‖, ‖F2‖ reached the κ bound
