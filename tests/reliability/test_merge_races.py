"""Merge and split against the Firestore emulator while syncs commit to the same tickets
(docs/merging.md): every message ends on exactly one ticket, once; a merge or split raced by
itself happens once."""

from __future__ import annotations

import threading

from mailbridge.errors import Conflict
from mailbridge.services import merging
from mailbridge.services import sync as ingest
from mailbridge.services import tickets
from tests.helpers import make_mail, make_services
from tests.reliability.conftest import ADDRESS, MAILBOX, connect, deliver_all

REPLIES = 30


def run_together(targets) -> tuple[list, list]:
    """Start every target at once; (results, errors) in the targets' order."""
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), [None] * len(targets)

    def runner(index, target):
        barrier.wait()
        try:
            results[index] = target()
        except Exception as e:  # noqa: BLE001 - returned to the test
            errors[index] = e

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results, errors


def open_two_tickets(services, fake_url):
    connect(services, fake_url)
    ingest.poll(services)
    first, second = deliver_all(fake_url, ADDRESS, [
        make_mail("ann@example.org", ADDRESS, "Printer broken", message_id="<race-a@customer.example>"),
        make_mail("bob@example.org", ADDRESS, "Printer still broken", message_id="<race-b@customer.example>")])
    ingest.poll(services)
    return ticket_of(services, first), ticket_of(services, second)


def ticket_of(services, gmail_id: str) -> str:
    return {row["gmail_message_id"]: row["ticket_id"] for row in services.store.inbound_log(MAILBOX, limit=0)}[gmail_id]


def homes(services, gmail_ids: list[str]) -> dict[str, list[str]]:
    """Each Gmail message -> the tickets whose view lists it (exactly one each when nothing is lost
    or doubled)."""
    found: dict[str, list[str]] = {gmail_id: [] for gmail_id in gmail_ids}
    for ticket in services.store.list_tickets(limit=0):
        for message in tickets.show(services, ticket["id"])["messages"]:
            if message["gmail_message_id"] in found:
                found[message["gmail_message_id"]].append(ticket["id"])
    return found


def test_a_merge_during_a_sync_of_replies_to_the_source_leaves_every_reply_on_the_survivor_once(
        mb_env, fake, firestore, storage_emulator):
    services = make_services()
    survivor, source = open_two_tickets(services, fake.url)
    replies = deliver_all(fake.url, ADDRESS, [
        make_mail("bob@example.org", ADDRESS, f"Re: Printer still broken ({n})", In_Reply_To="<race-b@customer.example>")
        for n in range(REPLIES)])
    results, errors = run_together([lambda: ingest.poll(make_services(), MAILBOX),
                                    lambda: merging.merge(make_services(), source, survivor)])
    assert errors == [None, None]
    assert results[1]["changed"]
    ingest.poll(services, MAILBOX)  # whatever the raced sync left
    assert homes(services, replies) == {gmail_id: [survivor] for gmail_id in replies}
    assert services.store.get_ticket(source)["merged_into"] == survivor
    assert services.store.get_ticket(survivor)["message_count"] == REPLIES + 2
    merged_events = [e for d in services.store.event_documents(subject=source) for e in d["events"]
                     if e["type"] == "ticket.updated" and "merged_into" in e["data"]["changes"]]
    assert len(merged_events) == 1


def test_crossed_and_repeated_merges_happen_once(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    first, second = open_two_tickets(services, fake.url)
    results, errors = run_together([lambda: merging.merge(make_services(), second, first),
                                    lambda: merging.merge(make_services(), second, first),
                                    lambda: merging.merge(make_services(), first, second)])
    done = [r for r in results if r and r["changed"]]
    assert len(done) == 1
    assert all(e is None or isinstance(e, Conflict) for e in errors)
    merged = [t for t in services.store.list_tickets(limit=0) if t.get("merged_into")]
    assert len(merged) == 1
    survivor = merged[0]["merged_into"]
    assert len(tickets.show(services, survivor)["messages"]) == 2


def test_splits_of_one_message_raced_with_a_sync_of_its_thread_open_one_ticket(
        mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect(services, fake.url)
    ingest.poll(services)
    (opener,) = deliver_all(fake.url, ADDRESS, [
        make_mail("ann@example.org", ADDRESS, "Printer broken", message_id="<split-a@customer.example>")])
    ingest.poll(services)
    (second,) = deliver_all(fake.url, ADDRESS, [
        make_mail("dan@example.org", ADDRESS, "Re: Printer broken", message_id="<split-d@customer.example>",
                  In_Reply_To="<split-a@customer.example>")])
    ingest.poll(services)
    ticket_id = ticket_of(services, opener)
    later = deliver_all(fake.url, ADDRESS, [
        make_mail("dan@example.org", ADDRESS, f"Re: Printer broken ({n})", In_Reply_To="<split-d@customer.example>")
        for n in range(10)])
    results, errors = run_together([lambda: merging.split(make_services(), ticket_id, "<split-d@customer.example>")
                                    for _ in range(3)] + [lambda: ingest.poll(make_services(), MAILBOX)])
    assert errors == [None] * 4
    assert len({r["into"] for r in results[:3]}) == 1 and sum(r["changed"] for r in results[:3]) == 1
    ingest.poll(services, MAILBOX)
    placed = homes(services, [opener, second] + later)
    assert all(len(found) == 1 for found in placed.values()), placed
    new_id = results[0]["into"]
    assert placed[opener] == [ticket_id] and placed[second] == [new_id]
    assert services.store.get_ticket(ticket_id)["split_into"] == [new_id]
