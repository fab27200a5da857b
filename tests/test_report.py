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
from test_demo import shared_tiny


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return shared_tiny(tmp_path_factory)[0]


def _images(html: str) -> dict[str, str]:
    return dict(
        re.findall(r"<img data-file='([^']+)'[^>]*src='data:image/png;base64,([^']+)'", html)
    )


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
    out = json.loads(capsys.readouterr().out)
    assert len(out["figures"]) == len(_images((copy / "report.html").read_text()))
    summary = json.loads((copy / "summary.json").read_text())
    html = (copy / "report.html").read_text()
    assert f"{summary['hybrid_accuracy']:.4g}" in html


def test_report_needs_a_summary(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "summary.json" in capsys.readouterr().err
    with pytest.raises(Exception, match="summary.json"):
        build_report(tmp_path)
