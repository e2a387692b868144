"""Firestore repository of the outgoing-mailbox overrides (per ticket, ticket type, team or
client; domain/routing.py resolves them).

Layout: overrides/{scope}~{key}   the mailbox that answers for that scope and key
"""

from __future__ import annotations

from mailbridge.adapters.firestore.base import FirestoreRepository


class OverrideRepository(FirestoreRepository):
    def put_override(self, row: dict) -> None:
        self.db.collection("overrides").document(f"{row['scope']}~{row['key']}").set(row)
        self.write_count += 1

    def delete_override(self, override_id: str) -> bool:
        """False when there is no such override."""
        ref = self.db.collection("overrides").document(override_id)
        if not ref.get().exists:
            return False
        ref.delete()
        self.write_count += 1
        return True

    def list_override_rows(self) -> list[dict]:
        return [snap.to_dict() for snap in self.db.collection("overrides").stream()]

    def overrides_for(self, override_ids: list[str]) -> dict[tuple[str, str], str]:
        """(scope, key) → mailbox of the overrides among `override_ids` that exist."""
        refs = [self.db.collection("overrides").document(i) for i in override_ids]
        found = {}
        for snap in self.db.get_all(refs) if refs else []:
            if snap.exists:
                data = snap.to_dict()
                found[(data["scope"], data["key"])] = data.get("mailbox")
        return found
