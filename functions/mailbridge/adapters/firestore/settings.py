"""Firestore repository of the settings: backend switches and global defaults.

Layout: settings/global   one document, merged over models.DEFAULT_SETTINGS when read
"""

from __future__ import annotations

from mailbridge.adapters.firestore.base import FirestoreRepository
from mailbridge.domain import models


class SettingsRepository(FirestoreRepository):
    def settings(self) -> dict:
        snap = self.db.collection("settings").document("global").get()
        return {**models.DEFAULT_SETTINGS, **(snap.to_dict() or {})}

    def set_setting(self, key: str, value) -> None:
        self.db.collection("settings").document("global").set({key: value}, merge=True)
        self.write_count += 1
