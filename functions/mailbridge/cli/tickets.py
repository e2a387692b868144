"""Ticket commands: tickets list|show|close|participants|confirm-participant."""

from __future__ import annotations

import click

from mailbridge.cli import common
from mailbridge.domain import tickets as ticket_views
from mailbridge.services import tickets as ticket_service


@click.group()
def tickets():
    """Tickets made from mail."""


@tickets.command("list")
@click.option("--mailbox", "mailbox_name", default=None)
@click.option("--status", default=None, type=click.Choice(["open", "closed"]))
@click.option("--json", "as_json", is_flag=True)
def tickets_list(mailbox_name, status, as_json):
    rows = ticket_service.list_tickets(common.services(), mailbox_name, status)
    if as_json:
        rows = [ticket_views.contract_view(t) for t in rows]

    def render(items):
        if not items:
            click.echo("no tickets")
        for t in items:
            click.echo(f"#{t['number']:<5} {t['status']:<7} {t['mailbox']:<16} {t['requester']['email']:<30} "
                       f"{t['subject'][:60]}  ({len(t['messages'])} messages)")

    common.emit(rows, as_json, render)


@tickets.command("show")
@click.argument("ticket_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
def tickets_show(ticket_id, as_json):
    data = ticket_service.show(common.services(), ticket_id)
    if as_json:
        data = ticket_views.contract_view(data)

    def render(t):
        click.echo(f"#{t['number']} {t['subject']}  [{t['status']}]  mailbox {t['mailbox']}")
        click.echo(f"requester {t['requester']['name']} <{t['requester']['email']}>; participants {', '.join(t['participants'])}")
        for m in t["messages"]:
            arrow = "→" if m["direction"] == "out" else "←"
            click.echo(f"\n{arrow} {m['date']}  {m['from']['name']} <{m['from']['email']}>  {m['subject']}")
            click.echo((m["text"] or "").rstrip())
            for a in m["attachments"]:
                click.echo(f"  📎 {a['filename']} ({a['content_type']}, {a['size']} bytes)")

    common.emit(data, as_json, render)


@tickets.command("close")
@click.argument("ticket_id", metavar="ID")
def tickets_close(ticket_id):
    ticket = ticket_service.set_status(common.services(), ticket_id, "closed")
    click.echo(f"ticket #{ticket['number']} closed")


@tickets.command("participants")
@click.argument("ticket_id", metavar="TICKET")
@click.option("--json", "as_json", is_flag=True)
def tickets_participants(ticket_id, as_json):
    """Who receives replies, and the suggested participants waiting for confirmation."""
    data = ticket_service.participants(common.services(), ticket_id)

    def render(d):
        click.echo(f"#{d['number']} participants (receive replies): {', '.join(d['participants']) or '(none)'}")
        if not d["suggested_participants"]:
            click.echo("no suggested participants")
        for s in d["suggested_participants"]:
            click.echo(f"suggested {s['email']}  (by {s.get('suggested_by') or '?'} at {s.get('suggested_at') or '?'}); "
                       f"confirm: scripts/mailbridge tickets confirm-participant {d['ticket']} {s['email']}")

    common.emit(data, as_json, render)


@tickets.command("confirm-participant")
@click.argument("ticket_id", metavar="TICKET")
@click.argument("email")
def tickets_confirm_participant(ticket_id, email):
    """Make a suggested participant a participant: they receive every later reply."""
    data = ticket_service.confirm_participant(common.services(), ticket_id, email)
    click.echo(f"ticket #{data['number']}: {email.strip().lower()} is now a participant")


COMMANDS = [tickets]
