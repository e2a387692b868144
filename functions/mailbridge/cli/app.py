"""`scripts/mailbridge`: the admin/devops CLI (command reference: docs/cli.md).

Errors are one line on stderr: exit 2 for bad input, 1 for failures.
"""

from __future__ import annotations

import click

from mailbridge import errors, logs
from mailbridge.cli import events, labels, mailboxes, outgoing, privacy, settings, sync, tickets
from mailbridge.cli.common import parse_since
from mailbridge.errors import MailbridgeError

__all__ = ["cli", "main", "parse_since"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """mailbridge: Google Workspace mailboxes → helpdesk tickets."""


for group in (mailboxes, sync, labels, tickets, settings, outgoing, events, privacy):
    for command in group.COMMANDS:
        cli.add_command(command)



def main(argv=None) -> int:
    logs.to_stderr()
    try:
        cli.main(args=argv, prog_name="mailbridge", standalone_mode=False)
    except click.exceptions.UsageError as e:
        message = e.format_message()
        if message.lstrip().startswith("Usage:"):  # a group called without its command
            command = e.ctx.command_path if e.ctx else "mailbridge"
            message = f"missing command; see `{command} --help`"
        click.echo(f"error: {message}".replace("\n", " "), err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except MailbridgeError as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        return errors.exit_code(e)
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return int(e.code or 0)
    return 0

