"""Firestore repository of the admin pages: sessions and stored-message lookups. Mixed into
Store (adapters/firestore/store.py).

Layout: admin_sessions/{sha256(session id)}  csrf token, who, key generation, last use,
        expires_at (absolute end; Firestore's TTL policy deletes the document), one-shot flash message
"""

from __future__ import annotations

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository

SESSIONS = "admin_sessions"


class AdminRepository(FirestoreRepository):
    def get_admin_session(self, key: str) -> dict | None:
        snap = self.db.collection(SESSIONS).document(key).get()
        return snap.to_dict() if snap.exists else None

    def put_admin_session(self, key: str, data: dict) -> None:
        self.db.collection(SESSIONS).document(key).set(data)

    def update_admin_session(self, key: str, changes: dict) -> None:
        self.db.collection(SESSIONS).document(key).update(changes)

    def clear_admin_flash(self, key: str) -> None:
        self.db.collection(SESSIONS).document(key).update({"flash": firestore.DELETE_FIELD})

    def delete_admin_session(self, key: str) -> None:
        self.db.collection(SESSIONS).document(key).delete()

    def delete_all_admin_sessions(self) -> int:
        """End every admin session (scripts/mailbridge admin sessions revoke-all)."""
        count = 0
        while True:
            refs = [snap.reference for snap in self.db.collection(SESSIONS).limit(300).stream()]
            if not refs:
                return count
            batch = self.db.batch()
            for ref in refs:
                batch.delete(ref)
            batch.commit()
            count += len(refs)

    def find_stored_message(self, message_id: str) -> dict | None:
        """The stored message (inbound or outbound) whose message.id is `message_id`."""
        # inbound rows are keyed by the message id; outbound messages are "out~{record key}"
        collection, key = ("outbound", message_id[4:]) if message_id.startswith("out~") else ("inbound", message_id)
        if key:
            snap = self.db.collection(collection).document(key).get()
            message = (snap.to_dict() or {}).get("message") if snap.exists else None
            if message and message.get("id") == message_id:
                return message
        for collection in ("inbound", "outbound"):
            query = self.db.collection(collection).where(filter=FieldFilter("message.id", "==", message_id)).limit(1)
            for snap in query.stream():
                return snap.to_dict()["message"]
        return None
