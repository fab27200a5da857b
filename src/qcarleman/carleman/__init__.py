"""Carleman linearization: the discrete lift of a quadratic map (ALGORITHM.md §2) and the
history linear system solved by the QLSA (§3)."""

from .blocks import block_sums, compositions, inverse_norm_bound
from .continuous import ContinuousCarleman
from .discrete import CarlemanSystem
from .history import KAPPA_METHODS, HistorySystem

__all__ = [
    "CarlemanSystem",
    "HistorySystem",
    "KAPPA_METHODS",
    "compositions",
    "block_sums",
    "inverse_norm_bound",
    "ContinuousCarleman",
]
