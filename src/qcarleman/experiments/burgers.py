r"""The viscous Burgers experiment of Liu et al., PNAS 118 (2021), arXiv:2011.03185 (its Burgers
example and figure), with the PNAS 2021 setting (nx = 16, nt = 4000, Re0 = 20, T = 3).

The 1-D forced viscous Burgers equation ∂t u + u ∂x u = ν ∂x² u + F0(t, x) on [−L/2, L/2] with
Dirichlet boundaries, discretized by central differences on nx points (both boundary points
included, dx = L/(nx−1)), is a quadratic ODE du/dt = F0(t) + F1 u + F2 (u⊗u) with

* F1 = ν/dx² × tridiag(1, −2, 1)                            (viscous term),
* (F2 u⊗u)_i = −(u_{i+1}² − u_{i−1}²)/(4 dx)                  (central difference of −u²/2),
* F0(t, x) = U0 exp(−(x − L/4)²/(2 (L/32)²)) cos(2πt)          (localized oscillating source),
* u(0, x) = −U0 sin(2πx/L),  U0 = 1/√(nx−1),  ν = U0 L/Re0,

and the first and last rows of F1, F2 (and of F0, so u stays exactly 0 on the boundary — the
source there is below 1e-14·U0 at the default setting) set to zero. The boundary rows give F1 two
zero eigenvalues, which are excluded from λ1 (see
:meth:`~qcarleman.carleman.continuous.ContinuousCarleman.diagnostics`).

:func:`burgers_experiment` solves it with the Carleman-Euler method for N = 1..N_max
(:class:`~qcarleman.carleman.continuous.ContinuousCarleman`), with direct forward Euler on the
nonlinear ODE, and with a high-accuracy reference (scipy ``solve_ivp``, DOP853,
rtol = atol = 1e-10, evaluated on the Euler grid). Time grid: nt points t_k = k·dt on [0, T],
dt = T/(nt−1), i.e. nt−1 Euler steps (PNAS: nt = 4000, T = 3). Errors are absolute ℓ2 norms over
all nx grid points, ‖u_N(t_k) − u_ref(t_k)‖₂, and their maximum over k.

Numerical approximations in the output: Euler time stepping (first order in dt), Carleman
truncation at N, and the reference itself (tolerance 1e-10). No value is taken from the paper.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..carleman.continuous import ContinuousCarleman
from ..errors import UsageError, check_memory

__all__ = ["BurgersProblem", "burgers_problem", "burgers_experiment"]

Array = np.ndarray


@dataclass(frozen=True)
class BurgersProblem:
    """The discretized PNAS Burgers problem (module docstring): grid, parameters, coefficients."""

    nx: int
    L: float
    Re0: float
    U0: float
    nu: float
    dx: float
    x: Array
    u0: Array
    F1: Array  # (nx, nx)
    F2: sp.csr_matrix  # (nx, nx²), column a·nx + b ↔ u_a u_b
    source: Array  # spatial profile of F0: F0(t) = source · cos(2πt)

    def F0(self, t: float) -> Array:
        """F0(t, x) = U0 exp(−(x − L/4)²/(2(L/32)²)) cos(2πt) on the interior points."""
        return self.source * math.cos(2 * math.pi * t)

    @property
    def T_nl(self) -> float:
        """Nonlinear time scale T_nl = L/U0 (PNAS Burgers example)."""
        return self.L / self.U0

    def carleman(self, order: int, h: float, steps: int | None = None, **kw) -> ContinuousCarleman:
        """The order-N Carleman-Euler system of this problem with step h."""
        return ContinuousCarleman(self.F0, self.F1, self.F2, order, h, steps=steps, **kw)


def burgers_problem(nx: int = 16, Re0: float = 20.0, L: float = 1.0) -> BurgersProblem:
    """Build the PNAS Burgers problem on nx grid points (boundaries included)."""
    if isinstance(nx, bool) or int(nx) != nx or nx < 3:
        raise UsageError(f"nx = {nx} is invalid; use an integer nx ≥ 3 (both boundaries included)")
    if not (np.isfinite(Re0) and Re0 > 0):
        raise UsageError(f"Re0 = {Re0} is invalid; use a finite Reynolds number Re0 > 0")
    if not (np.isfinite(L) and L > 0):
        raise UsageError(f"L = {L} is invalid; use a finite domain length L > 0")
    nx = int(nx)
    dx = L / (nx - 1)
    x = np.linspace(-L / 2, L / 2, nx)
    U0 = 1.0 / math.sqrt(nx - 1)
    nu = U0 * L / Re0
    u0 = -U0 * np.sin(2 * math.pi * x / L)
    u0[[0, -1]] = 0.0
    source = U0 * np.exp(-((x - L / 4) ** 2) / (2 * (L / 32) ** 2))
    source[[0, -1]] = 0.0
    interior = np.arange(1, nx - 1)
    F1 = np.zeros((nx, nx))
    F1[interior, interior - 1] = F1[interior, interior + 1] = nu / dx**2
    F1[interior, interior] = -2 * nu / dx**2
    c = 1.0 / (4 * dx)
    rows = np.concatenate([interior, interior])
    cols = np.concatenate([(interior + 1) * (nx + 1), (interior - 1) * (nx + 1)])
    vals = np.concatenate([np.full(nx - 2, -c), np.full(nx - 2, c)])
    F2 = sp.csr_matrix((vals, (rows, cols)), shape=(nx, nx * nx))
    return BurgersProblem(nx, float(L), float(Re0), U0, nu, dx, x, u0, F1, F2, source)


def _check_run(nt: int, T: float, max_order: int) -> None:
    if isinstance(nt, bool) or int(nt) != nt or nt < 2:
        raise UsageError(f"nt = {nt} is invalid; use an integer nt ≥ 2 (time points incl. t = 0)")
    if not (np.isfinite(T) and T > 0):
        raise UsageError(f"T = {T} is invalid; use a finite final time T > 0")
    if isinstance(max_order, bool) or int(max_order) != max_order or max_order < 1:
        raise UsageError(f"N max = {max_order} is invalid; use an integer ≥ 1")


def burgers_experiment(
    nx: int = 16,
    nt: int = 4000,
    Re0: float = 20.0,
    T: float = 3.0,
    max_order: int = 4,
    memory_limit: int | str | None = None,
    progress: bool = False,
) -> dict:
    """Run the PNAS Burgers comparison (module docstring) and return a result dict.

    JSON-able keys: the setting, the PNAS diagnostics (``R``, ``r_minus``, ``r_plus``,
    ``lambda1``, norms, step condition per N), ``orders``, ``max_error_vs_reference``,
    ``max_error_vs_euler`` (one per N), ``euler_vs_reference``, ``monotone`` and timings. The
    trajectories are under ``"arrays"`` (numpy; drop that key before serializing).
    """
    _check_run(nt, T, max_order)
    prob = burgers_problem(nx, Re0)
    nt, max_order = int(nt), int(max_order)
    steps = nt - 1
    h = T / steps
    orders = list(range(1, max_order + 1))
    D = sum(prob.nx**j for j in orders)
    # Lifted state + temporaries (checked again by ContinuousCarleman) and the stored
    # trajectories: reference, Euler and one per N, each nt × nx.
    predicted = 8.0 * (4 * D + nt * prob.nx * (max_order + 2))
    check_memory(
        predicted,
        f"the Burgers run (D_N = {D:,} at N = {max_order}, nt = {nt})",
        memory_limit,
    )
    t_grid = np.arange(nt) * h
    bar = _progress(progress, 2 + len(orders))
    clock = time.perf_counter()

    top = prob.carleman(max_order, h, steps, memory_limit=memory_limit)
    diag = top.diagnostics(prob.u0, steps, warn=False)
    timings: dict[str, float] = {}

    t1 = time.perf_counter()
    reference = _reference(top, prob.u0, t_grid)
    timings["reference"] = time.perf_counter() - t1
    bar.update(1)
    t1 = time.perf_counter()
    euler = top.euler(prob.u0, steps)
    timings["euler"] = time.perf_counter() - t1
    bar.update(1)

    trajectories, err_ref, err_euler, h_ok = {}, {}, {}, {}
    for N in orders:
        cc = top if N == max_order else prob.carleman(N, h, steps, memory_limit=memory_limit)
        bar.set_description(f"Carleman N={N} (D_N={cc.dim:,})")
        t1 = time.perf_counter()
        traj = cc.iterate(prob.u0, steps)
        timings[f"carleman_N{N}"] = time.perf_counter() - t1
        trajectories[N] = traj
        err_ref[N] = np.linalg.norm(traj - reference, axis=1)
        err_euler[N] = np.linalg.norm(traj - euler, axis=1)
        h_ok[N] = h <= 1.0 / (N * diag["norm_F1"])
        bar.update(1)
    bar.close()
    timings["total"] = time.perf_counter() - clock

    max_ref = [_finite_max(err_ref[N]) for N in orders]
    euler_ref = np.linalg.norm(euler - reference, axis=1)
    snapshot = min(int(round(prob.T_nl / 3 / h)), steps)
    return {
        "setting": {
            "nx": prob.nx,
            "nt": nt,
            "steps": steps,
            "T": float(T),
            "dt": h,
            "Re0": prob.Re0,
            "L": prob.L,
            "U0": prob.U0,
            "nu": prob.nu,
            "dx": prob.dx,
            "T_nl": prob.T_nl,
            "reference": "solve_ivp DOP853 rtol=atol=1e-10",
            "error": "absolute l2 norm over all nx grid points, max over the nt time points",
        },
        "R": diag["R"],
        "r_minus": diag["r_minus"],
        "r_plus": diag["r_plus"],
        "discriminant": diag["discriminant"],
        "lambda1": diag["lambda1"],
        "norm_F0_max": diag["norm_F0_max"],
        "norm_F1": diag["norm_F1"],
        "norm_F2": diag["norm_F2"],
        "norm_u0": diag["norm_u0"],
        "condition_lhs": diag["condition_lhs"],
        "dissipation_condition": diag["dissipation_condition"],
        "orders": orders,
        "lifted_dims": [sum(prob.nx**j for j in range(1, N + 1)) for N in orders],
        "memory_predicted_bytes": predicted,
        "step_condition": [bool(h_ok[N]) for N in orders],
        "max_error_vs_reference": max_ref,
        "max_error_vs_euler": [_finite_max(err_euler[N]) for N in orders],
        "final_error_vs_reference": [_finite(err_ref[N][-1]) for N in orders],
        "euler_vs_reference": float(np.max(euler_ref)),
        "monotone": bool(all(b < a for a, b in zip(max_ref, max_ref[1:]))),
        "snapshot_time": float(t_grid[snapshot]),
        "seconds": timings,
        "arrays": {
            "t": t_grid,
            "x": prob.x,
            "reference": reference,
            "euler": euler,
            "carleman": trajectories,
            "error_vs_reference": err_ref,
            "snapshot": snapshot,
        },
    }


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _finite_max(err: Array) -> float | None:
    """max over time; None (JSON null) if the trajectory overflowed."""
    return _finite(np.max(err)) if np.all(np.isfinite(err)) else None


def _reference(cc: ContinuousCarleman, u0: Array, t_grid: Array) -> Array:
    """High-accuracy solution on t_grid: solve_ivp (DOP853, rtol = atol = 1e-10)."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(
        cc.vector_field,
        (t_grid[0], t_grid[-1]),
        u0,
        method="DOP853",
        t_eval=t_grid,
        rtol=1e-10,
        atol=1e-10,
    )
    if not sol.success:  # pragma: no cover - smooth problem
        raise UsageError(f"the reference solver failed ({sol.message}); try a smaller T or Re0")
    return sol.y.T


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_description(self, s: str) -> None: ...
    def close(self) -> None: ...


def _progress(enabled: bool, total: int):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="reference + Euler", unit="solve", leave=False)
