"""An agent's reply to a ticket (CLI `reply`, the admin ticket page): composed, recorded in the
outbox exactly once per idempotency key, then sent by the outbox's "send" task; the caller may
wait for that send (docs/outbox.md).
"""

from __future__ import annotations

import time
import uuid

from mailbridge.domain import merging
from mailbridge.logs import log_event
from mailbridge.services.outgoing import delivery, drafts, records
from mailbridge.services.ports import OutgoingPorts

FINAL = ("sent", "given_up", "skipped", "dropped")


def wait_for_send(services: OutgoingPorts, key: str, wait_s: float, poll_s: float = 0.5) -> dict:
    """The record once the outbox has sent it, failed it, or said why it waits; or, after `wait_s`,
    as it is (still queued)."""
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        data = services.store.get_outbound(key) or {}
        status = data.get("status")
        if status in FINAL or status == "failed" or (status == "queued" and data.get("last_error")):
            return records.result(data)
        if time.monotonic() >= deadline:
            return records.result(data)
        time.sleep(poll_s)


def _resume(services: OutgoingPorts, key: str, data: dict, wait_s: float = 0.0) -> dict:
    if data.get("status") in ("sent", "skipped", "dropped"):
        return records.result(data)
    if data.get("status") == "sending":
        # a sender holds it (or died holding it): deliver only looks it up in Gmail, never sends;
        # Conflict while it is not found there
        return delivery.deliver(services, key)
    if data.get("status") == "given_up":
        # an explicit retry by a person gets one more attempt (earlier ones are still looked up in Gmail)
        services.store.update_outbound(key, {"status": "queued", "next_attempt_at": 0})
    elif data.get("status") == "failed":
        services.store.update_outbound(key, {"next_attempt_at": 0})
    records.enqueue_send(services, data["mailbox"], "resume", new_records=False)
    return wait_for_send(services, key, wait_s) if wait_s else records.result(services.store.get_outbound(key))


def send_reply(services: OutgoingPorts, ticket_id: str, text: str, html: str | None = None, attachments=(),
               dry_run: bool = False, idempotency_key: str | None = None, wait: bool = True) -> dict:
    """Reply-all to a ticket through its resolved outgoing mailbox, exactly once per key: the
    record is queued in the outbox; with `wait`, answer once it is sent (or why not), up to
    `settings.reply_wait_s`; without, once it is durable (status queued)."""
    store = services.store
    wait_s = services.settings.reply_wait_s if wait else 0.0
    key = records.check_key(idempotency_key) if idempotency_key is not None else None
    if key and not dry_run:
        existing = store.get_outbound(key)
        if existing is not None:
            return _resume(services, key, existing, wait_s)
    # a merged ticket's reply goes out from its survivor, with the survivor's tag (docs/merging.md)
    ticket = store.get_ticket(merging.survivor_of(ticket_id, store.find_ticket))
    draft = drafts.compose(services, ticket, text, html, attachments)
    if dry_run:
        return drafts.preview(draft)
    key = key or f"reply-{uuid.uuid4().hex}"
    if not records.create(services, key, draft):
        return _resume(services, key, store.get_outbound(key), wait_s)
    log_event("INFO", "reply queued", key=key, ticket=ticket_id, mailbox=draft.mailbox["name"])
    records.enqueue_send(services, draft.mailbox["name"], "reply")
    return wait_for_send(services, key, wait_s) if wait_s else records.result(store.get_outbound(key))
