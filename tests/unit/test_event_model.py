"""The ticket event model (domain/events.py, docs/events.md): one event per change, ids made from
the change, a per-subject sequence carried by the record the change writes, CloudEvents 1.0."""

from __future__ import annotations

from datetime import datetime, timezone

from mailbridge.domain import events

NOW = "2026-03-01T10:00:00.000+00:00"


def ticket(**fields) -> dict:
    return {"id": "7", "number": 7, "subject": "Broken printer", "status": "open", "mailbox": "help",
            "requester": {"email": "ann@example.org", "name": "Ann"}, "participants": ["ann@example.org"],
            "created_at": NOW, "updated_at": NOW, "message_ids": ["<a@x>"], "thread_keys": ["help:t1"], **fields}


def joined(ticket: dict, gmail_id: str, created: bool) -> dict:
    return events.message_joined(*reversed(events.joined(ticket)), "help", gmail_id, created, NOW)


def test_a_new_ticket_is_one_created_event_with_sequence_1_and_the_inbound_key_as_id():
    new = ticket()
    event = joined(new, "18c0ffee", created=True)
    assert (event["type"], event["id"], event["subject"], event["sequence"]) == ("ticket.created", "help~18c0ffee", "7", 1)
    assert new[events.SEQUENCE_FIELD] == 1  # counted on the ticket the same commit writes
    assert event["message_ref"] == {"collection": "inbound", "key": "help~18c0ffee"}
    assert event["data"]["ticket"]["id"] == "7" and "messages" not in event["data"]["ticket"]


def test_each_later_change_of_a_ticket_takes_the_next_sequence():
    current = ticket(event_sequence=1)
    added = joined(current, "18c0ffef", created=False)
    closed = events.ticket_updated(current, {**current, "status": "closed"}, NOW)
    assert (added["type"], added["sequence"]) == ("ticket.message_added", 2)
    assert (closed["type"], closed["sequence"], closed["id"]) == ("ticket.updated", 3, "7~updated~3")
    assert closed["data"]["changes"] == {"status": {"from": "open", "to": "closed"}}


def test_an_update_that_changes_nothing_is_no_event():
    current = ticket(event_sequence=4, team="billing")
    assert events.ticket_updated(current, {**current, "team": "billing"}, NOW) is None
    assert current["event_sequence"] == 4


def test_team_type_and_participant_changes_are_named_as_the_api_names_them():
    before = ticket(suggested_participants=[{"email": "boss@example.org", "suggested_by": "ann@example.org"}])
    after = {**before, "team": "billing", "ticket_type": "refund",
             "participants": ["ann@example.org", "boss@example.org"], "suggested_participants": []}
    event = events.ticket_updated(before, after, NOW)
    assert set(event["data"]["changes"]) == {"team", "type", "participants", "suggested_participants"}
    assert event["data"]["ticket"]["type"] == "refund" and event["data"]["ticket"]["team"] == "billing"


def test_a_sent_reply_carries_gmails_ids_and_the_outbound_key_in_its_id():
    record = {"key": "reply-1", "kind": "reply", "mailbox": "help", "gmail_message_id": "s1", "gmail_thread_id": "t1",
              "message_id": "<ours@x>", "sent_message_id": "<gmail@x>", "sent_at": NOW}
    event = events.reply_sent(ticket(event_sequence=2), record, NOW)
    assert (event["type"], event["id"], event["sequence"]) == ("ticket.reply_sent", "reply-1~sent", 3)
    assert event["data"]["outbound"]["gmail_message_id"] == "s1" and event["data"]["outbound"]["gmail_thread_id"] == "t1"
    assert event["message_ref"] == {"collection": "outbound", "key": "reply-1"}


def test_quarantine_is_an_event_only_when_a_row_becomes_quarantined():
    failed = {"outcome": "failed", "attempts": 2}
    quarantined = {"outcome": "quarantined", "attempts": 3, "reason": "too big", "gmail_message_id": "g1"}
    event = events.inbound_quarantined(failed, quarantined, "help", "g1", NOW)
    assert (event["type"], event["subject"], event["id"]) == ("inbound.quarantined", "inbound/help~g1",
                                                              "help~g1~quarantined~1")
    assert event["data"]["inbound"]["reason"] == "too big"
    assert events.inbound_quarantined(quarantined, dict(quarantined), "help", "g1", NOW) is None
    assert events.inbound_quarantined(failed, {"outcome": "failed"}, "help", "g1", NOW) is None


def test_a_credential_set_that_stops_being_connected_is_one_disconnected_event():
    mailbox = {"name": "help", "address": "help@acme.example"}
    before = [{"instance": "production", "status": "connected", "connected_email": "help@acme.example"},
              {"instance": "uat", "status": "connected"}]
    after = [{"instance": "production", "status": "disconnected", "last_error": "invalid_grant"},
             {"instance": "uat", "status": "connected"}]
    (event,) = events.mailbox_disconnected(mailbox, before, after, NOW)
    assert (event["type"], event["subject"], event["sequence"]) == ("mailbox.disconnected", "mailboxes/help", 1)
    assert event["data"]["mailbox"]["reason"] == "invalid_grant" and event["data"]["mailbox"]["instance"] == "production"
    assert events.mailbox_disconnected(mailbox, after, after, NOW) == []
    (removed,) = events.mailbox_disconnected(mailbox, after, after[:1], NOW)
    assert removed["data"]["mailbox"]["status"] == "removed" and removed["sequence"] == 2


def test_a_commit_stores_one_document_with_its_events_and_an_expiry():
    first = joined(ticket(), "g1", created=True)
    second = joined(ticket(id="8"), "g2", created=True)
    document_id, document = events.batch([first, second], "help", NOW, 7)
    assert document_id == "help~g1" and document["count"] == 2 and document["subjects"] == ["7", "8"]
    assert document["published"] is False and document["mailbox"] == "help"
    assert document["expires_at"] == datetime(2026, 3, 8, 10, 0, tzinfo=timezone.utc)
    assert events.batch([], "help", NOW, 7) is None


def test_the_published_form_is_a_structured_cloudevent_with_the_message_as_tickets_show_prints_it():
    event = joined(ticket(), "g1", created=True)
    row = {"message": {"id": "help~g1", "direction": "in", "gmail_message_id": "g1", "message_id": "<a@x>",
                       "from": {"email": "ann@example.org", "name": "Ann"}, "to": [], "cc": [], "subject": "Broken",
                       "date": NOW, "text": "It is broken", "html": None, "full_text": "It is broken",
                       "attachments": [{"filename": "a.txt", "content_type": "text/plain", "size": 3,
                                        "content_id": None, "sha256": "ab", "storage_key": "k"}]}}
    cloud = events.cloudevent(event, events.source("proj", "production"), row)
    assert {k: cloud[k] for k in ("specversion", "id", "type", "subject", "datacontenttype", "sequence")} == {
        "specversion": "1.0", "id": "help~g1", "type": "ticket.created", "subject": "7",
        "datacontenttype": "application/json", "sequence": 1}
    assert cloud["source"] == "urn:mailbridge:proj:production" and cloud["time"] == NOW
    message = cloud["data"]["message"]
    assert set(message) == {"id", "direction", "gmail_message_id", "message_id", "from", "to", "cc", "subject", "date",
                            "text", "html", "attachments", "authentication"}
    assert message["attachments"] == [{"filename": "a.txt", "content_type": "text/plain", "size": 3,
                                       "content_id": None, "sha256": "ab"}]
    assert "message_ref" not in cloud and "message" not in event["data"]


def test_a_ticket_new_in_its_chunk_gets_its_number_in_its_event():
    new = ticket(id=None, number=None)
    sequence, taken = events.joined(new)
    event = events.message_joined(events.numbered(taken, {"id": 12, "number": 12}), sequence, "help", "g1", True, NOW)
    assert (event["subject"], event["data"]["ticket"]["id"], event["data"]["ticket"]["number"]) == ("12", "12", 12)


def test_events_are_put_in_each_subjects_sequence_order():
    stored = [{"subject": "7", "sequence": 2}, {"subject": "8", "sequence": 1}, {"subject": "7", "sequence": 1}]
    assert [(e["subject"], e["sequence"]) for e in events.in_order(stored)] == [("7", 1), ("7", 2), ("8", 1)]
