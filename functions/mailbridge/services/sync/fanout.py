"""The poll's fan-out (docs/architecture.md, "Queue"): what Cloud Scheduler's tick triggers. With
a work queue the tick publishes one "sync" task per connected mailbox; one named mailbox, a
backfill, or no queue is synced here (mailbox.py), concurrently."""

from __future__ import annotations

import concurrent.futures
import uuid

from mailbridge.logs import log_event
from mailbridge.services import events, mailboxes
from mailbridge.services.ports import PollPorts
from mailbridge.services.sync.handoffs import wake_outboxes
from mailbridge.services.sync.mailbox import sync_mailbox, zero_counts


def poll(services: PollPorts, mailbox: str | None = None, *, scheduled: bool = True, backfill_since: float | None = None,
         budget_s: float | None = None, progress=None, lease_wait_s: float = 10.0, tick: str | None = None,
         fanout: bool | None = None) -> dict:
    """What Cloud Scheduler triggers. With a work queue (settings.work_topic) the tick only
    enqueues one "sync" task per connected mailbox, each synced in its own `push` invocation
    (docs/architecture.md, "Queue"); one named mailbox, or no queue, is synced here, concurrently."""
    settings = services.settings
    switches = services.store.settings()
    if not switches.get("use_incoming_service", True):
        return {"status": "off", "reason": "the incoming service is switched off (use_incoming_service=false)", "mailboxes": []}
    if scheduled and not switches.get("use_scheduling_service", True):
        return {"status": "off", "reason": "the scheduling service is switched off (use_scheduling_service=false)", "mailboxes": []}
    if mailbox:
        boxes = [services.store.get_mailbox(mailbox)]
    else:
        boxes = [m for m in services.store.list_mailboxes()
                 if (mailboxes.own_credential(services, m) or {}).get("status") == "connected"]
    if scheduled and not mailbox:
        _sweep_events(services)
    if fanout is None:
        fanout = bool(settings.work_topic) and not mailbox and backfill_since is None
    if fanout:
        return _fan_out(services, boxes, tick or uuid.uuid4().hex)
    names = [m["name"] for m in boxes]
    results = []
    if names:
        workers = max(1, min(settings.poll_concurrency, len(names)))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(sync_mailbox, services, n, budget_s=budget_s, backfill_since=backfill_since,
                                   progress=progress, lease_wait_s=lease_wait_s) for n in names]
            for future in futures:
                results.append(future.result())
    totals = {k: sum(r.get("counts", {}).get(k, 0) for r in results) for k in zero_counts()}
    wake_outboxes(services, boxes)
    return {"status": "ok", "instance": settings.instance, "mailboxes": results, "totals": totals}


def _sweep_events(services: PollPorts) -> None:
    """The tick's safety net for ticket events whose writer could not publish them (docs/events.md)."""
    try:
        events.sweep(services)
    except Exception as e:  # noqa: BLE001 - the sync goes on; the next tick sweeps again
        log_event("WARNING", "ticket events sweep failed", error=f"{e.__class__.__name__}: {str(e)[:200]}")


def _fan_out(services: PollPorts, boxes: list[dict], tick: str) -> dict:
    """One "sync" task per mailbox, all carrying the tick id: a redelivered or re-published task
    of the same tick is skipped once the tick is recorded (services/push.py)."""
    names = [m["name"] for m in boxes]
    if names:
        services.queue.publish_many("sync", [(n, {"tick": tick}) for n in names])
    log_event("INFO", "tick queued", tick=tick, mailboxes=len(names))
    wake_outboxes(services, boxes)
    return {"status": "ok", "instance": services.settings.instance, "tick": tick, "queued": len(names),
            "mailboxes": [{"mailbox": n, "outcome": "queued", "reason": f"queued for sync (tick {tick})"}
                          for n in names], "totals": zero_counts()}
