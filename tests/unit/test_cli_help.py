"""Every CLI command explains itself: `--help` has a description and an example."""

import click
import pytest

from mailbridge.cli.app import cli


def commands(group, path=()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield path + (name,), command
            yield from commands(command, path + (name,))
        else:
            yield path + (name,), command


@pytest.mark.parametrize("path,command", list(commands(cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_help_has_an_example(path, command):
    text = command.get_help(click.Context(command, info_name=" ".join(path)))
    assert "Example:" in text and "scripts/mailbridge " in text.split("Example:", 1)[1], text
