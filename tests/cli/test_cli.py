"""The CLI shell: one-line errors with exit code 2, never a traceback."""

from qcarleman.cli.main import main


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["nonsense"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_inconsistent_estimate_inputs(capsys):
    assert main(["estimate", "--params", "2", "--active", "3", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass P ≥ n" in err


def test_unwritable_output_path(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["demo", "--quick", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qcarleman: error:") and err.count("\n") == 1
    assert "Traceback" not in err
