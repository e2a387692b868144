"""Firestore repository of the sync state: history id, poll status and the poll lease of one
mailbox's credential set (docs/architecture.md, "Queue": leases and heartbeat).

Layout: sync/{name}~{instance}   history id, lease and poll status of one credential set
"""

from __future__ import annotations

import time

from google.api_core import exceptions as gexc
from google.cloud import firestore

from mailbridge.adapters.firestore.base import FirestoreRepository, sync_key
from mailbridge.errors import NotFound


class SyncRepository(FirestoreRepository):
    def get_sync(self, mailbox: str, instance: str) -> dict:
        snap = self.db.collection("sync").document(sync_key(mailbox, instance)).get()
        return snap.to_dict() or {}

    def mailbox_with_sync(self, name: str, instance: str) -> tuple[dict, dict]:
        """The mailbox document and its sync state in one batch read: an idle tick task's two
        reads cost one round trip (docs/benchmarks.md, idle_mailbox_cost)."""
        mailbox_ref = self.db.collection("mailboxes").document(name)
        sync_ref = self.db.collection("sync").document(sync_key(name, instance))
        found = {snap.reference.parent.id: snap for snap in self.db.get_all([mailbox_ref, sync_ref])}
        if not found.get("mailboxes") or not found["mailboxes"].exists:
            raise NotFound(f"no mailbox named {name!r}")
        state = found.get("sync")
        return found["mailboxes"].to_dict(), (state.to_dict() if state is not None and state.exists else None) or {}

    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None:
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(changes, merge=True)
        self.write_count += 1

    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None) -> None:
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(
            {"history_id": str(history_id) if history_id else None, "connected_at": connected_at,
             "last_success_at": None,
             "last_error": None, "lease_owner": None, "lease_expires_at": 0}
        )
        self.write_count += 1

    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> dict | None:
        """The sync state with `owner`'s lease when taken (what the transaction read: the run
        starts from it without reading it again), else None."""
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") and data.get("lease_expires_at", 0) > time.time():
                return None
            now = time.time()
            lease = {"lease_owner": owner, "lease_expires_at": now + ttl_seconds, "lease_since": now}
            if data.get("lease_owner"):  # its holder died (killed, out of memory) before releasing it
                lease["abandoned_runs"] = int(data.get("abandoned_runs") or 0) + 1
            tx.set(ref, lease, merge=True)
            return {**data, **lease}

        return self._lease_write(ref, owner, run, transaction)

    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        """The heartbeat (services/sync/lease.py): False once the lease is no longer ours."""
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") != owner:
                return False
            tx.update(ref, {"lease_expires_at": time.time() + ttl_seconds})
            return True

        return bool(self._lease_write(ref, owner, run, transaction))

    def _lease_write(self, ref, owner: str, run, transaction):
        """Run a lease transaction; its answer (truthy when the lease is ours afterwards). When
        another sync won the race, or the commit's answer was lost after it was applied, the
        document is read back: else a lease we hold would block the mailbox until it expires."""
        try:
            ours = run(transaction)
        except (gexc.Aborted, ValueError):
            data = ref.get().to_dict() or {}
            ours = data if data.get("lease_owner") == owner else None
        if ours:
            self.write_count += 1
        return ours

    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None:
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") not in (owner, None):
                return  # another sync took the mailbox over: its history id and status win
            update = dict(changes or {})
            if data.get("lease_owner") == owner:
                update.update({"lease_owner": None, "lease_expires_at": 0, "lease_since": None})
            if update:
                tx.set(ref, update, merge=True)

        run(transaction)
        self.write_count += 1
