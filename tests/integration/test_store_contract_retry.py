"""The store contract of what a retry from the stored copy reads (services/sync/run.py,
docs/reliability.md): a quarantined row's raw copy and Gmail's thread and date come back with its
version, on the in-memory store and on Firestore over the emulator."""

from __future__ import annotations

from tests.integration.test_store_contract import store  # noqa: F401

SHA = "c" * 64


def test_a_retried_rows_raw_copy_fields_are_read_with_its_version(store):  # noqa: F811
    store.put_inbound_row("help", "g1", {
        "mailbox": "help", "gmail_message_id": "g1", "message_id": None, "outcome": "quarantined",
        "reason": "could not be stored: DocumentTooLarge", "ticket_id": None, "attempts": 1,
        "processed_at": "2026-12-07T10:00:00+00:00", "raw_sha256": SHA, "gmail_thread_id": "t1",
        "gmail_internal_date": "1765100000000"})
    store.retry_quarantined("help", "g1")
    row = store.get_inbound_rows("help", ["g1"])["g1"]
    assert (row["outcome"], row["raw_sha256"], row["gmail_thread_id"], row["gmail_internal_date"]) == (
        "failed", SHA, "t1", "1765100000000")
    assert "_update_time" in row
