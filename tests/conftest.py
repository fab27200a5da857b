"""Test-session settings: one BLAS/torch thread.

On the 2-core CI machine, multi-threaded BLAS makes the many small dense kernels of these tests
slower (thread start-up dominates), and one thread keeps torch results bit-reproducible.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _default_dtype(request):
    """Each test module runs under its own ``DEFAULT_DTYPE`` (float32 unless it sets one),
    restored afterwards, so no module leaks its dtype into the others."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(request.module, "DEFAULT_DTYPE", torch.float32))
    yield
    torch.set_default_dtype(old)


# -- shared runs and setups (fixtures, so no test module imports another) ---------------------
def _tiny_pipeline(out, report=None):
    """A seconds-scale pipeline: a tiny MLP on a digits subset."""
    from qcarleman.hybrid.settings import HybridSettings
    from qcarleman.pipeline.stages import run_pipeline

    cfg = {
        "seed": 0,
        "threads": 1,
        "data": {"name": "digits", "subset": 300},
        "model": {"name": "mlp", "hidden": [8], "activation": "tanh"},
        "train": {"lr": 0.1, "momentum": 0.9, "batch_size": 32, "epochs": 2, "milestones": []},
        "prune": {"amount": 0.9},
        "sparse": {"lr": 0.1, "milestones": []},
    }
    hyb = HybridSettings(backend="carleman", segment_steps=3, total_steps=8, shots=10_000)
    opts = {
        "spectrum_steps": 2,
        "spectrum_probes": 2,
        "spectrum_iters": 10,
        "shot_budgets": [100, 10_000],
        "emulation_backends": ["linear", "carleman"],
    }
    return run_pipeline(cfg, hyb, out, opts, progress=False, report=report, title="tiny")


def _shared_tiny(tmp_path_factory):
    """The tiny pipeline in one folder per test session (the pipeline and report tests share it)."""
    import json

    from qcarleman.report import build_report

    out = tmp_path_factory.getbasetemp() / "tiny-pipeline"
    if (out / "report.html").is_file():
        return out, json.loads((out / "summary.json").read_text())
    return out, _tiny_pipeline(out, report=build_report)


@pytest.fixture(scope="session")
def tiny_pipeline_run(tmp_path_factory):
    """(out, summary) of the seconds-scale pipeline, built once per test session."""
    return _shared_tiny(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_pipeline_factory():
    """Run the seconds-scale pipeline into a folder: ``factory(out, report=...)``."""
    return _tiny_pipeline


@pytest.fixture(scope="session")
def digits_setup():
    """``digits_setup(T, lr, hidden, batch)`` → (model, mask, batches): a pruned tiny tanh MLP on
    sklearn digits (90% of weights pruned, classifier included), T SGD batches, float64."""
    return _digits_setup


def _digits_setup(T: int = 4, lr: float = 0.05, hidden: int = 4, batch: int = 32):
    """A pruned tiny tanh MLP on sklearn digits (90% of weights pruned), SGD batches."""
    from sklearn.datasets import load_digits

    from qcarleman.training.models import MLP
    from qcarleman.training.pruning import prune_global

    d = load_digits()
    x = torch.tensor(d.data / 16.0)
    y = torch.tensor(d.target)
    torch.manual_seed(0)
    model = MLP(64, 10, hidden=(hidden,), activation="tanh").double()
    mask = prune_global(model, 0.9, include_classifier=True)
    batches = [(x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(T)]
    return model, mask, batches


@pytest.fixture(scope="session")
def sparse_run():
    """``sparse_run(root, hidden, momentum, lr=0.05)`` → a pruned run directory (hidden widths of a
    tanh MLP on 256 digits, sparse momentum μ)."""
    return _sparse_run


def _sparse_run(root, hidden, momentum, lr=0.05):
    """A dense tanh MLP on a digits subset, trained one epoch and pruned 90%: the sparse run dir."""
    from qcarleman.training.config import load_config
    from qcarleman.training.trainer import prune_run, train_dense

    cfg = load_config(
        {
            "seed": 0,
            "data": {"name": "digits", "subset": 256},
            "model": {"name": "mlp", "hidden": hidden, "activation": "tanh"},
            "train": {
                "lr": 0.1,
                "momentum": 0.9,
                "weight_decay": 1e-4,
                "batch_size": 32,
                "epochs": 1,
                "milestones": [],
                "checkpoint_every": 0,
            },
            "prune": {"amount": 0.9},
            "sparse": {"lr": lr, "momentum": momentum, "epochs": 1, "every_step_first": 0},
        }
    )
    train_dense(cfg, root / "dense", progress=False)
    prune_run(cfg, root / "dense", root / "sparse", progress=False)
    return root / "sparse"
#: The config of the tiny shared run (digits subset, one-hidden-layer MLP, a few steps).
TINY_CONFIG = {
    "seed": 0,
    "threads": 1,
    "data": {"name": "digits", "subset": 120},
    "model": {"name": "mlp", "hidden": [4], "activation": "tanh"},
    "train": {"lr": 0.1, "momentum": 0.0, "batch_size": 32, "epochs": 1, "milestones": []},
    "prune": {"amount": 0.5},
    "sparse": {"lr": 0.1, "epochs": 1, "max_steps": 3, "every_step_first": 3, "milestones": []},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny dense + sparse run on sklearn digits (MLP 64-4-10), shared by the CLI tests:
    (config path, dense run dir, sparse run dir)."""
    from qcarleman.training.config import dump_config, load_config
    from qcarleman.training.trainer import sparse_train, train_dense

    root = tmp_path_factory.mktemp("tiny-run")
    cfg = load_config(TINY_CONFIG)
    path = root / "tiny.toml"
    path.write_text(dump_config(cfg))
    train_dense(cfg, root / "dense", progress=False)
    sparse_train(cfg, root / "sparse", source=root / "dense", progress=False)
    return path, root / "dense", root / "sparse"
