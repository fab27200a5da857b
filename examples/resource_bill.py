"""The fault-tolerant resource bill of one quantum segment, and the break-even plot.

The segment: T = 10 sparse gradient steps of the paper's ResNet-32×4 after 90% pruning
(P = 7,451,044 parameters, n = 745,104 active), Carleman order N = 2, target error ε = 10⁻²,
in the almost-dissipative regime ρ = 1 + 1/T (assumed; ``qcarleman spectrum RUN`` measures it on a
real run). ``qc.estimate`` prices it (ALGORITHM.md §7): logical qubits, κ, query counts, T-count,
tomography shots, the surface-code machine and its wall clock, against the FLOPs of the same
steps on a 10¹⁵ FLOP/s classical machine. ``qc.breakeven`` repeats the estimate over
n = 10³…10⁹ and T ∈ {10, 50} in the fully and almost dissipative regimes and finds the n where
the quantum time would drop below the classical one, if any; ``qc.plot_breakeven`` draws it.

Run: ``python examples/resource_bill.py [breakeven.png]`` (default: a temporary folder; ≈ 5 s).
"""

import sys
import tempfile
from pathlib import Path

import qcarleman as qc
from qcarleman.quantity import human_seconds

T = 10
bill = qc.estimate(
    problem=qc.Problem(n=745_104, P=7_451_044, T=T, N=2, epsilon=1e-2, batch_size=128),
    conditioning=qc.Conditioning(
        rho=qc.Quantity(1 + 1 / T, "assumed", source="almost dissipative")
    ),
    model=qc.CostModel(flop_rate=1e15),
)
print("The bill of one segment (figure, value, formula [kind; assumption]):")
print(bill.summary())
print(repr(bill))

be = qc.breakeven(Ts=(10, 50), N=2, epsilon=1e-2, model=qc.CostModel(flop_rate=1e15))
print("Break-even (smallest n where the quantum segment would be faster):")
for c in be["crossovers"]:
    where = "none in n = 10³…10⁹" if c["crossover_n"] is None else f"n ≈ {c['crossover_n']:.3g}"
    kind = "with download" if c["download"] else "one output sample"
    print(f"  {c['regime']:<19} T = {c['T']:<3} {kind:<18} {where}")

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "breakeven.png"
qc.plot_breakeven(be, str(out))
w = bill.wall_clock
print(
    f"verdict: one {T}-step segment needs {bill.logical_qubits} logical qubits and "
    f"≈ {human_seconds(w.quantum_s)} against ≈ {human_seconds(w.classical_s)} classically "
    f"→ {w.winner}"
)
print(f"break-even plot: {out}")
