"""Download (quantum/readout.py): √(n/M) scaling, expected error, noise model, signs, norm,
memory, pruned coordinates."""

import tracemalloc

import numpy as np
import pytest

from qcarleman import CarlemanSystem, QuadraticMap, UsageError
from qcarleman.errors import MemoryLimitError
from qcarleman.quantum.readout import (
    download,
    equivalent_noise,
    estimate_norm,
    expected_error,
    read_state,
    tomography,
    tomography_memory,
)
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


def _scaled_errors(sizes, ratios, seeds):
    """error·√(M/n) of sampled tomography of a Gaussian ψ, and the predicted value, per (n, M/n)."""
    rng = np.random.default_rng(7)
    out = {}
    for n in sizes:
        psi = rng.standard_normal(n)
        for ratio in ratios:
            M = ratio * n
            err = np.mean([tomography(psi, M, seed=s).error for s in range(seeds)])
            out[n, ratio] = (err * np.sqrt(M / n), expected_error(psi, M) * np.sqrt(M / n))
    return out


def _check_scaling(out, sizes, ratios):
    for ratio in ratios:
        got = np.array([out[n, ratio][0] for n in sizes])
        # ∝ √(n/M): at a fixed M/n the scaled error does not depend on n ...
        assert np.ptp(got) <= 0.05 * got.mean()
        # ... and it is the predicted one (sign errors included), within 10%
        for n in sizes:
            assert out[n, ratio][0] == pytest.approx(out[n, ratio][1], rel=0.1)
    # many shots per coordinate: the textbook E‖ψ̂ − ψ‖² = n/(4M)
    assert np.mean([out[n, ratios[-1]][0] for n in sizes]) == pytest.approx(0.5, rel=0.15)
    # fewer shots per coordinate: sign errors make it much larger than √(n/(4M))
    assert min(out[n, ratios[0]][0] for n in sizes) >= 1.3 * 0.5


def test_sampled_error_proportional_to_sqrt_n_over_m():
    sizes, ratios = (1_000, 10_000, 100_000), (10, 100, 1000)
    _check_scaling(_scaled_errors(sizes, ratios, seeds=2), sizes, ratios)


@pytest.mark.slow
def test_sampled_error_proportional_to_sqrt_n_over_m_up_to_a_million():
    sizes, ratios = (10_000, 100_000, 1_000_000), (10, 100, 1000)
    _check_scaling(_scaled_errors(sizes, ratios, seeds=1), sizes, ratios)


@pytest.mark.parametrize("kind", ["gaussian", "sparse-heavy-tailed", "sign-balanced-flat"])
def test_noise_model_matches_sampler_within_10_percent(kind):
    rng = np.random.default_rng(3)
    n = 20_000
    if kind == "gaussian":
        psi = rng.standard_normal(n)
    elif kind == "sparse-heavy-tailed":
        psi = rng.standard_normal(n) * rng.exponential(1.0, n) * (rng.random(n) < 0.2)
    else:
        psi = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
    support = int(np.count_nonzero(psi))
    for ratio in (1, 10, 100, 1000):
        M = ratio * support
        sampled = np.mean([tomography(psi, M, seed=s).error for s in range(3)])
        noise = [equivalent_noise(psi, M, seed=s) for s in range(3)]
        assert np.mean([ro.error for ro in noise]) == pytest.approx(sampled, rel=0.1)
        assert np.all(noise[0].psi[psi == 0] == 0.0)
    # the old model (variance 1/(4M), no sign errors) underestimates at 10 shots per coordinate
    M = 10 * support
    if kind == "gaussian":
        assert np.mean([tomography(psi, M, seed=s).error for s in range(3)]) >= 1.4 * np.sqrt(
            support / (4 * M)
        )


def test_noise_model_refuses_fewer_shots_than_coordinates():
    psi = np.ones(1000)
    psi[::2] = 0.0  # 500 nonzero amplitudes
    with pytest.raises(UsageError, match="500 nonzero amplitudes.*sampled"):
        equivalent_noise(psi, 499)
    assert "approximation" in equivalent_noise(psi, 500).model


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
    ro = tomography(psi, 10**5, seed=0, sign_shots=3 * 10**5)
    assert ro.shots == {"magnitudes": 10**5, "signs": 3 * 10**5, "total": 4 * 10**5}


def test_zero_amplitudes_stay_zero():
    rng = np.random.default_rng(2)
    psi = rng.standard_normal(1000)
    psi[::3] = 0.0
    for ro in (tomography(psi, 10**5, seed=3), equivalent_noise(psi, 10**5, seed=3)):
        assert np.all(ro.psi[::3] == 0.0)


def test_memory_is_predicted_and_checked(monkeypatch):
    n = 200_000
    psi = np.random.default_rng(5).standard_normal(n)
    equivalent_noise(psi[:10], 10)  # build the cached error table outside the measurement
    for fn, words in ((tomography, tomography_memory(n) / 8 / n), (equivalent_noise, 8)):
        tracemalloc.start()
        fn(psi, 10**8)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak <= 8 * words * n
    # below the limit: sampled refuses, "auto" falls back to the noise model, and says so
    monkeypatch.setenv("QCARLEMAN_MEMORY_LIMIT", str(tomography_memory(n) - 1))
    with pytest.raises(MemoryLimitError, match="sampled tomography"):
        tomography(psi, 10**6)
    ro = read_state(psi, 10**6)
    assert ro.model.startswith("equivalent-noise") and "auto readout: noise model" in ro.notes[-1]
    monkeypatch.setenv("QCARLEMAN_MEMORY_LIMIT", str(tomography_memory(n)))
    ro = read_state(psi, 10**6, seed=4)
    assert ro.model == "sampled" and "auto readout: sampled" in ro.notes[-1]
    assert np.array_equal(ro.psi, tomography(psi, 10**6, seed=4).psi)
    with pytest.raises(UsageError, match="model"):
        read_state(psi, 10, model="magic")


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
    assert ro.model == "sampled"  # the default ("auto") samples whenever it fits in memory
    assert np.all(theta[~mask] == 0.0)
    want = theta_bar[mask] + h.output_vector()
    assert np.linalg.norm(theta[mask] - want) <= 5e-3 * np.linalg.norm(h.output_vector()) + 1e-12
    assert ro.shots["norm"] == 10**7 and ro.shots["total"] == 3 * 10**7
    theta2, ro2 = download(theta_bar, mask, res, 10**4, seed=0, model="noise")
    assert np.all(theta2[~mask] == 0.0) and ro2.model.startswith("equivalent-noise")


def test_usage_errors():
    with pytest.raises(UsageError, match="shots"):
        tomography(np.ones(3), 0)
    with pytest.raises(UsageError, match="non-zero"):
        tomography(np.zeros(3), 10)
    with pytest.raises(UsageError, match="probability"):
        estimate_norm(0.0, 1.0, 10)
