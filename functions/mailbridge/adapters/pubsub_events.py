"""Ticket events on Pub/Sub (services/ports.EventTopic and EventSubscription; docs/events.md).

Each event is one message in CloudEvents' structured JSON mode: the data is the event's JSON,
the attribute `content-type` says so, `type` and `subject` repeat the event's for subscription
filters, and the ordering key is the subject (a ticket's id), so a subscription with message
ordering delivers each ticket's events in the order they were published. Same REST client as the
work queue (adapters/pubsub.py): nothing is imported before the first publish or pull.
"""

from __future__ import annotations

import base64
import json

from mailbridge.adapters.pubsub import PUBLISH_BATCH, PubSubClient
from mailbridge.errors import ConfigError

CLOUDEVENTS_JSON = "application/cloudevents+json"
REQUEST_BYTES = 8 * 1024 * 1024  # below Pub/Sub's 10 MB per publish request, base64 included


def event_message(event: dict) -> dict:
    """The Pub/Sub message of one CloudEvent."""
    data = base64.b64encode(json.dumps(event, separators=(",", ":"), sort_keys=True).encode()).decode()
    return {"data": data, "orderingKey": event["subject"],
            "attributes": {"content-type": CLOUDEVENTS_JSON, "type": event["type"], "subject": event["subject"]}}


def requests_of(messages: list[dict]) -> list[list[dict]]:
    """Messages cut into publish requests within Pub/Sub's limits, order kept."""
    batches: list[list[dict]] = [[]]
    size = 0
    for message in messages:
        length = len(message["data"]) + 200
        if batches[-1] and (len(batches[-1]) >= PUBLISH_BATCH or size + length > REQUEST_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += length
    return [batch for batch in batches if batch]


class EventTopic(PubSubClient):
    def __init__(self, settings):
        if not settings.events_topic:
            raise ConfigError("MAILBRIDGE_EVENTS_TOPIC is not set")
        super().__init__(settings, regional=True)
        self.topic = settings.events_topic_path
        self.published = 0  # events accepted (benchmarks read it)

    def publish(self, events: list[dict]) -> None:
        """Publish CloudEvents in order, one request after the other (each subject's order holds
        across requests); QueueUnavailable when Pub/Sub refuses one."""
        for batch in requests_of([event_message(e) for e in events]):
            self.post(f"{self.topic}:publish", {"messages": batch}, f"publish events to {self.topic}")
            self.published += len(batch)


class EventSubscription(PubSubClient):
    """A pull subscription on the events topic (`events tail`)."""

    def __init__(self, settings):
        if not settings.events_subscription:
            raise ConfigError("MAILBRIDGE_EVENTS_SUBSCRIPTION is not set")
        super().__init__(settings, regional=True)
        self.subscription = settings.events_subscription_path

    def pull(self, max_messages: int) -> list[tuple[str, dict]]:
        """Up to `max_messages` events as (ack id, CloudEvent), answered at once ([] when none
        waits): a pull held open by the server and abandoned by a caller that stops would take
        messages with it until their ack deadline, and with ordering hold back their ticket's later
        events."""
        response = self.post(f"{self.subscription}:pull", {"maxMessages": max_messages, "returnImmediately": True},
                             f"pull from {self.subscription}")
        pulled = []
        for received in response.json().get("receivedMessages", []):
            raw = base64.b64decode(received["message"].get("data", ""))
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"undecodable": raw[:200].decode("utf-8", "replace")}
            pulled.append((received["ackId"], event))
        return pulled

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self.post(f"{self.subscription}:acknowledge", {"ackIds": ack_ids}, f"acknowledge on {self.subscription}")
