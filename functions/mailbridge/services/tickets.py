"""Ticket use cases shared by the CLI, the admin pages and the API: read views, change status,
team, type and participants. Each change is committed with its ticket.updated event and the event
published after it (services/events.py, docs/events.md)."""

from __future__ import annotations

from mailbridge.domain import compose, events, models, threads
from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.services import retention, stored_bodies
from mailbridge.services import events as ticket_events
from mailbridge.services.ports import TicketsPorts

STATUSES = ("open", "closed")


def view(services: TicketsPorts, ticket: dict) -> dict:
    rows = stored_bodies.load_rows(services, services.store.ticket_messages(ticket["id"]))
    return ticket_views.ticket_view(ticket, rows)


def show(services: TicketsPorts, ticket_id: str) -> dict:
    return view(services, services.store.get_ticket(ticket_id))


def list_tickets(services: TicketsPorts, mailbox=None, status=None, limit=200) -> list[dict]:
    store = services.store
    return [view(services, t) for t in store.list_tickets(mailbox=mailbox, status=status, limit=limit)]


def page(rows: list, limit: int) -> tuple[list, bool]:
    """(the first `limit` rows, whether more exist) from a read of limit + 1 rows; limit 0 = all."""
    if not limit:
        return rows, False
    return rows[:limit], len(rows) > limit


def list_page(services: TicketsPorts, mailbox=None, status=None, limit=200, before=None) -> tuple[list[dict], bool]:
    """Ticket views newest first, and whether older tickets exist beyond `limit` (0 = all)."""
    if limit < 0:
        raise InvalidInput("--limit must be 0 (all) or more")
    rows = services.store.list_tickets(mailbox=mailbox, status=status, limit=limit + 1 if limit else 0, before=before)
    rows, more = page(rows, limit)
    return [view(services, t) for t in rows], more


FIELDS = {"team": "team", "type": "ticket_type", "ticket_type": "ticket_type"}  # CLI word → ticket field


def set_field(services: TicketsPorts, ticket_id: str, field: str, value: str) -> dict:
    """Set (or, with an empty value, clear) a ticket's team or ticket type: the keys that team and
    ticket-type overrides match (services/outgoing/overrides.py, override_lookups)."""
    if field not in FIELDS:
        raise InvalidInput(f"a ticket field is team or type, got {field!r}")
    value = (value or "").strip()
    if len(value) > 200 or "/" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{field} must be 1-200 characters without '/' or control characters")
    ticket = services.store.get_ticket(ticket_id)
    change(services, ticket["id"], lambda _current: {FIELDS[field]: value or None})
    return {**ticket, FIELDS[field]: value or None}


def change(services: TicketsPorts, ticket_id: str, changes_of) -> tuple[dict, dict]:
    """Change a ticket with its ticket.updated event in one commit, then publish the event.
    `changes_of(ticket as read)` gives the fields to set; a change that changes nothing writes
    nothing. Returns (the ticket before, the ticket after)."""
    retention = events.retention_days(services.store.settings())

    def decide(ticket: dict):
        after = {**ticket, **changes_of(ticket)}
        event = events.ticket_updated(ticket, after, models.now_iso())
        if event is None:
            return (ticket, ticket), None, None
        changes = {**{f: after[f] for f in after if after[f] != ticket.get(f)}, "updated_at": event["time"]}
        document = events.batch([event], ticket.get("mailbox") or "", event["time"], retention)
        return (ticket, {**after, **changes}), changes, document

    before, after = services.store.change_ticket(ticket_id, decide)
    if after is not before:
        ticket_events.after_commit(services, after.get("mailbox"))
    return before, after


RULE_WORDS = {
    "ticket_override": "this ticket has its own override",
    "ticket_type_override": "tickets of type {ticket_type!r} are sent through it",
    "team_override": "team {team!r} sends through it",
    "client_override": "this client's replies are sent through it",
    "arrival_mailbox": "the ticket arrived through it",
    "default_outgoing_mailbox": "it is the default outgoing mailbox",
}


def explain_rule(rule: str, ticket: dict) -> str:
    words = RULE_WORDS.get(rule, "a rule chose it")
    try:
        return words.format(ticket_type=ticket.get("ticket_type") or "", team=ticket.get("team") or "")
    except (KeyError, IndexError):
        return words


def describe_resolution(resolution: dict, ticket: dict) -> dict:
    """The outgoing resolution in words an admin reads (no internal rule names)."""
    skipped = [{"mailbox": s["mailbox"], "why": explain_rule(s["rule"], ticket), "reason": s["reason"]}
               for s in resolution.get("skipped", [])]
    return {"mailbox": resolution.get("mailbox"), "because": explain_rule(resolution.get("rule", ""), ticket),
            "skipped": skipped}


def set_status(services: TicketsPorts, ticket_id: str, status: str) -> dict:
    """Open or close a ticket; returns the ticket as stored before the change."""
    if status not in STATUSES:
        raise InvalidInput("status must be open or closed")
    ticket = services.store.get_ticket(ticket_id)
    before, after = change(services, ticket["id"], lambda current: {
        "status": status, **(retention.closed_fields(status) if current.get("status") != status else {})})
    if after is not before:
        retention.apply(services, ticket["id"])  # a closed ticket expires, a reopened one no longer
    return before


def participants(services: TicketsPorts, ticket_id: str) -> dict:
    """Who receives replies to a ticket, and who waits for an agent's confirmation."""
    ticket = services.store.get_ticket(ticket_id)
    return {"ticket": ticket["id"], "number": ticket.get("number"),
            "requester": (ticket.get("requester") or {}).get("email", ""),
            "participants": list(ticket.get("participants", [])),
            "suggested_participants": list(ticket.get("suggested_participants") or [])}


def confirm_participant(services: TicketsPorts, ticket_id: str, email: str) -> dict:
    """An agent confirms a suggested participant: from now on they receive replies."""
    ticket = services.store.get_ticket(ticket_id)

    def confirmed(current: dict) -> dict:
        people, suggested = threads.confirm_participant(current, email)
        return {"participants": people, "suggested_participants": suggested}

    change(services, ticket["id"], confirmed)
    return participants(services, ticket["id"])


def reply_recipients(services: TicketsPorts, ticket: dict) -> dict:
    """Everyone a reply to this ticket goes to (reply-all: requester, then the participants),
    for the reply form; {"to", "cc", "error"}."""
    own = models.own_addresses(services.store.list_mailboxes())
    try:
        to, cc = compose.recipients(ticket, own)
    except MailbridgeError as e:
        return {"to": [], "cc": [], "error": str(e)}
    return {"to": to, "cc": cc, "error": None}


def show_images_from(services: TicketsPorts, sender: str) -> list[str]:
    """Remember, at an admin's request, to show this sender's remote images (docs/images.md)."""
    current = list(services.store.settings().get("show_images_from") or [])
    senders = models.apply_global_setting("show_images_from", current + [sender])
    services.store.set_setting("show_images_from", senders)
    return senders
