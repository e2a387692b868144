"""Lease writes on Firestore (adapters/firestore/sync.py): a lease write guarded by the version the
process read costs one commit and no transaction; a sync state another process changed since is
decided afresh by a transaction, so the guarded write never takes a live lease or loses a change.
The first case runs on both stores (the contract); the others count Firestore calls."""

from __future__ import annotations

import collections

import pytest
from google.cloud import firestore

from mailbridge.adapters.firestore.store import Store
from tests.conftest import TEST_PROJECT
from tests.integration.test_store_contract import mailbox_with_credential, store  # noqa: F401


def test_a_lease_asked_for_again_by_its_holder_answers_the_state_it_holds(store):  # noqa: F811
    """Firestore: a transaction retried after its applied commit's answer was lost finds its own
    lease; it must not wait for it to expire."""
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    first = store.acquire_lease("help", "production", "run-a", 300)
    again = store.acquire_lease("help", "production", "run-a", 300)
    assert again and again["lease_owner"] == "run-a" and again["lease_since"] == first["lease_since"]


@pytest.fixture
def two_processes(request, monkeypatch):
    """Two Stores over two clients of one emulated database, as two instances would hold."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", request.getfixturevalue("firestore"))  # emptied first
    return Store(firestore.Client(project=TEST_PROJECT)), Store(firestore.Client(project=TEST_PROJECT))


def calls_of(store: Store) -> collections.Counter:
    """Firestore calls of `store`'s client by method (commit is the product's wrapped one)."""
    api, calls = store.db._firestore_api, collections.Counter()
    for name in ("begin_transaction", "commit", "batch_get_documents"):
        method = getattr(api, name)

        def counted(*args, _method=method, _name=name, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)

        setattr(api, name, counted)
    return calls


def test_a_lease_taken_and_released_after_the_tasks_read_costs_one_commit_each(two_processes):
    one, _other = two_processes
    mailbox_with_credential(one)
    one.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    calls = calls_of(one)
    _mailbox, state = one.mailbox_with_sync("help", "production")
    leased = one.acquire_lease("help", "production", "run-a", 300)
    assert leased["history_id"] == "7" and leased["lease_owner"] == "run-a"
    assert one.renew_lease("help", "production", "run-a", 300)
    one.release_lease("help", "production", "run-a", {"history_id": "8", "last_error": None})
    assert dict(calls) == {"batch_get_documents": 1, "commit": 3}, calls
    stored = one.get_sync("help", "production")
    assert (stored["lease_owner"], stored["lease_expires_at"], stored["history_id"]) == (None, 0, "8")


def test_a_lease_another_process_took_since_the_read_is_not_taken(two_processes):
    one, other = two_processes
    mailbox_with_credential(one)
    one.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    one.mailbox_with_sync("help", "production")  # read: no lease
    assert other.acquire_lease("help", "production", "run-b", 300)
    calls = calls_of(one)
    assert one.acquire_lease("help", "production", "run-a", 300) is None
    assert calls["begin_transaction"] >= 1  # the guarded write failed: the transaction decided
    assert one.get_sync("help", "production")["lease_owner"] == "run-b"


def test_a_change_another_process_made_since_the_read_is_kept_by_the_lease_writes(two_processes):
    one, other = two_processes
    mailbox_with_credential(one)
    one.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    one.mailbox_with_sync("help", "production")
    other.update_sync("help", "production", {"watch_renewed_at": 123.0})
    assert one.acquire_lease("help", "production", "run-a", 300)["watch_renewed_at"] == 123.0
    other.update_sync("help", "production", {"post_processing_error": "labels"})
    one.release_lease("help", "production", "run-a", {"history_id": "8"})
    stored = one.get_sync("help", "production")
    assert (stored["lease_owner"], stored["history_id"], stored["watch_renewed_at"], stored["post_processing_error"]) == (
        None, "8", 123.0, "labels")


def test_a_lease_whose_holder_lost_it_since_is_released_by_nobody(two_processes):
    one, other = two_processes
    one.reset_sync("help", "production", "2026-01-01T00:00:00Z")
    assert one.acquire_lease("help", "production", "dead", -1)  # expired at once: its holder died
    assert other.acquire_lease("help", "production", "next", 300)
    one.release_lease("help", "production", "dead", {"history_id": "1"})
    assert not one.renew_lease("help", "production", "dead", 300)
    stored = other.get_sync("help", "production")
    assert (stored["lease_owner"], stored["history_id"], stored["abandoned_runs"]) == ("next", None, 1)
