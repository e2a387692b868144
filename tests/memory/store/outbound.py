"""In-memory repository of outgoing mail: outbound records, send budgets, the outbox's pacing and
acknowledgement limits (as adapters/firestore/outbound.py).

Layout: outbound/{key}                     a message we sent or will send, keyed by idempotency key
        send_budget/{mailbox}~{day}        messages sent by a mailbox on a UTC day
        send_pacing/{mailbox}~{instance}   the outbox's quota bucket, drain lease and last error
        ack_limits/{sha256(key)}~{hour}  acknowledgements to a recipient (or a mailbox's "@domain") in an
                                           hour: one document here, shards in Firestore (same limits)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib

from google.api_core import exceptions as gexc

from tests.memory.store.base import MemoryRepository, array_union

UNSENT = ("queued", "pending", "sending", "failed")


def _ack_key(key: str, hour: str) -> str:
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}~{hour}"


class OutboundRepository(MemoryRepository):
    # -- outbound records ------------------------------------------------------------------
    def get_outbound(self, key: str) -> dict | None:
        return self._get("outbound", key)

    def update_outbound(self, key: str, changes: dict) -> None:
        self._update("outbound", key, changes)

    def create_outbound(self, key: str, record: dict) -> bool:
        """The record and its Message-ID on its ticket, in one batch; False if the key exists."""
        with self._lock:
            if self._get("outbound", key) is not None:
                return False
            ticket_id = str(record["ticket_id"])
            ticket = self._updated("tickets", ticket_id, {})  # NotFound: the batch writes nothing
            self._write([("outbound", key, record), ("tickets", ticket_id, {
                **ticket, "message_ids": array_union(ticket.get("message_ids"), [record["message_id"]])})])
            return True

    def change_outbound(self, key: str, decide):
        with self._lock:
            data = self._get("outbound", key)
            result, changes = decide(data)
            if changes:
                self._update("outbound", key, changes)
            return result, data or {}

    def commit_sent(self, key: str, decide):
        """The record's changes, its ticket's and the event document decide returns, all or nothing."""
        with self._lock:
            record = self._get("outbound", key)
            ticket_id = str(record["ticket_id"]) if record and record.get("ticket_id") else None
            ticket = self._get("tickets", ticket_id) if ticket_id else None
            result, changes, ticket_changes, event_document = decide(record, ticket)
            writes = [("outbound", key, self._updated("outbound", key, changes))] if changes else []
            if ticket_changes and ticket is not None:
                writes.append(("tickets", ticket_id, self._updated("tickets", ticket_id, ticket_changes)))
            if event_document:
                writes.append(("events", *self._new("events", *event_document)))
            self._write(writes)
            return result

    def unsent_outbound(self, limit: int = 500) -> list[dict]:
        return self._query("outbound", ("status", "in", list(UNSENT)), limit=limit)

    # -- send budgets ----------------------------------------------------------------------
    def send_budget_used(self, mailbox: str, day: str) -> int:
        return int((self._get("send_budget", f"{mailbox}~{day}") or {}).get("count", 0))

    def take_send_budget(self, mailbox: str, day: str, budget: int, count: int = 1) -> tuple[int, int]:
        with self._lock:
            used = self.send_budget_used(mailbox, day)
            taken = max(0, min(count, budget - used))
            if not taken:
                return 0, used
            expires = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc) + timedelta(days=2)
            self._set("send_budget", f"{mailbox}~{day}", {"mailbox": mailbox, "date": day, "count": used + taken,
                                                          "expires_at": expires})
            return taken, used

    def release_send_budget(self, mailbox: str, day: str, count: int = 1) -> None:
        with self._lock:
            self._update("send_budget", f"{mailbox}~{day}", {"count": self.send_budget_used(mailbox, day) - count})

    # -- the outbox ------------------------------------------------------------------------
    def outbox_records(self, mailbox: str, instance: str, kind: str | None = None,
                       statuses: tuple = ("queued", "pending", "sending", "failed")) -> list[dict]:
        filters = [("mailbox", "==", mailbox), ("instance", "==", instance), ("status", "in", list(statuses))]
        return self._query("outbound", *filters, *([("kind", "==", kind)] if kind else []))

    def get_send_pacing(self, key: str) -> dict | None:
        return self._get("send_pacing", key)

    def change_send_pacing(self, key: str, decide):
        with self._lock:
            result, changes = decide(self._get("send_pacing", key))
            if changes:
                self._set_merge("send_pacing", key, changes)
            return result

    # -- acknowledgement limits --------------------------------------------------------------
    def take_acknowledgement_slot(self, recipient: str, hour: str, limit: int) -> bool:
        return self.take_acknowledgement_slots([(recipient, limit)], hour) is None

    def take_acknowledgement_slots(self, counters: list[tuple[str, int]], hour: str) -> str | None:
        with self._lock:
            used = [int((self._get("ack_limits", _ack_key(key, hour)) or {}).get("count", 0)) for key, _limit in counters]
            for (key, limit), count in zip(counters, used):
                if count >= limit:
                    return key
            expires = datetime.now(timezone.utc) + timedelta(hours=2)
            self._write([("ack_limits", _ack_key(key, hour), {"recipient": key, "hour": hour, "count": count + 1,
                                                              "expires_at": expires})
                         for (key, _limit), count in zip(counters, used)])
            return None
