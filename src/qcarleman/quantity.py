"""A number with the kind of figure it is: every κ, P_succ, ρ or cost the tool reports says
whether it is exact, measured, estimated (with an uncertainty), a bound, or assumed.

The JSON form is ``{"value": …, "kind": …}`` (plus ``"uncertainty"``, ``"unit"`` and ``"source"``
when set), the output contract of every κ in ``--json`` output and ``summary.json``.

>>> k = Quantity(730.2, "exact", source="SVD of the dense history matrix")
>>> k.to_json()
{'value': 730.2, 'kind': 'exact', 'source': 'SVD of the dense history matrix'}
>>> Quantity.from_json({"value": 45.7, "kind": "bound"}).kind
'bound'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .errors import UsageError

__all__ = ["Kind", "KINDS", "Quantity", "human_seconds", "human_count"]

Kind = Literal["exact", "measured", "estimated", "bound", "assumed"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class Quantity:
    """``value`` of the given ``kind``; ``uncertainty`` (same unit, one standard error or a stated
    band) for measured/estimated figures, ``unit`` ('' for dimensionless), ``source`` (formula or
    method, with its reference)."""

    value: float
    kind: Kind
    uncertainty: float | None = None
    unit: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(
                f"unknown kind {self.kind!r} of a figure; use one of {', '.join(KINDS)}"
            )

    def to_json(self) -> dict[str, Any]:
        """``{"value", "kind"}`` plus the optional fields that are set (non-finite → None)."""
        v = float(self.value)
        out: dict[str, Any] = {"value": v if math.isfinite(v) else None, "kind": self.kind}
        if self.uncertainty is not None:
            out["uncertainty"] = float(self.uncertainty)
        if self.unit:
            out["unit"] = self.unit
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Quantity:
        """Inverse of :meth:`to_json` (a missing value reads as NaN)."""
        if not isinstance(obj, dict) or "kind" not in obj:
            raise UsageError(f"expected an object with 'value' and 'kind', got {obj!r}")
        value = obj.get("value")
        return cls(
            value=math.nan if value is None else float(value),
            kind=obj["kind"],
            uncertainty=obj.get("uncertainty"),
            unit=obj.get("unit", ""),
            source=obj.get("source", ""),
        )

    def __format__(self, spec: str) -> str:
        text = format(self.value, spec or ".4g")
        if self.uncertainty is not None:
            text += f" ± {format(self.uncertainty, spec or '.2g')}"
        return f"{text}{' ' + self.unit if self.unit else ''} ({self.kind})"


_YEAR_S = 365.25 * 86400
_UNIVERSE_YEARS = 1.38e10  # age of the universe (Planck 2018), for scale only
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_BIG = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def human_count(x: float, unit: str = "") -> str:
    """A large count in words, e.g. ``human_count(5.9e6, "qubits")`` → ``"5.9 million qubits"``;
    below 10⁴ the plain integer with separators; above 10¹⁵ a power of ten (``"9.5 × 10¹⁹"``)."""
    x = float(x)
    tail = f" {unit}" if unit else ""
    if not math.isfinite(x):
        return f"{'unbounded' if x > 0 else 'undefined'}{tail}"
    if abs(x) < 1e4:
        return f"{x:,.0f}{tail}" if x == int(x) or abs(x) >= 100 else f"{x:.3g}{tail}"
    if abs(x) >= 1e15:
        e = int(math.floor(math.log10(abs(x))))
        m = f"{x / 10**e:.2g}"
        power = "10" + str(e).translate(_SUPERSCRIPT)
        return f"{'' if m == '1' else m + ' × '}{power}{tail}"
    for scale, word in _BIG:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {word}{tail}"
    return f"{x:.3g}{tail}"  # pragma: no cover - every |x| ≥ 10⁴ has a scale


def human_seconds(s: float) -> str:
    """A duration in the unit a person reads: ns, µs, ms, s, minutes, hours, days or years
    (years in words, and as a multiple of the age of the universe beyond it)."""
    s = float(s)
    if not math.isfinite(s):
        return "unbounded" if s > 0 else "undefined"
    if s < 0:
        raise UsageError(f"duration {s} s is negative")
    for limit, scale, unit in (
        (1e-6, 1e-9, "ns"),
        (1e-3, 1e-6, "µs"),
        (1.0, 1e-3, "ms"),
        (120.0, 1.0, "s"),
        (7200.0, 60.0, "minutes"),
        (2 * 86400.0, 3600.0, "hours"),
        (_YEAR_S, 86400.0, "days"),
    ):
        if s < limit:
            return f"{s / scale:.3g} {unit}"
    years = s / _YEAR_S
    text = f"{years:.3g} years" if years < 1e4 else human_count(years, "years")
    if years >= _UNIVERSE_YEARS:
        text += f" ({human_count(round(years / _UNIVERSE_YEARS))}× the age of the universe)"
    return text
