"""Crash at every step: a crash right after the k-th call of each external boundary (Gmail,
Firestore commits, Secret Manager, Cloud Storage), then one more poll; the result must equal a
clean run's: 0 lost, 0 duplicated. Plus a real SIGKILL of a polling process.

The crash is injected at the adapter boundary: the library method runs (its effect is real) and
then raises, like a process dying before it could use the answer. The default run uses a
200-message backlog and every call of each boundary (40 crashes); `make soak` does the same
with 500 messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from mailbridge.services import sync as ingest
from tests.conftest import TEST_PROJECT, reset_firestore
from tests.helpers import make_services
from tests.reliability.conftest import (ADDRESS, LEDGER, MAILBOX, SOAK, backlog_messages, connect, deliver_all,
                                        event_problems, gmail_labels, lost_and_duplicated, outcome_view,
                                        remember_access_tokens)


class InjectedCrash(Exception):
    """Raised right after an external call succeeded."""


def _boundaries():
    from google.cloud.firestore_v1.batch import WriteBatch
    from google.cloud.firestore_v1.transaction import Transaction
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient
    from google.cloud.storage.blob import Blob

    from mailbridge.adapters.gmail import Gmail

    # name: (owner, attribute, filter on the call's arguments or None)
    return {
        "gmail history.list": (Gmail, "_execute", lambda args, kw: args[0] == "history.list"),
        "gmail messages.list": (Gmail, "_execute", lambda args, kw: args[0] == "messages.list"),
        "gmail batch get": (Gmail, "get_raw_many", None),
        "gmail modify": (Gmail, "_execute", lambda args, kw: args[0] in ("messages.modify", "messages.batchModify")),
        "firestore batch commit": (WriteBatch, "commit", None),
        "firestore transaction commit": (Transaction, "_commit", None),
        "secret manager access": (SecretManagerServiceClient, "access_secret_version", None),
        "storage upload": (Blob, "upload_from_string", None),
    }


class Injector:
    """Counts calls of one boundary; with `crash_at=k`, the k-th call runs and then raises."""

    def __init__(self, owner, attribute, selects, crash_at: int | None = None):
        self.owner, self.attribute, self.selects, self.crash_at = owner, attribute, selects, crash_at
        self.calls = 0
        self.crashed = False
        self.lock = threading.Lock()

    def __enter__(self):
        injector = self
        self.original = original = self.owner.__dict__[self.attribute]  # may be another injector

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            if injector.selects is None or injector.selects(args[1:], kwargs):
                with injector.lock:
                    injector.calls += 1
                    crash = injector.calls == injector.crash_at
                    injector.crashed |= crash
                if crash:
                    raise InjectedCrash(f"crash after {injector.attribute} call {injector.calls}")
            return result

        setattr(self.owner, self.attribute, wrapper)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.attribute, self.original)


def fresh_backlog(fake, firestore, count: int, *, expire_history: bool = False):
    """A clean world: one connected mailbox (history recorded) and `count` new messages."""
    reset_firestore(firestore)
    fake.reset()
    services = make_services()
    connect(services, fake.url)
    ingest.poll(services)
    ids = deliver_all(fake.url, ADDRESS, backlog_messages(count))
    if expire_history:  # the next poll must list the inbox (messages.list) instead of history
        requests.post(f"{fake.url}/_fake/users/{ADDRESS}/expire-history", timeout=10).raise_for_status()
    return services, ids


def crash_poll(services):
    """One poll that may crash; a crash that escapes poll() is a crash of the function."""
    try:
        return ingest.poll(services)
    except Exception as e:  # noqa: BLE001 - the injected crash may escape: that is the point
        LEDGER.record("exception crash_poll", f"{e.__class__.__name__}: {e}")
        return {"crashed": f"{e.__class__.__name__}: {e}"}


_CLEAN: dict = {}


def clean_run(fake, firestore, count: int, expire_history: bool = False):
    """The reference: the same backlog polled without faults, and each boundary's call count."""
    key = (count, expire_history)
    if key not in _CLEAN:
        services, ids = fresh_backlog(fake, firestore, count, expire_history=expire_history)
        boundaries = _boundaries()
        injectors = [Injector(*spec) for spec in boundaries.values()]
        with contextlib.ExitStack() as stack:
            for injector in injectors:
                stack.enter_context(injector)
            started = time.perf_counter()
            ingest.poll(make_services())
            seconds = time.perf_counter() - started
        counts = {name: injector.calls for name, injector in zip(boundaries, injectors)}
        view = outcome_view(services, ids)
        assert lost_and_duplicated(view, len(ids)) == (0, 0)
        assert view["rows"] == len(ids)
        assert event_problems(services) == []
        _CLEAN[key] = (view, counts)
        LEDGER.figure(f"clean poll of {count} messages" + (" (full sync)" if expire_history else ""),
                      seconds=round(seconds, 2), calls=counts, tickets=view["tickets"])
    return _CLEAN[key]


# A clean poll makes no transaction commit: its lease writes are updates guarded by the sync
# state's version (adapters/firestore/sync.py), batch commits here; the transaction is their
# fallback when the version changed or an answer was lost, which a crash after the lease's batch
# commit exercises (docs/reliability.md). "firestore transaction commit" stays in _boundaries.
BOUNDARY_NAMES = ["gmail history.list", "gmail messages.list", "gmail batch get", "gmail modify",
                  "firestore batch commit", "secret manager access", "storage upload"]


def crash_every_step(fake, firestore, boundary: str, count: int, every_call: bool):
    expire = boundary == "gmail messages.list"  # only a full sync lists the inbox
    reference, counts = clean_run(fake, firestore, count, expire_history=expire)
    total = counts[boundary]
    assert total, f"the clean run never called {boundary}: {counts}"
    ks = list(range(1, total + 1)) if every_call else sorted({1, (total + 1) // 2, total})
    results = []
    started = time.perf_counter()
    for k in ks:
        services, ids = fresh_backlog(fake, firestore, count, expire_history=expire)
        owner, attribute, selects = _boundaries()[boundary]
        with Injector(owner, attribute, selects, crash_at=k) as injector:
            crashed = crash_poll(make_services())
        assert injector.crashed, f"{boundary} call {k} never happened"
        recovered = ingest.poll(make_services())
        remember_access_tokens(services)
        assert all(m["outcome"] == "ok" for m in recovered["mailboxes"]), (boundary, k, recovered)
        view = outcome_view(services, ids)
        lost, duplicated = lost_and_duplicated(view, len(ids))
        results.append({"k": k, "lost": lost, "duplicated": duplicated,
                        "crash": crashed.get("crashed") or [m.get("error", m["outcome"]) for m in crashed["mailboxes"]]})
        assert (lost, duplicated) == (0, 0), (boundary, k)
        assert view == reference, f"{boundary}: crash after call {k} changed the result"
        assert event_problems(services) == [], f"{boundary} call {k}: not exactly one event per change"
        unread = [gid for gid, labels in gmail_labels(fake.url).items() if "UNREAD" in labels]
        assert unread == [], f"{boundary} call {k}: post-processing not re-applied"
    LEDGER.figure(f"crash after {boundary} ({count} messages)", messages=count, calls_in_clean_run=total,
                  crashes_injected=len(results), crash_points=ks, lost=sum(r["lost"] for r in results),
                  duplicated=sum(r["duplicated"] for r in results), seconds=round(time.perf_counter() - started, 1))


# Each crash point starts a new worker process: each reserves its own ticket-number block,
# records its run on the mailbox and its Gmail units in the ingestion pacing document, dozens of
# processes a minute; and each crash point writes the
# sync state four or five times in about a second and a half (a fresh world, the lease taken by
# the worker that dies, released or taken over, released): docs/architecture.md, "Per-document
# budget exceptions".
@pytest.mark.firestore_budget({"counters/tickets": 3.0, "mailboxes/*": 3.0, "sync/*": 5.0, "send_pacing/*": 3.0},
                              "a worker killed and restarted per call")
@pytest.mark.parametrize("boundary", BOUNDARY_NAMES)
def test_crash_after_each_call_loses_and_duplicates_nothing(mb_env, fake, firestore, storage_emulator, boundary):
    crash_every_step(fake, firestore, boundary, count=200, every_call=True)


@pytest.mark.soak
@pytest.mark.timeout(1800)  # 52 Cloud Storage crash points × a fresh 500-message world: about 5 min
@pytest.mark.parametrize("boundary", BOUNDARY_NAMES)
def test_soak_crash_after_every_call_of_a_500_message_backlog(mb_env, fake, firestore, storage_emulator, boundary):
    crash_every_step(fake, firestore, boundary, count=500, every_call=True)


KILL_SCRIPT = """
import sys
from tests.helpers import make_services
from mailbridge.services import sync as ingest
print(ingest.sync_mailbox(make_services(), sys.argv[1], budget_s=float(sys.argv[2])), flush=True)
"""


def test_sigkill_mid_poll_then_takeover_after_lease_expiry(mb_env, fake, firestore, storage_emulator, monkeypatch):
    count = 200 if SOAK else 120
    budget, margin = 3.0, 1.0
    monkeypatch.setenv("MAILBRIDGE_LEASE_MARGIN_S", str(margin))
    services, ids = fresh_backlog(fake, firestore, count)
    # Latency on every Gmail call, so the kill lands while the poll is still working.
    requests.post(f"{fake.url}/_fake/faults", json={"latency_ms": 15}, timeout=10).raise_for_status()
    process = _poll_process(budget)
    inbound = services.store.db.collection("inbound")
    deadline = time.monotonic() + 60
    rows_at_kill = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            rows_at_kill = len(list(inbound.select(["outcome"]).stream()))
            if rows_at_kill:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate(timeout=30)
        LEDGER.record("stderr killed poll", err.decode("utf-8", "replace"))
    requests.post(f"{fake.url}/_fake/faults", json={}, timeout=10).raise_for_status()
    assert 0 < rows_at_kill < count
    sync = services.store.get_sync(MAILBOX, services.settings.instance)
    assert sync.get("lease_owner"), "the killed poll held the lease"
    # While the lease lives, another poll backs off instead of racing the dead one.
    blocked = ingest.sync_mailbox(make_services(), MAILBOX, lease_wait_s=0)
    if time.time() < sync["lease_expires_at"]:
        assert blocked["outcome"] == "skipped" and "another poll" in blocked["reason"], blocked
    time.sleep(max(0.0, sync["lease_expires_at"] - time.time()) + 0.1)
    recovered = ingest.poll(make_services())
    took_over_after = time.monotonic() - killed_at
    assert recovered["mailboxes"][0]["outcome"] == "ok", recovered
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, count) == (0, 0)
    assert view["rows"] == count
    assert event_problems(services) == [], "a killed worker: not exactly one event per change"
    assert services.store.get_sync(MAILBOX, services.settings.instance).get("lease_owner") is None
    LEDGER.figure("SIGKILL mid-poll", messages=count, rows_at_kill=rows_at_kill, lease_ttl_s=budget + margin,
                  took_over_after_s=round(took_over_after, 2), lost=0, duplicated=0)


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def _poll_process(budget: float):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["functions", "."])}
    return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, MAILBOX, str(budget)], cwd=str(_repo()),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_message_that_kills_every_poll_is_quarantined_and_the_mailbox_goes_on(
        mb_env, fake, firestore, storage_emulator, monkeypatch):
    """Out of memory kills a Cloud Function without a word: nothing is written, and the same big
    message would come back and kill every later poll. A big message's attempt is counted before
    parsing, so after max_attempts (3) deaths it is quarantined and the mail behind it flows."""
    from tests.corpus import make_message

    budget, margin = 2.0, 0.5
    monkeypatch.setenv("MAILBRIDGE_LEASE_MARGIN_S", str(margin))
    reset_firestore(firestore)
    fake.reset()
    services = make_services()
    connect(services, fake.url)
    ingest.poll(services)
    big = make_message(subject="Scans", message_id="<scans@customer.example>", attachments=[
        ("scan.bin", "application/octet-stream", os.urandom(ingest.BIG_MESSAGE_BYTES + 4 * 1024 * 1024))])
    ids = deliver_all(fake.url, ADDRESS, [big] + backlog_messages(5, tag="after"))
    row_ref = services.store.inbound_ref(MAILBOX, ids[0])
    kills, abandoned = [], []
    for attempt in range(1, services.settings.max_attempts + 1):
        process = _poll_process(budget)
        try:
            deadline = time.monotonic() + 60
            # The kill lands while the big message is being worked on: its attempt is counted.
            while time.monotonic() < deadline and process.poll() is None:
                row = row_ref.get().to_dict() or {}
                if row.get("unfinished") and row.get("attempts") == attempt:
                    break
                time.sleep(0.02)
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            process.send_signal(signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            _out, err = process.communicate(timeout=30)
            LEDGER.record("stderr killed poll", err.decode("utf-8", "replace"))
        kills.append(row_ref.get().to_dict())
        sync = services.store.get_sync(MAILBOX, services.settings.instance)
        abandoned.append(sync.get("abandoned_runs", 0))
        time.sleep(max(0.0, sync["lease_expires_at"] - time.time()) + 0.1)
    assert [(k["outcome"], k["attempts"]) for k in kills] == [("failed", 1), ("failed", 2), ("failed", 3)]
    assert abandoned == [0, 1, 2], "each run after a death knows how many died before it"
    summary = ingest.poll(make_services())["mailboxes"][0]
    assert summary["outcome"] == "ok" and summary["counts"]["quarantined"] == 1, summary
    row = row_ref.get().to_dict()
    assert row["outcome"] == "quarantined" and "never finished" in row["reason"], row
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, len(ids)) == (0, 0)
    sync = services.store.get_sync(MAILBOX, services.settings.instance)
    assert sync.get("lease_owner") is None
    assert sync.get("abandoned_runs") == 0, "a completed run ends the one-at-a-time mode"
    # After the admin gives it more memory and presses Retry, it is ingested as attempt 1.
    ingest.retry_quarantined(services, MAILBOX, ids[0])
    assert ingest.poll(make_services())["totals"]["created"] == 1
    row = row_ref.get().to_dict()
    assert (row["outcome"], row["attempts"], row.get("unfinished")) == ("created", 1, None), row
    LEDGER.figure("poll killed by one big message, 3 times", messages=len(ids), bytes=len(big), kills=len(kills),
                  quarantined=1, lost=0, duplicated=0)


def test_big_message_counts_one_attempt_when_it_succeeds(mb_env, fake, firestore, storage_emulator):
    from tests.corpus import make_message

    services, _ = fresh_backlog(fake, firestore, 0)
    big = make_message(subject="Scans", message_id="<scans2@customer.example>", attachments=[
        ("scan.bin", "application/octet-stream", os.urandom(ingest.BIG_MESSAGE_BYTES))])
    [gid] = deliver_all(fake.url, ADDRESS, [big])
    assert ingest.poll(services)["totals"]["created"] == 1
    row = services.store.inbound_ref(MAILBOX, gid).get().to_dict()
    assert (row["outcome"], row["attempts"], row.get("unfinished")) == ("created", 1, None)
