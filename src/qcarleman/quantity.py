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

__all__ = ["Kind", "KINDS", "Quantity"]

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
