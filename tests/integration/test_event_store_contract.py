"""The event side of the store contract (docs/events.md), on the in-memory store and on Firestore
over the emulator like tests/integration/test_store_contract.py: whatever writes an inbound row
quarantined writes its one inbound.quarantined event in the same commit."""

from __future__ import annotations

from tests.integration.test_store_contract import store  # noqa: F401 - the fixture: memory and Firestore


def quarantine_events(store) -> list[dict]:  # noqa: F811 - the fixture's value
    return [e for d in store.event_documents() for e in d["events"] if e["type"] == "inbound.quarantined"]


def test_a_row_written_quarantined_at_once_writes_its_event_once(store):  # noqa: F811
    row = {"mailbox": "help", "gmail_message_id": "g1", "outcome": "quarantined", "attempts": 1,
           "reason": "could not be stored: DocumentTooLarge", "processed_at": "2026-01-01T00:00:00Z"}
    store.begin_attempt("help", "g1", 3, "big message")  # an open row before: its attempt counted
    store.put_inbound_row("help", "g1", row)
    store.put_inbound_row("help", "g1", row)  # the same quarantine written again: no second event
    (event,) = quarantine_events(store)
    assert (event["id"], event["subject"], event["sequence"]) == ("help~g1~quarantined~1", "inbound/help~g1", 1)
    assert event["data"]["inbound"]["reason"] == "could not be stored: DocumentTooLarge"
    assert store.inbound_log("help")[0]["outcome"] == "quarantined"
    assert store.events_waiting("help") == 1


def test_a_row_written_with_another_outcome_writes_no_event(store):  # noqa: F811
    store.put_inbound_row("help", "g2", {"mailbox": "help", "gmail_message_id": "g2", "outcome": "ignored",
                                         "reason": "deleted from Gmail before it was fetched"})
    assert quarantine_events(store) == [] and store.events_waiting("help") == 0


def test_a_fresh_event_document_is_marked_published_without_a_version(store):  # noqa: F811
    """services/events.publish_fresh marks the document its sync just committed without having
    read it (no version): marked once, and no longer waiting; a document that is not there is
    not created by the mark."""
    from mailbridge.domain import events

    joined = events.message_joined({"id": "7", "number": 7, "subject": "Printer"}, 1, "help", "g7", True,
                                   "2026-01-01T00:00:00Z")
    doc_id, fields = events.batch([joined], "help", "2026-01-01T00:00:00Z", 30)
    assert events.fresh_only(fields)
    store.commit_inbound_chunk("help", [], [], (doc_id, fields))
    assert store.events_waiting("help") == 1
    assert store.mark_events_published([{**fields, "id": doc_id, "_update_time": None}], "2026-01-01T00:00:01Z") == 1
    assert store.events_waiting("help") == 0
    assert store.mark_events_published([{**fields, "id": "absent", "_update_time": None}], "2026-01-01T00:00:02Z") == 0
    assert [d["id"] for d in store.event_documents()] == [doc_id]
