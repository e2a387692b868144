"""The work queue's shards (docs/architecture.md, "Queue"): a mailbox's tasks always go to the
same topic, every shard has one, and the count is checked where it is read."""

from __future__ import annotations

import collections

import pytest

from mailbridge.adapters.pubsub import PubSubQueue, shard_of
from mailbridge.config import Settings
from mailbridge.errors import ConfigError
import stacklib


def settings(**env) -> Settings:
    return Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "MAILBRIDGE_WORK_TOPIC": "mailbridge-work", **env})


def test_one_shard_is_the_work_topic_itself():
    one = settings()
    assert one.work_shards == 1
    assert {one.work_topic_of(shard_of(f"m{i}", 1)) for i in range(50)} == {"projects/p/topics/mailbridge-work"}


def test_a_mailbox_keeps_its_shard_and_every_shard_gets_mailboxes():
    counts = collections.Counter(shard_of(f"help-{i}", 16) for i in range(1600))
    assert sorted(counts) == list(range(16))
    assert min(counts.values()) > 50  # spread, not all on a few topics
    assert shard_of("help-7", 16) == shard_of("help-7", 16)


def test_shard_topics_are_numbered_after_the_work_topic():
    sixteen = settings(MAILBRIDGE_WORK_SHARDS="16")
    assert sixteen.work_topic_of(0) == "projects/p/topics/mailbridge-work"
    assert sixteen.work_topic_of(15) == "projects/p/topics/mailbridge-work-15"


@pytest.mark.parametrize("value", ["0", "17", "two"])
def test_a_shard_count_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="MAILBRIDGE_WORK_SHARDS"):
        settings(MAILBRIDGE_WORK_SHARDS=value)


def test_the_local_stack_creates_the_topics_the_functions_publish_to():
    sixteen = settings(MAILBRIDGE_WORK_SHARDS=str(stacklib.WORK_SHARDS))
    assert stacklib.work_topics("p") == [sixteen.work_topic_of(s) for s in range(stacklib.WORK_SHARDS)]


class RecordingSession:
    """Stands in for the HTTP session: keeps every publish request it is given."""

    def __init__(self):
        self.requests = []

    def post(self, url, json, timeout):
        self.requests.append((url, json["messages"]))
        return type("Answer", (), {"status_code": 200, "text": ""})()


def test_a_fan_out_publishes_each_task_to_its_mailbox_shard_in_one_request_per_topic():
    queue = PubSubQueue(settings(MAILBRIDGE_WORK_SHARDS="4", PUBSUB_EMULATOR_HOST="127.0.0.1:1"))
    queue._session = RecordingSession()
    names = [f"m{i}" for i in range(40)]
    queue.publish_many("sync", [(name, {"tick": "t"}) for name in names])
    requests_ = queue._session.requests
    assert len(requests_) == len({shard_of(n, 4) for n in names})
    for url, messages in requests_:
        for message in messages:
            topic = url.removeprefix("http://127.0.0.1:1/v1/").removesuffix(":publish")
            assert topic == queue.settings.work_topic_of(shard_of(message["attributes"]["mailbox"], 4))
    assert sorted(m["attributes"]["mailbox"] for _, ms in requests_ for m in ms) == sorted(names)
    assert queue.published == 40
