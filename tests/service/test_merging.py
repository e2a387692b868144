"""Merge and split on in-memory ports (docs/merging.md): what moves, where later mail threads,
the events of each, and exactly once when a sync commits to the same ticket at the same time."""

from __future__ import annotations

import pytest

from mailbridge.errors import Conflict, InvalidInput
from mailbridge.services import merging, outgoing, sync, tickets
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    return services, accounts


def mail(services, accounts, sender: str, subject: str, thread_id: str | None = None, **headers) -> dict:
    """Deliver and sync one message; the ticket it joined or opened."""
    gmail_id = accounts.deliver(ADDRESS, make_mail(sender, ADDRESS, subject, **headers), thread_id=thread_id)
    sync.poll(services, "help")
    row = services.store.collection("inbound")[f"help~{gmail_id}"]
    return {"gmail_id": gmail_id, "ticket": row["ticket_id"], "message_id": row["message_id"]}


def two_tickets(services, accounts):
    first = mail(services, accounts, "ann@example.org", "Printer broken", message_id="<a1@customer.example>")
    second = mail(services, accounts, "bob@example.org", "Printer still broken", message_id="<b1@customer.example>",
                  Cc="carol@example.org")
    return first, second


def test_merge_moves_messages_and_participants_and_closes_the_source_with_a_pointer(world):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    result = merging.merge(services, second["ticket"], first["ticket"])
    assert result["changed"] and result["moved_messages"] == [f"help~{second['gmail_id']}"]
    survivor = tickets.show(services, first["ticket"])
    assert [m["gmail_message_id"] for m in survivor["messages"]] == [first["gmail_id"], second["gmail_id"]]
    assert {"ann@example.org", "bob@example.org", "carol@example.org"} <= set(survivor["participants"])
    source = services.store.get_ticket(second["ticket"])
    assert (source["status"], source["merged_into"]) == ("closed", first["ticket"])
    assert tickets.show(services, second["ticket"])["messages"] == []


@pytest.mark.parametrize("how", ["in_reply_to", "thread", "tag"])
def test_mail_that_would_have_threaded_to_the_merged_ticket_joins_the_survivor(world, how):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    source_number = services.store.get_ticket(second["ticket"])["number"]
    merging.merge(services, second["ticket"], first["ticket"])
    if how == "in_reply_to":
        later = mail(services, accounts, "bob@example.org", "more", In_Reply_To=second["message_id"])
    elif how == "thread":
        later = mail(services, accounts, "bob@example.org", "Re: Printer still broken", thread_id=second["gmail_id"])
    else:
        later = mail(services, accounts, "bob@example.org", f"Re: [#{source_number}] Printer still broken")
    assert later["ticket"] == first["ticket"]
    assert services.store.get_ticket(second["ticket"])["status"] == "closed"


def test_merging_again_changes_nothing_and_merging_back_is_refused(world):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    merging.merge(services, second["ticket"], first["ticket"])
    events_before = len(services.store.collection("events"))
    assert merging.merge(services, second["ticket"], first["ticket"])["changed"] is False
    assert len(services.store.collection("events")) == events_before
    with pytest.raises(Conflict):
        merging.merge(services, first["ticket"], second["ticket"])
    with pytest.raises(InvalidInput):
        merging.merge(services, first["ticket"], first["ticket"])


def test_merge_is_one_ticket_updated_event_per_ticket_naming_the_moved_messages(world):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    merging.merge(services, second["ticket"], first["ticket"])
    updated = [e for e in services.event_topic.published if e["type"] == "ticket.updated"]
    by_subject = {e["subject"]: e for e in updated}
    assert set(by_subject) == {first["ticket"], second["ticket"]} and len(updated) == 2
    assert by_subject[second["ticket"]]["data"]["changes"]["merged_into"] == {"from": None, "to": first["ticket"]}
    assert by_subject[second["ticket"]]["data"]["changes"]["status"]["to"] == "closed"
    assert by_subject[first["ticket"]]["data"]["changes"]["merged_from"]["to"] == [second["ticket"]]
    assert by_subject[first["ticket"]]["data"]["moved_messages"] == [f"help~{second['gmail_id']}"]


def test_a_reply_to_the_merged_ticket_goes_out_from_the_survivor_with_its_tag(world):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    merging.merge(services, second["ticket"], first["ticket"])
    survivor_number = services.store.get_ticket(first["ticket"])["number"]
    draft = outgoing.send_reply(services, second["ticket"], "We are on it", dry_run=True)
    assert draft["ticket"] == first["ticket"]
    assert f"[#{survivor_number}]" in draft["subject"]
    assert "bob@example.org" in draft["to"] + draft["cc"]


def test_a_sync_that_decided_for_the_source_before_the_merge_committed_ends_in_the_survivor(world):
    services, accounts = world
    first, second = two_tickets(services, accounts)
    store = services.store
    commit = store.commit_inbound_chunk
    merged = []

    def merge_first(*args, **kwargs):  # the merge commits between the sync's decide and its commit
        if not merged:
            merged.append(merging.merge(services, second["ticket"], first["ticket"]))
        return commit(*args, **kwargs)

    store.commit_inbound_chunk = merge_first
    later = mail(services, accounts, "bob@example.org", "more", In_Reply_To=second["message_id"])
    assert merged and later["ticket"] == first["ticket"]
    assert len(tickets.show(services, first["ticket"])["messages"]) == 3
    assert tickets.show(services, second["ticket"])["messages"] == []


def test_split_opens_a_ticket_from_a_message_and_the_later_ones_of_its_thread(world):
    services, accounts = world
    first = mail(services, accounts, "ann@example.org", "Printer broken")
    other = mail(services, accounts, "dan@example.org", "Printer broken too", thread_id=first["gmail_id"])
    later = mail(services, accounts, "dan@example.org", "Re: Printer broken too", thread_id=first["gmail_id"])
    elsewhere = mail(services, accounts, "ann@example.org", "toner", In_Reply_To=first["message_id"],
                     message_id="<a2@customer.example>")
    assert {other["ticket"], later["ticket"], elsewhere["ticket"]} == {first["ticket"]}
    result = merging.split(services, first["ticket"], f"help~{other['gmail_id']}")
    new = tickets.show(services, result["into"])
    assert [m["gmail_message_id"] for m in new["messages"]] == [other["gmail_id"], later["gmail_id"]]
    assert new["requester"]["email"] == "dan@example.org"
    kept = tickets.show(services, first["ticket"])
    assert [m["gmail_message_id"] for m in kept["messages"]] == [first["gmail_id"], elsewhere["gmail_id"]]
    types = [(e["type"], e["subject"]) for e in services.event_topic.published[-2:]]
    assert sorted(types) == sorted([("ticket.updated", first["ticket"]), ("ticket.created", result["into"])])
    again = merging.split(services, first["ticket"], other["message_id"])
    assert (again["changed"], again["into"]) == (False, result["into"])
    next_in_thread = mail(services, accounts, "dan@example.org", "Re: Printer broken too", thread_id=first["gmail_id"])
    assert next_in_thread["ticket"] == result["into"]


def test_split_that_would_empty_the_ticket_or_names_no_message_is_refused(world):
    services, accounts = world
    first = mail(services, accounts, "ann@example.org", "Printer broken")
    with pytest.raises(InvalidInput):
        merging.split(services, first["ticket"], first["gmail_id"])
    with pytest.raises(Conflict):
        merging.split(services, first["ticket"], "help~nothing")
