r"""One self-contained HTML page per pipeline run (figures embedded as base64 PNG).

:func:`build_report` rebuilds the figures from the saved JSON of an output directory
(:mod:`qcarleman.report.figures`; no retraining) and writes ``report.html``: the headline numbers
with what each means, every figure with its caption, the per-segment table of the hybrid run, and
the approximations the numbers rest on. The page lists the figures it embeds
(``<ul id="figure-list">``); each ``<img>`` carries ``data-file`` = its file under ``figures/``.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..pipeline.layout import RunLayout
from .figures import FigureInfo, load_run, make_figures
from .verdict import ESTIMATE_ROWS, GLOSSARY, breakeven_crossovers, human, verdict

__all__ = ["build_report", "frontier_html", "NUMBER_HELP"]

#: What each headline number means (also used by docs/report.md).
NUMBER_HELP: dict[str, str] = {
    "dense_accuracy": "test accuracy of the dense model after dense training",
    "pruned_accuracy": "test accuracy right after global magnitude pruning (no retraining)",
    "classical_sparse_accuracy": "test accuracy after the sparse steps, all classical (baseline)",
    "hybrid_accuracy": "test accuracy after the same steps with quantum segments (emulated)",
    "accuracy_gap_points": "hybrid − classical, in percentage points",
    "window": "t*: last step t with E(t) ≤ 1 at the pruned weights (ALGORITHM.md §6)",
    "window_paper": "t* of the paper's plain-GD map, without momentum (ALGORITHM.md §6)",
    "horizon": "T: the steps one quantum solve covers; the regime is judged for it",
    "regime": "fully / almost / non-dissipative from ρ = max|1 − ηλ| for the horizon",
    "rho": "ρ: spectral radius of the linear part of the map trained (= max|1 − ηλ| without "
    "momentum; ALGORITHM.md §6.1), from the Lanczos extremes",
    "rho_paper": "ρ of the paper's plain-GD map, max_ν |1 − ηλ_ν| (ALGORITHM.md §6)",
    "regime_paper": "the regime of the paper's plain-GD map for the same horizon",
    "momentum": "heavy-ball momentum μ of the sparse steps (0: plain GD)",
    "quantum_steps": "steps covered by quantum segments (the window unless fixed)",
    "shots_per_segment": "tomography shots M per quantum segment (the stated shot budget)",
    "shots_total": "shots summed over all quantum segments",
    "emulation_error_max": "max over segments of ‖x̂_K − x_K‖/‖x_K‖, emulated vs true GD",
    "readout_error_max": "max over segments of the relative ℓ2 error of the download",
    "n_active": "n = |S|, active (unpruned) parameters",
}


#: How each headline number is shown: "%" (a fraction as percent), "points", "error" (a
#: relative error, also as percent), "count" (with words for large numbers).
_HEADLINE_UNITS = {
    "dense_accuracy": "%",
    "pruned_accuracy": "%",
    "classical_sparse_accuracy": "%",
    "hybrid_accuracy": "%",
    "accuracy_gap_points": "points",
    "window": "steps",
    "window_paper": "steps",
    "horizon": "steps",
    "quantum_steps": "steps",
    "shots_per_segment": "count",
    "shots_total": "count",
    "emulation_error_max": "error",
    "readout_error_max": "error",
    "n_active": "count",
}


def _headline(key: str, v: Any) -> str:
    """A headline number with its unit and human form (HTML-escaped)."""
    unit = _HEADLINE_UNITS.get(key)
    if v is None or isinstance(v, bool | str) or unit is None:
        return _fmt(v)
    if unit == "%":
        return f"{100 * v:.1f}%"
    if unit == "points":
        return f"{v:+.2f} percentage points"
    if unit == "error":
        return f"{v:.3g} ({100 * v:.3g}% relative)"
    if unit == "steps":
        return f"{v} steps"
    return html.escape(human(v, "count"))


def _docs_link(ref: str) -> str:
    """``ref`` ("ALGORITHM.md §6") linked to the local docs folder when the package runs from
    a source checkout, else plain text."""
    docs = Path(__file__).resolve().parents[3] / "docs"
    name = ref.split()[0]
    target = docs / name if name.endswith(".md") else docs / "ALGORITHM.md"
    text = ref if name.endswith(".md") else f"ALGORITHM.md {ref}"
    if target.is_file():
        return f"<a href='{html.escape(target.as_uri())}'>{html.escape(text)}</a>"
    return html.escape(text)


def _glossary() -> str:
    rows = "".join(
        f"<tr id='term-{i}'><th>{html.escape(term)}</th><td>{html.escape(text)}</td>"
        f"<td>{_docs_link(ref)}</td></tr>"
        for i, (term, (text, ref)) in enumerate(GLOSSARY.items())
    )
    return (
        "<details open><summary>What the terms mean</summary>"
        f"<table class='terms'>{rows}</table></details>"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, dict) and "kind" in v:  # a Quantity's JSON form: value (kind)
        return f"{_fmt(v.get('value'))} ({html.escape(str(v['kind']))})"
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: list[tuple[str, str, str]]) -> str:
    """Rows of (key, value already formatted as HTML, meaning)."""
    body = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td>{v}</td><td>{html.escape(h)}</td></tr>"
        for k, v, h in rows
    )
    return f"<table><tr><th>number</th><th>value</th><th>meaning</th></tr>{body}</table>"


def _cell(key: str, v: Any) -> str:
    """A segments-table cell: accuracy as percent, shots with separators, — for None."""
    if v is None or isinstance(v, dict):
        return _fmt(v)
    if key == "test_acc":
        return f"{100 * v:.1f}%"
    if key == "shots":
        return f"{int(v):,}"
    return _fmt(v)


def _segments_table(records: list[dict[str, Any]]) -> str:
    cols = [
        ("segment", "seg"),
        ("kind", "kind"),
        ("start", "start"),
        ("steps", "K"),
        ("test_acc", "test acc"),
        ("emulation_error", "emulation err"),
        ("readout_error", "readout err"),
        ("total_error", "total err"),
        ("shots", "shots"),
        ("kappa", "κ"),
        ("success_probability", "P_succ"),
    ]
    head = "".join(f"<th>{html.escape(c[1])}</th>" for c in cols)
    rows = []
    for r in records:
        if r["kind"] == "start":
            continue
        cells = "".join(f"<td>{_cell(c[0], r.get(c[0]))}</td>" for c in cols)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table><tr>{head}</tr>{''.join(rows)}</table><p>One row per segment: start step, K "
        "steps in it, test accuracy at its end; emulation err = relative error of the "
        "emulated parameters against true gradient descent, readout err = relative error added "
        "by the M-shot download, total err = both; κ = condition number of its linear system, "
        "P_succ = probability a solve yields the final-time parameters; — = not applicable "
        "(classical segments).</p>"
    )


def _assumptions(run: dict[str, Any]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for r in run["hybrid"]:
        notes = list(r.get("notes") or [])
        for key in ("kappa_source", "p_succ_source"):
            if r.get(key):
                notes.append(f"{key}: {r[key]}")
        est = r.get("estimate") or {}
        notes += [f"estimate {k}: {v}" for k, v in (est.get("assumptions") or {}).items()]
        for n in notes:
            if n not in seen:
                seen.add(n)
                out.append(n)
    return out


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3} figure{margin:1.5em 0} img{max-width:100%}
figcaption{font-size:0.9em;color:#444} .note{background:#fff8e0;padding:0.6em;border:1px solid #ec9}
#verdict{background:#eef5ff;border:1px solid #9bd;padding:0.4em 1.2em;font-size:1.08em}
#verdict li{margin:0.4em 0} .terms{font-size:0.85em} .terms th{white-space:nowrap}
details{margin:1em 0} summary{cursor:pointer;font-weight:bold}
"""


def _verdict_html(s: dict[str, Any], run: dict[str, Any]) -> str:
    """The verdict box: the sentences of :func:`qcarleman.report.verdict.verdict`."""
    if "horizon" not in s and run["spectra"]:
        s = dict(s, horizon=run["spectra"][0].get("horizon"))
    items = "".join(
        f"<li>{html.escape(t)}</li>" for t in verdict(s, crossovers=breakeven_crossovers(s))
    )
    return f"<section id='verdict'><h2>Verdict</h2><ol>{items}</ol></section>"


def _frontier_html(s: dict[str, Any]) -> str:
    """The demo/hybrid report's "Where could it win" (:func:`frontier_html`) at the run's n, order
    N and batch size."""
    e = s.get("estimate") or {}
    if not e.get("n"):
        return ""
    batch = int(((s.get("config") or {}).get("train") or {}).get("batch_size") or 128)
    return frontier_html(n=int(e["n"]), N=int(e.get("N", 2)), batch_size=batch)


def frontier_html(
    *, n: int, N: int, batch_size: int, own: dict[str, float] | None = None
) -> str:
    """"Where could it win": the advantage frontier (:func:`qcarleman.quantum.cost.frontier.
    frontier`, ALGORITHM.md §7) at order N and batch size, summarized in one sentence for the
    active-set size n, with its assumptions. ``own`` ({"sparsity", "epsilon", "T"}: the run's
    own row sparsity s, target ε and horizon T) adds the sentence of the frontier restricted to
    that setting (download, FLOP rate and quantum clock still scanned)."""
    from ..quantum.cost.frontier import frontier, what_would_have_to_be_true

    res = frontier(N=N, batch_size=batch_size)
    sentence = what_would_have_to_be_true(res, n=n)
    if own is not None:
        axes = {"sparsity": (int(own["sparsity"]),), "epsilon": (float(own["epsilon"]),),
                "T": (int(own["T"]),)}  # fmt: skip
        mine = frontier(N=N, batch_size=batch_size, axes=axes)
        sentence += (
            f" At this run's own setting (s = {axes['sparsity'][0]}, ε = {axes['epsilon'][0]:g}, "
            f"T = {axes['T'][0]}): {what_would_have_to_be_true(mine, n=n)}"
        )
    assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in res["settings"]["assumptions"])
    return (
        "<h2>Where could it win</h2>"
        f"<p>{html.escape(sentence)} The scan covers row sparsity, ε, T, full download or a few "
        "observables, the classical FLOP rate and the quantum clock, for n = 10³…10²⁴ "
        "(qcarleman estimate --frontier for the full table).</p>"
        f"<details><summary>Assumptions</summary><ul>{assumptions}</ul></details>"
    )


def figures_html(out: Path, figs: list[FigureInfo]) -> str:
    """The list of figures and each PNG embedded (base64) with its title and caption."""
    items = "".join(f"<li>{html.escape(f.file)}: {html.escape(f.title)}</li>" for f in figs)
    parts = [f"<h2>Figures</h2><ul id='figure-list'>{items}</ul>"]
    for f in figs:
        data = base64.b64encode((out / f.file).read_bytes()).decode("ascii")
        parts.append(
            f"<figure><h3>{html.escape(f.title)}</h3>"
            f"<img data-file='{html.escape(f.file)}' alt='{html.escape(f.title)}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        )
    return "".join(parts)


def build_report(out: str | os.PathLike) -> Path:
    """Rebuild the figures of ``out`` and write ``out/report.html`` (atomically)."""
    from ..atomic import atomic_write_text

    out = Path(out)
    run = load_run(out)
    s = run["summary"]
    if s is None:
        raise UsageError(
            f"{out} has no summary.json; run `qcarleman demo --out {out}` or "
            f"`qcarleman hybrid --config FILE --out {out}` first"
        )
    if not isinstance(s, dict) or "dense_accuracy" not in s:
        raise UsageError(
            f"{out}/summary.json is not a pipeline summary (no dense_accuracy); rerun "
            f"`qcarleman demo --out {out}` or `qcarleman hybrid --config FILE --out {out}`"
        )
    figs = make_figures(out)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(s.get('title', 'qcarleman report'))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(s.get('title', 'qcarleman report'))}</h1>",
        _verdict_html(s, run),
        _frontier_html(s),
        _glossary(),
        "<h2>Details</h2>",
        "<p>Hybrid training with sparse download and re-upload (Liu et al., Nat. Commun. 15, "
        "434 (2024); ALGORITHM.md §8): quantum segments are <b>emulated</b> classically; the "
        "QLSA is ideal (its κ and P_succ are modelled), the download is simulated tomography "
        "with M shots, and the cost is a fault-tolerant resource estimate.</p>",
        f"<p class='note'>{html.escape(s.get('window_statement', ''))}</p>",
    ]
    rows = [(k, _headline(k, s.get(k)), h) for k, h in NUMBER_HELP.items() if k in s]
    parts.append("<h2>Headline numbers</h2>" + _table(rows))
    deg = s.get("degradation") or []
    if deg:
        drows = "".join(
            f"<tr><td>{d['shots']:,}</td><td>{_fmt(100 * d['test_acc'])}%</td>"
            f"<td>{_fmt(100 * d['classical_test_acc'])}%</td>"
            f"<td>{_fmt(d['readout_error_mean'])}</td></tr>"
            for d in deg
        )
        parts.append(
            "<h2>Shot budget</h2><table><tr><th>shots M per segment and block</th><th>hybrid "
            f"test accuracy at step {deg[0]['step']}</th><th>classical at the same step</th>"
            f"<th>mean readout error</th></tr>{drows}</table>"
            f"<p>Degradation runs use the {html.escape(str(s.get('degradation_backend')))} "
            "emulation so that only the download differs. The main hybrid run used "
            f"M = {s.get('shots_per_segment'):,}.</p>"
        )
    est = s.get("estimate")
    if est:
        erows = [
            (k, html.escape(human(est[k], unit)), meaning)
            for k, (meaning, unit) in ESTIMATE_ROWS.items()
            if k in est
        ]
        parts.append(
            "<h2>Resource estimate of one quantum segment</h2>"
            + _table(erows)
            + "<p>From <code>qcarleman.quantum.cost.estimate.estimate</code>; each figure's "
            "formula and source are in its docstring, assumptions are listed below. The bill "
            "prices the shots that the target ε needs (<code>shots</code>); "
            "<code>epsilon_at_shots_given</code> is the error bound that the run's shot budget "
            "reaches. Classical seconds = FLOPs / <code>flop_rate</code>.</p>"
        )
    parts.append(figures_html(out, figs))
    if run["hybrid"]:
        parts.append("<h2>Segments of the hybrid run</h2>" + _segments_table(run["hybrid"]))
    notes = _assumptions(run)
    if notes:
        parts.append("<h2>Approximations and assumptions</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append(
        f"<p>Pipeline time: {_fmt(s.get('seconds'))} s. Rebuild this page with "
        f"<code>qcarleman report {html.escape(str(out))}</code>.</p></body></html>"
    )
    path = RunLayout(out).report
    atomic_write_text(path, "\n".join(parts))
    return path
