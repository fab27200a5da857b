"""Your own PyTorch model through qcarleman's public API: prune → spectrum → emulate → estimate.

A ten-line model (LayerNorm + GELU MLP) is trained briefly on scikit-learn's digits (bundled, no
download), then

1. ``qc.prune_global`` removes 80% of its weights and prints what it pruned;
2. ``qc.model_spectrum`` measures the Hessian spectrum of the active (unpruned) coordinates: the
   regime, the dissipative window t* and ρ (ALGORITHM.md §6);
3. ``qc.GDMap`` writes 8 sparse SGD steps (η = 0.02) as a quadratic map and ``qc.emulation_report``
   compares the Carleman emulation (orders N = 1, 2) with true gradient descent;
4. ``qc.estimate`` prices one quantum segment of those 8 steps against classical training.

It ends with a verdict in plain sentences. Run: ``python examples/your_model.py`` (≈ 10 s).
"""

import torch
from sklearn.datasets import load_digits
from torch import nn

import qcarleman as qc
from qcarleman.quantity import human_seconds


class Net(nn.Module):  # your model: anything differentiable twice works
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 24), nn.LayerNorm(24), nn.GELU())
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        return self.head(self.body(x))


torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data[:512] / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target[:512])
model, loss_fn = Net(), nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _epoch in range(30):  # a short dense training, so that pruning hits a trained network
    for i in range(0, 512, 64):
        opt.zero_grad()
        loss_fn(model(x[i : i + 64]), y[i : i + 64]).backward()
        opt.step()

# 1. prune 80% of the weight matrices (the classifier too), printing the per-tensor summary
mask = qc.prune_global(model, 0.8, include_classifier=True, verbose=True)
lr, steps = 0.02, 8  # the sparse phase: learning rate η and the segment's horizon T
batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 64 * steps, 64)]

# 2. is sparse training dissipative? (one batch, the step's map; ALGORITHM.md §6)
spec = qc.model_spectrum(model, loss_fn, batches[:1], lr=lr, mask=mask, nonlinear=True)
print(
    f"spectrum: n = {spec.n} active, regime {spec.regime}, t* = {spec.window}, ρ = {spec.rho:.4g}"
)

# 3. the next 8 SGD steps as a quadratic map, emulated by Carleman orders 1 and 2
gd = qc.GDMap(model, loss_fn, batches, lr=lr, mask=mask, per_step=True)
emu = qc.emulation_report(gd, steps, order=2)
err = {N: e[-1] for N, e in emu["rel_error_vs_gd"].items()}
print(
    f"emulation after {steps} steps, relative error vs true SGD: "
    + ", ".join(f"N = {N}: {e:.2e}" for N, e in err.items())
)

# 4. the fault-tolerant bill of one 8-step segment against classical training
bill = qc.estimate(
    problem=qc.Problem(
        n=gd.n,
        P=sum(p.numel() for p in model.parameters()),
        T=steps,
        N=2,
        epsilon=1e-2,
        batch_size=64,
        flops_per_step=qc.step_flops(model, (64,), 64, mask),
    ),
    conditioning=qc.Conditioning.from_spectrum(spec),
    model=qc.CostModel(flop_rate=1e15),
)
print(repr(bill))

clock = bill.wall_clock
window = (
    f"dissipative for the first {spec.window} steps"
    if spec.window
    else "not dissipative (E(1) > 1)"
)
print("Verdict:")
print(
    f" 1. Sparse training of this model right after pruning is {window} "
    f"(regime: {spec.regime}, ρ = {spec.rho:.4f})."
)
print(
    f" 2. The order-2 Carleman emulation of {steps} SGD steps is off by {err['2']:.1e} "
    f"(relative, vs true SGD); order 1 by {err['1']:.1e}."
)
print(
    f" 3. One {steps}-step segment on a fault-tolerant machine: {bill.logical_qubits} logical "
    f"qubits and ≈ {human_seconds(clock.quantum_s)}, against ≈ "
    f"{human_seconds(clock.classical_s)} classically → {clock.winner} wins."
)
