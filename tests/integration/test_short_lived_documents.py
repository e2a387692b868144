"""Firestore adapter: short-lived documents carry `expires_at` for the TTL policies
(terraform/README.md), a used OAuth state keeps no verifier, acknowledgement counters per
address and per domain count all or none."""

from __future__ import annotations

from datetime import datetime

import pytest

from mailbridge.errors import AuthError
from tests.helpers import make_services


@pytest.fixture
def store(mb_env, firestore):
    return make_services().store


def doc(store, collection: str) -> dict:
    (snap,) = list(store.db.collection(collection).stream())
    return snap.to_dict()


def test_a_used_oauth_state_keeps_only_a_used_marker_with_its_expiry(store):
    store.put_oauth_state("s" * 40, {"mailbox": "help", "instance": "production", "code_verifier": "v" * 50}, 600)
    data = store.consume_oauth_state("s" * 40)

    assert data["code_verifier"] == "v" * 50
    assert set(doc(store, "oauth_states")) == {"used", "expires_at"}


def test_a_used_oauth_state_is_refused_as_already_used(store):
    store.put_oauth_state("s" * 40, {"mailbox": "help", "code_verifier": "v" * 50}, 600)
    store.consume_oauth_state("s" * 40)
    with pytest.raises(AuthError, match="already used"):
        store.consume_oauth_state("s" * 40)


def test_send_budget_counters_expire_two_days_after_their_day(store):
    store.take_send_budget("help", "2026-12-02", 10)
    assert doc(store, "send_budget")["expires_at"].isoformat() == "2026-12-04T00:00:00+00:00"


def test_nonces_carry_expires_at(store):
    store.use_nonce("n" * 20, 1_800_000_000)
    assert isinstance(doc(store, "nonces")["expires_at"], datetime)


def test_acknowledgement_counters_count_address_and_domain_together(store):
    counters = [("ann@customer.example", 1), ("@customer.example", 5)]
    assert store.take_acknowledgement_slots(counters, "2026120210") is None
    assert store.take_acknowledgement_slots(counters, "2026120210") == "ann@customer.example"
    counts = sorted(s.to_dict()["count"] for s in store.db.collection("ack_limits").stream())
    assert counts == [1, 1]  # the refused second call counted nothing


def test_a_full_domain_refuses_a_new_address_of_that_domain(store):
    for n in range(2):
        assert store.take_acknowledgement_slots([(f"u{n}@spam.example", 3), ("@spam.example", 2)], "h") is None
    assert store.take_acknowledgement_slots([("u9@spam.example", 3), ("@spam.example", 2)], "h") == "@spam.example"


def test_acknowledgement_counters_carry_expires_at(store):
    store.take_acknowledgement_slots([("ann@customer.example", 1)], "2026120210")
    assert isinstance(doc(store, "ack_limits")["expires_at"], datetime)
