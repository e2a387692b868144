"""Firestore repository of the mailboxes and their credential sets (no secrets).

Layout: mailboxes/{name}   mailbox, its settings and credential sets; deleting one also deletes
        its sync/{name}~{instance} documents (adapters/firestore/sync.py)
"""

from __future__ import annotations

import copy

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository, sync_key
from mailbridge.domain import events, models
from mailbridge.errors import Conflict, NotFound


class MailboxRepository(FirestoreRepository):
    def add_mailbox(self, mailbox: dict) -> None:
        try:
            self.db.collection("mailboxes").document(mailbox["name"]).create(mailbox)
        except gexc.AlreadyExists as e:
            raise Conflict(f"mailbox {mailbox['name']!r} already exists") from e
        self.write_count += 1

    def get_mailbox(self, name: str) -> dict:
        snap = self.db.collection("mailboxes").document(name).get()
        if not snap.exists:
            raise NotFound(f"no mailbox named {name!r}")
        return snap.to_dict()

    def list_mailboxes(self) -> list[dict]:
        return [s.to_dict() for s in self.db.collection("mailboxes").order_by("name").stream()]

    def find_mailbox_by_address(self, address: str) -> dict | None:
        query = self.db.collection("mailboxes").where(filter=FieldFilter("address", "==", address.lower()))
        for snap in query.limit(1).stream():
            return snap.to_dict()
        return None

    def update_mailbox(self, name: str, updates: dict) -> None:
        try:
            self.db.collection("mailboxes").document(name).update(updates)
        except gexc.NotFound as e:
            raise NotFound(f"no mailbox named {name!r}") from e
        self.write_count += 1

    def _change_credentials(self, name: str, change):
        """Run `change(credentials)` on a mailbox's credential sets in one transaction; it
        returns (new list, result). Every credential writer shares this read-modify-write, so a
        set that stops being connected writes its mailbox.disconnected event with it."""
        ref = self.db.collection("mailboxes").document(name)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"no mailbox named {name!r}")
            mailbox = snap.to_dict()
            before = copy.deepcopy(mailbox.get("credentials", []))
            credentials, result = change(mailbox.get("credentials", []))
            changes = {"credentials": credentials}
            disconnected = events.mailbox_disconnected(mailbox, before, credentials, models.now_iso())
            if disconnected:
                changes[events.SEQUENCE_FIELD] = mailbox[events.SEQUENCE_FIELD]
                document_id, document = events.batch(disconnected, name, disconnected[0]["time"],
                                                     events.retention_days(self.settings()))
                tx.create(self.events_ref(document_id), document)
            tx.update(ref, changes)
            return result, 1 + bool(disconnected)

        result, writes = run(self.db.transaction())
        self.write_count += writes
        return result

    def update_credential(self, name: str, instance: str, changes: dict) -> dict:
        """Merge `changes` into one credential set, atomically; returns the new set."""
        def change(credentials):
            for cred in credentials:
                if cred["instance"] == instance:
                    cred.update(changes)
                    return credentials, cred
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")

        return self._change_credentials(name, change)

    def remove_credential(self, name: str, instance: str) -> dict:
        """Drop one credential set, atomically; returns the set removed (its secret ids)."""
        def change(credentials):
            for cred in credentials:
                if cred["instance"] == instance:
                    return [c for c in credentials if c["instance"] != instance], cred
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")

        return self._change_credentials(name, change)

    def delete_mailbox(self, name: str) -> None:
        """The mailbox document and its per-instance sync state; tickets and inbound rows stay."""
        ref = self.db.collection("mailboxes").document(name)
        if not ref.get().exists:
            raise NotFound(f"no mailbox named {name!r}")
        batch = self.db.batch()
        prefix = sync_key(name, "")
        for snap in self.db.collection("sync").select([]).stream():  # one small document per mailbox and instance
            if snap.id.startswith(prefix):
                batch.delete(snap.reference)
        batch.delete(ref)
        batch.commit()
        self.write_count += 1

    def add_credential(self, name: str, credential: dict) -> None:
        def change(credentials):
            if any(c["instance"] == credential["instance"] for c in credentials):
                raise Conflict(
                    f"mailbox {name!r} already has a credential set for instance {credential['instance']!r}")
            return credentials + [credential], None

        self._change_credentials(name, change)
