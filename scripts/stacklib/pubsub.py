"""The Pub/Sub emulator, the Gmail push topic and the sharded work queue on it, each pushed to
the functions' `push`, and the ticket events topic with a pull subscription for `events tail`
(terraform/pubsub.tf, queue.tf and events.tf are the deployed twins)."""

from __future__ import annotations

import shutil

from .common import HOST, StackError, sdk_root

PUSH_TOPIC = "gmail-push"
PUSH_SUBSCRIPTION = "gmail-push-sub"
# The work queue (docs/architecture.md, "Queue"): topic {prefix}-work, pushed to the same `push`.
WORK_TOPIC = "mailbridge-work"
WORK_SUBSCRIPTION = "mailbridge-work-push"
# The emulator keeps at most two pushes in flight per subscription (scripts/bench_scale.py
# measures it) and ignores subscription filters, so the local work queue is sharded into 16
# topics, each with its own push subscription (MAILBRIDGE_WORK_SHARDS; shard 0 is WORK_TOPIC,
# shard k is WORK_TOPIC-kk): 32 deliveries in flight, as Cloud Run runs many `push` instances at
# once. A deployment keeps one topic: Terraform leaves the variable unset (docs/architecture.md, "Queue").
WORK_SHARDS = 16
# The local push subscription's ack deadline (= how long the emulator waits for `push`); the
# functions' push budget stays below it, as Terraform keeps it below the push timeout.
WORK_ACK_DEADLINE_S = 120
WORK_PUSH_BUDGET_S = 60
# Ticket events (docs/events.md): the functions publish each change's CloudEvent there, ordering
# key = ticket; `scripts/mailbridge events tail` reads the pull subscription, which delivers each
# ticket's events in order (message ordering on).
EVENTS_TOPIC = "mailbridge-events"
EVENTS_SUBSCRIPTION = "mailbridge-events-tail"


def pubsub_command(port: int, project: str) -> list[str] | None:
    root = sdk_root()
    java = shutil.which("java")
    if root and java:
        jars = sorted((root / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar"))
        if jars:
            return [java, "-jar", str(jars[-1]), f"--host={HOST}", f"--port={port}"]
    if shutil.which("gcloud"):
        return ["gcloud", "beta", "emulators", "pubsub", "start",
                f"--host-port={HOST}:{port}", f"--project={project}", "--quiet"]
    return None


def _pubsub_clients(host: str):
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    publisher = pubsub_v1.PublisherClient(
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)))
    subscriber = pubsub_v1.SubscriberClient(
        transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host)))
    return publisher, subscriber


def create_topic(host: str, topic: str) -> None:
    from google.api_core import exceptions

    publisher, _ = _pubsub_clients(host)
    try:
        publisher.create_topic(name=topic, timeout=10)
    except exceptions.AlreadyExists:
        pass
    except Exception as e:
        raise StackError(f"pubsub: could not create topic {topic}: {e}") from e


def work_topics(project: str, shards: int = WORK_SHARDS) -> list[str]:
    """The work queue's topic per shard (shard 0 is the work topic itself)."""
    base = f"projects/{project}/topics/{WORK_TOPIC}"
    return [base if shard == 0 else f"{base}-{shard:02d}" for shard in range(shards)]


def create_work_subscription(host: str, project: str, endpoint: str | list[str]) -> list[str]:
    """The work queue's topics and their push subscriptions (terraform/queue.tf is the deployed
    twin): tasks to `push`, redelivered with backoff when it answers 429/5xx or does not answer
    in time. Called again, it repoints every subscription to `endpoint`. Several endpoints (the
    bench's functions servers, standing in for Cloud Run's instances) share the shards in turn."""
    from google.pubsub_v1 import types

    endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    paths = []
    for shard, topic in enumerate(work_topics(project)):
        create_topic(host, topic)
        name = WORK_SUBSCRIPTION if shard == 0 else f"{WORK_SUBSCRIPTION}-{shard:02d}"
        paths.append(create_push_subscription(
            host, topic, project, name, endpoints[shard % len(endpoints)], ack_deadline_s=WORK_ACK_DEADLINE_S,
            retry_policy=types.RetryPolicy(minimum_backoff={"seconds": 1}, maximum_backoff={"seconds": 10})))
    return paths


def create_events_subscription(host: str, project: str, name: str = EVENTS_SUBSCRIPTION) -> str:
    """The events topic and an ordered pull subscription on it (terraform/events.tf's twin);
    another name makes another subscription (a test's own), which sees only later events."""
    from google.api_core import exceptions
    from google.pubsub_v1 import types

    topic = f"projects/{project}/topics/{EVENTS_TOPIC}"
    create_topic(host, topic)
    _, subscriber = _pubsub_clients(host)
    path = f"projects/{project}/subscriptions/{name}"
    try:
        subscriber.create_subscription(request=types.Subscription(
            name=path, topic=topic, ack_deadline_seconds=60, enable_message_ordering=True), timeout=10)
    except exceptions.AlreadyExists:
        pass
    except Exception as e:
        raise StackError(f"pubsub: could not create subscription {path}: {e}") from e
    return path


def create_push_subscription(host: str, topic: str, project: str, name: str, endpoint: str, *,
                             ack_deadline_s: int = 30, retry_policy=None) -> str:
    """Create (or repoint) the push subscription that delivers Gmail notifications to `push`."""
    from google.api_core import exceptions
    from google.pubsub_v1 import types

    _, subscriber = _pubsub_clients(host)
    path = f"projects/{project}/subscriptions/{name}"
    try:
        subscriber.create_subscription(request=types.Subscription(
            name=path, topic=topic, push_config=types.PushConfig(push_endpoint=endpoint),
            ack_deadline_seconds=ack_deadline_s, retry_policy=retry_policy), timeout=10)
    except exceptions.AlreadyExists:
        subscriber.modify_push_config(subscription=path,
                                      push_config=types.PushConfig(push_endpoint=endpoint), timeout=10)
    except Exception as e:
        raise StackError(f"pubsub: could not create subscription {path}: {e}") from e
    return path
