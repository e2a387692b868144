"""What one work-queue task asks of the store (docs/benchmarks.md, "Scale out"): an idle tick
task reads its mailbox and sync state in one call and writes nothing; a task that finds mail
starts its run from the sync state the lease's write read, and publishes the events of its own
commits from the rows it wrote, without reading either back."""

import collections

import pytest

from mailbridge.services import push
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "box0@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services(work_topic="mailbridge-work")
    connected_mailbox(services, accounts, "box0", ADDRESS)
    push.on_task(services, {"kind": "sync", "mailbox": "box0", "tick": "first"})  # its first sync
    return services, accounts


def counted(services) -> collections.Counter:
    """Each store method a task calls, counted."""
    store, calls = services.store, collections.Counter()

    class Counting:
        def __getattr__(self, name):
            calls[name] += 1
            return getattr(store, name)

    services._overrides["store"] = Counting()
    return calls


def test_an_idle_tick_task_reads_its_mailbox_and_sync_state_in_one_call_and_writes_nothing(world):
    services, _accounts = world
    calls = counted(services)
    outcome = push.on_task(services, {"kind": "sync", "mailbox": "box0", "tick": "t2"})
    assert outcome.status == 200
    assert dict(calls) == {"mailbox_with_sync": 1}, calls


def test_a_task_with_mail_reads_the_sync_state_only_with_its_mailbox_and_its_rows_never_back(world):
    services, accounts = world
    for i in range(3):
        accounts.deliver(ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"Request {i}"))
    calls = counted(services)
    outcome = push.on_task(services, {"kind": "sync", "mailbox": "box0", "tick": "t2"})
    assert outcome.status == 200 and outcome.fields["counts"]["created"] == 3
    assert calls["mailbox_with_sync"] == 1 and calls["acquire_lease"] == 1
    assert calls["get_sync"] == 0 and calls["event_message_rows"] == 0, calls
    assert len(services.event_topic.published) == 3
