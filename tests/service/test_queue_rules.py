"""Fan-out, leases and heartbeats on in-memory ports (docs/architecture.md, "Queue"): the tick
only enqueues, each mailbox syncs in its own task, duplicates are harmless, a dead sync's
mailbox is taken over once its short lease has run out."""

import time
import types

import pytest

from mailbridge.services import mailboxes, push, sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

INSTANCE = "production"


@pytest.fixture
def world():
    services, accounts = memory_services(work_topic="mailbridge-work")
    for i in range(3):
        connected_mailbox(services, accounts, f"box{i}", f"box{i}@acme.example")
    return services, accounts


def rows(services, name):
    return sorted((r["gmail_message_id"], r["outcome"]) for r in services.store.inbound_log(name))


def deliver(accounts, name, count, subject="Request"):
    return [accounts.deliver(f"{name}@acme.example", make_mail(f"c{i}@customer.example", f"{name}@acme.example",
                                                                  f"{subject} {i}")) for i in range(count)]


def test_the_tick_only_enqueues_one_sync_task_per_connected_mailbox(world):
    services, accounts = world
    services.store.update_credential("box2", INSTANCE, {"status": "revoked"})
    deliver(accounts, "box0", 2)
    result = sync.poll(services, tick="t1")
    assert [(t["kind"], t["mailbox"], t["tick"]) for t in services.queue.tasks] == [
        ("sync", "box0", "t1"), ("sync", "box1", "t1")]
    assert [m["outcome"] for m in result["mailboxes"]] == ["queued", "queued"]
    assert rows(services, "box0") == []  # nothing synced inline


def test_a_named_mailbox_is_still_synced_inline(world):
    services, accounts = world
    deliver(accounts, "box0", 2)
    result = sync.poll(services, "box0")
    assert result["totals"]["created"] == 2
    assert [t for t in services.queue.tasks if t["kind"] == "sync"] == []


def test_delivered_tick_tasks_make_every_message_exactly_once(world):
    services, accounts = world
    for i in range(3):
        deliver(accounts, f"box{i}", 4)
    sync.poll(services, tick="t1")
    outcomes = services.queue.deliver(services)
    assert [o.status for o in outcomes] == [200, 200, 200]
    assert all(len(rows(services, f"box{i}")) == 4 for i in range(3))
    assert len(services.store.list_tickets(limit=100)) == 12


def test_a_duplicate_delivery_of_a_tick_task_is_skipped(world):
    services, accounts = world
    deliver(accounts, "box0", 2)
    task = {"kind": "sync", "mailbox": "box0", "instance": INSTANCE, "tick": "t1"}
    assert push.on_task(services, task).status == 200
    writes = services.store.write_count
    again = push.on_task(services, task)
    assert (again.status, again.reason) == (200, "this tick's sync already ran")
    assert services.store.write_count == writes
    assert len(rows(services, "box0")) == 2


def test_an_idle_mailbox_costs_one_history_list_and_no_write(world, monkeypatch):
    services, accounts = world
    push.on_task(services, {"kind": "sync", "mailbox": "box0", "instance": INSTANCE, "tick": "t0"})
    calls = []
    gmail_class = type(accounts.gmail("box0@acme.example"))
    original = gmail_class.new_mail

    def counting(self, start):  # one history listing covers the inbox and Spam
        calls.append(start)
        return original(self, start)

    monkeypatch.setattr(gmail_class, "new_mail", counting)
    writes = services.store.write_count
    outcome = push.on_task(services, {"kind": "sync", "mailbox": "box0", "instance": INSTANCE, "tick": "t1"})
    assert outcome.status == 200
    assert len(calls) == 1
    assert services.store.write_count == writes


def test_a_held_lease_asks_for_redelivery_and_an_expired_one_is_taken_over(world):
    services, accounts = world
    deliver(accounts, "box0", 3)
    store = services.store
    assert store.acquire_lease("box0", INSTANCE, "dead-sync", services.settings.lease_ttl_s)
    task = {"kind": "sync", "mailbox": "box0", "instance": INSTANCE}
    assert push.on_task(services, task).status == 429
    assert rows(services, "box0") == []
    store.update_sync("box0", INSTANCE, {"lease_expires_at": time.time() - 1})  # one lease period later
    assert push.on_task(services, task).status == 200
    state = store.get_sync("box0", INSTANCE)
    assert len(rows(services, "box0")) == 3
    assert state["lease_owner"] is None and state["abandoned_runs"] == 0  # careful run completed


def test_leases_are_short(world):
    services, _ = world
    assert services.settings.lease_ttl_s <= 60
    assert services.store.acquire_lease("box0", INSTANCE, "a", services.settings.lease_ttl_s)
    state = services.store.get_sync("box0", INSTANCE)
    assert state["lease_expires_at"] - state["lease_since"] == pytest.approx(services.settings.lease_ttl_s)


def test_a_heartbeat_renews_the_lease_of_its_owner(world):
    services, _ = world
    store = services.store
    store.acquire_lease("box0", INSTANCE, "me", 30)
    store.update_sync("box0", INSTANCE, {"lease_expires_at": time.time() + 1})
    beat = sync.Heartbeat(store, "box0", INSTANCE, "me", 30)
    assert beat.beat() is True
    assert store.get_sync("box0", INSTANCE)["lease_expires_at"] > time.time() + 20
    assert not beat.lost


def test_a_heartbeat_that_finds_another_owner_marks_the_lease_lost(world):
    services, _ = world
    store = services.store
    store.acquire_lease("box0", INSTANCE, "me", 30)
    store.update_sync("box0", INSTANCE, {"lease_expires_at": time.time() - 1})
    assert store.acquire_lease("box0", INSTANCE, "other", 30)
    beat = sync.Heartbeat(store, "box0", INSTANCE, "me", 30)
    assert beat.beat() is False
    assert beat.lost
    assert store.get_sync("box0", INSTANCE)["lease_owner"] == "other"


def test_a_sync_that_lost_its_lease_stops_and_leaves_the_history_id_to_the_new_owner(world, monkeypatch):
    services, accounts = world
    ids = deliver(accounts, "box0", 120)
    before = services.store.get_sync("box0", INSTANCE)["history_id"]
    original = sync.MailboxSync.ingest_chunk

    def stalled_then_taken_over(self, chunk):
        outcomes = original(self, chunk)
        # This process stalled past its lease; another sync took the mailbox over.
        services.store.update_sync("box0", INSTANCE, {"lease_owner": "other", "lease_expires_at": time.time() + 30})
        self.lease.beat()
        return outcomes

    monkeypatch.setattr(sync.MailboxSync, "ingest_chunk", stalled_then_taken_over)
    result = sync.sync_mailbox(services, "box0")
    state = services.store.get_sync("box0", INSTANCE)
    assert result["complete"] is False and result["lease"] == "lost"
    assert len(rows(services, "box0")) == sync.CHUNK < len(ids)
    assert state["history_id"] == before and state["lease_owner"] == "other"
    assert [t for t in services.queue.tasks if t["kind"] == "sync"] == []  # the new owner continues, not a continuation


def test_a_sync_out_of_budget_publishes_a_continuation_that_finishes_the_work(world):
    services, accounts = world
    deliver(accounts, "box0", sync.CHUNK + 10)
    first = sync.sync_mailbox(services, "box0", budget_s=0, task={"kind": "sync", "mailbox": "box0"})
    assert first["complete"] is False and first["continued"] is True
    assert len(rows(services, "box0")) == sync.CHUNK  # every run finishes its first chunk
    # the sync tasks only: the outbox's "send" task of the sync is its own (docs/outbox.md)
    assert [(t["mailbox"], t["continuation"]) for t in services.queue.tasks if t["kind"] == "sync"] == [("box0", "1")]
    services.queue.deliver(services)
    assert len(rows(services, "box0")) == sync.CHUNK + 10
    assert services.store.get_sync("box0", INSTANCE)["backlog"] == 0


def test_the_budget_is_checked_before_every_message_not_every_chunk(world, monkeypatch):
    services, accounts = world
    deliver(accounts, "box0", sync.CHUNK + 10)
    parsed = []
    real_parse = sync.decide.parse_message
    clock = {"offset": 0.0}

    def parse_and_age(raw):
        parsed.append(1)
        if len(parsed) == sync.CHUNK + 3:
            clock["offset"] = 10_000.0  # the budget runs out in the middle of the second chunk
        return real_parse(raw)

    monkeypatch.setattr(sync.decide, "parse_message", parse_and_age)  # the decide step parses
    monkeypatch.setattr(sync.run, "time", types.SimpleNamespace(  # the run checks the budget
        monotonic=lambda: time.monotonic() + clock["offset"], time=time.time, sleep=time.sleep))
    result = sync.sync_mailbox(services, "box0", budget_s=100)
    assert result["complete"] is False
    assert len(parsed) == sync.CHUNK + 3 and len(rows(services, "box0")) == sync.CHUNK + 3


def test_a_run_whose_budget_is_gone_before_it_starts_still_finishes_its_first_chunk(world):
    services, accounts = world
    deliver(accounts, "box0", 3)
    result = sync.sync_mailbox(services, "box0", budget_s=0)
    assert result["complete"] is True and len(rows(services, "box0")) == 3


def test_a_task_of_a_removed_mailbox_is_acknowledged_without_work(world):
    services, accounts = world
    sync.poll(services, tick="t1")
    services.store.docs.pop(("mailboxes", "box1"))  # removed while its task was queued
    outcomes = {o.fields.get("mailbox"): o for o in services.queue.deliver(services)}
    assert (outcomes["box1"].status, outcomes["box1"].reason) == (200, "no such mailbox (removed?)")
    assert outcomes["box0"].status == 200


def test_a_task_of_another_instance_is_acknowledged_without_work(world):
    services, accounts = world
    deliver(accounts, "box0", 1)
    outcome = push.on_task(services, {"kind": "sync", "mailbox": "box0", "instance": "uat"})
    assert (outcome.status, outcome.reason) == (200, "task for another instance")
    assert rows(services, "box0") == []


def test_send_tasks_go_to_the_outbox(world, monkeypatch):
    services, _ = world
    calls = []
    monkeypatch.setattr(push.outbox, "handle_send_task",
                        lambda services, mailbox, attributes: calls.append((mailbox, attributes["key"])))
    outcome = push.on_task(services, {"kind": "send", "mailbox": "box0", "instance": INSTANCE, "key": "k1"})
    assert outcome.status == 200 and calls == [("box0", "k1")]


def test_mailbox_show_says_who_holds_the_lease_since_and_until(world):
    services, _ = world
    assert mailboxes.view(services, services.store.get_mailbox("box0"))["lease"] is None
    services.store.acquire_lease("box0", INSTANCE, "sync-abc", 30)
    lease = mailboxes.view(services, services.store.get_mailbox("box0"))["lease"]
    assert lease["owner"] == "sync-abc"
    assert lease["since"] < lease["until"]
