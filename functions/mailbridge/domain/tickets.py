"""Ticket views: the JSON shape of `tickets list|show --json`."""

from __future__ import annotations

MESSAGE_FIELDS = ("id", "direction", "gmail_message_id", "message_id", "from", "to", "cc", "subject",
                  "date", "text", "html")
ATTACHMENT_FIELDS = ("filename", "content_type", "size", "content_id", "sha256")


def message_view(row: dict) -> dict:
    message = row["message"]
    view = {field: message.get(field) for field in MESSAGE_FIELDS}
    view["direction"] = message.get("direction", "in")
    view["to"] = message.get("to") or []
    view["cc"] = message.get("cc") or []
    view["attachments"] = [{f: a.get(f) for f in ATTACHMENT_FIELDS} for a in message.get("attachments", [])]
    # extras beyond the contract, useful to agents
    view["full_text"] = message.get("full_text")
    view["defects"] = message.get("defects", [])
    if message.get("direction") == "out":
        view["status"] = row.get("status")
        view["sent_via"] = row.get("mailbox")
    return view


def ticket_view(ticket: dict, message_rows: list[dict] | None = None) -> dict:
    """A ticket and its messages (rows of inbound/outbound) in the JSON shape of docs/cli.md."""
    view = {
        "id": ticket["id"], "number": ticket["number"], "subject": ticket.get("subject", ""),
        "status": ticket.get("status", "open"), "mailbox": ticket.get("mailbox"),
        "requester": ticket.get("requester") or {"email": "", "name": ""},
        "participants": ticket.get("participants", []),
        "created_at": ticket.get("created_at"), "updated_at": ticket.get("updated_at"),
    }
    for extra in ("ticket_type", "team", "client"):
        if ticket.get(extra):
            view[extra] = ticket[extra]
    view["messages"] = [message_view(r) for r in message_rows or []]
    return view


TICKET_FIELDS = ("id", "number", "subject", "status", "mailbox", "requester", "participants", "created_at",
                 "updated_at", "messages")


def contract_message(message: dict) -> dict:
    """Exactly the contract keys of a message of `tickets show --json` (of a message_view)."""
    return {**{field: message.get(field) for field in MESSAGE_FIELDS},
            "attachments": [{f: a.get(f) for f in ATTACHMENT_FIELDS} for a in message.get("attachments", [])]}


def contract_view(view: dict) -> dict:
    """Exactly the contract keys of `tickets list|show --json`, without the extras above."""
    out = {field: view.get(field) for field in TICKET_FIELDS}
    out["messages"] = [contract_message(m) for m in view.get("messages", [])]
    return out
