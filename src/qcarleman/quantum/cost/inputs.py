r"""The inputs of a resource estimate as value types (ALGORITHM.md §7): what is run
(:class:`Problem`), how well conditioned it is (:class:`Conditioning`) and how it is priced
(:class:`CostModel`). All are frozen and keyword-only; constructing one validates its ranges and
raises a one-line :class:`~qcarleman.errors.UsageError` naming the field and the fix.

Conditioning numbers are :class:`~qcarleman.quantity.Quantity` values, so every κ, ρ or P_succ
says whether it is exact, measured, a bound or assumed, and where it came from; a plain number
passed instead is read as ``Quantity(x, "assumed", source="user input")``.

>>> Problem(n=100, T=20).d, Problem(n=100, T=20, momentum=True).d
(100, 200)
>>> Conditioning(rho=1.05).rho.kind
'assumed'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ...errors import UsageError
from ...quantity import Quantity
from .formulas import SOLVERS
from .physical import QUBIT_MODELS

__all__ = ["Problem", "Conditioning", "StepFlops", "CostModel", "as_quantity", "split_inputs"]


def as_quantity(value: Quantity | float | None, name: str) -> Quantity | None:
    """``value`` as a Quantity (a plain number is ``assumed``, from "user input"); its value must
    be finite."""
    if value is None:
        return None
    q = (
        value
        if isinstance(value, Quantity)
        else Quantity(float(value), "assumed", source="user input")
    )
    if not math.isfinite(float(q.value)):
        raise UsageError(f"{name} = {q.value} is not finite; pass a finite number")
    return q


def _positive(name: str, value: float | None, *, integer: bool = False, flag: str = "") -> None:
    if value is None:
        return
    what = "a positive integer" if integer else "a finite number > 0"
    bad = not math.isfinite(float(value)) or value <= 0
    if integer and not bad:
        bad = float(value) != int(value)
    if bad:
        raise UsageError(f"{name} = {value} is invalid; pass {what}{f' ({flag})' if flag else ''}")


def _json(obj) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.to_json() if hasattr(v, "to_json") else v
    return out


@dataclass(frozen=True, kw_only=True)
class StepFlops:
    """Classical FLOPs of one training step on B examples: ``sparse`` (active weights only) and
    ``dense`` (every weight), each a Quantity with its kind. Invariant: dense ≥ sparse > 0."""

    sparse: Quantity
    dense: Quantity

    def __post_init__(self) -> None:
        _positive("sparse FLOPs per step", self.sparse.value)
        _positive("dense FLOPs per step", self.dense.value)
        if self.dense.value < self.sparse.value:
            raise UsageError(
                f"dense FLOPs per step {self.dense.value:.4g} < sparse {self.sparse.value:.4g}; "
                "count both with the same rule (qcarleman.training.flops.step_flops)"
            )

    def to_json(self) -> dict[str, Any]:
        return {"sparse": self.sparse.to_json(), "dense": self.dense.to_json()}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One quantum segment (ALGORITHM.md §1–§3, §7).

    n active parameters (P in total, P ≥ n), horizon T, Carleman order N, p idle steps (None: T),
    target ℓ2 error ε of the downloaded parameters, batch size B of the classical steps;
    ``momentum`` doubles the state (d = 2n); ``symmetric`` lifts on the symmetric subspace.
    Structure of the map: ``sparsity`` s = nonzeros per row of H (None: n, dense, assumed), or
    sparse access to L itself (``row_sparsity``, ``col_sparsity``, ``max_entry``).
    ``flops_per_step``: the measured classical count (None: the analytic 6·w·B rule)."""

    n: int
    T: int
    N: int = 2
    P: int | None = None
    p: int | None = None
    epsilon: float = 1e-2
    batch_size: int = 128
    momentum: bool = False
    symmetric: bool = False
    sparsity: Quantity | int | None = None
    row_sparsity: int | None = None
    col_sparsity: int | None = None
    max_entry: float | None = None
    flops_per_step: StepFlops | None = None

    def __post_init__(self) -> None:
        _positive("n (active parameters)", self.n, integer=True, flag="--active")
        _positive("T (horizon)", self.T, integer=True, flag="--steps")
        _positive("N (Carleman order)", self.N, integer=True, flag="--order")
        if self.P is not None and self.P < self.n:
            raise UsageError(
                f"P = {self.P} parameters is fewer than the n = {self.n} active ones; "
                "pass P ≥ n (--params)"
            )
        _positive("P (parameters)", self.P, integer=True, flag="--params")
        _positive("batch size", self.batch_size, integer=True, flag="--batch-size")
        if self.p is not None and (float(self.p) != int(self.p) or self.p < 0):
            raise UsageError(f"idle steps p = {self.p} is invalid; pass an integer ≥ 0 (--idle)")
        if not (math.isfinite(self.epsilon) and 0 < self.epsilon < 1):
            raise UsageError(f"target error ε = {self.epsilon} is invalid; pass 0 < ε < 1")
        s = as_quantity(self.sparsity, "sparsity s")
        if s is not None:
            _positive("sparsity s", s.value, integer=True, flag="--sparsity")
        object.__setattr__(self, "sparsity", s)
        _positive("row sparsity of L", self.row_sparsity, integer=True, flag="--row-sparsity")
        _positive("column sparsity of L", self.col_sparsity, integer=True, flag="--col-sparsity")
        _positive("max |L_ij|", self.max_entry, flag="--max-entry")
        if (self.row_sparsity is None) != (self.max_entry is None):
            raise UsageError(
                "sparse access needs both the row sparsity and max |L_ij| of L; pass both "
                "(--row-sparsity and --max-entry) or neither"
            )

    @property
    def d(self) -> int:
        """State dimension: n, or 2n with heavy-ball momentum (ALGORITHM.md §1)."""
        return 2 * self.n if self.momentum else self.n

    @property
    def idle(self) -> int:
        """p, defaulting to T."""
        return self.T if self.p is None else int(self.p)

    def to_json(self) -> dict[str, Any]:
        return _json(self) | {"p": self.idle, "d": self.d}


@dataclass(frozen=True, kw_only=True)
class Conditioning:
    """Conditioning of the history system (ALGORITHM.md §3, §6, §6.1), each a Quantity.

    ``kappa`` = κ(L) (and ``norm_L`` = ‖L‖ if known), or the §3 bound from ``rho`` = ‖F1‖₂ (for
    the map actually trained: ‖A_lin‖₂, §6.1), ``f0_norm`` = ‖f0‖, ``F2_norm`` = ‖F2‖ and the
    scale ``gamma`` (None: √(‖f0‖/‖F2‖)). ``p_succ`` = P_succ of the post-selection (None: the
    stated equal-norm model, assumed)."""

    rho: Quantity | float | None = None
    f0_norm: Quantity | float | None = None
    F2_norm: Quantity | float | None = None
    kappa: Quantity | float | None = None
    norm_L: Quantity | float | None = None
    p_succ: Quantity | float | None = None
    gamma: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "gamma":
                continue
            q = as_quantity(getattr(self, f.name), f.name)
            object.__setattr__(self, f.name, q)
            if q is None:
                continue
            if f.name in ("f0_norm", "F2_norm") and q.value < 0:
                raise UsageError(f"{f.name} = {q.value} is negative; pass a norm ≥ 0")
            if f.name in ("rho", "norm_L") and q.value <= 0:
                raise UsageError(f"{f.name} = {q.value} is invalid; pass a norm > 0")
            if f.name == "kappa" and q.value < 1:
                raise UsageError(f"κ = {q.value} is invalid; a condition number is ≥ 1 (--kappa)")
            if f.name == "p_succ" and not 0 < q.value <= 1:
                raise UsageError(f"P_succ = {q.value} is invalid; pass 0 < P_succ ≤ 1 (--p-succ)")
        if self.gamma is not None:
            _positive("scale γ", self.gamma)

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_spectrum(cls, spectrum: Any, **given: Any) -> Conditioning:
        """The conditioning measured by a spectrum (a
        :class:`~qcarleman.analysis.spectrum.SpectrumReport` or its ``to_dict()``): ρ = ‖A_lin‖₂ of
        the map trained where the report has it (§6.1), else its ρ (§6), and ‖f0‖, ‖F2‖ when it
        was computed with ``nonlinear=True`` (‖F2‖ is a power-method estimate from below), all
        kind "measured"; keywords (``kappa``, ``p_succ``, ``gamma``, or an override) are passed on.
        """
        d = spectrum if isinstance(spectrum, dict) else spectrum.to_json(curves=False)
        norm = d.get("norm_linear")
        if norm is not None and math.isfinite(norm):
            rho, src = norm, "‖A_lin‖₂ of the map trained (SpectrumReport, ALGORITHM.md §6.1)"
        else:
            rho, src = d.get("rho"), "ρ = max|1 − ηλ| (SpectrumReport, ALGORITHM.md §6)"
        out: dict[str, Any] = {}
        if rho is not None:
            out["rho"] = Quantity(float(rho), "measured", source=src)
        for key, name, how in (
            ("f0_norm", "f0_norm", "η‖g‖ (SpectrumReport, nonlinear=True)"),
            ("f2_norm", "F2_norm", "power method on third-order products, a lower bound"),
        ):
            if d.get(key) is not None:
                out[name] = Quantity(float(d[key]), "measured", source=how)
        return cls(**(out | given))


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """How the segment is priced (ALGORITHM.md §7; formulas in :mod:`.formulas`).

    ``solver``: the QLSA of the totals (all are reported); ``qlsa_share``: the part of ε given
    to the QLSA output state, the rest to tomography (½: the stated split); ``download``: read
    the parameters out by tomography (False: one output sample, a QLSA-only lower bound);
    ``shots``: the tomography budget actually used (reported with the error it reaches; the bill
    prices the shots the target ε needs); oracle model (``bits``, ``oracle``, ``entry_mults``);
    ``flop_rate``: classical FLOP/s behind the classical seconds; ``logical_rate``: logical
    operations per second (None: the surface-code logical cycle); ``qubit`` and
    ``error_budget``: the physical qubit model; ``use_qsharp``: ask Microsoft's estimator too."""

    solver: str = "costa-empirical"
    qlsa_share: float = 0.5
    download: bool = True
    shots: int | None = None
    bits: int = 32
    oracle: str = "arithmetic"
    entry_mults: int = 4
    flop_rate: float = 1e15
    logical_rate: float | None = None
    qubit: str = "qubit_gate_ns_e3"
    error_budget: float = 1e-3
    use_qsharp: bool = True

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise UsageError(
                f"QLSA solver {self.solver!r} is unknown; use one of {', '.join(SOLVERS)}"
            )
        if not 0 < self.qlsa_share < 1:
            raise UsageError(f"QLSA error share {self.qlsa_share} is invalid; pass 0 < share < 1")
        _positive("tomography shots", self.shots, integer=True, flag="--shots")
        _positive("oracle bits", self.bits, integer=True, flag="--bits")
        _positive("b-bit multiplications per entry", self.entry_mults, integer=True)
        if self.oracle not in ("arithmetic", "qrom"):
            raise UsageError(f"oracle model {self.oracle!r} is unknown; use 'arithmetic' or 'qrom'")
        _positive("classical FLOP rate", self.flop_rate, flag="--flop-rate")
        _positive("logical rate", self.logical_rate, flag="--logical-rate")
        if self.qubit not in QUBIT_MODELS:
            raise UsageError(
                f"qubit model {self.qubit!r} is unknown; use one of {', '.join(QUBIT_MODELS)}"
            )
        if not 0 < self.error_budget < 1:
            raise UsageError(f"error budget {self.error_budget} is invalid; pass 0 < budget < 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def split_inputs(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Problem keywords, Conditioning keywords) from one mapping of named inputs, None values
    dropped; a name neither type knows is a UsageError."""
    pnames = {f.name for f in fields(Problem)}
    cnames = {f.name for f in fields(Conditioning)}
    given = {k: v for k, v in values.items() if v is not None}
    unknown = sorted(set(given) - pnames - cnames)
    if unknown:
        raise UsageError(
            f"unknown estimate input(s) {', '.join(unknown)}; use fields of Problem or Conditioning"
        )
    return (
        {k: v for k, v in given.items() if k in pnames},
        {k: v for k, v in given.items() if k in cnames},
    )
