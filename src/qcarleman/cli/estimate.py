"""``qcarleman estimate``: what a fault-tolerant run of one quantum segment would cost, against
classical sparse training (ALGORITHM.md §7; :mod:`qcarleman.quantum.cost.estimate`).

Either from explicit numbers (fast, no torch: --params P --active n), or from a training run
directory (--run RUN --step S): n, P, per-layer FLOPs, ρ = max|1 − ηλ| (Lanczos), ‖f0‖, ‖F2‖
(power method) and a sampled Hessian row sparsity measured on a checkpoint
(:func:`qcarleman.analysis.estimate_run.estimate_run`), so κ is the §3 bound from them.
``--breakeven`` adds the break-even table over n = 10³…10⁹ and T ∈ {10, 20, 50, 100} for the
fully and almost dissipative regimes; ``--plot FILE.png`` draws it. ``--frontier`` adds the
advantage frontier (:mod:`qcarleman.quantum.cost.frontier`): the crossover n over row sparsity,
ε, T, download or not, classical FLOP rate and quantum clock, and one sentence of what would
have to be true for this n; ``--frontier-plot FILE.png`` draws it.

Examples::

    qcarleman estimate --params 7451044 --active 745104 --steps 20 --order 2 --epsilon 1e-2 --json
    qcarleman estimate --run runs/digits-sparse --step 0 --steps 20 --batches 2
    qcarleman estimate --params 7451044 --active 745104 --breakeven --plot breakeven.png
    qcarleman estimate --params 7451044 --active 745104 --steps 20 --frontier --frontier-plot f.png
"""

from __future__ import annotations

import argparse
import sys

from ..atomic import dumps_json, write_json
from .helptext import command_help
from .validate import add_force, check_work, float_range, integer, png, positive, real

#: Largest Carleman order: the block sums enumerate the 3^N compositions (§2).
MAX_ORDER = 10
_FIX = "use smaller ρ, T, N, ‖f0‖, ‖F2‖, κ or --max-entry"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate",
        help="resource estimate of the fault-tolerant run vs classical training",
        **command_help(__doc__),
    )
    src = p.add_argument_group("problem (explicit numbers)")
    src.add_argument("--active", "-n", type=integer(1), help="active (unpruned) parameters n")
    src.add_argument("--params", "-P", type=integer(1), help="total parameters P")
    src.add_argument("--run", help="run directory: measure n, P, FLOPs, ρ, ‖f0‖, ‖F2‖, s")
    src.add_argument(
        "--step", type=integer(0, 10**9), help="checkpoint step in --run (default: first)"
    )
    src.add_argument(
        "--batches", type=integer(1, 10**4), default=1, help="--run: batches for H (1; ≤ 10⁴)"
    )
    src.add_argument(
        "--lr", type=positive(1e6), help="--run: η (default: the run's schedule at --step)"
    )
    src.add_argument(
        "--f2-iters", type=integer(1, 10**4), default=20, help="--run: ‖F2‖ power steps (20)"
    )
    src.add_argument(
        "--sparsity-samples",
        type=integer(0, 10**5),
        default=8,
        help="--run: rows of H sampled for s (8; 0: off)",
    )
    src.add_argument(
        "--steps", "-T", type=integer(1, 10**6), default=20, help="horizon T (20; ≤ 10⁶)"
    )
    src.add_argument(
        "--order", "-N", type=integer(1, MAX_ORDER), default=2, help="Carleman order N (2; ≤ 10)"
    )
    src.add_argument("--idle", type=integer(0, 10**6), help="idle steps p (default T; ≤ 10⁶)")
    src.add_argument(
        "--epsilon",
        type=real(1e-12, 0.48),
        default=1e-2,
        help="target ℓ2 error (1e-2; ≤ 0.48: ε_q = ε/2 ≤ 0.24 for Jennings et al.)",
    )
    src.add_argument("--momentum", action="store_true", help="heavy-ball state (d = 2n)")
    src.add_argument("--symmetric", action="store_true", help="symmetric Carleman subspace")
    cond = p.add_argument_group("conditioning and structure")
    cond.add_argument(
        "--kappa", type=real(1, 1e100), help="κ(L) ≤ 1e100 (default: §3 bound from ρ)"
    )
    cond.add_argument("--norm-L", type=real(1e-100, 1e100), help="‖L‖ if known (with --kappa)")
    cond.add_argument("--rho", type=real(1e-100, 1e3), help="ρ = ‖F1‖ (default 1 + 1/T, labelled)")
    cond.add_argument("--f0-norm", type=real(0, 1e10), help="‖f0‖ = η‖g‖")
    cond.add_argument("--f2-norm", type=real(0, 1e10), help="‖F2‖")
    cond.add_argument("--sparsity", type=integer(1), help="nonzeros per Hessian row s (default n)")
    cond.add_argument("--row-sparsity", type=integer(1), help="row sparsity of L (sparse access)")
    cond.add_argument("--col-sparsity", type=integer(1), help="column sparsity of L")
    cond.add_argument("--max-entry", type=real(1e-100, 1e100), help="max |L_ij| (sparse access)")
    cond.add_argument("--p-succ", type=real(1e-30, 1), help="P_succ (default: stated model)")
    cond.add_argument(
        "--shots",
        type=integer(1, 10**30),
        help="tomography shots actually used: reports the ε they reach (the bill prices ε)",
    )
    cost = p.add_argument_group("cost model")
    cost.add_argument(
        "--solver",
        default="costa-empirical",
        choices=["hhl", "cks", "costa", "costa-empirical", "jennings"],
        help="QLSA used for totals (all are reported; default costa-empirical)",
    )
    cost.add_argument(
        "--bits", type=integer(1, 1024), default=32, help="oracle arithmetic bits b (32)"
    )
    cost.add_argument(
        "--oracle",
        default="arithmetic",
        choices=["arithmetic", "qrom"],
        help="entry oracle of the block encoding: computed by b-bit arithmetic, or looked up "
        "from a QROM of the weights (default arithmetic)",
    )
    cost.add_argument(
        "--entry-mults", type=integer(1, 10**6), default=4, help="b-bit mults per entry (4)"
    )
    cost.add_argument(
        "--batch-size", "-B", type=integer(1, 10**9), help="batch size B (128; --run: the run's)"
    )
    cost.add_argument(
        "--flop-rate",
        type=real(1, 1e30),
        default=1e15,
        help="classical FLOP/s behind the seconds (1e15)",
    )
    cost.add_argument(
        "--logical-rate", type=real(1, 1e30), help="logical ops/s (default: surface code)"
    )
    cost.add_argument("--qubit", default="qubit_gate_ns_e3", help="physical qubit model")
    cost.add_argument(
        "--error-budget",
        type=real(1e-15, 1, lo_open=True, hi_open=True),
        default=1e-3,
        help="physical error budget",
    )
    cost.add_argument(
        "--no-qsharp",
        action="store_true",
        help="skip Microsoft's resource estimator (qdk; the surface-code model only)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print JSON instead of text")
    out.add_argument("--breakeven", action="store_true", help="add the break-even table")
    out.add_argument(
        "--plot", type=png, help="write the break-even plot to FILE.png (implies --breakeven)"
    )
    out.add_argument("--frontier", action="store_true", help="add the advantage frontier")
    out.add_argument(
        "--frontier-plot", type=png, help="write the frontier plot (implies --frontier)"
    )
    out.add_argument("--out", help="also write the JSON result to this file")
    add_force(p)
    p.set_defaults(func=run)


def _model(args):
    """The CostModel of the flags."""
    from ..quantum.cost.inputs import CostModel

    return CostModel(
        solver=args.solver,
        shots=args.shots,
        bits=args.bits,
        oracle=args.oracle,
        entry_mults=args.entry_mults,
        flop_rate=args.flop_rate,
        logical_rate=args.logical_rate,
        qubit=args.qubit,
        error_budget=args.error_budget,
        use_qsharp=not args.no_qsharp,
    )


def _given(args) -> dict:
    """Problem and Conditioning inputs given as flags (None: not given)."""
    from ..errors import UsageError

    if args.run is None and args.active is None:
        raise UsageError("give --active n (and --params P) or --run RUN_DIR")
    if args.run is not None and (args.active is not None or args.params is not None):
        raise UsageError("--run measures n and P; drop --active/--params or drop --run")
    return dict(
        N=args.order,
        p=args.idle,
        epsilon=args.epsilon,
        kappa=args.kappa,
        norm_L=args.norm_L,
        rho=args.rho,
        f0_norm=args.f0_norm,
        F2_norm=args.f2_norm,
        sparsity=args.sparsity,
        row_sparsity=args.row_sparsity,
        col_sparsity=args.col_sparsity,
        max_entry=args.max_entry,
        momentum=args.momentum or None,  # --run: measured from the run's meta unless set
        symmetric=args.symmetric,
        p_succ=args.p_succ,
    )


def _from_run(args, given: dict, model):
    """The estimate with its inputs measured on a checkpoint of ``--run`` (explicit flags win)."""
    from tqdm import tqdm

    from ..analysis.estimate_run import estimate_run

    bar = tqdm(desc="measuring", unit="stage", file=sys.stderr, leave=False, disable=None)

    def stage(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        return estimate_run(
            args.run,
            args.step,
            T=args.steps,
            n_batches=args.batches,
            batch_size=args.batch_size,
            lr=args.lr,
            f2_iters=args.f2_iters,
            sparsity_samples=args.sparsity_samples,
            progress=stage,
            model=model,
            **given,
        )
    finally:
        bar.close()


def _breakeven(args: argparse.Namespace, est, model) -> dict:
    """The break-even table of ``--breakeven`` (with its figure for ``--plot``)."""
    from ..quantum.cost.breakeven import breakeven
    from ..report.plots import plot_breakeven

    be_kw = dict(N=args.order, epsilon=args.epsilon, batch_size=est.problem.batch_size, model=model)
    if args.sparsity is not None:
        be_kw["sparsity"] = args.sparsity
    with float_range("the break-even table", _FIX):
        be = breakeven(**be_kw)
    if args.plot:
        be["plot"] = plot_breakeven(be, args.plot)
    return be


def _frontier(args: argparse.Namespace, est, model) -> dict:
    """The advantage frontier of ``--frontier`` (with its figure for ``--frontier-plot``)."""
    from ..quantum.cost.frontier import frontier, what_would_have_to_be_true

    with float_range("the advantage frontier", _FIX):
        fr = frontier(N=args.order, batch_size=est.problem.batch_size, model=model)
    fr["sentence"] = what_would_have_to_be_true(fr, est.problem.n)
    if args.frontier_plot:
        from ..report.plots import plot_frontier

        fr["plot"] = plot_frontier(fr, args.frontier_plot, est.problem.n)
    return fr


def run(args: argparse.Namespace) -> int:
    from ..quantum.cost.estimate import estimate
    from ..quantum.cost.inputs import Conditioning, Problem, split_inputs

    # The block sums enumerate the 3^N compositions, once per break-even point (~4 ms at N = 1).
    if args.breakeven or args.plot:
        check_work(
            4e-3 * 3**args.order, 60, f"--breakeven at N = {args.order}: seconds", force=args.force
        )
    with float_range("the estimate", _FIX):
        model = _model(args)
        given = _given(args)
        if args.run is not None:
            est = _from_run(args, given, model)
        else:
            given |= dict(n=args.active, P=args.params, T=args.steps, batch_size=args.batch_size)
            problem, cond = split_inputs(given)
            est = estimate(
                problem=Problem(**problem), conditioning=Conditioning(**cond), model=model
            )
        result = est.to_dict()
    if args.breakeven or args.plot:
        result["breakeven"] = _breakeven(args, est, model)
    if args.frontier or args.frontier_plot:
        result["frontier"] = _frontier(args, est, model)
    if args.out:
        write_json(args.out, result)
    if args.json:
        print(dumps_json(result, indent=1))
        return 0
    pb = est.problem
    print(
        f"qcarleman estimate (n = {pb.n}, T = {pb.T}, N = {pb.N}, ε = {pb.epsilon}, "
        f"classical rate {model.flop_rate:.3g} FLOP/s)"
    )
    print(est.summary())
    if "breakeven" in result:
        from ..quantum.cost.breakeven import breakeven_table

        print()
        print(breakeven_table(result["breakeven"]))
        if args.plot:
            print(f"plot: {result['breakeven']['plot']}")
    if "frontier" in result:
        print()
        print(f"Advantage frontier: {result['frontier']['sentence']}")
        for a in result["frontier"]["settings"]["assumptions"]:
            print(f"  assumption: {a}")
        if "plot" in result["frontier"]:
            print(f"plot: {result['frontier']['plot']}")
    return 0
