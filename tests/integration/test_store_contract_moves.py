"""The store contract of `move_messages` (merge and split, docs/merging.md) on both stores: the
in-memory one and the Firestore adapter over the emulator (`-k memory` runs the first alone)."""

from __future__ import annotations

from google.api_core import exceptions as gexc
import pytest

from mailbridge.errors import InvalidInput, NotFound
from tests.integration.test_store_contract import create_tickets, inbound_row, store, ticket  # noqa: F401


def rows_of_one(store):  # noqa: F811
    create_tickets(store, ticket(1), ticket(2))
    store.commit_inbound_chunk("help", [
        ("g1", inbound_row("g1", ticket_id="1", message={"id": "help~g1", "received_at": "2026-01-01"}), None),
        ("g2", inbound_row("g2", ticket_id="2", message={"id": "help~g2", "received_at": "2026-01-02"}), None)], [])
    store.create_outbound("k1", {"ticket_id": "2", "message_id": "<k1@x>", "status": "sent", "message": {"id": "out~k1", "date": "2026-01-03"}})


def test_move_messages_reads_both_tickets_and_the_sources_rows_and_writes_all_at_once(store):  # noqa: F811
    rows_of_one(store)
    seen = {}

    def decide(source, target, rows):
        seen.update(source=source["id"], target=target["id"], paths=sorted(r["_path"] for r in rows))
        return "moved", {"status": "closed", "merged_into": "1"}, {**target, "merged_from": ["2"]}, \
            [r["_path"] for r in rows] + ["inbound/help~g1"], ("merge-event", {"events": [], "mailbox": "help"})

    assert store.move_messages("2", "1", decide) == "moved"
    assert seen == {"source": "2", "target": "1", "paths": ["inbound/help~g2", "outbound/k1"]}
    assert [r["message"]["id"] for r in store.ticket_messages("1")] == ["help~g1", "help~g2", "out~k1"]
    assert store.ticket_messages("2") == []
    assert (store.get_ticket("2")["merged_into"], store.get_ticket("1")["merged_from"]) == ("1", ["2"])
    with pytest.raises(gexc.AlreadyExists):  # the event document is created once, as a change's
        store.move_messages("1", "2", lambda s, t, r: (None, None, None, [], ("merge-event", {"events": []})))


def test_move_messages_creates_a_new_target_and_writes_nothing_when_decide_refuses(store):  # noqa: F811
    rows_of_one(store)

    def refuse(source, target, rows):
        assert target is None
        raise InvalidInput("no")  # as domain/merging refuses

    with pytest.raises(InvalidInput):
        store.move_messages("2", "9", refuse)
    assert store.find_ticket("9") is None and len(store.ticket_messages("2")) == 2
    split = lambda source, target, rows: ("split", {"split_into": ["9"]}, ticket(9, split_from="2"),  # noqa: E731
                                          ["outbound/k1"], None)
    assert store.move_messages("2", "9", split) == "split"
    assert [r["message"]["id"] for r in store.ticket_messages("9")] == ["out~k1"]
    assert store.get_ticket("9")["split_from"] == "2"
    with pytest.raises(NotFound):
        store.move_messages("404", "9", split)
