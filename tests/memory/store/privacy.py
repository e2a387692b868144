"""In-memory repository of a person's data and its lifecycle (as adapters/firestore/privacy.py).

Layout: erasures/{person hash}
"""

from __future__ import annotations

from mailbridge.domain import privacy
from tests.memory.store.base import MemoryRepository


class PrivacyRepository(MemoryRepository):
    def _found(self, collection: str, *filters) -> list[dict]:
        return [{"collection": collection, "id": key, "data": self._get(collection, key)}
                for (c, key), doc in sorted(self.docs.items())
                if c == collection and all(_holds(doc, f) for f in filters)]

    def documents_naming(self, address: str) -> list[dict]:
        return [d for collection in privacy.SCANNED_COLLECTIONS for d in self._found(collection)
                if privacy.names(d["data"], address)]

    def raw_copies(self) -> list[dict]:
        return [d for d in self._found("inbound") if isinstance(d["data"].get("raw_sha256"), str)]

    def ticket_documents(self, ticket_id: str) -> list[dict]:
        ticket_id = str(ticket_id)
        ticket = self._get("tickets", ticket_id)
        found = [{"collection": "tickets", "id": ticket_id, "data": ticket}] if ticket is not None else []
        return (found + self._found("inbound", ("ticket_id", ticket_id))
                + self._found("outbound", ("ticket_id", ticket_id)) + self._found("events", ("subjects", ticket_id)))

    def mailbox_documents(self, mailbox: str) -> list[dict]:
        return [d for collection in privacy.PERSONAL_COLLECTIONS for d in self._found(collection, ("mailbox", mailbox))]

    def write_documents(self, puts: list[dict], deletes: list[dict]) -> int:
        with self._lock:
            self._write([(d["collection"], d["id"], d["data"]) for d in puts])
            for d in deletes:
                self._delete(d["collection"], d["id"])
        return len(puts) + len(deletes)

    def set_expiry(self, refs: list[dict], expires_at) -> int:
        with self._lock:
            for d in refs:
                self._set_merge(d["collection"], d["id"], {"expires_at": expires_at})
        return len(refs)

    def blobs_in_use(self, shas: list[str], excluding: list[dict]) -> set[str]:
        skip = {(d["collection"], d["id"]) for d in excluding}
        used: set[str] = set()
        for (collection, key), doc in list(self.docs.items()):
            if collection in ("inbound", "outbound") and (collection, key) not in skip:
                used |= set(shas) & privacy.blob_refs(doc)
        return used

    def spam_lists_naming(self, address: str) -> list[dict]:
        found = []
        for d in self._found("sync"):
            recent = d["data"].get("spam_recent") or []
            if privacy.names(recent, address):
                mailbox, _, instance = d["id"].rpartition("~")
                found.append({"mailbox": mailbox, "instance": instance, "spam_recent": recent})
        return found

    def forget_spam(self, mailbox: str, instance: str, gmail_ids: list[str]) -> int:
        with self._lock:
            recent = (self._get("sync", f"{mailbox}~{instance}") or {}).get("spam_recent") or []
            kept = [entry for entry in recent if entry.get("gmail_message_id") not in set(gmail_ids)]
            if len(kept) != len(recent):
                self._update("sync", f"{mailbox}~{instance}", {"spam_recent": kept})
            return len(recent) - len(kept)

    def put_erasure(self, person: str, record: dict) -> None:
        self._set("erasures", person.replace("/", "_"), record)

    def get_erasure(self, person: str) -> dict | None:
        return self._get("erasures", person.replace("/", "_"))


def _holds(doc: dict, condition: tuple[str, str]) -> bool:
    """A field equal to the value, or an array holding it (array_contains)."""
    field, value = condition
    current = doc.get(field)
    if isinstance(current, list):
        return value in current
    return current is not None and str(current) == value
