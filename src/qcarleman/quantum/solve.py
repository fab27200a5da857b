r"""One interface to the emulated quantum linear-system solvers (ALGORITHM.md §3–§4).

The core layer works on an explicit triple (L, c, post-selection set)::

    res = solve_linear(L, c, post_select=idx, backend="exact" | "hhl" | "qsvt", ...)

and :func:`solve` is a thin adapter for a Carleman :class:`~qcarleman.HistorySystem` (it uses
``.matrix()``, ``.rhs()``, ``.output_indices()``, ``.kappa()``, ``.scale``, ``.d``).

What a backend returns (:class:`SolveResult`):

* ``state`` — the post-selected output state: the normalized amplitudes of the solver's output
  on the post-selection set (ALGORITHM.md §3: time register in {T..T+p}, level register j = 1),
  in the order of ``post_select``.
* ``success_probability`` — probability that one run of the circuit passes every
  post-selection (the solver's own flag, e.g. the HHL ancilla, *and* the output set). For
  ``exact`` the flag is ideal (probability 1), so this is P_succ = (p+1)‖ŷ1(T)‖²/‖Y‖².
* ``fidelity`` — |⟨ψ_exact|ψ⟩|² between the post-selected states (overlap of real unit vectors;
  insensitive to a global sign/phase by design, because a quantum state has none).
* ``norm_scale`` — the solver's known normalization: the norm of the solution restricted to the
  post-selection set is ``norm_scale * sqrt(success_probability)`` (ALGORITHM.md §5 "norm from
  the success probability"); :attr:`SolveResult.solution_norm` evaluates it, and
  :func:`qcarleman.quantum.readout.estimate_norm` estimates it from shots.
* ``resources`` — qubits, gate counts, polynomial degree, clock qubits, κ, ... (backend-specific).

Every emulated result is compared with the exact answer (sparse LU, checked against
``numpy.linalg.solve`` in the tests). PennyLane is imported only by the ``hhl`` and ``qsvt``
circuit paths, so ``exact`` (and matrix-level ``qsvt``) work without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .exact import (
    SolveResult,
    as_indices,
    as_system,
    exact_backend,
    exact_solution,
    reduce_copies,
    state_fidelity,
)
from .hhl import hhl_solve
from .qsvt import qsvt_solve

__all__ = [
    "SolveResult",
    "solve",
    "solve_linear",
    "exact_solution",
    "state_fidelity",
    "reduce_copies",
    "BACKENDS",
]

BACKENDS = ("exact", "hhl", "qsvt")


def solve_linear(
    L,
    c,
    post_select=None,
    backend: str = "exact",
    *,
    kappa: float | None = None,
    **options: Any,
) -> SolveResult:
    """Solve L x = c with an emulated QLSA and post-select x on ``post_select``.

    Options by backend: ``hhl``: clock (6), t0 ("tuned" | "range" | float), shots, seed,
    dilation (None: only for a non-symmetric L) (see :func:`qcarleman.quantum.hhl.hhl_solve`);
    ``qsvt``: epsilon, method ("svd" |
    "chebyshev" | "circuit"), alpha, shots, seed (see :func:`qcarleman.quantum.qsvt.qsvt_solve`).
    """
    L, c = as_system(L, c)
    idx = as_indices(post_select, L.shape[0])
    if backend == "exact":
        if options:
            raise UsageError(f"backend 'exact' takes no options; got {sorted(options)}")
        return exact_backend(L, c, idx, kappa)
    if backend == "hhl":
        return hhl_solve(L, c, idx, kappa=kappa, **options)
    if backend == "qsvt":
        return qsvt_solve(L, c, idx, kappa=kappa, **options)
    raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def solve(history, backend: str = "exact", *, kappa: float | None = None, **options: Any):
    """Solve a :class:`~qcarleman.HistorySystem` (ALGORITHM.md §3) with ``backend``.

    Returns a :class:`SolveResult` whose ``output_state`` is |ŷ1(T)⟩ (length d) and whose
    :meth:`SolveResult.output_vector` is the emulated z_T in original units (γ·ŷ1(T)).
    κ defaults to ``history.kappa("exact")`` for dim ≤ 1024, else ``history.kappa("estimate")``.
    """
    for attr in ("matrix", "rhs", "output_indices", "d", "dim"):
        if not hasattr(history, attr):
            raise UsageError(
                f"solve() needs a HistorySystem (missing .{attr}); "
                "use solve_linear(L, c, post_select) for an explicit system"
            )
    if kappa is None:
        kappa = float(history.kappa(method="exact" if history.dim <= 1024 else "estimate"))
    idx = np.asarray(history.output_indices())
    copies = idx.size // history.d
    res = solve_linear(history.matrix(), history.rhs(), idx, backend, kappa=kappa, **options)
    res.copies = copies
    res.scale = float(getattr(history, "scale", 1.0))
    res.output_state = reduce_copies(res.state, copies)
    return res
