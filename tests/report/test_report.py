"""The HTML report: every referenced figure exists and is embedded, every listed figure is
referenced, and `qcarleman report` rebuilds it from saved results without retraining."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest

from qcarleman.cli.main import main
from qcarleman.report import build_report


@pytest.fixture(scope="module")
def run_dir(tiny_pipeline_run):
    return tiny_pipeline_run[0]


def _images(html: str) -> dict[str, str]:
    return dict(
        re.findall(r"<img data-file='([^']+)'[^>]*src='data:image/png;base64,([^']+)'", html)
    )


def _no_constant(token):
    raise ValueError(f"bare {token} in --json output")


def test_every_figure_listed_embedded_and_present(run_dir):
    html = (run_dir / "report.html").read_text()
    index = json.loads((run_dir / "figures" / "index.json").read_text())
    files = [f["file"] for f in index]
    imgs = _images(html)
    assert html.count("<img") == len(imgs) == len(files)
    assert set(imgs) == set(files)
    listed = re.search(r"<ul id='figure-list'>(.*?)</ul>", html, re.S).group(1)
    for f in files:
        assert (run_dir / f).is_file() and f in listed
        assert base64.b64decode(imgs[f]) == (run_dir / f).read_bytes()
        assert base64.b64decode(imgs[f])[:8] == b"\x89PNG\r\n\x1a\n"
    names = {f.split("/")[-1] for f in files}
    for need in (
        "training_curves.png",
        "error_curve.png",
        "spectrum_ridge.png",
        "emulation_error.png",
        "readout_error.png",
        "cost_comparison.png",
        "degradation.png",
    ):
        assert need in names, need
    assert not re.search(r"src='(?!data:)", html)  # nothing external


def test_report_cli_rebuilds_from_saved_results(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for d in ("dense", "sparse"):  # no training data or checkpoints needed
        shutil.rmtree(copy / d)
    (copy / "report.html").unlink()
    shutil.rmtree(copy / "figures")
    assert main(["report", str(copy), "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=_no_constant)  # strict JSON
    assert len(out["figures"]) == len(_images((copy / "report.html").read_text()))
    summary = json.loads((copy / "summary.json").read_text())
    html = (copy / "report.html").read_text()
    assert f"{100 * summary['hybrid_accuracy']:.1f}%" in html  # shown as a percentage


def test_report_needs_a_summary(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "summary.json" in capsys.readouterr().err
    with pytest.raises(Exception, match="summary.json"):
        build_report(tmp_path)


def _labelled(ax) -> list[str]:
    """Labels of the artists of ``ax`` that a legend would show."""
    artists = ax.lines + ax.patches + ax.collections
    labels = {a.get_label() for a in artists}
    return sorted(lb for lb in labels if lb and not lb.startswith("_"))


def test_every_figure_has_axis_labels_and_a_legend(run_dir, tmp_path, monkeypatch):
    """Every axes of every report figure has x and y labels, and a legend where it has more than
    one labelled series (inspected on the Figure objects before saving)."""
    import qcarleman.report.figures as figures
    import qcarleman.report.plots as plots

    seen: dict[str, list] = {}
    real = plots.save_figure

    def inspect(fig, path, *args, **kwargs):
        seen[str(path).split("/")[-1]] = list(fig.axes)
        for ax in fig.axes:
            where = f"{path}: axes {ax.get_title()!r}"
            assert ax.get_xlabel().strip(), f"{where} has no x label"
            assert ax.get_ylabel().strip(), f"{where} has no y label"
            if len(_labelled(ax)) > 1:
                assert ax.get_legend() is not None, f"{where} has series {_labelled(ax)}, no legend"
            if ax.get_yscale() == "log":  # a log axis only over a wide range (no 0.99–1.08)
                lo, hi = ax.get_ylim()
                assert hi / lo > 5, f"{where}: log axis over {lo:.3g}–{hi:.3g}"
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save_figure", inspect)
    monkeypatch.setattr(plots, "save_figure", inspect)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    infos = figures.make_figures(copy)
    assert {i.file.split("/")[-1] for i in infos} == set(seen)
    assert "dissipative_split.png" in seen and "cost_comparison.png" in seen
    assert len(seen["cost_comparison.png"]) == 3  # seconds, operation counts, shots: one unit each


def test_report_opens_with_the_verdict_and_explains_every_row(run_dir):
    html = (run_dir / "report.html").read_text()
    verdict = html.index("<section id='verdict'>")
    assert verdict < html.index("<h2>Details</h2>") < html.index("<h2>Headline numbers</h2>")
    items = re.search(r"<section id='verdict'>.*?<ol>(.*?)</ol>", html, re.S).group(1)
    assert 3 <= items.count("<li>") <= 5
    for term in ("t*", "horizon", "ρ", "regime", "κ", "P_succ"):
        assert f"<th>{term}</th>" in html, term
    for table in re.findall(r"<tr><th>number</th>.*?</table>", html, re.S):
        for row in re.findall(r"<tr><td>(.*?)</tr>", table, re.S):
            cells = re.findall(r"<td>(.*?)</td>", "<td>" + row)
            assert cells[-1].strip(), f"row without meaning: {row}"
    assert ">None<" not in html
    est = re.search(r"Resource estimate of one quantum segment</h2>(.*?)</table>", html, re.S)
    assert "years" in est.group(1) or "days" in est.group(1) or " s (≈" in est.group(1)


def test_report_says_where_the_quantum_bill_could_win(run_dir):
    """The frontier paragraph follows the verdict, names the run's n and lists its assumptions."""
    html = (run_dir / "report.html").read_text()
    at = html.index("<h2>Where could it win</h2>")
    assert html.index("<section id='verdict'>") < at < html.index("<h2>Details</h2>")
    para = re.search(r"Where could it win</h2><p>(.*?)</p>", html, re.S).group(1)
    assert "your n =" in para or "Under no combination" in para
    assert "fully dissipative" in html[at:]
