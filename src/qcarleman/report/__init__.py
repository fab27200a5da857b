"""Reports of pipeline runs: figures rebuilt from saved JSON and one self-contained HTML page.

``build_report(OUT)`` (also ``qcarleman report OUT``) regenerates ``OUT/figures/*.png``,
``OUT/figures/index.json`` and ``OUT/report.html`` from the results that
:func:`qcarleman.pipeline.stages.run_pipeline` saved; nothing is retrained.
"""

from __future__ import annotations

from .html import NUMBER_HELP, build_report

__all__ = ["build_report", "NUMBER_HELP"]
