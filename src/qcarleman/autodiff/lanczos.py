r"""Lanczos and stochastic Lanczos quadrature on the model's device, in the model's dtype.

The torch twins of :func:`qcarleman.spectral.lanczos` and :func:`qcarleman.spectral.slq` (same
mathematics, same result types) for Hessian operators (:class:`~.operators.LossOperators`, its
distributed twin, or any symmetric torch matrix): the Krylov basis and its full
reorthogonalization are torch tensors on the operator's device in its dtype, so a step moves no
vector between devices or dtypes; only the α_j, β_j scalars leave the device, and the small
tridiagonal eigenproblem is solved in float64 (``scipy.linalg.eigh_tridiagonal``). SLQ runs all
probes of a block as one recurrence (one block product per step, batched reorthogonalization).

**Certifying the largest eigenvalue.** A small Ritz residual r_i = β_m|s_{m,i}| proves that
*some* eigenvalue lies within r_i of θ_i (Parlett, Thm 11.5.1) — not that θ_1 approximates λ_max:
a start vector nearly orthogonal to the top eigenvector lets Lanczos converge to λ_2 first with a
tiny residual. Lanczos never overshoots (θ_1 ≤ λ_max, Cauchy interlacing), so a certificate needs
an upper bound on λ_max − θ_1. We use a Chebyshev argument (in the spirit of Kuczyński &
Woźniakowski, SIAM J. Matrix Anal. Appl. 13, 1094 (1992)): suppose λ_max ≥ θ_1 + ε, all
eigenvalues are ≥ λ_low (λ_low = θ_min − r_min, the bottom Ritz interval), and the unit start
vector has a component c ≥ t/√n in the top eigenspace. The Krylov space K_m contains p(A)v with
p = T_{m−1}∘ℓ, ℓ mapping [λ_low, θ_1 + ε/2] onto [−1, 1]; its Rayleigh quotient exceeds θ_1 as
soon as X = T_{m−1}(1 + ε/(θ_1 + ε/2 − λ_low))² t²/n > 2(θ_1 − λ_low)/ε, contradicting
θ_1 = max over K_m of the Rayleigh quotient. So λ_max < θ_1 + ε for the smallest such ε,
``bound_largest``. For a random Gaussian start, P(c < t/√n) ≤ t√(2/π) for every n (the density of
c is largest at 0 and at most √((n−1)/(2π))), so with t = δ√(π/2) the bound holds with
probability ≥ 1 − δ (``delta``); with a user-given ``v0`` it holds when v0 has that top
component. λ_min is certified the same way on −A (using θ_max + r_max). ``certify`` stops the run
only when ``bound_largest`` (and/or ``bound_smallest``, per ``which``) is ≤ certify·max|θ| as well
as the residual test; the bounds are reported either way. Cost: about
ln(√(2/certify)·√n/δ)/√(2·certify) steps for a gapless spectrum — the price of certainty.

**λ_max in few products** (issue 14): ``rule="gap"`` stops on the Kato–Temple bound
r_1²/gap (:func:`qcarleman.spectral.gap_bounds`: residual plus the gap to the next Ritz
interval), which certifies λ_max − θ_1 once the top two eigenvalues are in the Krylov space, and
``v0="gradient"`` starts from g/‖g‖ + z/‖z‖ (g the loss gradient, free from the cached graph; z
Gaussian): the gradient lies mostly in the top eigenspace of the Hessian (Gur-Ari, Roberts &
Dyer, arXiv:1812.04754), and the random half keeps the Chebyshev certificate — the top component
of (a + c) with c of symmetric unimodal density is small no more often than c's (Anderson's
inequality), and ‖g/‖g‖ + z/‖z‖‖ ≤ 2, so the certificate holds with t halved. Measured on the
benchmarks' MLP and CNN: λ_max to 1e-3 in 8–9 products from the gradient start with the gap rule,
against 12–16 with the residual rule from a random start (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ..errors import UsageError, check_memory
from ..errors import memory_limit as _memory_limit
from ..spectral import LanczosResult, SLQResult, lanczos_steps, ritz_converged, ritz_extremes

__all__ = ["CertifiedLanczosResult", "torch_operator", "lanczos", "slq", "chebyshev_bound"]

Tensor = torch.Tensor
_DGKS = 0.717  # reorthogonalize again while ‖w‖ drops below this fraction (as in spectral.py)
_CPU_BLOCK_BYTES = 8 * 2**20  # SLQ block working set on the CPU (see slq)


@dataclass
class CertifiedLanczosResult(LanczosResult):
    """:class:`~qcarleman.spectral.LanczosResult` plus the certificates of the module docstring:
    λ_max < largest[0] + bound_largest and λ_min > smallest[0] − bound_smallest, each with
    probability ≥ 1 − delta over the random start. Vectors are torch tensors (n, k)."""

    bound_largest: float = math.inf
    bound_smallest: float = math.inf
    delta: float = 1e-3


class _Op:
    """A symmetric operator as block products on a device: ``mm(W)`` for W of shape (n, b),
    ``matvec(v)`` for one vector (a fresh tensor, without the block's copies);
    ``gradient()`` the loss gradient where the operator is a Hessian (for ``v0="gradient"``)."""

    def __init__(  # noqa: PLR0913 — the operator's parts
        self,
        mm: Callable[[Tensor], Tensor],
        n: int,
        dtype,
        device,
        gradient: Callable[[], Tensor] | None = None,
        mv: Callable[[Tensor], Tensor] | None = None,
    ):
        self.mm, self.n, self.dtype, self.device = mm, int(n), dtype, torch.device(device)
        self.gradient, self._mv = gradient, mv

    def matvec(self, v: Tensor) -> Tensor:
        if self._mv is not None:
            return self._mv(v)
        return self.mm(v[:, None])[:, 0].contiguous()


def torch_operator(A) -> _Op:
    """Block products of a Hessian operator (``hvp_batch``) or a symmetric (n, n) tensor."""
    if isinstance(A, _Op):
        return A
    if isinstance(A, Tensor):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise UsageError(f"matrix has shape {tuple(A.shape)}; pass a square matrix")
        return _Op(lambda W: A @ W, A.shape[0], A.dtype, A.device)
    if hasattr(A, "hvp_batch") and hasattr(A, "theta"):
        gradient = (lambda: A.grad().detach()) if hasattr(A, "grad") else None
        return _Op(
            lambda W: A.hvp_batch(W).detach(),
            A.n,
            A.theta.dtype,
            A.theta.device,
            gradient,
            mv=lambda v: A.hvp(v).detach(),
        )
    raise UsageError(
        f"cannot use a {type(A).__name__} as a torch operator; pass LossOperators or a tensor"
    )


def _log_cheb(k: int, y: float) -> float:
    """log T_k(y) for y ≥ 1: T_k(y) = cosh(k·arccosh y)."""
    z = k * math.acosh(y)
    return z + math.log1p(math.exp(-2.0 * z)) - math.log(2.0)


def chebyshev_bound(  # noqa: PLR0913 — the bound's inputs
    top: float, low: float, m: int, n: int, delta: float, overlap: float = 1.0
) -> float:
    r"""Smallest ε with T_{m−1}(1 + ε/(top + ε/2 − low))²·t²/n > 2(top − low)/ε, t = δ√(π/2)·
    ``overlap``: after m Lanczos steps with top Ritz value ``top`` and spectrum ≥ ``low``,
    λ_max < top + ε with probability ≥ 1 − δ (module docstring; ``overlap`` = 1/2 for the gradient
    start). inf when no ε qualifies."""
    S = top - low
    if not S > 0:
        return 0.0  # one-point spectrum seen: nothing above
    log_t2n = 2.0 * math.log(delta * math.sqrt(math.pi / 2.0) * overlap) - math.log(n)

    def ok(eps: float) -> bool:
        x = 1.0 + eps / (top + eps / 2.0 - low)
        return 2.0 * _log_cheb(m - 1, x) + log_t2n > math.log(2.0 * S / eps)

    lo, hi = -40.0, math.log(S) + math.log(4.0 * n / delta**2) + 5.0  # log ε bracket
    lo += math.log(S)
    if not ok(math.exp(hi)):
        return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(math.exp(mid)) else (mid, hi)
    return math.exp(hi)


def lanczos(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
    A,
    k: int = 1,
    *,
    which: str = "both",
    maxiter: int | None = None,
    tol: float = 1e-10,
    rule: str = "residual",
    certify: float | None = None,
    delta: float = 1e-3,
    seed: int | None = 0,
    v0: Tensor | str | None = None,
    reorth: bool = True,
    return_vectors: bool = False,
    memory_limit: int | str | None = None,
) -> CertifiedLanczosResult:
    r"""The k largest and k smallest eigenvalues by Lanczos with full reorthogonalization
    (Golub & Van Loan Alg. 10.1.1, §10.3.1), on the operator's device and dtype.

    Stops when each requested Ritz value has residual β_m|s_{m,i}| ≤ tol·max|θ| (``rule="gap"``:
    gap bound r²/gap, :func:`qcarleman.spectral.gap_bounds`) and, with ``certify``, when the
    certified bound(s) of the module docstring are ≤ certify·max|θ|; or after ``maxiter`` steps
    (default min(n, 300)). ``v0``: a start vector, ``"gradient"`` (module docstring; Hessian
    operators only) or None (Gaussian from ``seed``).

    On breakdown the Ritz values are exact and the run restarts orthogonally to the basis if
    fewer than k were found. Memory: the basis, (maxiter+1)·n elements, is checked first.

    ``reorth=False`` keeps two basis vectors instead of maxiter + 1 and does not reorthogonalize:
    for a few extreme eigenvalues to a modest tol this loses nothing — in finite precision the
    basis loses orthogonality only as a Ritz pair converges, the converged values stay accurate,
    and spurious copies appear after convergence (Paige 1976, 1980; Parlett §13.6), where they
    make the gap rule fall back on the residual (safe). No restart after a breakdown and no Ritz
    vectors then.

    λ_max of a Hessian to 1e-3 in few products (``ops``: a
    :class:`~qcarleman.autodiff.operators.LossOperators` with ``hvp_mode="cached"``)::

        r = lanczos(ops, which="largest", tol=1e-3, rule="gap", v0="gradient", reorth=False)
        r.largest[0], r.error_largest[0], r.matvecs
    """
    op = torch_operator(A)
    n = op.n
    m_max = lanczos_steps(n, k, which=which, rule=rule, maxiter=maxiter)
    if not 0 < delta < 1:
        raise UsageError(f"delta = {delta} is invalid; use a failure probability in (0, 1)")
    if return_vectors and not reorth:
        raise UsageError("Ritz vectors need the kept basis; use reorth=True with return_vectors")
    rows = m_max + 1 if reorth else 2  # the basis, or the last two vectors (row i at i % rows)
    esize = torch.empty(0, dtype=op.dtype).element_size()
    check_memory(esize * n * rows, f"the Lanczos basis (n = {n}, {rows} rows)", memory_limit)
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    v, overlap = _start_vector(v0, gen, op)
    stop = _Stop(
        k=k, which=which, tol=tol, rule=rule, certify=certify, delta=delta, overlap=overlap
    )
    V = torch.empty(rows, n, dtype=op.dtype, device=op.device)
    V[0] = v
    alpha, beta = np.zeros(m_max), np.zeros(m_max)
    anorm, matvecs, state = 0.0, 0, None
    for j in range(m_max):
        vj = V[j % rows]
        w = op.matvec(vj)  # fresh; updated in place below
        matvecs += 1
        a = torch.dot(vj, w)
        w.addcmul_(vj, a, value=-1)
        if j > 0:
            w.add_(V[(j - 1) % rows], alpha=-float(beta[j - 1]))
        if reorth:
            w, alpha[j], b = _reorthogonalize(V, j, w, a)
        else:
            alpha[j], b = torch.stack([a, torch.linalg.vector_norm(w)]).to(torch.float64).tolist()
        anorm = max(anorm, abs(alpha[j]), b)
        breakdown = b <= _eps(op.dtype) * anorm
        m = j + 1
        last = m == m_max
        if breakdown or last or m < 100 or m % max(1, m // 10) == 0:
            state = _check(alpha, beta, m, 0.0 if breakdown else b, n, breakdown, stop)
            if state["done"] or last:
                break
        if breakdown:
            restart = _restart_vector(op, V, m, gen) if reorth else None
            if restart is None:  # basis already spans R^n (or was not kept)
                break
            beta[j] = 0.0
            V[m] = restart
        else:
            beta[j] = b
            torch.div(w, b, out=V[m % rows])
    assert state is not None
    theta, S, res, m = state["theta"], state["S"], state["res"], state["m"]
    fields, lo, hi = ritz_extremes(theta, res, k, m)
    out = CertifiedLanczosResult(
        **fields,
        matvecs=matvecs,
        converged=bool(state["done"]),
        bound_largest=state["up"],
        bound_smallest=state["down"],
        delta=float(delta),
    )
    if return_vectors:
        Sd = torch.as_tensor(S, dtype=op.dtype).to(op.device)
        out.vectors_largest = V[:m].T @ Sd[:, hi.tolist()]
        out.vectors_smallest = V[:m].T @ Sd[:, lo.tolist()]
    return out


@dataclass(frozen=True, kw_only=True)
class _Stop:
    """The stopping rule of :func:`lanczos`: k values at the ``which`` end(s) with error (per
    ``rule``) ≤ tol·max|θ| and, with ``certify``, certified bounds ≤ certify·max|θ| at probability
    1 − delta (``overlap``: the start's factor on t, see :func:`chebyshev_bound`)."""

    k: int
    which: str
    tol: float
    rule: str
    certify: float | None
    delta: float
    overlap: float


def _start_vector(v0: Tensor | str | None, gen: torch.Generator, op: _Op) -> tuple[Tensor, float]:
    """The unit start vector on the operator's device and dtype, and its certificate factor
    (module docstring): ``v0``; g/‖g‖ + z/‖z‖ for ``"gradient"`` (z drawn in the operator's
    dtype, on the device); or z, Gaussian from ``gen`` in float64."""
    n = op.n
    if isinstance(v0, str):
        if v0 != "gradient":
            raise UsageError(f"v0 = {v0!r} is invalid; use 'gradient', a vector or None")
        if op.gradient is None:
            raise UsageError("v0 = 'gradient' needs a Hessian operator (LossOperators); pass v0")
        z = torch.randn(n, generator=gen, dtype=op.dtype).to(op.device)
        g = op.gradient().reshape(-1).to(dtype=op.dtype, device=op.device)
        gn, zn = torch.stack([torch.linalg.vector_norm(g), torch.linalg.vector_norm(z)]).tolist()
        if gn > 0 and math.isfinite(gn):
            v = z.div_(zn).add_(g, alpha=1.0 / gn)
            return v.div_(torch.linalg.vector_norm(v)), 0.5
        return z.div_(zn), 1.0
    if v0 is None:
        v = torch.randn(n, generator=gen, dtype=torch.float64)
    else:
        v = torch.as_tensor(v0).reshape(-1).to(torch.float64).cpu()
        if v.shape != (n,) or not float(v.norm()) > 0:
            raise UsageError(f"v0 must be a nonzero vector of length {n}")
    return (v / v.norm()).to(dtype=op.dtype, device=op.device), 1.0


def _reorthogonalize(V: Tensor, j: int, w: Tensor, a: Tensor) -> tuple[Tensor, float, float]:
    """w against V[:j+1] by classical Gram–Schmidt, twice at most (DGKS test, as in
    :func:`qcarleman.spectral.lanczos`); returns w, α_j and ‖w‖ (only the scalars leave the
    device)."""
    prev = torch.linalg.vector_norm(w)
    for _ in range(2):
        w.addmv_(V[: j + 1].T, V[: j + 1] @ w, alpha=-1)  # in place, no n-vector temporaries
        bt = torch.linalg.vector_norm(w)
        ab = torch.stack([a, bt, prev]).to(torch.float64).tolist()  # scalars only
        if ab[1] > _DGKS * ab[2]:
            break
        prev = bt
    return w, ab[0], ab[1]


def _restart_vector(op: _Op, V: Tensor, m: int, gen: torch.Generator) -> Tensor | None:
    """After breakdown: a random unit vector orthogonal to V[:m], or None if V[:m] spans R^n."""
    n = op.n
    r = torch.randn(n, generator=gen, dtype=torch.float64).to(op.dtype).to(op.device)
    for _ in range(2):
        r = r - V[:m].T @ (V[:m] @ r)
    nr = float(torch.linalg.vector_norm(r))
    if nr <= 1e-4 * math.sqrt(n) * _eps(op.dtype) ** 0.5:
        return None
    return r / nr


def _eps(dtype) -> float:
    """Relative size of β at which the Krylov space counts as invariant, per dtype."""
    return 1e-12 if dtype == torch.float64 else 1e-6


def _check(alpha, beta, m, b, n, breakdown, stop: _Stop) -> dict:
    """Ritz values, residual bounds, certificates and the stopping decision after m steps."""
    k, which, certify, delta = stop.k, stop.which, stop.certify, stop.delta
    theta, S = eigh_tridiagonal(alpha[:m], beta[: m - 1])
    res = b * np.abs(S[-1])
    scale = max(float(np.max(np.abs(theta))), 0.0)
    if breakdown:  # the Krylov space is invariant: its extreme Ritz values are eigenvalues
        up = down = 0.0 if m == n else math.inf
    else:
        up = chebyshev_bound(theta[-1], theta[0] - res[0], m, n, delta, stop.overlap)
        down = chebyshev_bound(-theta[0], -theta[-1] - res[-1], m, n, delta, stop.overlap)
    want = [ritz_converged(theta, res, k, which, stop.tol, stop.rule)]
    if certify is not None:
        if which in ("both", "smallest"):
            want.append(down <= certify * scale)
        if which in ("both", "largest"):
            want.append(up <= certify * scale)
    done = all(want)
    return dict(theta=theta, S=S, res=res, m=m, done=done, up=up, down=down)


def probe_block(n: int, m: int, dist: str, seed: int | None, dtype, device) -> Tensor:
    """m probes as rows of an (m, n) tensor on ``device`` (Rademacher ±1 or Gaussian), drawn by
    a seeded CPU generator (the same probes on every device) and moved once."""
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    if dist == "rademacher":
        Z = torch.randint(0, 2, (m, n), generator=gen).to(torch.float64) * 2 - 1
    elif dist == "gaussian":
        Z = torch.randn(m, n, generator=gen, dtype=torch.float64)
    else:
        raise UsageError(f"unknown probe distribution {dist!r}; use 'rademacher' or 'gaussian'")
    return Z.to(dtype=dtype, device=device)


def slq(  # noqa: PLR0913 — the signature of qcarleman.spectral.slq
    A,
    *,
    probes: int = 16,
    iters: int = 80,
    dist: str = "rademacher",
    seed: int | None = 0,
    reorth: bool = True,
    batch: int | None = None,
    deflate: tuple | None = None,
    memory_limit: int | str | None = None,
) -> SLQResult:
    r"""Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017, Alg. 1) on the operator's
    device and dtype: ``batch`` probes (default: all that fit; on the CPU as many as keep the
    block's working vectors within 8 MiB) advance as one block recurrence with full
    reorthogonalization (per probe). Same contract as
    :func:`qcarleman.spectral.slq` (including ``deflate = (values, vectors)``, vectors (n, k)
    tensors or arrays); nodes and weights come back as float64 arrays.

    ``reorth=False`` keeps no basis (memory 6·n per probe instead of (iters + 6)·n: SLQ-256 of a
    10M-parameter model needs 0.2 GB instead of 10 GB in float32) and spends no time
    reorthogonalizing; the Gauss rules then hold ghost copies of converged nodes but their
    quadrature stays accurate for smooth f (Knizhnerman 1996; Chen, Trogdon & Ubaru, ICML 2021,
    "Analysis of stochastic Lanczos quadrature for spectrum approximation").
    """
    op = torch_operator(A)
    n = op.n
    if int(probes) != probes or probes < 1:
        raise UsageError(f"probes = {probes} is invalid; use at least 1 probe")
    if int(iters) != iters or iters < 1:
        raise UsageError(f"iters = {iters} is invalid; use at least 1 Lanczos step")
    U, dvals = None, np.zeros(0)
    if deflate is not None:
        dvals = np.asarray(deflate[0], dtype=float).reshape(-1)
        U = torch.as_tensor(deflate[1]).to(dtype=op.dtype, device=op.device).reshape(n, -1)
        if U.shape[1] != dvals.size:
            raise UsageError(f"deflate has {dvals.size} values but {U.shape[1]} vectors")
        if dvals.size >= n:
            raise UsageError(f"cannot deflate {dvals.size} of {n} eigenvalues; deflate fewer")
    k = dvals.size
    m = min(int(iters), n - k)
    esize = torch.empty(0, dtype=op.dtype).element_size()
    per_probe = esize * n * ((m if reorth else 0) + 6)
    if batch is None:  # all probes that fit; on the CPU only as many as keep the three working
        # vectors (q, w, q_prev) of the block cache-sized: at n ≈ 1M one probe at a time was
        # measured faster than a block of 4 (benchmarks/RESULTS.md, issue 14)
        fit = (_memory_limit(memory_limit) // 2) // per_probe
        if op.device.type == "cpu":
            fit = min(fit, _CPU_BLOCK_BYTES // (3 * esize * n))
        batch = int(max(1, min(probes, fit)))
    batch = int(max(1, min(batch, probes)))
    check_memory(batch * per_probe, f"SLQ with {batch} probes × {m} steps (n = {n})", memory_limit)
    Z = probe_block(n, probes, dist, seed, op.dtype, op.device)
    if U is not None:
        Z = Z - (Z @ U) @ U.T
    nodes, weights, owner, qf = [dvals], [np.full(k, 1.0 / n)], [np.full(k, -1)], []
    share = (n - k) / n / probes
    matvecs = 0
    for lo in range(0, probes, batch):
        rules, mv = _block_rules(op, Z[lo : lo + batch], m, U, reorth)
        matvecs += mv
        for c, (th, w) in enumerate(rules):
            nodes.append(th)
            weights.append(share * w / w.sum())
            owner.append(np.full(th.size, lo + c))
            qf.append(float(np.sum(w * th) / w.sum()))
    return SLQResult(
        nodes=np.concatenate(nodes),
        weights=np.concatenate(weights),
        probe=np.concatenate(owner),
        n=n,
        probes=int(probes),
        iters=m,
        matvecs=matvecs,
        dist=dist,
        reorth=bool(reorth),
        deflated=k,
        quad_forms=np.array(qf),
    )


def _block_rules(op: _Op, Z: Tensor, m: int, U: Tensor | None, reorth: bool = True):
    """Independent Lanczos recurrences for the rows of Z (b, n), one block product per step
    (with ``reorth`` full reorthogonalization against the kept basis); returns per row the Gauss
    nodes and weights, and the products used."""
    b, n = Z.shape
    Q = torch.empty(b, m if reorth else 0, n, dtype=op.dtype, device=op.device)
    q = Z / torch.linalg.vector_norm(Z, dim=1, keepdim=True)
    q_prev = torch.zeros_like(q)
    beta_prev = torch.zeros(b, dtype=op.dtype, device=op.device)
    alphas, betas = [], []
    length = np.full(b, m)
    active = np.ones(b, dtype=bool)
    anorm = np.zeros(b)
    matvecs = 0
    for j in range(m):
        if reorth:
            Q[:, j] = q
        # (b, n) rows, a fresh tensor (updated in place below); one vector without block copies
        w = op.matvec(q[0])[None] if b == 1 else op.mm(q.T).T.contiguous()
        matvecs += int(active.sum())
        a = torch.stack([torch.dot(q[c], w[c]) for c in range(b)])  # α per row (BLAS dot)
        w.addcmul_(q, a[:, None], value=-1).addcmul_(q_prev, beta_prev[:, None], value=-1)
        prev = torch.linalg.vector_norm(w, dim=1)
        for _ in range(2 if reorth else 1):  # batched CGS, a second sweep only if DGKS asks
            if U is not None:
                w.sub_((w @ U) @ U.T)
            for c in range(b if reorth else 0):  # w_c −= Q_cᵀ(Q_c w_c) in place: BLAS gemv,
                Qc = Q[c, : j + 1]  # measured 4× faster than the batched bmm at n ≈ 1M
                w[c].addmv_(Qc.T, Qc @ w[c], alpha=-1)
            bt = torch.linalg.vector_norm(w, dim=1) if reorth or U is not None else prev
            if not reorth or bool((bt > _DGKS * prev).all()):
                break
            prev = bt
        ab = torch.stack([a, bt]).to(torch.float64).cpu().numpy()  # 2·b scalars per step
        alphas.append(np.where(active, ab[0], 0.0))
        anorm = np.maximum(anorm, np.maximum(np.abs(ab[0]), ab[1]))
        stop = active & (ab[1] <= _eps(op.dtype) * anorm)
        length[stop] = j + 1
        active &= ~stop
        if j == m - 1 or not active.any():
            break
        bnew = np.where(active, ab[1], 0.0)
        betas.append(bnew)
        q_prev = q
        scale = torch.as_tensor(np.where(active, ab[1], 1.0), dtype=op.dtype).to(op.device)
        q = w.div_(scale[:, None])
        if not active.all():  # finished rows continue as zeros (no products counted)
            q.mul_(torch.as_tensor(active, dtype=op.dtype).to(op.device)[:, None])
        beta_prev = torch.as_tensor(bnew, dtype=op.dtype).to(op.device)
    A_, B_ = np.array(alphas).T, (np.array(betas).T if betas else np.zeros((b, 0)))
    rules = []
    for c in range(b):
        L = int(length[c])
        theta, S = eigh_tridiagonal(A_[c, :L], B_[c, : L - 1])
        rules.append((theta, S[0] ** 2))
    return rules, matvecs
