"""Message bodies too large for one Firestore document (1 MiB): their large parts (text, quoted
text, HTML) are kept in Cloud Storage through the blobs port, content-addressed like attachments,
and the row keeps a preview, the pointers (`stored_parts`: field -> sha256) and a defect. Every
reader (ticket views, the API, the admin pages) loads them back with `load`, so such a message
is a ticket like any other (docs/reliability.md, "Outsiders")."""

from __future__ import annotations

import hashlib

from mailbridge.logs import log_event
from mailbridge.services.ports import BodiesPorts

PARTS = ("text", "full_text", "html")
# Bytes (UTF-8) the body fields of one message may take in its row: the rest of the row
# (addresses, references, attachments' metadata) stays far below the remaining room.
ROW_BODY_BUDGET = 600_000
PREVIEW_CHARS = 2_000
MAX_TEXT = 2_000_000  # characters kept per body field at all (beyond a row's room, in Cloud Storage)
DEFECT = "message too large for one Firestore document: {parts} kept in Cloud Storage"


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def offload_parsed(services: BodiesPorts, parsed, max_chars: int = MAX_TEXT) -> dict[str, str]:
    """Cut each body of a parsed message to `max_chars` (noted), and when the bodies would still
    not fit a row (ROW_BODY_BUDGET bytes of UTF-8), keep the large ones in Cloud Storage and only
    a preview on `parsed`. Returns the pointers (field -> sha256) for the row's `stored_parts`; a
    failed upload raises (the message fails and is retried, as for attachments)."""
    if any(len(getattr(parsed, field) or "") > max_chars for field in PARTS):
        for field in PARTS:
            value = getattr(parsed, field)
            setattr(parsed, field, value[:max_chars] if value else value)
        parsed.defects.append(f"body truncated to {max_chars} characters for storage")
    if sum(len(_utf8(getattr(parsed, field) or "")) for field in PARTS) <= ROW_BODY_BUDGET:
        return {}
    stored = {}
    for field in PARTS:
        value = getattr(parsed, field) or ""
        if len(value) <= PREVIEW_CHARS:
            continue
        data = _utf8(value)
        sha256 = hashlib.sha256(data).hexdigest()
        services.blobs.put(sha256, data, "text/plain; charset=utf-8")
        stored[field] = sha256
        setattr(parsed, field, value[:PREVIEW_CHARS])
    parsed.defects.append(DEFECT.format(parts=", ".join(stored)))
    return stored


def load(services: BodiesPorts, message: dict) -> dict:
    """`message` with its parts kept in Cloud Storage read back (a part that cannot be read keeps
    its preview, with a note)."""
    stored = message.get("stored_parts") or {}
    if not stored:
        return message
    message = dict(message)
    for field, sha256 in stored.items():
        try:
            message[field] = services.blobs.get(sha256).decode("utf-8", "surrogatepass")
        except Exception as e:  # noqa: BLE001 - a missing part must not hide the rest of the ticket
            log_event("WARNING", "stored message part not readable", field=field, error=e.__class__.__name__)
            message["defects"] = [*(message.get("defects") or []), f"{field} could not be read from Cloud Storage"]
    return message


def load_rows(services: BodiesPorts, rows: list[dict]) -> list[dict]:
    """Inbound/outbound rows with each message's stored parts read back."""
    return [dict(row, message=load(services, row["message"])) if (row.get("message") or {}).get("stored_parts") else row
            for row in rows]
