"""Analysis of training runs, read-only over run directories (ALGORITHM.md §4–§7).

``spectrum`` (Hessian spectra, E(t), window and regime per checkpoint), ``emulate`` (emulated
Carleman trajectories against true gradient descent), ``estimate_run`` (the fault-tolerant bill
with ρ, ‖f0‖, ‖F2‖ measured on a checkpoint).
"""
