r"""Notebook display of result objects: a short ``repr``, an HTML table and an optional
pandas export, shared by :class:`~qcarleman.analysis.spectrum.SpectrumReport`,
:class:`~qcarleman.autodiff.lowrank.LowRankResult`, :class:`~qcarleman.quantum.exact.SolveResult`
and :class:`~qcarleman.quantum.cost.bill.ResourceEstimate`.

Arrays and tensors are never printed: :func:`brief` writes them as ``array(shape, dtype)`` /
``tensor(shape, dtype, device)``. :func:`short_repr` caps the text at :data:`REPR_MAX`
characters. :func:`to_pandas` imports pandas lazily (it is not a dependency) and raises a
one-line :class:`~qcarleman.errors.UsageError` naming the fix when it is missing. Plots of these
objects live in :mod:`qcarleman.report.plots` (``plot_spectrum``, ``plot_trajectory``,
``plot_solve``, ``plot_estimate``), which take the object.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from .errors import UsageError

__all__ = ["REPR_MAX", "brief", "short_repr", "html_table", "to_pandas"]

#: The longest ``repr`` of a result object.
REPR_MAX = 1000


def brief(v: Any) -> str:
    """A short text form of ``v``: arrays/tensors by shape, floats to 4 significant digits,
    long sequences elided."""
    if hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0:
        kind = "tensor" if type(v).__module__.startswith("torch") else "array"
        dev = f", {v.device}" if kind == "tensor" else ""
        dtype = str(v.dtype).removeprefix("torch.")
        return f"{kind}(shape={tuple(v.shape)}, {dtype}{dev})"
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}" if math.isfinite(v) else str(float(v))
    if isinstance(v, dict) and "kind" in v and "value" in v:  # a Quantity's JSON form
        return f"{brief(v['value'])} ({v['kind']})"
    if isinstance(v, list | tuple):
        items = [brief(x) for x in v[:4]]
        more = f", … {len(v) - 4} more" if len(v) > 4 else ""
        return f"[{', '.join(items)}{more}]"
    text = str(v)
    return text if len(text) <= 80 else text[:77] + "…"


def short_repr(name: str, fields: dict[str, Any]) -> str:
    """``Name(key=value, …)`` with every value through :func:`brief`, at most
    :data:`REPR_MAX` characters."""
    text = f"{name}({', '.join(f'{k}={brief(v)}' for k, v in fields.items())})"
    return text if len(text) <= REPR_MAX else text[: REPR_MAX - 2] + "…)"


def html_table(title: str, rows: dict[str, Any], note: str = "") -> str:
    """A two-column HTML table (name, value) with a caption; values through :func:`brief`."""
    body = "".join(
        f"<tr><td><code>{html.escape(str(k))}</code></td><td>{html.escape(brief(v))}</td></tr>"
        for k, v in rows.items()
    )
    foot = f"<p style='font-size:0.85em'>{html.escape(note)}</p>" if note else ""
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        f"<tr><th>quantity</th><th>value</th></tr>{body}</table>{foot}"
    )


def to_pandas(columns: dict[str, Any]):
    """A ``pandas.DataFrame`` of equal-length ``columns`` (pandas imported lazily)."""
    try:
        import pandas as pd
    except ImportError:
        raise UsageError(
            "to_pandas needs pandas, which is not installed; `pip install pandas` or use to_dict()"
        ) from None
    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})
