"""Firestore repository of a person's data and its lifecycle (docs/privacy.md): the documents
that name an address (a scan: an access or erasure request is rare, and only a scan finds an
address in a Cc or a quoted body), those of one ticket or mailbox, their rewrite or deletion in
batches, the `expires_at` of Firestore's TTL policies, and erasure records keyed by a hash.

Layout: erasures/{person hash}   when and what was erased (never the address)
"""

from __future__ import annotations

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository, sync_key
from mailbridge.domain import privacy

BATCH = 400  # writes per batch (Firestore's limit is 500)


class PrivacyRepository(FirestoreRepository):
    def _found(self, collection: str, snaps) -> list[dict]:
        return [{"collection": collection, "id": snap.id, "data": snap.to_dict()} for snap in snaps]

    def documents_naming(self, address: str) -> list[dict]:
        found = []
        for collection in privacy.SCANNED_COLLECTIONS:
            found.extend(d for d in self._found(collection, self.db.collection(collection).stream())
                         if privacy.names(d["data"], address))
        return found

    def raw_copies(self) -> list[dict]:
        return self._where("inbound", "raw_sha256", ">=", "")  # strings only: rows without a copy hold null

    def _where(self, collection: str, field: str, op: str, value) -> list[dict]:
        query = self.db.collection(collection).where(filter=FieldFilter(field, op, value))
        return self._found(collection, query.stream())

    def ticket_documents(self, ticket_id: str) -> list[dict]:
        snap = self.ticket_ref(str(ticket_id)).get()
        found = self._found("tickets", [snap]) if snap.exists else []
        for collection in ("inbound", "outbound"):
            found.extend(self._where(collection, "ticket_id", "==", str(ticket_id)))
        return found + self._where("events", "subjects", "array_contains", str(ticket_id))

    def mailbox_documents(self, mailbox: str) -> list[dict]:
        found = []
        for collection in privacy.PERSONAL_COLLECTIONS:
            found.extend(self._where(collection, "mailbox", "==", mailbox))
        return found

    def write_documents(self, puts: list[dict], deletes: list[dict]) -> int:
        writes = [("set", d) for d in puts] + [("delete", d) for d in deletes]
        for start in range(0, len(writes), BATCH):
            batch = self.db.batch()
            for kind, d in writes[start:start + BATCH]:
                ref = self.db.collection(d["collection"]).document(d["id"])
                if kind == "set":
                    batch.set(ref, d["data"])
                else:
                    batch.delete(ref)
            batch.commit()
        self.write_count += len(writes)
        return len(writes)

    def set_expiry(self, refs: list[dict], expires_at) -> int:
        for start in range(0, len(refs), BATCH):
            batch = self.db.batch()
            for d in refs[start:start + BATCH]:
                batch.set(self.db.collection(d["collection"]).document(d["id"]), {"expires_at": expires_at}, merge=True)
            batch.commit()
        self.write_count += len(refs)
        return len(refs)

    def blobs_in_use(self, shas: list[str], excluding: list[dict]) -> set[str]:
        """Which of `shas` a row or record outside `excluding` still points to (blobs are
        content-addressed: two messages with the same attachment share one)."""
        wanted, skip = set(shas), {(d["collection"], d["id"]) for d in excluding}
        used: set[str] = set()
        fields = ["message.attachments", "message.stored_parts", "raw_sha256"]
        for collection in ("inbound", "outbound"):
            if not wanted - used:
                break
            for snap in self.db.collection(collection).select(fields).stream():
                if (collection, snap.id) not in skip:
                    used |= wanted & privacy.blob_refs(snap.to_dict())
        return used

    def spam_lists_naming(self, address: str) -> list[dict]:
        found = []
        for snap in self.db.collection("sync").select(["spam_recent"]).stream():
            recent = (snap.to_dict() or {}).get("spam_recent") or []
            if privacy.names(recent, address):
                mailbox, _, instance = snap.id.rpartition("~")
                found.append({"mailbox": mailbox, "instance": instance, "spam_recent": recent})
        return found

    def forget_spam(self, mailbox: str, instance: str, gmail_ids: list[str]) -> int:
        """In a transaction, so a sync's own update of the list in between is neither lost nor undone."""
        ref, drop = self.db.collection("sync").document(sync_key(mailbox, instance)), set(gmail_ids)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            recent = (snap.to_dict() or {}).get("spam_recent") or [] if snap.exists else []
            kept = [entry for entry in recent if entry.get("gmail_message_id") not in drop]
            if len(kept) != len(recent):
                tx.update(ref, {"spam_recent": kept})
            return len(recent) - len(kept), int(len(kept) != len(recent))

        return self.run_contended(run, "forget spam")

    def put_erasure(self, person: str, record: dict) -> None:
        self.db.collection("erasures").document(person.replace("/", "_")).set(record)
        self.write_count += 1

    def get_erasure(self, person: str) -> dict | None:
        snap = self.db.collection("erasures").document(person.replace("/", "_")).get()
        return snap.to_dict() if snap.exists else None
