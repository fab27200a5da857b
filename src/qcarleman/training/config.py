r"""TOML configuration of the training pipeline: schema, presets, validation, writing.

Layout (every key optional except ``model.name``; the resolved config is written to
``RUN_DIR/config.toml``)::

    seed = 0              # data order, initialisation, augmentation
    device = "cpu"        # or "cuda"
    threads = 0           # torch CPU threads (0 = torch's default)

    [data]                # see qcarleman.training.data
    name = "digits"       # digits | mnist | cifar10 | cifar100
    root = ""             # CIFAR folder holding cifar-10-batches-py/ or cifar-100-python/
    size = 0              # resize images to size×size (0 = native)
    val_fraction = 0.1    # held-out validation part of the training data
    test_fraction = 0.2   # digits only (the other datasets have a test set)
    augment = false       # CIFAR crop+flip (default true for CIFAR)
    subset = 0            # keep only the first `subset` training samples (0 = all)
    split_seed = 0

    [model]               # name + constructor keywords of ResNet / SmallCNN / MLP
    name = "smallcnn"     # in_channels, classes, image_size, in_features come from the data

    [train]               # dense training
    preset = ""           # "paper" = ALGORITHM.md §9 (lr 0.1, momentum 0.9, wd 2e-4, batch 128,
                          # 200 epochs, ×0.1 at 100 and 150); explicit keys override a preset
    optimizer = "sgd"     # sgd (minibatch, shuffled) | gd (full batch, fixed order)
    lr = 0.1
    momentum = 0.9
    weight_decay = 2e-4
    batch_size = 128      # ignored by gd
    epochs = 200
    milestones = [100, 150]
    gamma = 0.1
    checkpoint_every = 1  # epochs between checkpoints (0 = only the last)
    checkpoint_epochs = []
    checkpoint_steps = []
    every_step_first = 0  # checkpoint after each of the first steps 0..every_step_first
    max_steps = 0         # stop after this many optimizer steps (0 = no limit)

    [prune]
    amount = 0.9
    scope = "global"      # global | layerwise
    include_classifier = false

    [sparse]              # sparse training after pruning; any [train] key overrides [train]
    mode = "finetune"     # finetune (from the pruned weights) | scratch (re-initialised)
    every_step_first = 20

A bad key or value raises :class:`~qcarleman.errors.UsageError` naming the key and the fix.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = [
    "TrainSettings",
    "PruneSettings",
    "settings_from_meta",
    "lr_at_step",
    "Config",
    "PRESETS",
    "load_config",
    "dump_config",
    "example_config",
    "example_configs",
    "check_data_spec",
    "config_diff",
]

#: ALGORITHM.md §9 (dense training of the paper) and a plain full-batch GD preset.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 2e-4,
        "batch_size": 128,
        "epochs": 200,
        "milestones": [100, 150],
        "gamma": 0.1,
    },
    "gd": {"optimizer": "gd", "momentum": 0.0, "weight_decay": 0.0, "milestones": []},
}


@dataclass
class TrainSettings:
    """Optimizer, schedule and checkpoint settings of one training phase."""

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    batch_size: int = 128
    epochs: int = 200
    milestones: list[int] = field(default_factory=lambda: [100, 150])
    gamma: float = 0.1
    checkpoint_every: int = 1
    checkpoint_epochs: list[int] = field(default_factory=list)
    checkpoint_steps: list[int] = field(default_factory=list)
    every_step_first: int = 0
    max_steps: int = 0

    def lr_at(self, epoch: int) -> float:
        """Step schedule: lr · gamma^(number of milestones ≤ epoch) (ALGORITHM.md §9)."""
        return self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)


def settings_from_meta(meta: dict[str, Any]) -> TrainSettings:
    """The training phase settings a run's checkpoints were made with (their metadata)."""
    if "lr" not in meta:
        raise UsageError(
            "the checkpoint meta has no learning rate 'lr'; pass --lr or use a run written by "
            "qcarleman's trainer"
        )
    return TrainSettings(
        optimizer=str(meta.get("optimizer", "sgd")),
        lr=float(meta["lr"]),
        momentum=float(meta.get("momentum", 0.0)),
        weight_decay=float(meta.get("weight_decay", 0.0)),
        batch_size=int(meta.get("batch_size", TrainSettings.batch_size)),
        epochs=int(meta.get("epochs", 1)),
        milestones=list(meta.get("milestones", [])),
        gamma=float(meta.get("gamma", 0.1)),
    )


def lr_at_step(meta: dict[str, Any], step: int) -> float:
    """η of the optimizer step taken from checkpoint ``step``: the run's step schedule
    lr·gamma^(#milestones ≤ epoch) with epoch = step // steps_per_epoch (ALGORITHM.md §9)."""
    spe = max(1, int(meta.get("steps_per_epoch", 1)))
    return settings_from_meta(meta).lr_at(int(step) // spe)


@dataclass
class PruneSettings:
    amount: float = 0.9
    scope: str = "global"
    include_classifier: bool = False


@dataclass
class Config:
    """A validated pipeline configuration."""

    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    data: dict[str, Any] = field(default_factory=lambda: {"name": "digits"})
    model: dict[str, Any] = field(default_factory=lambda: {"name": "smallcnn"})
    train: TrainSettings = field(default_factory=TrainSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    sparse_mode: str = "finetune"
    sparse: TrainSettings = field(default_factory=lambda: TrainSettings(every_step_first=20))

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as the TOML table layout."""
        sparse = {"mode": self.sparse_mode, **asdict(self.sparse)}
        return {
            "seed": self.seed,
            "device": self.device,
            "threads": self.threads,
            "data": dict(self.data),
            "model": dict(self.model),
            "train": asdict(self.train),
            "prune": asdict(self.prune),
            "sparse": sparse,
        }


#: Dataset names of :mod:`qcarleman.training.data`.
DATASETS = ("digits", "mnist", "cifar10", "cifar100")
_DATA_KEYS = {
    "name": str,
    "root": str,
    "size": int,
    "val_fraction": float,
    "test_fraction": float,
    "augment": bool,
    "subset": int,
    "split_seed": int,
}
_TRAIN_TYPES = {f.name: f.type for f in fields(TrainSettings)}


def _type_ok(value: Any, kind: Any) -> bool:
    kind = {"int": int, "float": float, "str": str, "bool": bool, "list[int]": list}.get(kind, kind)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    return isinstance(value, kind)


def _check_keys(section: str, table: Any, allowed: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise UsageError(
            f"[{section}] must be a table (a [{section}] header with key = value lines)"
        )
    for key, value in table.items():
        if key not in allowed:
            raise UsageError(
                f"unknown key {section}.{key}; allowed keys: {', '.join(sorted(allowed))}"
            )
        if not _type_ok(value, allowed[key]):
            want = {dict: "a table"}.get(
                allowed[key], getattr(allowed[key], "__name__", allowed[key])
            )
            raise UsageError(f"{section}.{key} = {value!r} has the wrong type; expected {want}")
    return dict(table)


def _train_settings(section: str, table: dict[str, Any], base: TrainSettings) -> TrainSettings:
    table = dict(table)
    preset = table.pop("preset", "")
    if preset:
        if preset not in PRESETS:
            raise UsageError(
                f"{section}.preset = {preset!r} is unknown; use one of {sorted(PRESETS)}"
            )
        base = replace(base, **PRESETS[preset])
    ts = replace(
        base, **{k: (float(v) if _TRAIN_TYPES[k] == "float" else v) for k, v in table.items()}
    )
    checks = [
        (ts.optimizer in ("sgd", "gd"), "optimizer", "use sgd or gd"),
        (math.isfinite(ts.lr) and ts.lr > 0, "lr", "use a finite learning rate > 0"),
        (0 <= ts.momentum < 1, "momentum", "use 0 <= momentum < 1"),
        (
            math.isfinite(ts.weight_decay) and ts.weight_decay >= 0,
            "weight_decay",
            "use a finite weight_decay >= 0",
        ),
        (ts.batch_size >= 1, "batch_size", "use batch_size >= 1"),
        (ts.epochs >= 0, "epochs", "use epochs >= 0"),
        (math.isfinite(ts.gamma) and ts.gamma > 0, "gamma", "use a finite gamma > 0"),
        (all(m >= 0 for m in ts.milestones), "milestones", "use epochs >= 0"),
        (ts.checkpoint_every >= 0, "checkpoint_every", "use 0 (last only) or a positive number"),
        (all(s >= 0 for s in ts.checkpoint_steps), "checkpoint_steps", "use steps >= 0"),
        (all(e >= 0 for e in ts.checkpoint_epochs), "checkpoint_epochs", "use epochs >= 0"),
        (ts.every_step_first >= 0, "every_step_first", "use a count >= 0"),
        (ts.max_steps >= 0, "max_steps", "use 0 (no limit) or a positive count"),
    ]
    for ok, key, fix in checks:
        if not ok:
            raise UsageError(f"{section}.{key} = {getattr(ts, key)!r} is invalid; {fix}")
    return ts


def check_data_spec(spec: Any, where: str = "data") -> dict[str, Any]:
    """Validate a data spec (keys, types, ranges) as in the ``[data]`` table."""
    data = _check_keys(where, spec, _DATA_KEYS)
    name = data.get("name", "digits")
    if name not in DATASETS:
        raise UsageError(f"{where}.name = {name!r} is unknown; use one of {', '.join(DATASETS)}")
    for key in ("val_fraction", "test_fraction"):
        if key in data and not 0 <= data[key] < 1:
            raise UsageError(f"{where}.{key} = {data[key]!r} is invalid; use a fraction in [0, 1)")
    for key in ("size", "subset"):
        if data.get(key, 0) < 0:
            raise UsageError(f"{where}.{key} = {data[key]!r} is invalid; use 0 or a positive count")
    return data


def _check_model_spec(model: Any) -> None:
    """Model keywords must be TOML scalars or flat lists of them (no nesting, no cycles)."""
    scalar = (bool, int, float, str)
    for key, value in model.items():
        ok = isinstance(value, scalar) or (
            isinstance(value, list) and all(isinstance(v, scalar) for v in value)
        )
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise UsageError(
                f"model.{key} = {type(value).__name__} value is invalid; use a finite number, "
                "string, boolean or a flat list of them"
            )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config tables (e.g. ``model.width``)."""
    fa, fb = _flatten(a), _flatten(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, None) != fb.get(k, None))


def load_config(source: str | os.PathLike | dict[str, Any]) -> Config:
    """Read and validate a config from a TOML file or an already-parsed dict."""
    if isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(
                f"config file {path} not found; see `qcarleman train --help` for examples"
            )
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            msg = str(exc).splitlines()[0][:100]
            raise UsageError(f"config {path} is not valid TOML ({msg}); fix the syntax") from None
    top = {
        "seed": int,
        "device": str,
        "threads": int,
        "data": dict,
        "model": dict,
        "train": dict,
        "prune": dict,
        "sparse": dict,
        "hybrid": dict,  # read by `qcarleman hybrid` (qcarleman.pipeline.stages.load_hybrid_config)
        "pipeline": dict,
    }
    _check_keys("config", raw, top)
    cfg = Config(
        seed=raw.get("seed", 0), device=raw.get("device", "cpu"), threads=raw.get("threads", 0)
    )
    if cfg.device not in ("cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise UsageError(f"device = {cfg.device!r} is invalid; use cpu, cuda or cuda:<index>")
    if cfg.threads < 0:
        raise UsageError(f"threads = {cfg.threads} is invalid; use 0 (default) or a positive count")
    data = check_data_spec(raw.get("data", {}))
    data.setdefault("name", "digits")
    cfg.data = data
    model = raw.get("model", {})
    if not isinstance(model, dict) or "name" not in model:
        raise UsageError("the config needs a [model] table with a name (resnet, smallcnn or mlp)")
    _check_model_spec(model)
    from .models import model_class

    model_class(model)
    cfg.model = dict(model)
    train_keys = {**_TRAIN_TYPES, "preset": str}
    cfg.train = _train_settings(
        "train", _check_keys("train", raw.get("train", {}), train_keys), TrainSettings()
    )
    prune = _check_keys(
        "prune", raw.get("prune", {}), {"amount": float, "scope": str, "include_classifier": bool}
    )
    cfg.prune = PruneSettings(**{**asdict(PruneSettings()), **prune})
    cfg.prune.amount = float(cfg.prune.amount)
    if not 0 <= cfg.prune.amount < 1:
        raise UsageError(f"prune.amount = {cfg.prune.amount} is invalid; use a fraction in [0, 1)")
    if cfg.prune.scope not in ("global", "layerwise"):
        raise UsageError(f"prune.scope = {cfg.prune.scope!r} is invalid; use global or layerwise")
    sparse = _check_keys("sparse", raw.get("sparse", {}), {**train_keys, "mode": str})
    cfg.sparse_mode = sparse.pop("mode", "finetune")
    if cfg.sparse_mode not in ("finetune", "scratch"):
        raise UsageError(f"sparse.mode = {cfg.sparse_mode!r} is invalid; use finetune or scratch")
    sparse.setdefault("every_step_first", 20)
    cfg.sparse = _train_settings("sparse", sparse, cfg.train)
    return cfg


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise UsageError(f"cannot write {v!r} to TOML; use numbers, strings, booleans or lists")


def dump_config(cfg: Config | dict[str, Any]) -> str:
    """TOML text of a config (scalars first, then one table per section)."""
    d = cfg.to_dict() if isinstance(cfg, Config) else cfg
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def example_config(name: str) -> Path:
    """Path of a shipped example config (``qcarleman/configs/<name>.toml``). Names use ``-``; the
    older ``_`` spellings (``hybrid_digits_cpu``) are aliases."""
    path = _CONFIGS / f"{name.removesuffix('.toml').replace('_', '-')}.toml"
    if not path.is_file():
        raise UsageError(
            f"no example config {name!r}; available: {', '.join(example_configs())} "
            "(`qcarleman configs` describes them)"
        )
    return path


def example_configs() -> dict[str, str]:
    """Shipped example configs: ``{name: one-line description}`` (each file's first comment)."""
    out = {}
    for path in sorted(_CONFIGS.glob("*.toml")):
        first = path.read_text().splitlines()[0] if path.stat().st_size else ""
        out[path.stem] = first.removeprefix("#").strip()
    return out
