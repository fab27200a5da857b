"""The validation layer at the CLI boundary: typed, ranged argument parsers and the cost guard.

Every numeric argument of every command is parsed by :func:`integer` or :func:`real` into a
typed value with its range (finite, positive where it must be, integers where integers are meant,
sizes bounded by what one machine could do), so bad input fails in argparse with one line naming
the argument and the fix (exit 2) before any work starts. :func:`check_work` is the up-front
cost guard: a command predicts its work from its sizes and refuses beyond a stated limit unless
``--force`` is given; memory is predicted with :func:`qcarleman.errors.check_memory`.
:func:`check_config` applies the same rules to the numbers of a TOML config.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import UsageError, memory_limit

#: Largest integer any size argument accepts (far above any real model, far below 2^63).
BIG = 10**15

#: Work guard of training configs: samples through the model (optimizer steps × batch size).
SAMPLE_LIMIT = 1e10


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else f"{v:,}"


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '≥'} {_fmt(lo)}"
    return f"{'<' if hi_open else '≤'} {_fmt(hi)}"


def integer(lo: int | None = 0, hi: int | None = BIG) -> Callable[[str], int]:
    """An argparse ``type``: a decimal integer in [lo, hi] (``1e3`` and ``10_000`` are accepted
    when they are whole numbers)."""

    def parse(text: str) -> int:
        want = f"an integer {_range_text(lo, hi, False, False)}"
        try:
            value = int(text.strip())
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {want}") from None
            if not math.isfinite(f) or f != int(f):
                raise argparse.ArgumentTypeError(
                    f"{text!r} is not an integer; give {want}"
                ) from None
            value = int(f)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {want}")
        return value

    return parse


def real(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in the range (NaN and ±inf are refused)."""

    def parse(text: str) -> float:
        want = (
            f"a finite number {_range_text(lo, hi, lo_open, hi_open)}"
            if (lo is not None or hi is not None)
            else "a finite number"
        )
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {want}") from None
        bad = not math.isfinite(value)
        if lo is not None:
            bad = bad or value < lo or (lo_open and value == lo)
        if hi is not None:
            bad = bad or value > hi or (hi_open and value == hi)
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {want}")
        return value

    return parse


def positive(hi: float = 1e100) -> Callable[[str], float]:
    """A finite float in (0, hi]."""
    return real(0.0, hi, lo_open=True)


def memory(text: str) -> str:
    """A memory size such as ``8G``, ``512M`` or a byte count (checked, returned as given)."""
    try:
        n = memory_limit(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is no memory at all; give e.g. 8G or 512M")
    return text


def png(text: str) -> str:
    """A file name ending in .png."""
    if not text.lower().endswith(".png") or text.strip() != text or len(text) <= 4:
        raise argparse.ArgumentTypeError(f"{text!r} is not a .png file name; give e.g. out.png")
    return text


def add_force(p: argparse.ArgumentParser) -> None:
    """``--force``: run past the work guard (:func:`check_work`)."""
    p.add_argument(
        "--force", action="store_true", help="run even if the predicted work exceeds the guard"
    )


def check_work(amount: float, limit: float, what: str, *, force: bool) -> None:
    """The up-front cost guard: refuse (one-line :class:`UsageError`) a run whose predicted work
    ``amount`` (in the units ``what`` names) exceeds ``limit`` unless ``force``."""
    if not force and not amount <= limit:
        raise UsageError(
            f"{what}: about {amount:.3g} predicted, over the limit of {limit:.3g}; "
            "use smaller sizes or pass --force"
        )


# ------------------------------------------------------------------------------------------
# configs (train, prune, sparse-train, hybrid)
# ------------------------------------------------------------------------------------------
#: Finite ranges of the numeric config keys: (lo, hi) inclusive.
_TRAIN_RANGES = {  # lr, weight_decay, gamma: finite in float32 (divergence: the trainer, exit 3)
    "lr": (0.0, 1e38),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, 1e38),
    "batch_size": (1, 10**7),
    "epochs": (0, 10**6),
    "gamma": (0.0, 1e38),
    "checkpoint_every": (0, 10**6),
    "every_step_first": (0, 10**6),
    "max_steps": (0, 10**9),
}
_DATA_RANGES = {"size": (0, 1024), "subset": (0, 10**9), "split_seed": (0, 2**32 - 1)}
_MODEL_INT = (1, 10**5)  # widths, depths, channels of the model constructors


def _in_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # type errors are the config loader's
    if not (math.isfinite(value) and lo <= value <= hi):
        raise UsageError(f"{name} = {value!r} is out of range; use a finite value in [{lo}, {hi}]")


def _check_model_types(model: dict[str, Any]) -> None:
    """model.<key> has the type of the constructor's default for that key."""
    import inspect

    from ..training.models import model_class

    params = inspect.signature(model_class(model)[0]).parameters
    for key, value in model.items():
        default = params[key].default if key in params else None
        if default is None or default is inspect.Parameter.empty or key == "name":
            continue
        want = list if isinstance(default, list | tuple) else type(default)
        got = list if isinstance(value, list | tuple) else type(value)
        if want is float and got is int:
            continue
        if got is not want:
            raise UsageError(
                f"model.{key} = {value!r} has the wrong type; expected {want.__name__}"
            )


def check_config(cfg: Any, *, force: bool = False) -> None:
    """Ranges of a loaded :class:`~qcarleman.training.config.Config` (finite numbers, bounded
    sizes), then the work guard: optimizer steps × batch size (samples through the model)."""
    _in_range("seed", cfg.seed, 0, 2**32 - 1)
    _in_range("threads", cfg.threads, 0, 4096)
    for key, (lo, hi) in _DATA_RANGES.items():
        if key in cfg.data:
            _in_range(f"data.{key}", cfg.data[key], lo, hi)
    for key in ("val_fraction", "test_fraction"):
        if key in cfg.data:
            _in_range(f"data.{key}", cfg.data[key], 0.0, 0.9)
    _check_model_ranges(cfg.model)
    for section, ts in (("train", cfg.train), ("sparse", cfg.sparse)):
        for key, (low, high) in _TRAIN_RANGES.items():
            _in_range(f"{section}.{key}", getattr(ts, key), low, high)
        for key in ("milestones", "checkpoint_epochs", "checkpoint_steps"):
            for v in getattr(ts, key):
                _in_range(f"{section}.{key}", v, 0, 10**9)
        subset = cfg.data.get("subset") or 60_000  # the largest bundled training set
        steps = ts.max_steps or ts.epochs * max(1, -(-subset // ts.batch_size))
        check_work(
            float(steps) * ts.batch_size,
            SAMPLE_LIMIT,
            f"[{section}] samples through the model ({ts.epochs} epochs × batch {ts.batch_size})",
            force=force,
        )


def _check_model_ranges(model: dict[str, Any]) -> None:
    """Types of the [model] table, then its numbers: floats in [0, 1e6], integers in range."""
    _check_model_types(model)
    for key, value in model.items():
        items = value if isinstance(value, list) else [value]
        for v in items:
            if isinstance(v, float):
                _in_range(f"model.{key}", v, 0.0, 1e6)
            elif isinstance(v, int) and not isinstance(v, bool):
                _in_range(f"model.{key}", v, *_MODEL_INT)


@contextmanager
def float_range(what: str, fix: str) -> Iterator[None]:
    """Turn a float64 overflow / division by zero / non-converging SVD inside ``what`` — inputs
    valid one by one but extreme together — into a one-line :class:`UsageError` naming ``fix``."""
    import numpy as np

    try:
        yield
    except (ArithmeticError, np.linalg.LinAlgError) as exc:
        raise UsageError(
            f"{what} leaves the float64 range for these inputs ({exc}); {fix}"
        ) from None


#: Types and ranges of the numeric keys of a hybrid config's [hybrid] and [pipeline] tables
#: (:class:`~qcarleman.hybrid.trainer.HybridSettings`, the options of
#: :func:`~qcarleman.pipeline.stages.demo_config`); other keys are checked by their loaders.
_HYBRID_RANGES: dict[str, dict[str, tuple[type, float, float]]] = {
    "hybrid": {
        "order": (int, 1, 6),
        "max_segment_steps": (int, 1, 10**4),
        "quantum_steps": (int, 0, 10**6),
        "total_steps": (int, 1, 10**6),
        "shots": (int, 0, 10**15),
        "readout_max_dim": (int, 1, 10**9),
        "idle": (int, -1, 10**4),
        "epsilon": (float, 1e-12, 0.48),
        "spectrum_probes": (int, 1, 10**4),
        "spectrum_iters": (int, 2, 10**4),
        "rho": (float, 0.0, 1e3),
        "max_rank": (int, 0, 10**6),
        "seed": (int, 0, 2**32 - 1),
    },
    "pipeline": {
        "spectrum_steps": (int, 0, 10**4),
        "spectrum_stride": (int, 1, 10**6),
        "spectrum_probes": (int, 1, 10**4),
        "spectrum_iters": (int, 2, 10**4),
        "horizon": (int, 1, 10**5),
        "shot_budgets": (list, 0, 10**15),
    },
}


def _typed(name: str, value: Any, kind: type, lo: float, hi: float) -> None:
    if kind is list:
        if not isinstance(value, list) or len(value) > 100:
            raise UsageError(f"{name} = {value!r} must be a list of at most 100 integers")
        for v in value:
            _typed(f"{name}[]", v, int, lo, hi)
        return
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if (kind is int and not is_int) or (kind is float and not (is_int or isinstance(value, float))):
        raise UsageError(f"{name} = {value!r} has the wrong type; expected {kind.__name__}")
    _in_range(name, value, lo, hi)


def check_hybrid_tables(raw: dict[str, Any]) -> None:
    """Types and ranges of the numbers in a hybrid config's [hybrid] and [pipeline] tables (the
    raw TOML dict), before :func:`qcarleman.pipeline.stages.load_hybrid_config` builds them."""
    for section, rules in _HYBRID_RANGES.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise UsageError(f"[{section}] must be a table (a [{section}] header with key = value)")
        for key, (kind, lo, hi) in rules.items():
            if key in table:
                _typed(f"{section}.{key}", table[key], kind, lo, hi)
        K = table.get("segment_steps") if section == "hybrid" else None
        if K is not None and K != "auto":
            _typed("hybrid.segment_steps", K, int, 1, 10**4)
        for key in ("backend", "readout", "solver", "dtype", "qlsa"):
            if section == "hybrid" and key in table and not isinstance(table[key], str):
                raise UsageError(f"hybrid.{key} = {table[key]!r} has the wrong type; expected str")
        backends = table.get("emulation_backends") if section == "pipeline" else None
        if backends is not None and not (
            isinstance(backends, list) and all(isinstance(b, str) for b in backends)
        ):
            raise UsageError(f"pipeline.emulation_backends = {backends!r} must be a list of names")


# ------------------------------------------------------------------------------------------
# hybrid: --config or --from, the [hybrid] overrides
# ------------------------------------------------------------------------------------------
def segment_steps(text: str) -> int | str:
    """An argparse ``type``: the segment length K, an integer in [1, 10⁴] or ``auto``."""
    return "auto" if text.strip().lower() == "auto" else integer(1, 10**4)(text)


def _set_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``: VALUE read as a TOML value (``1e-3``, ``true``, ``"auto"``),
    else taken as a bare string (``backend=linear``)."""
    import tomllib

    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise UsageError(f"--set {text!r} is not KEY=VALUE; give e.g. --set order=1")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def hybrid_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The [hybrid] keys given on the command line of ``qcarleman hybrid`` (``--backend``,
    ``--segment-steps``, ``--total-steps``, ``--shots``, ``--set KEY=VALUE``), checked with the
    rules of a config's [hybrid] table; also refuses a missing or contradictory source
    (``--config`` and ``--from`` together, neither, ``--step`` without ``--from``)."""
    from ..hybrid.settings import HybridSettings

    if args.config is not None and args.source is not None:
        raise UsageError(
            "--from RUN takes model, data and mask from the run, --config would train another "
            "one; give one of them (hybrid settings with --from: --backend, --set KEY=VALUE, ...)"
        )
    if args.config is None and args.source is None:
        raise UsageError("give --config CONFIG (train from scratch) or --from RUN (a sparse run)")
    if args.step is not None and args.source is None:
        raise UsageError("--step chooses a checkpoint of --from RUN; it needs --from")
    named = {
        "backend": args.backend,
        "segment_steps": args.segment_steps,
        "total_steps": args.total_steps,
        "shots": args.shots,
    }
    table = {k: v for k, v in named.items() if v is not None}
    table.update(_set_value(text) for text in args.sets)
    check_hybrid_tables({"hybrid": table})
    HybridSettings.from_dict(table)  # unknown keys, bad names and combinations: one line
    return table


def check_hybrid_source(args: argparse.Namespace):
    """``--from RUN [--step S] --out DIR``: refuse DIR = RUN, a missing run, a run that is not
    sparse and an absent step (:func:`qcarleman.hybrid.from_run.sparse_source`); returns the
    :class:`~qcarleman.hybrid.from_run.SparseSource`."""
    from ..hybrid.from_run import sparse_source

    return sparse_source(args.source, args.step, out=args.out)
