"""Firestore repository of the ticket event log (docs/events.md): one document per commit that
changed something, written in that commit by the repository that made the change (tickets,
inbound, outbound, mailboxes); here the publisher's and the operators' reads and the mark.

Layout: events/{first event id}   events (in order), mailbox, subjects, count, created_at,
                                  published, published_at, expires_at (TTL: terraform/firestore.tf)
Queries use equality filters, one array_contains or one range on created_at: no composite index.
"""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository


MESSAGE_ROW_FIELDS = ["message", "status", "mailbox", "authentication"]  # what domain/tickets.message_view reads of a row


class EventRepository(FirestoreRepository):
    def _documents(self, query) -> list[dict]:
        return [{**snap.to_dict(), "id": snap.id, "_update_time": snap.update_time} for snap in query.stream()]

    def pending_events(self, mailbox: str, limit: int = 200) -> list[dict]:
        """A mailbox's event documents not published yet, oldest first (each with its "id" and
        its version, "_update_time", for the mark)."""
        query = (self.db.collection("events").where(filter=FieldFilter("mailbox", "==", mailbox))
                 .where(filter=FieldFilter("published", "==", False)).limit(limit))
        return sorted(self._documents(query), key=lambda d: (d.get("created_at") or "", d["id"]))

    def mark_events_published(self, documents: list[dict], published_at: str) -> int:
        """Mark documents (as pending_events read them) published, in one batch, each only if
        unchanged since read: a document another publisher marked meanwhile, or the TTL removed,
        is left alone, so each is marked once. Returns how many this call marked."""
        changes = {"published": True, "published_at": published_at}

        def update(batch, document):
            version = document["_update_time"]  # None: no version read (services/events.publish_fresh)
            batch.update(self.events_ref(document["id"]), changes,
                         **({"option": self.db.write_option(last_update_time=version)} if version is not None else {}))

        batch = self.db.batch()
        for document in documents:
            update(batch, document)
        try:
            if documents:
                batch.commit()
            marked = len(documents)
        except (gexc.FailedPrecondition, gexc.NotFound):
            marked = 0
            for document in documents:  # one by one: only the others' are skipped
                single = self.db.batch()
                update(single, document)
                try:
                    single.commit()
                    marked += 1
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue
        self.write_count += marked
        return marked

    def event_documents(self, subject: str | None = None, since: str | None = None, limit: int = 0) -> list[dict]:
        """Event documents newest first: those holding an event of `subject`, those created at
        or after `since`; `limit` documents at most (0: all)."""
        collection = self.db.collection("events")
        if subject is not None:  # a subject's documents are few: filtered and ordered here
            documents = self._documents(collection.where(filter=FieldFilter("subjects", "array_contains", subject)))
            documents = [d for d in documents if since is None or (d.get("created_at") or "") >= since]
            documents.sort(key=lambda d: (d.get("created_at") or "", d["id"]), reverse=True)
            return documents[:limit] if limit else documents
        query = collection
        if since is not None:
            query = query.where(filter=FieldFilter("created_at", ">=", since))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        if limit:
            query = query.limit(limit)
        return self._documents(query)

    def events_waiting(self, mailbox: str) -> int:
        """How many of a mailbox's events wait to be published."""
        query = (self.db.collection("events").where(filter=FieldFilter("mailbox", "==", mailbox))
                 .where(filter=FieldFilter("published", "==", False)).select(["count"]))
        return sum(int(snap.get("count") or 0) for snap in query.stream())

    def mailboxes_with_waiting_events(self, before: str, limit: int = 1000) -> list[str]:
        """Mailboxes with an event document created before `before` and not published yet."""
        query = (self.db.collection("events").where(filter=FieldFilter("published", "==", False))
                 .select(["mailbox", "created_at"]).limit(limit))
        found = {snap.get("mailbox") for snap in query.stream() if (snap.get("created_at") or "") < before}
        return sorted(m for m in found if m)

    def event_message_rows(self, refs: list[dict]) -> dict[str, dict]:
        """The inbound rows and outbound records events name: "collection/key" -> the row."""
        paths = sorted({f"{r['collection']}/{r['key']}" for r in refs})
        rows = {}
        for start in range(0, len(paths), 300):
            refs_now = [self.db.document(path) for path in paths[start:start + 300]]
            for snap in self.db.get_all(refs_now, field_paths=MESSAGE_ROW_FIELDS):
                if snap.exists:
                    rows[f"{snap.reference.parent.id}/{snap.id}"] = snap.to_dict()
        return rows
