"""Firestore repository of outgoing mail: outbound records, send budgets, the outbox's pacing
and acknowledgement limits. Mixed into Store (adapters/firestore/store.py).

Layout (collection/doc):
  outbound/{key}                     a message we sent or will send, keyed by idempotency key
  send_budget/{mailbox}~{day}        messages sent by a mailbox on a UTC day
  send_pacing/{mailbox}~{instance}   the outbox's quota bucket, drain lease and last error
  ack_limits/{sha256(key)}~{hour}~{shard}  a share of the acknowledgements to a recipient (or a
                                     mailbox's "@domain") in an hour: a counter in ACK_SHARDS shards
Counters carry `expires_at`: Firestore's TTL policy on that field deletes them (terraform/README.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib
import random

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository

UNSENT = ["queued", "pending", "sending", "failed"]
# An hour's acknowledgement counter is split in this many shards (of at least one acknowledgement
# each): a domain's 200 an hour write each shard at most 10 times, never one document per ticket.
ACK_SHARDS = 20
BUDGET_KEPT = timedelta(days=2)  # a day's count outlives the day (for `mailbox show`); TTL after that


class OutboundRepository(FirestoreRepository):
    # -- outbound records ------------------------------------------------------------------
    def outbound_ref(self, key: str):
        return self.db.collection("outbound").document(key)

    def get_outbound(self, key: str) -> dict | None:
        snap = self.outbound_ref(key).get()
        return snap.to_dict() if snap.exists else None

    def update_outbound(self, key: str, changes: dict) -> None:
        """Merge `changes`; dotted keys ("message.gmail_message_id") update nested fields."""
        self.outbound_ref(key).update(changes)
        self.write_count += 1

    def create_outbound(self, key: str, record: dict) -> bool:
        """Write a new record and put its Message-ID on its ticket, in one batch.
        False when a record with this key already exists (nothing written)."""
        batch = self.db.batch()
        batch.create(self.outbound_ref(key), record)
        batch.update(self.db.collection("tickets").document(str(record["ticket_id"])),
                     {"message_ids": firestore.ArrayUnion([record["message_id"]])})
        try:
            batch.commit()
        except gexc.AlreadyExists:
            return False
        self.write_count += 2
        return True

    def change_outbound(self, key: str, decide):
        """Read-modify-write of one record in a transaction. `decide(record or None)` returns
        (result, changes or None); the changes are written only if the record did not change
        meanwhile. Returns (result, the record as read)."""
        ref = self.outbound_ref(key)
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            data = snap.to_dict() if snap.exists else None
            result, changes = decide(data)
            if changes:
                tx.update(ref, changes)
            return result, bool(changes), data or {}

        result, wrote, data = run(transaction)
        if wrote:
            self.write_count += 1
        return result, data

    def commit_sent(self, key: str, decide):
        """A record's sent transition with its ticket's references and the event of the send, in
        one transaction: `decide(record or None, ticket or None)` returns (result, record changes,
        ticket changes, event document (id, fields)), each None for nothing to write."""
        ref = self.outbound_ref(key)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            record = snap.to_dict() if snap.exists else None
            ticket_ref = self.ticket_ref(record["ticket_id"]) if record and record.get("ticket_id") else None
            ticket_snap = ticket_ref.get(transaction=tx) if ticket_ref else None
            ticket = ticket_snap.to_dict() if ticket_snap is not None and ticket_snap.exists else None
            result, changes, ticket_changes, event_document = decide(record, ticket)
            if changes:
                tx.update(ref, changes)
            if ticket_changes and ticket is not None:
                tx.update(ticket_ref, ticket_changes)
            if event_document:
                tx.create(self.events_ref(event_document[0]), event_document[1])
            return result, bool(changes) + bool(ticket_changes and ticket is not None) + bool(event_document)

        return self.run_contended(run, f"outbound/{key}")

    def unsent_outbound(self, limit: int = 500) -> list[dict]:
        """Records not sent yet (pending, sending or failed), any instance."""
        query = self.db.collection("outbound").where(filter=FieldFilter("status", "in", UNSENT))
        return [snap.to_dict() for snap in query.limit(limit).stream()]

    # -- send budgets ----------------------------------------------------------------------
    def _budget_ref(self, mailbox: str, day: str):
        return self.db.collection("send_budget").document(f"{mailbox}~{day}")

    def send_budget_used(self, mailbox: str, day: str) -> int:
        return int((self._budget_ref(mailbox, day).get().to_dict() or {}).get("count", 0))

    def take_send_budget(self, mailbox: str, day: str, budget: int, count: int = 1) -> tuple[int, int]:
        """Count up to `count` sends while fewer than `budget` were counted today: (how many were
        taken, 0 when the budget is spent; the count before). The outbox takes a block of them at
        once (services/outgoing/budget.Allowance): one write per block, not per send."""
        ref = self._budget_ref(mailbox, day)
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            used = int((ref.get(transaction=tx).to_dict() or {}).get("count", 0))
            taken = max(0, min(count, budget - used))
            if not taken:
                return 0, used
            expires = _day_end(day, BUDGET_KEPT.days)
            tx.set(ref, {"mailbox": mailbox, "date": day, "count": used + taken, "expires_at": expires})
            return taken, used

        taken, used = run(transaction)
        if taken:
            self.write_count += 1
        return taken, used

    def release_send_budget(self, mailbox: str, day: str, count: int = 1) -> None:
        self._budget_ref(mailbox, day).update({"count": firestore.Increment(-count)})
        self.write_count += 1

    # -- the outbox ------------------------------------------------------------------------
    def outbox_records(self, mailbox: str, instance: str, kind: str | None = None,
                       statuses: tuple = ("queued", "pending", "sending", "failed")) -> list[dict]:
        """One mailbox's records in `statuses` (equality filters only: no composite index)."""
        query = (self.db.collection("outbound").where(filter=FieldFilter("mailbox", "==", mailbox))
                 .where(filter=FieldFilter("instance", "==", instance))
                 .where(filter=FieldFilter("status", "in", list(statuses))))
        if kind:
            query = query.where(filter=FieldFilter("kind", "==", kind))
        return [snap.to_dict() for snap in query.stream()]

    def get_send_pacing(self, key: str) -> dict | None:
        snap = self.db.collection("send_pacing").document(key).get()
        return snap.to_dict() if snap.exists else None

    def change_send_pacing(self, key: str, decide):
        """Read-modify-write of one pacing document in a transaction; returns decide's result."""
        ref = self.db.collection("send_pacing").document(key)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            result, changes = decide(snap.to_dict() if snap.exists else None)
            if changes:
                tx.set(ref, changes, merge=True)
            return result, int(bool(changes))

        return self.run_contended(run, f"send_pacing/{key}")

    # -- acknowledgement limits --------------------------------------------------------------
    def take_acknowledgement_slot(self, recipient: str, hour: str, limit: int) -> bool:
        """Count one acknowledgement to `recipient` in `hour` if fewer than `limit` were."""
        return self.take_acknowledgement_slots([(recipient, limit)], hour) is None

    def take_acknowledgement_slots(self, counters: list[tuple[str, int]], hour: str) -> str | None:
        """Count one acknowledgement on every (key, limit) counter of `hour` (an address, a
        mailbox's "@domain"), all or none: None when counted, else the first key at its limit.

        No counter is one hot document: each is split in up to ACK_SHARDS shards holding a share of
        its limit (ack_shares), and each acknowledgement takes a random shard with room, so a burst
        of one domain's tickets writes each shard at most its share an hour (docs/architecture.md,
        "No hot documents"). The total never exceeds the limit; a counter is full only when every
        shard was seen full."""
        untried = {key: ack_shares(limit) for key, limit in counters}
        for shares in untried.values():
            random.shuffle(shares)
        while True:
            if any(not shares for shares in untried.values()):
                return next(key for key, shares in untried.items() if not shares)
            picks = [(key, shares[0][1], self._ack_ref(key, hour, shares[0][0])) for key, shares in untried.items()]
            full = self._take_ack_shards(picks, hour)
            if full is None:
                return None
            untried[full].pop(0)

    def _ack_ref(self, key: str, hour: str, shard: int):
        return self.db.collection("ack_limits").document(f"{hashlib.sha256(key.encode()).hexdigest()[:32]}~{hour}~{shard}")

    def _take_ack_shards(self, picks: list[tuple[str, int, object]], hour: str) -> str | None:
        """One transaction over one shard of each counter: the key of a full shard, or None when
        every shard was counted."""

        @firestore.transactional
        def run(tx):
            used = [int((ref.get(transaction=tx).to_dict() or {}).get("count", 0)) for _key, _share, ref in picks]
            for (key, share, _ref), count in zip(picks, used):
                if count >= share:
                    return key, 0
            expires = datetime.now(timezone.utc) + timedelta(hours=2)
            for (key, _share, ref), count in zip(picks, used):
                tx.set(ref, {"recipient": key, "hour": hour, "count": count + 1, "expires_at": expires})
            return None, len(picks)

        return self.run_contended(run, "ack_limits")


def ack_shares(limit: int) -> list[tuple[int, int]]:
    """(shard, its share of `limit`) for every shard with a share: the shares add up to `limit`."""
    shards = max(1, min(ACK_SHARDS, limit))
    return [(shard, limit // shards + (shard < limit % shards)) for shard in range(shards) if limit > 0]


def _day_end(day: str, days_after: int) -> datetime:
    """Midnight UTC `days_after` days after the UTC day `day` (YYYY-MM-DD): when a counter may go."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc) + timedelta(days=days_after)
