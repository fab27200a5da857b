r"""The HTML report of a ``qcarleman paper`` run (one self-contained page, figures embedded).

:func:`build_paper_report` rebuilds the figures (:mod:`qcarleman.report.paper_figures`) from the
saved JSON and writes ``report.html``: the opening paragraph of findings (``summary["findings"]``),
the setting, the headline numbers, every figure with its caption, the download at each shot
budget and the resource bill of the emulated segment.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import UsageError
from ..pipeline.layout import PaperLayout
from .html import _CSS, _fmt, _table, figures_html
from .paper_figures import load_paper_run, make_paper_figures

__all__ = ["build_paper_report", "PAPER_NUMBERS"]

#: Headline numbers of a paper run: what each means and its kind (exact / measured / estimated —
#: from the SLQ spectrum, itself an estimate — or a setting of the preset).
PAPER_NUMBERS: dict[str, tuple[str, str]] = {
    "parameters": ("P, all trainable parameters", "exact"),
    "n_active": ("n, active coordinates after 90% global L1 pruning (BN and biases included)",
                 "exact"),  # fmt: skip
    "dense_accuracy": ("test accuracy of the dense model", "measured"),
    "window_paper": ("t* of E(T) = (1/n)Σ|1 − ηλ|^T at step 0 (the paper's definition, §6), "
                     "in steps", "estimated"),  # fmt: skip
    "window_momentum": ("t* of E(T) = (1/n)Σ‖B_ν^T‖₂ for the momentum map trained (§6.1), "
                        "in steps", "estimated"),  # fmt: skip
    "rho_paper": ("max|1 − ηλ| at step 0", "estimated"),
    "rho": ("spectral radius of the momentum map's linear part at step 0", "estimated"),
    "lr": ("η at step 0 of sparse training", "setting"),
    "momentum": ("μ of the trained map", "setting"),
    "spectrum_method": ("how the spectra were computed", "setting"),
    "lanczos_steps": ("Lanczos steps per SLQ probe (the paper: 256)", "setting"),
    "probes": ("SLQ probes per spectrum", "setting"),
}


def build_paper_report(out: str | os.PathLike) -> Path:
    """Rebuild the figures of paper run ``out`` and write ``out/report.html`` (atomically)."""
    out = Path(out)
    run = load_paper_run(out)
    s = run["summary"]
    if s is None:
        raise UsageError(
            f"{out} has no summary.json; run `qcarleman paper --preset NAME --out {out}`"
        )
    figs = make_paper_figures(out)
    title = html.escape(s["title"])
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>",
        f"<p id='findings'>{html.escape(s['findings'])}</p>",
        "<p>The protocol of Liu et al., Nat. Commun. 15, 434 (2024), Figs. 2–4: dense training, "
        "90% global L1 pruning (classifier excluded), sparse finetuning with a checkpoint after "
        "every early step, test accuracy and Hessian spectra per step, E(T) and the window, "
        "dissipative/divergent modes; plus the emulated quantum output (Carleman orders 1 and 2, "
        "tomography download) against the momentum SGD actually trained, and its resource bill. "
        "How this maps to the paper: docs/paper.md.</p>",
    ]
    rows = [(k, f"{_fmt(s[k])} ({kind})", h) for k, (h, kind) in PAPER_NUMBERS.items() if k in s]
    parts.append("<h2>Headline numbers</h2>" + _table(rows))
    emu = s["emulation"]
    drows = "".join(
        f"<tr><td>{d['shots']:,}</td><td>{_fmt(d['errors'][-1])}</td>"
        f"<td>{_fmt(max(d['errors'][1:]))}</td></tr>"
        for d in emu["downloads"]
    )
    parts.append(
        f"<h2>Download of the emulated output (order 2, T = {emu['steps']})</h2><table><tr>"
        "<th>shots M</th><th>relative error vs true GD at T</th><th>max over steps</th></tr>"
        f"{drows}</table><p>{html.escape(emu['download_model'])}.</p>"
    )
    est = s.get("estimate") or {}
    if est:
        text = (run["estimate"] or {}).get("text", "")
        parts.append(
            "<h2>Resource bill of the emulated segment</h2>"
            f"<pre>{html.escape(text)}</pre>"
        )
    parts.append(figures_html(out, figs))
    parts.append(
        f"<p>Pipeline time: {_fmt(s.get('seconds'))} s. Rebuild this page with "
        f"<code>qcarleman report {html.escape(str(out))}</code>.</p></body></html>"
    )
    path = PaperLayout(out).report
    atomic_write_text(path, "\n".join(parts))
    return path
