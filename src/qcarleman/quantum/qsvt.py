r"""QSVT matrix inversion (Gilyén, Su, Low, Wiebe, STOC 2019, arXiv:1806.01838, §3.5 / Cor. 69;
Martyn, Rossi, Tan, Chuang, PRX Quantum 2, 040203, 2021, §III.C) — emulated.

**Polynomial** (:func:`inverse_polynomial`). Following Childs–Kothari–Somma (SIAM J. Comput. 46,
1920, 2017, Lemma 17–19): f_b(x) = (1 − (1 − x²)^b)/x is odd, bounded, and on [1/κ, 1]
|x f_b(x) − 1| = (1 − x²)^b ≤ e^{−b/κ²}. We take b = ⌈κ² ln(2/ε)⌉ (half the relative error
budget ε), interpolate f_b at Chebyshev nodes with the smallest odd degree whose measured relative
error max_{x∈[1/κ,1]} |x·P̃(x)/K̃ − 1| ≤ ε (CKS's Chebyshev-truncation bound
D ≤ 2⌈√(b ln(4b/ε))⌉+1 is reported as ``degree_bound``), keep only the odd coefficients, and
scale by K = max_{[−1,1]} |P̃| so that |P| ≤ 1 on [−1, 1] (needed for QSVT angles). Then
P(x) ≈ 1/(K' x) on [1/κ, 1] with K' = K/(1 ± ε).

**Non-Hermitian inversion (U/V swap).** With A = L/α = U Σ Vᵀ (α ≥ ‖L‖₂), QSVT with an odd P on
a block encoding of A† = V Σ Uᵀ gives P^{(SV)}(A†) = V P(Σ) Uᵀ ≈ V Σ⁻¹ Uᵀ / K' = A⁻¹/K'
(Gilyén et al. Def. 16). So we block-encode Lᵀ/α. The flag (block-encoding ancilla 0) holds
y = P^{(SV)}(A†)|ĉ⟩ ≈ α L⁻¹c/(K'‖c‖); hence ‖x‖ ≈ (K'‖c‖/α)·‖y‖ (``norm_scale``).

**Methods.** ``svd`` (matrix level, dim ≤ 4096; default up to 1024): apply P to Σ from a
dense SVD. ``chebyshev``
(matrix level, any size, sparse): the same polynomial through the singular-value Chebyshev
recurrence T_{k+1} = 2 A^{(k)} T_k − T_{k−1}, alternating A† (odd k+1) and A (even k+1), one
sparse matvec per degree. ``circuit`` (small systems, PennyLane, degree ≤ 401): phases from
:func:`qsp_phases` (Newton's method in the Chebyshev basis — the monomial route through
``qml.poly_to_angles`` is ill-conditioned and fails from degree ≈ 50), converted to QSVT
angles and checked in NumPy against P; ``qml.QSVT`` on ``qml.BlockEncode(Lᵀ/α)``; PennyLane's
QSVT puts P in the *real part* of the top-left block, so we add one ancilla and apply the
sequence with φ (ancilla 0) and −φ (ancilla 1) between Hadamards: (U_φ + U_φ*)/2 has top-left
block exactly P(A†) for real A (Gilyén et al. Cor. 18 / Dong et al. 2021 "QSP phase factors").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.polynomial import chebyshev as C

from ..errors import UsageError, check_memory
from .exact import SolveResult, exact_solution, state_fidelity

__all__ = [
    "InversePolynomial",
    "inverse_polynomial",
    "qsp_phases",
    "qsvt_response",
    "qsvt_angles",
    "blockencode_alpha",
    "qsvt_apply_svd",
    "qsvt_apply_chebyshev",
    "qsvt_apply_operator",
    "qsvt_circuit",
    "qsvt_solve",
    "draw_qsvt",
]

SVD_MAX_DIM = 4096  # method="svd" (dense SVD) up to 2^12
SMALL_DIM = 1024  # default method "svd" and exact singular values up to this size
CIRCUIT_MAX_DEGREE = 401  # QSP phases and circuits tested to degree ≥ 200
ANGLE_TOL = 1e-9  # max |P_angles(x) − P(x)| on [−1, 1] accepted for circuit angles


@dataclass
class InversePolynomial:
    """Odd P(x) ≈ 1/(K x) on [1/κ, 1] with |P| ≤ 1 on [−1, 1] (Chebyshev coefficients)."""

    cheb: np.ndarray  # Chebyshev coefficients (even ones exactly 0)
    kappa: float
    epsilon: float
    b: int
    K: float  # P(x)·x ≈ 1/K on [1/κ, 1]
    error: float  # measured max relative error of K·x·P(x) − 1 on [1/κ, 1]
    degree_bound: int  # CKS Lemma 19 bound on the degree

    @property
    def degree(self) -> int:
        return len(self.cheb) - 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return C.chebval(x, self.cheb)


def _f_b(x: np.ndarray, b: int) -> np.ndarray:
    """(1 − (1 − x²)^b)/x, evaluated stably; 0 at x = 0."""
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    nz = x != 0
    out[nz] = -np.expm1(b * np.log1p(-np.minimum(x[nz] ** 2, 1.0))) / x[nz]
    return out


def _max_abs(coef: np.ndarray) -> float:
    """max_{[−1,1]} |P| from the critical points (real roots of P') and the endpoints."""
    roots = C.chebroots(C.chebder(coef))
    pts = np.concatenate([[-1.0, 1.0], roots[(np.abs(roots.imag) < 1e-9)].real])
    pts = np.clip(pts, -1.0, 1.0)
    return float(np.max(np.abs(C.chebval(pts, coef))))


def inverse_polynomial(kappa: float, epsilon: float = 1e-2) -> InversePolynomial:
    """Odd polynomial approximation of 1/x on [1/κ, 1] with relative error ≤ ε (module doc)."""
    if not (kappa >= 1 and np.isfinite(kappa)):
        raise UsageError(f"kappa must be a finite number >= 1; got {kappa}")
    if not (0 < epsilon < 1):
        raise UsageError(f"epsilon must be in (0, 1); got {epsilon}")
    b = int(np.ceil(kappa**2 * np.log(2.0 / epsilon)))
    bound = 2 * int(np.ceil(np.sqrt(b * np.log(4 * b / epsilon)))) + 1
    xs = np.cos(np.linspace(0, np.pi / 2, 4001))
    xs = xs[xs >= 1.0 / kappa]
    xs = np.concatenate([xs, [1.0 / kappa]])

    def fit(deg: int) -> tuple[np.ndarray, float]:
        # numpy's stub types func as scalar -> scalar; chebinterpolate calls it on node arrays.
        coef = C.chebinterpolate(lambda x: _f_b(x, b), deg)  # type: ignore[type-var]
        coef[0::2] = 0.0
        rel = xs * C.chebval(xs, coef)
        err = float(np.max(np.abs(rel / np.median(rel) - 1.0)))  # best constant P·x ≈ 1/K
        return coef, err

    deg = max(3, int(np.sqrt(b)) | 1)
    while True:
        coef, err = fit(deg)
        if err <= epsilon or deg > 4 * bound + 100:
            break
        deg = max(deg + 2, int(deg * 1.15) | 1)
    if err > epsilon:
        raise UsageError(
            f"could not reach relative error {epsilon} with degree ≤ {deg}; use a larger epsilon"
        )
    # shrink: smallest odd degree in the last step that still meets epsilon
    for d in range(max(3, int(deg / 1.15) | 1), deg, 2):
        c2, e2 = fit(d)
        if e2 <= epsilon:
            coef, err = c2, e2
            break
    cheb = coef / (_max_abs(coef) * (1.0 + 1e-9))
    KP = float(1.0 / np.median(xs * C.chebval(xs, cheb)))
    return InversePolynomial(
        cheb=np.trim_zeros(cheb, "b"),
        kappa=float(kappa),
        epsilon=float(epsilon),
        b=b,
        K=KP,
        error=err,
        degree_bound=bound,
    )


def _wx_products(phi: np.ndarray, x: np.ndarray):
    """Prefix L_k = A_0 W A_1 … A_{k−1} W and suffix R_k = W A_{k+1} … W A_d products of the
    QSP sequence U(x) = A_0 W A_1 W … W A_d, A_k = e^{iφ_k Z}, W(x) = e^{i arccos(x) X};
    shapes (d+1, m, 2, 2). U = L_k A_k R_k for every k."""
    d, m = phi.size - 1, x.size
    W = np.empty((m, 2, 2), dtype=complex)
    W[:, 0, 0] = W[:, 1, 1] = x
    W[:, 0, 1] = W[:, 1, 0] = 1j * np.sqrt(1.0 - x**2)
    A = np.stack([np.exp(1j * phi), np.exp(-1j * phi)], axis=1)  # diagonals, (d+1, 2)
    L = np.empty((d + 1, m, 2, 2), dtype=complex)
    R = np.empty_like(L)
    L[0] = R[d] = np.eye(2)
    for k in range(1, d + 1):
        L[k] = (L[k - 1] * A[k - 1][None, None, :]) @ W
    for k in range(d - 1, -1, -1):
        R[k] = W @ (A[k + 1][None, :, None] * R[k + 1])
    return L, R, A


def qsp_phases(cheb, *, tol: float = 1e-13, max_iter: int = 60) -> np.ndarray:
    """Symmetric QSP phases Φ = (φ_0, …, φ_d) of a real odd polynomial P = Σ_k c_k T_k with
    |P| < 1 on [−1, 1], in the Wx convention: Re⟨0|e^{iφ_0 Z} Π_{k=1}^{d} W(x) e^{iφ_k Z}|0⟩ = P(x).

    Chebyshev basis throughout (no monomial coefficients): Newton's method on the (d+1)/2 free
    phases of a symmetric Φ (φ_k = φ_{d−k}), matching P at the positive Chebyshev nodes
    x_j = cos((2j−1)π/(2(d+1))), from Φ_0 = (π/4, 0, …, 0, π/4) (Dong, Meng, Whaley, Lin, PRA 103,
    042419 (2021) §III; Newton iteration: Dong, Lin, Ni, Wang, arXiv:2307.12468, which converges
    for every ‖P‖_∞ < 1). The Jacobian is exact: ∂U/∂φ_k = L_k·iZ·A_k·R_k (:func:`_wx_products`).
    Raises :class:`UsageError` when P is not odd or the iteration does not reach ``tol``.
    """
    c = np.trim_zeros(np.asarray(cheb, dtype=float), "b")
    d = c.size - 1
    if d < 1 or d % 2 == 0 or np.any(c[0::2] != 0):
        raise UsageError("QSP phases need an odd polynomial (odd degree, even coefficients 0)")
    half = (d + 1) // 2
    x = np.cos((2 * np.arange(1, half + 1) - 1) * np.pi / (4 * half))
    target = C.chebval(x, c)
    psi = np.zeros(half)
    psi[0] = np.pi / 4
    z = np.array([1.0, -1.0])
    err = np.inf
    for _ in range(max_iter):
        phi = np.concatenate([psi, psi[::-1]])
        L, R, A = _wx_products(phi, x)
        resid = (A[0, 0] * R[0][:, 0, 0]).real - target
        err = float(np.max(np.abs(resid)))
        if err <= tol:
            return phi
        dU = np.einsum("kmj,kj,kmj->km", L[:, :, 0, :], 1j * z[None, :] * A, R[:, :, :, 0]).real
        J = (dU[:half] + dU[::-1][:half]).T  # symmetric phases: φ_k and φ_{d−k} move together
        try:
            psi = psi - np.linalg.solve(J, resid)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(psi)):
            break
    raise UsageError(
        f"QSP phases for degree {d} did not converge (residual {err:.2g}); the polynomial may "
        "reach |P| = 1: use a larger epsilon or method='svd'/'chebyshev'"
    )


def qsvt_response(angles, x) -> np.ndarray:
    """Re⟨0|U_QSVT|0⟩ of PennyLane's ``qml.QSVT(qml.BlockEncode([[x]]), [qml.PCPhase(φ_j, dim=1)])``
    evaluated in NumPy: the projector phases diag(e^{iφ_j}, e^{−iφ_j}) alternate with the
    reflection [[x, √(1−x²)], [√(1−x²), −x]] (its own adjoint). Vectorized over x."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    s = np.sqrt(1.0 - x**2)
    v = np.zeros((x.size, 2), dtype=complex)  # U|0⟩, built gate by gate
    v[:, 0] = 1.0
    for j, a in enumerate(np.asarray(angles, dtype=float)):
        if j > 0:
            v = np.stack([x * v[:, 0] + s * v[:, 1], s * v[:, 0] - x * v[:, 1]], axis=1)
        v = v * np.array([np.exp(1j * a), np.exp(-1j * a)])
    return v[:, 0].real


def qsvt_angles(poly: InversePolynomial) -> tuple[np.ndarray, InversePolynomial]:
    """QSVT phases φ_0..φ_d for ``qml.QSVT`` with ``qml.PCPhase`` projectors.

    :func:`qsp_phases` (Chebyshev basis, Newton) gives the Wx-convention phases, converted with
    ``qml.transform_angles(Φ, "QSP", "QSVT")`` (Martyn et al., PRX Quantum 2, 040203 (2021)
    App. A.2). Every angle set is checked in NumPy (:func:`qsvt_response`) at 2(d+1) Chebyshev
    nodes of [−1, 1]: it must reproduce P to ``ANGLE_TOL``. If it does not, P is shrunk by the
    first factor in 0.999, 0.99, 0.9 that works (this only lowers the success probability; K and
    the returned polynomial are updated). Returns (angles, polynomial actually implemented);
    every failure is a :class:`UsageError`.
    """
    import pennylane as qml

    if poly.degree > CIRCUIT_MAX_DEGREE:
        raise UsageError(
            f"QSVT circuit degree {poly.degree} > {CIRCUIT_MAX_DEGREE}; use method='svd' or "
            "'chebyshev' (matrix level) or a larger epsilon"
        )
    nodes = np.cos(np.pi * (np.arange(2 * poly.degree + 2) + 0.5) / (2 * poly.degree + 2))
    for shrink in (1.0, 0.999, 0.99, 0.9):
        p = replace(poly, cheb=poly.cheb * shrink, K=poly.K / shrink)
        try:
            phases = qsp_phases(p.cheb)
        except UsageError:
            continue
        angles = np.asarray(qml.transform_angles(phases, "QSP", "QSVT"), dtype=float)
        if np.max(np.abs(qsvt_response(angles, nodes) - p(nodes))) <= ANGLE_TOL:
            return angles, p
    raise UsageError(
        f"no accurate QSVT angles for degree {poly.degree}; use a larger epsilon or "
        "method='svd'/'chebyshev' (matrix level)"
    )


def blockencode_alpha(L) -> float:
    """Smallest α for which ``qml.BlockEncode(Lᵀ/α)`` does not renormalize:
    α = √max(‖LLᵀ‖_∞, ‖LᵀL‖_∞) (PennyLane's BlockEncode norm), which is ≥ ‖L‖₂."""
    L = sp.csr_matrix(L)
    a = max(spla.norm(L @ L.T, np.inf), spla.norm(L.T @ L, np.inf))
    return float(np.sqrt(a) * (1 + 1e-12))


def dense_svd(L) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U, Σ, Vᵀ of L (dense; memory predicted first)."""
    n = L.shape[0]
    check_memory(8.0 * n * n * 5, f"dense SVD of a {n}×{n} system")
    return np.linalg.svd(L.toarray() if sp.issparse(L) else np.asarray(L, dtype=float))


def qsvt_apply_svd(
    L, v: np.ndarray, poly: InversePolynomial, alpha: float, svd: tuple | None = None
) -> np.ndarray:
    """P^{(SV)}(Lᵀ/α) v = V P(Σ/α) Uᵀ v through a dense SVD L = UΣVᵀ (module doc).
    ``svd``: a precomputed :func:`dense_svd` of L."""
    U, S, Vt = svd if svd is not None else dense_svd(L)
    return Vt.T @ (poly(S / alpha) * (U.T @ v))


def qsvt_apply_operator(matvec, rmatvec, v: np.ndarray, poly: InversePolynomial, alpha: float):
    r"""P^{(SV)}(Lᵀ/α) v with L given only through ``matvec`` (u ↦ Lu) and ``rmatvec``
    (u ↦ Lᵀu): the singular-value Chebyshev recurrence T_0 = v, T_1 = A†v,
    T_{k+1} = 2·(A if k+1 even else A†)·T_k − T_{k−1} with A = L/α, one product per degree
    (Gilyén et al. 2019, Lemma 9 / Def. 16: for odd P, P^{(SV)}(A†) = V P(Σ) Uᵀ). This is the
    matrix-free form of the QSVT output; :func:`qsvt_apply_svd` is its dense counterpart."""
    if poly.degree < 1:
        raise UsageError("the inverse polynomial has degree 0; it must be odd (degree ≥ 1)")
    inv = 1.0 / float(alpha)
    prev = np.asarray(v, dtype=float)
    cur = inv * rmatvec(prev)
    out = poly.cheb[1] * cur
    for k in range(1, poly.degree):
        step = matvec(cur) if (k + 1) % 2 == 0 else rmatvec(cur)
        prev, cur = cur, 2.0 * inv * step - prev
        if (k + 1) % 2 == 1:
            out = out + poly.cheb[k + 1] * cur
    return out


def qsvt_apply_chebyshev(L, v: np.ndarray, poly: InversePolynomial, alpha: float) -> np.ndarray:
    """Same as :func:`qsvt_apply_svd` by the singular-value Chebyshev recurrence of
    :func:`qsvt_apply_operator` on the sparse matrix L (sparse matvecs only)."""
    A = sp.csr_matrix(L)
    At = A.T.tocsr()
    return qsvt_apply_operator(lambda u: A @ u, lambda u: At @ u, v, poly, alpha)


def qsvt_circuit(A: np.ndarray, b: np.ndarray, angles: np.ndarray):
    """Quantum function for P^{(SV)}(A)|b⟩ on wires 0 (real-part ancilla), 1 (block-encoding
    ancilla), 2.. (system, wire 2 most significant). A: 2^m×2^m with BlockEncode norm ≤ 1.
    Post-select wires 0 and 1 on |0⟩. Returns (qfunc, n_wires)."""
    import pennylane as qml

    m = int(np.log2(A.shape[0]))
    enc = list(range(1, m + 2))
    sysw = list(range(2, m + 2))
    dim = A.shape[0]
    seq = _flatten(
        qml.QSVT(
            qml.BlockEncode(A, wires=enc), [qml.PCPhase(a, dim=dim, wires=enc) for a in angles]
        ),
        (qml.PCPhase, qml.BlockEncode, qml.ops.Adjoint),
    )

    def qfunc() -> None:
        qml.StatePrep(b, wires=sysw)
        qml.Hadamard(0)
        for op in seq:
            if isinstance(op, qml.PCPhase):
                phi = op.parameters[0]
                qml.ctrl(qml.PCPhase(phi, dim=dim, wires=enc), control=0, control_values=[0])
                qml.ctrl(qml.PCPhase(-phi, dim=dim, wires=enc), control=0, control_values=[1])
            else:
                qml.apply(op)
        qml.Hadamard(0)

    return qfunc, m + 2


def _flatten(op, leaves: tuple) -> list:
    """Decompose ``op`` recursively until only ``leaves`` types remain (in circuit order)."""
    if isinstance(op, leaves):
        return [op]
    return [leaf for sub in op.decomposition() for leaf in _flatten(sub, leaves)]


def _pad_pow2(L: np.ndarray) -> np.ndarray:
    n = L.shape[0]
    N = 1 << int(np.ceil(np.log2(max(n, 2))))
    if N == n:
        return L
    out = np.zeros((N, N))
    out[:n, :n] = L
    out[n:, n:] = np.eye(N - n) * np.linalg.norm(L, 2)
    return out


def qsvt_solve(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    L,
    c: np.ndarray,
    post_select: np.ndarray,
    *,
    epsilon: float = 1e-2,
    method: str | None = None,
    alpha: float | None = None,
    kappa: float | None = None,
    shots: int | None = None,
    seed: int | None = 0,
) -> SolveResult:
    """QSVT inversion of L x = c with post-selection (module doc).

    method: None → "svd" for dim ≤ 1024 else "chebyshev"; "svd" works up to 4096;
    "circuit" simulates the gates (dim ≤ 1024).
    alpha: block-encoding normalization (default ‖L‖₂, or :func:`blockencode_alpha` for circuits).
    kappa: κ(L); required above dim 1024 unless method="svd" (then the singular values are
    exact). The polynomial is built for κ(L/α) = α·κ/‖L‖₂.
    """
    L = sp.csr_matrix(L, dtype=float)
    n = L.shape[0]
    method = method or ("svd" if n <= SMALL_DIM else "chebyshev")
    if method not in ("svd", "chebyshev", "circuit"):
        raise UsageError(f"qsvt method must be 'svd', 'chebyshev' or 'circuit'; got {method!r}")
    if method == "circuit" and n > SMALL_DIM:
        raise UsageError("the QSVT circuit is for small systems (dim ≤ 1024); use method='svd'")
    if method == "svd" and n > SVD_MAX_DIM:
        raise UsageError(f"method='svd' is for dim ≤ {SVD_MAX_DIM}; use method='chebyshev'")
    svd = dense_svd(L) if method == "svd" else None
    if svd is not None or n <= SMALL_DIM:
        s = svd[1] if svd is not None else np.linalg.svd(L.toarray(), compute_uv=False)
        norm2, smin = float(s[0]), float(s[-1])
        kappa = kappa if kappa is not None else norm2 / smin
    else:
        if kappa is None:
            raise UsageError(f"dim {n} > {SMALL_DIM}: pass kappa (e.g. history.kappa())")
        norm2 = float(spla.svds(L, k=1, return_singular_vectors=False)[0])
        smin = norm2 / kappa
    if alpha is None:
        alpha = blockencode_alpha(L) if method == "circuit" else norm2 * (1 + 1e-12)
    if alpha < norm2 * (1 - 1e-9):
        raise UsageError(f"alpha={alpha:.4g} < ‖L‖₂={norm2:.4g}; pass alpha ≥ ‖L‖₂")
    kappa_A = alpha / smin
    poly = inverse_polynomial(kappa_A, epsilon)
    c = np.asarray(c, dtype=float)
    chat = c / np.linalg.norm(c)
    resources = {
        "degree": poly.degree,
        "degree_bound_cks": poly.degree_bound,
        "block_encoding_calls": poly.degree,
        "alpha": alpha,
        "kappa_block_encoded": kappa_A,
        "poly_relative_error": poly.error,
        "poly_K": poly.K,
        "system_qubits": int(np.ceil(np.log2(max(n, 2)))),
        "qubits": int(np.ceil(np.log2(max(n, 2)))) + 2,  # + block-encoding and LCU ancillas
        "method": method,
    }
    notes = [f"odd polynomial ≈ 1/x on [1/κ, 1], κ={kappa_A:.4g}, relative error ≤ {epsilon}"]
    measured = None
    if method == "svd":
        y = qsvt_apply_svd(L, chat, poly, alpha, svd=svd)
        notes.append("matrix-level emulation: P applied to singular values (SVD)")
    elif method == "chebyshev":
        y = qsvt_apply_chebyshev(L, chat, poly, alpha)
        notes.append("matrix-level emulation: singular-value Chebyshev recurrence")
    else:
        y, measured, extra, poly = _run_circuit(L, chat, poly, alpha, post_select, shots, seed)
        resources.update(extra)
        resources["poly_K"] = poly.K  # after any shrink for the angle solver
        notes.append("QSVT circuit simulated on lightning.qubit (state vector)")
    ys = y[post_select]
    p_flag = float(y @ y)
    p_succ = float(ys @ ys)
    x = exact_solution(L, c)
    res = SolveResult(
        backend="qsvt",
        state=ys / np.sqrt(p_succ),
        success_probability=p_succ,
        fidelity=state_fidelity(x[post_select], ys),
        norm_scale=float(poly.K * np.linalg.norm(c) / alpha),
        flag_probability=p_flag,
        kappa=kappa,
        resources=resources,
        notes=notes,
    )
    if measured is not None:
        assert shots is not None  # a measured P_succ exists only when shots were taken
        res.measured_success_probability, res.shots = measured, int(shots)
    return res


def _circuit(L, chat: np.ndarray, poly: InversePolynomial, alpha: float):
    """The circuit of ``method="circuit"``: (qfunc, wires, padded A = Lᵀ/α, the polynomial
    actually implemented by the angles)."""
    n = L.shape[0]
    A = _pad_pow2(L.toarray()).T / alpha  # block-encode A† = Lᵀ/α
    b = np.zeros(A.shape[0])
    b[:n] = chat
    angles, poly = qsvt_angles(poly)
    qfunc, nw = qsvt_circuit(A, b, angles)
    return qfunc, nw, A, poly


def draw_qsvt(L, c, *, epsilon: float = 1e-2, decimals: int | None = 2, max_length: int = 100):
    """Text drawing (``qml.draw``) of the circuit that ``qsvt_solve(L, c, ...,
    method="circuit", epsilon=epsilon)`` simulates: state preparation of ĉ, the real-part
    Hadamards on wire 0, and the QSVT sequence of controlled projector phases and block encodings
    of Lᵀ/α (module docstring); dim ≤ 1024."""
    import pennylane as qml

    L = sp.csr_matrix(L, dtype=float)
    if L.shape[0] > SMALL_DIM:
        raise UsageError(f"the QSVT circuit is for small systems (dim ≤ {SMALL_DIM})")
    alpha = blockencode_alpha(L)
    smin = float(np.linalg.svd(L.toarray(), compute_uv=False)[-1])
    c = np.asarray(c, dtype=float)
    qfunc, *_ = _circuit(L, c / np.linalg.norm(c), inverse_polynomial(alpha / smin, epsilon), alpha)
    return qml.draw(qfunc, decimals=decimals, max_length=max_length)()


def _run_circuit(L, chat, poly, alpha, post_select, shots, seed):
    import pennylane as qml

    n = L.shape[0]
    K0 = poly.K
    qfunc, nw, A, poly = _circuit(L, chat, poly, alpha)
    check_memory(16.0 * 2**nw * 4, f"QSVT simulation on {nw} qubits")
    dev = qml.device("lightning.qubit", wires=nw)

    def circuit():
        qfunc()
        return qml.state()

    qnode = qml.QNode(circuit, dev)
    psi = np.asarray(qnode()).reshape(2, 2, A.shape[0])[0, 0, :n]
    if np.max(np.abs(psi.imag)) > 1e-8:
        raise UsageError(
            "QSVT circuit output is not real (the real-part LCU failed); use method='svd'"
        )
    specs = qml.specs(qnode)().resources
    extra = {
        "poly_shrink": float(K0 / poly.K),
        "qubits": nw,
        "ancilla_qubits": 2,
        "gate_counts": dict(specs.gate_types),
        "num_gates": int(specs.num_gates),
        "depth": int(specs.depth),
    }
    measured = None
    if shots:
        sdev = qml.device("lightning.qubit", wires=nw, seed=seed)

        def sampled():
            qfunc()
            return qml.sample(wires=list(range(nw)))

        smp = np.asarray(qml.set_shots(qml.QNode(sampled, sdev), shots=int(shots))())
        idx = smp.reshape(-1, nw) @ (1 << np.arange(nw - 1, -1, -1))
        ok = (idx >> (nw - 2) == 0) & np.isin(idx & ((1 << (nw - 2)) - 1), post_select)
        measured = float(ok.mean())
    return psi.real, measured, extra, poly
