"""In-memory repository of the admin pages: sessions and stored-message lookups (as
adapters/firestore/admin.py).

Layout: admin_sessions/{sha256(session id)}  csrf token, who, key generation, last use, expires_at,
        one-shot flash message
"""

from __future__ import annotations

from tests.memory.store.base import DELETE, MemoryRepository

SESSIONS = "admin_sessions"


class AdminRepository(MemoryRepository):
    def get_admin_session(self, key: str) -> dict | None:
        return self._get(SESSIONS, key)

    def put_admin_session(self, key: str, data: dict) -> None:
        self._set(SESSIONS, key, data)

    def update_admin_session(self, key: str, changes: dict) -> None:
        self._update(SESSIONS, key, changes)

    def clear_admin_flash(self, key: str) -> None:
        self._update(SESSIONS, key, {"flash": DELETE})

    def delete_admin_session(self, key: str) -> None:
        self._delete(SESSIONS, key)

    def delete_all_admin_sessions(self) -> int:
        return sum(self._delete(collection, key) for collection, key in [k for k in self.docs if k[0] == SESSIONS])

    def find_stored_message(self, message_id: str) -> dict | None:
        """The stored message (inbound or outbound) whose message.id is `message_id`."""
        for collection in ("inbound", "outbound"):
            for row in self._query(collection, ("message.id", "==", message_id), limit=1):
                return row["message"]
        return None
