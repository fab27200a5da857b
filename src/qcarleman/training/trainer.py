r"""Dense and sparse training with exact-resume checkpoints (ALGORITHM.md §1, §9).

:class:`Trainer` runs minibatch SGD (``optimizer = "sgd"``: shuffled batches) or full-batch GD
(``"gd"``: one batch of the whole training split in stored order) with PyTorch's heavy-ball
momentum (v' = μv + ∇L + λθ, θ' = θ − ηv'), weight decay λ and a step learning-rate schedule
(η·γ^{#milestones ≤ epoch}). With a mask, gradients of pruned entries are zeroed before each step
and the mask is re-applied after it, so pruned weights and their momentum stay exactly 0.

Checkpoints (the run-directory format of docs/training.md) are written atomically after step 0,
after each of the first ``every_step_first`` steps, at ``checkpoint_steps``, at epoch ends
(``checkpoint_every``, ``checkpoint_epochs``) and at the last step. The data order is a function of
(seed, epoch) and the running epoch statistics are stored, so resuming from any checkpoint
reproduces the uninterrupted run bit for bit on the CPU. A non-finite loss, gradient or weight
stops training with :class:`~qcarleman.errors.DivergenceError` before anything of that step is
written. Run folders store paths relative to themselves (data root, source run), so they can be
moved.

Pipelines used by the CLI: :func:`train_dense`, :func:`prune_run`, :func:`sparse_train`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import (
    append_jsonl,
    atomic_write_text,
    read_jsonl,
    remove_stale_temps,
    write_jsonl,
)
from ..errors import DivergenceError, UsageError, check_memory
from .checkpoint import (
    capture_rng,
    checkpoint_name,
    restore_rng,
    save_checkpoint,
    seed_everything,
)
from .config import Config, TrainSettings, config_diff, dump_config
from .data import Dataset, batch_order, load_dataset, make_batch, steps_per_epoch
from .models import build_model, count_parameters, model_class, model_options
from .pruning import (
    apply_mask,
    full_mask,
    mask_gradients,
    prune_global,
    prune_layerwise,
    sparsity_report,
)
from .run import RunDir, check_mask, check_state, cross_entropy

__all__ = [
    "Trainer",
    "evaluate",
    "resolve_model_spec",
    "train_dense",
    "prune_run",
    "sparse_train",
]


def resolve_model_spec(spec: dict[str, Any], data: Dataset) -> dict[str, Any]:
    """Fill the data-dependent constructor keywords (in_channels, classes, image_size,
    in_features) from the dataset when the model takes them and the spec leaves them out."""
    cls, _ = model_class(spec)
    known = {
        "in_channels": data.in_channels,
        "classes": data.classes,
        "image_size": data.image_size,
        "in_features": data.in_channels * data.image_size**2,
    }
    opts = model_options(cls)
    return {**{k: v for k, v in known.items() if k in opts}, **spec}


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Dataset, split: str, device: str = "cpu", batch_size: int = 1024
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy on a split (eval mode; NaN on an empty split)."""
    x, y = data.split(split)
    if len(y) == 0:
        return float("nan"), float("nan")
    was = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = model(x[i : i + batch_size].to(device))
        t = y[i : i + batch_size].to(device)
        loss += float(nn.functional.cross_entropy(out, t, reduction="sum"))
        correct += int((out.argmax(1) == t).sum())
    model.train(was)
    return loss / len(y), correct / len(y)


class Trainer:
    """Train ``model`` on ``data`` with ``settings``; checkpoints go to ``run_dir``.

    ``mask`` (name → bool tensor, True = active) keeps pruned weights at exactly 0. ``meta`` adds
    entries to every checkpoint's meta dict (model spec, phase, ...).
    """

    def __init__(  # noqa: PLR0913 — predates the rule (docs/DEVELOPING.md, Lint)
        self,
        model: nn.Module,
        data: Dataset,
        settings: TrainSettings,
        run_dir: str | os.PathLike,
        mask: dict[str, torch.Tensor] | None = None,
        seed: int = 0,
        device: str = "cpu",
        meta: Mapping[str, Any] | None = None,
        progress: bool = True,
    ):
        self.device = device
        self.model = model.to(device)
        self.data = data
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.progress = progress
        self.mask = {k: v.to(device) for k, v in (mask or full_mask(model)).items()}
        n = len(data.train[1])
        self.full_batch = settings.optimizer == "gd"
        self.batch_size = n if self.full_batch else min(settings.batch_size, n)
        self.steps_per_epoch = steps_per_epoch(n, self.batch_size)
        total = settings.epochs * self.steps_per_epoch
        self.total_steps = min(total, settings.max_steps) if settings.max_steps else total
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=settings.lr,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
        )
        self.meta = {
            **(meta or {}),
            "data": _portable_spec(data.spec, self.run_dir),
            "optimizer": settings.optimizer,
            "lr": settings.lr,
            "momentum": settings.momentum,
            "weight_decay": settings.weight_decay,
            "batch_size": self.batch_size,
            "shuffle": not self.full_batch,
            "epochs": settings.epochs,
            "milestones": list(settings.milestones),
            "gamma": settings.gamma,
            "steps_per_epoch": self.steps_per_epoch,
            "seed": seed,
        }
        self.step = 0
        self._stats = {"loss": 0.0, "correct": 0, "count": 0}
        self._t0 = time.perf_counter()

    # -- checkpoints ------------------------------------------------------------------------
    def _wants_checkpoint(self, step: int) -> bool:
        s = self.settings
        if step <= s.every_step_first or step in s.checkpoint_steps or step == self.total_steps:
            return True
        if step % self.steps_per_epoch:
            return False
        epoch = step // self.steps_per_epoch
        return bool(s.checkpoint_every and epoch % s.checkpoint_every == 0) or (
            epoch in s.checkpoint_epochs
        )

    def save(self) -> Path:
        """Write the checkpoint of the current step (atomically)."""
        epoch = self.step // self.steps_per_epoch
        payload = {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "mask": {k: v.cpu() for k, v in self.mask.items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": capture_rng(),
            "step": self.step,
            "epoch": epoch,
            "epoch_stats": dict(self._stats),
            "meta": {**self.meta, "lr_now": self.settings.lr_at(epoch)},
        }
        path = self.run_dir / "checkpoints" / checkpoint_name(self.step)
        save_checkpoint(path, payload)
        return path

    def resume(self, step: int | None = None) -> int:
        """Restore model, mask, optimizer, RNG and counters from a checkpoint of ``run_dir``
        (the latest when ``step`` is None) and drop later metrics records. Returns the step."""
        run = RunDir(self.run_dir)
        ck = run.raw(step)
        where = run.checkpoint_path(int(ck["step"]))
        for key in ("optimizer", "rng", "epoch_stats"):
            if not isinstance(ck.get(key), dict):
                raise UsageError(
                    f"{where} has no {key!r} entry, so it cannot be resumed; "
                    "resume from another checkpoint or use a new output directory"
                )
        check_state(self.model, ck["model"], where)
        self.model.load_state_dict(ck["model"])
        mask = check_mask(self.model, ck["mask"], where)
        self.mask = {k: v.to(self.device) for k, v in mask.items()}
        try:
            self.optimizer.load_state_dict(ck["optimizer"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise UsageError(
                f"{where}: the optimizer state does not fit the model ({exc}); "
                "use a new output directory"
            ) from None
        restore_rng(ck["rng"])
        self.step = int(ck["step"])
        stats = ck["epoch_stats"]
        if set(stats) != {"loss", "correct", "count"}:
            raise UsageError(f"{where}: damaged epoch_stats {stats}; resume from another step")
        self._stats = dict(stats)
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.is_file():
            keep = [r for r in read_jsonl(metrics) if _record_step(r) <= self.step]
            write_jsonl(metrics, keep)
        return self.step

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON record to ``metrics.jsonl`` (strict JSON; NaN becomes null)."""
        append_jsonl(self.run_dir / "metrics.jsonl", record)

    def _check_finite(self, what: str, tensors: list[torch.Tensor], value: Any = None) -> None:
        """Raise :class:`DivergenceError` if any tensor holds NaN/inf: one fused max-|x| per
        tensor (NaN propagates through max), one sync per call."""
        if not tensors or bool(
            torch.stack(torch._foreach_norm(tensors, math.inf)).isfinite().all()
        ):
            return
        shown = f" is {value}" if value is not None else " holds NaN or inf"
        raise DivergenceError(
            f"training diverged at step {self.step}: the {what}{shown}; restart from an earlier "
            f"checkpoint with a smaller learning rate (lr = {self.settings.lr:g} now) — nothing "
            "of this step was written"
        )

    # -- training ---------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        """One optimizer step on batch (x, y) with the mask enforced; returns the batch loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        out = self.model(x)
        loss = cross_entropy(out, y)
        value = float(loss.detach())
        self._check_finite("loss", [loss.detach()], value)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mask_gradients(self.model, self.mask)
        params = [p for p in self.model.parameters()]
        self._check_finite("gradient", [p.grad for p in params if p.grad is not None])
        self.optimizer.step()
        apply_mask(self.model, self.mask)
        self._check_finite("weights", [p.detach() for p in params])
        self._stats["loss"] += value * len(y)
        self._stats["correct"] += int((out.detach().argmax(1) == y).sum())
        self._stats["count"] += len(y)
        return value

    def fit(self, callback: Callable[[Trainer], None] | None = None) -> dict[str, Any]:
        """Train from the current step to the end; ``callback(trainer)`` runs after every step
        (an exception there stops training like a kill). Returns the last epoch record (from
        ``metrics.jsonl`` when a resumed run had no step left, so it is the same record)."""
        from tqdm.auto import tqdm

        for folder in (self.run_dir, self.run_dir / "checkpoints"):
            remove_stale_temps(folder)
        if self.step == 0 and not _has_checkpoint(self.run_dir, 0):
            self.save()
        last: dict[str, Any] = {}
        order: list[torch.Tensor] = []
        order_epoch = -1
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"{self.meta.get('phase', 'train')}",
            unit="step",
            disable=not self.progress,
            leave=False,
        )
        try:
            while self.step < self.total_steps:
                epoch, b = divmod(self.step, self.steps_per_epoch)
                if epoch != order_epoch:
                    n = len(self.data.train[1])
                    order = batch_order(n, self.batch_size, self.seed, epoch, not self.full_batch)
                    order_epoch = epoch
                x, y = make_batch(self.data, "train", order[b], self.seed, epoch, b)
                lr = self.settings.lr_at(epoch)
                loss = self.train_step(x.to(self.device), y.to(self.device), lr)
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch, refresh=False)
                if self.step <= self.settings.every_step_first:
                    self.log(
                        {"kind": "step", "step": self.step, "epoch": epoch, "lr": lr, "loss": loss}
                    )
                if self.step % self.steps_per_epoch == 0 or self.step == self.total_steps:
                    last = self._end_epoch(epoch, lr)
                if self._wants_checkpoint(self.step):
                    self.save()
                if callback is not None:
                    callback(self)
        finally:
            bar.close()
        return last or self._last_epoch_record()

    def _last_epoch_record(self) -> dict[str, Any]:
        """The last ``kind = "epoch"`` record of ``metrics.jsonl`` ({} if none)."""
        records = read_jsonl(self.run_dir / "metrics.jsonl")
        return next((r for r in reversed(records) if r.get("kind") == "epoch"), {})

    def _end_epoch(self, epoch: int, lr: float) -> dict[str, Any]:
        st = self._stats
        val_loss, val_acc = evaluate(self.model, self.data, "val", self.device)
        test_loss, test_acc = evaluate(self.model, self.data, "test", self.device)
        record = {
            "kind": "epoch",
            "step": self.step,
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": st["loss"] / max(st["count"], 1),
            "train_acc": st["correct"] / max(st["count"], 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "seconds": time.perf_counter() - self._t0,
        }
        self.log(record)
        self._stats = {"loss": 0.0, "correct": 0, "count": 0}
        return record


def _record_step(record: Any) -> int:
    step = record.get("step", 0) if isinstance(record, dict) else 0
    return step if isinstance(step, int) else 0


def _portable_spec(spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The data spec with ``root`` written relative to the run directory (which is where
    :meth:`RunDir.data_spec` resolves it), so the run folder can be moved with its data."""
    root = spec.get("root")
    if not root:
        return dict(spec)
    return {**spec, "root": os.path.relpath(Path(root).expanduser().resolve(), run_dir.resolve())}


def _has_checkpoint(path: Path, step: int) -> bool:
    """Whether ``path`` already holds a checkpoint of ``step``."""
    return (Path(path) / "checkpoints" / checkpoint_name(step)).is_file()


# -- pipelines ------------------------------------------------------------------------------
def _setup(cfg: Config) -> tuple[Dataset, dict[str, Any]]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("device = cuda but no CUDA GPU is visible; set device = 'cpu'")
    data_spec = dict(cfg.data)
    if data_spec.get("root"):  # a config's root is relative to the current directory
        data_spec["root"] = str(Path(data_spec["root"]).expanduser().resolve())
    data = load_dataset(data_spec)
    spec = resolve_model_spec(cfg.model, data)
    with torch.device("meta"):  # count parameters without allocating them
        n = count_parameters(build_model(spec))
    # weights, gradients, momentum buffers and a checkpoint copy in float32
    check_memory(16 * n, f"training a {n:,}-parameter model")
    return data, spec


def _prepare_out(cfg: Config, out: str | os.PathLike) -> Path:
    from .config import load_config

    out = Path(out)
    text = dump_config(cfg)
    old = out / "config.toml"
    if old.is_file() and old.read_text(errors="replace") != text:
        try:
            keys = config_diff(load_config(old).to_dict(), cfg.to_dict())
        except UsageError:
            keys = ["(config.toml unreadable)"]
        raise UsageError(
            f"{out} holds a run made with a different config (differs in "
            f"{', '.join(keys[:6]) or 'formatting'}); resume with the config in {old} "
            "or use a new output directory"
        )
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "checkpoints"):
        remove_stale_temps(folder)
    atomic_write_text(old, text)
    return out


def train_dense(cfg: Config, out: str | os.PathLike, progress: bool = True) -> dict[str, Any]:
    """Dense training of ``cfg.model`` on ``cfg.data`` into run directory ``out``; resumes from
    the latest checkpoint there if any. Returns the final epoch record."""
    data, spec = _setup(cfg)
    seed_everything(cfg.seed)
    model = build_model(spec)
    out = _prepare_out(cfg, out)
    meta = {"model": spec, "phase": "dense"}
    trainer = Trainer(model, data, cfg.train, out, None, cfg.seed, cfg.device, meta, progress)
    if _has_checkpoint(out, 0):
        trainer.resume()
    return trainer.fit()


def prune_run(
    cfg: Config,
    source: str | os.PathLike,
    out: str | os.PathLike,
    source_step: int | None = None,
    progress: bool = True,
    data: Dataset | None = None,
) -> dict[str, Any]:
    """Prune the checkpoint ``source_step`` (latest by default) of run ``source`` with
    ``cfg.prune`` and write step 0 of the sparse run ``out`` (pruned weights; in scratch mode
    re-initialised weights under the mask). Returns the sparsity report. ``data`` skips
    reloading the dataset."""
    _check_distinct(source, out)
    src = RunDir(source)
    ck = src.load(source_step)
    if data is None:
        data, _ = _setup(cfg)
    spec = ck.meta.model
    model = ck.model
    prune = prune_global if cfg.prune.scope == "global" else prune_layerwise
    mask = prune(model, cfg.prune.amount, cfg.prune.include_classifier)
    if cfg.sparse_mode == "scratch":
        torch.manual_seed(cfg.seed + 1)
        model = build_model(spec)
        apply_mask(model, mask)
    report = sparsity_report(model, mask, cfg.prune.include_classifier)
    out = _prepare_out(cfg, out)
    meta = {
        "model": spec,
        "phase": "sparse",
        "mode": cfg.sparse_mode,
        "prune_amount": cfg.prune.amount,
        "prune_scope": cfg.prune.scope,
        "include_classifier": cfg.prune.include_classifier,
        "source": os.path.relpath(Path(source).resolve(), Path(out).resolve()),
        "source_step": ck.step,
    }
    trainer = Trainer(model, data, cfg.sparse, out, mask, cfg.seed, cfg.device, meta, progress)
    trainer.save()
    trainer.log({"kind": "prune", "step": 0, **report, "mode": cfg.sparse_mode})
    return report


def sparse_train(
    cfg: Config,
    out: str | os.PathLike,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sparse training in run ``out``: if ``out`` has no step-0 checkpoint yet, prune ``source``
    first (:func:`prune_run`); then train with ``cfg.sparse`` from the latest checkpoint."""
    out = Path(out)
    if not _has_checkpoint(out, 0) and source is None:
        raise UsageError(
            f"{out} holds no pruned checkpoint; pass --from DENSE_RUN to prune one first"
        )
    if source is not None:
        _check_distinct(source, out)
    data, _ = _setup(cfg)
    seed_everything(cfg.seed)
    if not _has_checkpoint(out, 0):
        assert source is not None  # checked above
        prune_run(cfg, source, out, progress=progress, data=data)
    ck = RunDir(out).load(0)
    trainer = Trainer(
        ck.model, data, cfg.sparse, out, ck.mask, cfg.seed, cfg.device, ck.meta, progress
    )
    trainer.resume()
    return trainer.fit()


def _check_distinct(source: str | os.PathLike, out: str | os.PathLike) -> None:
    """Refuse writing a sparse run into its own source run (it would overwrite it)."""
    if Path(source).resolve() == Path(out).resolve():
        raise UsageError(
            f"--from and --out are the same folder ({source}); the sparse run would overwrite "
            "its dense source — choose another --out"
        )
