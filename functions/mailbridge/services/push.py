"""The `push` function's use cases: Gmail watch notifications and work-queue tasks
(docs/architecture.md, "Queue"). Both end in the same per-mailbox sync (services/sync/), one
mailbox per invocation. The HTTP edge (mailbridge.http.push) decodes the Pub/Sub envelope and
turns the Outcome into an acknowledgement: 2xx for done, duplicate, bad or unknown tasks (never
retried forever), 429/5xx for transient failures so Pub/Sub redelivers with backoff.
"""

from __future__ import annotations

import time

from mailbridge.errors import NotFound
from mailbridge.services import events, mailboxes, outbox, sync
from mailbridge.services.ports import PushPorts

# A notification that finds the mailbox being synchronized waits for that run (well inside the
# push subscription's ack deadline) before asking Pub/Sub to redeliver.
LEASE_WAIT_SECONDS = 15.0
LEASE_POLL_SECONDS = 0.2
BUSY = "another poll or push of this mailbox is running"


class Outcome:
    """What to answer Pub/Sub: 2xx acknowledges, 429/5xx asks for redelivery."""

    def __init__(self, reason: str, status: int = 200, **fields):
        self.reason, self.status, self.fields = reason, status, fields

    def __repr__(self):
        return f"Outcome({self.reason!r}, {self.status})"


def _connected(services: PushPorts, mailbox: dict) -> bool:
    cred = mailboxes.own_credential(services, mailbox)
    return bool(cred) and cred.get("status") == "connected"


def on_task(services: PushPorts, task: dict) -> Outcome:
    """One work-queue task (string attributes: kind, mailbox, instance, and the kind's own)."""
    kind, name = task.get("kind"), task.get("mailbox")
    if not isinstance(name, str) or not name:
        return Outcome("task names no mailbox", kind=kind)
    if task.get("instance") not in (None, services.settings.instance):
        return Outcome("task for another instance", mailbox=name, instance=task.get("instance"))
    if kind == "sync":
        return sync_task(services, name, task)
    if kind == "send":
        try:
            result = outbox.handle_send_task(services, name, task)
        except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
            return Outcome(f"send failed; retry later ({e.__class__.__name__})", 503, mailbox=name)
        return result if isinstance(result, Outcome) else Outcome("send task done", mailbox=name)
    if kind == "events":
        return events_task(services, name)
    return Outcome(f"unknown task kind {kind!r}", mailbox=name)


def events_task(services: PushPorts, name: str) -> Outcome:
    """Publish a mailbox's ticket events left waiting (docs/events.md); Pub/Sub redelivers the
    task while the events topic refuses them."""
    try:
        published = events.handle_events_task(services, name)
    except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
        return Outcome(f"events not published; retry later ({e.__class__.__name__})", 503, mailbox=name)
    return Outcome("events published", mailbox=name, published=published)


def sync_task(services: PushPorts, name: str, task: dict) -> Outcome:
    """Synchronize one mailbox for a tick, a continuation or a notification.

    Exactly once comes from the inbound rows (services/sync/commit.py), so duplicates only cost reads:
    a tick's task is skipped once the tick is recorded; a task that finds the lease held is
    redelivered (429) and, after a dead holder's lease ran out (lease_ttl_s), takes over.
    """
    try:
        store = services.store
        # A tick's task was queued seconds ago by a tick that read the switches; other tasks
        # (continuations, notifications) read them here. An idle mailbox's tick task then costs
        # two reads, the mailbox and its sync state, in one round trip (docs/benchmarks.md,
        # idle_mailbox_cost).
        if not task.get("tick") and not store.settings().get("use_incoming_service", True):
            return Outcome("incoming service is switched off", mailbox=name)
        try:
            mailbox, state = store.mailbox_with_sync(name, services.settings.instance)
        except NotFound:  # removed while its task was queued
            return Outcome("no such mailbox (removed?)", mailbox=name)
        if not _connected(services, mailbox):
            return Outcome("mailbox is not connected for this instance", mailbox=name)
        result = sync.sync_mailbox(services, name, budget_s=services.settings.push_time_budget_s,
                                   task=task, mailbox=mailbox, sync_state=state)
    except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
        return Outcome(f"transient failure ({e.__class__.__name__})", 503, mailbox=name)
    return _answer(name, result)


def _answer(name: str, result: dict) -> Outcome:
    if result.get("outcome") == "skipped" and result.get("reason") == sync.TICK_DONE:
        return Outcome(sync.TICK_DONE, mailbox=name)
    if result.get("outcome") == "skipped" and result.get("reason") == BUSY:
        return Outcome("mailbox is being synchronized; retry later", 429, mailbox=name)
    if result.get("outcome") == "error" and "invalid_grant" not in result.get("error", ""):
        return Outcome("sync failed; retry later", 503, mailbox=name, error=result.get("error"))
    return Outcome("synchronized", 200, mailbox=name, counts=result.get("counts"),
                   complete=result.get("complete"))


def on_notification(services: PushPorts, address: str, history_id: int) -> Outcome:
    """A Gmail notification: the same per-mailbox sync, unless already past `history_id`."""
    try:
        switches = services.store.settings()
        if not switches.get("use_incoming_service", True):
            return Outcome("incoming service is switched off", address=address)
        mailbox = services.store.find_mailbox_by_address(address)
        if mailbox is None:
            return Outcome("no mailbox for this address", address=address)
        if not _connected(services, mailbox):
            return Outcome("mailbox is not connected for this instance", mailbox=mailbox["name"])
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            state = services.store.get_sync(mailbox["name"], services.settings.instance)
            if state.get("history_id") and int(state["history_id"]) >= history_id:
                return Outcome("already synchronized past this notification", mailbox=mailbox["name"])
            busy = state.get("lease_owner") and float(state.get("lease_expires_at") or 0) > time.time()
            if not busy:
                outcome = sync_task(services, mailbox["name"], {"kind": "sync", "mailbox": mailbox["name"]})
                if outcome.status != 429:
                    return outcome
            if time.monotonic() > deadline:
                # The running sync may have listed history before this message arrived: redeliver later.
                return Outcome("mailbox is being polled; retry later", 429, mailbox=mailbox["name"])
            # Wait for the running sync (a plain read, no lease transaction): it often covers this
            # notification, and waiting here beats Pub/Sub's redelivery backoff.
            time.sleep(LEASE_POLL_SECONDS)
    except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
        return Outcome(f"transient failure ({e.__class__.__name__})", 503, address=address)
