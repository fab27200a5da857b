r"""Download: ℓ2 state tomography of the output state and norm estimation (ALGORITHM.md §5).

Given copies of a real unit vector ψ ∈ R^n (the post-selected |ŷ1(T)⟩ over the active
coordinates) this module emulates the measurements of Kerenidis & Prakash, "A quantum interior
point method for LPs and SDPs", ACM TQC 1, 5 (2020), arXiv:1808.09266, Algorithm 4.1 / Thm 4.3:

1. **Magnitudes**: M computational-basis shots → counts N_i ~ Multinomial(M, ψ_i²);
   |ψ̂_i| = √(N_i/M).
2. **Signs** (Hadamard test against the reference |r⟩ = Σ_i √p̂_i |i⟩): prepare
   (|0⟩|ψ⟩ + |1⟩|r⟩)/√2, apply H to the control, measure both registers M_s times (default M).
   Outcome (0, i) has probability (ψ_i + r_i)²/4, (1, i) has (ψ_i − r_i)²/4. Sign rule (KP
   Alg. 4.1): ŝ_i = +1 if N(0, i) > 0.4·p̂_i·M_s, else −1.
3. **Norm** ν = ‖x‖: from the success probability of the solver, ν = norm_scale·√P_succ
   (:class:`~qcarleman.quantum.solve.SolveResult`); P_succ is estimated from M_norm Bernoulli
   shots, P̂ = Binomial(M_norm, P_succ)/M_norm (relative error ≈ 1/(2√(M_norm P_succ))).

:func:`tomography` samples every shot count exactly (NumPy's multinomial, i.e. sequential
conditional binomials, over the n and 2n outcomes): n = 10⁶, M = 10⁹ takes about 1 s and
n = 10⁷, M = 10¹⁰ about 12 s on a loaded 2-core machine (benchmarks/RESULTS.md). Its peak
memory, ≈ 7 words per coordinate, is predicted (:func:`tomography_memory`, 9 words) and checked
before it starts. Zero amplitudes are read as exactly 0, so pruned coordinates (not part of the
state) stay 0 in :func:`download`.

**Expected error** (:func:`expected_error`). Per coordinate, with λ = M ψ_i² and μ = M_s/M, in
the Poisson limit ψ_i² ≪ 1 (N_i ~ Poisson(λ), N(0, i) | N_i = k ~ Poisson(μ(√λ ± √k)²/4)):
M·E[(ψ̂_i − ψ_i)²] = h_±(λ) = Σ_k Pois(k; λ)[(√k − √λ)² + 4√(λk)·P(sign wrong | k)], the sign
± of ψ_i mattering because the KP sign rule is asymmetric. h → 1/4 for λ ≫ 1 (the textbook
n/(4M)), ≈ 2λ for λ ≪ 1 (unseen coordinates), and reaches ≈ 2 near λ ≈ 3 for positive ψ_i
(sign errors): for a Gaussian ψ the true error is 1.1–1.7× √(n/(4M)) at M = 1000n … n. We use
v_i = (1 − ψ_i²)·h_±(λ_i)/M (the binomial factor for large ψ_i²), h tabulated on a log grid.
E‖ψ̂ − ψ‖² = Σ v_i; the tests check the sampled mean error against √Σv_i within 10%.

**Equivalent-noise model** (:func:`equivalent_noise`, a documented fast option): ψ̂ = ψ + ξ with
independent ξ_i ~ N(0, v_i) on the support of ψ, zeros kept. Its expected squared error is the
sampler's Σ v_i (the tests check the mean ℓ2 errors agree within 10%), but it is an
*approximation* (dense Gaussian noise, no count structure), labelled as such in its result, and
it refuses M < (number of nonzero amplitudes): there the sampled estimate has at most M nonzero
entries and no Gaussian describes it.

:func:`read_state` and :func:`download` choose with ``model="auto"`` (the default): sampled
whenever :func:`tomography_memory` fits the memory limit (:func:`qcarleman.errors.memory_limit`),
else the noise model. All sampling uses a NumPy Generator (``seed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import UsageError, check_memory, format_bytes, memory_limit

__all__ = [
    "Readout",
    "MODELS",
    "tomography",
    "tomography_memory",
    "expected_error",
    "equivalent_noise",
    "read_state",
    "estimate_norm",
    "download",
]

SIGN_THRESHOLD = 0.4  # Kerenidis–Prakash Algorithm 4.1
MODELS = ("auto", "sampled", "noise")
_WORDS_SAMPLED = 9  # 8-byte words per coordinate at the peak of tomography (tested)
_WORDS_NOISE = 8  # same for equivalent_noise (tested)
_LAMBDA = np.logspace(-6, 4, 401)  # grid of λ = M ψ_i² for the tabulated h_±


@dataclass
class Readout:
    """Result of a download: the estimate, the shots spent and how it was obtained."""

    psi: np.ndarray  # estimated unit vector ψ̂ (length n)
    shots: dict[str, int]  # {"magnitudes": M, "signs": M_s, "norm": M_norm, "total": ...}
    norm: float | None = None  # ν̂ (None if not estimated)
    model: str = "sampled"  # "sampled" or "equivalent-noise (approximation)"
    error: float | None = None  # ‖ψ̂ − ψ‖ against the true state (emulation knows it)
    sign_errors: int | None = None
    notes: list[str] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        """ν̂·ψ̂ (needs the norm)."""
        if self.norm is None:
            raise UsageError("this readout has no norm estimate; pass norm_scale/probability")
        return self.norm * self.psi


def _unit(psi) -> np.ndarray:
    psi = np.asarray(psi, dtype=float).ravel()
    nrm = np.linalg.norm(psi)
    if psi.size == 0 or not np.isfinite(nrm) or nrm == 0:
        raise UsageError("the state to read out must be a non-zero finite vector")
    return psi / nrm


def _shots(shots) -> int:
    if not (isinstance(shots, (int, np.integer)) or float(shots).is_integer()) or shots < 1:
        raise UsageError(f"shots must be a positive integer; got {shots}")
    return int(shots)


def tomography_memory(n: int) -> int:
    """Bytes :func:`tomography` may allocate for n coordinates: 9 words each (measured peak 7,
    tests/test_readout.py)."""
    return 8 * _WORDS_SAMPLED * int(n)


def tomography(psi, shots: int, seed: int | None = 0, sign_shots: int | None = None) -> Readout:
    """Sampled ℓ2 tomography of the real unit vector ψ (module doc, KP Algorithm 4.1).

    ``shots`` = M for the magnitudes; ``sign_shots`` (default M) for the Hadamard test.
    Every shot is sampled (two multinomials, over n and 2n outcomes); memory is predicted first.
    """
    psi = _unit(psi)
    n = psi.size
    M = _shots(shots)
    Ms = _shots(sign_shots if sign_shots is not None else M)
    check_memory(tomography_memory(n), f"sampled tomography of {n} coordinates")
    rng = np.random.default_rng(seed)
    p = np.square(psi)
    p /= p.sum()
    counts = rng.multinomial(M, p)
    del p
    r = counts / M
    np.sqrt(r, out=r)
    # Hadamard test outcomes: index i with control 0 (prob (ψ_i + r_i)²/4) or 1 ((ψ_i − r_i)²/4)
    q = np.empty(2 * n)
    np.add(psi, r, out=q[:n])
    np.subtract(psi, r, out=q[n:])
    np.square(q, out=q)
    q /= 4.0
    q /= q.sum()
    n0 = rng.multinomial(Ms, q)[:n]
    del q
    positive = n0 > SIGN_THRESHOLD * (counts / M) * Ms
    del n0, counts
    wrong = int(np.count_nonzero(((psi > 0) != positive) & (r > 0)))
    np.negative(r, out=r, where=~positive)  # ψ̂ = ŝ·√p̂
    return Readout(
        psi=r,
        shots={"magnitudes": M, "signs": Ms, "total": M + Ms},
        error=float(np.linalg.norm(r - psi)),
        sign_errors=wrong,
        notes=["Kerenidis–Prakash ℓ2 tomography, every shot sampled (multinomial)"],
    )


@lru_cache(maxsize=8)
def _h_table(mu: float) -> tuple[np.ndarray, np.ndarray]:
    """log h_+(λ), log h_−(λ) on the grid ``_LAMBDA`` for μ = M_s/M (module doc)."""
    from scipy.special import gammaln, pdtr

    logs = np.empty((2, _LAMBDA.size))
    for j, lam in enumerate(_LAMBDA):
        k = np.arange(int(lam + 12 * np.sqrt(lam) + 40) + 1)
        pk = np.exp(k * np.log(lam) - lam - gammaln(k + 1))
        sk, sl = np.sqrt(k), np.sqrt(lam)
        thr = np.floor(SIGN_THRESHOLD * k * mu)
        wrong_pos = pdtr(thr, mu * (sl + sk) ** 2 / 4)  # ψ_i > 0: wrong iff N(0,i) ≤ thr
        wrong_neg = 1.0 - pdtr(thr, mu * (sl - sk) ** 2 / 4)  # ψ_i < 0: wrong iff > thr
        base = (sk - sl) ** 2
        logs[0, j] = np.log(np.sum(pk * (base + 4 * sl * sk * wrong_pos)))
        logs[1, j] = np.log(np.sum(pk * (base + 4 * sl * sk * wrong_neg)))
    return logs[0], logs[1]


def _variance(psi: np.ndarray, M: int, Ms: int) -> np.ndarray:
    """v_i = (1 − ψ_i²)·h_±(Mψ_i², M_s/M)/M, 0 where ψ_i = 0 (module doc); ψ a unit vector."""
    log_pos, log_neg = _h_table(round(Ms / M, 12))
    p = np.square(psi)
    lam = M * p
    out = np.zeros_like(psi)
    lg = np.log(_LAMBDA)
    for sel, table in ((psi > 0, log_pos), (psi < 0, log_neg)):
        lam_s = lam[sel]
        h = np.exp(np.interp(np.log(lam_s), lg, table))
        h *= np.minimum(lam_s / _LAMBDA[0], 1.0)  # h ∝ λ below the grid
        out[sel] = h
    out *= (1.0 - p) / M
    return out


def expected_error(psi, shots: int, sign_shots: int | None = None) -> float:
    """√(E‖ψ̂ − ψ‖²) = √(Σ_i v_i) of :func:`tomography` with these shots (module doc)."""
    psi = _unit(psi)
    M = _shots(shots)
    Ms = _shots(sign_shots if sign_shots is not None else M)
    return float(np.sqrt(np.sum(_variance(psi, M, Ms))))


def equivalent_noise(
    psi, shots: int, seed: int | None = 0, sign_shots: int | None = None
) -> Readout:
    """Fast stand-in for :func:`tomography`: ψ̂ = ψ + ξ, ξ_i ~ N(0, v_i) on supp ψ (module doc).

    Matches the sampler's expected squared error Σ v_i; refuses M < (nonzeros of ψ).
    """
    psi = _unit(psi)
    M = _shots(shots)
    Ms = _shots(sign_shots if sign_shots is not None else M)
    support = int(np.count_nonzero(psi))
    if M < support:
        raise UsageError(
            f"the equivalent-noise model needs shots >= the {support} nonzero amplitudes (got "
            f"{M}); with fewer shots use sampled tomography (model='sampled')"
        )
    check_memory(8 * _WORDS_NOISE * psi.size, f"equivalent-noise readout of {psi.size} entries")
    rng = np.random.default_rng(seed)
    xi = np.sqrt(_variance(psi, M, Ms))
    xi *= rng.standard_normal(psi.size)
    est = psi + xi
    return Readout(
        psi=est,
        shots={"magnitudes": M, "signs": Ms, "total": M + Ms},
        model="equivalent-noise (approximation)",
        error=float(np.linalg.norm(xi)),
        sign_errors=None,
        notes=[
            "Gaussian equivalent-noise model of ℓ2 tomography: per-coordinate variance of the "
            "sampler (sign errors included), not its count structure"
        ],
    )


def read_state(
    psi,
    shots: int,
    *,
    model: str = "auto",
    seed: int | None = 0,
    sign_shots: int | None = None,
) -> Readout:
    """ℓ2 tomography of ψ with ``model`` "sampled" (:func:`tomography`), "noise"
    (:func:`equivalent_noise`) or "auto": sampled whenever :func:`tomography_memory` fits the
    memory limit, else the noise model (an automatic choice is recorded in ``notes``)."""
    if model not in MODELS:
        raise UsageError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    if model == "auto":
        n = np.size(psi)
        need, cap = tomography_memory(n), memory_limit()
        model = "sampled" if need <= cap else "noise"
        why = (
            f"auto readout: sampled ({format_bytes(need)} fits the memory limit)"
            if model == "sampled"
            else f"auto readout: noise model (sampling {n} entries needs {format_bytes(need)} > "
            f"limit {format_bytes(cap)})"
        )
    else:
        why = None
    if model == "sampled":
        ro = tomography(psi, shots, seed=seed, sign_shots=sign_shots)
    else:
        ro = equivalent_noise(psi, shots, seed=seed, sign_shots=sign_shots)
    if why:
        ro.notes.append(why)
    return ro


def estimate_norm(
    probability: float, norm_scale: float, shots: int, seed: int | None = 0
) -> tuple[float, float]:
    """ν̂ = norm_scale·√P̂ with P̂ = Binomial(M_norm, P)/M_norm (module doc, step 3).

    Returns (ν̂, P̂). ``probability`` is the solver's success probability (SolveResult).
    """
    if not (0 < probability <= 1):
        raise UsageError(f"success probability must be in (0, 1]; got {probability}")
    M = _shots(shots)
    phat = np.random.default_rng(seed).binomial(M, probability) / M
    return float(norm_scale * np.sqrt(phat)), float(phat)


def download(
    theta_bar,
    mask,
    result,
    shots: int,
    *,
    norm_shots: int | None = None,
    seed: int | None = 0,
    model: str = "auto",
) -> tuple[np.ndarray, Readout]:
    """θ̂ = θ̄ with θ̂_S = θ̄_S + γ·ν̂ψ̂ (ALGORITHM.md §5); pruned coordinates stay exactly θ̄ (=0).

    ``result``: a history :class:`~qcarleman.quantum.solve.SolveResult` (from ``solve``) whose
    ``output_state`` is over the n active coordinates (mask order, flattened). ``model``: "auto"
    (sampled whenever it fits in memory), "sampled" or "noise" (:func:`read_state`). The norm
    uses ``norm_shots`` (default ``shots``) Bernoulli shots of the solver's success flag.
    """
    theta_bar = np.asarray(theta_bar, dtype=float).ravel()
    mask = np.asarray(mask, dtype=bool).ravel()
    if mask.shape != theta_bar.shape:
        raise UsageError("mask and theta_bar must have the same number of entries")
    if result.output_state is None or result.output_state.size != int(mask.sum()):
        raise UsageError("result.output_state must have one entry per active (mask=True) entry")
    ro = read_state(result.output_state, shots, model=model, seed=seed)
    Mn = _shots(norm_shots if norm_shots is not None else shots)
    seed_n = None if seed is None else seed + 1
    total, _ = estimate_norm(result.success_probability, result.norm_scale, Mn, seed=seed_n)
    ro.norm = total / np.sqrt(result.copies)  # ‖ŷ1(T)‖ from ‖Y restricted‖ (p+1 copies)
    ro.shots["norm"] = Mn
    ro.shots["total"] += Mn
    theta = theta_bar.copy()
    theta[mask] = theta_bar[mask] + result.scale * ro.norm * ro.psi
    return theta, ro
