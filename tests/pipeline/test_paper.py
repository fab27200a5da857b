"""``qcarleman paper``: the tiny preset end to end, resume after an interruption at each stage,
the CIFAR presets at tiny width on synthetic CIFAR-format pickles, and their clear failures
without data or GPU."""

from __future__ import annotations

import json
import math
import pickle
import shutil

import numpy as np
import pytest
import torch

from qcarleman.cli.main import main
from qcarleman.errors import UsageError
from qcarleman.pipeline import paper as paper_mod
from qcarleman.pipeline.layout import PaperLayout
from qcarleman.pipeline.presets import PRESETS, PaperOptions, load_preset

SUMMARY_KEYS = (
    "accuracy_per_step",
    "spectra_steps",
    "error_curve",
    "window_paper",
    "window_momentum",
    "mode_contributions",
    "emulation",
    "estimate",
)
FIGURES = ("accuracy.png", "spectra.png", "error_curve.png", "modes.png", "emulation.png")


def _strip(obj):
    """The summary without wall-clock numbers and the run's own path (they differ)."""
    if isinstance(obj, dict):
        drop = ("timings_s", "run")
        return {k: _strip(v) for k, v in obj.items() if "seconds" not in k and k not in drop}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "tiny"
    assert main(["paper", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    return out


def test_tiny_every_stage_figure_and_key(tiny):
    lay = PaperLayout(tiny)
    for path in (lay.accuracy, lay.spectra, lay.analysis, lay.emulation, lay.estimate):
        assert path.is_file(), path
    s = json.loads(lay.summary.read_text())
    for key in SUMMARY_KEYS:
        assert key in s, key
    opt = PaperOptions.from_dict(s["options"])
    # per-step accuracy 0..32, spectra at the preset's steps ∪ mode points
    assert len(s["accuracy_per_step"]["finetune"]) == opt.every_step + 1
    assert s["spectra_steps"] == sorted(set(opt.spectra_steps) | set(opt.mode_points))
    assert len(s["error_curve"]["paper"]) == opt.curve_steps + 1
    assert s["error_curve"]["paper"][0] == pytest.approx(1.0)
    # windows are those of the step-0 spectrum's curves (ALGORITHM.md §6, §6.1)
    from qcarleman import dissipation as dis

    assert s["window_paper"] == dis.window(s["error_curve"]["paper"])
    assert s["window_momentum"] == dis.window(s["error_curve"]["momentum"])
    assert [m["step"] for m in s["mode_contributions"]] == list(opt.mode_points)
    for m in s["mode_contributions"]:  # E = D + G for each map
        assert len(m["r_paper"]) == opt.curve_steps + 1
    emu = s["emulation"]
    assert set(emu["orders"]) == {"1", "2"}
    assert all(len(e) == emu["steps"] + 1 for e in emu["orders"].values())
    assert [d["shots"] for d in emu["downloads"]] == list(opt.shot_budgets)
    assert s["estimate"]["problem"]["T"] == emu["steps"]
    for f in FIGURES:
        assert (lay.figures / f).is_file(), f
    captions = " ".join(f["caption"] for f in json.loads(lay.figure_index.read_text()))
    for label in ("Step", "Accuracy", "Eigenvalue", "Step T", "Density", "E(T)", "Sum ratio"):
        assert f"“{label}" in captions or label in captions, label
    assert "$" not in captions  # mathtext labels are named in words in the captions
    # x_1 = f0 exactly: the emulation figure says so instead of drawing log(0)
    assert "order 1 at T = 1" in captions and "order 2 at T = 1" in captions
    import html

    assert f"<p id='findings'>{html.escape(s['findings'])}</p>" in lay.report.read_text()
    assert f"t* = {s['window_paper']}" in s["findings"]


def test_tiny_emulation_matches_exact_first_step_and_download_scale(tiny):
    """x_1 = f0 exactly for every Carleman order (x_0 = 0), and the downloaded output's error
    stays within the tomography scale √(n/M) of the emulated output's error."""
    emu = json.loads(PaperLayout(tiny).emulation.read_text())
    for e in emu["orders"].values():
        assert e[0] == 0.0 and e[1] < 1e-6
    n, M = emu["n"], emu["downloads"][-1]["shots"]
    for a, b in zip(emu["downloads"][-1]["errors"], emu["orders"]["2"]):
        assert abs(a - b) <= 3 * math.sqrt(n / M)
    # the emulated output at order 2 is closer to the Taylor model than order 1 at the end
    assert emu["vs_taylor"]["2"][-1] <= emu["vs_taylor"]["1"][-1]


def _drop(lay: PaperLayout, stage: str) -> None:
    """Delete the outputs of ``stage`` (training: the later sparse checkpoints)."""
    if stage == "train":
        for ck in sorted((lay.sparse / "checkpoints").iterdir())[10:]:
            ck.unlink()
        lay.accuracy.unlink()
    elif stage == "accuracy":
        lay.accuracy.unlink()
    elif stage == "spectra":
        lay.spectra.unlink()
        sorted((lay.root / "spectra").iterdir())[-1].unlink()
    else:
        getattr(lay, stage).unlink()
    lay.summary.unlink()


@pytest.mark.parametrize(
    "stage",
    [s if s == "emulation" else pytest.param(s, marks=pytest.mark.slow) for s in paper_mod.STAGES],
)
def test_tiny_resumes_after_interruption(tiny, tmp_path, monkeypatch, stage):
    ref = _strip(json.loads(PaperLayout(tiny).summary.read_text()))
    out = tmp_path / "run"
    shutil.copytree(tiny, out)
    lay = PaperLayout(out)
    _drop(lay, stage)
    name = f"{stage}_stage"

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(paper_mod, name, killed)
    assert main(["paper", "--preset", "tiny", "--out", str(out), "--quiet"]) == 130
    monkeypatch.undo()
    assert not lay.summary.exists()
    assert main(["paper", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    assert _strip(json.loads(lay.summary.read_text())) == ref


# -- the CIFAR presets -------------------------------------------------------------------------
def _write_cifar100(root, n_train: int, n_test: int) -> None:
    """Synthetic files in the python-pickle layout of cifar-100-python/ (as tests/test_data.py)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f, n in (("train", n_train), ("test", n_test)):
        d = {
            b"batch_label": f.encode(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": [0] * n,
            b"filenames": [b"x.png"] * n,
        }
        with open(folder / f, "wb") as fh:
            pickle.dump(d, fh, protocol=2)


TINY_WIDTH = [
    "model.depth=8", "model.widen=1", "train.epochs=1", "train.milestones=[]",
    "train.batch_size=16", "sparse.epochs=3", "sparse.batch_size=16", "paper.sparse_steps=6",
    "paper.every_step=4", "paper.spectra_steps=[0, 2]", "paper.mode_points=[0, 6]",
    "paper.probes=1", "paper.lanczos_steps=4", "paper.extremes=1", "paper.extreme_steps=6",
    "paper.emulation_min_steps=2", "paper.emulation_max_steps=2", "paper.shot_budgets=[1000]",
    "paper.curve_steps=30", "paper.dtype='float32'", "data.subset=64", "threads=1",
]  # fmt: skip


@pytest.mark.slow  # minutes on a shared 2-core machine (spectra, emulation, estimate)
@pytest.mark.parametrize("preset", ["paper", "paper-103m"])
def test_cifar_presets_end_to_end_at_tiny_width(tmp_path, preset):
    _write_cifar100(tmp_path / "data", 64, 32)
    out = tmp_path / "out"
    args = ["paper", "--preset", preset, "--out", str(out), "--data", str(tmp_path / "data")]
    args += ["--device", "cpu", "--quiet"] + [f"--set={o}" for o in TINY_WIDTH]
    assert main(args) == 0
    s = json.loads(PaperLayout(out).summary.read_text())
    assert s["config"]["data"]["name"] == "cifar100"
    assert s["config"]["model"]["depth"] == 8  # tiny width; the full sizes: test_presets_...
    assert len(s["accuracy_per_step"]["finetune"]) == 5
    assert s["spectra_steps"] == [0, 2, 6]
    for f in FIGURES:
        assert (PaperLayout(out).figures / f).is_file()


@pytest.mark.parametrize("preset", ["paper", "paper-103m"])
def test_cifar_presets_fail_clearly_without_data(tmp_path, capsys, preset):
    assert main(["paper", "--preset", preset, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--data" in err and "cifar-100-python" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
@pytest.mark.parametrize("preset", ["paper", "paper-103m"])
def test_cifar_presets_fail_clearly_without_gpu(tmp_path, capsys, preset):
    _write_cifar100(tmp_path / "data", 8, 8)
    rc = main(["paper", "--preset", preset, "--out", str(tmp_path / "o"), "--data",
               str(tmp_path / "data")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "GPU" in err and "--device cpu" in err


def test_presets_are_the_paper_family():
    from qcarleman.training.models import ResNet

    for name in ("tiny", "cpu"):
        raw, opt = load_preset(name)
        assert raw["model"]["name"] == "resnet" and (raw["model"]["depth"] - 2) % 6 == 0
        assert raw["prune"] == {"amount": 0.9, "scope": "global", "include_classifier": False}
        assert raw["sparse"]["every_step_first"] == opt.every_step == 32
    raw, opt = load_preset("cpu")
    assert raw["data"] == {"name": "mnist", "pad": 2, "subset": 8000, "eval_subset": 2000}
    assert opt.spectra_steps == tuple(range(21)) + (24, 28, 32)
    assert opt.emulation_min_steps >= 20
    import tomllib
    from importlib.resources import files

    for name, depth, widen, count in (
        ("paper", 32, 4, 7_451_044),
        ("paper-103m", 56, 11, 103_703_700),
    ):
        cfg = tomllib.loads(files("qcarleman").joinpath("configs", PRESETS[name]).read_text())
        assert (cfg["model"]["depth"], cfg["model"]["widen"]) == (depth, widen)
        assert cfg["paper"]["lanczos_steps"] == 256 and cfg["device"] == "cuda"
        assert cfg["train"]["preset"] == "paper"
        with torch.device("meta"):
            m = ResNet(depth, widen, 3, 100)
        assert sum(p.numel() for p in m.parameters()) == count


def test_options_and_overrides_are_checked():
    with pytest.raises(UsageError, match="paper.nope"):
        PaperOptions.from_dict({"nope": 1})
    with pytest.raises(UsageError, match="spectra_steps"):
        PaperOptions(spectra_steps=(0, 40))
    with pytest.raises(UsageError, match="KEY=VALUE"):
        load_preset("tiny", overrides=["model.widen"])
    with pytest.raises(UsageError, match="unknown preset"):
        load_preset("huge")
    raw, opt = load_preset("tiny", overrides=["paper.probes=2", "model.widen=2"])
    assert opt.probes == 2 and raw["model"]["widen"] == 2


def test_curve_facts_dip_and_crossing():
    facts = paper_mod._curve_facts([1.0, 0.9, 0.8, 0.95, 1.2, 1.5])
    assert facts == {"dip_step": 2, "dip_value": 0.8, "crossing_step": 4}
    assert paper_mod._curve_facts([1.0, 0.9, 0.95])["crossing_step"] is None
    assert paper_mod._within([0.0, 0.01, 0.2, 0.01], 0.05) == 1


def test_data_pad_adds_a_black_border():
    from qcarleman.training.data import load_dataset

    plain = load_dataset({"name": "digits"})
    padded = load_dataset({"name": "digits", "pad": 12})
    assert padded.train[0].shape[-2:] == (32, 32)
    border = padded.train[0][:, :, :12, :]
    assert torch.allclose(border, padded.pad_value.view(1, -1, 1, 1).expand_as(border))
    assert len(padded.train[1]) == len(plain.train[1])
    cut = load_dataset({"name": "digits", "eval_subset": 50})
    assert len(cut.test[1]) == 50 and torch.equal(cut.test[0], plain.test[0][:50])
    with pytest.raises(UsageError, match="data.pad"):
        load_dataset({"name": "digits", "pad": -1})
