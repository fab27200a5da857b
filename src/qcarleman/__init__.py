"""qcarleman: implement, emulate and cost the quantum training algorithm of Liu et al.,
"Towards provably efficient quantum algorithms for large-scale machine-learning models",
Nature Communications 15, 434 (2024), arXiv:2303.03428.

Layers (data flows one way): ``dynamics`` → ``carleman`` → ``quantum`` → ``training`` →
``cli``/``report``. Names from modules that need torch or PennyLane are loaded lazily on first
access (``qcarleman.GDMap`` imports torch then), so the numerical core loads without them.
"""

from __future__ import annotations

import importlib

from .dynamics import QuadraticMap
from .errors import MemoryLimitError, QCarlemanError, UsageError, check_memory, memory_limit

__version__ = "0.1.0"

# Public name -> module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "HybridTrainer": "qcarleman.hybrid.trainer",
    "HybridSettings": "qcarleman.hybrid.settings",
    "run_demo": "qcarleman.pipeline.stages",
    "run_pipeline": "qcarleman.pipeline.stages",
    "build_report": "qcarleman.report",
    "plot_spectrum": "qcarleman.report.plots",
    "plot_trajectory": "qcarleman.report.plots",
    "plot_solve": "qcarleman.report.plots",
    "plot_estimate": "qcarleman.report.plots",
    "plot_breakeven": "qcarleman.report.plots",
    "ActiveParams": "qcarleman.autodiff.active",
    "LossOperators": "qcarleman.autodiff.operators",
    "GDMap": "qcarleman.autodiff.gdmap",
    "emulate_order1": "qcarleman.autodiff.lowrank",
    "emulate_order2": "qcarleman.autodiff.lowrank",
    "emulation_report": "qcarleman.analysis.emulate",
    "emulate_checkpoint": "qcarleman.analysis.emulate",
    "scaling_study": "qcarleman.analysis.scaling",
    "scaling_checkpoint": "qcarleman.analysis.scaling",
    "advise_map": "qcarleman.analysis.advise",
    "advise_checkpoint": "qcarleman.analysis.advise",
    "compare_settings": "qcarleman.hybrid.compare",
    "hybrid_from_run": "qcarleman.hybrid.from_run",
    "lanczos": "qcarleman.spectral",
    "slq": "qcarleman.spectral",
    "hutchinson": "qcarleman.spectral",
    "hutchpp": "qcarleman.spectral",
    "error_curve": "qcarleman.dissipation",
    "dissipative_split": "qcarleman.dissipation",
    "f2_norm": "qcarleman.dissipation",
    "rd_star": "qcarleman.dissipation",
    "TrainedMap": "qcarleman.dissipation",
    "diagnose": "qcarleman.dissipation",
    "kappa_bound": "qcarleman.carleman.kappa",
    "kappa_modes": "qcarleman.carleman.kappa",
    "kappa_of_history": "qcarleman.carleman.kappa",
    "HistoryOperator": "qcarleman.autodiff.history_operator",
    "model_spectrum": "qcarleman.analysis.spectrum",
    "run_spectra": "qcarleman.analysis.spectrum",
    "DistributedLossOperators": "qcarleman.autodiff.distributed",
    "ContinuousCarleman": "qcarleman.carleman.continuous",
    "burgers_experiment": "qcarleman.experiments.burgers",
    "ResNet": "qcarleman.training.models",
    "SmallCNN": "qcarleman.training.models",
    "MLP": "qcarleman.training.models",
    "build_model": "qcarleman.training.models",
    "load_dataset": "qcarleman.training.data",
    "prune_global": "qcarleman.training.pruning",
    "prune_layerwise": "qcarleman.training.pruning",
    "pruning_summary": "qcarleman.training.pruning",
    "sparsity_report": "qcarleman.training.pruning",
    "Trainer": "qcarleman.training.trainer",
    "RunDir": "qcarleman.training.run",
    "load_config": "qcarleman.training.config",
    "CarlemanSystem": "qcarleman.carleman",
    "HistorySystem": "qcarleman.carleman",
    "estimate": "qcarleman.quantum.cost.estimate",
    "estimate_history": "qcarleman.quantum.cost.estimate",
    "Problem": "qcarleman.quantum.cost.inputs",
    "Conditioning": "qcarleman.quantum.cost.inputs",
    "CostModel": "qcarleman.quantum.cost.inputs",
    "StepFlops": "qcarleman.quantum.cost.inputs",
    "ResourceEstimate": "qcarleman.quantum.cost.bill",
    "breakeven": "qcarleman.quantum.cost.breakeven",
    "frontier": "qcarleman.quantum.cost.frontier",
    "what_would_have_to_be_true": "qcarleman.quantum.cost.frontier",
    "surface_code_model": "qcarleman.quantum.cost.physical",
    "PhysicalEstimate": "qcarleman.quantum.cost.physical",
    "Quantity": "qcarleman.quantity",
    "training_flops": "qcarleman.training.flops",
    "step_flops": "qcarleman.training.flops",
    "estimate_run": "qcarleman.analysis.estimate_run",
    "solve": "qcarleman.quantum.solve",
    "solve_linear": "qcarleman.quantum.solve",
    "SolveResult": "qcarleman.quantum.solve",
    "hhl_solve": "qcarleman.quantum.hhl",
    "hhl_circuit": "qcarleman.quantum.hhl",
    "qsvt_solve": "qcarleman.quantum.qsvt",
    "qsvt_circuit": "qcarleman.quantum.qsvt",
    "draw_qsvt": "qcarleman.quantum.qsvt",
    "inverse_polynomial": "qcarleman.quantum.qsvt",
    "tomography": "qcarleman.quantum.readout",
    "equivalent_noise": "qcarleman.quantum.readout",
    "download": "qcarleman.quantum.readout",
    "upload_circuit": "qcarleman.quantum.upload",
    "upload_cost": "qcarleman.quantum.upload",
}

__all__ = [
    "QuadraticMap",
    "QCarlemanError",
    "UsageError",
    "MemoryLimitError",
    "check_memory",
    "memory_limit",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qcarleman' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
