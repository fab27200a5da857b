"""Quantum layer: emulated QLSA solvers, readout/upload, and resource estimates."""
