"""Firestore repository of the inbound log: one row per Gmail message seen, the exactly-once
log AND the stored message; a chunk of rows commits with its tickets in one batch.

Layout: inbound/{name}~{gmail_id}   outcome, attempts, ticket id and the parsed message
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository, inbound_key
from mailbridge.domain import copies, events, models
from mailbridge.errors import NotFound, StoreUnavailable, WriteConflict


class InboundRepository(FirestoreRepository):
    def inbound_ref(self, mailbox: str, gmail_id: str):
        return self.db.collection("inbound").document(inbound_key(mailbox, gmail_id))

    def copy_ref(self, key: str):
        return self.db.collection("message_copies").document(key)

    def message_copies(self, keys: list[str]) -> dict[str, str]:
        """The ticket each claimed copy key belongs to (domain/copies.py)."""
        refs = [self.copy_ref(key) for key in dict.fromkeys(keys)]
        found = {}
        for i in range(0, len(refs), 300):
            for snap in self.db.get_all(refs[i:i + 300], field_paths=["ticket_id"]):
                if snap.exists:
                    found[snap.id] = snap.get("ticket_id")
        return found

    def get_inbound_rows(self, mailbox: str, gmail_ids: list[str]) -> dict[str, dict]:
        refs = [self.inbound_ref(mailbox, gid) for gid in gmail_ids]
        found = {}
        for i in range(0, len(refs), 300):
            for snap in self.db.get_all(refs[i:i + 300], field_paths=["gmail_message_id", "outcome", "attempts", "unfinished", "raw_sha256",
                                                                 "gmail_thread_id", "gmail_internal_date"]):
                if snap.exists:
                    # the version lets a retry of a failed row commit only if nobody else did
                    found[snap.get("gmail_message_id")] = {**snap.to_dict(), "_update_time": snap.update_time}
        return found

    INBOUND_LOG_FIELDS = ["gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts",
                          "processed_at", "subject", "from_email", "mailbox", "defects", "authentication", "raw_sha256"]

    def inbound_log(self, mailbox: str, limit: int = 500, before: str | None = None) -> list[dict]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox))
        if before is not None:
            query = query.where(filter=FieldFilter("processed_at", "<", before))
        query = query.order_by("processed_at", direction=firestore.Query.DESCENDING)
        if limit:
            query = query.limit(limit)
        return [s.to_dict() for s in query.select(self.INBOUND_LOG_FIELDS).stream()]

    def inbound_since(self, mailbox: str, since: str) -> list[dict]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox)).where(
            filter=FieldFilter("processed_at", ">=", since))
        query = query.order_by("processed_at", direction=firestore.Query.DESCENDING)
        return [s.to_dict() for s in query.select(self.INBOUND_LOG_FIELDS).stream()]

    def _change_open_row(self, mailbox: str, gmail_id: str, change, final_too: bool = False) -> dict:
        """Read-modify-write of an inbound row in one transaction; `change(data)` gives the
        fields to merge. A final row is returned unchanged (unless `final_too`). A row that
        becomes quarantined gets its inbound.quarantined event in the same commit."""
        ref = self.inbound_ref(mailbox, gmail_id)

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("outcome") in models.FINAL_INBOUND_OUTCOMES and not final_too:
                return data, 0
            row = change(data)
            after = {**data, **row}
            event = events.inbound_quarantined(data, after, mailbox, gmail_id, models.now_iso())
            if event:  # the quarantine's event, in the same commit (docs/events.md)
                row[events.SEQUENCE_FIELD] = after[events.SEQUENCE_FIELD]
                document_id, document = events.batch([event], mailbox, event["time"],
                                                     events.retention_days(self.settings()))
                tx.create(self.events_ref(document_id), document)
            tx.set(ref, row, merge=True)
            return after, 1 + bool(event)

        row, writes = run(self.db.transaction())
        self.write_count += writes
        return row

    def record_failure(self, mailbox: str, gmail_id: str, reason: str, max_attempts: int) -> dict:
        """Count a failed attempt; quarantine after max_attempts. Never overwrites a final row."""
        return self._change_open_row(mailbox, gmail_id, lambda data: models.failed_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def begin_attempt(self, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
        """Count an attempt before risky work (the row stays `failed` + `unfinished` until the
        work ends); an unfinished row that already used up max_attempts becomes quarantined."""
        return self._change_open_row(mailbox, gmail_id, lambda data: models.begun_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def retry_quarantined(self, mailbox: str, gmail_id: str) -> None:
        ref = self.inbound_ref(mailbox, gmail_id)
        snap = ref.get()
        if not snap.exists or snap.get("outcome") != "quarantined":
            raise NotFound(f"no quarantined message {gmail_id!r} in mailbox {mailbox!r}")
        ref.update({"outcome": "failed", "attempts": 0, "unfinished": False, "reason": "retry requested by an admin"})
        self.write_count += 1

    def failed_rows(self, mailbox: str) -> list[str]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox)).where(
            filter=FieldFilter("outcome", "==", "failed"))
        return [s.get("gmail_message_id") for s in query.select(["gmail_message_id"]).stream()]

    def put_inbound_row(self, mailbox: str, gmail_id: str, row: dict) -> None:
        """Merge `row` into an inbound row (StoreUnavailable if Firestore refuses); a row it
        quarantines gets its event in the same commit, as every quarantine does."""
        try:
            if row.get("outcome") == "quarantined":
                self._change_open_row(mailbox, gmail_id, lambda data: dict(row), final_too=True)
                return
            self.inbound_ref(mailbox, gmail_id).set(row, merge=True)
        except gexc.GoogleAPICallError as e:
            raise StoreUnavailable(f"inbound row not written ({e.__class__.__name__})") from e
        self.write_count += 1

    def commit_inbound_chunk(self, mailbox: str, rows: list[tuple[str, dict, object]],
                             tickets: list[tuple[str, dict, object]],
                             event_document: tuple[str, dict] | None = None,
                             claims: list[tuple[str, dict]] = ()) -> int:
        """One batch for a chunk of messages, all or nothing. `rows`: (gmail_id, row, version of
        the earlier row or None); `tickets`: (ticket_id, ticket, version read or None for a new
        one); `event_document`: (id, fields) of the chunk's events (docs/events.md), created;
        `claims`: (copy key, {"ticket_id", ...}) of messages that may be in another mailbox too
        (domain/copies.py), created: a second mailbox's concurrent commit of the same message fails.
        New documents are created (fail if present); earlier ones are updated only if
        unchanged since read, and a retried row loses its `unfinished` mark. WriteConflict if
        another writer came first. Returns the number of documents written."""
        batch = self.db.batch()
        if event_document:
            batch.create(self.events_ref(event_document[0]), event_document[1])
        for gmail_id, row, version in rows:
            ref = self.inbound_ref(mailbox, gmail_id)
            if version is not None:  # a failed earlier attempt left a row: guard on its version
                batch.update(ref, {**row, "unfinished": firestore.DELETE_FIELD},
                             option=self.db.write_option(last_update_time=version))
            else:
                batch.create(ref, row)
        for ticket_id, ticket, version in tickets:
            if version is not None:  # precondition: nobody changed the ticket since we read it
                batch.update(self.ticket_ref(ticket_id), ticket, option=self.db.write_option(last_update_time=version))
            else:
                batch.create(self.ticket_ref(ticket_id), ticket)
        expires = datetime.now(timezone.utc) + timedelta(days=copies.CLAIM_DAYS)  # the TTL policy's field
        for key, claim in claims:
            batch.create(self.copy_ref(key), {**claim, "expires_at": expires})
        writes = len(rows) + len(tickets) + bool(event_document) + len(claims)
        if not writes:
            return 0
        try:
            batch.commit()
        except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict) as e:
            raise WriteConflict(e.__class__.__name__) from e
        self.write_count += writes
        return writes
