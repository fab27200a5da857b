"""``qcarleman burgers``: reproduce the viscous Burgers experiment of Liu et al., PNAS 118 (2021).

Thin wrapper over :func:`qcarleman.experiments.burgers.burgers_experiment` (see its module
docstring for the setting, the error definition and the approximations). Prints the PNAS
diagnostics (R, r±, λ1) and, per truncation order N, the maximum over time of the ℓ2 error against
the solve_ivp reference and against direct Euler; ``--json`` prints the same as one JSON object,
``--plot`` writes the three-panel figure.

Examples::

    qcarleman burgers
    qcarleman burgers --max-order 3 --json --plot burgers.png
    qcarleman burgers --nx 32 --re0 40 --T 2
"""

from __future__ import annotations

import argparse

from .helptext import command_help
from .validate import add_force, check_work, float_range, integer, memory, png, real


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "burgers",
        help="Carleman-Euler on the forced viscous Burgers equation (PNAS 2021 reproduction)",
        **command_help(__doc__),
    )
    p.add_argument(
        "--nx", type=integer(3, 200), default=16, help="grid points incl. boundaries (16)"
    )
    p.add_argument(
        "--nt", type=integer(2, 10**8), default=4000, help="time points incl. t=0 (4000)"
    )
    p.add_argument("--re0", type=real(1e-6, 1e6), default=20.0, help="Reynolds number Re0 (20)")
    p.add_argument("--T", type=real(1e-6, 1e6), default=3.0, help="final time (3)")
    p.add_argument(
        "--max-order", type=integer(1, 20), default=4, help="largest truncation order N (4)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="FILE.png", type=png, help="write the three-panel figure")
    p.add_argument(
        "--memory-limit", type=memory, help="memory limit, e.g. 8G (default: half the RAM)"
    )
    add_force(p)
    p.set_defaults(func=run)


#: Work guard (measured on 2 cores): Carleman-Euler ≈ 1.2e-7 s · nt · Σ_{N=1}^{N max} D_N
#: (nx 16, nt 4000, N 4: 36 s); the DOP853 reference ≈ 4e-4 s · T(‖F1‖ + 10), ‖F1‖ ≈
#: 4(nx−1)^1.5/Re0 (steps grow with the stiffness and, at rtol 1e-10, with T: nx 8, Re0 0.01,
#: T 3: 8 s; nx 4, Re0 20, T 1000: 4 s).
SECONDS_LIMIT = 600.0


def predicted_seconds(nx: int, nt: int, max_order: int, re0: float, T: float) -> float:
    """The work guard's time model of one run (exact integer D_N = Σ_{j≤N} nx^j, §2)."""
    dims = [sum(nx**j for j in range(1, N + 1)) for N in range(1, max_order + 1)]
    return 1.2e-7 * float(nt) * float(sum(dims)) + 4e-4 * T * (4 * (nx - 1) ** 1.5 / re0 + 10)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from ..atomic import dumps_json
    from ..errors import format_bytes
    from ..experiments.burgers import burgers_experiment
    from ..report.plots import plot_burgers

    check_work(
        predicted_seconds(args.nx, args.nt, args.max_order, args.re0, args.T),
        SECONDS_LIMIT,
        f"burgers at nx = {args.nx}, nt = {args.nt}, N = {args.max_order}, Re0 = {args.re0:g}, "
        f"T = {args.T:g}: seconds",
        force=args.force,
    )
    start = time.perf_counter()
    with float_range("the Burgers run", "use a smaller --re0 or --T, or a larger --nt"):
        result = burgers_experiment(
            nx=args.nx,
            nt=args.nt,
            Re0=args.re0,
            T=args.T,
            max_order=args.max_order,
            memory_limit=args.memory_limit,
            progress=sys.stderr.isatty(),
        )
    if args.plot:
        plot_burgers(result, args.plot)
    summary = {k: v for k, v in result.items() if k != "arrays"}
    summary["wall_seconds"] = time.perf_counter() - start
    if args.plot:
        summary["plot"] = args.plot
    if args.json:
        print(dumps_json(summary, indent=2))
        return 0
    s = summary["setting"]
    print(
        f"Forced viscous Burgers (PNAS 2021 setting): nx={s['nx']}, nt={s['nt']} "
        f"(dt={s['dt']:.3g}), Re0={s['Re0']:g}, T={s['T']:g}, ν={s['nu']:.4g}, U0={s['U0']:.4g}"
    )
    print(
        f"  λ1 = {summary['lambda1']:.4g}, ‖F0‖max = {summary['norm_F0_max']:.4g}, "
        f"‖F1‖ = {summary['norm_F1']:.4g}, ‖F2‖ = {summary['norm_F2']:.4g}, "
        f"‖u0‖ = {summary['norm_u0']:.4g}"
    )
    radii = (
        f"r- = {summary['r_minus']:.4g}, r+ = {summary['r_plus']:.4g}"
        if summary["r_minus"] is not None
        else f"r± undefined (λ1² − 4‖F2‖‖F0‖ = {summary['discriminant']:.4g} < 0)"
    )
    print(f"  R = {summary['R']:.4g} (convergence proved for R < 1); {radii}")
    if not summary["dissipation_condition"]:
        print(
            f"  warning: ‖F0‖ + ‖F2‖ = {summary['condition_lhs']:.4g} > |λ1| = "
            f"{abs(summary['lambda1']):.4g}: the PNAS convergence guarantee does not apply"
        )
    print(
        f"  lifted dimension D_N = {summary['lifted_dims'][-1]:,} at N = {summary['orders'][-1]}; "
        f"predicted memory {format_bytes(summary['memory_predicted_bytes'])}"
    )
    print(f"  direct Euler vs reference: max_t ℓ2 error = {summary['euler_vs_reference']:.3e}")
    print("   N      D_N   h ≤ 1/(N‖F1‖)   max err vs reference   max err vs Euler   seconds")
    for i, N in enumerate(summary["orders"]):
        ref, eul = summary["max_error_vs_reference"][i], summary["max_error_vs_euler"][i]
        print(
            f"  {N:2d} {summary['lifted_dims'][i]:8,d}   {str(summary['step_condition'][i]):>13}"
            f"   {_fmt(ref):>20}   {_fmt(eul):>16}   {summary['seconds'][f'carleman_N{N}']:7.2f}"
        )
    unstable = [N for N, ok in zip(summary["orders"], summary["step_condition"]) if not ok]
    if unstable:
        print(
            f"  warning: h = {s['dt']:.3g} > 1/(N‖F1‖) for N = {unstable}: Euler stepping may be "
            "unstable there; raise --nt"
        )
    print(
        f"  errors decrease monotonically with N: {summary['monotone']}; "
        f"wall time {summary['wall_seconds']:.1f} s"
    )
    print("  (errors: absolute ℓ2 over the grid, max over time; reference: solve_ivp 1e-10)")
    if args.plot:
        print(f"  plot written to {args.plot}")
    return 0


def _fmt(v: float | None) -> str:
    return "overflow" if v is None else f"{v:.3e}"
