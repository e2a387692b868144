"""The outbox: every outgoing message is a durable outbound record first, then sent by the "send"
task of the managed queue (docs/outbox.md) — never by ingestion or a push notification's sync.

One drainer per mailbox at a time (a short lease on the mailbox's pacing document) sends the
queued records in priority order: agents' replies, then acknowledgements, oldest first. Before
each send it adds 100 units to the mailbox's rolling minute of Gmail units, a document shared with ingestion
(which draws on it first and never waits), honours a 429's retry time, and checks the daily
budget (acknowledgements only up to their share, so the rest always remains for replies).

The first part of this module is pure (the quota arithmetic); the rest talks to the store, the
queue and Gmail through `services`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import re
import time
import uuid

from mailbridge.domain import models, routing
from mailbridge.errors import InvalidInput, MailbridgeError, NotFound, TokenRevoked, WriteConflict
from mailbridge.logs import log_event
from mailbridge.services import mailboxes, outgoing
from mailbridge.services.ports import OutboxPorts

SEND_UNITS = 100                 # messages.send
# One rolling minute of Gmail units per mailbox, as Gmail counts its per-user quota: sends keep the
# minute within 97 % of the quota, ingestion and sends counted together (docs/outbox.md).
WINDOW_SECONDS = 60.0
SAFETY = 0.97
INGESTION_WINDOW_SECONDS = 30.0  # acknowledgements keep to their share this long after ingestion drew units
SPREAD_SECONDS = 10.0            # ... and take at most a sixth of it per ten seconds meanwhile
DRAIN_LEASE_SECONDS = 30.0       # renewed at half time: a dead drainer is replaced within it
PACING_RETRIES = 5               # a pacing document busy with syncs' writes: tries before giving up
WAIT_STEP_SECONDS = 2.0          # longest sleep between looks for a newly queued reply
RATE_LIMIT_DEFAULT_SECONDS = 5.0  # a 429 without a retry time: Gmail's backoff starts at 1 s
PRIORITY = {"reply": 0, "acknowledgement": 1}
WAITING = ("queued", "pending", "failed", "sending")  # records the outbox still owes a send
LISTED = WAITING + ("given_up",)


class RetryLater(MailbridgeError):
    """The send task should be redelivered later (the HTTP edge answers 429)."""

    http_status = 429


# ============================================================ pure: the quota ledger
# The pacing document holds `window`: per second of the last minute, {"at": second, "units":
# ingestion's and the sends' units, "sends": the sends' part} (Firestore stores no array inside
# an array), so every process that calls Gmail for the mailbox sees what the others spent. The
# arithmetic below works on [second, units, send units] lists.
def window_of(bucket: dict | None, now: float) -> list[list[float]]:
    """The entries still inside the rolling minute at `now`, oldest first."""
    entries = ([float(e.get("at", 0)), float(e.get("units", 0)), float(e.get("sends", 0))]
               for e in (bucket or {}).get("window") or [] if isinstance(e, dict))
    return sorted((e for e in entries if e[0] + 1 > now - WINDOW_SECONDS), key=lambda e: e[0])


def _with(window: list[list[float]], now: float, units: float, send_units: float) -> list[dict]:
    """The stored form of `window` with `units` (of which `send_units` for sends) added at `now`."""
    second = float(int(now))
    window = [list(e) for e in window]
    if window and window[-1][0] == second:
        window[-1][1] += units
        window[-1][2] += send_units
    else:
        window.append([second, units, send_units])
    return [{"at": at, "units": used, "sends": sends} for at, used, sends in window]


def _ingesting(bucket: dict, now: float) -> bool:
    """Ingestion drew units within the last INGESTION_WINDOW_SECONDS: acknowledgements keep to their share."""
    ingested_at = bucket.get("ingested_at")
    return ingested_at is not None and now - float(ingested_at) < INGESTION_WINDOW_SECONDS


def _wait_to_free(window: list[list[float]], now: float, excess: float, column: int,
                  horizon: float = WINDOW_SECONDS) -> float:
    """Seconds until entries holding at least `excess` units (of `column`) leave the last
    `horizon` seconds."""
    freed = 0.0
    for entry in window:
        freed += entry[column]
        if freed >= excess:
            return entry[0] + 1 + horizon - now
    return horizon


def take_decision(bucket: dict | None, now: float, quota_per_minute: int, share: float, kind: str):
    """(seconds to wait, changes): 0 and the new window when one send may go now.

    Every send keeps the rolling minute (ingestion and sends together) within 97 % of the quota.
    While ingestion is working (it drew units in the last INGESTION_WINDOW_SECONDS), an
    acknowledgement also keeps the minute within the sends' share, leaving the rest for new
    mail, and acknowledgements spread over the minute (a sixth of the share per ten seconds)
    instead of taking it at once, ahead of the mail still arriving. An agent's reply is held by
    the quota alone, and an acknowledgement leaves one send's worth for it."""
    bucket = bucket or {}
    blocked = float(bucket.get("blocked_until") or 0)
    if blocked > now:
        return blocked - now, None
    window = window_of(bucket, now)
    limit = max(1, quota_per_minute) * SAFETY
    need = SEND_UNITS if kind == "reply" else 2 * SEND_UNITS
    used = sum(e[1] for e in window)
    waits = []
    if used + need > limit:
        waits.append(_wait_to_free(window, now, used + need - limit, 1))
    if kind != "reply" and _ingesting(bucket, now):
        quiet_in = float(bucket["ingested_at"]) + INGESTION_WINDOW_SECONDS - now
        if used + need > limit * share:
            waits.append(min(_wait_to_free(window, now, used + need - limit * share, 1), quiet_in))
        recent = [e for e in window if e[0] + 1 > now - SPREAD_SECONDS]
        recent_sends = sum(e[2] for e in recent)
        allowed = limit * share * SPREAD_SECONDS / WINDOW_SECONDS
        if recent_sends + SEND_UNITS > allowed:
            waits.append(min(_wait_to_free(recent, now, recent_sends + SEND_UNITS - allowed, 2, SPREAD_SECONDS),
                             quiet_in))
    if waits:
        return max(max(waits), 0.05), None
    return 0.0, {"window": _with(window, now, SEND_UNITS, SEND_UNITS)}


def spend_decision(bucket: dict | None, now: float, quota_per_minute: int, share: float, units: int):
    """Ingestion's units go into the minute first, whatever it holds (ingestion never waits),
    and hold acknowledgements to their share for the next INGESTION_WINDOW_SECONDS."""
    return units, {"window": _with(window_of(bucket, now), now, units, 0.0), "ingested_at": now}


def lease_decision(bucket: dict | None, now: float, owner: str, ttl: float):
    bucket = bucket or {}
    if bucket.get("drain_owner") not in (None, owner) and float(bucket.get("drain_until") or 0) > now:
        return False, None
    return True, {"drain_owner": owner, "drain_until": now + ttl}


def retry_at(error_text: str, now: float) -> float:
    """When Gmail said to come back ("… Retry after 2026-12-02T10:15:01.123Z"), else soon."""
    match = re.search(r"Retry after (\d{4}-\d\d-\d\dT[0-9:.]+)Z?", error_text or "")
    if match:
        try:
            return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    return now + RATE_LIMIT_DEFAULT_SECONDS


def next_utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def send_order(record: dict) -> tuple:
    return (PRIORITY.get(record.get("kind"), 1), record.get("created_at") or "", record.get("key") or "")


def is_due(record: dict, now: float) -> bool:
    status = record.get("status")
    if status == "sending":
        return float(record.get("lease_until") or 0) <= now  # its sender died: the claim looks it up
    return status in ("queued", "pending", "failed") and float(record.get("next_attempt_at") or 0) <= now


# ============================================================ settings of a mailbox
def quota_of(mailbox: dict) -> tuple[int, float]:
    settings = models.outgoing_settings(mailbox)
    return int(settings["gmail_quota_units_per_minute"]), int(settings["send_share_percent"]) / 100.0


def daily_limits(mailbox: dict) -> tuple[int, int]:
    """(daily budget, the part of it acknowledgements may use)."""
    settings = models.outgoing_settings(mailbox)
    budget = int(settings.get("daily_send_budget") or 0)
    return budget, budget * int(settings["acknowledgement_share_percent"]) // 100


def _pacing_key(services: OutboxPorts, mailbox_name: str) -> str:
    return f"{mailbox_name}~{services.settings.instance}"


# ============================================================ the queue
def publish(services: OutboxPorts, mailbox_name: str, reason: str) -> None:
    """Ask the managed queue for a "send" task of this mailbox (one drains all its records)."""
    outgoing.enqueue_send(services, mailbox_name, reason, new_records=False)


def record_ingestion(services: OutboxPorts, mailbox: dict, units: int) -> None:
    """Ingestion's Gmail units, added to the mailbox's rolling minute so sends leave them room."""
    if units <= 0:
        return
    quota, share = quota_of(mailbox)
    now = time.time()
    services.store.change_send_pacing(_pacing_key(services, mailbox["name"]),
                                      lambda bucket: spend_decision(bucket, now, quota, share, units))


def kick_if_waiting(services: OutboxPorts, mailbox: dict) -> bool:
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
        self.key = _pacing_key(services, self.name)
        self.deadline = time.monotonic() + services.settings.push_time_budget_s
        self.counts = {"sent": 0, "skipped": 0, "failed": 0, "waiting": 0}
        self.gmail = None
        self.batch: list[dict] = []
        self.wake_at: float | None = None
        self.last_error: str | None = None
        self.lease_until = 0.0  # when this drainer's lease on the pacing document runs out

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

    def release(self) -> None:
        changes = {"drain_owner": None, "drain_until": 0, "last_error": self.last_error,
                   "last_drain_at": models.now_iso()}

        def decide(bucket):
            return None, (changes if (bucket or {}).get("drain_owner") == self.owner else None)

        self._pace(decide)
        # the safety net the scheduled tick reads: when to look again (None: nothing waits)
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
        quota, share = quota_of(self.mailbox)
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
            now = time.time()
            wait = self._pace(lambda bucket: take_decision(bucket, now, quota, share, record.get("kind")))
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

    def _renew(self) -> None:
        """Push the drain lease ahead once half of it has passed (not before every send: each
        write of the pacing document competes with the syncs recording their units)."""
        now = time.time()
        if now < self.lease_until - DRAIN_LEASE_SECONDS / 2:
            return
        if self._pace(lambda bucket: lease_decision(bucket, now, self.owner, DRAIN_LEASE_SECONDS)):
            self.lease_until = now + DRAIN_LEASE_SECONDS

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
        budget, ack_budget = daily_limits(self.mailbox)
        used = self.store.send_budget_used(self.name, outgoing._today())
        kind = record.get("kind")
        if kind == "acknowledgement" and used >= ack_budget:
            reason = (f"daily send budget: acknowledgements may use {ack_budget} of {budget} messages a day "
                      f"(outgoing.acknowledgement_share_percent); {used} sent today, the rest is kept for replies")
            self.store.update_outbound(record["key"], {"status": "skipped", "last_error": reason,
                                                       "updated_at": models.now_iso()})
            self.counts["skipped"] += 1
            log_event("INFO", "acknowledgement skipped", mailbox=self.name, key=record["key"], reason=reason)
            return True
        if kind != "acknowledgement" and used >= budget:
            tomorrow = next_utc_midnight(time.time())
            reason = (f"daily send budget reached ({used}/{budget} messages today, UTC): queued until "
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
            result = outgoing.deliver(self.services, record["key"], gmail=self.gmail)
        except outgoing.RateLimited as e:
            until = retry_at(str(e), time.time())
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


# ============================================================ visibility and operator actions
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
    budget, _ack = daily_limits(mailbox)
    pacing = store.get_send_pacing(_pacing_key(services, mailbox["name"])) or {}
    last_error = pacing.get("last_error")
    if not last_error:
        errors = sorted((r for r in records if r.get("last_error")), key=lambda r: r.get("updated_at") or "")
        last_error = errors[-1]["last_error"] if errors else None
    reason = routing.unusable_reason(mailbox, mailbox["name"], services.settings.instance)
    if reason and queued:
        last_error = f"sends wait: {reason}"
    return {"queued": len(queued), "oldest_queued_age_s": round(max(ages)) if ages else None,
            "sent_today": store.send_budget_used(mailbox["name"], outgoing._today()), "daily_budget": budget,
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
    publish(services, record["mailbox"], "retry")
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


class InlineQueue:
    """Where no work queue is wired (MAILBRIDGE_WORK_TOPIC unset: a CLI against a project without
    the queue, the in-process integration tests) a "send" task runs in the caller, after the
    caller's own work; "sync" tasks are left to the next scheduled poll."""

    def __init__(self, services: OutboxPorts):
        self.services = services

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        if kind != "send":
            return
        try:
            handle_send_task(self.services, mailbox, attributes)
        except RetryLater as e:
            log_event("WARNING", "outbox send deferred", mailbox=mailbox, reason=str(e))

    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None:
        for mailbox, attributes in tasks:
            self.publish(kind, mailbox, attributes)
