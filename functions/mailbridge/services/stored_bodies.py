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
DEFECT = "message too large for one Firestore document: {parts} kept in Cloud Storage"


def body_bytes(message: dict) -> int:
    return sum(len(str(message.get(field) or "").encode("utf-8", "surrogatepass")) for field in PARTS)


def offload(services: BodiesPorts, message: dict) -> dict:
    """`message` itself when its bodies fit its row; else a copy whose large parts are stored in
    Cloud Storage (a failed upload raises: the caller fails or quarantines the message)."""
    if body_bytes(message) <= ROW_BODY_BUDGET:
        return message
    message = dict(message, defects=list(message.get("defects") or []))
    stored = {}
    for field in PARTS:
        value = message.get(field)
        if not value or len(value) <= PREVIEW_CHARS:
            continue
        data = value.encode("utf-8", "surrogatepass")
        sha256 = hashlib.sha256(data).hexdigest()
        services.blobs.put(sha256, data, "text/plain; charset=utf-8")
        stored[field] = sha256
        message[field] = value[:PREVIEW_CHARS]
    message["stored_parts"] = stored
    message["defects"].append(DEFECT.format(parts=", ".join(stored)))
    return message


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
