"""Ticket views: the JSON shape of `tickets list|show --json`."""

from __future__ import annotations

MESSAGE_FIELDS = ("id", "direction", "gmail_message_id", "message_id", "from", "to", "cc", "subject",
                  "date", "text", "html")
ATTACHMENT_FIELDS = ("filename", "content_type", "size", "content_id", "sha256")
VERDICT_FIELDS = ("verdict", "dmarc", "spf", "dkim")


def authentication_view(row: dict) -> dict | None:
    """Gmail's verdict on an inbound message ({"verdict": "pass"|"fail"|"none", "dmarc", "spf",
    "dkim"}, domain/authentication.py); None for a message we sent."""
    message = row.get("message") or {}
    if message.get("direction") == "out":
        return None
    recorded = row.get("authentication") or message.get("authentication") or {}
    return {field: str(recorded.get(field) or "none") for field in VERDICT_FIELDS}


def message_view(row: dict) -> dict:
    message = row["message"]
    view = {field: message.get(field) for field in MESSAGE_FIELDS}
    view["direction"] = message.get("direction", "in")
    view["to"] = message.get("to") or []
    view["cc"] = message.get("cc") or []
    view["attachments"] = [{f: a.get(f) for f in ATTACHMENT_FIELDS} for a in message.get("attachments", [])]
    view["authentication"] = authentication_view(row)
    # extras beyond the contract, useful to agents
    view["full_text"] = message.get("full_text")
    view["defects"] = message.get("defects", [])
    if message.get("direction") == "out":
        view["status"] = row.get("status")
        view["sent_via"] = row.get("mailbox")
    return view


def requester_authenticated(view: dict) -> bool:
    """Whether Gmail authenticated any message of the ticket's requester (a `ticket_view`): the
    reply form warns when it never did (docs/reliability.md, "Hostile senders")."""
    requester = ((view.get("requester") or {}).get("email") or "").lower()
    return any(((m.get("from") or {}).get("email") or "").lower() == requester
               and (m.get("authentication") or {}).get("verdict") == "pass"
               for m in view.get("messages", []) if m.get("direction") != "out")


def ticket_view(ticket: dict, message_rows: list[dict] | None = None) -> dict:
    """A ticket and its messages (rows of inbound/outbound) in the JSON shape of docs/cli.md."""
    view = {
        "id": ticket["id"], "number": ticket["number"], "subject": ticket.get("subject", ""),
        "status": ticket.get("status", "open"), "mailbox": ticket.get("mailbox"),
        "requester": ticket.get("requester") or {"email": "", "name": ""},
        "participants": ticket.get("participants", []),
        "created_at": ticket.get("created_at"), "updated_at": ticket.get("updated_at"),
    }
    for extra in ("ticket_type", "team", "client", "merged_into", "merged_from", "split_from", "split_into",
                  "received_by", "reply_from", "via_group"):
        if ticket.get(extra):
            view[extra] = ticket[extra]
    view["messages"] = [message_view(r) for r in message_rows or []]
    return view


TICKET_FIELDS = ("id", "number", "subject", "status", "mailbox", "requester", "participants", "created_at",
                 "updated_at", "messages")


def contract_message(message: dict) -> dict:
    """Exactly the contract keys of a message of `tickets show --json` (of a message_view)."""
    return {**{field: message.get(field) for field in MESSAGE_FIELDS},
            "attachments": [{f: a.get(f) for f in ATTACHMENT_FIELDS} for a in message.get("attachments", [])],
            "authentication": message.get("authentication")}


POINTER_FIELDS = ("merged_into", "split_from")  # shown when set (docs/merging.md)


def contract_view(view: dict) -> dict:
    """Exactly the contract keys of `tickets list|show --json`, without the extras above, plus the
    pointer of a merged or split-off ticket when it has one."""
    out = {field: view.get(field) for field in TICKET_FIELDS}
    out["reply_from"] = view.get("reply_from")  # the alias a reply leaves from (issue 30), or null
    out.update({field: view[field] for field in POINTER_FIELDS if view.get(field)})
    out["messages"] = [contract_message(m) for m in view.get("messages", [])]
    return out


SUGGESTION_FIELDS = ("email", "suggested_by", "suggested_at")


def api_view(ticket: dict, message_rows: list[dict], attachment_url) -> dict:
    """The `api` function's ticket JSON (docs/api.md): the contract of `tickets show --json`, plus
    the ticket's `team`, `type` and `suggested_participants`, and on each attachment a `url`
    (`attachment_url(ticket id, message id, index)`; null when its content was not stored)."""
    view = contract_view(ticket_view(ticket, message_rows))
    view["team"] = ticket.get("team") or None
    view["type"] = ticket.get("ticket_type") or None
    view["suggested_participants"] = [{f: s.get(f) for f in SUGGESTION_FIELDS}
                                      for s in ticket.get("suggested_participants") or []]
    for message, row in zip(view["messages"], message_rows):
        stored = row["message"].get("attachments", [])
        for index, (attachment, item) in enumerate(zip(message["attachments"], stored)):
            attachment["url"] = attachment_url(view["id"], message["id"], index) if item.get("storage_key") else None
    return view
