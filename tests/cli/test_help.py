"""Each command's docstring is its --help, and every one carries an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from snapshot.cli import cli

COMMANDS = sorted(cli.commands)


def test_the_read_commands_exist():
    assert {"list", "show", "diff", "verify"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_docstring_with_an_example(name: str):
    command = cli.commands[name]

    assert command.help, f"`snap {name}` has no docstring"
    assert "Example" in command.help
    assert command.short_help is None or command.short_help.strip()


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_output_shows_the_example(name: str, flag: str):
    result = CliRunner().invoke(cli, [name, flag], catch_exceptions=False)

    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {name} ")
    assert "Example" in result.stdout
    first_line = (cli.commands[name].help or "").strip().splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.stdout.split())
    # \b keeps example lines verbatim instead of rewrapping them into one paragraph.
    example = result.stdout.split("Example", 1)[1]
    assert f"snap {name}" in example


def test_every_option_has_help():
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"`snap {name} {param.opts[0]}` has no help text"


def test_group_help_lists_the_commands_and_an_example():
    result = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)

    assert result.exit_code == 0
    assert "Example" in result.stdout
    for name in COMMANDS:
        assert f"  {name} " in result.stdout
