"""One mailbox synchronized under its lease (docs/architecture.md, "The path of a poll" and
"Queue"): the checks before (credential, the tick, an idle mailbox), the run (run.py), the
hand-offs after the commit (handoffs.py), and a continuation task when the budget ran out."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

from mailbridge.domain import models
from mailbridge.errors import GmailError, TokenRevoked
from mailbridge.logs import log_event
from mailbridge.services import mailboxes, watch
from mailbridge.services.ports import PollPorts, SyncPorts
from mailbridge.services.sync import handoffs, listing, spam
from mailbridge.services.sync.lease import Heartbeat, take_lease
from mailbridge.services.sync.run import MailboxSync

TICK_DONE = "this tick's sync already ran"
BUSY = "another poll or push of this mailbox is running"
INGESTION_RECORD_SECONDS = 10.0  # a long run adds its units to the quota bucket this often


def zero_counts() -> dict:
    return {k: 0 for k in ("created", "updated", "ignored", "quarantined", "failed")}


def sync_mailbox(services: PollPorts, name: str, *, budget_s: float | None = None, backfill_since: float | None = None,
                 progress=None, lease_wait_s: float = 0.0, task: dict | None = None,
                 mailbox: dict | None = None, from_spam: tuple[str, ...] = (), sync_state: dict | None = None) -> dict:
    """Synchronize one mailbox under its lease. `task`: the work-queue task that asked for it
    (services/push.py). Every task, and a poll, first checks cheaply whether the mailbox is idle
    (no lease, no write); a run goes on under its lease while new mail keeps coming (run.py), and
    one that runs out of budget with work left publishes a continuation task. `sync_state`: the
    state read with the mailbox (services/push.py), for the first idle check."""
    settings = services.settings
    started = time.monotonic()
    budget = budget_s if budget_s is not None else settings.poll_time_budget_s
    mailbox = mailbox or services.store.get_mailbox(name)
    credential = mailboxes.own_credential(services, mailbox)
    reason = _not_syncable(mailbox, credential, settings.instance)
    if reason:
        return {"mailbox": name, "outcome": "skipped", "reason": reason}
    tick, owner = (task or {}).get("tick"), uuid.uuid4().hex
    # Short and renewed (Heartbeat); never longer than the run could need.
    ttl = min(settings.lease_ttl_s, budget + settings.lease_margin_s)
    answer, prelisted, leased = _lease_or_answer(services, mailbox, credential, tick, owner, ttl,
                                         lease_wait_s, started, quick=backfill_since is None and not from_spam,
                                         state=sync_state)
    if answer:
        return answer
    sync = MailboxSync(services, mailbox, credential, started + budget, progress)
    sync.prelisted, sync.leased_state = prelisted, leased
    sync.taken_from_spam = list(from_spam)
    sync.lease = Heartbeat(services.store, name, settings.instance, owner, ttl).start()
    sync.after_pass = after = HandOffs(services, sync)
    summary = {"mailbox": name, "outcome": "ok"}
    changes = _run_under_lease(services, sync, backfill_since, tick, summary)
    after.finish()  # the quota bucket, then the acknowledgements: after the lease is released
    outside_chunks = _wrote_events_outside_chunks(sync, summary)
    if sync.unpublished or outside_chunks:
        sync.publish_events(look_up=outside_chunks)
    summary.update(counts=sync.counts, duration_s=round(time.monotonic() - started, 3),
                   quota_units=sync.gmail.pacer.used if sync.gmail else 0,
                   retries=sync.gmail.retries if sync.gmail else 0, backlog=changes.get("backlog", 0),
                   passes=sync.passes)
    if summary.get("complete") is False and summary["outcome"] == "ok" and settings.work_topic and not sync.lease.lost:
        _continue(services, name, task)
        summary["continued"] = True
    log_event("INFO" if summary["outcome"] != "error" else "ERROR", "mailbox polled", **summary)
    return summary


def _wrote_events_outside_chunks(sync: MailboxSync, summary: dict) -> bool:
    """Whether the run may have written events that no chunk published: a quarantine, a lost
    connection (docs/events.md). Chunks publish their own (run.py, at most every
    PUBLISH_EVERY_S), so a clean run whose last chunk published skips the look-up for waiting
    events (a query per run; docs/benchmarks.md)."""
    return summary["outcome"] != "ok" or bool(sync.counts["quarantined"] or sync.counts["failed"])


def _not_syncable(mailbox: dict, credential: dict | None, instance: str) -> str | None:
    """Why this instance does not sync the mailbox, or None."""
    if credential is None:
        return f"no credential set for instance {instance!r}"
    if credential.get("status") != "connected":
        return f"credential set is {credential.get('status', 'not_connected')}"
    if not mailbox.get("incoming", {}).get("enabled", True):
        return "incoming is disabled for this mailbox"
    return None


def _lease_or_answer(services: SyncPorts, mailbox: dict, credential: dict, tick: str | None, owner: str,
                     ttl: float, wait_s: float, started: float, quick: bool,
                     state: dict | None = None) -> tuple[dict | None, tuple | None, dict | None]:
    """(None, the quick answer's listing or None, the sync state as the lease was taken) with
    the lease taken for `owner`, or (the answer, None, None) without it: the quick answer (a
    tick done, an idle mailbox), or busy after `wait_s`. While another run holds the lease the quick answer is
    asked again each time it may have ended: that run lists the history again before releasing
    it, so it usually took this task's mail too, and this task then writes nothing."""
    wait_until = started + max(0.0, wait_s)
    while True:
        answer = _quick_answer(services, mailbox, credential, tick, started, state) if quick else None
        state = None  # asked again: read the state again
        if isinstance(answer, dict):
            return answer, None, None
        leased = take_lease(services.store, mailbox["name"], services.settings.instance, owner, ttl, 0.0)
        if leased:
            return None, answer, leased
        if time.monotonic() >= wait_until:
            return {"mailbox": mailbox["name"], "outcome": "skipped", "reason": BUSY}, None, None
        time.sleep(0.5)


def _quick_answer(services: SyncPorts, mailbox: dict, credential: dict, tick: str | None,
                  started: float, state: dict | None = None) -> dict | tuple | None:
    """Before any lease: a tick's task is skipped once its tick is recorded, and every task
    (tick, notification, continuation, a named poll) is answered at once when the mailbox is
    idle, writing nothing; the new mail it listed (_idle) or None when there is work."""
    name = mailbox["name"]
    if state is None:
        state = services.store.get_sync(name, services.settings.instance)
    if tick and state.get("last_tick") == tick:
        return {"mailbox": name, "outcome": "skipped", "reason": TICK_DONE}
    try:
        idle = _idle(services, name, mailbox, credential, state)
    except TokenRevoked:
        idle = None  # the full path records it
    if isinstance(idle, dict):
        idle["duration_s"] = round(time.monotonic() - started, 3)
    return idle


def _idle(services: SyncPorts, name: str, mailbox: dict, credential: dict, state: dict) -> dict | tuple | None:
    """The cheap check before any lease (docs/benchmarks.md, idle_mailbox_cost): with nothing
    pending in the sync state, one history.list (2 Gmail units) and no Firestore write decide
    that a mailbox is idle. Returns the summary of an idle mailbox; when there is new mail, the
    listing (its start, listing.NewMail) for the run to start from; None when it cannot tell."""
    # A mailbox never polled (no last_poll_at: just connected) gets a whole first run, which
    # records its poll for `mailbox show` and the admin pages, even with no mail.
    if (not state.get("history_id") or not state.get("last_poll_at") or state.get("backfill_since")
            or state.get("abandoned_runs") or state.get("backlog") or state.get("last_failed") != 0
            or state.get("lease_owner")
            or (services.settings.pubsub_topic
                and time.time() - float(state.get("watch_renewed_at") or 0) >= watch.WATCH_RENEW_SECONDS)):
        return None
    gmail = services.gmail_for(mailbox, credential)
    ids, spam_ids, history_id = [], [], None
    try:
        for page_ids, page_spam_ids, history_id, _last in gmail.new_mail(state["history_id"]):
            ids.extend(page_ids)
            spam_ids.extend(page_spam_ids)
    except GmailError:
        return None  # expired history and the like: the full sync handles it
    if ids or spam_ids:  # the run starts from this listing (run.py, prelisted)
        return (state["history_id"], listing.NewMail("incremental", ids, history_id, spam_ids=spam_ids))
    return {"mailbox": name, "outcome": "ok", "mode": "idle", "complete": True, "counts": zero_counts(),
            "quota_units": gmail.pacer.used, "retries": gmail.retries, "backlog": 0}


def _run_under_lease(services: PollPorts, sync: MailboxSync, backfill_since: float | None, tick: str | None,
                     summary: dict) -> dict:
    """The run and the hand-offs that write the sync state (labels, watch), then the lease's
    release with the sync state's changes, which are returned. An error is the summary's."""
    changes = {}
    try:
        result = sync.run(backfill_since)
        _hand_off_under_the_lease(services, sync, result["mode"])
        changes = result["changes"]
        changes["backlog"] = sync.backlog
        changes["last_failed"] = sync.counts["failed"]
        if tick:
            changes["last_tick"] = tick
        summary.update(mode=result["mode"], complete=result["complete"])
    except TokenRevoked as e:
        services.google.mark_revoked(sync.name, services.settings.instance, str(e))
        summary.update(outcome="error", error=str(e))
        changes = {"last_poll_at": models.now_iso(), "last_error": str(e), "last_failed": None}
    except Exception as e:  # noqa: BLE001 - one broken mailbox never holds up the others
        message = f"{e.__class__.__name__}: {str(e)[:300]}"
        summary.update(outcome="error", error=message)
        changes = {"last_poll_at": models.now_iso(), "last_error": message, "last_failed": None}
    finally:
        sync.lease.stop()
        if sync.lease.lost:
            # Another sync holds the mailbox now: its history id and status win.
            changes = {}
            summary.update(complete=False, lease="lost")
        services.store.release_lease(sync.name, services.settings.instance, sync.lease.owner, changes)
    return changes


def _hand_off_under_the_lease(services: PollPorts, sync: MailboxSync, mode: str) -> None:
    """Rescued mail out of Spam, labels after processing, then the Gmail watch (a first run starts
    it); both write the sync state before the lease's release does."""
    try:
        spam.move_out_of_spam(sync.gmail, sync.rescued, sync.processed)
    except GmailError as e:  # ingested all the same; the next rescue of the thread moves it
        log_event("WARNING", "rescued mail left in Spam", mailbox=sync.name, error=str(e)[:200])
    handoffs.label_processed(services, sync.mailbox, sync.gmail, sync.processed)
    watch.maybe_watch(services, sync.mailbox, sync.gmail, sync.sync_state, force=mode == "first")


class HandOffs:
    """The hand-offs after the commit that need no lease: the new tickets' acknowledgements
    (only queued; the outbox sends them, docs/outbox.md) and ingestion's units in the quota
    bucket. Between two passes of one run (run.py, `after_pass`) they go to a worker thread, so
    the outbox need not wait for a long run's end and the next pass need not wait for them; the
    units at most every INGESTION_RECORD_SECONDS (one pacing write a run otherwise). `finish`,
    after the lease's release, waits for them and hands off the last pass's."""

    def __init__(self, services: PollPorts, sync: MailboxSync):
        self.services, self.sync = services, sync
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"handoffs-{sync.name}")
        self.recorded, self.recorded_at = 0, time.monotonic()
        self.waiting: list[tuple[list, object]] = []  # (new tickets, their pass's listing) for finish

    def __call__(self) -> None:
        tickets, found, self.sync.new_tickets = self.sync.new_tickets, self.sync.listing, []
        if not self.services.settings.work_topic:
            # no work queue: a "send" task runs in its caller (outbox.InlineQueue), after the run
            self.waiting.append((tickets, found))
            return
        due = time.monotonic() - self.recorded_at >= INGESTION_RECORD_SECONDS
        self.pool.submit(self._hand_off, tickets, found, self._units() if due else 0)

    def finish(self) -> None:
        self.pool.shutdown(wait=True)
        self.waiting.append((self.sync.new_tickets, self.sync.listing))
        self.sync.new_tickets = []
        units = self._units()
        for tickets, found in self.waiting:
            self._hand_off(tickets, found, units)
            units = 0

    def _units(self) -> int:
        used = self.sync.gmail.pacer.used if self.sync.gmail is not None else 0
        units, self.recorded, self.recorded_at = used - self.recorded, used, time.monotonic()
        return units

    def _hand_off(self, tickets: list, found, units: int) -> None:
        try:
            handoffs.record_ingestion(self.services, self.sync.mailbox, units, tickets)
            handoffs.queue_acknowledgements(self.services, self.sync.mailbox, tickets, found)
        except Exception as e:  # noqa: BLE001 - both are durable or advisory: never fail the run
            log_event("WARNING", "hand-off failed", mailbox=self.sync.name, error=f"{e.__class__.__name__}")


def make_ticket_from_spam(services: PollPorts, name: str, gmail_id: str) -> dict:
    """An admin's "make a ticket" of a message the mailbox page lists as left in Spam: it is
    ingested like inbox mail (a ticket, or the ticket it threads to) and moved to the inbox."""
    spam.listed(services.store.get_sync(name, services.settings.instance), gmail_id)
    return sync_mailbox(services, name, from_spam=(gmail_id,), lease_wait_s=5.0)


def _continue(services: SyncPorts, name: str, task: dict | None) -> None:
    """Work left after the budget: a continuation task picks it up in a fresh invocation (a
    duplicate of it only costs a history.list)."""
    step = int((task or {}).get("continuation") or 0) + 1
    try:
        services.queue.publish("sync", name, {"continuation": str(step)})
    except Exception as e:  # noqa: BLE001 - the next tick or notification continues instead
        log_event("WARNING", "continuation not queued", mailbox=name, error=f"{e.__class__.__name__}: {str(e)[:200]}")
