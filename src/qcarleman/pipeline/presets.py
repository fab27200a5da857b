"""Presets of ``qcarleman paper`` (shipped TOML configs in ``qcarleman/configs/``) and the
options of the paper pipeline (the ``[paper]`` table of such a config).

========== ============================== ==================================================
preset     config                         what
========== ============================== ==================================================
tiny       ``paper-tiny.toml``            ResNet-8 on digits, CI size (≤ 2 min on 2 cores)
cpu        ``paper-cpu.toml``             ResNet-8 on MNIST padded to 32×32 (≤ 30 min, CPU)
paper      ``paper-resnet32x4.toml``      ResNet-32×4 on CIFAR-100, ALGORITHM.md §9, CUDA
paper-103m ``paper-resnet56x11.toml``     ResNet-56×11 (103,703,700 parameters), CUDA
========== ============================== ==================================================

:func:`load_preset` returns the training config dict and :class:`PaperOptions`; it checks the
data folder and the device before anything runs, so a missing CIFAR folder or GPU is a one-line
:class:`~qcarleman.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["PRESETS", "PaperOptions", "load_preset", "apply_overrides"]

PRESETS = {
    "tiny": "paper-tiny.toml",
    "cpu": "paper-cpu.toml",
    "paper": "paper-resnet32x4.toml",
    "paper-103m": "paper-resnet56x11.toml",
}

#: The paper's checkpoints of the Hessian spectra (Liu et al. 2024, Fig. 3): steps 0–20, 24, 28, 32.
PAPER_SPECTRA_STEPS = tuple(range(21)) + (24, 28, 32)


@dataclass(frozen=True)
class PaperOptions:
    """What the paper pipeline measures (the ``[paper]`` table).

    sparse_steps: sparse finetuning steps after pruning (checkpoint after each of the first
        ``every_step`` and at ``mode_points``); spectra_steps: checkpoints whose Hessian spectrum
        is measured; mode_points: checkpoints whose dissipative/divergent sums are shown (the
        paper's Fig. 4 uses sparse epochs 0, 2, 100, 140); probes, lanczos_steps, extremes:
        SLQ probes × Lanczos steps (the paper: 256) and the k extreme eigenpairs deflated
        (found in at most ``extreme_steps`` Lanczos steps);
        hessian_batches: batches of the Hessian; dtype: autodiff precision; curve_steps: T range
        of E(T); emulation_min_steps / emulation_max_steps: the emulated segment is the
        paper-definition window clamped to this range; emulation_chunk: columns per vmapped
        product in the order-2 emulation when it runs functional products (its cached gradient
        graphs would not fit; memory O(P·chunk) instead of O(P·2T); the same numbers);
        shot_budgets: tomography shots M;
        epsilon: target output error of the resource estimate; error_threshold: the relative
        error "within" which the emulated output is said to follow true GD; scratch: also
        train the scratch variant (re-initialised under the mask).
    """

    sparse_steps: int = 64
    every_step: int = 32
    spectra_steps: tuple[int, ...] = PAPER_SPECTRA_STEPS
    mode_points: tuple[int, ...] = (0, 2, 32, 64)
    probes: int = 1
    lanczos_steps: int = 40
    extremes: int = 3
    extreme_steps: int = 60
    hessian_batches: int = 1
    dtype: str = "float64"
    curve_steps: int = 100
    emulation_min_steps: int = 20
    emulation_max_steps: int = 24
    emulation_chunk: int = 8
    shot_budgets: tuple[int, ...] = (10_000, 1_000_000)
    epsilon: float = 1e-2
    error_threshold: float = 0.05
    scratch: bool = False

    def __post_init__(self) -> None:
        for name in ("spectra_steps", "mode_points", "shot_budgets"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        checks = (
            (self.sparse_steps >= max(self.every_step, 1), "sparse_steps", "use ≥ every_step"),
            (
                all(0 <= s <= self.every_step for s in self.spectra_steps) and self.spectra_steps,
                "spectra_steps",
                "use checkpoints between 0 and every_step",
            ),
            (
                all(0 <= s <= self.sparse_steps for s in self.mode_points) and self.mode_points,
                "mode_points",
                "use steps between 0 and sparse_steps",
            ),
            (self.probes >= 1 and self.lanczos_steps >= 2, "probes", "use ≥ 1 probe, ≥ 2 steps"),
            (self.dtype in ("float64", "float32"), "dtype", "use float64 or float32"),
            (
                1 <= self.emulation_min_steps <= self.emulation_max_steps,
                "emulation_min_steps",
                "use 1 ≤ min ≤ max",
            ),
            (self.emulation_chunk >= 1, "emulation_chunk", "use an integer ≥ 1"),
            (all(m >= 1 for m in self.shot_budgets), "shot_budgets", "use counts ≥ 1"),
            (0 < self.epsilon < 1 and 0 < self.error_threshold, "epsilon", "use 0 < ε < 1"),
        )
        for ok, key, fix in checks:
            if not ok:
                raise UsageError(f"paper.{key} is invalid; {fix}")

    @classmethod
    def from_dict(cls, table: dict[str, Any] | None) -> PaperOptions:
        """Options from a ``[paper]`` table; unknown keys raise :class:`UsageError`."""
        table = table or {}
        names = sorted(f.name for f in fields(cls))
        bad = sorted(set(table) - set(names))
        if bad:
            raise UsageError(f"unknown key paper.{bad[0]}; allowed keys: {', '.join(names)}")
        return cls(**table)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def checkpoint_steps(self) -> list[int]:
        """The sparse run's checkpoints beyond the first ``every_step`` (the mode points)."""
        return sorted({s for s in self.mode_points if s > self.every_step})


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str] | dict[str, Any]) -> dict[str, Any]:
    """``raw`` with ``section.key=value`` overrides (values in TOML syntax; bare words are
    strings), e.g. ``model.widen=1`` or ``paper.lanczos_steps=20``."""
    out = copy.deepcopy(raw)
    items = overrides.items() if isinstance(overrides, dict) else []
    if isinstance(overrides, list):
        pairs = []
        for item in overrides:
            if "=" not in item:
                raise UsageError(f"--set {item!r} is not KEY=VALUE; write e.g. model.widen=1")
            key, val = item.split("=", 1)
            pairs.append((key.strip(), _parse_value(val.strip())))
        items = pairs
    for key, val in items:
        *path, last = key.split(".")
        node = out
        for p in path:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {key}: {p} is not a table; use section.key=value")
        node[last] = val
    return out


def load_preset(
    name: str,
    *,
    data_root: str | None = None,
    device: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> tuple[dict[str, Any], PaperOptions]:
    """The training config dict and :class:`PaperOptions` of preset ``name`` (or a path to a
    TOML file of the same layout), with ``data_root``, ``device`` and ``overrides`` applied;
    checks the CIFAR folder and the CUDA device up front (module docstring)."""
    if name in PRESETS:
        text = files("qcarleman").joinpath("configs", PRESETS[name]).read_text()
    elif Path(name).is_file():
        text = Path(name).read_text()
    else:
        raise UsageError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)} or a TOML file")
    raw = tomllib.loads(text)
    if data_root is not None:
        raw.setdefault("data", {})["root"] = str(data_root)
    if device is not None:
        raw["device"] = device
    raw = apply_overrides(raw, overrides or [])
    options = PaperOptions.from_dict(raw.pop("paper", {}))
    _check_data(name, raw.get("data", {}))
    _check_device(name, str(raw.get("device", "cpu")))
    raw.setdefault("sparse", {})
    raw["sparse"].update(
        max_steps=options.sparse_steps,
        every_step_first=options.every_step,
        checkpoint_steps=options.checkpoint_steps,
        checkpoint_every=0,
    )
    return raw, options


def _check_data(preset: str, data: dict[str, Any]) -> None:
    name = str(data.get("name", "digits"))
    if not name.startswith("cifar"):
        return
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    root = Path(str(data.get("root") or "")).expanduser()
    if not str(data.get("root") or "") or not ((root / sub).is_dir() or root.name == sub):
        raise UsageError(
            f"preset {preset} needs {name}: pass --data DIR with DIR/{sub}/ "
            f"(https://www.cs.toronto.edu/~kriz/{sub.replace('-batches-py', '-python')}.tar.gz)"
        )


def _check_device(preset: str, device: str) -> None:
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            f"preset {preset} runs on device {device} but no CUDA GPU is visible; "
            "run it on a GPU machine or pass --device cpu (very slow at this size)"
        )
