"""RecordingQueue: the WorkQueue port (services/ports.py) that only remembers what was published,
so a service test decides when a "send" task runs (as Pub/Sub would, later and maybe twice)."""

from __future__ import annotations


class RecordingQueue:
    def __init__(self):
        self.published: list[tuple[str, str, dict]] = []

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        self.published.append((kind, mailbox, dict(attributes or {})))

    def take(self) -> list[tuple[str, str, dict]]:
        """The tasks published so far, forgotten here (delivered)."""
        tasks, self.published = self.published, []
        return tasks
