"""Firestore repository of the sync state: history id, poll status and the poll lease of one
mailbox's credential set (docs/architecture.md, "Queue": leases and heartbeat).

Layout: sync/{name}~{instance}   history id, lease and poll status of one credential set
"""

from __future__ import annotations

import threading
import time

from google.api_core import exceptions as gexc
from google.cloud import firestore

from mailbridge.adapters.firestore.base import FirestoreRepository, sync_key
from mailbridge.errors import NotFound

KNOWN_VERSIONS = 1000  # sync states whose version a process keeps for its next lease write


class SyncRepository(FirestoreRepository):
    def get_sync(self, mailbox: str, instance: str) -> dict:
        snap = self.db.collection("sync").document(sync_key(mailbox, instance)).get()
        if snap.exists:
            self._remember(sync_key(mailbox, instance), snap.update_time, snap.to_dict())
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
        if state is not None and state.exists:
            self._remember(sync_key(name, instance), state.update_time, state.to_dict())
        return found["mailboxes"].to_dict(), (state.to_dict() if state is not None and state.exists else None) or {}

    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None:
        self._forget(sync_key(mailbox, instance))  # its next lease write reads it afresh
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(changes, merge=True)
        self.write_count += 1

    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None,
                   last_failed: int | None = None) -> None:
        self._forget(sync_key(mailbox, instance))
        state = {"history_id": str(history_id) if history_id else None, "connected_at": connected_at,
                 "last_success_at": None, "last_error": None, "lease_owner": None, "lease_expires_at": 0}
        if last_failed is not None:
            state["last_failed"] = last_failed
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(state)
        self.write_count += 1

    # -- leases: a write guarded by the version this process read, else a transaction ----------
    # A task reads its sync state before it takes the lease (mailbox_with_sync), and releases the
    # lease it wrote. Each lease write is first tried as one update guarded by the version this
    # process last read or wrote: unchanged since, the decision taken on that copy is the one a
    # transaction would take, at one round trip instead of a transaction's three (begin, read,
    # commit). A changed or unknown version falls back to the transaction (docs/architecture.md,
    # "Queue", the paragraph on a task).
    def _known_versions(self) -> dict:
        known = self.__dict__.get("_sync_known")
        if known is None:
            known = self.__dict__.setdefault("_sync_known", {})
            self.__dict__.setdefault("_sync_known_lock", threading.Lock())
        return known

    def _remember(self, key: str, version, data: dict) -> None:
        known = self._known_versions()
        with self._sync_known_lock:
            known.pop(key, None)
            known[key] = (version, data)
            while len(known) > KNOWN_VERSIONS:
                known.pop(next(iter(known)))  # the oldest: a task takes its lease just after its read

    def _forget(self, key: str):
        known = self._known_versions()
        with self._sync_known_lock:
            return known.pop(key, None)

    def _if_unchanged(self, ref, key: str, decide) -> tuple[bool, object]:
        """(True, answer) when decide(the known copy) -> (answer, update) wrote its update with the
        copy's version as precondition; (False, None) when the transaction must decide: no known
        copy, nothing to write (a refusal is only sure once read afresh), a map value (an update
        replaces maps, a merge merges them) or a document changed since."""
        known = self._forget(key)
        if known is None:
            return False, None
        version, data = known
        answer, update = decide(dict(data))
        if not update or any(isinstance(value, dict) for value in update.values()):
            return False, None
        try:
            result = ref.update(update, option=self.db.write_option(last_update_time=version))
        except Exception:  # noqa: BLE001 - changed since (FailedPrecondition), or an answer lost
            # after the write was applied: the transaction reads the document and decides again
            # (a lease that is ours already is answered as ours, a release done is done again).
            return False, None
        self._remember(key, result.update_time, {**data, **update})
        self.write_count += 1
        return True, answer

    def _change_lease(self, mailbox: str, instance: str, decide, read_back=None):
        """decide(the sync state) -> (answer, the update to merge or None), written guarded by the
        known version (_if_unchanged), else in a transaction. When the transaction gave up, or
        its commit's answer was lost after it was applied, `read_back(the state read again)` is
        the answer (without it, the error is raised): a lease we hold must not block the mailbox
        until it expires."""
        key = sync_key(mailbox, instance)
        ref = self.db.collection("sync").document(key)
        done, answer = self._if_unchanged(ref, key, decide)
        if done:
            return answer

        @firestore.transactional
        def run(tx):
            answer, update = decide(ref.get(transaction=tx).to_dict() or {})
            if update:
                tx.set(ref, update, merge=True)
            return answer, bool(update)

        try:
            answer, wrote = run(self.db.transaction())
        except (gexc.Aborted, ValueError):
            if read_back is None:
                raise
            answer, wrote = read_back(ref.get().to_dict() or {}), False
        self.write_count += wrote
        return answer

    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> dict | None:
        """The sync state with `owner`'s lease when taken (what the lease's write decided on: the
        run starts from it without reading it again), else None."""

        def decide(data: dict):
            if data.get("lease_owner") == owner:
                return data, None  # ours already: an earlier attempt's write was applied
            if data.get("lease_owner") and data.get("lease_expires_at", 0) > time.time():
                return None, None
            now = time.time()
            lease = {"lease_owner": owner, "lease_expires_at": now + ttl_seconds, "lease_since": now}
            if data.get("lease_owner"):  # its holder died (killed, out of memory) before releasing it
                lease["abandoned_runs"] = int(data.get("abandoned_runs") or 0) + 1
            return {**data, **lease}, lease

        return self._change_lease(mailbox, instance, decide,
                                  lambda data: data if data.get("lease_owner") == owner else None)

    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        """The heartbeat (services/sync/lease.py): False once the lease is no longer ours."""

        def decide(data: dict):
            if data.get("lease_owner") != owner:
                return False, None
            return True, {"lease_expires_at": time.time() + ttl_seconds}

        return self._change_lease(mailbox, instance, decide, lambda data: data.get("lease_owner") == owner)

    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None:
        def decide(data: dict):
            if data.get("lease_owner") not in (owner, None):
                return None, None  # another sync took the mailbox over: its history id and status win
            update = dict(changes or {})
            if data.get("lease_owner") == owner:
                update.update({"lease_owner": None, "lease_expires_at": 0, "lease_since": None})
            return None, update

        self._change_lease(mailbox, instance, decide)
