"""Test-session settings: one BLAS/torch thread.

On the 2-core CI machine, multi-threaded BLAS makes the many small dense kernels of these tests
slower (thread start-up dominates), and one thread keeps torch results bit-reproducible.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

try:  # torch is a hard dependency, but keep the numerical core testable without it
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
