"""In-memory repository of the ticket event log (as adapters/firestore/events.py): one document per
commit, written by the change's own method; here the publisher's and the operators' reads and the
mark.

Layout: events/{first event id}   events, mailbox, subjects, count, created_at, published, expires_at
"""

from __future__ import annotations

from tests.memory.store.base import MemoryRepository
from tests.memory.store.base import _matches as matches

MESSAGE_ROW_FIELDS = ("message", "status", "mailbox", "authentication")  # the adapter's field mask


class EventRepository(MemoryRepository):
    def _event_documents(self, *filters: tuple[str, str, object]) -> list[dict]:
        """Event documents matching every filter, in document order, each with its "id" and version."""
        return [{**self._get("events", key), "id": key, "_update_time": self._version("events", key)}
                for (collection, key), doc in sorted(self.docs.items())
                if collection == "events" and all(matches(doc, *f) for f in filters)]

    def pending_events(self, mailbox: str, limit: int = 200) -> list[dict]:
        documents = self._event_documents(("mailbox", "==", mailbox), ("published", "==", False))[:limit]
        return sorted(documents, key=lambda d: (d.get("created_at") or "", d["id"]))

    def mark_events_published(self, documents: list[dict], published_at: str) -> int:
        """Each document unchanged since read is marked; others are left alone."""
        marked = 0
        with self._lock:
            for document in documents:
                version = document["_update_time"]  # None: no version read (publish_fresh)
                if (version is None and self._version("events", document["id"]) is not None) or (
                        version is not None and self._version("events", document["id"]) == version):
                    self._update("events", document["id"], {"published": True, "published_at": published_at})
                    marked += 1
        return marked

    def event_documents(self, subject: str | None = None, since: str | None = None, limit: int = 0) -> list[dict]:
        filters = [("subjects", "array_contains", subject)] if subject is not None else []
        filters += [("created_at", ">=", since)] if since is not None else []
        documents = sorted(self._event_documents(*filters), key=lambda d: (d.get("created_at") or "", d["id"]),
                           reverse=True)
        return documents[:limit] if limit else documents

    def events_waiting(self, mailbox: str) -> int:
        return sum(int(d.get("count") or 0) for d in self.pending_events(mailbox, limit=10_000))

    def mailboxes_with_waiting_events(self, before: str, limit: int = 1000) -> list[str]:
        documents = self._event_documents(("published", "==", False))[:limit]
        return sorted({d["mailbox"] for d in documents if (d.get("created_at") or "") < before and d.get("mailbox")})

    def event_message_rows(self, refs: list[dict]) -> dict[str, dict]:
        rows = {}
        for ref in refs:
            row = self._get(ref["collection"], ref["key"])
            if row is not None:
                rows[f"{ref['collection']}/{ref['key']}"] = {f: row[f] for f in MESSAGE_ROW_FIELDS if f in row}
        return rows
