"""Hessian spectra of real models: Lanczos/SLQ vs exact eigh, E(t), degenerate cases, runs, CLI."""

import json

import numpy as np
import pytest
import torch

from qcarleman import UsageError
from qcarleman.analysis.spectrum import (
    analyze_operator,
    model_spectrum,
    parse_checkpoints,
    run_spectra,
)
from qcarleman.autodiff.operators import LossOperators
from qcarleman.cli.main import main
from qcarleman.dissipation import error_curve, window
from qcarleman.report.plots import plot_spectra
from qcarleman.spectral import lanczos, slq
from qcarleman.training.config import TrainSettings, lr_at_step
from qcarleman.training.data import load_dataset
from qcarleman.training.models import build_model
from qcarleman.training.pruning import prune_global
from qcarleman.training.trainer import Trainer

torch.set_num_threads(1)
SPEC = {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [26], "activation": "tanh"}
CE = torch.nn.functional.cross_entropy


def trained_pruned_mlp(data, steps=300):
    """A digits MLP trained by full-batch heavy-ball GD, then 50% globally pruned (n = 998)."""
    torch.manual_seed(0)
    model = build_model(SPEC)
    x, y = data.train
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        CE(model(x), y).backward()
        opt.step()
    mask = prune_global(model, 0.5, include_classifier=True)
    return model, mask


@pytest.fixture(scope="module")
def data():
    return load_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def setting(data):
    model, mask = trained_pruned_mlp(data)
    x, y = data.train
    ops = LossOperators(model, CE, [(x[:256], y[:256])], mask=mask, weight_decay=1e-4)
    H = ops.dense_hessian().numpy()
    lam = np.linalg.eigvalsh(H)
    A = ops.linear_operator()
    ext = lanczos(A, k=10, tol=1e-10, return_vectors=True)
    return ops, A, lam, ext


def test_mlp_size_and_lanczos_extremes_match_eigh(setting):
    ops, A, lam, ext = setting
    assert 900 <= ops.n <= 2000
    assert ext.converged
    np.testing.assert_allclose(ext.largest, lam[::-1][:10], rtol=1e-6)
    np.testing.assert_allclose(ext.smallest, lam[:10], rtol=1e-6)
    assert lam[0] < 0 < lam[-1]  # indefinite: a real test of both ends


def _deflation(ext):
    return (
        np.r_[ext.largest, ext.smallest],
        np.hstack([ext.vectors_largest, ext.vectors_smallest]),
    )


def test_slq_density_and_moments_with_16_probes(setting):
    ops, A, lam, ext = setting
    res = slq(A, probes=16, iters=80, seed=1, deflate=_deflation(ext))
    grid, dens = res.density()
    assert abs(np.trapezoid(dens, grid) - 1.0) < 1e-6
    assert res.moment(1) == pytest.approx(lam.mean(), rel=0.05)
    assert res.moment(2) == pytest.approx(np.mean(lam**2), rel=0.05)
    assert res.trace() == pytest.approx(lam.sum(), rel=0.05)


@pytest.mark.parametrize("lr_factor", [0.5, 1.0, 1.5])  # η in units of 1/λ_max
def test_error_curve_slq_matches_exact_up_to_50_steps(setting, lr_factor):
    ops, A, lam, ext = setting
    lr = lr_factor / lam[-1]
    res = slq(A, probes=16, iters=80, seed=1, deflate=_deflation(ext))
    E_ex = error_curve(lam, lr, 50)
    E_slq = error_curve(res.nodes, lr, 50, weights=res.weights)
    assert np.max(np.abs(E_slq / E_ex - 1)) < 0.01
    # E crosses 1 with a small slope, so a <1% error may move the crossing by one step
    assert abs(window(E_slq) - window(E_ex)) <= 1


def test_analyze_operator_exact_vs_slq(setting):
    ops, A, lam, ext = setting
    lr = 1.0 / lam[-1]
    ex = analyze_operator(A, lr=lr, method="exact")
    st = analyze_operator(A, lr=lr, method="slq", seed=2)
    assert ex.method == "exact" and st.method == "slq"
    np.testing.assert_allclose(ex.nodes, lam, atol=1e-12)
    assert ex.trace == pytest.approx(lam.sum())
    assert ex.negative_mass == pytest.approx(np.mean(lam < 0))
    for key in ("lambda_min", "lambda_max", "rho"):
        assert getattr(st, key) == pytest.approx(getattr(ex, key), rel=1e-6)
    assert st.regime == ex.regime and abs(st.window - ex.window) <= 1
    assert np.max(np.abs(st.E[:51] / ex.E[:51] - 1)) < 0.01
    np.testing.assert_allclose(ex.D + ex.G, ex.E, rtol=1e-12)
    assert any("stochastic" in n for n in st.notes) and not ex.notes
    rec = st.to_json()
    assert json.dumps(rec)  # plain JSON (inf/NaN → null)
    assert len(rec["E"]) == 101


RECORD_KEYS = (
    "lr",
    "momentum",
    "weight_decay",
    "lambda_min",
    "lambda_max",
    "rho",
    "window",
    "rho_paper",
    "window_paper",
    "spectrum_method",
)


def test_momentum_map_beside_the_paper_map(setting, tmp_path):
    """§6.1: the trained map (μ = 0.9; H already holds λ_wd) against the paper's plain GD; the
    SLQ estimate carries a band over probes that contains the exact curve."""
    from qcarleman.dissipation import TrainedMap, error_curve, rho, window

    ops, A, lam, ext = setting
    lr, mu = 0.5 / lam[-1], 0.9
    kw = dict(lr=lr, momentum=mu, weight_decay=1e-4, horizon=20, curve_steps=60)
    ex = analyze_operator(A, method="exact", **kw)
    st = analyze_operator(A, method="slq", probes=8, iters=60, seed=3, **kw)
    plain = analyze_operator(A, lr=lr, method="exact", horizon=20, curve_steps=60)
    tm = TrainedMap(lr, mu, 1e-4)
    np.testing.assert_allclose(ex.E, error_curve(lam, tm, 60, includes_weight_decay=True))
    assert ex.rho == pytest.approx(rho(lam, tm, includes_weight_decay=True), rel=1e-12)
    assert ex.window == window(ex.E) and ex.band is None
    # the paper's numbers are the plain-GD analysis of the same H
    np.testing.assert_allclose(ex.paper.E, plain.E, rtol=1e-14)
    assert (ex.paper.rho, ex.paper.window) == (plain.rho, plain.window)
    assert plain.rho == plain.paper.rho and plain.window == plain.paper.window
    assert ex.rho != ex.paper.rho
    for rep in (ex, st):
        rec = rep.to_json()
        assert json.dumps(rec)
        for key in RECORD_KEYS:
            assert key in rec, key
        assert rec["momentum"] == mu and rec["spectrum_method"] == rep.method
    assert st.rho == pytest.approx(ex.rho, rel=1e-6)
    lo, hi = st.to_json()["window_band"]
    assert lo <= ex.window <= hi
    assert np.all(st.band.low[:51] <= ex.E[:51] * (1 + 1e-9))
    assert np.all(ex.E[:51] <= st.band.high[:51] * (1 + 1e-9))
    paths = plot_spectra([ex, st], tmp_path)
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_zero_hessian_single_parameter_and_all_pruned(data):
    x, y = data.train
    model = build_model(SPEC)
    # a loss linear in the outputs of a linear layer has H = 0 in the classifier weights
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    rep = model_spectrum(lin, lambda out, t: out.sum(), [(x[:8], y[:8])], lr=0.1, method="slq")
    assert rep.lambda_min == rep.lambda_max == 0.0
    assert rep.rho == 1.0 and rep.regime == "almost dissipative"
    assert np.all(rep.E == 1.0) and rep.window == 100 and not rep.window_closed
    assert rep.negative_mass == 0.0
    # a single active parameter: H is 1×1, exact
    mask = {k: torch.zeros_like(p, dtype=torch.bool) for k, p in model.named_parameters()}
    mask["classifier.bias"][3] = True
    ops = LossOperators(model, CE, [(x[:64], y[:64])], mask=mask)
    h = float(ops.dense_hessian()[0, 0])
    rep = model_spectrum(model, CE, [(x[:64], y[:64])], mask=mask, lr=0.5)
    assert rep.n == 1 and rep.method == "exact"
    assert rep.lambda_min == rep.lambda_max == pytest.approx(h, rel=1e-12)
    assert rep.E[5] == pytest.approx(abs(1 - 0.5 * h) ** 5)
    # everything pruned: a clear error
    for m in mask.values():
        m.zero_()
    with pytest.raises(UsageError, match="no active parameters"):
        model_spectrum(model, CE, [(x[:64], y[:64])], mask=mask, lr=0.5)


def test_dtype_and_hvp_path(data):
    x, y = data.train
    torch.manual_seed(2)
    model = build_model({**SPEC, "hidden": [8]})
    batch = [(x[:128], y[:128])]
    kw = dict(lr=0.3, method="slq", k=2, probes=4, iters=20, lanczos_tol=1e-9)
    ref = model_spectrum(model, CE, batch, hvp_mode="functional", **kw)
    fast = model_spectrum(model, CE, batch, **kw)  # cached graphs, float64
    f32 = model_spectrum(model, CE, batch, dtype="float32", **kw)
    assert ref.extra["hvp_path"] == "functional" and fast.extra["hvp_path"] == "cached"
    assert fast.extra["dtype"] == "float64" and f32.extra["dtype"] == "float32"
    assert fast.lambda_max == pytest.approx(ref.lambda_max, rel=1e-10)
    assert fast.lambda_min == pytest.approx(ref.lambda_min, rel=1e-8, abs=1e-10)
    assert f32.lambda_max == pytest.approx(ref.lambda_max, rel=1e-4)
    with pytest.raises(UsageError, match="dtype"):
        model_spectrum(model, CE, batch, dtype="float16", **kw)


def test_nonlinear_coefficients(data):
    x, y = data.train
    torch.manual_seed(1)
    tiny = build_model({**SPEC, "hidden": [3]})
    rep = model_spectrum(tiny, CE, [(x[:32], y[:32])], lr=0.2, nonlinear=True, f2_iters=30)
    ops = LossOperators(tiny, CE, [(x[:32], y[:32])])
    assert rep.extra["f0_norm"] == pytest.approx(0.2 * float(ops.grad().norm()), rel=1e-10)
    # ‖F2‖ ≥ ‖F2(u,u)‖ for any unit u, and ≤ (η/2)·‖K‖_F
    K = ops.dense_third().numpy()
    u = np.random.default_rng(0).standard_normal(ops.n)
    u /= np.linalg.norm(u)
    lower = 0.1 * np.linalg.norm(np.einsum("iab,a,b->i", K, u, u))
    assert lower <= rep.extra["f2_norm"] <= 0.1 * np.linalg.norm(K) * (1 + 1e-12)
    if rep.rho < 1:
        assert np.isfinite(rep.extra["rd_star"])
    else:
        assert rep.extra["rd_star"] == np.inf


def test_parse_checkpoints_and_lr_schedule():
    avail = [0, 1, 2, 3, 5, 8, 13]
    assert parse_checkpoints("0:3", avail) == [0, 1, 2, 3]
    assert parse_checkpoints("1:13:4", avail) == [1, 5, 13]
    assert parse_checkpoints("2,8", avail) == [2, 8]
    assert parse_checkpoints("all", avail) == avail
    assert parse_checkpoints("latest", avail) == [13]
    for bad in ("4", "x:y", "20:30", "1:5:0"):
        with pytest.raises(UsageError):
            parse_checkpoints(bad, avail)
    meta = {"lr": 0.1, "milestones": [2, 4], "gamma": 0.5, "steps_per_epoch": 10}
    assert lr_at_step(meta, 19) == 0.1 and lr_at_step(meta, 20) == 0.05
    assert lr_at_step(meta, 45) == 0.025


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("run")
    model, mask = trained_pruned_mlp(data, steps=100)
    settings = TrainSettings(
        lr=0.5,
        momentum=0.0,
        weight_decay=1e-4,
        batch_size=128,
        epochs=1,
        milestones=[],
        every_step_first=3,
        max_steps=3,
    )
    meta = {"model": SPEC, "phase": "sparse"}
    tr = Trainer(model, data, settings, out, mask=mask, seed=0, meta=meta, progress=False)
    tr.save()
    tr.fit()
    return out


def test_run_spectra_and_plots(run_dir, tmp_path):
    reps = run_spectra(run_dir, "0:2", show_progress=False)
    assert [r.step for r in reps] == [0, 1, 2]
    assert all(r.lr == 0.5 and r.method == "exact" and r.n == 998 for r in reps)
    assert reps[0].extra["phase"] == "sparse"
    # the same as computing the checkpoint by hand
    from qcarleman.training.run import RunDir

    run = RunDir(run_dir)
    ck = run.load(1)
    ops = LossOperators(ck.model, ck.loss_fn, run.batches(1), mask=ck.mask, weight_decay=1e-4)
    lam = np.linalg.eigvalsh(ops.dense_hessian().numpy())
    np.testing.assert_allclose(reps[1].nodes, lam, atol=1e-10)
    step = run_spectra(run_dir, [1], data="step", n_batches=2, show_progress=False)[0]
    assert step.lambda_max != reps[1].lambda_max  # other batches, other Hessian
    paths = plot_spectra(reps, tmp_path)
    assert [p.name for p in paths] == [
        "spectrum_ridge.png",
        "error_curve.png",
        "dissipative_split.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_cli_json_and_errors(run_dir, tmp_path, capsys):
    out = tmp_path / "spec"
    code = main(
        ["spectrum", str(run_dir), "--checkpoints", "0:1", "--json", "--quiet", "--out", str(out)]
    )
    assert code == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in recs] == [0, 1]
    for key in ("trace", "negative_mass", "E", "regime") + RECORD_KEYS:
        assert key in recs[0], key
    # a plain-GD run (momentum 0): the map trained is the paper's
    assert recs[0]["momentum"] == 0.0 and recs[0]["weight_decay"] == 1e-4
    assert recs[0]["rho"] == recs[0]["rho_paper"] and recs[0]["window"] == recs[0]["window_paper"]
    assert recs[0]["spectrum_method"] == "exact" and recs[0]["lr"] == 0.5
    saved = json.loads((out / "spectra.json").read_text())["checkpoints"]
    assert saved[0]["lambda_max"] == recs[0]["lambda_max"]
    assert (out / "error_curve.png").is_file()
    assert main(["spectrum", str(run_dir), "--checkpoints", "7", "--quiet"]) == 2
    assert "no checkpoint at steps [7]" in capsys.readouterr().err
    assert main(["spectrum", str(tmp_path), "--quiet"]) == 2
    assert main(["spectrum", str(run_dir), "--checkpoints", "0", "--lr", "-1", "--quiet"]) == 2


def _no_seconds(x):
    """``x`` without its wall-clock ``seconds`` entries (at any depth)."""
    if isinstance(x, dict):
        return {k: _no_seconds(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_no_seconds(v) for v in x]
    return x


def test_ctrl_c_keeps_finished_checkpoints_and_the_rerun_skips_them(
    tiny_run, tmp_path, monkeypatch, capsys
):
    """Ctrl-C during checkpoint 2 keeps checkpoints 0 and 1 (written atomically, as the message
    says); the rerun computes only 2 and 3, removes what the kill left, and its output (JSON,
    spectra.json, SLQ bands included) equals an uninterrupted run's."""
    import qcarleman.analysis.spectrum as spectrum

    sparse = tiny_run[2]
    argv = ["spectrum", str(sparse), "--checkpoints", "0:3", "--method", "slq", "--probes", "3",
            "--iters", "8", "--k", "2", "--curve-steps", "12", "--quiet", "--no-plots", "--json",
            "--out"]  # fmt: skip
    strict = lambda s: json.loads(s, parse_constant=lambda c: pytest.fail(f"bare {c}"))  # noqa: E731
    assert main([*argv, str(tmp_path / "ref")]) == 0
    ref = strict(capsys.readouterr().out)

    out, real, calls = tmp_path / "cut", spectrum.model_spectrum, []

    def counted(*a, stop_at=None, **kw):
        calls.append(1)
        if len(calls) == stop_at:  # what a kill mid-write leaves behind
            (out / "steps" / ".step_00000002.json.k1ll.tmp").write_text("{")
            (out / ".spectra.json.k1ll.tmp").write_text("{")
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(spectrum, "model_spectrum", lambda *a, **k: counted(*a, stop_at=3, **k))
    assert main([*argv, str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoints [0, 1] are kept" in err[0] and "skips them" in err[0]
    assert sorted(p.name for p in (out / "steps").glob("*.json")) == [
        "step_00000000.json",
        "step_00000001.json",
    ]
    calls.clear()
    monkeypatch.setattr(spectrum, "model_spectrum", lambda *a, **k: counted(*a, **k))
    assert main([*argv, str(out)]) == 0
    assert len(calls) == 2  # checkpoints 2 and 3 only
    assert _no_seconds(strict(capsys.readouterr().out)) == _no_seconds(ref)
    assert "window_band" in ref[0]  # SLQ bands survive the round trip through the kept files
    saved = [json.loads((d / "spectra.json").read_text()) for d in (tmp_path / "ref", out)]
    assert saved[0].pop("run_dir") == saved[1].pop("run_dir")
    assert _no_seconds(saved[0]) == _no_seconds(saved[1])
    assert not list(out.rglob("*.tmp"))
    # other settings: a kept checkpoint is not reused
    calls.clear()
    assert main([*argv[:-1], "--seed", "1", "--checkpoints", "0", "--out", str(out)]) == 0
    assert len(calls) == 1
