"""In-memory repository of the inbound log: one row per Gmail message seen; a chunk of rows
commits with its tickets all or nothing (as adapters/firestore/inbound.py).

Layout: inbound/{name}~{gmail_id}   outcome, attempts, ticket id and the parsed message
"""

from __future__ import annotations

from google.api_core import exceptions as gexc

from mailbridge.domain import events, models
from mailbridge.errors import NotFound, StoreUnavailable, WriteConflict
from tests.memory.store.base import DELETE, MemoryRepository

# what the Firestore adapter reads of a row (its field masks)
VERSION_FIELDS = ["gmail_message_id", "outcome", "attempts", "unfinished", "raw_sha256", "gmail_thread_id",
                  "gmail_internal_date"]
INBOUND_LOG_FIELDS = ["gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts",
                      "processed_at", "subject", "from_email", "mailbox", "defects", "authentication", "raw_sha256"]


def _key(mailbox: str, gmail_id: str) -> str:
    return f"{mailbox}~{gmail_id}"


class InboundRepository(MemoryRepository):
    def get_inbound_rows(self, mailbox: str, gmail_ids: list[str]) -> dict[str, dict]:
        found = {}
        for gmail_id in gmail_ids:
            row = self._get("inbound", _key(mailbox, gmail_id))
            if row is not None:
                found[row["gmail_message_id"]] = {**{f: row[f] for f in VERSION_FIELDS if f in row},
                                                  "_update_time": self._version("inbound", _key(mailbox, gmail_id))}
        return found

    def message_copies(self, keys: list[str]) -> dict[str, str]:
        found = {key: self._get("message_copies", key) for key in keys}
        return {key: doc["ticket_id"] for key, doc in found.items() if doc is not None}

    def inbound_log(self, mailbox: str, limit: int = 500, before: str | None = None) -> list[dict]:
        filters = [("mailbox", "==", mailbox)] + ([("processed_at", "<", before)] if before is not None else [])
        return self._query("inbound", *filters, order_by="processed_at", descending=True, limit=limit or None,
                           fields=INBOUND_LOG_FIELDS)

    def inbound_since(self, mailbox: str, since: str) -> list[dict]:
        return self._query("inbound", ("mailbox", "==", mailbox), ("processed_at", ">=", since),
                           order_by="processed_at", descending=True, fields=INBOUND_LOG_FIELDS)

    def _change_open_row(self, mailbox: str, gmail_id: str, change, final_too: bool = False) -> dict:
        with self._lock:
            data = self._get("inbound", _key(mailbox, gmail_id)) or {}
            if data.get("outcome") in models.FINAL_INBOUND_OUTCOMES and not final_too:
                return data
            row = change(data)
            after = {**data, **row}
            event = events.inbound_quarantined(data, after, mailbox, gmail_id, models.now_iso())
            writes = []
            if event:
                row[events.SEQUENCE_FIELD] = after[events.SEQUENCE_FIELD]
                document = events.batch([event], mailbox, event["time"], events.retention_days(self.settings()))
                writes.append(("events", *self._new("events", *document)))
            self._write([("inbound", _key(mailbox, gmail_id), self._merged("inbound", _key(mailbox, gmail_id), row))]
                        + writes)
            return after

    def record_failure(self, mailbox: str, gmail_id: str, reason: str, max_attempts: int) -> dict:
        return self._change_open_row(mailbox, gmail_id, lambda data: models.failed_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def begin_attempt(self, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
        return self._change_open_row(mailbox, gmail_id, lambda data: models.begun_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def retry_quarantined(self, mailbox: str, gmail_id: str) -> None:
        with self._lock:
            row = self._get("inbound", _key(mailbox, gmail_id))
            if row is None or row.get("outcome") != "quarantined":
                raise NotFound(f"no quarantined message {gmail_id!r} in mailbox {mailbox!r}")
            self._update("inbound", _key(mailbox, gmail_id),
                         {"outcome": "failed", "attempts": 0, "unfinished": False, "reason": "retry requested by an admin"})

    def failed_rows(self, mailbox: str) -> list[str]:
        rows = self._query("inbound", ("mailbox", "==", mailbox), ("outcome", "==", "failed"), fields=["gmail_message_id"])
        return [r["gmail_message_id"] for r in rows]

    def put_inbound_row(self, mailbox: str, gmail_id: str, row: dict) -> None:
        try:
            if row.get("outcome") == "quarantined":  # with its event, as the adapter
                self._change_open_row(mailbox, gmail_id, lambda data: dict(row), final_too=True)
                return
            self._set_merge("inbound", _key(mailbox, gmail_id), row)
        except gexc.GoogleAPICallError as e:
            raise StoreUnavailable(f"inbound row not written ({e.__class__.__name__})") from e

    def commit_inbound_chunk(self, mailbox: str, rows: list[tuple[str, dict, object]],
                             tickets: list[tuple[str, dict, object]],
                             event_document: tuple[str, dict] | None = None,
                             claims: list[tuple[str, dict]] = ()) -> int:
        """All or nothing: new documents are created, earlier ones updated only if their version
        is the one read (WriteConflict otherwise); a retried row loses its `unfinished` mark; the
        chunk's event document is created with them."""
        writes = [("inbound", _key(mailbox, gmail_id), {**row, "unfinished": DELETE} if version is not None else row,
                   version) for gmail_id, row, version in rows]
        writes += [("tickets", str(ticket_id), ticket, version) for ticket_id, ticket, version in tickets]
        writes += [("events", *event_document, None)] if event_document else []
        writes += [("message_copies", key, claim, None) for key, claim in claims]
        with self._lock:
            documents = [(collection, key, self._precondition(collection, key, data, version))
                         for collection, key, data, version in writes]
            self._write(documents)
        return len(documents)

    def _precondition(self, collection: str, key: str, data: dict, version) -> dict:
        """The document a batch write makes: a create (version None) or an update guarded by the
        version read."""
        current = self._version(collection, key)
        if version is None and current is not None:
            raise WriteConflict(f"AlreadyExists: {collection}/{key}")
        if version is not None and current != version:
            raise WriteConflict(f"FailedPrecondition: {collection}/{key} changed")
        return data if version is None else self._updated(collection, key, data)
