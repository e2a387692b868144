"""What operators see of the outbox and do to it: a mailbox's outbox status (`mailbox show`, the
admin mailbox page), the waiting records (`outbox list`), `outbox retry` and `outbox drop`.
"""

from __future__ import annotations

from datetime import datetime
import time

from mailbridge.domain import models, routing
from mailbridge.errors import InvalidInput, NotFound
from mailbridge.services.outbox import drain, pacing
from mailbridge.services.outgoing import budget
from mailbridge.services.ports import OutboxPorts

WAITING = ("queued", "pending", "failed", "sending")  # records the outbox still owes a send
LISTED = WAITING + ("given_up",)


def status(services: OutboxPorts, mailbox: dict) -> dict:
    """What `mailbox show` and the admin page say about the outbox."""
    store = services.store
    records = store.outbox_records(mailbox["name"], services.settings.instance)
    queued = [r for r in records if r.get("status") in WAITING]
    now = time.time()
    ages = []
    for record in queued:
        try:
            ages.append(now - datetime.fromisoformat(record["created_at"]).timestamp())
        except (KeyError, TypeError, ValueError):
            continue
    daily_budget, _ack = budget.daily_limits(mailbox)
    pacing_document = store.get_send_pacing(pacing.pacing_key(services, mailbox["name"])) or {}
    last_error = pacing_document.get("last_error")
    if not last_error:
        errors = sorted((r for r in records if r.get("last_error")), key=lambda r: r.get("updated_at") or "")
        last_error = errors[-1]["last_error"] if errors else None
    reason = routing.unusable_reason(mailbox, mailbox["name"], services.settings.instance)
    if reason and queued:
        last_error = f"sends wait: {reason}"
    return {"queued": len(queued), "oldest_queued_age_s": round(max(ages)) if ages else None,
            "sent_today": store.send_budget_used(mailbox["name"], budget.today()), "daily_budget": daily_budget,
            "last_error": last_error}


def list_records(services: OutboxPorts, mailbox: str | None = None, limit: int = 50) -> list[dict]:
    """Pending and failed sends (given up included), oldest first, with their reason."""
    if limit < 0:
        raise InvalidInput("--limit must be 0 (all) or more")
    store = services.store
    names = [store.get_mailbox(mailbox)["name"]] if mailbox else [m["name"] for m in store.list_mailboxes()]
    rows = []
    for name in names:
        for record in store.outbox_records(name, services.settings.instance, statuses=LISTED):
            rows.append(_row(record))
    rows.sort(key=lambda r: (r["created_at"] or "", r["id"]))
    return rows[:limit] if limit else rows


def _row(record: dict) -> dict:
    return {"id": record.get("key"), "mailbox": record.get("mailbox"), "kind": record.get("kind"),
            "status": record.get("status"), "ticket": record.get("ticket_id"),
            "to": [a.get("email") for a in (record.get("message") or {}).get("to", [])],
            "subject": (record.get("message") or {}).get("subject"), "attempts": record.get("attempts", 0),
            "reason": record.get("last_error"), "created_at": record.get("created_at"),
            "next_attempt_at": record.get("next_attempt_at") or None}


def _get(services: OutboxPorts, record_id: str) -> dict:
    record = services.store.get_outbound(record_id)
    if record is None or record.get("instance", services.settings.instance) != services.settings.instance:
        raise NotFound(f"no outbox record {record_id!r} (see `outbox list`)")
    return record


def retry(services: OutboxPorts, record_id: str) -> dict:
    """Queue one record again now (a given-up or waiting one); earlier attempts are still looked
    up in Gmail before it is sent, so a retry never sends twice."""
    record = _get(services, record_id)
    if record.get("status") not in LISTED + ("skipped",):
        raise InvalidInput(f"outbox record {record_id!r} is {record.get('status')}: nothing to retry")
    if record.get("status") == "sending" and float(record.get("lease_until") or 0) > time.time():
        raise InvalidInput(f"outbox record {record_id!r} is being sent right now")
    services.store.update_outbound(record_id, {"status": "queued", "next_attempt_at": 0, "last_error": None,
                                               "updated_at": models.now_iso()})
    drain.publish(services, record["mailbox"], "retry")
    return _row({**record, "status": "queued", "next_attempt_at": 0, "last_error": None})


def drop(services: OutboxPorts, record_id: str) -> dict:
    """Never send this record (kept, status dropped, so the ticket shows what happened)."""
    record = _get(services, record_id)
    if record.get("status") not in LISTED + ("skipped",):
        raise InvalidInput(f"outbox record {record_id!r} is {record.get('status')}: only unsent records can be dropped")

    def decide(data):
        if data is None or data.get("status") == "sent":
            return "sent", None
        if data.get("status") == "sending" and float(data.get("lease_until") or 0) > time.time():
            return "busy", None
        return "dropped", {"status": "dropped", "last_error": "dropped by an operator", "lease_until": 0,
                           "updated_at": models.now_iso()}

    state, _data = services.store.change_outbound(record_id, decide)
    if state != "dropped":
        raise InvalidInput(f"outbox record {record_id!r} was {'sent' if state == 'sent' else 'being sent'} meanwhile")
    return _row({**record, "status": "dropped", "last_error": "dropped by an operator"})
