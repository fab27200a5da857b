r"""The cost formulas of one quantum segment, one pure function each (ALGORITHM.md §7).

Every function takes numbers and returns numbers; its docstring states the formula and its source.
:mod:`qcarleman.quantum.cost.estimate` assembles them into the bill.

* dimensions (§2–§3): D_N = Σ_j d^j (or Σ_j C(d+j−1, j)), dim Y = (T+p+1)·D_N, system qubits
  ⌈log2 dim Y⌉ (:func:`carleman_dim`, :func:`history_dim`, :func:`qubits_for`);
* structure of A and L (§2, reusing :func:`qcarleman.carleman.blocks.block_sums`): block bounds
  Σ_a Π v_{a_i} give ‖A‖ (:func:`norm_A_bound`), row/column sparsity (:func:`sparsity_L`) and the
  LCU block-encoding normalization α (:func:`alpha_lcu`); sparse access: α = √(s_r s_c)·max|L_ij|
  (Gilyén, Su, Low, Wiebe, STOC 2019, arXiv:1806.01838, Lemma 48) (:func:`alpha_sparse`);
* κ (§3): :func:`kappa_bound` (the HistorySystem ``"bound"`` formula for constant ‖A(t)‖);
* QLSA queries to the block-encoding of L/α, condition number κ_eff = α‖L⁻¹‖:
  :func:`queries_hhl`, :func:`queries_cks`, :func:`queries_costa`, :func:`queries_jennings`
  (:func:`solver_queries` by name);
* amplitude amplification for P_succ (:func:`aa_rounds`), tomography shots for a target error
  and the error a shot budget reaches (:func:`tomography_shots`, :func:`tomography_epsilon`),
  T-count per block-encoding call (:func:`t_per_call`, oracle model stated there), QROM costs
  (:func:`qroam_toffoli`);
* the classical cost of the same T steps when no model is known (:func:`classical_flops`; the
  measured per-layer count of a torch model is :func:`qcarleman.training.flops.step_flops`).
"""

from __future__ import annotations

import math

import numpy as np

from ...carleman.blocks import block_sums, history_norm_bound, inverse_norm_bound
from ...errors import UsageError

__all__ = [
    "carleman_dim",
    "history_dim",
    "qubits_for",
    "norm_A_bound",
    "sparsity_L",
    "alpha_lcu",
    "alpha_sparse",
    "kappa_bound",
    "aa_rounds",
    "queries_hhl",
    "queries_cks",
    "cks_parameters",
    "queries_costa",
    "filter_degree",
    "queries_jennings",
    "solver_queries",
    "tomography_shots",
    "tomography_epsilon",
    "qroam_toffoli",
    "t_per_call",
    "classical_flops",
    "SOLVERS",
    "SOLVER_SOURCES",
    "COSTA_BOUND",
    "COSTA_EMPIRICAL",
    "SRC_KP",
]

#: Walk-step constant of the discrete-adiabatic QLSA: proven upper bound (Costa, An, Sanders, Su,
#: Babbush, Berry, PRX Quantum 3, 040303 (2022), Theorem 1/Eq. (8): 2305·κ) and the numerically
#: fitted value on random matrices (Costa, An, Babbush, Berry, arXiv:2312.07690: ≈ 1.84·κ,
#: about 1,200× below the bound — an empirical fit, not a guarantee).
COSTA_BOUND = 2305.0
COSTA_EMPIRICAL = 1.84

SOLVERS = ("hhl", "cks", "costa", "costa-empirical", "jennings")

_SRC_COSTA = (
    "Costa et al., PRX Quantum 3, 040303 (2022), Thm. 1 (2305·κ walk steps); eigenstate filter: "
    "Lin & Tong, Quantum 4, 361 (2020), Lemma 2 (|R_l| ≤ 2exp(−√2·l/κ))"
)
_SRC_COSTA_EMP = (
    "Costa, An, Babbush, Berry, arXiv:2312.07690 (fit ≈ 1.84·κ walk steps on random matrices); "
    "filter: Lin & Tong, Quantum 4, 361 (2020), Lemma 2"
)
_SRC_JENNINGS = (
    "Jennings, Lostaglio, Pallister, Sornborger, Subaşı, arXiv:2305.11352 (v1) Thm. 1, expected "
    "block-encoding calls Q*/(0.39−0.204ε); formula as transcribed in Zapata's qsub "
    "(linear_systems.py); not re-checked against the paper PDF; later versions improve it"
)
_SRC_CKS = (
    "Childs, Kothari, Somma, SIAM J. Comput. 46, 1920 (2017), arXiv:1511.02306, Lemmas 17–19 "
    "(Chebyshev LCU: b = ⌈κ²ln(κ/ε)⌉, j0 = ⌈√(b ln(4b/ε))⌉) + amplitude amplification "
    "(Brassard et al. 2002); the VTAA variant reaches O(κ polylog) without explicit constants"
)
_SRC_HHL = (
    "Harrow, Hassidim, Lloyd, PRL 103, 150502 (2009): phase estimation for time t0 = κ/ε, "
    "success amplitude ≥ 1/κ, O(κ²/ε); constants are this project's stated model"
)
SRC_KP = (
    "Kerenidis & Prakash, arXiv:1808.09266, Thm. 4.3 / Alg. 4.1 (ℓ2 vector-state tomography: "
    "N = 36 d ln d/δ² samples per stage, error ≤ √7·δ w.p. ≥ 1 − 1/d^0.83); constants as recalled, "
    "see docs/resources.md"
)


# ------------------------------------------------------------------------------------------
# dimensions and structure (§2–§3)
# ------------------------------------------------------------------------------------------
def carleman_dim(d: int, N: int, symmetric: bool = False) -> int:
    """D_N = Σ_{j=1}^N d^j, or Σ_j C(d+j−1, j) on the symmetric subspace (ALGORITHM.md §2)."""
    if symmetric:
        return sum(math.comb(d + j - 1, j) for j in range(1, N + 1))
    return sum(d**j for j in range(1, N + 1))


def history_dim(d: int, N: int, T: int, p: int = 0, symmetric: bool = False) -> int:
    """dim Y = (T+p+1)·D_N (ALGORITHM.md §3)."""
    return (T + p + 1) * carleman_dim(d, N, symmetric)


def qubits_for(dim: int) -> int:
    """⌈log2 dim⌉ qubits index a register of ``dim`` basis states (exact integer arithmetic)."""
    return max(1, (int(dim) - 1).bit_length())


def norm_A_bound(rho: float, N: int, f0_norm: float = 0.0, F2_norm: float = 0.0, gamma=1.0):
    """‖A‖₂ ≤ ‖(Σ_a Π‖G_{a_i}‖)_{j,k}‖₂ with ‖G0‖ = ‖f0‖/γ, ‖G1‖ = ρ, ‖G2‖ = γ‖F2‖ (§2 scaling;
    the bound of :meth:`CarlemanSystem.norm_bound`)."""
    return float(np.linalg.norm(block_sums((f0_norm / gamma, rho, gamma * F2_norm), N), 2))


def sparsity_L(N: int, s: int, s2: int, nnz_f0: int) -> tuple[int, int]:
    """(row, column) sparsity of L for G1 with s nonzeros per row and column, G2 (d×d²) with s2
    per row and s per column, and G0 with ``nnz_f0`` nonzeros (one column): 1 (identity) +
    max over block rows (columns) of Σ_a Π nnz (upper bounds; ALGORITHM.md §2–§3, as
    :meth:`CarlemanSystem.row_sparsity`)."""
    rows = block_sums((1, s, s2), N).sum(axis=1).max()
    cols = block_sums((nnz_f0, s, s), N).sum(axis=0).max()
    return 1 + int(rows), 1 + int(cols)


def alpha_lcu(N: int, a0: float, a1: float, a2: float) -> float:
    r"""Normalization of the block-encoding of L = I − Σ_t |t+1⟩⟨t| ⊗ A(t) built as a linear
    combination of the tensor-product terms G_{a_1}⊗…⊗G_{a_j} of every block B_{j,k}:
    α = 1 + Σ_{j,k} Σ_a Π α_{a_i} (LCU, Childs & Wiebe, QIC 12, 901 (2012); products of
    block-encodings multiply normalizations, Gilyén et al. 2019 Lemma 30), where α0 = ‖f0‖/γ
    (state-preparation encoding of the column G0), α1, α2 the normalizations of G1, γG2."""
    return 1.0 + float(block_sums((a0, a1, a2), N).sum())


def alpha_sparse(s_row: int, s_col: int, max_entry: float) -> float:
    """α = √(s_r s_c)·max|L_ij| for sparse access (Gilyén et al. 2019, Lemma 48; Childs 2017
    lecture notes on sparse Hamiltonians)."""
    return math.sqrt(s_row * s_col) * max_entry


def kappa_bound(norm_A: float, T: int, p: int = 0) -> float:
    """κ(L) ≤ ‖L‖-bound · ‖L⁻¹‖-bound with ‖L‖ ≤ 1 + max(‖A‖, 1 if p > 0) (the idle identity
    blocks count; :func:`qcarleman.carleman.blocks.history_norm_bound`, ALGORITHM.md §3)."""
    return history_norm_bound([norm_A], p) * inverse_norm_bound(norm_A, p, steps=T)


# ------------------------------------------------------------------------------------------
# QLSA query counts (queries to the block-encoding of L/α; κ = κ_eff)
# ------------------------------------------------------------------------------------------
def aa_rounds(p_succ: float) -> int:
    """Amplitude-amplification rounds m = ⌊π/(4θ)⌋, sin²θ = P (Brassard, Høyer, Mosca, Tapp,
    Contemp. Math. 305 (2002), Thm. 2: success ≥ max(1 − P, P)); the state preparation runs
    2m + 1 times."""
    if not 0 < p_succ <= 1:
        raise UsageError(f"success probability {p_succ} is invalid; pass 0 < P_succ ≤ 1")
    return int(math.floor(math.pi / (4 * math.asin(math.sqrt(p_succ)))))


def queries_hhl(kappa: float, eps: float) -> float:
    """HHL: (2m+1)·2⌈κ/ε⌉ with m = aa_rounds(1/κ²): phase estimation (and its uncomputation) for
    time t0 = κ/ε at one query per unit time (qubitized walk, Low & Chuang, Quantum 3, 163
    (2019)), repeated under amplitude amplification of the 1/κ post-selection amplitude."""
    return (2 * aa_rounds(1.0 / kappa**2) + 1) * 2.0 * math.ceil(kappa / eps)


def cks_parameters(kappa: float, eps: float) -> tuple[int, int]:
    """(b, j0) of the CKS Chebyshev approach: g(x) = (1 − (1 − x²)^b)/x is ε-close to 1/x on
    [1/κ, 1] for b = ⌈κ² ln(κ/ε)⌉, and its Chebyshev series truncated after j0 = ⌈√(b ln(4b/ε))⌉
    odd terms is ε-close to g (Childs, Kothari, Somma 2017, Lemmas 17–19)."""
    b = math.ceil(kappa**2 * math.log(kappa / eps))
    j0 = math.ceil(math.sqrt(b * math.log(4 * b / eps)))
    return b, j0


def queries_cks(kappa: float, eps: float) -> float:
    r"""CKS (Chebyshev LCU): each application costs 2j0+1 walk steps (highest degree T_{2j0+1});
    the LCU coefficients α_j = 4·P(X ≥ b+j+1), X ~ Bin(2b, ½), sum to
    4·E[(X−b)⁺] = 2·E|X−b| ≤ 2√(b/2) = √(2b), so the success amplitude is ≥ 1/√(2b) (‖A⁻¹b‖ ≥ 1)
    and amplitude amplification takes m = aa_rounds(1/(2b)) rounds: Q = (2m+1)(2j0+1)."""
    b, j0 = cks_parameters(kappa, eps)
    return (2 * aa_rounds(1.0 / (2 * b)) + 1) * (2 * j0 + 1.0)


def filter_degree(kappa: float, eps: float) -> int:
    """Degree 2l of the Lin–Tong eigenstate filter R_l(x; Δ = 1/κ) with 2·exp(−√2·l/κ) ≤ ε:
    l = ⌈κ ln(2/ε)/√2⌉ (Lin & Tong, Quantum 4, 361 (2020), Lemma 2); one query per degree."""
    return 2 * math.ceil(kappa * math.log(2 / eps) / math.sqrt(2))


def queries_costa(kappa: float, eps: float, constant: float = COSTA_BOUND) -> float:
    """Discrete-adiabatic QLSA + eigenstate filtering: c·κ walk steps (one block-encoding query
    each; c = 2305 proven, ≈ 1.84 fitted) plus the filter degree (Costa et al. 2022, Sec. V)."""
    return constant * kappa + filter_degree(kappa, eps)


def queries_jennings(kappa: float, eps: float, alpha: float = 1.0) -> float:
    """Expected block-encoding calls of the randomized-adiabatic QLSA, Q*/(0.39 − 0.204ε) with
    Q* = (1741αe/500)√(κ²+1)·[(133/125 + 4/(25κ^{1/3}))π ln(2κ+3) + 1]
    + (351/50) ln²(2κ+3)·[ln(451 ln²(2κ+3)/ε) + 1] + ακ ln(32/ε) (arXiv:2305.11352 v1, Thm. 1;
    valid for ε ≤ 0.24 and κ ≥ √12 — smaller κ is raised to √12)."""
    if eps > 0.24:
        raise UsageError(f"the Jennings et al. bound needs ε ≤ 0.24, got {eps}; lower --epsilon")
    k = max(kappa, math.sqrt(12))
    lk = math.log(2 * k + 3)
    t1 = (1741 * alpha * math.e / 500) * math.sqrt(k * k + 1)
    t2 = (133 / 125 + 4 / (25 * k ** (1 / 3))) * math.pi * lk + 1
    t3 = (351 / 50) * lk**2 * (math.log(451 * lk**2 / eps) + 1)
    q_star = t1 * t2 + t3 + alpha * k * math.log(32 / eps)
    return q_star / (0.39 - 0.204 * eps)


def solver_queries(solver: str, kappa: float, eps: float) -> float:
    if solver == "hhl":
        return queries_hhl(kappa, eps)
    if solver == "cks":
        return queries_cks(kappa, eps)
    if solver == "costa":
        return queries_costa(kappa, eps, COSTA_BOUND)
    if solver == "costa-empirical":
        return queries_costa(kappa, eps, COSTA_EMPIRICAL)
    if solver == "jennings":
        return queries_jennings(kappa, eps)
    raise UsageError(f"QLSA solver {solver!r} is unknown; use one of {', '.join(SOLVERS)}")


SOLVER_SOURCES = {
    "hhl": (_SRC_HHL, "(2m+1)·2⌈κ_eff/ε_q⌉, m = ⌊π/(4 asin(1/κ_eff))⌋"),
    "cks": (_SRC_CKS, "(2m+1)(2j0+1), m = ⌊π/(4 asin(1/√(2b)))⌋"),
    "costa": (_SRC_COSTA, "2305·κ_eff + 2⌈κ_eff ln(2/ε_q)/√2⌉"),
    "costa-empirical": (_SRC_COSTA_EMP, "1.84·κ_eff + 2⌈κ_eff ln(2/ε_q)/√2⌉"),
    "jennings": (_SRC_JENNINGS, "Q*(κ_eff, α=1, ε_q)/(0.39 − 0.204 ε_q)"),
}


# ------------------------------------------------------------------------------------------
# readout, oracles, classical cost
# ------------------------------------------------------------------------------------------
def tomography_shots(d: int, eps: float) -> int:
    """ℓ2 tomography of a d-dimensional real state to error ε: two stages (magnitudes, signs) of
    N = ⌈36 d ln d/δ²⌉ samples with δ = ε/√7 (Kerenidis & Prakash, arXiv:1808.09266, Thm. 4.3):
    M = 2N. Each sample is one preparation of the post-selected output state."""
    d = max(int(d), 2)
    delta = eps / math.sqrt(7)
    return 2 * math.ceil(36 * d * math.log(d) / delta**2)


def qroam_toffoli(n_words: float, bits: int) -> float:
    """Toffolis of a SELECT-SWAP QROM (QROAM) lookup of n words of b bits:
    min over λ = 2^k of ⌈n/λ⌉ + b(λ − 1) (Low, Kliuchnikov, Schaeffer, arXiv:1812.00954, Sec. 2;
    Berry et al., Quantum 3, 208 (2019), App. A)."""
    n = max(float(n_words), 1.0)
    lam = 2.0 ** max(0, round(math.log2(math.sqrt(n / bits)))) if n > bits else 1.0
    return math.ceil(n / lam) + bits * (lam - 1)


def t_per_call(
    m: int, bits: int, N: int, oracle: str = "arithmetic", entry_mults: int = 4, n_data=0.0
) -> tuple[float, str]:
    r"""T gates per call of the sparse-access block-encoding (Gilyén et al. 2019, Lemma 48: the
    row/column index oracles O_r, O_c, the entry oracle O_A and its inverse, a controlled
    rotation). Stated model, b = ``bits``, m = system qubits, 4 T per Toffoli (Jones, PRA 87,
    022328 (2013); Gidney's temporary AND, Quantum 2, 74 (2018)):

    * index oracles: 2 calls × 2 m-bit additions × 4m T (Gidney 2018 adder, 4m T): 16m;
    * entry oracle, computed and uncomputed (×2): the entry of B_{j,k} is a product of up to N
      factor entries, N − 1 b-bit multiplications of b² Toffolis (schoolbook), plus the factor
      entries themselves — ``"arithmetic"``: each computed from a formula with ``entry_mults``
      b-bit multiplications (the paper's efficient-oracle assumption); ``"qrom"``: each looked up
      from a table of ``n_data`` b-bit words by QROAM (:func:`qroam_toffoli`), as a trained
      network's weights are data;
    * amplitude of the entry by comparison with a b-bit uniform register instead of arithmetic
      rotation (Sanders, Low, Scherer, Berry, PRL 122, 020502 (2019)): b Toffolis, ×2.
    """
    mult = 4.0 * bits * bits
    if oracle == "arithmetic":
        factor = N * entry_mults * mult
        how = f"N·{entry_mults} b-bit mults"
    elif oracle == "qrom":
        factor = N * 4.0 * qroam_toffoli(n_data, bits)
        how = f"N QROAM lookups of {n_data:.3g} words"
    else:
        raise UsageError(f"oracle model {oracle!r} is unknown; use 'arithmetic' or 'qrom'")
    t = 16.0 * m + 2 * ((N - 1) * mult + factor) + 2 * 4.0 * bits
    return t, f"16m + 2·((N−1)·4b² + {how}) + 8b"


def tomography_epsilon(d: int, shots: int) -> float:
    """The ℓ2 error ε that M = ``shots`` samples guarantee, the inverse of
    :func:`tomography_shots`: N = ⌊M/2⌋ samples per stage give δ = √(36 d ln d/N) and error
    ≤ √7·δ w.p. ≥ 1 − 1/d^0.83 (Kerenidis & Prakash, arXiv:1808.09266, Thm. 4.3) — a bound,
    not the typical error (about √(d/(4M)) for the magnitudes, :mod:`qcarleman.quantum.readout`)."""
    d = max(int(d), 2)
    if int(shots) < 2:
        return math.inf
    return math.sqrt(7) * math.sqrt(36 * d * math.log(d) / (int(shots) // 2))


def classical_flops(weights: float, batch_size: int, T: int) -> float:
    """FLOPs of T SGD steps from counts only, the analytic definition used when no model is
    known: 6·w·B per step for w weights (forward 2wB multiply-adds, backward 4wB; Kaplan et al.,
    arXiv:2001.08361, Sec. 2.1). Sparse training counts w = n active weights, dense w = P ≥ n,
    so the dense figure is never below the sparse one. It counts each weight once per example
    (dense layers); convolutions reuse weights over positions, which the measured per-layer
    count (:func:`qcarleman.training.flops.step_flops`) includes."""
    return 6.0 * float(weights) * batch_size * T
