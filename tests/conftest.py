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
