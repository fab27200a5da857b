"""``torchrun`` entry point: ``qcarleman spectrum`` with the batches sharded over the processes.

Launch (one command per machine, e.g. 2 processes here)::

    torchrun --nproc-per-node 2 -m qcarleman.cli.torchrun RUN_DIR \
        --checkpoints 0:20 --batches 8 --out spectra.json

which takes the options of ``qcarleman spectrum`` (run ``... --help``). The operators are
:class:`qcarleman.autodiff.distributed.DistributedLossOperators`.
"""

from __future__ import annotations

import sys

import torch.distributed as dist

from ..autodiff.distributed import init_distributed
from ..errors import UsageError
from .main import _Parser
from .spectrum import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    """torchrun entry point: ``qcarleman spectrum`` with the batches sharded over the ranks."""
    rank, world = init_distributed()
    parser = _Parser(
        prog="torchrun ... -m qcarleman.cli.torchrun",
        description="Hessian spectra of a run with the data sharded across torchrun processes.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.distributed = world > 1
    try:
        code = run(args)
    except UsageError as exc:
        if rank == 0:
            print(f"qcarleman: error: {exc}", file=sys.stderr)
        code = 2
    if dist.is_initialized():
        dist.barrier()  # no rank tears gloo down while another still talks to it
        dist.destroy_process_group()
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
