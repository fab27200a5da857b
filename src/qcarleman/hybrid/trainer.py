r"""Hybrid training: quantum segments with sparse download and re-upload (ALGORITHM.md §8).

A :class:`HybridTrainer` continues the sparse training of a run directory (docs/training.md, usually
step 0 of a pruned run) in *segments*. A **quantum segment** of K steps starting at global step s:

1. *upload*: θ̄ = the current sparse parameters θ_S (and the momentum buffer v̄ when μ > 0);
2. the gradient-descent map of the K steps (ALGORITHM.md §1; the batches of steps s..s+K−1 in the
   trainer's data order, so the classical baseline sees the same data) is emulated with the chosen
   ``backend``:

   * ``true-gd``  — K real masked SGD steps (no emulation error; isolates the download),
   * ``taylor``   — exact iteration of the cubic-Taylor quadratic map,
   * ``carleman`` — the order-N truncated Carleman dynamics (low-rank order 2 at scale),
   * ``linear``   — order N = 1 (linearized GD);

3. *QLSA*: the history system (ALGORITHM.md §3) is solved by an **ideal** QLSA (the ``exact``
   backend semantics: its output is the normalized emulated state). A gate-level solver cannot run
   at the size of a real network, so κ is the §3 bound (from ρ = ‖F1‖ when a spectrum was
   measured, else the almost-dissipative assumption of
   :func:`qcarleman.quantum.cost.estimate.estimate`)
   and P_succ = (p+1)‖ŷ1(T)‖²/‖Y‖² from the emulated levels where known; each is labelled.
   On tiny maps ``qlsa = "exact" | "qsvt" | "hhl"`` solves the dense history system with that
   solver (:func:`qcarleman.quantum.solve.solve`) and downloads its output instead;
4. *download*: the final state z_K = x_K (and v_K with momentum, z = (x, v) ∈ R^{2n}) is read out
   by ℓ2 tomography with M shots (:mod:`qcarleman.quantum.readout`, ALGORITHM.md §5), giving
   θ̂_S = θ̄_S + x̂_K (pruned entries stay exactly 0) and the new momentum buffer v̂_K;
5. *re-upload*: training continues from θ̂. Batch-norm running statistics (not trained
   parameters, not part of the map) are refreshed classically by no-grad train-mode forwards of the
   segment's batches at θ̂ — a stated approximation of what the classical steps would accumulate.

The reference (true GD from the same θ̄, v̄ on the same batches) is computed for every quantum
segment, so each record carries the emulation error, the readout error and the total error
against classical training. **Classical segments** are plain masked SGD steps (the trainer's
:meth:`~qcarleman.training.trainer.Trainer.train_step`). Quantum segments run while the
dissipative window is open: ``quantum_steps`` steps from the start (e.g. the measured window t*),
or with ``segment_steps = "auto"`` K = t* of the Hessian spectrum at each segment's start (bounded
by ``max_segment_steps``), switching to classical steps once t* = 0 (E(1) > 1: the window has
closed). A segment never crosses a change of the learning rate.

The **baseline** (:func:`run_baseline`) is the same loop with ``backend = "classical"``: the same
batches, steps and evaluation points.

The package, one concept per module: :mod:`~qcarleman.hybrid.settings` (HybridSettings),
:mod:`~qcarleman.hybrid.schedule` (segment boundaries), :mod:`~qcarleman.hybrid.stages` (emulate,
QLSA, download), :mod:`~qcarleman.hybrid.cost` (κ, estimate), :mod:`~qcarleman.hybrid.records`
(SegmentRecord), :mod:`~qcarleman.hybrid.store` (the output directory: hybrid.json,
segments.jsonl, state.pt) and this module (the loop).

Resume: a new :class:`HybridTrainer` on the same OUT with the same settings continues after the
last finished segment and reproduces the uninterrupted run exactly (readout randomness is seeded
by (seed, segment index)).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from ..training.config import lr_at_step, settings_from_meta
from ..training.data import batch_for_step
from ..training.run import RunDir
from ..training.trainer import Trainer, evaluate
from .cost import SegmentCost, SegmentShape, segment_cost
from .records import SegmentRecord
from .schedule import clip_segment
from .settings import HybridSettings
from .stages import (
    Download,
    Emulation,
    MapSource,
    Reference,
    SolverOutput,
    download,
    emulate,
    emulated_success_probability,
    solve_history,
)
from .store import HybridStore

__all__ = ["HybridTrainer", "run_baseline"]


class HybridTrainer:
    """Hybrid quantum/classical sparse training from a run directory (module docstring).

    Parameters
    ----------
    source:
        A training run directory (docs/training.md); training starts from its checkpoint ``step``.
    out:
        Output directory of the hybrid run (resumed if it holds a state with the same settings).
    settings:
        :class:`~qcarleman.hybrid.settings.HybridSettings`.
    device:
        torch device of the classical steps (the emulation follows the model).
    progress:
        Show a tqdm bar over steps.
    optimizer:
        Overrides of the source run's ``lr``, ``momentum`` and ``weight_decay`` (e.g. the
        settings :mod:`qcarleman.analysis.advise` suggests); None keeps the run's.
    """

    def __init__(
        self,
        source: str | os.PathLike,
        out: str | os.PathLike,
        settings: HybridSettings | None = None,
        *,
        step: int = 0,
        device: str = "cpu",
        progress: bool = True,
        optimizer: dict[str, float] | None = None,
    ):
        self.settings = settings or HybridSettings()
        self.settings.validate()
        self.source = RunDir(source)
        self.out = Path(out)
        self.store = HybridStore(self.out)
        self.progress = progress
        ck = self.source.load(step)
        self.overrides = dict(optimizer or {})
        if optimizer:
            bad = set(optimizer) - {"lr", "momentum", "weight_decay"}
            if bad:
                raise UsageError(
                    f"optimizer overrides {sorted(bad)} are unknown; use lr, momentum, weight_decay"
                )
            opts: dict[str, Any] = {k: float(v) for k, v in optimizer.items()}
            ck = replace(ck, meta=replace(ck.meta, **opts))
        self.meta = ck.meta
        self.loss_fn = ck.loss_fn
        self.data = self.source.dataset()
        self.train_settings = settings_from_meta(ck.meta)
        self.trainer = self._classical_trainer(ck, device)
        self.start_step = ck.step
        self.end_step = ck.step + int(self.settings.total_steps)
        from ..autodiff.active import ActiveParams
        from ..training.flops import step_flops

        self.active = ActiveParams(self.trainer.model, self.trainer.mask)
        x0 = self.data.train[0]
        self.flops_per_step = step_flops(
            self.trainer.model, tuple(x0.shape[1:]), self.trainer.batch_size, self.trainer.mask
        )
        self.momentum = float(self.train_settings.momentum)
        self.segment = 0
        self.quantum_open = self.settings.backend != "classical"
        self.records: list[dict[str, Any]] = []
        self._resume_or_start(self._header(ck))

    def _classical_trainer(self, ck, device: str) -> Trainer:
        """The masked-SGD trainer of the classical steps, at the source checkpoint's state."""
        tr = Trainer(
            ck.model,
            self.data,
            self.train_settings,
            self.out,
            ck.mask,
            seed=int(ck.meta.get("seed", 0)),
            device=device,
            meta=ck.meta,
            progress=False,
        )
        if ck.optimizer:
            tr.optimizer.load_state_dict(ck.optimizer)
            if self.overrides:  # the overridden settings, not the stored ones
                for group in tr.optimizer.param_groups:
                    group["momentum"] = self.train_settings.momentum
                    group["weight_decay"] = self.train_settings.weight_decay
        tr.step = ck.step
        return tr

    def _header(self, ck) -> dict[str, Any]:
        """The contents of ``hybrid.json``: what identifies this run."""
        return {
            "settings": self.settings.to_dict(),
            # relative to OUT, so a folder holding both runs can be moved and resumed
            "source": os.path.relpath(self.source.path.resolve(), self.out.resolve()),
            "source_step": ck.step,
            "n": self.active.n,
            "P": self.active.P,
            "momentum": self.momentum,
            "lr": self.train_settings.lr,
            "weight_decay": self.train_settings.weight_decay,
            "batch_size": self.trainer.batch_size,
            "model": ck.meta.get("model"),
            "data": ck.meta.get("data"),
        }

    # -- state ------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def state_path(self) -> Path:
        return self.store.state_path

    def _resume_or_start(self, header: dict[str, Any]) -> None:
        self.store.claim(header)
        st = self.store.load_state()
        if st is not None:
            self.trainer.model.load_state_dict(st["model"])
            self.trainer.optimizer.load_state_dict(st["optimizer"])
            self.trainer.step = int(st["step"])
            self.segment = int(st["segment"])
            self.quantum_open = bool(st["quantum_open"])
            self.records = [r for r in self.store.records() if r["segment"] < self.segment]
            self.store.write_records(self.records)
            return
        loss, acc, val = self._evaluate()
        start = SegmentRecord(
            segment=-1,
            kind="start",
            start=self.step,
            steps=0,
            lr=self.lr_at(self.step),
            test_loss=loss,
            test_acc=acc,
            val_acc=val,
        )
        self.records = [start.to_json()]
        self.store.write_records(self.records)

    def _save_state(self) -> None:
        tr = self.trainer
        self.store.save_state(
            {
                "model": {k: v.detach().cpu() for k, v in tr.model.state_dict().items()},
                "mask": {k: v.cpu() for k, v in tr.mask.items()},
                "optimizer": tr.optimizer.state_dict(),
                "step": tr.step,
                "segment": self.segment,
                "quantum_open": self.quantum_open,
            }
        )

    # -- helpers ------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """η of the optimizer step taken from global step ``step`` (the source run's schedule,
        :func:`qcarleman.training.config.lr_at_step`)."""
        return lr_at_step(self.meta, step)

    def batches(self, start: int, K: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of global steps ``start .. start + K − 1`` in the trainer's data order."""
        tr = self.trainer
        shuffle = bool(self.meta.get("shuffle", True))
        out = []
        for s in range(start, start + K):
            x, y = batch_for_step(self.data, s, tr.batch_size, tr.seed, shuffle)
            out.append((x.to(tr.device), y.to(tr.device)))
        return out

    def _evaluate(self) -> tuple[float, float, float]:
        loss, acc = evaluate(self.trainer.model, self.data, "test", self.trainer.device)
        _, val = evaluate(self.trainer.model, self.data, "val", self.trainer.device)
        return loss, acc, val

    def momentum_buffers(self) -> dict[str, torch.Tensor]:
        """Momentum buffers by parameter name (zeros where the optimizer has none yet)."""
        opt = self.trainer.optimizer
        out = {}
        for name, p in self.trainer.model.named_parameters():
            buf = opt.state.get(p, {}).get("momentum_buffer")
            out[name] = torch.zeros_like(p) if buf is None else buf
        return out

    def _set_buffers(self, flat: torch.Tensor) -> None:
        full = self.active.unflatten(flat)
        opt = self.trainer.optimizer
        for name, p in self.trainer.model.named_parameters():
            if name in full:
                opt.state[p]["momentum_buffer"] = full[name].to(p.dtype).detach().clone()

    def _flat(self) -> torch.Tensor:
        return self.active.flatten(self.trainer.model).to(torch.float64).cpu()

    def _flat_buffers(self) -> torch.Tensor | None:
        if not self.momentum:
            return None
        return self.active.flatten(self.momentum_buffers()).to(torch.float64).cpu()

    def _segment_length(self) -> tuple[int, dict[str, Any]]:
        """K for the next segment (:func:`qcarleman.hybrid.schedule.clip_segment`) and, in
        auto mode, the window t* and ρ measured at its start."""
        s = self.settings
        info: dict[str, Any] = {}
        K = s.nominal_segment_steps
        if s.segment_steps == "auto" and self.quantum_open:
            info = self._window()
            if info["window"] == 0:
                self.quantum_open = False
            K = max(1, min(info["window"], s.max_segment_steps))
        K, over = clip_segment(
            K,
            step=self.step,
            start_step=self.start_step,
            end_step=self.end_step,
            quantum_steps=s.quantum_steps,
            lr_at=self.lr_at,
        )
        if over:
            self.quantum_open = False
        return K, info

    def _window(self) -> dict[str, Any]:
        """t* and ρ of the Hessian spectrum at the current step (ALGORITHM.md §6)."""
        from ..analysis.spectrum import model_spectrum

        s = self.settings
        rep = model_spectrum(
            self.trainer.model,
            self.loss_fn,
            self.batches(self.step, 1),
            lr=self.lr_at(self.step),
            mask=self.trainer.mask,
            weight_decay=self.train_settings.weight_decay,
            momentum=self.momentum,
            horizon=s.max_segment_steps,
            curve_steps=s.max_segment_steps,
            method="slq",
            probes=s.spectrum_probes,
            iters=s.spectrum_iters,
            k=2,
            seed=s.seed + self.segment,
        )
        # window and ρ of the map trained (§6.1); ‖A_lin‖₂ is the ‖G1‖ of the κ bound
        return {"window": rep.window, "rho": rep.rho, "norm_linear": rep.norm_linear}

    # -- the loop -----------------------------------------------------------------------------
    def run(self, callback: Callable[[HybridTrainer, dict], None] | None = None) -> dict:
        """Run the remaining segments; ``callback(self, record)`` after each (an exception there
        stops the run like a kill; the finished segments are kept). Returns :meth:`summary`."""
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.end_step - self.start_step,
            initial=self.step - self.start_step,
            desc=f"hybrid[{self.settings.backend}]",
            unit="step",
            disable=not self.progress,
            leave=False,
        )
        try:
            while self.step < self.end_step:
                rec = self._run_segment()
                bar.update(rec.steps)
                bar.set_postfix(acc=f"{rec.test_acc:.3f}", kind=rec.kind, refresh=False)
                if callback is not None:
                    callback(self, self.records[-1])
        finally:
            bar.close()
        return self.summary()

    def _run_segment(self) -> SegmentRecord:
        """One segment, evaluated, recorded and saved."""
        t0 = time.perf_counter()
        K, info = self._segment_length()
        if self.quantum_open:
            rec = self._quantum_segment(K, info.get("norm_linear"))
        else:
            rec = self._classical_segment(K)
        loss, acc, val = self._evaluate()
        rec = replace(
            rec,
            window=info.get("window"),
            rho=info.get("rho"),
            test_loss=loss,
            test_acc=acc,
            val_acc=val,
            seconds=time.perf_counter() - t0,
        )
        self.segment += 1
        self.records.append(rec.to_json())
        self.store.write_records(self.records)
        self._save_state()
        return rec

    def _classical_segment(self, K: int) -> SegmentRecord:
        start, lr = self.step, self.lr_at(self.step)
        losses = []
        for x, y in self.batches(start, K):
            losses.append(self.trainer.train_step(x, y, self.lr_at(self.trainer.step)))
            self.trainer.step += 1
        return SegmentRecord(
            segment=self.segment,
            kind="classical",
            start=start,
            steps=K,
            lr=lr,
            train_losses=losses,
        )

    def _reference(self, batches, lr: float, theta_bar: torch.Tensor) -> Reference:
        """True masked SGD from the current state (the model and optimizer state are restored
        afterwards)."""
        tr = self.trainer
        snap_model = copy.deepcopy(tr.model.state_dict())
        snap_opt = copy.deepcopy(tr.optimizer.state_dict())
        theta, vel, losses = [self._flat()], [self._flat_buffers()], []
        for x, y in batches:
            losses.append(tr.train_step(x, y, lr))
            theta.append(self._flat())
            vel.append(self._flat_buffers())
        tr.model.load_state_dict(snap_model)
        tr.optimizer.load_state_dict(snap_opt)
        x = [t - theta_bar for t in theta]
        v = [b for b in vel if b is not None] if self.momentum else None  # all set with momentum
        return Reference(x, v, losses, theta[-1])

    def _map_source(self) -> MapSource:
        tr = self.trainer
        wd = self.train_settings.weight_decay
        return MapSource(tr.model, self.loss_fn, tr.mask, wd, self.momentum, tr.device)

    def _shape(self, K: int, order: int) -> SegmentShape:
        a, tr = self.active, self.trainer
        return SegmentShape(
            n=a.n,
            P=a.P,
            T=K,
            N=order,
            momentum=self.momentum > 0,
            batch_size=tr.batch_size,
            flops_per_step=self.flops_per_step,
        )

    def _quantum_segment(self, K: int, norm_linear: float | None) -> SegmentRecord:
        """Upload, emulate, (solve), cost, download and re-upload (module docstring)."""
        s = self.settings
        start, lr = self.step, self.lr_at(self.step)
        batches = self.batches(start, K)
        theta_bar, v_bar = self._flat(), self._flat_buffers()
        ref = self._reference(batches, lr, theta_bar)
        emu = emulate(
            s,
            self._map_source(),
            batches=batches,
            lr=lr,
            theta_bar=theta_bar,
            v_bar=v_bar,
            reference=ref,
        )
        solver = solve_history(s, emu, K) if s.qlsa != "ideal" else None
        if solver:
            p_succ, p_src = solver.p_succ, f"{s.qlsa} solver on the history system"
        else:
            p_succ, p_src = emulated_success_probability(emu, s.idle_steps(K))
        cost = segment_cost(
            s,
            self._shape(K, emu.order),
            p_succ=p_succ,
            p_succ_source=p_src,
            rho_measured=norm_linear,
            solver=solver,
            gmap=emu.gmap,
        )
        if solver:  # the solver's output state |ŷ1(T)⟩ is downloaded whole
            blocks = [torch.from_numpy(solver.vector)]
        else:  # x_K (and v_K) block by block: post-selection on level 1 and on the block
            blocks = emu.final_blocks()
        dl = download(blocks, cost.p_succ, s, seed=int(s.seed) * 1_000_003 + self.segment)
        theta_hat, bn_notes = self._write_back(theta_bar, dl.z_hat, batches, emu.v is not None)
        self.trainer.step += K
        notes = list(solver.notes if solver else ()) + list(dl.notes) + bn_notes
        head = dict(segment=self.segment, start=start, steps=K, lr=lr, backend=s.backend)
        return _quantum_record(
            head | {"qlsa": s.qlsa, "shots": int(s.shots)},
            ref=ref,
            emu=emu,
            solver=solver,
            cost=cost,
            dl=dl,
            theta_hat=theta_hat,
            notes=notes + list(emu.notes),
        )

    def _write_back(
        self, theta_bar: torch.Tensor, z_hat, batches, momentum: bool
    ) -> tuple[torch.Tensor, list[str]]:
        """Re-upload θ̂ = θ̄ + x̂ under the mask (and the downloaded momentum buffer); refresh the
        batch-norm running statistics classically at θ̂ (module docstring)."""
        tr, n = self.trainer, self.active.n
        theta_hat = theta_bar + torch.from_numpy(z_hat[:n].copy())
        self.active.load_into(tr.model, theta_hat.to(next(tr.model.parameters()).dtype))
        if momentum:
            self._set_buffers(torch.from_numpy(z_hat[n:].copy()))
        bn = torch.nn.modules.batchnorm._BatchNorm
        if not any(isinstance(m, bn) for m in tr.model.modules()):
            return theta_hat, []
        was = tr.model.training
        tr.model.train()
        with torch.no_grad():
            for x, _ in batches:
                tr.model(x)
        tr.model.train(was)
        return theta_hat, ["batch-norm running statistics refreshed classically at θ̂"]

    def summary(self) -> dict[str, Any]:
        """Final accuracy/loss and totals over the segments."""
        recs = [r for r in self.records if r["kind"] != "start"]
        q = [r for r in recs if r["kind"] == "quantum"]
        last = self.records[-1]
        emu = [r["emulation_error"] for r in q if r["emulation_error"] is not None]
        ro = [r["readout_error"] for r in q if r["readout_error"] is not None]
        return {
            "backend": self.settings.backend,
            "steps": self.step - self.start_step,
            "segments": len(recs),
            "quantum_segments": len(q),
            "quantum_steps": sum(r["steps"] for r in q),
            "test_acc": last["test_acc"],
            "test_loss": last["test_loss"],
            "val_acc": last["val_acc"],
            "shots_total": sum(r["shots_used"] for r in q),
            "emulation_error_max": max(emu) if emu else None,
            "readout_error_max": max(ro) if ro else None,
        }


def _quantum_record(
    head: dict[str, Any],
    *,
    ref: Reference,
    emu: Emulation,
    solver: SolverOutput | None,
    cost: SegmentCost,
    dl: Download,
    theta_hat: torch.Tensor,
    notes: list[str],
) -> SegmentRecord:
    """The record of a quantum segment (``head``: segment, start, steps, lr, backend, qlsa, shots
    as SegmentRecord fields) with its
    errors (ALGORITHM.md §8): emulation against true GD, the solver's output against the
    emulation, the download, and θ̂ against true GD; κ, P_succ and the estimate from ``cost``."""
    errs = emu.errors(ref)
    x_emu = emu.x[-1]
    z_emu = torch.cat(emu.final_blocks())
    zn = float(torch.linalg.norm(z_emu))
    q_err = None
    if solver and zn > 0:
        q_err = float(torch.linalg.norm(torch.from_numpy(solver.vector) - z_emu) / zn)
    n = x_emu.numel()
    x_hat = torch.from_numpy(dl.z_hat[:n].copy())
    xn = float(torch.linalg.norm(x_emu))
    xr = float(torch.linalg.norm(ref.x[-1]))
    return SegmentRecord(
        **head,
        kind="quantum",
        train_losses=ref.losses,
        order=emu.order,
        emulation_error=errs[-1] if errs else 0.0,
        emulation_errors=errs,
        readout_error=dl.error,
        qlsa_error=q_err,
        qlsa_fidelity=solver.fidelity if solver else None,
        parameter_readout_error=float(torch.linalg.norm(x_hat - x_emu) / xn) if xn > 0 else 0.0,
        total_error=float(torch.linalg.norm(theta_hat - ref.theta) / xr) if xr > 0 else 0.0,
        update_norm=xr,
        shots_used=dl.shots_used,
        readout=dl.mode,
        kappa=cost.kappa,
        kappa_source=cost.kappa_source,
        success_probability=cost.p_succ,
        p_succ_source=cost.p_succ_source,
        estimate=cost.estimate,
        notes=notes,
    )


def run_baseline(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: HybridSettings,
    *,
    step: int = 0,
    device: str = "cpu",
    progress: bool = True,
    optimizer: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Classical sparse training beside a hybrid run: the same source, steps, data order and
    segment boundaries (evaluation points), every step classical. Returns the summary."""
    base = replace(settings, backend="classical")
    return HybridTrainer(
        source, out, base, step=step, device=device, progress=progress, optimizer=optimizer
    ).run()
