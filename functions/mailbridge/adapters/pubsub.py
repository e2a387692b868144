"""The work queue on Pub/Sub (services/ports.WorkQueue; docs/architecture.md, "Queue").

Publishes through Pub/Sub's REST API with google-auth's AuthorizedSession (requests is already
a runtime dependency), so the functions need no gRPC client library and `import main` stays
cheap: nothing here is imported until the first task is published. On the local stack the
session talks plain HTTP to the emulator (PUBSUB_EMULATOR_HOST), which serves the same REST API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading

from mailbridge.errors import ConfigError, MailbridgeError

PUBLISH_BATCH = 1000  # Pub/Sub's limit of messages per publish request
TIMEOUT_S = 30


def shard_of(mailbox: str, shards: int) -> int:
    """The shard whose topic carries a mailbox's tasks: stable per mailbox name."""
    return int(hashlib.sha256(mailbox.encode()).hexdigest()[:8], 16) % max(shards, 1)


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


class PubSubClient:
    """Pub/Sub's REST API over one lazily made session (the emulator's plain HTTP locally):
    what the work queue and the ticket events (adapters/pubsub_events.py) share."""

    def __init__(self, settings, regional: bool = False):
        self.settings = settings
        if settings.pubsub_emulator_host:
            self.base = f"http://{settings.pubsub_emulator_host}"
        elif regional and settings.region:  # ordering keys hold within a region (docs/events.md)
            self.base = f"https://{settings.region}-pubsub.googleapis.com"
        else:
            self.base = "https://pubsub.googleapis.com"
        self._session = None
        self._lock = threading.Lock()

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

    def post(self, path: str, body: dict, what: str):
        """POST to `{base}/v1/{path}`; QueueUnavailable when Pub/Sub cannot be reached or refuses."""
        import requests

        try:
            response = self.session().post(f"{self.base}/v1/{path}", json=body, timeout=TIMEOUT_S)
        except requests.RequestException as e:
            raise QueueUnavailable(f"cannot {what}: {e.__class__.__name__}") from None
        if response.status_code >= 300:
            raise QueueUnavailable(f"{what} failed: HTTP {response.status_code} {response.text[:200]}")
        return response


class PubSubQueue(PubSubClient):
    def __init__(self, settings):
        if not settings.work_topic:
            raise ConfigError("MAILBRIDGE_WORK_TOPIC is not set")
        super().__init__(settings)
        self.topic = settings.work_topic_path
        self.published = 0  # messages accepted (benchmarks read it)

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        self.publish_many(kind, [(mailbox, attributes)])

    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None:
        """Publish many tasks in as few requests as Pub/Sub allows (the tick's fan-out), each
        to its mailbox's shard topic."""
        by_topic: dict[str, list[dict]] = {}
        for mailbox, attrs in tasks:
            topic = self.settings.work_topic_of(shard_of(mailbox, self.settings.work_shards))
            by_topic.setdefault(topic, []).append(task_message(self.settings, kind, mailbox, attrs))
        for topic, messages in by_topic.items():
            for start in range(0, len(messages), PUBLISH_BATCH):
                self._publish(topic, messages[start:start + PUBLISH_BATCH])

    def _publish(self, topic: str, batch: list[dict]) -> None:
        self.post(f"{topic}:publish", {"messages": batch}, f"publish to {topic}")
        self.published += len(batch)
