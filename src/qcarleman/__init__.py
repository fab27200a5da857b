"""qcarleman: implement, emulate and cost the quantum training algorithm of Liu et al.,
"Towards provably efficient quantum algorithms for large-scale machine-learning models",
Nature Communications 15, 434 (2024), arXiv:2303.03428.

Layers (data flows one way): ``dynamics`` → ``carleman`` → ``quantum`` → ``training`` →
``cli``/``report``. Torch-dependent pieces live in ``qcarleman.training`` and are imported lazily
so that the lower layers load without torch.
"""

from .dynamics import QuadraticMap
from .errors import MemoryLimitError, QCarlemanError, UsageError, check_memory, memory_limit

__version__ = "0.1.0"

__all__ = [
    "QuadraticMap",
    "QCarlemanError",
    "UsageError",
    "MemoryLimitError",
    "check_memory",
    "memory_limit",
]
