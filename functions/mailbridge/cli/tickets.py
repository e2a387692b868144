"""Ticket commands: tickets list|show|close."""

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


COMMANDS = [tickets]
