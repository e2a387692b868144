"""One mailbox's syncs coalesced (docs/architecture.md, "Queue": one run per stream of mail): a
task or notification that finds nothing new writes nothing, whatever its kind; mail arriving
while a run holds the lease is taken by that run, which lists the history again before it
releases the lease, so a stream of mail and its notifications make one run and two writes of
the sync state."""

import threading
import time

import pytest

from mailbridge.services import push, sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

INSTANCE = "production"
ADDRESS = "box0@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services(work_topic="mailbridge-work")
    connected_mailbox(services, accounts, "box0", ADDRESS)
    return services, accounts


@pytest.fixture
def sync_writes(world, monkeypatch):
    """Each write of the mailbox's sync state document (the lease taken, renewed, released)."""
    services, _ = world
    store, seen = services.store, []
    original = store._write

    def counted(writes, *args, **kwargs):
        seen.extend(key for collection, key, *_ in writes if collection == "sync")
        return original(writes, *args, **kwargs)

    monkeypatch.setattr(store, "_write", counted)
    return seen


def deliver(accounts, count, subject="Request"):
    return [accounts.deliver(ADDRESS, make_mail(f"c{subject}{i}@customer{i}.example", ADDRESS, f"{subject} {i}"))
            for i in range(count)]


def rows(services):
    return sorted(r["gmail_message_id"] for r in services.store.inbound_log("box0"))


def history_id(accounts):
    return accounts.account(ADDRESS)["history_id"]


def mail_during_passes(accounts, monkeypatch, arrivals: int) -> list[str]:
    """Two more messages arrive while each pass ingests, `arrivals` in all; returns their ids."""
    later: list[str] = []
    original = sync.MailboxSync.ingest_chunk

    def while_mail_keeps_coming(self, chunk):
        outcomes = original(self, chunk)
        if len(later) < arrivals:
            later.extend(deliver(accounts, 2, f"Later{len(later)}"))
        return outcomes

    monkeypatch.setattr(sync.MailboxSync, "ingest_chunk", while_mail_keeps_coming)
    return later


@pytest.mark.parametrize("task", [
    {"kind": "sync", "mailbox": "box0"},                          # a notification's task
    {"kind": "sync", "mailbox": "box0", "continuation": "1"},     # a duplicate continuation
    {"kind": "sync", "mailbox": "box0", "tick": "t2"},            # a tick
])
def test_a_task_that_finds_nothing_new_writes_nothing(world, task):
    services, accounts = world
    deliver(accounts, 2)
    assert push.on_task(services, {"kind": "sync", "mailbox": "box0", "instance": INSTANCE}).status == 200
    writes = services.store.write_count
    outcome = push.on_task(services, {**task, "instance": INSTANCE})
    assert (outcome.status, outcome.reason) == (200, "synchronized")
    assert services.store.write_count == writes
    assert services.store.get_sync("box0", INSTANCE)["lease_owner"] is None


def test_a_notification_for_a_change_that_brings_no_mail_writes_nothing(world):
    """Gmail notifies a watch on INBOX for label changes of inbox mail too (our own labels after
    processing, a person reading it): a notification past the stored history id whose history
    holds no new mail only costs the idle check."""
    services, accounts = world
    deliver(accounts, 1)
    push.on_task(services, {"kind": "sync", "mailbox": "box0", "instance": INSTANCE})
    accounts.account(ADDRESS)["history_id"] += 3  # label changes: history moves, no message added
    writes = services.store.write_count
    outcome = push.on_notification(services, ADDRESS, history_id(accounts))
    assert outcome.status == 200
    assert services.store.write_count == writes


def test_a_named_poll_of_an_idle_mailbox_writes_nothing(world):
    services, accounts = world
    deliver(accounts, 1)
    sync.poll(services, "box0")
    writes = services.store.write_count
    result = sync.poll(services, "box0")
    assert result["mailboxes"][0]["mode"] == "idle"
    assert services.store.write_count == writes


def test_mail_arriving_during_a_run_is_taken_by_the_same_run(world, monkeypatch, sync_writes):
    services, accounts = world
    first = deliver(accounts, 3, "First")
    later = mail_during_passes(accounts, monkeypatch, 6)  # during each of the first three passes
    result = sync.sync_mailbox(services, "box0", task={"kind": "sync", "mailbox": "box0"})
    assert result["complete"] is True and result["passes"] == 4
    assert rows(services) == sorted(first + later)
    assert len(sync_writes) == 2  # one run: the lease taken, and released with the new history id
    state = services.store.get_sync("box0", INSTANCE)
    assert state["history_id"] == str(history_id(accounts)) and state["backlog"] == 0
    # the notifications of that mail, delivered after the run, find it done
    for _ in later:
        outcome = push.on_notification(services, ADDRESS, history_id(accounts))
        assert outcome.reason == "already synchronized past this notification"
    assert len(sync_writes) == 2


def test_the_run_lists_the_history_again_before_it_releases_the_lease(world, monkeypatch):
    services, accounts = world
    deliver(accounts, 1, "Before")
    sync.sync_mailbox(services, "box0")
    deliver(accounts, 2)
    listed, released = [], []
    gmail_class = type(accounts.gmail(ADDRESS))
    original_list, original_release = gmail_class.new_mail, services.store.release_lease

    def listing(self, start):
        listed.append(("list", start))
        return original_list(self, start)

    def release(*args, **kwargs):
        released.append(len(listed))
        return original_release(*args, **kwargs)

    monkeypatch.setattr(gmail_class, "new_mail", listing)
    monkeypatch.setattr(services.store, "release_lease", release)
    start = services.store.get_sync("box0", INSTANCE)["history_id"]
    sync.sync_mailbox(services, "box0", task={"kind": "sync", "mailbox": "box0"})
    after = str(history_id(accounts))
    # the idle check's listing, which the run's pass starts from, then the listing again from
    # where the pass ended, before the lease is released
    assert listed == [("list", start), ("list", after)]
    assert released == [2]


def test_a_pass_that_runs_out_of_budget_keeps_the_history_id_of_the_pass_before(world, monkeypatch):
    services, accounts = world
    deliver(accounts, 2, "First")
    original = sync.MailboxSync.ingest_chunk
    marks = {}

    def then_a_burst(self, chunk):
        outcomes = original(self, chunk)
        if not marks:
            marks["after_first"] = str(history_id(accounts))
            deliver(accounts, sync.CHUNK + 5, "Burst")
        elif len(marks) == 1:
            marks["second"] = True
            self.deadline = 0  # the budget runs out during the second pass
        return outcomes

    monkeypatch.setattr(sync.MailboxSync, "ingest_chunk", then_a_burst)
    result = sync.sync_mailbox(services, "box0", budget_s=300, task={"kind": "sync", "mailbox": "box0"})
    state = services.store.get_sync("box0", INSTANCE)
    assert result["complete"] is False and result["continued"] is True
    assert state["history_id"] == marks["after_first"]  # only past what every row covers
    assert state["backlog"] == 5
    services.queue.deliver(services)  # the continuation takes the rest, each message once
    assert len(rows(services)) == 2 + sync.CHUNK + 5
    assert services.store.get_sync("box0", INSTANCE)["history_id"] == str(history_id(accounts))


def test_a_poll_that_waited_for_a_run_which_took_its_mail_writes_nothing(world, sync_writes):
    services, accounts = world
    deliver(accounts, 1, "Before")
    sync.sync_mailbox(services, "box0")
    store = services.store
    assert store.acquire_lease("box0", INSTANCE, "running-run", 30)
    deliver(accounts, 2)
    result = {}
    waiting = threading.Thread(target=lambda: result.update(sync.poll(services, "box0", lease_wait_s=10)))
    waiting.start()
    time.sleep(0.6)  # the poll found the lease held and waits
    # the running run took the new mail and released the lease past it
    store.release_lease("box0", INSTANCE, "running-run", {"history_id": str(history_id(accounts))})
    writes = len(sync_writes)
    waiting.join(timeout=15)
    assert result["mailboxes"][0]["mode"] == "idle"
    assert len(sync_writes) == writes


def test_every_pass_of_one_run_has_its_new_tickets_acknowledged_once(world, monkeypatch):
    services, accounts = world
    first = deliver(accounts, 3, "First")
    later = mail_during_passes(accounts, monkeypatch, 4)
    result = sync.sync_mailbox(services, "box0", task={"kind": "sync", "mailbox": "box0"})
    assert result["passes"] == 3
    acknowledgements = [r for r in services.store.outbox_records("box0", INSTANCE, kind="acknowledgement")]
    assert len(acknowledgements) == len(first + later) == 7
    assert len({r["ticket_id"] for r in acknowledgements}) == 7
    assert [t["mailbox"] for t in services.queue.tasks if t["kind"] == "send"]  # the outbox is asked to send
