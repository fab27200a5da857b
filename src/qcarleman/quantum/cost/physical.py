r"""Physical (surface-code) cost of a logical circuit (ALGORITHM.md §7, "physical qubits and
runtime from a surface-code estimator").

Input: logical counts (logical qubits Q, T-count, optionally measurements), a qubit model and a
total error budget. Two producers; every result says which one made it (``producer``):

* ``"qsharp"``: Microsoft's resource estimator (``qdk.estimator.LogicalCounts.estimate``, from the
  optional extra ``qcarleman[estimator]``; the ``qsharp`` package is a shim over ``qdk``).
  Imported lazily; offline. Its 64-bit counters overflow for T-counts beyond ~10¹⁸, so larger
  counts are refused (``None``) and only the simple model answers.
* ``"surface-code model"``: :func:`surface_code_model`, a documented re-derivation of the same
  estimator's default models (Beverland et al., "Assessing requirements to scale to practical
  quantum advantage", arXiv:2211.07629, App. B–C), numpy only:

  - logical error per patch and cycle (Fowler et al., PRA 86, 032324 (2012), Eq. 11 form;
    Beverland et al. Eq. (B1) constants): P_L(d) = a·(p/p*)^((d+1)/2), a = 0.03, p* = 0.01;
  - physical qubits per logical qubit 2d², logical cycle time (4·t_2q + 2·t_meas)·d (Beverland
    et al. Table V, gate-based surface code);
  - layout (Beverland et al. Eq. (D1), PSSPC): Q_alg = 2Q + ⌈√(8Q)⌉ + 1 logical patches;
  - logical depth C = T-count + measurements (T gates applied one per logical cycle; no
    rotations or Toffolis in our counts);
  - error budget ε_tot split in halves between logical errors and T states (no rotations):
    distance d = smallest odd d with Q_alg·C·P_L(d) ≤ ε_tot/2; T-state error ≤ ε_tot/(2·T);
  - T factories: rounds of the "15-to-1 space-efficient" unit (Beverland et al. App. C; Litinski,
    "Magic state distillation: not as costly as you think", Quantum 3, 205 (2019)): 20 patches,
    13 logical cycles at its distance d_r, output error 35·p_in³ + 7.1·P_L(d_r) (Bravyi–Kitaev
    15-to-1 cubic suppression plus Clifford noise), first input p_in = p (injection). Round r
    uses 15^(R−r) units (no allowance for distillation failures); the fewest rounds (≤ 3) that
    reach the target, with the round distances (odd, non-decreasing, ≤ 50) of smallest
    space-time volume found by exhaustive search. A factory occupies the largest round's
    footprint and runs the rounds in sequence; the number
    of factories is ⌈T·t_factory / t_algorithm⌉ so that T states arrive at the algorithm's pace.
    This factory model is an approximation of the estimator's search (it does not optimize
    over unit types), labelled as such in the output.

Units: times in ns, as in the estimator.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ...errors import UsageError
from ...quantity import human_count, human_seconds

__all__ = [
    "QubitModel",
    "Factory",
    "PhysicalEstimate",
    "QUBIT_MODELS",
    "surface_code_model",
    "qsharp_estimate",
    "qsharp_available",
    "physical_estimate",
    "QSHARP_MAX_T",
]

# Above this T-count the estimator's u64 runtime (ns) can overflow (it hangs at 2^63).
QSHARP_MAX_T = 10**17


@dataclass(frozen=True)
class QubitModel:
    """Physical qubit parameters (Beverland et al. arXiv:2211.07629 Table II, gate-based)."""

    name: str
    error_rate: float  # p: Clifford, T and measurement error per operation
    gate_ns: float  # one- and two-qubit gate time
    meas_ns: float  # one-qubit measurement time


QUBIT_MODELS: dict[str, QubitModel] = {
    "qubit_gate_ns_e3": QubitModel("qubit_gate_ns_e3", 1e-3, 50.0, 100.0),
    "qubit_gate_ns_e4": QubitModel("qubit_gate_ns_e4", 1e-4, 50.0, 100.0),
    "qubit_gate_us_e3": QubitModel("qubit_gate_us_e3", 1e-3, 100_000.0, 100_000.0),
    "qubit_gate_us_e4": QubitModel("qubit_gate_us_e4", 1e-4, 100_000.0, 100_000.0),
}


@dataclass(frozen=True, kw_only=True)
class Factory:
    """A T factory: distillation rounds of 15-to-1 units (module docs); times in ns."""

    rounds: int
    units_per_round: list[int]
    code_distance_per_round: list[int]
    physical_qubits: int
    runtime_ns: float
    output_error: float


@dataclass(frozen=True, kw_only=True)
class PhysicalEstimate:
    """Physical cost of a logical circuit from one ``producer`` ("qsharp" or "surface-code
    model"). ``feasible`` False (with ``reason``) leaves the distance-dependent fields None.
    ``raw`` holds the qsharp report (not part of :meth:`to_dict`)."""

    producer: str
    feasible: bool
    qubit: QubitModel
    error_budget: float
    algorithmic_logical_qubits: int
    logical_depth: float
    reason: str = ""
    code_distance: int | None = None
    logical_cycle_ns: float | None = None
    logical_error_rate: float | None = None
    physical_qubits: int | None = None
    physical_qubits_algorithm: int | None = None
    physical_qubits_factories: int | None = None
    t_factories: int | None = None
    runtime_ns: float | None = None
    factory: Factory | None = None
    assumptions: str = ""
    raw: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def runtime_s(self) -> float | None:
        return None if self.runtime_ns is None else self.runtime_ns * 1e-9

    def to_dict(self) -> dict[str, Any]:
        """JSON form: every field but ``raw``; unset optional fields are dropped."""
        out = {k: v for k, v in asdict(self).items() if k != "raw"}
        return {k: v for k, v in out.items() if v is not None and v != ""}

    def line(self) -> str:
        """One line of text: qubits, runtime, distance, factories (or why infeasible)."""
        if not self.feasible:
            return f"infeasible within its limits ({self.reason})"
        assert self.physical_qubits is not None and self.runtime_s is not None  # set if feasible
        return (
            f"{self.physical_qubits:.4g} physical qubits "
            f"({human_count(self.physical_qubits)}), runtime {self.runtime_s:.4g} s "
            f"(≈ {human_seconds(self.runtime_s)}), "
            f"code distance {self.code_distance}, {self.t_factories} T factories"
        )


_A, _P_TH = 0.03, 0.01  # P_L = a (p/p*)^((d+1)/2)
_MAX_D = 50  # the estimator's maxCodeDistance
_UNIT_PATCHES, _UNIT_CYCLES = 20, 13  # 15-to-1 space-efficient unit
_MAX_ROUNDS = 3


def _model(qubit: str | QubitModel) -> QubitModel:
    if isinstance(qubit, QubitModel):
        return qubit
    if qubit not in QUBIT_MODELS:
        raise UsageError(f"qubit model {qubit!r} is unknown; use one of {', '.join(QUBIT_MODELS)}")
    return QUBIT_MODELS[qubit]


def logical_error_rate(d: int, p: float) -> float:
    """P_L(d) = 0.03·(p/0.01)^((d+1)/2) per patch and logical cycle (Fowler 2012 Eq. 11 form,
    Beverland 2022 constants)."""
    return _A * (p / _P_TH) ** ((d + 1) / 2)


@functools.lru_cache(maxsize=64)
def _rates(p: float, max_d: int) -> tuple[tuple[int, ...], tuple[float, ...], bool]:
    """Odd distances 3..max_d, their −P_L(d) (ascending when P_L falls with d, p ≤ p_th) and
    whether that order holds: the table :func:`_distance` searches."""
    ds = tuple(range(3, max_d + 1, 2))
    neg = tuple(-logical_error_rate(d, p) for d in ds)
    return ds, neg, all(a <= b for a, b in zip(neg, neg[1:]))


def _distance(target: float, p: float, max_d: int = _MAX_D) -> int | None:
    """Smallest odd d ≥ 3 with P_L(d) ≤ target (None beyond ``max_d``)."""
    ds, neg, falling = _rates(p, max_d)
    if falling:  # binary search on the sorted table: the same d as a scan
        i = bisect.bisect_left(neg, -target)
        return ds[i] if i < len(ds) else None
    return next((d for d, r in zip(ds, neg) if -r <= target), None)


def surface_code_model(
    logical_qubits: int,
    t_count: float,
    measurements: float = 0,
    qubit: str | QubitModel = "qubit_gate_ns_e3",
    error_budget: float = 1e-3,
    max_distance: int = _MAX_D,
) -> PhysicalEstimate:
    """Physical qubits and runtime of a T-count circuit on a surface-code machine (module docs).

    ``max_distance`` (default 50, the estimator's limit) may be raised to extrapolate the
    algorithm's code distance for astronomically long circuits (factories keep d ≤ 50).

    Returns a :class:`PhysicalEstimate`; ``feasible`` False (with ``reason``) when no
    distance ≤ ``max_distance`` or no ≤ 3-round factory meets the budget.
    """
    m = _model(qubit)
    p = m.error_rate
    if logical_qubits < 1 or t_count < 0 or not 0 < error_budget < 1:
        raise UsageError("surface-code model needs ≥ 1 logical qubit, T ≥ 0 and 0 < budget < 1")
    Q = int(logical_qubits)
    q_alg = 2 * Q + math.ceil(math.sqrt(8 * Q)) + 1
    depth = max(float(t_count) + float(measurements), 1.0)
    has_t = t_count > 0
    eps_logical = error_budget / 2 if has_t else error_budget
    out = PhysicalEstimate(
        producer="surface-code model",
        feasible=False,
        qubit=m,
        error_budget=error_budget,
        algorithmic_logical_qubits=q_alg,
        logical_depth=depth,
        assumptions="Beverland et al. arXiv:2211.07629 App. B-D formulas re-derived; "
        "T factories approximated by 15-to-1 space-efficient rounds (not optimized)",
    )
    d = _distance(eps_logical / (q_alg * depth), p, max_distance)
    if d is None:
        return replace(out, reason=f"needs code distance > {max_distance}")
    cycle_ns = (4 * m.gate_ns + 2 * m.meas_ns) * d
    runtime = depth * cycle_ns
    phys_alg = q_alg * 2 * d * d
    out = replace(
        out,
        code_distance=d,
        logical_cycle_ns=cycle_ns,
        logical_error_rate=logical_error_rate(d, p),
        physical_qubits_algorithm=phys_alg,
        runtime_ns=runtime,
    )
    if not has_t:
        return replace(
            out, feasible=True, physical_qubits=phys_alg, physical_qubits_factories=0, t_factories=0
        )
    best = _best_factory(p, error_budget / 2 / t_count, 4 * m.gate_ns + 2 * m.meas_ns, max_distance)
    if best is None:
        return replace(
            out, runtime_ns=None, reason=f"no T factory of ≤ 3 rounds with d ≤ {max_distance}"
        )
    dists, units, factory_qubits, factory_ns, p_out = best
    n_fact = max(1, math.ceil(t_count * factory_ns / runtime))
    phys_fact = n_fact * factory_qubits
    return replace(
        out,
        feasible=True,
        physical_qubits=phys_alg + phys_fact,
        physical_qubits_factories=phys_fact,
        t_factories=n_fact,
        factory=Factory(
            rounds=len(dists),
            units_per_round=list(units),
            code_distance_per_round=list(dists),
            physical_qubits=factory_qubits,
            runtime_ns=factory_ns,
            output_error=p_out,
        ),
    )


@functools.lru_cache(maxsize=16)
def _early_rounds(p: float, max_d: int, rounds: int) -> tuple[tuple[tuple[int, ...], float], ...]:
    """Every non-decreasing choice of odd distances 3..min(max_d, 50) for the first
    ``rounds − 1`` rounds of a 15-to-1 factory, with the error 35·p_in³ distilled after them
    (p_in ← 35·p_in³ + 7.1·P_L(d_r) per round, p_in = p before the first): independent of the
    target, so computed once per (p, max_d)."""
    early = range(3, min(max_d, _MAX_D) + 1, 2)
    out = []
    for combo in itertools.product(early, repeat=rounds - 1):
        if any(a > b for a, b in zip(combo, combo[1:])):
            continue  # later rounds need at least the same protection
        p_in = p
        for d_r in combo:
            p_in = 35.0 * p_in**3 + 7.1 * logical_error_rate(d_r, p)
        out.append((combo, 35.0 * p_in**3))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _best_factory(p: float, target: float, cycle_per_d_ns: float, max_d: int = _MAX_D):
    """Search over ≤ 3 rounds for the factory with the smallest space-time volume (qubits × time)
    whose output error is ≤ target: all non-decreasing odd distances 3..50 for the earlier rounds,
    and for the last round the smallest distance (≤ max_d) that reaches the target."""
    best = None
    for rounds in range(1, _MAX_ROUNDS + 1):
        for combo, distill in _early_rounds(p, max_d, rounds):
            if distill >= target:
                continue
            d_last = _distance((target - distill) / 7.1, p, max_d)
            if d_last is None:
                continue
            dists = [*combo, max(d_last, combo[-1] if combo else 3)]
            p_out = distill + 7.1 * logical_error_rate(dists[-1], p)
            units = [15 ** (rounds - 1 - r) for r in range(rounds)]
            qubits = max(u * _UNIT_PATCHES * 2 * d * d for u, d in zip(units, dists))
            ns = sum(_UNIT_CYCLES * cycle_per_d_ns * d for d in dists)
            if best is None or qubits * ns < best[2] * best[3]:
                best = (tuple(dists), tuple(units), qubits, ns, p_out)
        if best is not None:
            return best  # fewer rounds first, as the estimator does
    return None


def qsharp_available() -> bool:
    """True when the optional ``qdk``/``qsharp`` resource estimator can be imported."""
    try:
        _estimator_module()
    except ImportError:
        return False
    return True


def _estimator_module():
    try:
        from qdk import estimator  # qsharp ≥ 1.31 is a shim over qdk
    except ImportError:
        from qsharp import estimator  # older standalone qsharp
    return estimator


def qsharp_estimate(
    logical_qubits: int,
    t_count: float,
    measurements: float = 0,
    qubit: str = "qubit_gate_ns_e3",
    error_budget: float = 1e-3,
) -> PhysicalEstimate | None:
    """Microsoft resource estimator on ``LogicalCounts`` (the estimator's defaults otherwise:
    surface code, PSSPC layout). None when the package is absent or the T-count exceeds
    :data:`QSHARP_MAX_T` (its 64-bit counters). The raw report is under ``raw``."""
    _model(qubit)
    if t_count > QSHARP_MAX_T or not qsharp_available():
        return None
    est = _estimator_module()
    counts = est.LogicalCounts(
        {
            "numQubits": int(logical_qubits),
            "tCount": int(round(t_count)),
            "measurementCount": int(round(measurements)),
        }
    )
    r = counts.estimate(params={"errorBudget": error_budget, "qubitParams": {"name": qubit}})
    pc, br, lq = r["physicalCounts"], r["physicalCounts"]["breakdown"], r["logicalQubit"]
    return PhysicalEstimate(
        producer="qsharp",
        feasible=True,
        qubit=_model(qubit),
        error_budget=error_budget,
        algorithmic_logical_qubits=int(br["algorithmicLogicalQubits"]),
        logical_depth=float(br["logicalDepth"]),
        code_distance=int(lq["codeDistance"]),
        logical_cycle_ns=float(lq["logicalCycleTime"]),
        logical_error_rate=float(lq["logicalErrorRate"]),
        physical_qubits=int(pc["physicalQubits"]),
        physical_qubits_algorithm=int(br["physicalQubitsForAlgorithm"]),
        physical_qubits_factories=int(br["physicalQubitsForTfactories"]),
        t_factories=int(br["numTfactories"]),
        runtime_ns=float(pc["runtime"]),
        raw={k: r[k] for k in ("physicalCounts", "logicalQubit", "tfactory", "jobParams")},
    )


def physical_estimate(
    logical_qubits: int,
    t_count: float,
    measurements: float = 0,
    qubit: str = "qubit_gate_ns_e3",
    error_budget: float = 1e-3,
) -> tuple[PhysicalEstimate | None, PhysicalEstimate]:
    """(qsharp result or None, surface-code model result) for the same logical counts."""
    q = qsharp_estimate(logical_qubits, t_count, measurements, qubit, error_budget)
    s = surface_code_model(logical_qubits, t_count, measurements, qubit, error_budget)
    return q, s
