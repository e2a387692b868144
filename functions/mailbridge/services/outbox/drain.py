"""The "send" task (docs/outbox.md): one drainer per mailbox at a time (a short lease on the
mailbox's pacing document) sends its due records in priority order: agents' replies, then
acknowledgements, oldest first. Before each send it checks the daily budget (services/outgoing/
budget.py), takes room in the rolling minute of Gmail units (pacing.py) and honours a 429's retry
time; `delivery.deliver` sends each record exactly once. Also the wake-ups: asking for a send task
and the scheduled tick's safety net.
"""

from __future__ import annotations

from datetime import datetime, timezone
import time
import uuid

from mailbridge.domain import models, routing
from mailbridge.errors import InvalidInput, MailbridgeError, NotFound, TokenRevoked, WriteConflict
from mailbridge.logs import log_event
from mailbridge.services import events, mailboxes
from mailbridge.services.outbox import pacing
from mailbridge.services.outgoing import budget, delivery, records
from mailbridge.services.ports import OutboxPorts, SendTaskPorts

DRAIN_LEASE_SECONDS = 30.0       # renewed at half time: a dead drainer is replaced within it
PACING_RETRIES = 5               # a pacing document busy with syncs' writes: tries before giving up
WAIT_STEP_SECONDS = 2.0          # longest sleep between looks for a newly queued reply
PRIORITY = {"reply": 0, "acknowledgement": 1}


class RetryLater(MailbridgeError):
    """The send task should be redelivered later (the HTTP edge answers 429)."""

    http_status = 429


# ============================================================ pure: the drain lease and the order
def lease_decision(bucket: dict | None, now: float, owner: str, ttl: float):
    bucket = bucket or {}
    if bucket.get("drain_owner") not in (None, owner) and float(bucket.get("drain_until") or 0) > now:
        return False, None
    return True, {"drain_owner": owner, "drain_until": now + ttl}


def send_order(record: dict) -> tuple:
    return (PRIORITY.get(record.get("kind"), 1), record.get("created_at") or "", record.get("key") or "")


def is_due(record: dict, now: float) -> bool:
    status = record.get("status")
    if status == "sending":
        return float(record.get("lease_until") or 0) <= now  # its sender died: the claim looks it up
    return status in ("queued", "pending", "failed") and float(record.get("next_attempt_at") or 0) <= now


# ============================================================ wake-ups
def publish(services: SendTaskPorts, mailbox_name: str, reason: str) -> None:
    """Ask the managed queue for a "send" task of this mailbox (one drains all its records)."""
    records.enqueue_send(services, mailbox_name, reason, new_records=False)


def kick_if_waiting(services: SendTaskPorts, mailbox: dict) -> bool:
    """The scheduled poll's safety net: publish a send task when the outbox asked to be woken."""
    wake_at = mailbox.get("outbox_wake_at")
    if wake_at is None or float(wake_at) > time.time():
        return False
    services.store.update_mailbox(mailbox["name"], {"outbox_wake_at": None})
    publish(services, mailbox["name"], "wake")
    return True


# ============================================================ the send task
def handle_send_task(services: OutboxPorts, mailbox: str, attributes: dict | None = None) -> dict:
    """Drain one mailbox's outbox within the time budget. Returns a summary (the HTTP edge answers
    2xx); raises RetryLater when Pub/Sub should redeliver (a 429 block longer than the budget)."""
    store = services.store
    try:
        box = store.get_mailbox(mailbox)
    except NotFound:
        return {"mailbox": mailbox, "status": "done", "reason": "the mailbox no longer exists"}
    drainer = Drainer(services, box)
    while True:
        if not drainer.lease():
            return drainer.summary("busy", "another send task is draining this mailbox; it sees new records")
        try:
            outcome, reason = drainer.run()
        finally:
            drainer.release()
        if outcome == "empty" and drainer.due_now():
            continue  # a record arrived while the lease was being released
        break
    if outcome == "deadline":
        publish(services, mailbox, "continue")
    elif outcome == "blocked":
        raise RetryLater(reason)
    return drainer.summary(outcome, reason)


class Drainer:
    """Sends one mailbox's due records, one at a time, in priority order."""

    def __init__(self, services: OutboxPorts, mailbox: dict):
        self.services, self.store, self.mailbox = services, services.store, mailbox
        self.name = mailbox["name"]
        self.owner = uuid.uuid4().hex
        self.key = pacing.pacing_key(services, self.name)
        self.ingestion_key = pacing.ingestion_key(services, self.name)  # the syncs' units (pacing.py)
        self.deadline = time.monotonic() + services.settings.push_time_budget_s
        self.counts = {"sent": 0, "skipped": 0, "failed": 0, "waiting": 0}
        self.gmail = None
        self.batch: list[dict] = []
        self.wake_at: float | None = None
        self.last_error: str | None = None
        self.lease_until = 0.0  # when this drainer's lease on the pacing document runs out
        # The sends' units since the pacing document was last written: the lease makes this
        # drainer the mailbox's only sender, so it keeps them here and writes them with the lease's
        # renewal and release (every DRAIN_LEASE_SECONDS / 2), not once per send: a burst of
        # acknowledgements then writes the document far less than once a second
        # (docs/architecture.md, "No hot documents"). A drainer that dies loses at most that much
        # of the minute's record; Gmail's 429 covers the rest (it is honoured).
        self.unsaved: list[dict] = []
        self.allowance = budget.Allowance(self.store, self.name)  # today's budget in blocks (budget.py)

    def _pace(self, decide):
        """The pacing document's read-modify-write, tried again while the mailbox's syncs hold
        it (they record their units there): a busy document is a wait, not a failed task."""
        for attempt in range(PACING_RETRIES):
            try:
                return self.store.change_send_pacing(self.key, decide)
            except WriteConflict:
                time.sleep(0.1 * (attempt + 1))
        return self.store.change_send_pacing(self.key, decide)

    # -- lease ------------------------------------------------------------------------------
    def lease(self) -> bool:
        now = time.time()
        taken = self._pace(lambda bucket: lease_decision(bucket, now, self.owner, DRAIN_LEASE_SECONDS))
        if taken:
            self.lease_until = now + DRAIN_LEASE_SECONDS
        return bool(taken)

    def _with_unsaved(self, bucket: dict | None, now: float) -> dict:
        """The pacing document as the other writers left it, with this drainer's unsaved sends."""
        bucket = dict(bucket or {})
        bucket["window"] = [{"at": at, "units": units, "sends": sends}
                            for at, units, sends in pacing.window_of({"window": list(bucket.get("window") or [])
                                                                      + self.unsaved}, now)]
        return bucket

    def _flushed(self, bucket: dict | None, changes: dict) -> dict:
        """`changes` with the unsaved sends written into the document's window."""
        if self.unsaved:
            changes = {**changes, "window": self._with_unsaved(bucket, time.time())["window"]}
        return changes

    def release(self) -> None:
        changes = {"drain_owner": None, "drain_until": 0, "last_error": self.last_error,
                   "last_drain_at": models.now_iso()}

        def decide(bucket):
            return None, (self._flushed(bucket, changes) if (bucket or {}).get("drain_owner") == self.owner else None)

        self._pace(decide)
        self.unsaved = []
        self.allowance.close()
        # the safety net the scheduled tick reads: when to look again (None: nothing waits);
        # unchanged, it is not written again (each send task would write the mailbox otherwise)
        if self.mailbox.get("outbox_wake_at") != self.wake_at:
            self.store.update_mailbox(self.name, {"outbox_wake_at": self.wake_at})

    def summary(self, outcome: str, reason: str | None) -> dict:
        return {"mailbox": self.name, "status": outcome, "reason": reason, **self.counts}

    # -- which record next ---------------------------------------------------------------
    def _records(self, kind: str | None = None) -> list[dict]:
        return self.store.outbox_records(self.name, self.services.settings.instance, kind=kind)

    def due_now(self) -> bool:
        now = time.time()
        return any(is_due(r, now) for r in self._records())

    def _next(self) -> dict | None:
        now = time.time()
        replies = sorted((r for r in self._records("reply") if is_due(r, now)), key=send_order)
        if replies:
            return replies[0]
        if not self.batch:
            records = self._records()
            self.batch = sorted((r for r in records if is_due(r, now)), key=send_order)
            later = [float(r.get("next_attempt_at") or 0) for r in records if not is_due(r, now)
                     and r.get("status") != "sending"]
            if later:
                self.wake_at = min(later)
        return self.batch.pop(0) if self.batch else None

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> tuple[str, str | None]:
        quota, share = pacing.quota_of(self.mailbox)
        record = None
        while True:
            if time.monotonic() >= self.deadline:
                return "deadline", "time budget spent; a continuation task was queued"
            record = record or self._next()
            if record is None:
                return "empty", None
            stop = self._refuse(record)
            if stop:
                return stop
            if self._settled(record):
                record = None
                continue
            wait = self._take_room(quota, share, record.get("kind"))
            if wait > 0:
                if time.monotonic() + wait > self.deadline:
                    if wait > self.services.settings.push_time_budget_s:
                        return "blocked", f"Gmail asked to wait {round(wait)} s (429)"
                    return "deadline", "waiting for quota; a continuation task was queued"
                time.sleep(min(wait, WAIT_STEP_SECONDS))
                if record.get("kind") != "reply":
                    self.batch.insert(0, record)
                    record = None  # look again: a reply may have been queued meanwhile
                continue
            self._renew()
            self._send(record)
            record = None

    def _take_room(self, quota: int, share: float, kind: str | None) -> float:
        """Seconds to wait, or 0 with one send's units taken in the rolling minute: read from the
        pacing document (the syncs' units, an earlier drainer's sends) plus the unsaved sends."""
        now = time.time()
        bucket = pacing.combined(self.store.get_send_pacing(self.key), self.store.get_send_pacing(self.ingestion_key))
        wait, changes = pacing.take_decision(self._with_unsaved(bucket, now), now, quota, share, kind)
        if changes is not None:
            self.unsaved.append({"at": float(int(now)), "units": pacing.SEND_UNITS, "sends": pacing.SEND_UNITS})
        return wait

    def _renew(self) -> None:
        """Push the drain lease ahead once half of it has passed, writing the unsaved sends with it
        (not before every send: each write of the pacing document competes with the syncs
        recording their units, and Firestore sustains about one a second per document)."""
        now = time.time()
        if now < self.lease_until - DRAIN_LEASE_SECONDS / 2:
            return

        def decide(bucket):
            taken, changes = lease_decision(bucket, now, self.owner, DRAIN_LEASE_SECONDS)
            return taken, (self._flushed(bucket, changes) if changes else None)

        if self._pace(decide):
            self.lease_until = now + DRAIN_LEASE_SECONDS
            self.unsaved = []

    def _refuse(self, record: dict):
        """Stop draining when the mailbox cannot send at all (nothing is lost: records wait)."""
        try:
            self.mailbox = self.store.get_mailbox(self.name)
        except NotFound:
            return "empty", "the mailbox no longer exists"
        reason = routing.unusable_reason(self.mailbox, self.name, self.services.settings.instance)
        if reason:
            self.last_error = f"sends wait: {reason}"
            self.wake_at = time.time()  # the next poll of a connected mailbox wakes the outbox
            self.counts["waiting"] += 1
            log_event("WARNING", "outbox waiting", mailbox=self.name, reason=reason)
            return "waiting", self.last_error
        return None

    def _settled(self, record: dict) -> bool:
        """Apply the daily budget: an acknowledgement past its share is skipped, a reply past the
        whole budget waits for the next UTC day. True when the record is not to be sent now."""
        daily_budget, ack_budget = budget.daily_limits(self.mailbox)
        day = budget.today()
        used = self.store.send_budget_used(self.name, day) - self.allowance.unsent(day)
        kind = record.get("kind")
        if kind == "acknowledgement" and used >= ack_budget:
            reason = budget.acknowledgement_share_spent(daily_budget, ack_budget, used)
            self.store.update_outbound(record["key"], {"status": "skipped", "last_error": reason,
                                                       "updated_at": models.now_iso()})
            self.counts["skipped"] += 1
            log_event("INFO", "acknowledgement skipped", mailbox=self.name, key=record["key"], reason=reason)
            return True
        if kind != "acknowledgement" and used >= daily_budget:
            tomorrow = budget.next_utc_midnight(time.time())
            reason = (f"daily send budget reached ({used}/{daily_budget} messages today, UTC): queued until "
                      f"{datetime.fromtimestamp(tomorrow, timezone.utc):%Y-%m-%d %H:%M} UTC, not dropped; "
                      "raise outgoing.daily_send_budget to send sooner")
            self.store.update_outbound(record["key"], {"status": "queued", "next_attempt_at": tomorrow,
                                                       "last_error": reason, "updated_at": models.now_iso()})
            self.last_error = reason
            self.wake_at = min(self.wake_at or tomorrow, tomorrow)
            self.counts["waiting"] += 1
            return True
        return False

    def _send(self, record: dict) -> None:
        try:
            if self.gmail is None:
                credential = mailboxes.own_credential(self.services, self.mailbox)
                self.gmail = self.services.gmail_for(self.mailbox, credential)
            result = delivery.deliver(self.services, record["key"], gmail=self.gmail, allowance=self.allowance)
        except delivery.RateLimited as e:
            until = pacing.retry_at(str(e), time.time())
            self._pace(lambda bucket: (None, {"blocked_until": until}))
            self.last_error = str(e)[:300]
            log_event("WARNING", "outbox rate limited", mailbox=self.name, retry_in_s=round(until - time.time(), 1))
            return
        except TokenRevoked as e:
            self.services.google.mark_revoked(self.name, self.services.settings.instance, str(e))
            self.last_error = str(e)
            return
        except (InvalidInput, MailbridgeError) as e:
            self.counts["failed"] += 1
            self.last_error = str(e)[:300]
            return
        if result.get("status") == "sent":
            self.counts["sent"] += 1
            self.last_error = None
        else:
            self.counts["failed"] += 1
            self.last_error = result.get("error")
            if result.get("next_attempt_at"):
                self.wake_at = min(self.wake_at or result["next_attempt_at"], result["next_attempt_at"])


class InlineQueue:
    """Where no work queue is wired (MAILBRIDGE_WORK_TOPIC unset: a CLI against a project without
    the queue, the in-process integration tests) a "send" or "events" task runs in the caller,
    after the caller's own work; "sync" tasks are left to the next scheduled poll."""

    def __init__(self, services: OutboxPorts):
        self.services = services

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        if kind == "events":
            events.handle_events_task(self.services, mailbox)
        if kind != "send":
            return
        try:
            handle_send_task(self.services, mailbox, attributes)
        except RetryLater as e:
            log_event("WARNING", "outbox send deferred", mailbox=mailbox, reason=str(e))

    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None:
        for mailbox, attributes in tasks:
            self.publish(kind, mailbox, attributes)
