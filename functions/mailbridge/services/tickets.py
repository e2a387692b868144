"""Ticket use cases shared by the CLI and the admin pages: read views, change status."""

from __future__ import annotations

from mailbridge.domain import compose, models, threads
from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput, MailbridgeError

STATUSES = ("open", "closed")


def view(services, ticket: dict) -> dict:
    return ticket_views.ticket_view(ticket, services.store.ticket_messages(ticket["id"]))


def show(services, ticket_id: str) -> dict:
    return view(services, services.store.get_ticket(ticket_id))


def list_tickets(services, mailbox=None, status=None, limit=200) -> list[dict]:
    store = services.store
    return [view(services, t) for t in store.list_tickets(mailbox=mailbox, status=status, limit=limit)]


def set_status(services, ticket_id: str, status: str) -> dict:
    """Open or close a ticket; returns the ticket as stored before the change."""
    if status not in STATUSES:
        raise InvalidInput("status must be open or closed")
    ticket = services.store.get_ticket(ticket_id)
    services.store.update_ticket(ticket["id"], {"status": status, "updated_at": models.now_iso()})
    return ticket


def participants(services, ticket_id: str) -> dict:
    """Who receives replies to a ticket, and who waits for an agent's confirmation."""
    ticket = services.store.get_ticket(ticket_id)
    return {"ticket": ticket["id"], "number": ticket.get("number"),
            "requester": (ticket.get("requester") or {}).get("email", ""),
            "participants": list(ticket.get("participants", [])),
            "suggested_participants": list(ticket.get("suggested_participants") or [])}


def confirm_participant(services, ticket_id: str, email: str) -> dict:
    """An agent confirms a suggested participant: from now on they receive replies."""
    ticket = services.store.get_ticket(ticket_id)
    people, suggested = threads.confirm_participant(ticket, email)
    services.store.update_ticket(ticket["id"], {"participants": people, "suggested_participants": suggested,
                                                "updated_at": models.now_iso()})
    return participants(services, ticket["id"])


def reply_recipients(services, ticket: dict) -> dict:
    """Everyone a reply to this ticket goes to (reply-all: requester, then the participants),
    for the reply form; {"to", "cc", "error"}."""
    own = models.own_addresses(services.store.list_mailboxes())
    try:
        to, cc = compose.recipients(ticket, own)
    except MailbridgeError as e:
        return {"to": [], "cc": [], "error": str(e)}
    return {"to": to, "cc": cc, "error": None}
