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
