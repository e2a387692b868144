"""Ticket commands: tickets list|show|close|set|participants|confirm-participant|merge|split."""

from __future__ import annotations

import click

from mailbridge.cli import common
from mailbridge.domain import tickets as ticket_views
from mailbridge.services import merging
from mailbridge.services import tickets as ticket_service


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def more_note(shown: int, more: bool, what: str, hint: str) -> None:
    """Say on stderr that a listing stopped at its limit (stdout stays the data)."""
    if more:
        click.echo(f"note: showing the newest {plural(shown, what)}; more exist ({hint})", err=True)


@click.group()
def tickets():
    """Tickets made from mail.

    \b
    Example:
      scripts/mailbridge tickets list --mailbox support --status open
    """


@tickets.command("list")
@click.option("--mailbox", "mailbox_name", default=None, help="Only this mailbox's tickets.")
@click.option("--status", default=None, type=click.Choice(["open", "closed"]), help="Only open or closed tickets.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=0),
              help="At most N tickets, newest first; 0 = all.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of `tickets show --json` objects.")
def tickets_list(mailbox_name, status, limit, as_json):
    """Tickets, newest first; says on stderr when more exist than --limit.

    \b
    Example:
      scripts/mailbridge tickets list --status open --limit 0 --json
    """
    rows, more = ticket_service.list_page(common.services(), mailbox_name, status, limit)
    if as_json:
        rows = [ticket_views.contract_view(t) for t in rows]

    def render(items):
        if not items:
            click.echo("no tickets")
        for t in items:
            click.echo(f"#{t['number']:<5} {t['status']:<7} {t['mailbox']:<16} {t['requester']['email']:<30} "
                       f"{t['subject'][:60]}  ({plural(len(t['messages']), 'message')})")

    common.emit(rows, as_json, render)
    more_note(len(rows), more, "ticket", "--limit N for more, --limit 0 for all")


@tickets.command("show")
@click.argument("ticket_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every message.")
def tickets_show(ticket_id, as_json):
    """One ticket with its messages.

    \b
    Example:
      scripts/mailbridge tickets show 42
    """
    data = ticket_service.show(common.services(), ticket_id)
    if as_json:
        data = ticket_views.contract_view(data)

    def render(t):
        click.echo(f"#{t['number']} {t['subject']}  [{t['status']}]  mailbox {t['mailbox']}")
        click.echo(f"requester {t['requester']['name']} <{t['requester']['email']}>; participants {', '.join(t['participants'])}")
        if t.get("merged_into"):
            click.echo(f"merged into #{t['merged_into']}: its messages and later mail are there")
        if t.get("split_from"):
            click.echo(f"split off #{t['split_from']}")
        for m in t["messages"]:
            arrow = "→" if m["direction"] == "out" else "←"
            click.echo(f"\n{arrow} {m['date']}  {m['from']['name']} <{m['from']['email']}>  {m['subject']}")
            click.echo((m["text"] or "").rstrip())
            for a in m["attachments"]:
                click.echo(f"  📎 {a['filename']} ({a['content_type']}, {plural(a['size'] or 0, 'byte')})")

    common.emit(data, as_json, render)


@tickets.command("close")
@click.argument("ticket_id", metavar="ID")
def tickets_close(ticket_id):
    """Close a ticket.

    \b
    Example:
      scripts/mailbridge tickets close 42
    """
    ticket = ticket_service.set_status(common.services(), ticket_id, "closed")
    common.audited("ticket.status", ticket["id"], before={"status": ticket.get("status")}, after={"status": "closed"})
    click.echo(f"ticket #{ticket['number']} closed")


@tickets.command("set")
@click.argument("ticket_id", metavar="ID")
@click.argument("field", type=click.Choice(["team", "type"]))
@click.argument("value")
def tickets_set(ticket_id, field, value):
    """Set a ticket's team or ticket type (what team and type overrides match); "" clears it.

    \b
    Example:
      scripts/mailbridge tickets set 42 team billing
      scripts/mailbridge tickets set 42 type refund
    """
    ticket = ticket_service.set_field(common.services(), ticket_id, field, value)
    common.audited("ticket.set", ticket["id"], after={field: value.strip() or None})
    shown = value.strip() or "(none)"
    click.echo(f"ticket #{ticket['number']}: {'ticket type' if field == 'type' else field} = {shown}")


@tickets.command("participants")
@click.argument("ticket_id", metavar="TICKET")
@click.option("--json", "as_json", is_flag=True)
def tickets_participants(ticket_id, as_json):
    """Who receives replies, and the suggested participants waiting for confirmation.

    \b
    Example:
      scripts/mailbridge tickets participants 42 --json
    """
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
    """Make a suggested participant a participant: they receive every later reply.

    \b
    Example:
      scripts/mailbridge tickets confirm-participant 42 boss@customer.example
    """
    data = ticket_service.confirm_participant(common.services(), ticket_id, email)
    click.echo(f"ticket #{data['number']}: {email.strip().lower()} is now a participant")



@tickets.command("merge")
@click.argument("source", metavar="SOURCE")
@click.argument("into", metavar="INTO")
@click.option("--json", "as_json", is_flag=True, help="What moved, as JSON.")
def tickets_merge(source, into, as_json):
    """Merge ticket SOURCE into INTO: its messages, participants and attachments move; SOURCE
    stays closed, pointing at INTO, and later mail to it joins INTO.

    \b
    Example:
      scripts/mailbridge tickets merge 43 42
    """
    data = merging.merge(common.services(), source, into)

    def render(d):
        if not d["changed"]:
            click.echo(f"ticket #{d['number']} was merged into #{d['into_number']} already")
            return
        click.echo(f"ticket #{d['number']} merged into #{d['into_number']} "
                   f"({plural(len(d['moved_messages']), 'message')} moved)")

    common.emit(data, as_json, render)


@tickets.command("split")
@click.argument("ticket_id", metavar="TICKET")
@click.argument("message", metavar="MESSAGE_ID")
@click.option("--json", "as_json", is_flag=True, help="What moved, as JSON.")
def tickets_split(ticket_id, message, as_json):
    """A new ticket from one message of TICKET and the later messages of its Gmail thread.
    MESSAGE_ID: the message's id in `tickets show --json`, its Gmail id or its Message-ID.

    \b
    Example:
      scripts/mailbridge tickets split 42 support~18f2a9c4e1b0d7aa
    """
    data = merging.split(common.services(), ticket_id, message)

    def render(d):
        verb = "split off" if d["changed"] else "was split off already"
        click.echo(f"ticket #{d['into_number']} {verb} #{d['number']} "
                   f"({plural(len(d['moved_messages']), 'message')})")

    common.emit(data, as_json, render)


COMMANDS = [tickets]
