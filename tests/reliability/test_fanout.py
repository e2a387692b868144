"""The fanned-out tick under failure (docs/architecture.md, "Queue"): real Firestore emulator and
fake Gmail; the work queue is tests/memory's recording queue, delivering each task to the same
code the `push` function runs (services/push.on_task) with Pub/Sub's at-least-once semantics:
a task whose handler died is delivered again, a task may arrive twice, late, or after its
mailbox is gone. Each scenario ends with every message exactly once.

A "kill" is a process dying at one store call of a task: from that call on nothing of that
process runs (no finally-block write, no heartbeat, no acknowledgement), as with kill -9; the
un-acknowledged task is then redelivered. Waiting one lease period is played by moving the dead
lease's expiry into the past (no sleeps).
"""

from __future__ import annotations

import threading
import time

import pytest

from mailbridge import bootstrap
from mailbridge.config import Settings
from mailbridge.services import push
from mailbridge.services import sync as ingest
from tests.conftest import reset_firestore
from tests.memory.queue import MemoryQueue
from tests.reliability.conftest import LEDGER, backlog_messages, connect, deliver_all

BOXES = ("fan-a", "fan-b")


class Killed(BaseException):
    """The process died (not an Exception: no handler of the product catches it)."""


class Mortal:
    """The store of one process: its `kill_at`-th call runs, then the process is dead and every
    later call (finally blocks, the heartbeat thread) dies too."""

    def __init__(self, store, kill_at: int | None):
        self._store, self.kill_at, self.calls, self.dead = store, kill_at, 0, False
        self.names: list[str] = []  # the store methods called, in order
        self._lock = threading.Lock()

    def __getattr__(self, name):
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            with self._lock:
                if self.dead:
                    raise Killed(name)
                self.calls += 1
                self.names.append(name)
                dies = self.calls == self.kill_at
            result = target(*args, **kwargs)
            if dies:
                self.dead = True
                raise Killed(name)
            return result

        return call


def services_with(queue, store=None):
    settings = Settings.from_env(work_topic="mailbridge-work")
    return bootstrap.bootstrap(settings, queue=queue, **({"store": store} if store is not None else {}))


@pytest.fixture
def world(mb_env, fake, firestore, storage_emulator):
    reset_firestore(firestore)
    fake.reset()
    queue = MemoryQueue()
    services = services_with(queue)
    for name in BOXES:
        connect(services, fake.url, name, f"{name}@acme.example")
    return services, queue, fake


def deliver_backlog(fake, counts: dict[str, int], tag: str) -> dict[str, list[str]]:
    return {name: deliver_all(fake.url, f"{name}@acme.example",
                              backlog_messages(n, f"{name}@acme.example", tag=f"{tag}-{name}"))
            for name, n in counts.items()}


def assert_exactly_once(services, ids: dict[str, list[str]]) -> None:
    """Every delivered message has one final row; over the whole mailbox (earlier rounds too)
    every ticket was created by exactly one row and holds exactly the rows that point at it."""
    final = ("created", "updated", "ignored", "quarantined")
    for name, gmail_ids in ids.items():
        rows = services.store.inbound_log(name, limit=10_000)
        mine = {r["gmail_message_id"]: r for r in rows if r["gmail_message_id"] in gmail_ids}
        lost = [g for g in gmail_ids if mine.get(g, {}).get("outcome") not in final]
        assert lost == [], (name, "lost", lost)
        tickets = services.store.list_tickets(mailbox=name, limit=10_000)
        created = [r for r in rows if r["outcome"] == "created"]
        assert len(created) == len(tickets) == len({r["ticket_id"] for r in created}), (name, "duplicated tickets")
        in_tickets = sum(int(t.get("message_count", 0)) for t in tickets)
        assert in_tickets == sum(1 for r in rows if r["outcome"] in ("created", "updated")), (name, "duplicated")
        state = services.store.get_sync(name, services.settings.instance)
        assert state.get("lease_owner") is None, name


def expire_lease(services, name: str) -> None:
    """One lease period later (the dead holder's heartbeat has stopped)."""
    state = services.store.get_sync(name, services.settings.instance)
    if state.get("lease_owner"):
        services.store.update_sync(name, services.settings.instance, {"lease_expires_at": time.time() - 1})


def deliver_until_done(services, queue, *, rounds: int = 10) -> list:
    """Pub/Sub's redelivery: deliver what is queued; a task answered 429 comes back after the
    lease period; stop when nothing is left."""
    outcomes = []
    for _ in range(rounds):
        outcomes += queue.deliver(services)
        if not queue.pending:
            return outcomes
        for task in queue.pending:
            expire_lease(services, task["mailbox"])
    raise AssertionError(f"tasks still pending after {rounds} rounds: {queue.pending}")


def kill_points(services, queue, fake) -> dict[int, str]:
    """The stages of one mailbox's tick task in a clean run: the first call of each store method
    it makes (settings, mailbox, sync state, lease, rows, chunk commits, release…) and its last
    call, as {call number: method}. A first tick runs before, so the counted run is like the
    later ones (its sync state records a completed run: no failed rows to read)."""
    ingest.poll(services, tick="warm-up")
    deliver_until_done(services, queue)
    ids = deliver_backlog(fake, {BOXES[0]: 55}, "clean")
    counter = Mortal(services.store, kill_at=None)
    ingest.poll(services, tick="clean")
    task = next(t for t in queue.take() if t["mailbox"] == BOXES[0])
    assert push.on_task(services_with(queue, counter), task).status == 200
    assert_exactly_once(services, ids)
    points = {}
    for number, name in enumerate(counter.names, start=1):
        if name not in points.values():
            points[number] = name
    points[len(counter.names)] = counter.names[-1]
    return points


@pytest.mark.timeout(1500)
# Each stage kills a run and has it taken over at once, back to back: the sync state is written
# about four times per stage (docs/architecture.md, "Per-document budget exceptions").
@pytest.mark.firestore_budget({"sync/*": 5.0}, "a sync killed and taken over at every stage, back to back")
def test_a_sync_killed_at_every_stage_of_a_fanned_out_tick_ends_exactly_once(world):
    services, queue, fake = world
    points = kill_points(services, queue, fake)
    assert {"acquire_lease", "commit_inbound_chunk", "release_lease"} <= set(points.values()), points
    for k, stage in points.items():
        ids = deliver_backlog(fake, {BOXES[0]: 55, BOXES[1]: 2}, f"k{k}")  # two chunks for the victim
        ingest.poll(services, tick=f"tick-{k}")
        victim, other = sorted(queue.take(), key=lambda t: t["mailbox"] != BOXES[0])
        mortal = Mortal(services.store, kill_at=k)
        with pytest.raises(Killed):
            push.on_task(services_with(queue, mortal), victim)
        queue.pending += [victim, other]  # never acknowledged: Pub/Sub delivers it again
        deliver_until_done(services, queue)
        assert_exactly_once(services, ids)
    LEDGER.figure("kill at every stage of a fanned-out tick task", stages=points, lost=0, duplicated=0)


def test_a_tick_that_died_while_publishing_is_retried_with_the_same_tick_id(world, monkeypatch):
    services, queue, fake = world
    ids = deliver_backlog(fake, {BOXES[0]: 5, BOXES[1]: 5}, "tick")
    published = []

    def dies_halfway(kind, tasks):
        queue.publish(kind, *tasks[0])
        published.append(tasks[0][0])
        raise Killed("poll died while publishing")

    monkeypatch.setattr(queue, "publish_many", dies_halfway)
    with pytest.raises(Killed):
        ingest.poll(services, tick="2026-12-02T10:00:00Z")
    queue.deliver(services)  # the first task ran before Cloud Scheduler retried the tick
    monkeypatch.undo()
    ingest.poll(services, tick="2026-12-02T10:00:00Z")  # the retry: same schedule time
    outcomes = deliver_until_done(services, queue)
    assert published == [BOXES[0]]
    assert [o.reason for o in outcomes if o.fields.get("mailbox") == BOXES[0]] == ["this tick's sync already ran"]
    assert_exactly_once(services, ids)


def test_every_task_delivered_twice_at_once_ends_exactly_once(world):
    services, queue, fake = world
    ids = deliver_backlog(fake, {BOXES[0]: 80, BOXES[1]: 80}, "dup")
    ingest.poll(services, tick="dup")
    tasks = queue.take()
    results = []

    def deliver(task):
        results.append(push.on_task(services_with(queue), task))  # its own clients, like two instances

    threads = [threading.Thread(target=deliver, args=(t,)) for t in tasks + tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    queue.pending += [t for t, r in zip(tasks + tasks, results) if r.status >= 300]
    deliver_until_done(services, queue)
    assert_exactly_once(services, ids)
    again = [push.on_task(services, t) for t in tasks]  # a late third copy
    assert {o.reason for o in again} == {"this tick's sync already ran"}
    assert_exactly_once(services, ids)


def test_a_redelivery_after_the_lease_moved_on_ends_exactly_once(world, monkeypatch):
    """A's instance stalls past its lease; the redelivered task (B) takes the mailbox over and
    finishes; then A wakes up and carries on from where it was."""
    services, queue, fake = world
    name = BOXES[0]
    ids = deliver_backlog(fake, {name: 150}, "late")
    ingest.poll(services, tick="late")
    task = next(t for t in queue.take() if t["mailbox"] == name)
    original = ingest.MailboxSync.ingest_chunk
    stalled = []

    def ingest_then_stall(self, chunk):
        outcomes = original(self, chunk)
        if not stalled:
            stalled.append(True)
            expire_lease(services, name)  # A's heartbeat did not run in time
            monkeypatch.setattr(ingest.MailboxSync, "ingest_chunk", original)
            takeover = push.on_task(services_with(queue), task)  # B: the redelivery
            assert takeover.status == 200, takeover.reason
        return outcomes

    monkeypatch.setattr(ingest.MailboxSync, "ingest_chunk", ingest_then_stall)
    first = push.on_task(services_with(queue), task)  # A
    assert stalled and first.status == 200
    assert_exactly_once(services, ids)
    # A released nothing over B: the history id is B's, and the next tick finds the mailbox idle.
    ingest.poll(services, tick="after")
    outcomes = deliver_until_done(services, queue)
    assert all(o.status == 200 for o in outcomes)
    assert_exactly_once(services, ids)


def test_a_mailbox_removed_while_its_task_is_queued(world):
    services, queue, fake = world
    ids = deliver_backlog(fake, {BOXES[0]: 5, BOXES[1]: 5}, "removed")
    ingest.poll(services, tick="removed")
    services.store.db.collection("mailboxes").document(BOXES[1]).delete()
    outcomes = {o.fields.get("mailbox"): o for o in deliver_until_done(services, queue)}
    assert (outcomes[BOXES[1]].status, outcomes[BOXES[1]].reason) == (200, "no such mailbox (removed?)")
    assert services.store.inbound_log(BOXES[1]) == []
    assert_exactly_once(services, {BOXES[0]: ids[BOXES[0]]})
