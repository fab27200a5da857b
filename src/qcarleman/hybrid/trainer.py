r"""Hybrid training: quantum segments with sparse download and re-upload (ALGORITHM.md §8).

A :class:`HybridTrainer` continues the sparse training of a run directory (contract (2), usually
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

Output directory::

    OUT/hybrid.json       settings, source run, active-set size n, model P (written once)
    OUT/segments.jsonl    one record per segment (see :class:`SegmentRecord`), plus a
                          ``kind = "start"`` record with the evaluation at the first step
    OUT/state.pt          the hybrid state after the last finished segment (atomic; resume)

Resume: a new :class:`HybridTrainer` on the same OUT with the same settings continues after the
last finished segment and reproduces the uninterrupted run exactly (readout randomness is seeded
by (seed, segment index)).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text, jsonable
from ..errors import UsageError
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.config import TrainSettings
from ..training.data import batch_for_step
from ..training.run import RunDir
from ..training.trainer import Trainer, evaluate

__all__ = [
    "BACKENDS",
    "HybridSettings",
    "HybridTrainer",
    "SegmentRecord",
    "run_baseline",
    "load_records",
]

BACKENDS = ("classical", "true-gd", "taylor", "carleman", "linear")
READOUTS = ("auto", "shots", "noise-model")
QLSAS = ("ideal", "exact", "qsvt", "hhl")


@dataclass
class HybridSettings:
    """Settings of a hybrid run (ALGORITHM.md §8).

    backend: ``true-gd`` | ``taylor`` | ``carleman`` | ``linear`` | ``classical`` (baseline).
    order: Carleman order N for ``carleman`` (``linear`` is N = 1).
    segment_steps: K, an integer or ``"auto"`` (t* of the spectrum at each segment start).
    max_segment_steps: upper bound on K in auto mode (and the E(t) horizon measured there).
    quantum_steps: quantum segments cover the first ``quantum_steps`` steps (0 = all steps).
    total_steps: steps of the whole run (quantum + classical).
    shots: tomography shots M per quantum segment (0 = exact download, no shot noise).
    readout: ``shots`` (sampled), ``noise-model`` (the documented equivalent noise) or ``auto``
        (sampled up to ``readout_max_dim`` coordinates).
    idle: idle steps p of the history system (−1 = p = K, the paper's choice).
    epsilon: target ℓ2 error ε of the resource estimate.
    solver: QLSA query model of the estimate (:data:`qcarleman.quantum.cost.estimate.SOLVERS`).
    dtype: float64 | float32 of the derivative operators.
    spectrum_probes, spectrum_iters: SLQ settings of the auto-K spectrum.
    rho: ρ = ‖F1‖ for the κ bound when no spectrum is measured in the run (0 = unknown).
    max_rank: rank cap of the low-rank order-2 emulation (0 = exact, no truncation).
    qlsa: ``ideal`` (the modelled solver, any size) or a solver of
        :func:`qcarleman.quantum.solve.solve` — ``exact``, ``qsvt`` (matrix level up to 2¹²
        history dimensions), ``hhl`` (gate level, up to 2⁶) — run on the dense history system
        of tiny maps (``carleman``/``linear`` backends).
    seed: readout randomness (per segment: seed, segment index).
    """

    backend: str = "carleman"
    order: int = 2
    segment_steps: int | str = 10
    max_segment_steps: int = 20
    quantum_steps: int = 0
    total_steps: int = 40
    shots: int = 1_000_000
    readout: str = "auto"
    readout_max_dim: int = 200_000
    idle: int = -1
    epsilon: float = 1e-2
    solver: str = "costa-empirical"
    dtype: str = "float64"
    spectrum_probes: int = 4
    spectrum_iters: int = 30
    rho: float = 0.0
    max_rank: int = 0
    qlsa: str = "ideal"
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the first bad setting."""
        K = self.segment_steps
        checks = [
            (self.backend in BACKENDS, "backend", f"use one of {', '.join(BACKENDS)}"),
            (int(self.order) >= 1, "order", "use a Carleman order N ≥ 1"),
            (
                K == "auto" or (isinstance(K, int) and not isinstance(K, bool) and K >= 1),
                "segment_steps",
                "use an integer K ≥ 1 or 'auto'",
            ),
            (self.max_segment_steps >= 1, "max_segment_steps", "use a bound ≥ 1"),
            (self.quantum_steps >= 0, "quantum_steps", "use 0 (all steps) or a positive count"),
            (self.total_steps >= 1, "total_steps", "use at least 1 step"),
            (self.shots >= 0, "shots", "use 0 (exact download) or a positive shot count"),
            (self.readout in READOUTS, "readout", f"use one of {', '.join(READOUTS)}"),
            (self.idle >= -1, "idle", "use −1 (p = K) or p ≥ 0"),
            (0 < self.epsilon < 1, "epsilon", "use 0 < ε < 1"),
            (self.dtype in ("float64", "float32"), "dtype", "use float64 or float32"),
            (self.spectrum_probes >= 1 and self.spectrum_iters >= 2, "spectrum_probes", "use ≥ 1"),
            (self.rho >= 0 and math.isfinite(self.rho), "rho", "use 0 (unknown) or ρ > 0"),
            (self.max_rank >= 0, "max_rank", "use 0 (no truncation) or a rank ≥ 1"),
            (self.qlsa in QLSAS, "qlsa", f"use one of {', '.join(QLSAS)}"),
            (
                self.qlsa == "ideal" or self.backend in ("carleman", "linear", "classical"),
                "qlsa",
                "a real solver needs backend = 'carleman' or 'linear' (the dense history system)",
            ),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise UsageError(f"hybrid.{key} = {getattr(self, key)!r} is invalid; {fix}")

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> HybridSettings:
        """Settings from a ``[hybrid]`` TOML table; unknown keys raise :class:`UsageError`."""
        names = {f.name for f in fields(cls)}
        bad = sorted(set(table) - names)
        if bad:
            raise UsageError(
                f"unknown key hybrid.{bad[0]}; allowed keys: {', '.join(sorted(names))}"
            )
        return cls(**table)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SegmentRecord:
    """What one segment did. Quantum-only fields are None for classical segments.

    emulation_error: ‖x̂_K − x_K‖/‖x_K‖, emulated vs true GD update (ALGORITHM.md §8).
    emulation_errors: the same at every step t = 1..K.
    readout_error: ‖ẑ − z‖/‖z‖ of the downloaded state against the solver's output state.
    qlsa_error, qlsa_fidelity: with a real solver (``qlsa`` ≠ ideal), ‖z_QLSA − z‖/‖z‖ of its
        output vector against the emulated z_K, and its state fidelity against ``exact``.
    total_error: ‖θ̂_K − θ_K‖/‖θ_K − θ̄‖, the written-back parameters against true GD.
    kappa, kappa_source: κ of the history system and how it was obtained.
    success_probability, p_succ_source: P_succ and how it was obtained.
    estimate: a summary of :func:`qcarleman.quantum.cost.estimate.estimate` for this segment.
    """

    segment: int
    kind: str  # "quantum" | "classical" | "start"
    start: int
    steps: int
    lr: float
    test_loss: float
    test_acc: float
    val_acc: float
    train_losses: list[float] = field(default_factory=list)
    backend: str | None = None
    order: int | None = None
    emulation_error: float | None = None
    emulation_errors: list[float] = field(default_factory=list)
    readout_error: float | None = None
    qlsa: str | None = None
    qlsa_error: float | None = None
    qlsa_fidelity: float | None = None
    parameter_readout_error: float | None = None
    total_error: float | None = None
    update_norm: float | None = None
    shots: int = 0
    shots_used: int = 0
    readout: str | None = None
    kappa: float | None = None
    kappa_source: str | None = None
    success_probability: float | None = None
    p_succ_source: str | None = None
    window: int | None = None
    rho: float | None = None
    estimate: dict[str, Any] | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def load_records(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``OUT/segments.jsonl`` (empty if none)."""
    path = Path(out) / "segments.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _settings_from_meta(meta: dict[str, Any]) -> TrainSettings:
    """The training phase settings a run's checkpoints were made with (contract (2) meta)."""
    try:
        return TrainSettings(
            optimizer=str(meta.get("optimizer", "sgd")),
            lr=float(meta["lr"]),
            momentum=float(meta.get("momentum", 0.0)),
            weight_decay=float(meta.get("weight_decay", 0.0)),
            batch_size=int(meta["batch_size"]),
            epochs=int(meta.get("epochs", 1)),
            milestones=list(meta.get("milestones", [])),
            gamma=float(meta.get("gamma", 0.1)),
        )
    except KeyError as exc:
        raise UsageError(
            f"the checkpoint meta has no {exc.args[0]!r}; use a run written by qcarleman's trainer"
        ) from None


class HybridTrainer:
    """Hybrid quantum/classical sparse training from a run directory (module docstring).

    Parameters
    ----------
    source:
        A training run directory (contract (2)); training starts from its checkpoint ``step``.
    out:
        Output directory of the hybrid run (resumed if it holds a state with the same settings).
    settings:
        :class:`HybridSettings`.
    device:
        torch device of the classical steps (the emulation follows the model).
    progress:
        Show a tqdm bar over steps.
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
    ):
        self.settings = settings or HybridSettings()
        self.settings.validate()
        self.source = RunDir(source)
        self.out = Path(out)
        self.progress = progress
        ck = self.source.load(step)
        self.meta = ck.meta
        self.loss_fn = ck.loss_fn
        self.data = self.source.dataset()
        self.train_settings = _settings_from_meta(ck.meta)
        self.trainer = Trainer(
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
            self.trainer.optimizer.load_state_dict(ck.optimizer)
        self.trainer.step = ck.step
        self.start_step = ck.step
        self.end_step = ck.step + int(self.settings.total_steps)
        from ..autodiff.operators import ActiveParams

        self.active = ActiveParams(self.trainer.model, self.trainer.mask)
        from ..training.flops import training_flops

        x0 = self.data.train[0]
        self.flops_per_step = training_flops(
            self.trainer.model, tuple(x0.shape[1:]), self.trainer.batch_size, 1, self.trainer.mask
        )
        self.momentum = float(self.train_settings.momentum)
        self.segment = 0
        self.quantum_open = self.settings.backend != "classical"
        self.records: list[dict[str, Any]] = []
        self._header = {
            "settings": self.settings.to_dict(),
            "source": str(self.source.path.resolve()),
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
        self._resume_or_start()

    # -- state ------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def _resume_or_start(self) -> None:
        head = self.out / "hybrid.json"
        text = json.dumps(jsonable(self._header), indent=1)
        if head.is_file() and head.read_text() != text:
            raise UsageError(
                f"{self.out} holds a hybrid run with other settings or source; "
                "use a new output directory"
            )
        if self.state_path.is_file():
            st = load_checkpoint(self.state_path)
            self.trainer.model.load_state_dict(st["model"])
            self.trainer.optimizer.load_state_dict(st["optimizer"])
            self.trainer.step = int(st["step"])
            self.segment = int(st["segment"])
            self.quantum_open = bool(st["quantum_open"])
            keep = [r for r in load_records(self.out) if r["segment"] < self.segment]
            self.records = keep
            atomic_write_text(
                self.out / "segments.jsonl", "".join(json.dumps(r) + "\n" for r in keep)
            )
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(head, text)
        loss, acc, val = self._evaluate()
        start = SegmentRecord(-1, "start", self.step, 0, self._lr(self.step), loss, acc, val)
        self.records = [start.to_json()]
        atomic_write_text(self.out / "segments.jsonl", json.dumps(self.records[0]) + "\n")

    def _save_state(self) -> None:
        tr = self.trainer
        save_checkpoint(
            self.state_path,
            {
                "model": {k: v.detach().cpu() for k, v in tr.model.state_dict().items()},
                "mask": {k: v.cpu() for k, v in tr.mask.items()},
                "optimizer": tr.optimizer.state_dict(),
                "step": tr.step,
                "segment": self.segment,
                "quantum_open": self.quantum_open,
            },
        )

    def _append(self, rec: SegmentRecord) -> None:
        data = rec.to_json()
        self.records.append(data)
        with open(self.out / "segments.jsonl", "a") as f:
            f.write(json.dumps(data) + "\n")

    # -- helpers ------------------------------------------------------------------------------
    def _lr(self, step: int) -> float:
        return self.train_settings.lr_at(step // self.trainer.steps_per_epoch)

    def _batches(self, start: int, K: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        tr = self.trainer
        out = []
        for s in range(start, start + K):
            x, y = batch_for_step(
                self.data, s, tr.batch_size, tr.seed, bool(self.meta.get("shuffle", True))
            )
            out.append((x.to(tr.device), y.to(tr.device)))
        return out

    def _evaluate(self) -> tuple[float, float, float]:
        loss, acc = evaluate(self.trainer.model, self.data, "test", self.trainer.device)
        _, val = evaluate(self.trainer.model, self.data, "val", self.trainer.device)
        return loss, acc, val

    def _buffers(self) -> dict[str, torch.Tensor]:
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

    def _segment_length(self, remaining: int) -> tuple[int, dict[str, Any]]:
        """K for the next segment (and the spectrum record in auto mode)."""
        s = self.settings
        info: dict[str, Any] = {}
        if s.segment_steps == "auto" and self.quantum_open:
            from ..analysis.spectrum import model_spectrum

            rep = model_spectrum(
                self.trainer.model,
                self.loss_fn,
                self._batches(self.step, 1),
                lr=self._lr(self.step),
                mask=self.trainer.mask,
                weight_decay=self.train_settings.weight_decay,
                horizon=s.max_segment_steps,
                curve_steps=s.max_segment_steps,
                method="slq",
                probes=s.spectrum_probes,
                iters=s.spectrum_iters,
                k=2,
                seed=s.seed + self.segment,
            )
            info = {"window": rep.window, "rho": rep.rho}
            if rep.window == 0:
                self.quantum_open = False
            K = max(1, min(rep.window, s.max_segment_steps))
        elif s.segment_steps == "auto":
            K = s.max_segment_steps
        else:
            K = int(s.segment_steps)
        if s.quantum_steps:
            # the end of the quantum phase is a segment boundary (also for the baseline, so both
            # runs are evaluated there)
            left = self.start_step + s.quantum_steps - self.step
            if left <= 0:
                self.quantum_open = False
            else:
                K = min(K, left)
        # never cross a learning-rate change
        K = min(K, remaining)
        lr0 = self._lr(self.step)
        k = 1
        while k < K and self._lr(self.step + k) == lr0:
            k += 1
        return k, info

    # -- the loop -----------------------------------------------------------------------------
    def run(self, callback: Callable[[HybridTrainer, dict], None] | None = None) -> dict:
        """Run the remaining segments; ``callback(self, record)`` after each (an exception there
        stops the run like a kill; the finished segments are kept). Returns :meth:`summary`."""
        import time

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
                t0 = time.perf_counter()
                K, info = self._segment_length(self.end_step - self.step)
                if self.quantum_open:
                    rec = self._quantum_segment(K, info)
                else:
                    rec = self._classical_segment(K)
                rec.window = info.get("window")
                rec.rho = info.get("rho")
                rec.test_loss, rec.test_acc, rec.val_acc = self._evaluate()
                rec.seconds = time.perf_counter() - t0
                self.segment += 1
                self._append(rec)
                self._save_state()
                bar.update(rec.steps)
                bar.set_postfix(acc=f"{rec.test_acc:.3f}", kind=rec.kind, refresh=False)
                if callback is not None:
                    callback(self, self.records[-1])
        finally:
            bar.close()
        return self.summary()

    def _classical_segment(self, K: int) -> SegmentRecord:
        start, lr = self.step, self._lr(self.step)
        losses = []
        for x, y in self._batches(start, K):
            losses.append(self.trainer.train_step(x, y, self._lr(self.trainer.step)))
            self.trainer.step += 1
        return SegmentRecord(
            self.segment, "classical", start, K, lr, math.nan, math.nan, math.nan, losses
        )

    def _reference(self, batches, lrs) -> dict[str, Any]:
        """True masked SGD from the current state: θ_t and (with momentum) v_t for t = 0..K and
        the batch losses; the model and optimizer state are restored afterwards."""
        tr = self.trainer
        snap_model = copy.deepcopy(tr.model.state_dict())
        snap_opt = copy.deepcopy(tr.optimizer.state_dict())
        theta, vel, losses = [self._flat()], [self._flat_buffers()], []
        for (x, y), lr in zip(batches, lrs):
            losses.append(tr.train_step(x, y, lr))
            theta.append(self._flat())
            vel.append(self._flat_buffers())
        tr.model.load_state_dict(snap_model)
        tr.optimizer.load_state_dict(snap_opt)
        return {"theta": theta, "v": vel if self.momentum else None, "losses": losses}

    def _flat_buffers(self) -> torch.Tensor | None:
        if not self.momentum:
            return None
        return self.active.flatten(self._buffers()).to(torch.float64).cpu()

    def _quantum_segment(self, K: int, info: dict[str, Any]) -> SegmentRecord:
        s = self.settings
        tr = self.trainer
        start, lr = self.step, self._lr(self.step)
        batches = self._batches(start, K)
        lrs = [lr] * K
        theta_bar = self._flat()
        v_bar = self._flat_buffers()
        ref = self._reference(batches, lrs)
        losses = ref["losses"]
        x_ref = [t - theta_bar for t in ref["theta"]]
        notes: list[str] = []

        # emulated trajectory x̂_t (t = 0..K), v̂_t with momentum, the order N of the costed system
        emu = _emulate(self, batches, lr, theta_bar, v_bar, x_ref, ref["v"])
        x_emu, v_emu = emu["x"], (emu["v"][-1] if emu["v"] is not None else None)
        errs = [
            float(torch.linalg.norm(xe - xr) / max(float(torch.linalg.norm(xr)), 1e-300))
            for xe, xr in zip(x_emu[1:], x_ref[1:])
        ]

        qlsa: dict[str, Any] = {}
        if s.qlsa != "ideal":
            qlsa = _solve_history(self, emu, K)
            notes += qlsa["notes"]
        # the QLSA output (ideal: the normalized emulated history state); κ, P_succ
        kappa, k_src, p_succ, p_src, est = _costs(self, K, emu, info, qlsa)
        z_emu = torch.cat([x_emu[-1]] + ([v_emu] if v_emu is not None else []))
        if qlsa:
            # the solver's output state |ŷ1(T)⟩ is downloaded whole (post-selection on level 1)
            blocks = [torch.from_numpy(np.asarray(qlsa["vector"], dtype=float))]
        else:
            # download x_K (and v_K) block by block: post-selection on level 1 and on the block
            blocks = [x_emu[-1]] + ([v_emu] if v_emu is not None else [])
        z_norm2 = sum(float(torch.sum(b * b)) for b in blocks)
        hats, used, mode = [], 0, "exact"
        for i, b in enumerate(blocks):
            b_np = b.numpy()
            p_block = p_succ * float(np.sum(b_np * b_np)) / z_norm2 if z_norm2 > 0 else 0.0
            seed = (int(s.seed) * 1_000_003 + self.segment) * 2 + i
            b_hat, mode, u, dl_notes = _download(
                b_np, p_block, s.shots, s.readout, s.readout_max_dim, seed
            )
            hats.append(b_hat)
            used += u
            notes += [m for m in dl_notes if m not in notes]
        z_np = np.concatenate([b.numpy() for b in blocks])
        z_hat = np.concatenate(hats)
        zn = float(np.linalg.norm(z_np))
        readout_err = float(np.linalg.norm(z_hat - z_np) / zn) if zn > 0 else 0.0
        n = self.active.n
        x_hat = torch.from_numpy(z_hat[:n].copy())
        q_err = (
            float(torch.linalg.norm(blocks[0] - z_emu) / torch.linalg.norm(z_emu))
            if qlsa and float(torch.linalg.norm(z_emu)) > 0
            else None
        )
        xn = float(torch.linalg.norm(x_emu[-1]))
        par_err = float(torch.linalg.norm(x_hat - x_emu[-1]) / xn) if xn > 0 else 0.0

        # write back under the mask (re-upload), momentum buffer from the download
        theta_hat = theta_bar + x_hat
        self.active.load_into(tr.model, theta_hat.to(next(tr.model.parameters()).dtype))
        if v_emu is not None:
            self._set_buffers(torch.from_numpy(z_hat[n:].copy()))
        # refresh batch-norm running statistics classically at θ̂ (module docstring)
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in tr.model.modules()):
            was = tr.model.training
            tr.model.train()
            with torch.no_grad():
                for x, _ in batches:
                    tr.model(x)
            tr.model.train(was)
            notes.append("batch-norm running statistics refreshed classically at θ̂")
        tr.step += K
        xr = float(torch.linalg.norm(x_ref[-1]))
        total = float(torch.linalg.norm(theta_hat - ref["theta"][-1]) / xr) if xr > 0 else 0.0
        return SegmentRecord(
            self.segment,
            "quantum",
            start,
            K,
            lr,
            math.nan,
            math.nan,
            math.nan,
            losses,
            backend=s.backend,
            order=emu["order"],
            emulation_error=errs[-1] if errs else 0.0,
            emulation_errors=errs,
            readout_error=readout_err,
            qlsa=s.qlsa,
            qlsa_error=q_err,
            qlsa_fidelity=qlsa.get("fidelity"),
            parameter_readout_error=par_err,
            total_error=total,
            update_norm=xr,
            shots=int(s.shots),
            shots_used=used,
            readout=mode,
            kappa=kappa,
            kappa_source=k_src,
            success_probability=p_succ,
            p_succ_source=p_src,
            estimate=est,
            notes=notes + emu.get("notes", []),
        )

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


def run_baseline(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: HybridSettings,
    *,
    step: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Classical sparse training beside a hybrid run: the same source, steps, data order and
    segment boundaries (evaluation points), every step classical. Returns the summary."""
    from dataclasses import replace

    base = replace(settings, backend="classical")
    return HybridTrainer(source, out, base, step=step, device=device, progress=progress).run()


# -- the stages of a quantum segment ------------------------------------------------------------
def _emulate(
    h: HybridTrainer,
    batches: list,
    lr: float,
    theta_bar: torch.Tensor,
    v_bar: torch.Tensor | None,
    x_ref: list[torch.Tensor],
    v_ref: list[torch.Tensor] | None,
) -> dict[str, Any]:
    """The emulated trajectory of one segment: ``x`` (x̂_t, t = 0..K), ``v`` (v̂_t or None),
    ``order`` (N of the Carleman system that is costed), optional ``levels`` (‖ŷ_j(t)‖ per t),
    ``notes``. The map is :class:`~qcarleman.autodiff.gdmap.GDMap` (SGD: batch t at step t)."""
    s = h.settings
    if s.backend == "true-gd":
        return {
            "x": x_ref,
            "v": v_ref,
            "order": int(s.order),
            "notes": ["true-gd backend: the emulated state is true masked SGD (no emulation)"],
        }
    from ..autodiff.gdmap import GDMap

    K = len(batches)
    gmap = GDMap(
        h.trainer.model,
        h.loss_fn,
        batches,
        lr,
        mask=h.trainer.mask,
        weight_decay=h.train_settings.weight_decay,
        momentum=h.momentum,
        theta=theta_bar.to(h.trainer.device),
        per_step=True,
        dtype=torch.float64 if s.dtype == "float64" else torch.float32,
    )
    z0 = gmap.initial_state(v_bar)
    notes: list[str] = []
    levels = None
    if s.backend == "taylor":
        Z, order = gmap.iterate(z0, K), int(s.order)
        notes.append("taylor backend: exact iteration of the cubic Taylor map (no truncation)")
    elif s.backend == "linear":
        from ..autodiff.lowrank import emulate_order1

        Z, order = emulate_order1(gmap, z0, K).trajectory.cpu().numpy(), 1
    else:
        order = int(s.order)
        Z, levels, more = _carleman(gmap, z0, K, order, s.max_rank)
        notes += more
    Zt = torch.from_numpy(np.asarray(Z, dtype=float))
    n = gmap.n
    return {
        "x": list(Zt[:, :n]),
        "v": list(Zt[:, n:]) if h.momentum else None,
        "order": order,
        "levels": levels,
        "notes": notes,
        "map": gmap,
        "z0": z0,
    }


def _carleman(gmap, z0: np.ndarray, K: int, order: int, max_rank: int):
    """Order-N truncated Carleman trajectory (level 1, original units), the level norms
    ‖ŷ_j(t)‖ when computed, and notes: the low-rank order-2 emulation
    (:func:`qcarleman.autodiff.lowrank.emulate_order2`, ALGORITHM.md §2) for N = 2, the dense
    :class:`~qcarleman.carleman.CarlemanSystem` for other orders on small maps."""
    from ..carleman import CarlemanSystem

    d = gmap.dim
    if order == 2:
        from ..autodiff.lowrank import emulate_order2

        res = emulate_order2(gmap, z0, K, max_rank=max_rank or None)
        note = f"low-rank order-2 Carleman, final rank {res.ranks[-1]}"
        if max_rank:
            note += f", truncated to ≤ {max_rank} (max discarded weight {max(res.discarded):.3g})"
        return res.trajectory.cpu().numpy(), None, [note]
    if sum(d**j for j in range(1, order + 1)) > 20_000:
        raise UsageError(
            f"Carleman order {order} of a d = {d} map is too large to emulate densely; "
            "use order = 2 (low-rank) or backend = 'linear'/'taylor'"
        )
    cs = CarlemanSystem(gmap.dense_map(), order)
    y = cs.lift(z0)
    traj = [cs.scale * cs.level(y, 1)]
    levels = [[float(np.linalg.norm(cs.level(y, j))) for j in range(1, order + 1)]]
    for t in range(K):
        y = cs.apply(t, y) + cs.rhs(t)
        traj.append(cs.scale * cs.level(y, 1))
        levels.append([float(np.linalg.norm(cs.level(y, j))) for j in range(1, order + 1)])
    return np.array(traj), levels, [f"dense Carleman N = {order}, γ = {cs.scale:g}"]


def _solve_history(h: HybridTrainer, emu: dict[str, Any], K: int) -> dict[str, Any]:
    """Solve the segment's dense history system (ALGORITHM.md §3) with the real solver
    ``settings.qlsa`` (:func:`qcarleman.quantum.solve.solve`); returns its output vector
    γ·ν·|ŷ1(T)⟩ (original units), κ, P_succ and the fidelity against ``exact``."""
    from ..carleman import CarlemanSystem
    from ..quantum.solve import solve

    s = h.settings
    gmap, N = emu["map"], int(emu["order"])
    p = K if s.idle == -1 else int(s.idle)
    d = gmap.dim
    dim = (K + p + 1) * sum(d**j for j in range(1, N + 1))
    limit = {"exact": 200_000, "qsvt": 4096, "hhl": 64}[s.qlsa]
    if dim > limit:
        raise UsageError(
            f"the history system of this segment has dimension {dim} (d = {d}, N = {N}, "
            f"T = {K}, p = {p}); the {s.qlsa} solver handles ≤ {limit}; use qlsa = 'ideal'"
        )
    cs = CarlemanSystem(gmap.dense_map(), N)
    hist = cs.history(emu["z0"], K, idle=p)
    method = "exact" if hist.dim <= 1024 else "estimate"
    kappa = float(hist.kappa(method))
    res = solve(hist, backend=s.qlsa, kappa=kappa)
    return {
        "vector": res.output_vector(),
        "kappa": kappa,
        "kappa_method": f"κ {method}",
        "p_succ": float(res.success_probability),
        "fidelity": float(res.fidelity),
        "notes": [
            f"QLSA {s.qlsa} on the dense history system (dim {hist.dim}), fidelity "
            f"{res.fidelity:.6g} against exact"
        ],
    }


def _download(
    z: np.ndarray,
    p_succ: float,
    shots: int,
    readout: str,
    max_dim: int,
    seed: int,
) -> tuple[np.ndarray, str, int, list[str]]:
    """Tomography of the output state (ALGORITHM.md §5, :mod:`qcarleman.quantum.readout`):
    ψ̂ from M shots (sampled or the equivalent-noise model), ν̂ = ‖z‖·√(P̂/P_succ) from M
    Bernoulli shots of the post-selection flag (ν = ‖Y‖√P_succ/√(p+1), the ideal QLSA's norm
    relation), ẑ = ν̂ψ̂. ``shots = 0`` is the exact download. Returns (ẑ, mode, shots used,
    notes)."""
    if shots == 0 or not np.any(z):
        return z.copy(), "exact", 0, ["exact download (shots = 0): no tomography noise"]
    from ..quantum import readout as ro

    mode = readout
    if mode == "auto":
        mode = "shots" if z.size <= max_dim else "noise-model"
    if mode == "shots":
        res = ro.tomography(z, shots, seed=seed)
    else:
        res = ro.equivalent_noise(z, shots, seed=seed)
    zn = float(np.linalg.norm(z))
    if 0 < p_succ <= 1:
        scale = zn / np.sqrt(p_succ)
        nu, _ = ro.estimate_norm(p_succ, scale, shots, seed=seed + 1)
        used = int(res.shots["total"]) + int(shots)
    else:
        nu, used = zn, int(res.shots["total"])
    notes = list(res.notes) + [f"norm from {shots} shots of the success flag (P_succ known)"]
    return nu * np.asarray(res.psi, dtype=float), mode, used, notes


def success_probability(
    z_norms: list[float], N: int, p: int, levels: list[list[float]] | None = None
) -> float:
    r"""P_succ = (p+1)‖ŷ1(T)‖² / ‖Y‖² with ‖Y‖² = Σ_{t ≤ T} Σ_j ‖ŷ_j(t)‖² + p Σ_j ‖ŷ_j(T)‖²
    (ALGORITHM.md §3; the p idle copies repeat ŷ(T)). ``levels[t][j−1]`` = ‖ŷ_j(t)‖ when the
    emulation knows them; otherwise ‖ŷ_j(t)‖ = ‖z_t‖^j, exact for the untruncated lift
    z^{⊗j} (scale γ = 1)."""
    if levels is None:
        levels = [[zn**j for j in range(1, N + 1)] for zn in z_norms]
    Y2 = sum(sum(v * v for v in lv) for lv in levels) + p * sum(v * v for v in levels[-1])
    return float((p + 1) * levels[-1][0] ** 2 / Y2) if Y2 > 0 else 0.0


def _costs(
    h: HybridTrainer, K: int, emu: dict[str, Any], info: dict[str, Any], qlsa: dict[str, Any]
):
    """κ, P_succ (with their sources) and the resource-estimate summary of a segment; with a
    real solver (``qlsa``) its κ and P_succ are used."""
    from ..quantity import Quantity
    from ..quantum.cost.estimate import estimate
    from ..quantum.cost.inputs import Conditioning, CostModel, Problem, StepFlops
    from ..training.flops import training_flops

    s = h.settings
    N = int(emu["order"])
    p = K if s.idle == -1 else int(s.idle)
    x, v = emu["x"], emu["v"]
    z_norms = [
        float(torch.linalg.norm(xt if v is None else torch.cat([xt, v[t]])))
        for t, xt in enumerate(x)
    ]
    p_succ = success_probability(z_norms, N, p, emu.get("levels"))
    p_src = (
        "emulated Carleman levels (ALGORITHM.md §3)"
        if emu.get("levels") is not None
        else "levels ‖z_t‖^j of the emulated trajectory (exact lift, γ = 1)"
    )
    if qlsa:
        p_succ, p_src = qlsa["p_succ"], f"{s.qlsa} solver on the history system"
    rho = info.get("rho") or (s.rho or None)
    rho_src = (
        "measured: Hessian spectrum at the segment start (ALGORITHM.md §6)"
        if info.get("rho")
        else "user input (HybridSettings.rho)"
    )
    shape = tuple(h.data.train[0].shape[1:])
    flops_src = "per-layer count on the model: 3·B·forward FLOPs (qcarleman.training.flops)"
    dense = training_flops(h.trainer.model, shape, h.trainer.batch_size, 1, None)
    est = estimate(
        problem=Problem(
            n=h.active.n,
            P=h.active.P,
            T=K,
            N=N,
            p=p,
            epsilon=s.epsilon,
            momentum=h.momentum > 0,
            batch_size=h.trainer.batch_size,
            flops_per_step=StepFlops(
                sparse=Quantity(h.flops_per_step, "measured", source=flops_src + ", active"),
                dense=Quantity(dense, "measured", source=flops_src + ", every weight"),
            ),
        ),
        conditioning=Conditioning(
            rho=Quantity(rho, "measured" if info.get("rho") else "assumed", source=rho_src)
            if rho
            else None,
            kappa=Quantity(
                qlsa["kappa"],
                "exact" if qlsa["kappa_method"] == "κ exact" else "measured",
                source=f"history system, {qlsa['kappa_method']} (ALGORITHM.md §3)",
            )
            if qlsa
            else None,
            p_succ=Quantity(p_succ, "exact" if qlsa else "measured", source=p_src)
            if p_succ > 0
            else None,
        ),
        model=CostModel(solver=s.solver, shots=s.shots or None, use_qsharp=False),
    )
    fig = est.figures
    kappa = float(est.kappa.value)
    if qlsa:
        k_src = f"history system, {qlsa['kappa_method']} (ALGORITHM.md §3)"
    elif rho:
        k_src = f"§3 bound from ρ = {rho:.6g}"
    else:
        k_src = f"§3 bound, {fig['kappa'].approx or 'given'}"
    wall, tomo = est.wall_clock, est.tomography
    summary = {
        "n": h.active.n,
        "T": K,
        "N": N,
        "p": p,
        "logical_qubits": est.logical_qubits,
        "kappa": est.kappa.to_json(),
        "kappa_eff": est.kappa_eff.to_json(),
        "p_succ": float(est.p_succ.value),
        "aa_rounds": est.aa_rounds,
        "epsilon": tomo.epsilon,
        "shots": tomo.shots,
        "shots_for_epsilon": tomo.for_epsilon,
        "shots_given": tomo.given,
        "epsilon_at_shots_given": None
        if tomo.epsilon_at_given is None
        else tomo.epsilon_at_given.to_json(),
        "queries": est.queries[s.solver],
        "solver": s.solver,
        "block_encoding_calls": est.block_encoding_calls,
        "t_count": est.t_count,
        "classical_flops": est.classical_flops.value,
        "classical_flops_kind": est.classical_flops.kind,
        "classical_flops_dense": est.classical_flops_dense.value,
        "flop_rate": wall.flop_rate,
        "quantum_seconds": wall.quantum_s,
        "classical_seconds": wall.classical_s,
        "winner": wall.winner,
        "assumptions": {k: f.approx for k, f in fig.items() if f.approx},
    }
    return kappa, k_src, p_succ, p_src, summary
