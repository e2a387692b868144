"""Merge and split decisions (domain/merging.py) on plain data."""

from __future__ import annotations

import pytest

from mailbridge.domain import merging
from mailbridge.errors import Conflict, InvalidInput


def row(gmail_id: str, thread: str, sender: str, when: str, message_id: str | None = None) -> dict:
    return {"mailbox": "help", "gmail_message_id": gmail_id, "gmail_thread_id": thread,
            "message_id": message_id or f"<{gmail_id}@x>", "_path": f"inbound/help~{gmail_id}",
            "message": {"id": f"help~{gmail_id}", "direction": "in", "gmail_thread_id": thread,
                        "message_id": message_id or f"<{gmail_id}@x>", "received_at": when,
                        "from": {"email": sender, "name": ""}, "to": [], "cc": [], "subject": f"about {gmail_id}"}}


def test_a_merge_unions_what_threads_mail_and_points_the_source_at_the_survivor():
    source = {"id": "5", "number": 5, "message_ids": ["<b@x>"], "thread_keys": ["help:t2"], "participants": ["bob@x"],
              "requester": {"email": "bob@x"}, "message_count": 1}
    survivor = {"id": "4", "number": 4, "message_ids": ["<a@x>"], "thread_keys": ["help:t1"],
                "participants": ["ann@x"], "requester": {"email": "ann@x"}, "message_count": 2}
    assert merging.check_merge(source, survivor)
    changes, after = merging.merged(source, survivor, [row("b", "t2", "bob@x", "2")], "now")
    assert (after["message_ids"], after["thread_keys"]) == (["<a@x>", "<b@x>"], ["help:t1", "help:t2"])
    assert (after["participants"], after["merged_from"], after["message_count"]) == (["ann@x", "bob@x"], ["5"], 3)
    assert (changes["status"], changes["merged_into"], changes["message_ids"]) == ("closed", "4", [])
    assert merging.check_merge({**source, "merged_into": "4"}, survivor) is False
    with pytest.raises(Conflict):
        merging.check_merge(source, {**survivor, "merged_into": "9"})
    with pytest.raises(InvalidInput):
        merging.check_merge(source, source)


def test_a_split_takes_the_message_and_the_later_ones_of_its_thread_only():
    rows = [row("a", "t1", "ann@x", "1"), row("d", "t1", "dan@x", "2"), row("x", "t9", "ann@x", "3"),
            row("e", "t1", "dan@x", "4")]
    ticket = {"id": "4", "number": 4, "message_ids": ["<a@x>", "<d@x>", "<x@x>", "<e@x>"],
              "thread_keys": ["help:t1", "help:t9"], "message_count": 4, "mailbox": "help"}
    moving = merging.split_rows(ticket, rows, "<d@x>")
    assert [r["gmail_message_id"] for r in moving] == ["d", "e"]
    changes, new = merging.split(ticket, moving, 7, {"help@acme.example"}, "now")
    assert (new["id"], new["requester"]["email"], new["message_ids"], new["thread_keys"]) == (
        "7", "dan@x", ["<d@x>", "<e@x>"], ["help:t1"])
    assert (changes["message_ids"], changes["thread_keys"], changes["split_into"]) == (
        ["<a@x>", "<x@x>"], ["help:t9"], ["7"])
    with pytest.raises(InvalidInput):
        merging.split_rows(ticket, rows[:2], "help~a")
    with pytest.raises(Conflict):
        merging.split_rows(ticket, rows, "nothing")


def test_a_chain_of_merges_is_followed_to_its_end():
    tickets = {"1": {"merged_into": "2"}, "2": {"merged_into": "3"}, "3": {}}
    assert merging.survivor_of("1", tickets.get) == "3"
    assert merging.survivor_of("9", tickets.get) == "9"
