"""The work queue on Pub/Sub (services/ports.WorkQueue; docs/architecture.md, "Queue").

Publishes through Pub/Sub's REST API with google-auth's AuthorizedSession (requests is already
a runtime dependency), so the functions need no gRPC client library and `import main` stays
cheap: nothing here is imported until the first task is published. On the local stack the
session talks plain HTTP to the emulator (PUBSUB_EMULATOR_HOST), which serves the same REST API.
"""

from __future__ import annotations

import base64
import json
import threading

from mailbridge.errors import ConfigError, MailbridgeError

PUBLISH_BATCH = 1000  # Pub/Sub's limit of messages per publish request
TIMEOUT_S = 30


class QueueUnavailable(MailbridgeError):
    """Pub/Sub did not accept a task: the caller's own caller retries (the tick, a redelivery)."""

    http_status = 503


def task_message(settings, kind: str, mailbox: str, attributes: dict | None = None) -> dict:
    """One Pub/Sub message: everything in string attributes; the data repeats them as JSON
    (Pub/Sub wants data or attributes, and dead-lettered tasks stay readable)."""
    attrs = {str(k): str(v) for k, v in (attributes or {}).items() if v is not None}
    attrs.update(kind=kind, mailbox=mailbox, instance=settings.instance)
    data = base64.b64encode(json.dumps(attrs, sort_keys=True).encode()).decode()
    return {"data": data, "attributes": attrs}


class PubSubQueue:
    def __init__(self, settings):
        if not settings.work_topic:
            raise ConfigError("MAILBRIDGE_WORK_TOPIC is not set")
        self.settings = settings
        self.topic = settings.work_topic_path
        base = (f"http://{settings.pubsub_emulator_host}" if settings.pubsub_emulator_host
                else "https://pubsub.googleapis.com")
        self.url = f"{base}/v1/{self.topic}:publish"
        self._session = None
        self._lock = threading.Lock()
        self.published = 0  # messages accepted (benchmarks read it)

    def session(self):
        with self._lock:
            if self._session is None:
                if self.settings.pubsub_emulator_host:
                    import requests

                    self._session = requests.Session()
                else:
                    import google.auth
                    from google.auth.transport.requests import AuthorizedSession

                    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/pubsub"])
                    self._session = AuthorizedSession(credentials)
        return self._session

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        self.publish_many(kind, [(mailbox, attributes)])

    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None:
        """Publish many tasks in as few requests as Pub/Sub allows (the tick's fan-out)."""
        import requests

        messages = [task_message(self.settings, kind, mailbox, attrs) for mailbox, attrs in tasks]
        for start in range(0, len(messages), PUBLISH_BATCH):
            batch = messages[start:start + PUBLISH_BATCH]
            try:
                response = self.session().post(self.url, json={"messages": batch}, timeout=TIMEOUT_S)
            except requests.RequestException as e:
                raise QueueUnavailable(f"cannot publish to {self.topic}: {e.__class__.__name__}") from None
            if response.status_code >= 300:
                raise QueueUnavailable(f"publishing to {self.topic} failed: HTTP {response.status_code} "
                                       f"{response.text[:200]}")
            self.published += len(batch)
