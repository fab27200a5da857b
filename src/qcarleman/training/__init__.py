"""Training substrate (ALGORITHM.md §9): models, offline data, trainer, pruning, checkpoints.

Submodules are imported on demand (torch is heavy): ``models``, ``data``, ``pruning``,
``trainer``, ``checkpoint``, ``config``, ``run`` (:class:`~qcarleman.training.run.RunDir`, the
reader API for run directories).
"""
