"""In-memory repository of the audit log (as adapters/firestore/audit.py).

Layout: audit/{at}~{random}
"""

from __future__ import annotations

import secrets

from google.api_core import exceptions as gexc

from tests.memory.store.base import MemoryRepository


class AuditRepository(MemoryRepository):
    def append_audit(self, record: dict) -> str:
        record_id = f"{record['at']}~{secrets.token_hex(4)}"
        with self._lock:
            if self._version("audit", record_id) is not None:
                raise gexc.AlreadyExists(f"audit/{record_id} already exists")
            self._set("audit", record_id, record)
        return record_id

    def audit_records(self, since: str | None = None, actor: str | None = None, limit: int = 100) -> list[dict]:
        rows = [{**doc, "id": key} for key, doc in self.collection("audit").items()
                if (not actor or doc.get("actor") == actor) and (not since or doc["at"] >= since)]
        rows.sort(key=lambda r: r["id"], reverse=True)
        return rows[:limit] if limit else rows
