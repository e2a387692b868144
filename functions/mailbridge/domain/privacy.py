"""A person's data and its lifecycle (pure; docs/privacy.md): who a record names, the keyed hash
that stands for a person once erased, redaction, the blobs a record points to, and when a
closed ticket's data expires."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib
import hmac
import re

from mailbridge.domain import copies, models
from mailbridge.errors import InvalidInput

REDACTED = "[erased]"
ERASED_REASON = "erased at the person's request"
HASH_CONTEXT = b"mailbridge privacy tombstone v1"
# Collections a person's data lives in, and those the scan reads (docs/privacy.md)
PERSONAL_COLLECTIONS = ("tickets", "inbound", "outbound", "events")
# ... and the acknowledgement counters, which hold a recipient's address for an hour or so
SCANNED_COLLECTIONS = (*PERSONAL_COLLECTIONS, "ack_limits")


def normalize(address: str) -> str:
    """The address a request names, lower case; InvalidInput if it is not one."""
    return models.validate_address(str(address or "").strip()).lower()


def hash_key(secret: str) -> bytes:
    """The HMAC key of person hashes, derived from a deployment secret (never stored)."""
    if not secret:
        raise InvalidInput("no key for person hashes: set MAILBRIDGE_PRIVACY_KEY or MAILBRIDGE_SIGNING_KEY")
    return hmac.new(secret.encode("utf-8"), HASH_CONTEXT, hashlib.sha256).digest()


def person_hash(key: bytes, address: str) -> str:
    """The keyed hash that names an erased person: the same address gives the same hash, and
    without the key nobody can test an address against it."""
    return "hmac-sha256:" + hmac.new(key, address.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def strings(value):
    """Every string inside a record (keys too), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("latin-1")


def names(record, address: str) -> bool:
    """Whether any string of `record` contains the address (any case)."""
    needle = address.lower()
    return any(needle in text.lower() for text in strings(record))


def _pattern(needles: list[str]):
    words = sorted({n for n in needles if n and len(n.strip()) >= 2}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def redact(value, needles: list[str]):
    """`value` with every occurrence of each needle (the address, the person's names) replaced
    by REDACTED, in every string and byte string at any depth; other values unchanged."""
    pattern = _pattern(needles)
    if pattern is None:
        return value
    return _redact(value, pattern)


def _redact(value, pattern):
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, (bytes, bytearray)):
        return pattern.sub(REDACTED, bytes(value).decode("latin-1")).encode("latin-1")
    if isinstance(value, dict):
        return {key: _redact(item, pattern) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, pattern) for item in value]
    return value


def spam_entries_naming(spam_lists: list[dict], address: str) -> list[dict]:
    """The entries of each mailbox's Spam list (PrivacyRepository.spam_lists_naming) that name the
    address: {"mailbox", "instance", "entries"}."""
    found = []
    for spam_list in spam_lists:
        entries = [entry for entry in spam_list["spam_recent"] if names(entry, address)]
        if entries:
            found.append({"mailbox": spam_list["mailbox"], "instance": spam_list["instance"], "entries": entries})
    return found


def copy_keys_of(rows: list[dict], address: str) -> set[str]:
    """The copy keys (domain/copies.py) the person's messages among these inbound rows may have
    left on a ticket and in `message_copies`: their Message-ID and Date with the person as sender,
    with either verdict (a key names no one, but it is derived from their message)."""
    keys = set()
    for row in rows:
        date = (row.get("message") or {}).get("date")
        for authenticated in (True, False):
            keys.add(copies.copy_key(row.get("message_id") or "", address, date, authenticated))
    keys.discard(None)
    return keys


def sender_of(row: dict) -> str:
    """The sender of an inbound row or outbound record, lower case ("" if unknown)."""
    message = row.get("message") or {}
    sender = (message.get("from") or {}).get("email") or row.get("from_email") or ""
    return str(sender).lower()


def display_names(rows: list[dict], address: str) -> list[str]:
    """The names the person used in the From, To and Cc of these rows (to redact them too)."""
    found = []
    for row in rows:
        message = row.get("message") or {}
        people = [message.get("from") or {}, *(message.get("to") or []), *(message.get("cc") or []),
                  *(message.get("reply_to") or [])]
        for person in people:
            if isinstance(person, dict) and str(person.get("email") or "").lower() == address:
                name = str(person.get("name") or "").strip()
                if len(name) >= 3 and name.lower() != address and name not in found:
                    found.append(name)
    return found


def blob_refs(row: dict) -> set[str]:
    """The Cloud Storage blobs (sha256) a row or record points to: attachments, stored body
    parts (services/stored_bodies.py) and a raw copy."""
    refs = set()
    message = row.get("message") or {}
    for attachment in message.get("attachments") or []:
        if attachment.get("sha256") and attachment.get("storage_key"):
            refs.add(attachment["sha256"])
    refs.update(v for v in (message.get("stored_parts") or {}).values() if v)
    if row.get("raw_sha256"):
        refs.add(row["raw_sha256"])
    return refs


def tombstone_row(row: dict, person: str, now: str) -> dict:
    """What stays of an erased person's inbound row: the Gmail id and an `ignored` outcome, so
    the same message read again from Gmail (history, a backfill) is not ingested again."""
    return {"mailbox": row.get("mailbox"), "gmail_message_id": row.get("gmail_message_id"),
            "gmail_thread_id": None, "message_id": "", "outcome": "ignored", "reason": ERASED_REASON,
            "ticket_id": None, "attempts": row.get("attempts", 0), "processed_at": row.get("processed_at") or now,
            "seq": row.get("seq", 0), "subject": "", "from_email": "", "defects": [], "erased": person,
            "erased_at": now}


def redact_ticket(ticket: dict, address: str, needles: list[str]) -> dict:
    """A ticket that keeps other people's messages: the person leaves its participants and
    suggested participants; if they were the requester, the requester becomes REDACTED."""
    ticket = dict(ticket)
    ticket["participants"] = [p for p in ticket.get("participants") or [] if str(p).lower() != address]
    ticket["suggested_participants"] = [
        s for s in ticket.get("suggested_participants") or []
        if str(s.get("email") if isinstance(s, dict) else s).lower() != address]
    requester = ticket.get("requester") or {}
    if str(requester.get("email") or "").lower() == address:
        ticket["requester"] = {"email": REDACTED, "name": REDACTED}
    return redact(ticket, needles)


# -- retention --------------------------------------------------------------------------------
def _moment(value: str | None) -> datetime:
    moment = datetime.fromisoformat(value) if value else datetime.now(timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def closed_ticket_days(settings: dict, mailbox: dict | None) -> int:
    """The retention of a closed ticket: the mailbox's own, else the global; 0 = kept."""
    own = ((mailbox or {}).get("retention") or {}).get("closed_ticket_days")
    if own:
        return int(own)
    return int(settings.get("retention.closed_ticket_days") or 0)


def expiry(ticket: dict, days: int, closed_at: str | None = None) -> datetime | None:
    """When a ticket's data may be deleted: `days` after closing, never when it is open, on
    legal hold, or retention is off (0)."""
    if ticket.get("status") != "closed" or ticket.get("legal_hold") or not days:
        return None
    return _moment(closed_at or ticket.get("closed_at")) + timedelta(days=int(days))


def inbound_expiry(settings: dict, outcome: str, processed_at: str) -> datetime | None:
    """An ignored or quarantined row (no ticket keeps it) expires retention.inbound_log_days
    after it was processed; 0 = kept."""
    days = int(settings.get("retention.inbound_log_days") or 0)
    if outcome not in ("ignored", "quarantined") or not days:
        return None
    return _moment(processed_at) + timedelta(days=days)


def audit_expiry(settings: dict, at: str) -> datetime:
    return _moment(at) + timedelta(days=int(settings.get("audit.retention_days") or 400))
