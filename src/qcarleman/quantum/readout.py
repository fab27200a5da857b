r"""Download: ℓ2 state tomography of the output state and norm estimation (ALGORITHM.md §5).

Given copies of a real unit vector ψ ∈ R^n (the post-selected |ŷ1(T)⟩ over the active
coordinates) this module emulates the measurements of Kerenidis & Prakash, "A quantum interior
point method for LPs and SDPs", ACM TQC 1, 5 (2020), arXiv:1808.09266, Algorithm 4.1 / Thm 4.3:

1. **Magnitudes**: M computational-basis shots → counts N_i ~ Multinomial(M, ψ_i²);
   |ψ̂_i| = √(N_i/M).
2. **Signs** (Hadamard test against the reference |r⟩ = Σ_i √p̂_i |i⟩): prepare
   (|0⟩|ψ⟩ + |1⟩|r⟩)/√2, apply H to the control, measure both registers M times. Outcome (0, i)
   has probability (ψ_i + r_i)²/4, (1, i) has (ψ_i − r_i)²/4. Sign rule (KP Alg. 4.1): ŝ_i = +1
   if N(0, i) > 0.4·p̂_i·M, else −1.
3. **Norm** ν = ‖x‖: from the success probability of the solver, ν = norm_scale·√P_succ
   (:class:`~qcarleman.quantum.solve.SolveResult`); P_succ is estimated from M_norm Bernoulli
   shots, P̂ = Binomial(M_norm, P_succ)/M_norm (relative error ≈ 1/(2√(M_norm P_succ))).

The ℓ2 error ‖ψ̂ − ψ‖ scales like √(n/M) (E‖√p̂ − |ψ|‖² ≈ n/(4M) for the magnitudes; KP
Thm 4.3: M = 36 n ln n/δ² shots give error ≤ δ w.h.p.). Zero amplitudes are read as exactly 0, so
pruned coordinates (which are not even part of the state) stay 0 in :func:`download`.

**Equivalent-noise model** (:func:`equivalent_noise`, for huge n): ψ̂ = ψ + ξ with independent
ξ_i ~ N(0, 1/(4M)) on the support of ψ, signs assumed correct and zeros kept. It matches the
magnitude error n/(4M) of the sampler but ignores sign errors on tiny |ψ_i|; it is an
*approximation*, labelled as such in its result, and is compared with the sampler in the tests.
All sampling uses a NumPy Generator (``seed``) and is vectorized (n = 10⁶, M = 10⁹ is fine).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError

__all__ = ["Readout", "tomography", "equivalent_noise", "estimate_norm", "download"]

SIGN_THRESHOLD = 0.4  # Kerenidis–Prakash Algorithm 4.1


@dataclass
class Readout:
    """Result of a download: the estimate, the shots spent and how it was obtained."""

    psi: np.ndarray  # estimated unit vector ψ̂ (length n)
    shots: dict[str, int]  # {"magnitudes": M, "signs": M, "norm": M_norm, "total": ...}
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


def tomography(psi, shots: int, seed: int | None = 0, sign_shots: int | None = None) -> Readout:
    """Sampled ℓ2 tomography of the real unit vector ψ (module doc, KP Algorithm 4.1).

    ``shots`` = M for the magnitudes; ``sign_shots`` (default M) for the Hadamard test.
    """
    psi = _unit(psi)
    M = _shots(shots)
    Ms = _shots(sign_shots if sign_shots is not None else M)
    rng = np.random.default_rng(seed)
    p = psi**2
    p /= p.sum()
    phat = rng.multinomial(M, p) / M
    r = np.sqrt(phat)
    # Hadamard test outcomes: index i with control 0 (prob (ψ_i + r_i)²/4) or 1 ((ψ_i − r_i)²/4)
    q = np.concatenate([(psi + r) ** 2, (psi - r) ** 2]) / 4.0
    q /= q.sum()
    n0 = rng.multinomial(Ms, q)[: psi.size]
    sign = np.where(n0 > SIGN_THRESHOLD * phat * Ms, 1.0, -1.0)
    est = sign * r
    wrong = int(np.sum((np.sign(psi) != sign) & (r > 0)))
    return Readout(
        psi=est,
        shots={"magnitudes": M, "signs": Ms, "total": M + Ms},
        error=float(np.linalg.norm(est - psi)),
        sign_errors=wrong,
        notes=["Kerenidis–Prakash ℓ2 tomography, multinomial shot sampling"],
    )


def equivalent_noise(psi, shots: int, seed: int | None = 0) -> Readout:
    """Cheap stand-in for :func:`tomography` at huge n: ψ̂ = ψ + N(0, 1/(4M)) on supp ψ.

    An approximation (module doc): same expected magnitude error n/(4M), no sign errors.
    """
    psi = _unit(psi)
    M = _shots(shots)
    rng = np.random.default_rng(seed)
    est = psi + np.where(psi != 0, rng.standard_normal(psi.size) / (2.0 * np.sqrt(M)), 0.0)
    return Readout(
        psi=est,
        shots={"magnitudes": M, "signs": M, "total": 2 * M},
        model="equivalent-noise (approximation)",
        error=float(np.linalg.norm(est - psi)),
        sign_errors=0,
        notes=["Gaussian equivalent-noise model of ℓ2 tomography; sign errors not modelled"],
    )


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
    model: str = "sampled",
) -> tuple[np.ndarray, Readout]:
    """θ̂ = θ̄ with θ̂_S = θ̄_S + γ·ν̂ψ̂ (ALGORITHM.md §5); pruned coordinates stay exactly θ̄ (=0).

    ``result``: a history :class:`~qcarleman.quantum.solve.SolveResult` (from ``solve``) whose
    ``output_state`` is over the n active coordinates (mask order, flattened). ``model``:
    "sampled" (:func:`tomography`) or "noise" (:func:`equivalent_noise`). The norm uses
    ``norm_shots`` (default ``shots``) Bernoulli shots of the solver's success flag.
    """
    theta_bar = np.asarray(theta_bar, dtype=float).ravel()
    mask = np.asarray(mask, dtype=bool).ravel()
    if mask.shape != theta_bar.shape:
        raise UsageError("mask and theta_bar must have the same number of entries")
    if result.output_state is None or result.output_state.size != int(mask.sum()):
        raise UsageError("result.output_state must have one entry per active (mask=True) entry")
    if model == "sampled":
        ro = tomography(result.output_state, shots, seed=seed)
    elif model == "noise":
        ro = equivalent_noise(result.output_state, shots, seed=seed)
    else:
        raise UsageError(f"model must be 'sampled' or 'noise'; got {model!r}")
    Mn = _shots(norm_shots if norm_shots is not None else shots)
    seed_n = None if seed is None else seed + 1
    total, _ = estimate_norm(result.success_probability, result.norm_scale, Mn, seed=seed_n)
    ro.norm = total / np.sqrt(result.copies)  # ‖ŷ1(T)‖ from ‖Y restricted‖ (p+1 copies)
    ro.shots["norm"] = Mn
    ro.shots["total"] += Mn
    theta = theta_bar.copy()
    theta[mask] = theta_bar[mask] + result.scale * ro.norm * ro.psi
    return theta, ro
