"""In-memory repository of the settings (as adapters/firestore/settings.py).

Layout: settings/global   one document, merged over models.DEFAULT_SETTINGS when read
"""

from __future__ import annotations

from mailbridge.domain import models
from tests.memory.store.base import MemoryRepository


class SettingsRepository(MemoryRepository):
    def settings(self) -> dict:
        return {**models.DEFAULT_SETTINGS, **(self._get("settings", "global") or {})}

    def set_setting(self, key: str, value) -> None:
        self._set_merge("settings", "global", {key: value})
