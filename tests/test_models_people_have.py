"""Models people have — a transformer encoder layer (attention + dropout), an LSTM classifier
with an embedding, a LayerNorm/GELU MLP — go through prune → model_spectrum → GDMap /
emulate_order2 → estimate with finite numbers; pruning reaches their weight matrices and says
so; parameters are chosen by name/regex; the results state how the model was evaluated."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import qcarleman as qc
from qcarleman.autodiff.operators import ActiveParams, LossOperators
from qcarleman.errors import UsageError
from qcarleman.training.pruning import (
    prunable_names,
    prune_global,
    prune_layerwise,
    pruning_summary,
    sparsity_report,
)

torch.set_num_threads(1)


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lstm = nn.LSTM(4, 4, num_layers=2, dropout=0.3, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.fc(h[:, -1])


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.enc = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.1, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.enc(self.inp(x)).mean(1))


def _mlp():
    return nn.Sequential(nn.Linear(6, 12), nn.LayerNorm(12), nn.GELU(), nn.Linear(12, 3))


def _case(name):
    torch.manual_seed(0)
    if name == "lstm":
        return LSTMClassifier(), torch.randint(0, 10, (8, 4))
    if name == "transformer":
        return TinyTransformer(), torch.randn(8, 4, 3)
    return _mlp(), torch.randn(8, 6)


@pytest.mark.parametrize("name", ["transformer", "lstm", "mlp"])
def test_prune_spectrum_emulate_estimate(name):
    model, x = _case(name)
    y = torch.randint(0, 3, (8,))
    loss_fn = nn.CrossEntropyLoss()
    mask = prune_global(model, 0.5, include_classifier=True)
    spec = qc.model_spectrum(
        model, loss_fn, [(x, y)], lr=0.1, mask=mask, nonlinear=True, f2_iters=5
    )
    assert math.isfinite(spec.rho) and math.isfinite(spec.lambda_max)
    assert spec.extra["f0_norm"] > 0 and math.isfinite(spec.extra["f2_norm"])
    assert spec.notes[0].startswith("loss evaluated as a deterministic function")
    gd = qc.GDMap(model, loss_fn, [(x, y)], lr=0.1, mask=mask)
    assert gd.evaluation == spec.notes[0]
    T = 3
    taylor = gd.iterate(np.zeros(gd.dim), T)
    res = qc.emulate_order2(gd, np.zeros(gd.dim), T)
    traj = res.trajectory.numpy()
    assert np.isfinite(traj).all() and np.linalg.norm(traj[-1]) > 0
    assert res.notes == [gd.evaluation]
    # the order-2 emulation tracks the exact cubic-Taylor iteration over a few small steps
    err = np.linalg.norm(traj[-1] - taylor[-1]) / np.linalg.norm(taylor[-1])
    assert err < 0.2
    P = sum(p.numel() for p in model.parameters())
    bill = qc.estimate(
        problem=qc.Problem(n=gd.n, P=P, T=T, N=2, epsilon=1e-2),
        conditioning=qc.Conditioning(rho=qc.Quantity(spec.rho, "measured", source="spectrum")),
    )
    d = bill.to_dict()
    for k in ("logical_qubits", "t_count", "shots", "quantum_seconds", "classical_seconds"):
        assert math.isfinite(d[k]) and d[k] > 0, k


def test_transformer_hessian_matches_dense_autograd():
    """The HVP through the math attention kernel is the true Hessian: compare with finite
    differences of the gradient (float64) on the transformer, where the fused kernel fails."""
    model, x = _case("transformer")
    y = torch.randint(0, 3, (8,))
    ops = LossOperators(model, nn.CrossEntropyLoss(), [(x, y)], hvp_mode="functional")
    torch.manual_seed(1)
    u = torch.randn(ops.n, dtype=torch.float64)
    h = 1e-5
    g = lambda t: torch.func.grad(ops.batch_loss)(t, ops.batches[0])
    fd = (g(ops.theta + h * u) - g(ops.theta - h * u)) / (2 * h)
    hu = ops.hvp(u)
    assert torch.allclose(hu, fd, rtol=1e-5, atol=1e-7)
    assert "attention (1 layers) through the math SDPA kernel" in ops.evaluation
    assert "dropout off (3 dropout modules, 1 attention/recurrent dropouts)" in ops.evaluation


def test_lstm_pruning_reaches_recurrent_weights_and_says_so(capsys):
    model, _ = _case("lstm")
    names = prunable_names(model)
    assert names == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.weight_ih_l1",
        "lstm.weight_hh_l1",
    ]
    assert "emb.weight" in prunable_names(model, include_embeddings=True)
    mask = prune_global(model, 0.5, include_classifier=True, verbose=True)
    out = capsys.readouterr().out
    summary = pruning_summary(model, mask)
    assert str(summary) in out and "weight matrices left dense: emb.weight" in out
    fractions = summary.fractions()
    assert set(fractions) == set(names) | {"fc.weight"}
    assert all(0.2 < f < 0.8 for f in fractions.values())
    prunable = sum(p.numel() for n, p in model.named_parameters() if n in fractions)
    assert summary.pruned == round(0.5 * prunable) == sum(int((~m).sum()) for m in mask.values())
    rep = sparsity_report(model, mask)  # classifier excluded here, but the mask pruned it
    assert rep["prunable"] == prunable and rep["pruned"] == summary.pruned
    assert rep["sparsity"] == pytest.approx(0.5, abs=1e-3)
    for n, p in model.named_parameters():
        assert bool((p[~mask[n]] == 0).all())


def test_attention_in_projections_and_embeddings_are_prunable():
    model, _ = _case("transformer")
    names = prunable_names(model)
    assert "enc.self_attn.in_proj_weight" in names and "enc.self_attn.out_proj.weight" in names
    assert "fc.weight" not in names and not any("norm" in n or "bias" in n for n in names)
    lstm, _ = _case("lstm")
    mask = prune_layerwise(lstm, 0.25, include_embeddings=True)
    frac = pruning_summary(lstm, mask).fractions()
    assert frac["emb.weight"] == pytest.approx(0.25, abs=0.01)


def test_params_by_name_or_regex():
    model, x = _case("lstm")
    mask = prune_global(model, 0.5, params=r"lstm\.weight_.*_l1")
    pruned = {n for n, m in mask.items() if not bool(m.all())}
    assert pruned == {"lstm.weight_ih_l1", "lstm.weight_hh_l1"}
    with pytest.raises(UsageError, match="matches no parameter"):
        prune_global(model, 0.5, params="nothing.here")
    with pytest.raises(UsageError, match="not a regular expression"):
        prune_global(model, 0.5, params="lstm[")
    # the active set: only the chosen tensors are coordinates; the rest are held fixed
    full = ActiveParams(model, mask)
    fc_only = ActiveParams(model, mask, params=["fc.weight", "fc.bias"])
    assert fc_only.n == 15 and fc_only.P == full.P
    y = torch.randint(0, 3, (8,))
    loss_fn = nn.CrossEntropyLoss()
    spec = qc.model_spectrum(
        model, loss_fn, [(x, y)], lr=0.1, mask=mask, params=r"fc\..*", method="exact"
    )
    assert spec.n == 15
    # the fc block of the full Hessian equals the Hessian restricted to fc
    ops_full = LossOperators(model, loss_fn, [(x, y)], mask=mask)
    ops_fc = LossOperators(model, loss_fn, [(x, y)], mask=mask, params=r"fc\..*")
    i = full.names.index("fc.weight")
    lo = full.offsets[i]
    e = torch.zeros(full.n, dtype=torch.float64)
    e[lo] = 1.0
    e_fc = torch.zeros(15, dtype=torch.float64)
    e_fc[0] = 1.0
    assert torch.allclose(ops_full.hvp(e)[lo : lo + 15], ops_fc.hvp(e_fc), atol=1e-12)
