"""Carleman linearization: the discrete lift of a quadratic map (ALGORITHM.md §2) and the
history linear system solved by the QLSA (§3)."""

from .continuous import ContinuousCarleman
from .discrete import CarlemanSystem, compositions
from .history import KAPPA_METHODS, HistorySystem

__all__ = [
    "CarlemanSystem",
    "HistorySystem",
    "KAPPA_METHODS",
    "compositions",
    "ContinuousCarleman",
]
