"""CLI commands for outgoing mail: `reply` and `overrides set|list|remove` (assembled by cli.app)."""

from __future__ import annotations

import json
import mimetypes
import os
import sys

import click

from mailbridge.cli import common
from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.services import mailboxes, outgoing

MAX_BODY_BYTES = 5 * 1024 * 1024


def _read_text(path: str, what: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_BODY_BYTES + 1)
    except OSError as e:
        raise InvalidInput(f"cannot read {what} {path!r}: {e.strerror}") from None
    if len(data) > MAX_BODY_BYTES:
        raise InvalidInput(f"{what} {path!r} is larger than {MAX_BODY_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} {path!r} is not UTF-8 text") from None


def _read_attachment(path: str) -> tuple[str, str, bytes]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as e:
        raise InvalidInput(f"cannot read attachment {path!r}: {e.strerror}") from None
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return os.path.basename(path), content_type, data


def _print_preview(result: dict) -> None:
    click.echo("DRY RUN: nothing was sent")
    click.echo(f"mailbox     {result['mailbox']}")
    click.echo(f"rule        {result['rule']}")
    click.echo(f"explanation {result['explanation']}")
    click.echo(f"recipients  to {', '.join(result['to'])}" + (f"; cc {', '.join(result['cc'])}" if result["cc"] else ""))
    click.echo(f"gmail thread {result['thread_id'] or '(new thread in this mailbox)'}")
    click.echo("headers:")
    for name, value in result["headers"].items():
        click.echo(f"  {name}: {value}")


@click.command("reply")
@click.argument("ticket_id", metavar="TICKET")
@click.option("--body-file", required=True, help="UTF-8 text of the reply ('-' reads standard input).")
@click.option("--html-file", default=None, help="Optional HTML alternative.")
@click.option("--attach", "attach", multiple=True, help="A file to attach (repeatable).")
@click.option("--idempotency-key", default=None,
              help="Retrying with the same key never sends twice (default: a new key per call).")
@click.option("--dry-run", is_flag=True, help="Show mailbox, rule, recipients and headers; send nothing.")
@click.option("--json", "as_json", is_flag=True)
def reply(ticket_id, body_file, html_file, attach, idempotency_key, dry_run, as_json):
    """Reply to TICKET through its resolved outgoing mailbox.

    \b
    Example:
      scripts/mailbridge reply 42 --body-file answer.txt --dry-run --json
    """

    text = _read_text(body_file, "body file")
    html = _read_text(html_file, "HTML file") if html_file else None
    attachments = [_read_attachment(path) for path in attach]
    result = outgoing.send_reply(common.services(), ticket_id, text, html=html, attachments=attachments,
                                 dry_run=dry_run, idempotency_key=idempotency_key)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    elif dry_run:
        _print_preview(result)
    else:
        click.echo(f"ticket #{result['ticket']}: {result['status']} via {result['mailbox']} "
                   f"({result['rule']}); Message-ID {result['message_id']}")
        click.echo(f"  {result['explanation']}")
        if result.get("error"):
            click.echo(f"  error: {result['error']}"
                       + (" (will be retried automatically)" if result["status"] == "failed" else ""), err=True)
    if not dry_run and result.get("status") not in ("sent", "dry_run"):
        raise MailbridgeError(f"reply not sent yet ({result.get('status')}): {result.get('error') or ''}".strip())

@click.group("overrides")
def overrides():
    """Outgoing mailbox per ticket, ticket type, team or client (client = name or email domain).

    \b
    Example:
      scripts/mailbridge overrides set team billing billing-desk
    """

@overrides.command("set")
@click.argument("scope", metavar="SCOPE")
@click.argument("key")
@click.argument("mailbox_name", metavar="MAILBOX")
def overrides_set(scope, key, mailbox_name):
    """SCOPE is ticket, ticket_type, team or client; the ticket must exist and the mailbox have
    credentials for this instance.

    \b
    Example:
      scripts/mailbridge overrides set client customer.example support
    """

    mailboxes.check_override_target(common.services(), scope, key, mailbox_name)
    row = outgoing.set_override(common.services(), scope, key, mailbox_name)
    click.echo(f"{row['scope']} {row['key']} → {row['mailbox']}")

@overrides.command("list")
@click.option("--json", "as_json", is_flag=True)
def overrides_list(as_json):
    """Every override, strongest scope first.

    \b
    Example:
      scripts/mailbridge overrides list --json
    """
    rows = outgoing.list_overrides(common.services())
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no overrides: scripts/mailbridge overrides set SCOPE KEY MAILBOX")
    for row in rows:
        click.echo(f"{row['scope']:<12} {row['key']:<32} {row['mailbox']}")

@overrides.command("remove")
@click.argument("scope", metavar="SCOPE")
@click.argument("key")
def overrides_remove(scope, key):
    """Remove one override.

    \b
    Example:
      scripts/mailbridge overrides remove team billing
    """
    outgoing.remove_override(common.services(), scope, key)
    click.echo(f"{scope} override for {key} removed")


COMMANDS = [reply, overrides]
