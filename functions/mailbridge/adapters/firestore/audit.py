"""Firestore repository of the audit log (services/audit.py): one document per admin action,
created once and never updated; Firestore's TTL policy deletes it at `expires_at`.

Layout: audit/{at}~{random}   at, actor, source, action, target, before, after, expires_at
"""

from __future__ import annotations

import secrets

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.base import FirestoreRepository


class AuditRepository(FirestoreRepository):
    def append_audit(self, record: dict) -> str:
        record_id = f"{record['at']}~{secrets.token_hex(4)}"
        self.db.collection("audit").document(record_id).create(record)
        self.write_count += 1
        return record_id

    def audit_records(self, since: str | None = None, actor: str | None = None, limit: int = 100) -> list[dict]:
        """One equality or one range with its own order: no composite index needed; an actor's
        records are sorted here."""
        query = self.db.collection("audit")
        if actor:
            query = query.where(filter=FieldFilter("actor", "==", actor))
            rows = [{**s.to_dict(), "id": s.id} for s in query.stream()]
            rows = [r for r in rows if not since or r["at"] >= since]
            rows.sort(key=lambda r: r["id"], reverse=True)
            return rows[:limit] if limit else rows
        if since:
            query = query.where(filter=FieldFilter("at", ">=", since))
        query = query.order_by("at", direction=firestore.Query.DESCENDING)
        if limit:
            query = query.limit(limit)
        return [{**s.to_dict(), "id": s.id} for s in query.stream()]
