"""The outbound record: every outgoing message is `outbound/{idempotency key}` (its Message-ID and
exact MIME bytes) before Gmail is called, status queued, and a "send" task of its mailbox is
asked for (docs/outbox.md). Also the answer a caller gets for a record.
"""

from __future__ import annotations

import hashlib
import time

from mailbridge.domain import models
from mailbridge.domain.parsing import sanitize_html
from mailbridge.errors import InvalidInput
from mailbridge.services.outgoing.drafts import Draft
from mailbridge.services.ports import Blobs, ComposePorts, SendTaskPorts

INLINE_RAW_BYTES = 256 * 1024            # larger MIME goes to Cloud Storage, not the record
MAX_STORED_TEXT = 60_000                 # keeps an outbound record well under Firestore's 1 MiB
WAKE_FALLBACK_SECONDS = 120.0            # new records: the scheduled tick sends them if their task was lost


def check_key(key: str) -> str:
    key = str(key or "").strip()
    if not key or len(key) > 200 or "/" in key or key.startswith("__") or any(ord(c) < 32 for c in key):
        raise InvalidInput("idempotency key must be 1-200 characters without '/' or control characters")
    return key


def result(data: dict) -> dict:
    """What a caller (reply, acknowledgement, deliver) is told about a record."""
    answer = {
        "ticket": data.get("ticket_id"), "mailbox": data.get("mailbox"), "rule": data.get("rule"),
        "explanation": data.get("explanation"), "message_id": data.get("message_id"),
        "sent_message_id": data.get("sent_message_id"), "gmail_message_id": data.get("gmail_message_id"),
        "thread_id": data.get("gmail_thread_id"),
        "status": data.get("status"), "idempotency_key": data.get("key"), "attempts": data.get("attempts", 0),
    }
    if data.get("status") != "sent" and data.get("last_error"):
        answer["error"] = data["last_error"]
        if data.get("status") == "failed":
            answer["next_attempt_at"] = data.get("next_attempt_at")
    return answer


def _message_record(draft: Draft, key: str, now: str) -> dict:
    out = draft.out
    defects = []
    text, html = out.text or "", out.html
    if len(text) > MAX_STORED_TEXT or (html and len(html) > MAX_STORED_TEXT):
        defects.append(f"body truncated to {MAX_STORED_TEXT} characters for storage; the sent message is complete")
        text, html = text[:MAX_STORED_TEXT], html[:MAX_STORED_TEXT] if html else html
    if html:
        html = sanitize_html(html)
    return {
        "id": f"out~{key}", "direction": "out", "gmail_message_id": None, "gmail_thread_id": draft.thread_id,
        "message_id": out.message_id, "in_reply_to": [out.in_reply_to] if out.in_reply_to else [],
        "references": list(out.references),
        "from": {"email": out.from_email, "name": out.from_name},
        "to": [{"email": e, "name": ""} for e in out.to], "cc": [{"email": e, "name": ""} for e in out.cc],
        "reply_to": [], "subject": out.subject, "date": now, "received_at": now,
        "text": text, "full_text": text, "html": html,
        "attachments": [{"filename": f, "content_type": t or "application/octet-stream", "size": len(d),
                         "content_id": None, "sha256": hashlib.sha256(d).hexdigest(), "inline": False,
                         "omitted": None, "storage_key": None} for f, t, d in out.attachments],
        "defects": defects, "size": len(draft.raw), "ticket_id": draft.ticket["id"],
    }


def create(services: ComposePorts, key: str, draft: Draft) -> bool:
    """Write the pending record and put its Message-ID on the ticket, in one batch.
    Returns False when a record with this key already exists."""
    now = models.now_iso()
    raw_field = {"raw": draft.raw, "raw_sha256": None}
    if len(draft.raw) > INLINE_RAW_BYTES:
        digest = hashlib.sha256(draft.raw).hexdigest()
        services.blobs.put(digest, draft.raw, "message/rfc822")
        raw_field = {"raw": None, "raw_sha256": digest}
    record = {
        "key": key, "kind": draft.kind, "status": "queued", "ticket_id": draft.ticket["id"],
        "mailbox": draft.mailbox["name"], "instance": services.settings.instance,
        "rule": draft.resolution["rule"], "explanation": draft.resolution["explanation"],
        "message_id": draft.out.message_id, "gmail_thread_id": draft.thread_id, "gmail_message_id": None,
        "attempts": 0, "last_error": None, "next_attempt_at": 0, "lease_until": 0,
        "created_at": now, "updated_at": now, "sent_at": None,
        "message": _message_record(draft, key, now), **raw_field,
    }
    return services.store.create_outbound(key, record)


def raw_of(blobs: Blobs, data: dict) -> bytes:
    """The exact MIME bytes of a record: on the record, or in Cloud Storage when large."""
    if data.get("raw") is not None:
        return bytes(data["raw"])
    return blobs.get(data["raw_sha256"])


def enqueue_send(services: SendTaskPorts, mailbox_name: str, reason: str, new_records: bool = True) -> None:
    """Ask the work queue for a "send" task of this mailbox (services/outbox/ drains all its
    records). After new records, first the tick's safety net: a process killed before its publish
    still gets them sent by a tick after WAKE_FALLBACK_SECONDS."""
    if new_records:
        services.store.update_mailbox(mailbox_name, {"outbox_wake_at": time.time() + WAKE_FALLBACK_SECONDS})
    services.queue.publish("send", mailbox_name, {"reason": reason})
