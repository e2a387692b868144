"""The ticket events topic in memory (services/ports.EventTopic and EventSubscription): records
every publish in order; a test may make the next publishes fail, as a Pub/Sub outage would. The
subscription hands out what was published since it last pulled, at least once."""

from __future__ import annotations

import copy

from mailbridge.adapters.pubsub import QueueUnavailable


class MemoryEventTopic:
    def __init__(self):
        self.published: list[dict] = []  # every CloudEvent accepted, in publish order
        self.requests = 0
        self.failing = 0  # the next N publishes fail

    def publish(self, events: list[dict]) -> None:
        self.requests += 1
        if self.failing:
            self.failing -= 1
            raise QueueUnavailable("publish events: HTTP 503 (simulated outage)")
        self.published.extend(copy.deepcopy(events))

    def ids(self) -> list[str]:
        return [e["id"] for e in self.published]


class MemoryEventSubscription:
    def __init__(self, topic: MemoryEventTopic):
        self.topic = topic
        self.next = 0
        self.acked: list[str] = []

    def pull(self, max_messages: int) -> list[tuple[str, dict]]:
        taken = self.topic.published[self.next:self.next + max_messages]
        start, self.next = self.next, self.next + len(taken)
        return [(str(start + i), copy.deepcopy(event)) for i, event in enumerate(taken)]

    def ack(self, ack_ids: list[str]) -> None:
        self.acked.extend(ack_ids)
