r"""What a fault-tolerant run of the Carleman training algorithm would cost (ALGORITHM.md §7).

Costs are data: every figure is a :class:`Figure` record ``{value, formula, source, approx}``
(Qualtran-style), where ``approx`` labels any assumption the number rests on. :func:`estimate`
assembles the whole bill from explicit numbers; :func:`estimate_history` reads the numbers off
an emulated :class:`~qcarleman.HistorySystem`. The formulas, one function each:

* dimensions (§2–§3): D_N = Σ_j d^j (or Σ_j C(d+j−1, j)), dim Y = (T+p+1)·D_N, system qubits
  ⌈log2 dim Y⌉ (:func:`carleman_dim`, :func:`history_dim`, :func:`qubits_for`);
* structure of A and L (§2, reusing :func:`qcarleman.carleman.blocks.block_sums`): block bounds
  Σ_a Π v_{a_i} give ‖A‖ (:func:`norm_A_bound`), row/column sparsity (:func:`sparsity_L`) and the
  LCU block-encoding normalization α (:func:`alpha_lcu`); sparse access: α = √(s_r s_c)·max|L_ij|
  (Gilyén, Su, Low, Wiebe, STOC 2019, arXiv:1806.01838, Lemma 48) (:func:`alpha_sparse`);
* κ (§3): :func:`kappa_bound` (the HistorySystem ``"bound"`` formula for constant ‖A(t)‖);
* QLSA queries to the block-encoding of L/α, condition number κ_eff = α‖L⁻¹‖:
  :func:`queries_hhl`, :func:`queries_cks`, :func:`queries_costa`, :func:`queries_jennings`;
* amplitude amplification for P_succ (:func:`aa_rounds`), tomography shots
  (:func:`tomography_shots`), T-count per block-encoding call (:func:`t_per_call`, oracle
  model stated there), QROM costs (:func:`qroam_toffoli`);
* the classical cost of the same T steps (:func:`classical_flops`; per-layer counting from a torch
  model in :mod:`qcarleman.training.flops`).

Error split (stated choice): the target ℓ2 error ε of the downloaded parameters is split in halves
between the QLSA output state and tomography. Carleman truncation error is not included here
(it is measured by the emulation, not costed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ...carleman.blocks import block_sums, inverse_norm_bound
from ...errors import UsageError
from . import physical as _phys

__all__ = [
    "Figure",
    "ResourceEstimate",
    "estimate",
    "estimate_history",
    "carleman_dim",
    "history_dim",
    "qubits_for",
    "norm_A_bound",
    "sparsity_L",
    "alpha_lcu",
    "alpha_sparse",
    "kappa_bound",
    "queries_hhl",
    "queries_cks",
    "cks_parameters",
    "queries_costa",
    "filter_degree",
    "queries_jennings",
    "aa_rounds",
    "tomography_shots",
    "qroam_toffoli",
    "t_per_call",
    "classical_flops",
    "SOLVERS",
    "COSTA_BOUND",
    "COSTA_EMPIRICAL",
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
_SRC_KP = (
    "Kerenidis & Prakash, arXiv:1808.09266, Thm. 4.3 / Alg. 4.1 (ℓ2 vector-state tomography: "
    "N = 36 d ln d/δ² samples per stage, error ≤ √7·δ w.p. ≥ 1 − 1/d^0.83); constants as recalled, "
    "see docs/resources.md"
)


@dataclass(frozen=True)
class Figure:
    """One cost figure: its value, the formula that produced it and the source of the formula.
    ``approx`` is empty for exact/derived figures and names the assumption otherwise."""

    value: Any
    formula: str
    source: str
    approx: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


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
    """κ(L) ≤ (1 + ‖A‖)·‖L⁻¹‖-bound (ALGORITHM.md §3)."""
    return (1.0 + norm_A) * inverse_norm_bound(norm_A, p, steps=T)


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


_SOLVER_SOURCES = {
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


def classical_flops(n_active: int, batch_size: int, T: int) -> float:
    """FLOPs of T sparse SGD steps from counts only: 6·n·B per step (forward 2nB multiply-adds,
    backward 4nB; Kaplan et al., arXiv:2001.08361, Sec. 2.1, counting only active weights)."""
    return 6.0 * n_active * batch_size * T


# ------------------------------------------------------------------------------------------
# the whole bill
# ------------------------------------------------------------------------------------------
@dataclass
class ResourceEstimate:
    """The bill: ``figures`` (name → :class:`Figure`), the physical estimates and the inputs.

    ``physical`` is the qsharp estimator's result (None when not installed or beyond its range);
    ``surface_code`` the documented simple model (always computed); ``wall_clock`` compares the
    quantum and classical run times with the stated rates."""

    inputs: dict
    figures: dict[str, Figure]
    physical: dict | None
    surface_code: dict
    wall_clock: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.figures[name].value

    def to_dict(self) -> dict:
        f = self.figures
        return {
            "inputs": self.inputs,
            "logical_qubits": f["logical_qubits"].value,
            "alpha": f["alpha"].value,
            "kappa": f["kappa"].value,
            "kappa_eff": f["kappa_eff"].value,
            "queries": {s: f[f"queries_{s}"].value for s in SOLVERS},
            "solver": self.inputs["solver"],
            "aa_rounds": f["aa_rounds"].value,
            "shots": f["shots"].value,
            "block_encoding_calls": f["block_encoding_calls"].value,
            "t_count": f["t_count"].value,
            "classical_flops": f["classical_flops"].value,
            "physical": _strip_raw(self.physical),
            "surface_code": self.surface_code,
            "wall_clock": self.wall_clock,
            "figures": {k: v.to_dict() for k, v in f.items()},
            "source": {k: v.source for k, v in f.items()},
        }

    def summary(self) -> str:
        """A plain-text table: figure, value, formula, [approximation label]."""
        lines = ["figure                    value          formula  [assumption]"]
        for name, fig in self.figures.items():
            v = fig.value
            vs = f"{v:.4g}" if isinstance(v, float) else str(v)
            tag = f"  [{fig.approx}]" if fig.approx else ""
            lines.append(f"{name:<25} {vs:<14} {fig.formula}{tag}")
        lines.append("")
        lines.append(_physical_line("qsharp estimator", self.physical))
        lines.append(_physical_line("surface-code model", self.surface_code))
        w = self.wall_clock
        if w:
            lines.append(
                f"wall-clock: quantum {w['quantum_s']:.3g} s ({w['quantum_source']}) vs "
                f"classical {w['classical_s']:.3g} s at {w['flop_rate']:.3g} FLOP/s "
                f"→ {w['winner']}"
            )
        return "\n".join(lines)


def _strip_raw(phys: dict | None) -> dict | None:
    return None if phys is None else {k: v for k, v in phys.items() if k != "raw"}


def _physical_line(label: str, phys: dict | None) -> str:
    if phys is None:
        why = (
            "T-count beyond its 64-bit range (> 1e17)"
            if _phys.qsharp_available()
            else "not installed: pip install 'qcarleman[estimator]'"
        )
        return f"{label}: no result ({why})"
    if not phys.get("feasible"):
        return f"{label}: infeasible ({phys.get('reason')})"
    return (
        f"{label}: {phys['physical_qubits']:.4g} physical qubits, runtime "
        f"{phys['runtime_ns'] * 1e-9:.4g} s, code distance {phys['code_distance']}, "
        f"{phys['t_factories']} T factories"
    )


def estimate(
    *,
    n: int,
    T: int,
    N: int = 2,
    P: int | None = None,
    p: int | None = None,
    epsilon: float = 1e-2,
    kappa: float | None = None,
    rho: float | None = None,
    norm_L: float | None = None,
    f0_norm: float | None = None,
    F2_norm: float | None = None,
    gamma: float | str = "auto",
    sparsity: int | None = None,
    max_entry: float | None = None,
    row_sparsity: int | None = None,
    col_sparsity: int | None = None,
    momentum: bool = False,
    symmetric: bool = False,
    p_succ: float | None = None,
    shots: int | None = None,
    bits: int = 32,
    oracle: str = "arithmetic",
    entry_mults: int = 4,
    solver: str = "costa-empirical",
    batch_size: int = 128,
    flops_per_step: float | None = None,
    flop_rate: float = 1e15,
    logical_rate: float | None = None,
    qubit: str = "qubit_gate_ns_e3",
    error_budget: float = 1e-3,
    use_qsharp: bool = True,
    provenance: dict[str, str] | None = None,
) -> ResourceEstimate:
    r"""Resource estimate of one quantum segment of T steps (ALGORITHM.md §7).

    Problem: n active parameters (P total), horizon T, Carleman order N, p idle steps (default
    T), target ℓ2 error ε of the downloaded parameters. Conditioning: ``kappa`` (and ``norm_L``
    = ‖L‖ if known; else 1, its lower bound, which over-estimates ‖L⁻¹‖), or the §3 bound from
    ρ = ‖F1‖ (default 1 + 1/T: the almost-dissipative boundary), ‖f0‖, ‖F2‖ and γ.
    Block-encoding: sparse access when ``row_sparsity`` and ``max_entry`` of L are given
    (α = √(s_r s_c)·max|L_ij|), else the LCU of tensor terms (:func:`alpha_lcu`) with α1 = ρ
    (optimistic: assumes s·max|F1_ij| = ‖F1‖) and α0 = ‖f0‖/γ, α2 = γ‖F2‖.
    ``sparsity`` s = nonzeros per row of H (default n: dense Hessian), used for the structure
    of L and the QROM table size n(1 + s + s²).
    Classical: ``flops_per_step`` (from :func:`qcarleman.training.flops.model_flops`) or 6·n·B.
    Wall-clock: quantum = logical depth (= T-count) × logical cycle time of the surface-code
    estimate (or / ``logical_rate`` if given); classical = FLOPs / ``flop_rate``.
    ``provenance`` maps input names (rho, f0_norm, F2_norm, sparsity) to how they were obtained
    (e.g. measured on a checkpoint by :func:`qcarleman.analysis.estimate_run.measure_run`); it
    becomes the ``source`` of the input figures, which otherwise say "user input" or "assumed".
    """
    _check_inputs(n, T, N, epsilon, solver, P)
    p = T if p is None else int(p)
    d = 2 * n if momentum else n
    s = n if sparsity is None else int(sparsity)
    s = max(1, min(s, n))
    approx: dict[str, str] = {}
    eps_q = eps_t = epsilon / 2
    fig: dict[str, Figure] = {}

    dimY = history_dim(d, N, T, p, symmetric)
    m = qubits_for(dimY)
    fig["dim_Y"] = Figure(
        dimY, "(T+p+1)·Σ_j d^j" + (" (symmetric)" if symmetric else ""), "ALGORITHM.md §2–§3"
    )
    fig["system_qubits"] = Figure(m, "⌈log2 dim Y⌉", "ALGORITHM.md §7")

    # -- conditioning ------------------------------------------------------------------
    have_nl = f0_norm is not None and F2_norm is not None
    if gamma == "auto":
        g = math.sqrt(f0_norm / F2_norm) if have_nl and f0_norm > 0 and F2_norm > 0 else 1.0
    else:
        g = float(gamma)
    a0 = (f0_norm or 0.0) / g
    a2 = g * (F2_norm or 0.0)
    rho_v = rho
    if kappa is None:
        if rho_v is None:
            rho_v = 1.0 + 1.0 / T
            approx["kappa"] = "ρ = 1 + 1/T assumed (almost-dissipative boundary); pass rho or kappa"
        nA = norm_A_bound(rho_v, N, f0_norm or 0.0, F2_norm or 0.0, g)
        inv = inverse_norm_bound(nA, p, steps=T)
        kap = (1 + nA) * inv
        if not have_nl:
            approx["kappa"] = (
                approx.get("kappa", "") + "; ‖f0‖, ‖F2‖ not given: linear part only"
            ).lstrip("; ")
        fig["norm_A"] = Figure(nA, "‖(Σ_a Π‖G_{a_i}‖)_{jk}‖₂", "ALGORITHM.md §2; norm_bound")
        used = [k for k in ("rho", "f0_norm", "F2_norm") if k in (provenance or {})]
        fig["kappa"] = Figure(
            kap,
            "(1+‖A‖)·Σ_k max_s Π‖A‖",
            "ALGORITHM.md §3 (κ bound)" + (f" from measured {', '.join(used)}" if used else ""),
            approx.get("kappa", ""),
        )
    else:
        kap = float(kappa)
        inv = kap / (norm_L if norm_L is not None else 1.0)
        fig["kappa"] = Figure(kap, "given", "user input")
        if norm_L is None:
            approx["inv"] = "‖L‖ not given: ‖L⁻¹‖ ≤ κ used (‖L‖ ≥ 1)"
    prov = provenance or {}
    if rho is not None:
        fig["rho"] = Figure(rho_v, "ρ = ‖F1‖ = max_ν |1 − ηλ_ν|", prov.get("rho", "user input"))
    elif kappa is None:
        fig["rho"] = Figure(rho_v, "1 + 1/T", "assumed (ALGORITHM.md §6)", "almost-dissipative")
    else:
        rho_v = 1.0
        fig["rho"] = Figure(rho_v, "1", "assumed (α1 of the LCU)", "ρ = 1 assumed with given κ")
    for name, val, form in (
        ("f0_norm", f0_norm, "‖f0‖ = η‖g‖"),
        ("F2_norm", F2_norm, "‖F2‖ = sup_{‖u‖=1} ‖F2(u, u)‖"),
    ):
        if val is not None:
            fig[name] = Figure(float(val), form, prov.get(name, "user input"))
    fig["sparsity_H"] = Figure(
        s,
        "nonzeros per row of H (s)",
        prov.get("sparsity", "user input") if sparsity is not None else "assumed",
        "s = n (dense Hessian) assumed" if sparsity is None else "",
    )

    # -- block-encoding -------------------------------------------------------------------
    s2 = min(s * s, d * d)
    s_r, s_c = sparsity_L(N, s, s2, d)
    if row_sparsity is not None and max_entry is not None:
        sr = int(row_sparsity)
        sc = int(col_sparsity) if col_sparsity is not None else sr
        alpha = alpha_sparse(sr, sc, float(max_entry))
        fig["sparsity_L"] = Figure(
            (sr, sc), "given (rows, columns)", "user input", "" if col_sparsity else "s_c = s_r"
        )
        fig["alpha"] = Figure(alpha, "√(s_r s_c)·max|L_ij|", "Gilyén et al. 2019, Lemma 48")
        model = "sparse"
    else:
        fig["sparsity_L"] = Figure(
            (s_r, s_c),
            "1 + max_j Σ_k Σ_a Π nnz(G_{a_i}) (rows; columns)",
            "ALGORITHM.md §2–§3",
            "s = n (dense Hessian) assumed" if sparsity is None else "",
        )
        alpha = alpha_lcu(N, a0, rho_v, a2)
        fig["alpha"] = Figure(
            alpha,
            "1 + Σ_{j,k} Σ_a Π α_{a_i}, α = (‖f0‖/γ, ρ, γ‖F2‖)",
            "LCU: Childs & Wiebe 2012; Gilyén et al. 2019 Lemma 30",
            "α1 = ‖F1‖ (s·max|F1_ij| = ‖F1‖ assumed)" + ("" if have_nl else "; α0 = α2 = 0"),
        )
        model = "lcu"
    kap_eff = max(alpha * inv, 1.0)
    fig["kappa_eff"] = Figure(
        kap_eff,
        "α·‖L⁻¹‖",
        "GSLW 2019 (singular values of L/α in [1/κ_eff, 1])",
        approx.get("inv", ""),
    )

    # -- QLSA -----------------------------------------------------------------------------
    for name in SOLVERS:
        if name == "jennings" and eps_q > 0.24:
            continue
        src, formula = _SOLVER_SOURCES[name]
        fig[f"queries_{name}"] = Figure(
            solver_queries(name, kap_eff, eps_q),
            formula,
            src,
            "empirical constant, not a bound" if name == "costa-empirical" else "",
        )
    Q = fig[f"queries_{solver}"].value

    if p_succ is None:
        ps = (p + 1) / ((T + p + 1) * N)
        ps_note = "P_succ = (p+1)/((T+p+1)·N) assumed (equal norm per step and level)"
    else:
        ps, ps_note = float(p_succ), ""
    R = aa_rounds(ps)
    fig["p_succ"] = Figure(ps, "(p+1)‖ŷ1(T)‖²/‖Y‖²", "ALGORITHM.md §3", ps_note)
    fig["aa_rounds"] = Figure(R, "⌊π/(4 asin √P_succ)⌋", "Brassard et al. 2002, Thm. 2")
    M = tomography_shots(d, eps_t) if shots is None else int(shots)
    fig["shots"] = Figure(
        M,
        "2⌈36 d ln d/δ²⌉, δ = (ε/2)/√7" if shots is None else "given",
        _SRC_KP if shots is None else "user input",
    )
    calls = float(M) * (2 * R + 1) * Q
    fig["block_encoding_calls"] = Figure(
        calls, f"shots·(2m+1)·Q[{solver}]", "ALGORITHM.md §7 (tomography × AA × QLSA)"
    )

    # -- T-count and qubits -----------------------------------------------------------------
    n_data = n * (1 + s + s2)
    tc, tform = t_per_call(m, bits, N, oracle, entry_mults, n_data)
    fig["t_per_call"] = Figure(
        tc, tform, "Gilyén et al. 2019 L.48; Gidney 2018; Sanders et al. 2019; LKS 2018", oracle
    )
    # State preparation of the right-hand side c = (0, b(0), …): per level N a QROAM load of
    # the n entries of f0 (Low, Kliuchnikov, Schaeffer 2018 state preparation), once per query
    # (adiabatic solvers reflect about |c⟩ every walk step) or per AA application (HHL/CKS).
    t_prep = N * 4.0 * qroam_toffoli(d, bits) + 16.0 * m
    preps = Q if solver in ("costa", "costa-empirical", "jennings") else 1.0
    fig["t_per_prep"] = Figure(t_prep, "N·4·QROAM(d, b) + 16m", "Low, Kliuchnikov, Schaeffer 2018")
    t_total = calls * tc + float(M) * (2 * R + 1) * preps * t_prep
    fig["t_count"] = Figure(
        t_total, "calls·T_call + shots·(2m+1)·preps·T_prep", "ALGORITHM.md §7", oracle
    )
    anc_be = m + 3 + m + N * bits + bits
    if oracle == "qrom":
        anc_be += bits * int(max(1, math.sqrt(n_data / bits)))
    anc_q = {
        "hhl": qubits_for(max(2, math.ceil(kap_eff / eps_q))) + 1,
        "cks": qubits_for(cks_parameters(max(kap_eff, 1.0 + 1e-9), eps_q)[1] + 1) + 1,
    }.get(solver, 3)
    lq = (m + 1) + anc_be + anc_q + 1
    fig["logical_qubits"] = Figure(
        lq,
        "(m+1 dilation) + (2m+3 + (N+1)b block-encoding) + QLSA ancillas + 1 (tomography control)",
        "Gilyén et al. 2019 L.48; Costa et al. 2022; Kerenidis & Prakash 2018",
        "ancilla counts are a stated model",
    )
    fig["upload_t"] = Figure(
        4.0 * qroam_toffoli(n, bits),
        "4·QROAM(n, b)",
        "ALGORITHM.md §5; Low, Kliuchnikov, Schaeffer 2018",
    )
    if P is not None:
        fig["upload_qram_depth"] = Figure(qubits_for(P), "⌈log2 P⌉", "ALGORITHM.md §5 (QRAM)")

    # -- classical ----------------------------------------------------------------------------
    if flops_per_step is not None:
        cf = float(flops_per_step) * T
        fig["classical_flops"] = Figure(
            cf, "T·(fwd+bwd FLOPs per step, per layer)", "qcarleman.training.flops (3× forward)"
        )
    else:
        cf = classical_flops(n, batch_size, T)
        fig["classical_flops"] = Figure(cf, "6·n·B·T", "Kaplan et al. 2020, Sec. 2.1")
    if P is not None:
        fig["classical_flops_dense"] = Figure(
            classical_flops(P, batch_size, T), "6·P·B·T", "Kaplan et al. 2020 (dense kernels)"
        )

    # -- physical and wall clock -----------------------------------------------------------
    qs = _phys.qsharp_estimate(lq, t_total, 0, qubit, error_budget) if use_qsharp else None
    sc = _phys.surface_code_model(lq, t_total, 0, qubit, error_budget)
    wall = wall_clock(t_total, cf, qs, sc, lq, qubit, error_budget, flop_rate, logical_rate)
    inputs = {
        "n": n, "P": P, "T": T, "N": N, "p": p, "d": d, "epsilon": epsilon, "kappa": kappa,
        "rho": rho_v, "norm_L": norm_L, "f0_norm": f0_norm, "F2_norm": F2_norm, "gamma": g,
        "sparsity": s, "momentum": momentum, "symmetric": symmetric, "p_succ": ps, "bits": bits,
        "oracle": oracle, "entry_mults": entry_mults, "solver": solver,
        "block_encoding": model, "batch_size": batch_size, "flop_rate": flop_rate,
        "logical_rate": logical_rate, "qubit": qubit, "error_budget": error_budget,
    }  # fmt: skip
    return ResourceEstimate(inputs, fig, qs, sc, wall)


def wall_clock(
    t_count, flops, qs, sc, logical_qubits, qubit, error_budget, flop_rate, logical_rate=None
) -> dict:
    """Quantum seconds = T-count (logical depth) × logical cycle time (qsharp if it answered, else
    the surface-code model, extended beyond d = 50 if needed) or T-count / ``logical_rate``;
    classical seconds = FLOPs / ``flop_rate``."""
    if logical_rate is not None:
        q_s, src = t_count / logical_rate, f"stated logical rate {logical_rate:.3g} op/s"
    else:
        phys = qs if qs is not None else sc
        if not phys.get("feasible"):
            phys = _phys.surface_code_model(
                logical_qubits, t_count, 0, qubit, error_budget, max_distance=199
            )
        if phys.get("feasible"):
            q_s = phys["runtime_ns"] * 1e-9
            src = f"{phys['producer']} (d = {phys['code_distance']})"
        else:
            q_s, src = math.inf, "no surface-code distance ≤ 199 suffices"
    c_s = flops / flop_rate
    return {
        "quantum_s": q_s,
        "quantum_source": src,
        "classical_s": c_s,
        "flop_rate": flop_rate,
        "winner": "quantum" if q_s < c_s else "classical",
        "ratio_quantum_over_classical": q_s / c_s if c_s > 0 else math.inf,
    }


def estimate_history(hist, epsilon: float = 1e-2, kappa_method: str = "bound", **kwargs):
    """:func:`estimate` with the structure read off an emulated
    :class:`~qcarleman.HistorySystem`: d, T, p, N, symmetric, row sparsity and max entry of L
    (sparse access), κ by ``kappa_method`` and P_succ (exact, from the solved history)."""
    lifted = hist.lifted
    kw = dict(
        n=lifted.d,
        T=hist.T,
        N=getattr(lifted, "order", 1),
        p=hist.idle,
        epsilon=epsilon,
        kappa=hist.kappa(kappa_method),
        symmetric=getattr(lifted, "symmetric", False),
        row_sparsity=hist.row_sparsity(),
        max_entry=hist.max_entry(),
        p_succ=hist.success_probability,
    )
    kw.update(kwargs)
    return estimate(**kw)


def _check_inputs(n, T, N, epsilon, solver, P=None) -> None:
    if int(n) < 1 or int(T) < 1 or int(N) < 1:
        raise UsageError(f"n = {n}, T = {T}, N = {N} must be positive integers; pass n, T, N ≥ 1")
    if P is not None and int(P) < int(n):
        raise UsageError(
            f"P = {P} parameters is fewer than the n = {n} active ones; pass P ≥ n (--params)"
        )
    if not 0 < epsilon < 1:
        raise UsageError(f"target error ε = {epsilon} is invalid; pass 0 < ε < 1")
    if solver not in SOLVERS:
        raise UsageError(f"QLSA solver {solver!r} is unknown; use one of {', '.join(SOLVERS)}")
