"""The README's Python example runs as written and its results are the real ones."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_first_lines_are_the_two_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert block[0].startswith("make demo") and block[1].startswith("make test")


def test_readme_python_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(code) == 1
    exec(compile(code[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    fidelity = float(re.search(r"QSVT fidelity ([0-9.]+)", out).group(1))
    assert fidelity > 0.999
    err = float(re.search(r"error after 10 steps: ([0-9.e+-]+)", out).group(1))
    assert err < 0.5


def test_every_cli_example_is_timed_under_five_minutes():
    """Each command of the command-line tour has a measured row in "Measured times" (the concrete
    commands, run in order in an empty folder), and every measured time is under 5 minutes."""
    text = README.read_text()
    tour = text.split("## Command-line tour", 1)[1].split("\n## ", 1)[0]
    table, sep, timed_part = tour.partition("### Measured times")
    assert sep, "README has no 'Measured times' table in the command-line tour"
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \| ([0-9.]+) s \(", timed_part, flags=re.M)
    assert len(rows) >= 15
    timed = {cmd.split()[1] for cmd, _ in rows if cmd.startswith("qcarleman ")}
    listed = set(re.findall(r"`qcarleman ([a-z-]+)", table))
    assert listed and listed <= timed, sorted(listed - timed)
    assert any(cmd.startswith("torchrun ") for cmd, _ in rows)
    slow = [(cmd, t) for cmd, t in rows if float(t) > 300]
    assert not slow, slow
