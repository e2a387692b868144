"""In-memory repository of the outgoing-mailbox overrides (as adapters/firestore/overrides.py).

Layout: overrides/{scope}~{key}   the mailbox that answers for that scope and key
"""

from __future__ import annotations

from tests.memory.store.base import MemoryRepository


class OverrideRepository(MemoryRepository):
    def put_override(self, row: dict) -> None:
        self._set("overrides", f"{row['scope']}~{row['key']}", row)

    def delete_override(self, override_id: str) -> bool:
        if not self._delete("overrides", override_id):
            return False
        self.write_count += 1
        return True

    def list_override_rows(self) -> list[dict]:
        return self._query("overrides")

    def overrides_for(self, override_ids: list[str]) -> dict[tuple[str, str], str]:
        rows = [self._get("overrides", i) for i in override_ids]
        return {(r["scope"], r["key"]): r.get("mailbox") for r in rows if r}
