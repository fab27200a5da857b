"""Quantum layer: emulated QLSA solvers, readout/upload, and resource estimates.

``solve`` (one interface: exact / hhl / qsvt), ``hhl`` (gate-level HHL), ``qsvt`` (polynomial,
angles, circuit, matrix level), ``readout`` (tomography, norm, download), ``upload`` (state
preparation and its cost); conventions in docs/quantum.md. PennyLane is imported lazily.
"""
