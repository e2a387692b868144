"""CLI commands for outgoing mail: `reply`, `outbox list|retry|drop` and `overrides set|list|remove`
(assembled by cli.app)."""

from __future__ import annotations

import json
import mimetypes
import os
import sys

import click

from mailbridge.cli import common
from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.services import mailboxes, outbox, outgoing

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
@click.option("--no-wait", "no_wait", is_flag=True,
              help="Return once the reply is queued in the outbox (prints its id); the outbox sends it.")
@click.option("--json", "as_json", is_flag=True)
def reply(ticket_id, body_file, html_file, attach, idempotency_key, dry_run, no_wait, as_json):
    """Reply to TICKET through its resolved outgoing mailbox (waits for the send, up to
    MAILBRIDGE_REPLY_WAIT_S seconds).

    \b
    Example:
      scripts/mailbridge reply 42 --body-file answer.txt --dry-run --json
    """

    text = _read_text(body_file, "body file")
    html = _read_text(html_file, "HTML file") if html_file else None
    attachments = [_read_attachment(path) for path in attach]
    result = outgoing.send_reply(common.services(), ticket_id, text, html=html, attachments=attachments,
                                 dry_run=dry_run, idempotency_key=idempotency_key, wait=not no_wait)
    if not dry_run:
        common.audited("reply.sent", str(result.get("ticket") or ticket_id),
                       details={"status": result.get("status"), "mailbox": result.get("mailbox")})
    if as_json:
        click.echo(json.dumps({**result, "id": result.get("idempotency_key")} if not dry_run else result,
                              indent=2, default=str))
    elif dry_run:
        _print_preview(result)
    elif no_wait:
        click.echo(f"{result['idempotency_key']} {result['status']}: ticket #{result['ticket']} via "
                   f"{result['mailbox']}; `scripts/mailbridge outbox list {result['mailbox']}` shows it")
        if result.get("error"):
            click.echo(f"  waiting: {result['error']}", err=True)
        return
    else:
        click.echo(f"ticket #{result['ticket']}: {result['status']} via {result['mailbox']} "
                   f"({result['rule']}); Message-ID {result['message_id']}")
        click.echo(f"  {result['explanation']}")
        if result.get("gmail_message_id"):
            click.echo(f"  Gmail id {result['gmail_message_id']}")
        if result.get("error"):
            click.echo(f"  error: {result['error']}"
                       + (" (will be retried automatically)" if result["status"] == "failed" else ""), err=True)
    if not dry_run and not no_wait and result.get("status") not in ("sent", "dry_run"):
        waited = "" if result.get("error") else f"not sent within {common.services().settings.reply_wait_s:g} s; "
        raise MailbridgeError(f"reply not sent yet ({result.get('status')}, outbox id {result.get('idempotency_key')}): "
                              f"{waited}{result.get('error') or 'the outbox will send it'}")


@click.group("outbox")
def outbox_group():
    """Sends waiting in the outbox (queued, failed, given up), with their reasons.

    \b
    Example:
      scripts/mailbridge outbox list help --json
    """


@outbox_group.command("list")
@click.argument("mailbox_name", metavar="[MAILBOX]", required=False)
@click.option("--limit", type=int, default=50, show_default=True, help="0 lists all.")
@click.option("--json", "as_json", is_flag=True)
def outbox_list(mailbox_name, limit, as_json):
    """What waits to be sent (all mailboxes, or MAILBOX), with each send's reason.

    \b
    Example:
      scripts/mailbridge outbox list help --limit 0
    """
    rows = outbox.list_records(common.services(), mailbox_name, limit)

    def render(rows):
        if not rows:
            click.echo("the outbox is empty: nothing waits to be sent")
        for row in rows:
            click.echo(f"{row['id']:<40} {row['status']:<9} {row['kind']:<15} {row['mailbox']:<16} "
                       f"ticket {row['ticket']}  attempts {row['attempts']}")
            if row["reason"]:
                click.echo(f"  reason: {row['reason']}")

    common.emit(rows, as_json, render)


@outbox_group.command("retry")
@click.argument("record_id", metavar="ID")
def outbox_retry(record_id):
    """Queue ID again now (a send that gave up or waits); it is never sent twice.

    \b
    Example:
      scripts/mailbridge outbox retry reply-k1
    """
    row = outbox.retry(common.services(), record_id)
    click.echo(f"{row['id']} queued again in {row['mailbox']}'s outbox")


@outbox_group.command("drop")
@click.argument("record_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Confirm: the message will never be sent.")
def outbox_drop(record_id, yes):
    """Never send ID (the record stays, marked dropped, on its ticket).

    \b
    Example:
      scripts/mailbridge outbox drop reply-k1 --yes
    """
    if not yes:
        raise InvalidInput(f"dropping {record_id} means it is never sent: add --yes to confirm")
    row = outbox.drop(common.services(), record_id)
    click.echo(f"{row['id']} dropped: it will not be sent")


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


COMMANDS = [reply, outbox_group, overrides]
