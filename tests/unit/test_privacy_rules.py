"""The pure rules of a person's data (domain/privacy.py): the keyed hash, who a record names,
redaction, the blobs a row points to, and retention expiry."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mailbridge.domain import privacy
from mailbridge.errors import InvalidInput


def test_the_person_hash_is_keyed_stable_and_case_blind():
    key = privacy.hash_key("s" * 32)
    assert privacy.person_hash(key, "Ann@Example.org") == privacy.person_hash(key, "ann@example.org")
    assert privacy.person_hash(key, "ann@example.org") != privacy.person_hash(privacy.hash_key("t" * 32), "ann@example.org")
    assert "ann" not in privacy.person_hash(key, "ann@example.org")
    with pytest.raises(InvalidInput):
        privacy.hash_key("")


def test_names_finds_an_address_in_any_string_key_or_bytes_at_any_depth():
    assert privacy.names({"a": [{"b": "Mail ANN@example.org please"}]}, "ann@example.org")
    assert privacy.names({"raw": b"To: ann@example.org"}, "ann@example.org")
    assert not privacy.names({"a": 1, "b": None, "c": "bob@example.org"}, "ann@example.org")


def test_redact_replaces_the_address_and_names_everywhere_and_keeps_other_values():
    record = {"to": [{"email": "Ann@Example.org", "name": "Ann Smith"}], "count": 2, "raw": b"From: ann@example.org",
              "text": "Ann Smith wrote: hello"}
    redacted = privacy.redact(record, ["ann@example.org", "Ann Smith"])
    assert redacted == {"to": [{"email": "[erased]", "name": "[erased]"}], "count": 2, "raw": b"From: [erased]",
                        "text": "[erased] wrote: hello"}


def test_redact_ticket_removes_the_person_from_participants_and_requester():
    ticket = {"requester": {"email": "ann@example.org", "name": "Ann"}, "participants": ["ann@example.org", "bob@x.org"],
              "suggested_participants": [{"email": "ann@example.org"}, {"email": "cy@x.org"}], "subject": "Hi"}
    redacted = privacy.redact_ticket(ticket, "ann@example.org", ["ann@example.org"])
    assert redacted["participants"] == ["bob@x.org"] and redacted["suggested_participants"] == [{"email": "cy@x.org"}]
    assert redacted["requester"] == {"email": "[erased]", "name": "[erased]"}


def test_blob_refs_are_stored_attachments_body_parts_and_raw_copies():
    row = {"raw_sha256": "r", "message": {"attachments": [{"sha256": "a", "storage_key": "attachments/a"},
                                                         {"sha256": "b", "storage_key": None}],
                                          "stored_parts": {"text": "t"}}}
    assert privacy.blob_refs(row) == {"a", "r", "t"}


def test_a_closed_ticket_expires_after_its_retention_unless_open_held_or_retention_is_off():
    closed = {"status": "closed", "closed_at": "2026-01-01T00:00:00+00:00"}
    assert privacy.expiry(closed, 30) == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert privacy.expiry({**closed, "legal_hold": True}, 30) is None
    assert privacy.expiry({**closed, "status": "open"}, 30) is None
    assert privacy.expiry(closed, 0) is None


def test_a_mailbox_retention_beats_the_global_one():
    settings = {"retention.closed_ticket_days": 90}
    assert privacy.closed_ticket_days(settings, {"retention": {"closed_ticket_days": 7}}) == 7
    assert privacy.closed_ticket_days(settings, {"retention": {"closed_ticket_days": 0}}) == 90
    assert privacy.closed_ticket_days({}, None) == 0


def test_only_ignored_and_quarantined_rows_expire_by_the_inbound_log_retention():
    settings = {"retention.inbound_log_days": 10}
    assert privacy.inbound_expiry(settings, "ignored", "2026-01-01T00:00:00+00:00") == datetime(
        2026, 1, 11, tzinfo=timezone.utc)
    assert privacy.inbound_expiry(settings, "created", "2026-01-01T00:00:00+00:00") is None
    assert privacy.inbound_expiry({}, "ignored", "2026-01-01T00:00:00+00:00") is None
