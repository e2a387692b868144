"""Concurrency: simultaneous polls of one mailbox, overlapping scheduler runs, a lease that
expires while its poll still works, and the lease's release and takeover."""

from __future__ import annotations

import threading
import time

import requests

from mailbridge.services import sync as ingest
from tests.helpers import make_services
from tests.reliability.conftest import (ADDRESS, LEDGER, MAILBOX, backlog_messages, connect, deliver_all,
                                        lost_and_duplicated, outcome_view)


def setup_backlog(fake, count):
    services = make_services()
    connect(services, fake.url)
    ingest.poll(services)
    return services, deliver_all(fake.url, ADDRESS, backlog_messages(count))


def run_together(targets):
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def runner(i, target):
        barrier.wait()
        try:
            results[i] = target()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_four_simultaneous_polls_ingest_each_message_once(mb_env, fake, firestore, storage_emulator):
    services, ids = setup_backlog(fake, 80)
    started = time.perf_counter()
    results = run_together([lambda: ingest.poll(make_services()) for _ in range(4)])
    seconds = time.perf_counter() - started
    outcomes = sorted(r["mailboxes"][0]["outcome"] for r in results)
    assert outcomes.count("ok") >= 1
    ingest.poll(services)
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, len(ids)) == (0, 0)
    assert view["rows"] == len(ids)
    assert services.store.get_sync(MAILBOX, services.settings.instance)["lease_owner"] is None
    LEDGER.figure("4 simultaneous polls", messages=len(ids), polls=4, outcomes=outcomes, lost=0, duplicated=0,
                  seconds=round(seconds, 2))


def test_overlapping_scheduler_run_backs_off_then_the_next_one_finishes(mb_env, fake, firestore, storage_emulator):
    services, ids = setup_backlog(fake, 60)
    requests.post(f"{fake.url}/_fake/faults", json={"latency_ms": 10}, timeout=10).raise_for_status()
    first: dict = {}
    runner = threading.Thread(target=lambda: first.update(ingest.poll(make_services())))
    runner.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not services.store.get_sync(MAILBOX, services.settings.instance).get("lease_owner"):
        time.sleep(0.02)
    overlapping = ingest.poll(make_services(), lease_wait_s=0)
    waiting = ingest.poll(make_services())  # the default waits briefly for the running poll
    runner.join(120)
    requests.post(f"{fake.url}/_fake/faults", json={}, timeout=10).raise_for_status()
    assert overlapping["mailboxes"][0]["outcome"] == "skipped"
    assert "another poll" in overlapping["mailboxes"][0]["reason"]
    assert first["mailboxes"][0]["outcome"] == "ok"
    assert waiting["mailboxes"][0]["outcome"] in ("ok", "skipped")
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, len(ids)) == (0, 0) and view["rows"] == len(ids)
    LEDGER.figure("overlapping scheduler runs", messages=len(ids), second_run="skipped (lease held)", lost=0,
                  duplicated=0)


def test_two_pollers_past_an_expired_lease_still_write_each_message_once(mb_env, fake, firestore, storage_emulator,
                                                                          monkeypatch):
    """The lease is an optimisation; exactly-once rests on create-only rows and ticket preconditions.
    A lease of 0.3 s expires while the first poll works on its first chunk; the second takes over."""
    monkeypatch.setenv("MAILBRIDGE_LEASE_MARGIN_S", "0")
    services, ids = setup_backlog(fake, 100)
    requests.post(f"{fake.url}/_fake/faults", json={"latency_ms": 5}, timeout=10).raise_for_status()

    def late(delay):
        def run():
            time.sleep(delay)
            return ingest.sync_mailbox(make_services(), MAILBOX, budget_s=0.3)
        return run

    results = run_together([late(0), late(0.35), late(0.7)])
    requests.post(f"{fake.url}/_fake/faults", json={}, timeout=10).raise_for_status()
    while not ingest.sync_mailbox(make_services(), MAILBOX).get("complete"):
        pass
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, len(ids)) == (0, 0) and view["rows"] == len(ids)
    LEDGER.figure("pollers past an expired lease", messages=len(ids), pollers=3,
                  outcomes=[r["outcome"] for r in results], lost=0, duplicated=0)


def test_lease_of_a_dead_poll_blocks_until_expiry_then_is_taken_over(mb_env, fake, firestore, storage_emulator):
    services, ids = setup_backlog(fake, 5)
    store, instance = services.store, services.settings.instance
    store.update_sync(MAILBOX, instance, {"lease_owner": "dead-poll", "lease_expires_at": time.time() + 600})
    blocked = ingest.poll(make_services(), lease_wait_s=0)
    assert blocked["mailboxes"][0]["outcome"] == "skipped"
    store.update_sync(MAILBOX, instance, {"lease_expires_at": time.time() - 1})
    taken = ingest.poll(make_services())
    assert taken["mailboxes"][0]["outcome"] == "ok"
    assert taken["totals"]["created"] + taken["totals"]["updated"] == 5
    assert store.get_sync(MAILBOX, instance)["lease_owner"] is None


def test_lease_is_released_when_the_poll_crashes(mb_env, fake, firestore, storage_emulator):
    from mailbridge.adapters.gmail import Gmail

    services, ids = setup_backlog(fake, 5)
    original = Gmail.get_raw_many

    def broken(self, ids):
        raise RuntimeError("injected crash inside the poll")

    Gmail.get_raw_many = broken
    try:
        crashed = ingest.poll(make_services())
    finally:
        Gmail.get_raw_many = original
    assert crashed["mailboxes"][0]["outcome"] == "error"
    sync = services.store.get_sync(MAILBOX, services.settings.instance)
    assert sync["lease_owner"] is None and "injected crash" in sync["last_error"]
    totals = ingest.poll(make_services())["totals"]
    assert totals["created"] + totals["updated"] == 5
