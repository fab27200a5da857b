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
