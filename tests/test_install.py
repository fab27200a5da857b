"""Install metadata and outputs: files follow the user's umask, py.typed ships, SPDX licence, the
wheel/sdist smoke test (slow: builds and installs into clean venvs)."""

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from qcarleman.atomic import atomic_write_text, write_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        a = atomic_write_text(tmp_path / "a.txt", "x")
        b = write_json(tmp_path / "sub" / "b.json", {"v": 1})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o666 & ~umask
    for p in (a, b):
        assert stat.S_IMODE(p.stat().st_mode) == want
    assert not list(tmp_path.rglob(".*.tmp"))


def test_package_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"  # SPDX string: no setuptools deprecation banner
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["qcarleman"]
    assert (ROOT / "src" / "qcarleman" / "py.typed").is_file()
    assert not any("qsharp" in r for r in meta["project"]["optional-dependencies"]["estimator"])
    cff = (ROOT / "CITATION.cff").read_text()
    assert "10.1038/s41467-023-43957-x" in cff and "2303.03428" in cff
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.slow
def test_wheel_and_sdist_install_in_a_clean_venv():
    r = subprocess.run(
        [str(ROOT / ".ci" / "wheel_smoke.sh")], capture_output=True, text=True, timeout=1800
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "wheel_smoke: ok" in r.stdout
