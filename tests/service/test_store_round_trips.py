"""What one work-queue task asks of the store (docs/benchmarks.md, "Scale out"): an idle tick
task reads its mailbox and sync state in one call and writes nothing; a task that finds mail
starts its run from the sync state the lease's write read, commits from the run's read of its
rows, and publishes the events of its own commits from the rows it wrote, without reading any of
them back."""

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
    assert calls["get_inbound_rows"] == 1, calls  # the run's read serves its commit
    assert len(services.event_topic.published) == 3


def test_a_row_written_after_the_runs_read_makes_the_commit_read_again_and_nothing_doubles(world):
    """Another writer's row between the run's read and its commit (a lost lease): the first
    attempt's create fails, the next reads the rows afresh, and the message keeps its one row."""
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("c0@customer.example", ADDRESS, "Request"))
    store = services.store
    original = store.get_inbound_rows

    def then_another_writer(mailbox, ids):
        rows = original(mailbox, ids)
        for gmail_id in ids:
            if gmail_id not in rows:
                store.put_inbound_row(mailbox, gmail_id, {"mailbox": mailbox, "gmail_message_id": gmail_id,
                                                          "outcome": "ignored", "reason": "another writer",
                                                          "attempts": 1, "ticket_id": None,
                                                          "processed_at": "2026-01-01T00:00:00Z"})
        store.get_inbound_rows = original  # once
        return rows

    store.get_inbound_rows = then_another_writer
    outcome = push.on_task(services, {"kind": "sync", "mailbox": "box0", "tick": "t2"})
    assert outcome.status == 200
    rows = store.inbound_log("box0")
    assert [r["reason"] for r in rows] == ["another writer"] and store.list_tickets() == []
