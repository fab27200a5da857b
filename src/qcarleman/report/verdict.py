r"""The verdict of a pipeline run in plain sentences, and what every reported term means.

:func:`verdict` turns a ``summary.json`` dict into three to five sentences, computed only from its
numbers: (1) is early sparse training dissipative and for how long — the paper's plain-GD window
(ALGORITHM.md §6) and, when the summary carries ``window_paper``, the window of the map actually
trained (§6.1); (2) how far the emulated quantum output and the hybrid run are from classical;
(3) what one quantum segment would cost on a fault-tolerant machine, in years and qubits, against
classical compute; (4) whether any n would make the quantum side win
(:func:`breakeven_crossovers`, the §7 break-even scan priced like the run's own estimate).
:data:`GLOSSARY` explains each term in words with its place in the docs; :data:`ESTIMATE_ROWS`
gives every row of the resource table its meaning and unit; :func:`human` writes a number with its
unit and a human form. Used by the HTML report and by the console summary of ``demo``/``hybrid``.
"""

from __future__ import annotations

import math
from typing import Any

from ..quantity import human_count, human_seconds

__all__ = [
    "verdict",
    "breakeven_crossovers",
    "human",
    "GLOSSARY",
    "ESTIMATE_ROWS",
]

#: term → (explanation in words, where it is defined). The report shows them under the verdict.
GLOSSARY: dict[str, tuple[str, str]] = {
    "E(t)": (
        "the error-bound curve: how much a small error in the parameters is amplified after t "
        "steps, averaged over the Hessian's directions; E(t) ≤ 1 means errors do not grow",
        "ALGORITHM.md §6",
    ),
    "t*": (
        "the dissipative window: the last step t after pruning with E(t) ≤ 1, i.e. how long "
        "training stays in the regime where the quantum algorithm's errors stay controlled",
        "ALGORITHM.md §6",
    ),
    "horizon": (
        "the number of steps T that one quantum solve covers; the regime is judged for this "
        "horizon (unlike t*, which is read off the curve E(t))",
        "ALGORITHM.md §3, §6",
    ),
    "ρ": (
        "the largest factor by which one step can stretch a parameter error (‖F1‖, the norm of "
        "the linear part of the step); below 1 every direction shrinks",
        "ALGORITHM.md §6, §6.1",
    ),
    "regime": (
        "fully dissipative (ρ < 1: quantum cost linear in T), almost dissipative (ρ ≤ 1 + 1/T: "
        "quadratic in T) or non-dissipative (no efficiency guarantee)",
        "ALGORITHM.md §6",
    ),
    "κ": (
        "the condition number of the linear system solved for a segment; the quantum solver's "
        "run time grows in proportion to it",
        "ALGORITHM.md §3",
    ),
    "P_succ": (
        "the probability that one run of the quantum solver yields the final-time parameters "
        "(the rest of the output is discarded); amplitude amplification repeats ~1/√P_succ times",
        "ALGORITHM.md §3, §4",
    ),
    "n": ("the number of active (unpruned) parameters that the quantum segment evolves", "§1"),
    "M": ("the number of measurement shots used to read the parameters out (tomography)", "§5"),
    "ε": ("the target relative error of the parameters read out after a segment", "§5, §7"),
}

#: Resource-table rows: key → (meaning, unit). Units: "s" (seconds), "count", "qubits", "FLOPs",
#: "FLOP/s", "" (dimensionless or text).
ESTIMATE_ROWS: dict[str, tuple[str, str]] = {
    "n": ("active (unpruned) parameters evolved by the segment", "count"),
    "T": ("gradient steps in the segment (the horizon of one quantum solve)", ""),
    "N": ("Carleman truncation order (1 = linear, 2 = quadratic terms kept)", ""),
    "p": ("idle steps appended so the final state carries weight in the solution", ""),
    "logical_qubits": ("error-corrected qubits the algorithm needs", "qubits"),
    "kappa": ("κ, condition number of the segment's linear system (cost ∝ κ)", ""),
    "kappa_eff": ("κ × block-encoding normalization α: what the query count scales with", ""),
    "p_succ": ("P_succ, probability one solve yields the final-time parameters", ""),
    "aa_rounds": ("amplitude-amplification rounds that raise P_succ", "count"),
    "epsilon": ("target relative error ε of the parameters read out", ""),
    "shots": ("measurement shots the bill pays for (those ε needs)", "count"),
    "shots_for_epsilon": ("shots the read-out (tomography) needs to reach ε", "count"),
    "shots_given": ("shots the run actually used per segment (M)", "count"),
    "epsilon_at_shots_given": ("error bound that the run's M shots reach", ""),
    "queries": ("block-encoding queries of one quantum linear-system solve", "count"),
    "block_encoding_calls": ("all oracle calls: queries × amplification × shots", "count"),
    "t_count": ("T gates, the expensive fault-tolerant operation (sets the run time)", "count"),
    "classical_flops": (
        "floating-point operations of the same steps on a classical computer",
        "FLOPs",
    ),
    "classical_flops_kind": ("how the classical FLOPs were obtained", ""),
    "classical_flops_dense": ("FLOPs if the pruned weights were computed too", "FLOPs"),
    "flop_rate": ("classical speed assumed", "FLOP/s"),
    "quantum_seconds": ("fault-tolerant run time of the segment (T-count × logical cycle)", "s"),
    "quantum_clock": ("what set the quantum clock (surface-code model and its code distance)", ""),
    "physical_qubits": ("physical qubits of that surface-code machine", "qubits"),
    "classical_seconds": ("classical run time of the same steps (FLOPs / FLOP rate)", "s"),
    "winner": ("which side is faster for this segment", ""),
}


def _value(v: Any) -> Any:
    """The number of a Quantity's JSON form ({"value", "kind"}) or the value itself."""
    return v.get("value") if isinstance(v, dict) else v


def human(v: Any, unit: str = "") -> str:
    """``v`` with its unit and a human form: seconds → "5.7e+09 s (≈ 182 years)", counts →
    "2.4e+11 (240 billion)", FLOPs, FLOP/s; a Quantity's JSON form adds its kind."""
    kind = v.get("kind") if isinstance(v, dict) else None
    v = _value(v)
    if v is None:
        text = "—"
    elif isinstance(v, str | bool):
        text = str(v)
    elif unit == "s":
        text = f"{v:.3g} s (≈ {human_seconds(v)})"
    elif unit in ("count", "qubits", "FLOPs") and abs(float(v)) >= 1e4:
        exact = f"{v:,}" if isinstance(v, int) and v < 10**10 else f"{v:.3g}"
        text = f"{exact} ({human_count(v)}{' ' + unit if unit != 'count' else ''})"
    elif unit in ("count", "qubits", "FLOPs"):
        text = f"{human_count(v)}{' ' + unit if unit != 'count' else ''}"
    elif unit == "FLOP/s":
        text = f"{v:.3g} FLOP/s ({human_count(v)} per second)"
    elif isinstance(v, int):
        text = f"{v:,}"
    else:
        text = f"{v:.4g}" if math.isfinite(v) else str(v)
    return f"{text} ({kind})" if kind else text


def _window_phrase(w: int, closed: bool | None) -> str:
    if w == 0:
        return "not dissipative (the error bound E(t) exceeds 1 at the first step)"
    return f"dissipative for {'at least ' if closed is False else ''}the first {w} steps"


def _dissipation(s: dict[str, Any]) -> str | None:
    if s.get("window") is None:
        return None
    T = s.get("horizon")
    rho, regime = s.get("rho"), s.get("regime")
    two = s.get("window_paper") is not None and bool(s.get("momentum"))
    if two:
        trained = _window_phrase(s["window"], s.get("window_closed"))
        paper = _window_phrase(s["window_paper"], s.get("window_closed_paper"))
        main = (
            f"Under the map actually trained (SGD with momentum μ = {s['momentum']:g}), early "
            f"sparse training after pruning is {trained}; under the paper's plain "
            f"gradient-descent definition it is {paper}"
        )
        any_window = s["window"] > 0 or s["window_paper"] > 0
    else:
        main = (
            "Early sparse training after pruning is "
            f"{_window_phrase(s['window'], s.get('window_closed'))} (the paper's plain "
            "gradient-descent definition)"
        )
        any_window = s["window"] > 0
    if any_window:
        main += (
            " — that is the window t*, how long the error bound E(t) (the average growth of a "
            "parameter error) stays ≤ 1"
        )
    if rho is not None and regime:
        horizon = f"over a horizon of {T} steps" if T else "over the horizon"
        main += (
            f". The largest factor by which one step can stretch an error is ρ = {rho:.4g}, "
            f"which makes the run {regime} {horizon}"
        )
        if regime == "non-dissipative":
            main += " (no efficiency guarantee for the quantum solver there)"
        if two and s.get("rho_paper") is not None:
            main += (
                f"; without momentum ρ = {s['rho_paper']:.4g} "
                f"({s.get('regime_paper') or 'regime not given'})"
            )
    return main + "."


def _accuracy(s: dict[str, Any]) -> str | None:
    h, c = s.get("hybrid_accuracy"), s.get("classical_sparse_accuracy")
    if h is None or c is None:
        return None
    gap = s.get("accuracy_gap_points", 100 * (h - c))
    out = (
        f"After {s.get('total_steps', '?')} sparse steps, {s.get('quantum_steps', '?')} of them in "
        f"emulated quantum segments, the hybrid run reaches {100 * h:.1f}% test accuracy against "
        f"{100 * c:.1f}% for classical sparse training ({gap:+.2f} percentage points)"
    )
    emu, ro = s.get("emulation_error_max"), s.get("readout_error_max")
    if emu is not None:
        out += (
            f"; the emulated quantum output differs from true gradient descent by at most "
            f"{100 * emu:.3g}% (relative error, worst segment)"
        )
        if ro is not None:
            out += f" and the simulated read-out adds at most {100 * ro:.3g}%"
    return out + "."


def _cost(s: dict[str, Any]) -> str | None:
    e = s.get("estimate")
    if not e or e.get("quantum_seconds") is None:
        return None
    qs, cs = _value(e["quantum_seconds"]), _value(e["classical_seconds"])
    phys = e.get("physical_qubits")
    machine = f"{e['logical_qubits']:,} logical qubits" + (
        f" (about {human_count(phys)} physical qubits)" if phys else ""
    )
    out = (
        f"One {e['T']}-step quantum segment (n = {e['n']:,} active parameters, Carleman order "
        f"N = {e['N']}) would take about {human_seconds(qs)} on a fault-tolerant quantum "
        f"computer with {machine}, against {human_seconds(cs)} of classical compute"
    )
    if e.get("flop_rate"):
        out += f" at {human_count(e['flop_rate'])} FLOP/s"
    if e.get("shots_for_epsilon") and e.get("epsilon"):
        out += (
            f"; reading the parameters out to ε = {e['epsilon']:g} alone needs "
            f"{human_count(e['shots_for_epsilon'])} measurement shots"
        )
    k = e.get("kappa")
    if isinstance(k, dict) and k.get("value") is not None:
        out += f" (κ = {k['value']:.3g}, {k['kind']})"
    return out + "."


def _breakeven(s: dict[str, Any], crossovers: list[dict] | None) -> str | None:
    e = s.get("estimate")
    if not e:
        return None
    here = (
        "Classical training wins for this model"
        if e.get("winner") == "classical"
        else ("The quantum segment would win for this model")
    )
    if crossovers is None:
        return here + "."
    with_dl = [c for c in crossovers if c.get("download")]
    found = [c for c in with_dl if c.get("crossover_n") is not None]
    if not found:
        return (
            here + ", and under the same cost model no size between a thousand and a billion "
            "active parameters would make the quantum segment faster, even for a fully "
            "dissipative model (read-out included)."
        )
    parts = [f"from n ≈ {human_count(c['crossover_n'])} ({c['regime']})" for c in found]
    return (
        here
        + "; under the same cost model the quantum segment would only win "
        + " or ".join(parts)
        + " active parameters (read-out included)."
    )


def verdict(summary: dict[str, Any], *, crossovers: list[dict] | None = None) -> list[str]:
    """Three to five plain sentences from ``summary`` (a ``summary.json`` dict); parts whose
    numbers are absent are left out. ``crossovers``: the ``"crossovers"`` list of
    :func:`qcarleman.quantum.cost.breakeven.breakeven` (see :func:`breakeven_crossovers`)."""
    parts = (
        _dissipation(summary),
        _accuracy(summary),
        _cost(summary),
        _breakeven(summary, crossovers),
    )
    return [p for p in parts if p]


def breakeven_crossovers(summary: dict[str, Any]) -> list[dict] | None:
    """The break-even scan (n = 10³…10⁹, ALGORITHM.md §7) at the run's own segment length T,
    order N, ε, batch size and FLOP rate; None when the summary has no estimate."""
    from ..quantum.cost.breakeven import breakeven
    from ..quantum.cost.inputs import CostModel

    e = summary.get("estimate")
    if not e or not e.get("T"):
        return None
    train = (summary.get("config") or {}).get("sparse") or {}
    model = CostModel(flop_rate=float(e.get("flop_rate") or 1e15))
    res = breakeven(
        Ts=(int(e["T"]),),
        N=int(e.get("N", 2)),
        epsilon=float(e.get("epsilon") or 1e-2),
        batch_size=int(train.get("batch_size") or 128),
        model=model,
    )
    return res["crossovers"]
