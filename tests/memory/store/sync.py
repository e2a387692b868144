"""In-memory repository of the sync state and the poll lease (as adapters/firestore/sync.py).

Layout: sync/{name}~{instance}   history id, lease and poll status of one credential set
"""

from __future__ import annotations

import time

from tests.memory.store.base import MemoryRepository


def _key(mailbox: str, instance: str) -> str:
    return f"{mailbox}~{instance}"


class SyncRepository(MemoryRepository):
    def get_sync(self, mailbox: str, instance: str) -> dict:
        return self._get("sync", _key(mailbox, instance)) or {}

    def mailbox_with_sync(self, name: str, instance: str) -> tuple[dict, dict]:
        return self.get_mailbox(name), self.get_sync(name, instance)

    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None:
        self._set_merge("sync", _key(mailbox, instance), changes)

    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None,
                   last_failed: int | None = None) -> None:
        state = {"history_id": str(history_id) if history_id else None, "connected_at": connected_at,
                 "last_success_at": None, "last_error": None, "lease_owner": None, "lease_expires_at": 0}
        if last_failed is not None:
            state["last_failed"] = last_failed
        self._set("sync", _key(mailbox, instance), state)

    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> dict | None:
        with self._lock:
            data = self.get_sync(mailbox, instance)
            now = time.time()
            if data.get("lease_owner") == owner:
                return data  # ours already (Firestore: an attempt whose answer was lost had been applied)
            if data.get("lease_owner") and data.get("lease_expires_at", 0) > now:
                return None
            lease = {"lease_owner": owner, "lease_expires_at": now + ttl_seconds, "lease_since": now}
            if data.get("lease_owner"):  # its holder died before releasing it
                lease["abandoned_runs"] = int(data.get("abandoned_runs") or 0) + 1
            self.update_sync(mailbox, instance, lease)
            return {**data, **lease}

    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        with self._lock:
            if self.get_sync(mailbox, instance).get("lease_owner") != owner:
                return False
            self._update("sync", _key(mailbox, instance), {"lease_expires_at": time.time() + ttl_seconds})
            return True

    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None:
        with self._lock:
            holder = self.get_sync(mailbox, instance).get("lease_owner")
            if holder not in (owner, None):
                return  # another sync took the mailbox over: its history id and status win
            update = dict(changes or {})
            if holder == owner:
                update.update({"lease_owner": None, "lease_expires_at": 0, "lease_since": None})
            if update:
                self.update_sync(mailbox, instance, update)
