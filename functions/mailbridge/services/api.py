"""Use cases of the helpdesk's JSON API (http/api.py, docs/api.md): pages of tickets with an
opaque cursor and an updated-after filter, a ticket with its attachment links, replies sent once
per ticket and Idempotency-Key, changes of status, team and type, attachment content.

Everything else is the services the CLI and the admin pages use: services/tickets.py for views
and changes, services/outgoing/ (`send_reply`) for replies.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
import hashlib
import json
import re

from mailbridge.domain import models
from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput, NotFound
from mailbridge.logs import log_event
from mailbridge.services import outgoing, tickets
from mailbridge.services.ports import ApiPorts

PAGE_SIZE = 20
PAGE_MAX = 100
SCAN_BATCH = 200     # tickets read per store query while filtering on updated_after
SCAN_LIMIT = 1000    # tickets one request reads at most; a page may then be short, with a cursor
TICKET_ID = re.compile(r"[0-9]{1,12}")
INSTANT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
FINAL_STATUSES = ("sent", "given_up", "dropped", "skipped")  # a reply in these states changes no more


def ticket_record(services: ApiPorts, ticket_id: str) -> dict:
    """The stored ticket; NotFound for an id that is not a ticket number (never a store error)."""
    if not isinstance(ticket_id, str) or not TICKET_ID.fullmatch(ticket_id):
        raise NotFound(f"no ticket {str(ticket_id)[:40]!r}")
    return services.store.get_ticket(ticket_id)


def ticket(services: ApiPorts, ticket_id: str, attachment_url) -> dict:
    """The API's JSON of one ticket (domain/tickets.api_view)."""
    record = ticket_record(services, ticket_id)
    return ticket_views.api_view(record, services.store.ticket_messages(record["id"]), attachment_url)


# ------------------------------------------------------------------ pages
def encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": int(before)}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The ticket number a page starts below; InvalidInput for a cursor this API did not give."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = data["before"]
        if isinstance(before, int) and not isinstance(before, bool) and before > 0:
            return before
    except (ValueError, TypeError, KeyError, binascii.Error):
        pass
    raise InvalidInput("cursor is not one this API gave: pass next_cursor from a previous page as it is")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time (`2024-05-01T10:00:00Z`, any offset) as an aware datetime in UTC."""
    match = INSTANT.fullmatch(text or "")
    if not match:
        raise InvalidInput("updated_after must be an RFC 3339 date-time such as 2024-05-01T10:00:00Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8).upper()
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59),  # a leap second: its second 59
                          int((fraction[1:] + "000000")[:6] or 0), tzinfo=timezone.utc)
    except ValueError:
        if year == 0:  # RFC 3339 allows year 0000; it is before every ticket
            return EARLIEST
        raise InvalidInput(f"updated_after {text!r} is not a real date and time") from None
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        try:
            moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        except OverflowError:
            return EARLIEST if sign > 0 else datetime.max.replace(tzinfo=timezone.utc)
    return moment


def _updated_after(record: dict, since: datetime) -> bool:
    try:
        updated = datetime.fromisoformat(str(record.get("updated_at") or ""))
    except ValueError:
        return False
    return (updated if updated.tzinfo else updated.replace(tzinfo=timezone.utc)) > since


def list_page(services: ApiPorts, attachment_url, mailbox: str | None = None, status: str | None = None,
              updated_after: str | None = None, limit: int = PAGE_SIZE, cursor: str | None = None) -> dict:
    """{"tickets": [ticket JSON, newest first], "next_cursor": str or null}. With updated_after,
    tickets are filtered as they are read, at most SCAN_LIMIT per request: a page may then hold
    fewer than `limit` tickets and still have a next_cursor (only a null one means the end)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be 1 to {PAGE_MAX}")
    if status is not None and status not in tickets.STATUSES:
        raise InvalidInput("status must be open or closed")
    if mailbox is not None:
        models.validate_mailbox_name(mailbox)
    since = parse_instant(updated_after) if updated_after is not None else None
    before = decode_cursor(cursor)
    found, scanned, exhausted = [], 0, False
    while len(found) <= limit and not exhausted and scanned < SCAN_LIMIT:
        wanted = SCAN_BATCH if since else limit + 1 - len(found)
        batch = services.store.list_tickets(mailbox=mailbox, status=status, limit=wanted, before=before)
        exhausted = len(batch) < wanted
        for record in batch:
            scanned, before = scanned + 1, record["number"]
            if since is None or _updated_after(record, since):
                found.append(record)
            if len(found) > limit:
                break
    if len(found) > limit:
        found, next_before = found[:limit], found[limit - 1]["number"]
    else:
        next_before = None if exhausted else before
    views = [ticket_views.api_view(r, services.store.ticket_messages(r["id"]), attachment_url) for r in found]
    return {"tickets": views, "next_cursor": encode_cursor(next_before) if next_before else None}


# ------------------------------------------------------------------ changes
def outbound_key(ticket_id: str, idempotency_key: str) -> str:
    """The outbound record of a reply: one per (ticket, Idempotency-Key), so a retried request
    finds the record its first attempt created (services/outgoing/records.py: created once, sent once)."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"api-{ticket_id}-{digest}"


def reply(services: ApiPorts, ticket_id: str, text: str, html: str | None = None, attachments=(),
          idempotency_key: str | None = None) -> dict:
    """Reply-all through the ticket's outgoing mailbox (outgoing.send_reply), waiting for the
    send up to settings.reply_wait_s; the answer is the outbound record's state, and `final`
    says whether it can still change (queued and failed sends are retried by the outbox)."""
    record = ticket_record(services, ticket_id)
    key = outbound_key(record["id"], idempotency_key) if idempotency_key is not None else None
    result = outgoing.send_reply(services, record["id"], text, html=html, attachments=attachments,
                                 idempotency_key=key, wait=True)
    return {**result, "final": result.get("status") in FINAL_STATUSES}


def change(services: ApiPorts, ticket_id: str, changes: dict, attachment_url) -> dict:
    """Set a ticket's status, team and/or type (services/tickets.py); the ticket JSON after it."""
    record = ticket_record(services, ticket_id)
    if not changes:
        raise InvalidInput("nothing to change: give status, team and/or type")
    if "status" in changes:
        tickets.set_status(services, record["id"], changes["status"])
    for field in ("team", "type"):
        if field in changes:
            tickets.set_field(services, record["id"], field, changes[field] or "")
    return ticket(services, record["id"], attachment_url)


def confirm_participant(services: ApiPorts, ticket_id: str, email: str) -> dict:
    """A suggested participant confirmed: the ticket's participants after it."""
    return tickets.confirm_participant(services, ticket_record(services, ticket_id)["id"], email)


def attachment(services: ApiPorts, ticket_id: str, message_id: str, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of a message's attachment, looked up on its own ticket."""
    record = ticket_record(services, ticket_id)
    rows = services.store.ticket_messages(record["id"])
    message = next((r["message"] for r in rows if r["message"].get("id") == message_id), None)
    items = (message or {}).get("attachments") or []
    if message is None or not 0 <= index < len(items):
        raise NotFound(f"no attachment {index} on message {message_id!r} of ticket #{record['number']}")
    item = items[index]
    sha256 = str(item.get("sha256") or "")
    if not item.get("storage_key") or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise NotFound("this attachment's content was not stored")
    try:
        data = services.blobs.get(sha256)
    except Exception as e:  # noqa: BLE001 - any storage failure: the content is not there to give
        log_event("WARNING", "attachment download failed", ticket=record["id"], error=e.__class__.__name__)
        raise NotFound("the attachment's content is not available") from None
    return str(item.get("filename") or ""), str(item.get("content_type") or "application/octet-stream"), data
