"""Every command's --help has a description, an Examples block and help for every option;
`qcarleman configs` lists and shows the shipped configs; old `_` config names still resolve."""

import argparse
import json

import pytest

from qcarleman.cli.main import COMMANDS, build_parser, main
from qcarleman.errors import UsageError
from qcarleman.training.config import example_config, example_configs, load_config


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_is_registered_once():
    names = set(_subparsers())
    assert {c.replace("_", "-") for c in COMMANDS} == names
    assert {
        "train",
        "prune",
        "sparse-train",
        "spectrum",
        "emulate",
        "estimate",
        "hybrid",
        "report",
        "burgers",
        "demo",
        "configs",
    } == names


@pytest.mark.parametrize("name", sorted(c.replace("_", "-") for c in COMMANDS))
def test_help_has_description_examples_and_option_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "\nExamples:\n" in out
    examples = out.split("\nExamples:\n", 1)[1].splitlines()
    assert any(ln.strip().startswith(f"qcarleman {name}") for ln in examples), examples
    description = out.split("\n\n", 2)[1]
    assert len(description) > 40 and ":func:" not in out and "``" not in out
    for action in _subparsers()[name]._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"


def test_configs_lists_and_shows(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    shipped = example_configs()
    assert set(shipped) >= {
        "digits-cnn",
        "digits-cnn-large",
        "mnist-cnn",
        "cifar100-resnet32x4",
        "hybrid-digits-cpu",
        "hybrid-paper-gpu",
    }
    for name, text in shipped.items():
        assert "_" not in name and len(text) > 20
        assert any(ln.startswith(name) and text in ln for ln in out.splitlines())
    assert main(["configs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == shipped
    assert main(["configs", "show", "digits-cnn"]) == 0
    assert capsys.readouterr().out == example_config("digits-cnn").read_text()
    assert main(["configs", "show", "no-such-config"]) == 2
    assert "available" in capsys.readouterr().err
    assert main(["configs", "show"]) == 2


def test_old_underscore_names_are_aliases():
    for old, new in (
        ("hybrid_digits_cpu", "hybrid-digits-cpu"),
        ("hybrid_paper_gpu", "hybrid-paper-gpu"),
        ("digits_cnn", "digits-cnn"),
    ):
        assert example_config(old) == example_config(new)
    with pytest.raises(UsageError, match="qcarleman configs"):
        example_config("hybrid_nothing")


def test_every_shipped_config_loads_and_mnist_has_a_hybrid_table():
    import tomllib

    for name in example_configs():
        load_config(example_config(name))  # [hybrid]/[pipeline] tables are accepted
    raw = tomllib.loads(example_config("mnist-cnn").read_text())
    assert raw["hybrid"]["backend"] == "carleman" and raw["hybrid"]["total_steps"] > 0
