r"""Dissipation engineering: which learning rate, momentum and weight decay would make a segment
eligible for the quantum algorithm, and at what cost (ALGORITHM.md §6, §6.1, §7; issue 17,
part 2).

From the measured spectrum of H = ∇²L + λ₀I at a checkpoint (λ₀ the weight decay it was
measured with; [λ_min, λ_max] the union over the segment's K batches of the Lanczos extremes,
each widened by its Ritz residual, so it contains every eigenvalue), a setting (η, μ, λ) acts on
the shifted interval [λ_min + λ − λ₀, λ_max + λ − λ₀]. It is **fully dissipative** when the
spectral radius of the actual linear part ρ = max a(λ) over that interval is < 1
(:meth:`qcarleman.dissipation.TrainedMap.factor`; a is quasi-convex, so the two ends decide).
For heavy ball this is the classical condition 0 < η(λ_min + λ − λ₀) and
η(λ_max + λ − λ₀) < 2(1 + μ) (Polyak 1964): a negative λ_min can only be cured by a weight decay
λ > λ₀ − λ_min, which changes the objective — hence the measured accuracy cost.

Nonlinear ratio (§6): R_d* = 2√(‖f0‖‖F2‖)/(1 − ρ) with ‖f0‖ = η‖g + (λ − λ₀)θ̄‖ (the gradient
of the shifted weight decay) and ‖F2‖ = η·k₂, k₂ = ‖K‖/2 by the power method at the checkpoint
(a lower estimate); ρ is that of the setting's actual map (with momentum the §6 invariant-ball
argument holds for the paper's map only; the value is reported as a guide). κ of each setting is
the §3 bound of the order-1 history system over K steps (:func:`qcarleman.carleman.kappa.
kappa_bound`), and its cost the estimate of :func:`qcarleman.quantum.cost.estimate.estimate`.

The accuracy cost is *measured* one layer up (:func:`qcarleman.hybrid.compare.compare_settings`):
hybrid and classical sparse training for a few segments with the advised setting and with the
original one, on the same batches.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..autodiff.gdmap import GDMap
from ..autodiff.history_operator import HistoryOperator
from ..carleman.kappa import kappa_bound
from ..dissipation import TrainedMap, rd_star
from ..errors import UsageError
from ..quantity import Quantity

__all__ = ["Setting", "candidates", "advise_map", "advise_checkpoint", "advise_markdown"]

LR_FACTORS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01)


@dataclass(frozen=True)
class Setting:
    """One (η, μ, λ) with its spectral radius on the measured spectrum, ‖A_lin‖₂, R_d*, κ bound
    and the quantum and classical time of the segment (estimate, ALGORITHM.md §7)."""

    lr: float
    momentum: float
    weight_decay: float
    rho: float
    norm_linear: float
    rd_star: float | None
    kappa: Quantity
    quantum_s: float | None = None
    classical_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "rho": self.rho,
            "norm_linear": self.norm_linear,
            "rd_star": self.rd_star,
            "kappa": self.kappa.to_json(),
            "quantum_s": self.quantum_s,
            "classical_s": self.classical_s,
        }


def candidates(
    lr: float, momentum: float, weight_decay: float, lam_min: float, lam_max: float
) -> list[TrainedMap]:
    """The grid searched: η ∈ η₀·LR_FACTORS, μ ∈ {μ₀, 0.5 μ₀, 0} (distinct), λ ∈ {λ₀} and, when
    λ_min ≤ 0, the smallest shifts that make every curvature positive, λ₀ − λ_min + δ with
    δ ∈ {1e-3, 1e-2}·(λ_max − λ_min) (ALGORITHM.md §6.1)."""
    mus = sorted({float(momentum), 0.5 * float(momentum), 0.0}, reverse=True)
    wds = [float(weight_decay)]
    if lam_min <= 0:
        width = max(lam_max - lam_min, 1e-12)
        wds += [float(weight_decay) - lam_min + f * width for f in (1e-3, 1e-2)]
    return [TrainedMap(lr * f, mu, wd) for wd in wds for mu in mus for f in LR_FACTORS if mu < 1]


def _interval(gmap: GDMap, K: int, tol: float) -> tuple[float, float]:
    pairs = np.asarray(HistoryOperator(gmap, K).intervals(tol=tol), dtype=float)
    return float(pairs[:, 0].min()), float(pairs[:, 1].max())


def advise_map(
    gmap: GDMap,
    K: int,
    *,
    f2_iters: int = 10,
    epsilon: float = 1e-2,
    tol: float = 1e-8,
    flops_per_step=None,
    P: int | None = None,
) -> dict[str, Any]:
    """Every candidate (η, μ, λ) of :func:`candidates` on the measured spectrum of ``gmap`` over
    K steps, and the ones that are fully dissipative (ρ < 1), best first: R_d* < 1 first, then
    the largest η (the least change to training), then the original μ and λ."""
    from ..quantum.cost.estimate import estimate
    from ..quantum.cost.inputs import Conditioning, CostModel, Problem

    if int(K) != K or K < 1:
        raise UsageError(f"segment length K = {K} is invalid; use an integer K ≥ 1")
    t0 = time.perf_counter()
    lam_min, lam_max = _interval(gmap, int(K), tol)
    ops = gmap.operators(0)
    g = ops.grad().detach().cpu().numpy().astype(float)
    theta = gmap.theta.detach().cpu().numpy().astype(float)
    _, f2 = ops.nonlinear_norms(gmap.lr, f2_iters)
    k2 = f2 / gmap.lr  # ‖F2‖ = η·k2
    wd0 = gmap.weight_decay
    rows, ok = [], []
    for m in candidates(gmap.lr, gmap.momentum, wd0, lam_min, lam_max):
        shift = m.weight_decay - wd0
        ends = np.array([lam_min + shift, lam_max + shift])
        rho = float(m.factor(ends).max())
        f0 = m.lr * float(np.linalg.norm(g + shift * theta))
        rd = rd_star(f0, m.lr * k2, rho)
        kap = kappa_bound(m, tuple(ends), int(K), 0, includes_weight_decay=True)
        s = Setting(
            lr=m.lr,
            momentum=m.momentum,
            weight_decay=m.weight_decay,
            rho=rho,
            norm_linear=float(m.norm(ends).max()),
            rd_star=rd if math.isfinite(rd) else None,
            kappa=kap,
        )
        if rho < 1:
            est = estimate(
                problem=Problem(
                    n=gmap.n,
                    P=P,
                    T=int(K),
                    N=2,
                    epsilon=epsilon,
                    momentum=bool(m.momentum),
                    batch_size=int(ops.batches[0][0].shape[0]),
                    flops_per_step=flops_per_step,
                ),
                conditioning=Conditioning(rho=Quantity(rho, "measured"), kappa=kap),
                model=CostModel(use_qsharp=False),
            )
            s = replace(
                s, quantum_s=est.wall_clock.quantum_s, classical_s=est.wall_clock.classical_s
            )
            ok.append(s)
        rows.append(s)
    ok.sort(
        key=lambda s: (
            not (s.rd_star is not None and s.rd_star < 1),
            -s.lr,
            s.momentum != gmap.momentum,
            s.weight_decay != wd0,
        )
    )
    orig = TrainedMap(gmap.lr, gmap.momentum, wd0)
    rho0 = float(orig.factor(np.array([lam_min, lam_max])).max())
    verdict = (
        f"{len(ok)} of {len(rows)} settings are fully dissipative"
        + (
            f"; {sum(1 for s in ok if s.rd_star is not None and s.rd_star < 1)} also have R_d* < 1"
            if ok
            else ""
        )
        if ok
        else "no setting in the grid makes this segment fully dissipative"
    )
    return {
        "lambda_min": lam_min,
        "lambda_max": lam_max,
        "weight_decay": wd0,
        "lr": gmap.lr,
        "momentum": gmap.momentum,
        "rho_original": rho0,
        "f0_norm": gmap.lr * float(np.linalg.norm(g)),
        "F2_norm": f2,
        "K": int(K),
        "settings": [s.to_json() for s in ok],
        "candidates": len(rows),
        "verdict": verdict,
        "seconds": time.perf_counter() - t0,
    }


def advise_checkpoint(
    run_dir: str | os.PathLike,
    step: int | None,
    K: int,
    *,
    f2_iters: int = 10,
    epsilon: float = 1e-2,
) -> dict[str, Any]:
    """:func:`advise_map` on checkpoint ``step`` of a training run (its η, μ, λ, mask and the K
    batches from that step; :func:`qcarleman.analysis.emulate.checkpoint_map`). The measured
    accuracy cost is :func:`qcarleman.hybrid.compare.compare_settings` (a later layer)."""
    from ..training.flops import step_flops
    from .emulate import checkpoint_map

    gd, _, ck = checkpoint_map(run_dir, step, int(K))
    x0 = gd.operators(0).batches[0][0]
    flops = step_flops(ck.model, tuple(x0.shape[1:]), int(x0.shape[0]), ck.mask)
    r = advise_map(
        gd, int(K), f2_iters=f2_iters, epsilon=epsilon, flops_per_step=flops, P=gd.active.P
    )
    r.update(run_dir=str(run_dir), checkpoint=ck.step, n=gd.n)
    return r


def advise_markdown(r: dict[str, Any], top: int = 8) -> str:
    """Markdown summary of an :func:`advise_checkpoint` result."""
    lines = [
        f"Advice for {r.get('run_dir', '?')} step {r.get('checkpoint', '?')} (K = {r['K']}): "
        f"measured λ(H) ∈ [{r['lambda_min']:.4g}, {r['lambda_max']:.4g}] with weight decay "
        f"{r['weight_decay']:g}; original η = {r['lr']:g}, μ = {r['momentum']:g}: ρ = "
        f"{r['rho_original']:.5g}. {r['verdict']}.",
    ]
    if r["settings"]:
        lines += [
            "",
            "| η | μ | weight decay | ρ | R_d* | κ bound | quantum s | classical s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in r["settings"][:top]:
            rd = "—" if s["rd_star"] is None else f"{s['rd_star']:.3g}"
            lines.append(
                f"| {s['lr']:.4g} | {s['momentum']:g} | {s['weight_decay']:.4g} | "
                f"{s['rho']:.5f} | {rd} | {s['kappa']['value']:.4g} | "
                f"{s['quantum_s']:.3g} | {s['classical_s']:.3g} |"
            )
    acc = r.get("accuracy")
    if acc:
        lines += [
            "",
            f"Measured accuracy after {acc['steps']} steps (segments of {acc['segment_steps']}, "
            f"{acc['backend']}, {acc['shots']} shots), same batches:",
            "",
            "| setting | η | μ | weight decay | hybrid test acc | classical test acc |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("original", "advised"):
            a = acc[name]
            lines.append(
                f"| {name} | {a['lr']:.4g} | {a['momentum']:g} | {a['weight_decay']:.4g} | "
                f"{a['hybrid_test_acc']:.4f} | {a['classical_test_acc']:.4f} |"
            )
    return "\n".join(lines)
