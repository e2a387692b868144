"""Gmail watch notifications published to the Pub/Sub emulator from a background thread.

Gmail sends at most about one notification per second per mailbox; changes in between are
coalesced into the latest historyId, and the last one is never dropped. Publishing happens off
the request thread so a slow emulator never slows a Gmail call down.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("fake_google.notifier")

MIN_INTERVAL_SECONDS = 1.0


class Notifier:
    def __init__(self, emulator_host: str | None = None):
        self.emulator_host = emulator_host or os.environ.get("PUBSUB_EMULATOR_HOST")
        self._condition = threading.Condition()
        # email -> (topic, latest historyId) still to publish
        self._pending: dict[str, tuple[str, int]] = {}
        self._last_sent: dict[str, float] = {}
        self._publisher: Any = None
        self._thread: threading.Thread | None = None
        self.published: list[dict[str, Any]] = []  # what went out, for /_fake/stats
        # Paused: notifications are dropped (not delayed), as when Gmail drops them.
        self.paused = False
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self.emulator_host)

    def notify(self, email: str, topic: str, history_id: int) -> None:
        if self.paused:
            with self._condition:
                self.dropped += 1
            return
        if not self.enabled:
            return
        with self._condition:
            self._pending[email] = (topic, history_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gmail-watch-publisher",
                                                daemon=True)
                self._thread.start()
            self._condition.notify()

    def reset(self) -> None:
        with self._condition:
            self._pending.clear()
            self._last_sent.clear()
            self.published.clear()
            self.paused = False
            self.dropped = 0

    def topic_exists(self, topic: str) -> bool | None:
        """True/False when the emulator answers, None when no emulator is configured."""
        if not self.enabled:
            return None
        from google.api_core import exceptions

        try:
            self._client().get_topic(request={"topic": topic}, timeout=5)
            return True
        except exceptions.NotFound:
            return False
        except Exception:  # an unreachable emulator must not fail watch(); publishing logs it
            log.warning("could not check topic %s on the Pub/Sub emulator", topic)
            return True

    def _client(self) -> Any:
        if self._publisher is None:
            from google.cloud import pubsub_v1

            os.environ["PUBSUB_EMULATOR_HOST"] = self.emulator_host or ""
            self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._condition.wait()
                now = time.monotonic()
                due = {
                    email: item for email, item in self._pending.items()
                    if now - self._last_sent.get(email, 0.0) >= MIN_INTERVAL_SECONDS
                }
                if not due:
                    next_due = min(self._last_sent.get(e, 0.0) for e in self._pending) \
                        + MIN_INTERVAL_SECONDS
                    self._condition.wait(timeout=max(0.01, next_due - now))
                    continue
                for email in due:
                    del self._pending[email]
                    self._last_sent[email] = now
            for email, (topic, history_id) in due.items():
                self._publish(email, topic, history_id)

    def _publish(self, email: str, topic: str, history_id: int) -> None:
        data = json.dumps({"emailAddress": email, "historyId": history_id}).encode()
        try:
            message_id = self._client().publish(topic, data).result(timeout=10)
        except Exception as error:  # the emulator may be gone; Gmail also drops on failure
            log.warning("publishing to %s failed: %s", topic, error)
            return
        with self._condition:
            self.published.append({"emailAddress": email, "historyId": history_id,
                                   "topic": topic, "messageId": message_id})
