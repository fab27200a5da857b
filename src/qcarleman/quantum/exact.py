r"""The result type of every emulated QLSA and the exact (ideal) solver (ALGORITHM.md §3–§4).

:class:`SolveResult` is what :func:`qcarleman.quantum.solve.solve_linear` returns for every
backend; :func:`exact_solution` (sparse LU / forward substitution) is the classical answer every
emulated solver is compared with; :func:`exact_backend` is the ideal QLSA whose output is the
normalized |L⁻¹c⟩ on the post-selection set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..display import html_table, short_repr
from ..errors import UsageError, check_finite

__all__ = [
    "SolveResult",
    "as_system",
    "as_indices",
    "exact_solution",
    "exact_backend",
    "state_fidelity",
    "reduce_copies",
]


@dataclass
class SolveResult:
    """Output of one emulated QLSA run (see the module docstring for each field)."""

    backend: str
    state: np.ndarray
    success_probability: float
    fidelity: float
    norm_scale: float
    flag_probability: float = 1.0
    kappa: float | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    measured_success_probability: float | None = None
    shots: int | None = None
    notes: list[str] = field(default_factory=list)
    #: History systems only (set by :func:`solve`): the reduced output state |ŷ1(T)⟩ (length d),
    #: the number of copies p+1 and the scale γ.
    output_state: np.ndarray | None = None
    copies: int = 1
    scale: float = 1.0

    @property
    def output_probability(self) -> float:
        """P(output set | solver flag): the history post-selection probability as realized."""
        return self.success_probability / self.flag_probability if self.flag_probability else 0.0

    @property
    def solution_norm(self) -> float:
        """‖x restricted to the post-selection set‖ = norm_scale·√(success probability)."""
        return float(self.norm_scale * np.sqrt(self.success_probability))

    def output_vector(self) -> np.ndarray:
        """γ·ν·|ŷ1(T)⟩ with ν = solution_norm/√(p+1): the emulated z_T in original units
        (ALGORITHM.md §3, §5), using the exact norm this backend implies (no shot noise)."""
        if self.output_state is None:
            raise UsageError("output_vector needs a history-system result; call solve(history)")
        nu = self.solution_norm / np.sqrt(self.copies)
        return self.scale * nu * self.output_state

    def __repr__(self) -> str:
        head = {k: v for k, v in self.summary().items() if k not in ("resources", "notes")}
        return short_repr("SolveResult", head | {"state": self.state})

    def _repr_html_(self) -> str:
        s = self.summary()
        return html_table(
            f"SolveResult of the {self.backend} QLSA (ALGORITHM.md §3–§4)",
            {k: v for k, v in s.items() if k not in ("resources", "notes")} | {"state": self.state},
            "fidelity against the exact solution; P_succ = success_probability "
            "(post-selection); plot: qcarleman.report.plots.plot_solve(result)",
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field, arrays as lists (complex as [re, im] pairs); inverse of
        :meth:`from_dict`."""

        def arr(a):
            if a is None:
                return None
            a = np.asarray(a)
            return np.stack([a.real, a.imag], -1).tolist() if np.iscomplexobj(a) else a.tolist()

        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(state=arr(self.state), output_state=arr(self.output_state))
        out.update(resources=dict(self.resources), notes=list(self.notes))
        out["complex"] = bool(np.iscomplexobj(self.state))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SolveResult:
        """Rebuild from :meth:`to_dict`."""
        d = dict(d)
        cplx = d.pop("complex", False)

        def arr(v):
            if v is None:
                return None
            a = np.asarray(v, dtype=float)
            return a[..., 0] + 1j * a[..., 1] if cplx else a

        return cls(**(d | {"state": arr(d["state"]), "output_state": arr(d["output_state"])}))

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able summary (no arrays)."""
        return {
            "backend": self.backend,
            "fidelity": self.fidelity,
            "success_probability": self.success_probability,
            "flag_probability": self.flag_probability,
            "output_probability": self.output_probability,
            "measured_success_probability": self.measured_success_probability,
            "shots": self.shots,
            "kappa": self.kappa,
            "solution_norm": self.solution_norm,
            "resources": self.resources,
            "notes": list(self.notes),
        }


def as_system(L, c) -> tuple[sp.csr_matrix, np.ndarray]:
    if not (sp.issparse(L) or isinstance(L, np.ndarray)):
        raise UsageError("L must be a NumPy array or a scipy.sparse matrix")
    L = sp.csr_matrix(L, dtype=float)
    c = np.asarray(c, dtype=float).ravel()
    if L.shape[0] != L.shape[1] or L.shape[0] != c.size:
        raise UsageError(
            f"L must be square and match c: got L {L.shape} and c of length {c.size}; "
            "pass the history matrix and its right-hand side"
        )
    check_finite("L", L)
    check_finite("c", c)
    if not np.any(c):
        raise UsageError("the right-hand side c is zero; the solution state is undefined")
    return L, c


def as_indices(post_select, dim: int) -> np.ndarray:
    idx = np.arange(dim) if post_select is None else np.asarray(post_select, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= dim:
        raise UsageError(f"post_select must be a non-empty 1-D index array into 0..{dim - 1}")
    if np.unique(idx).size != idx.size:
        raise UsageError("post_select has repeated indices; pass each position once")
    return idx


def exact_solution(L, c) -> np.ndarray:
    """x = L⁻¹c by sparse LU (forward substitution when L is lower triangular)."""
    L, c = as_system(L, c)
    if sp.tril(L).nnz == L.nnz:
        return spla.spsolve_triangular(L, c, lower=True)
    return np.asarray(spla.spsolve(L.tocsc(), c), dtype=float)


def state_fidelity(a: np.ndarray, b: np.ndarray) -> float:
    """|⟨a|b⟩|² / (‖a‖²‖b‖²): overlap of two states, global phase/sign ignored."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(abs(np.vdot(a, b)) ** 2 / (na * nb) ** 2)


def reduce_copies(state: np.ndarray, copies: int) -> np.ndarray:
    """Reduced state of the level-1 register after tracing out the time register.

    ``state`` holds ``copies`` consecutive blocks (one per t = T..T+p). Tracing out t leaves
    ρ = Σ_t b_t b_tᵀ; we return its dominant eigenvector (the top right singular vector of the
    blocks), sign-aligned with Σ_t b_t. For an exact solve all blocks are equal and this is
    exactly |ŷ1(T)⟩.
    """
    B = np.asarray(state).reshape(copies, -1)
    _, _, vt = np.linalg.svd(B, full_matrices=False)
    v = vt[0]
    if np.real(np.vdot(v, B.sum(axis=0))) < 0:
        v = -v
    return v / np.linalg.norm(v)


def exact_backend(L, c, idx, kappa) -> SolveResult:
    x = exact_solution(L, c)
    xs = x[idx]
    norm_y = float(np.linalg.norm(x))
    p_out = float(xs @ xs) / norm_y**2
    if p_out == 0:
        raise UsageError("the exact solution vanishes on post_select; nothing to read out")
    if kappa is None and L.shape[0] <= 1024:
        kappa = float(np.linalg.cond(L.toarray()))
    return SolveResult(
        backend="exact",
        state=xs / np.linalg.norm(xs),
        success_probability=p_out,
        fidelity=1.0,
        norm_scale=norm_y,
        flag_probability=1.0,
        kappa=kappa,
        resources={"dim": L.shape[0], "system_qubits": int(np.ceil(np.log2(max(L.shape[0], 2))))},
        notes=["ideal QLSA output |L^-1 c> (exact linear algebra)"],
    )
