"""Download (quantum/readout.py): √(n/M) scaling, signs, norm, pruned coordinates."""

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.quantum.readout import download, equivalent_noise, estimate_norm, tomography
from qcarleman.quantum.solve import solve


def test_error_scales_like_sqrt_n_over_m():
    rng = np.random.default_rng(0)
    X, Y = [], []
    for n in (16, 64, 256, 1024, 4096):
        psi = rng.standard_normal(n)
        for M in (10**3, 10**4, 10**5, 10**6):
            err = np.mean([tomography(psi, M, seed=s).error for s in range(3)])
            X.append(np.log(n / M))
            Y.append(np.log(err))
    slope, _ = np.polyfit(X, Y, 1)
    assert 0.4 <= slope <= 0.6


def test_signs_correct_with_high_probability():
    rng = np.random.default_rng(1)
    n = 256
    # magnitudes bounded below so every coordinate's sign is resolvable with M = 50 n shots
    psi = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
    wrong = [tomography(psi, 50 * n, seed=s).sign_errors for s in range(20)]
    assert np.mean(wrong) / n <= 0.005
    ro = tomography(psi, 10**6, seed=0)
    assert ro.sign_errors == 0
    assert np.all(np.sign(ro.psi) == np.sign(psi))
    assert ro.shots == {"magnitudes": 10**6, "signs": 10**6, "total": 2 * 10**6}


def test_zero_amplitudes_stay_zero_and_noise_model_matches():
    rng = np.random.default_rng(2)
    psi = rng.standard_normal(1000)
    psi[::3] = 0.0
    for ro in (tomography(psi, 10**5, seed=3), equivalent_noise(psi, 10**5, seed=3)):
        assert np.all(ro.psi[::3] == 0.0)
    errs = [tomography(psi, 10**6, seed=s).error for s in range(5)]
    noise = [equivalent_noise(psi, 10**6, seed=s).error for s in range(5)]
    assert np.mean(noise) == pytest.approx(np.mean(errs), rel=0.3)
    assert "approximation" in equivalent_noise(psi, 10).model


def test_estimate_norm():
    nu, phat = estimate_norm(0.25, 4.0, 10**6, seed=0)
    assert abs(phat - 0.25) <= 5 * np.sqrt(0.25 * 0.75 / 10**6)
    assert nu == pytest.approx(2.0, rel=5e-3)


def test_download_keeps_pruned_coordinates_zero():
    rng = np.random.default_rng(4)
    P = 12
    mask = np.zeros(P, dtype=bool)
    mask[[0, 3, 4, 9]] = True
    theta_bar = np.where(mask, rng.standard_normal(P), 0.0)
    n = int(mask.sum())
    G1 = 0.8 * np.eye(n) + 0.05 * rng.standard_normal((n, n))
    q = QuadraticMap(0.1 * rng.standard_normal(n), G1, 0.02 * rng.standard_normal((n, n, n)))
    h = CarlemanSystem(q, 2).history(np.zeros(n), 3, idle=1)
    res = solve(h, "exact")
    theta, ro = download(theta_bar, mask, res, 10**7, seed=0)
    assert np.all(theta[~mask] == 0.0)
    want = theta_bar[mask] + h.output_vector()
    assert np.linalg.norm(theta[mask] - want) <= 5e-3 * np.linalg.norm(h.output_vector()) + 1e-12
    assert ro.shots["norm"] == 10**7 and ro.shots["total"] == 3 * 10**7
    theta2, _ = download(theta_bar, mask, res, 10**4, seed=0, model="noise")
    assert np.all(theta2[~mask] == 0.0)


def test_usage_errors():
    with pytest.raises(UsageError, match="shots"):
        tomography(np.ones(3), 0)
    with pytest.raises(UsageError, match="non-zero"):
        tomography(np.zeros(3), 10)
    with pytest.raises(UsageError, match="probability"):
        estimate_norm(0.0, 1.0, 10)
