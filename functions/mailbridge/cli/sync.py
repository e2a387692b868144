"""Polling commands: poll (through the poll function or --local) and inbound."""

from __future__ import annotations

import sys

import click

from mailbridge.cli import common
from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput
from mailbridge.services import sync as ingest
from mailbridge.services import tickets as ticket_service


# -- poll ---------------------------------------------------------------------------------------
class _ProgressBar:
    """A click progress bar on stderr, created once the poll knows how many messages it has."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.command("poll")
@click.argument("mailbox_name", metavar="[MAILBOX]", required=False)
@click.option("--since", default=None, help="Backfill inbox mail newer than this (7d, 12h, 2026-11-01).")
@click.option("--local", is_flag=True, help="Run in this process instead of calling the poll function.")
@click.option("--json", "as_json", is_flag=True, help="The poll function's JSON answer.")
def poll(mailbox_name, since, local, as_json):
    """Poll like Cloud Scheduler does (POST to the poll function).

    \b
    Example:
      scripts/mailbridge poll support --since 7d
    """

    services = common.services()
    since_epoch = common.parse_since(since) if since else None
    if since_epoch is not None and not mailbox_name:
        raise InvalidInput("--since needs a MAILBOX: backfill is an explicit choice per mailbox")
    if local or since_epoch is not None or not services.settings.has_function_urls:
        progress = _ProgressBar(f"backfilling {mailbox_name}") if since_epoch is not None and not as_json else None
        try:
            result = ingest.poll(services, mailbox_name, backfill_since=since_epoch, progress=progress)
        finally:
            if progress:
                progress.close()
    else:
        body = {"mailbox": mailbox_name} if mailbox_name else {}
        result = services.call_function("poll", body)

    def render(r):
        if r.get("status") == "off":
            click.echo(f"poll did nothing: {r['reason']}")
            return
        if not r["mailboxes"]:
            click.echo(f"no connected mailboxes for instance {r.get('instance')}")
        for m in r["mailboxes"]:
            counts = m.get("counts", {})
            detail = m.get("reason") or m.get("error") or ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
            click.echo(f"{m['mailbox']:<20} {m['outcome']:<8} {detail}")

    common.emit(result, as_json, render)
    if result.get("status") == "ok" and any(m.get("outcome") == "error" for m in result.get("mailboxes", [])):
        sys.exit(1)



INBOUND_FIELDS = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at")


@click.command("inbound")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of inbound rows.")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(min=0),
              help="At most N rows, newest first; 0 = all.")
def inbound(mailbox_name, as_json, limit):
    """The inbound log: one row per Gmail message the poll saw; says on stderr when more exist.

    \b
    Example:
      scripts/mailbridge inbound support --limit 0 --json
    """
    services = common.services()
    services.store.get_mailbox(mailbox_name)
    found = services.store.inbound_log(mailbox_name, limit + 1 if limit else 0)
    rows, more = ticket_service.page(found, limit)
    rows = [{**{k: r.get(k) for k in INBOUND_FIELDS}, "authentication": ticket_views.authentication_view(r)}
            for r in rows]

    def render(items):
        if not items:
            click.echo(f"no messages seen yet for {mailbox_name}")
        for r in items:
            click.echo(f"{r['processed_at'] or '-':<26} {r['gmail_message_id']:<18} {r['outcome']:<12} "
                       f"ticket {r['ticket_id'] or '-':<6} {r['reason'] or ''}")

    common.emit(rows, as_json, render)
    if more:
        count = len(rows)
        click.echo(f"note: showing the newest {count} {'row' if count == 1 else 'rows'}; more exist "
                   "(--limit N for more, --limit 0 for all)", err=True)


COMMANDS = [poll, inbound]
