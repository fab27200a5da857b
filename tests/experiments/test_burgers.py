"""The PNAS 2021 Burgers reproduction: discretization, diagnostics, monotone convergence in N,
the CLI (JSON keys, plot, usage errors)."""

import json
import math

import numpy as np
import pytest

from qcarleman.cli.main import main
from qcarleman.errors import UsageError
from qcarleman.experiments.burgers import burgers_experiment, burgers_problem
from qcarleman.report.plots import plot_burgers

JSON_KEYS = {
    "R",
    "r_minus",
    "r_plus",
    "orders",
    "max_error_vs_reference",
    "max_error_vs_euler",
    "euler_vs_reference",
}


def test_discretization_matches_the_finite_difference_formulas():
    p = burgers_problem(nx=9, Re0=10.0)
    dx, nu, U0 = 1 / 8, (1 / math.sqrt(8)) / 10.0, 1 / math.sqrt(8)
    assert (p.dx, p.nu, p.U0) == pytest.approx((dx, nu, U0))
    u = np.random.default_rng(0).standard_normal(9)
    u[[0, -1]] = 0
    t = 0.37
    want = np.zeros(9)
    for i in range(1, 8):
        want[i] = (
            nu * (u[i + 1] - 2 * u[i] + u[i - 1]) / dx**2
            - (u[i + 1] ** 2 - u[i - 1] ** 2) / (4 * dx)
            + U0 * math.exp(-((p.x[i] - 0.25) ** 2) / (2 / 32**2)) * math.cos(2 * math.pi * t)
        )
    cc = p.carleman(1, 0.01)
    np.testing.assert_allclose(cc.vector_field(t, u), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.u0, -U0 * np.sin(2 * math.pi * p.x), atol=1e-16)
    assert p.u0[0] == p.u0[-1] == 0.0
    # Boundary rows of F1 give zero eigenvalues; λ1 is the Dirichlet Laplacian's top eigenvalue.
    lam1 = cc.norms()["lambda1"]
    assert lam1 == pytest.approx(-4 * nu / dx**2 * math.sin(math.pi / 16) ** 2, rel=1e-10)
    # N = 4 at nx = 16 has the 69,904 lifted dimensions quoted in the issue.
    assert burgers_problem().carleman(4, 1e-3).dim == 69_904


def test_max_error_decreases_monotonically_with_order():
    """PNAS setting (nx = 16, Re0 = 20, T = 3) on a coarser time grid, N = 1..3."""
    r = burgers_experiment(nx=16, nt=400, max_order=3)
    errs = r["max_error_vs_reference"]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert r["monotone"] and all(r["step_condition"])
    # direct Euler is much closer to the reference than any truncation
    assert r["euler_vs_reference"] < errs[-1] / 10
    # R is far above 1 here (convergence is observed, not guaranteed), r± undefined
    assert r["R"] > 1 and r["r_minus"] is None and r["discriminant"] < 0
    assert r["arrays"]["reference"].shape == (400, 16)


@pytest.mark.slow
def test_default_setting_n1_to_4_is_monotone():
    r = burgers_experiment()
    assert r["monotone"] and len(r["max_error_vs_reference"]) == 4
    assert r["lifted_dims"][-1] == 69_904


def test_cli_json_has_the_required_keys(capsys, tmp_path):
    png = tmp_path / "burgers.png"
    argv = ["burgers", "--json", "--nx", "8", "--nt", "200", "--max-order", "3"]
    assert main(argv + ["--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert JSON_KEYS <= set(out) and "arrays" not in out
    assert out["orders"] == [1, 2, 3]
    assert len(out["max_error_vs_reference"]) == len(out["max_error_vs_euler"]) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_text_output(capsys):
    assert main(["burgers", "--nx", "6", "--nt", "100", "--max-order", "2"]) == 0
    text = capsys.readouterr().out
    assert "R = " in text and "max err vs reference" in text


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--nx", "2"], "--nx"),
        (["--nt", "1"], "--nt"),
        (["--re0", "-1"], "--re0"),
        (["--T", "0"], "--T"),
        (["--max-order", "0"], "--max-order"),
        (["--plot", "out.pdf"], ".png"),
        (["--memory-limit", "1K"], "memory limit"),
    ],
)
def test_cli_usage_errors_exit_2(capsys, argv, msg):
    assert main(["burgers", "--nx", "6", "--nt", "50"] + argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.count("\n") == 1


def test_plot_rejects_non_png(tmp_path):
    r = burgers_experiment(nx=6, nt=50, max_order=2)
    with pytest.raises(UsageError, match="png"):
        plot_burgers(r, tmp_path / "x.jpg")
