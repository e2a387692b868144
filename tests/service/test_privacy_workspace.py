"""A person's erasure and export reach what the Workspace delivery code keeps of them (issue 30
and 31, docs/privacy.md): the entries of a mailbox's Spam list, and the copy keys and claims of
their messages that reached two mailboxes."""

from __future__ import annotations

import pytest

from mailbridge.domain import copies
from mailbridge.services import privacy, sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services
from tests.service.test_privacy import CLI, scan

SUPPORT, SALES = "support@acme.example", "sales@acme.example"
ANN, BOB = "ann.smith@customer.example", "bob@partner.example"
SPAM = ("SPAM", "UNREAD")


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, "support", SUPPORT, outgoing={"acknowledge_new": False})
    connected_mailbox(services, accounts, "sales", SALES, outgoing={"acknowledge_new": False})
    return services, accounts


def spam_list(services) -> list[str]:
    return [e["from_email"] for e in services.store.get_sync("support", services.settings.instance)["spam_recent"]]


def spam_from_ann_and_a_stranger(services, accounts) -> None:
    accounts.deliver(SUPPORT, make_mail(f"Ann Smith <{ANN}>", SUPPORT, "Question about my order"), labels=SPAM)
    accounts.deliver(SUPPORT, make_mail("offer@spam.example", SUPPORT, "Cheap toner"), labels=SPAM)
    sync.poll(services, "support")


def test_export_lists_the_spam_entries_that_name_the_person(world):
    services, accounts = world
    spam_from_ann_and_a_stranger(services, accounts)
    exported = privacy.export(services, ANN, **CLI)
    (listed,) = exported["spam_lists"]
    assert (listed["mailbox"], [e["from_email"] for e in listed["entries"]]) == ("support", [ANN])
    assert exported["counts"]["spam_lists"] == 1


def test_erase_takes_the_persons_entries_off_the_spam_list_and_keeps_the_others(world):
    services, accounts = world
    spam_from_ann_and_a_stranger(services, accounts)
    assert sorted(spam_list(services)) == sorted([ANN, "offer@spam.example"])
    result = privacy.erase(services, ANN, **CLI)
    assert result["spam_entries_removed"] == 1
    assert spam_list(services) == ["offer@spam.example"]
    assert scan(services, ANN) == []


def ann_cc_d_to_both_then_bob_on_the_same_ticket(services, accounts) -> dict:
    raw = make_mail(f"Ann Smith <{ANN}>", SUPPORT, "Invoice wrong", "Please fix", Cc=f"{SALES}, {BOB}",
                    message_id="<inv-1@customer.example>")
    accounts.deliver(SUPPORT, raw)
    accounts.deliver(SALES, raw)
    sync.poll(services, "support")
    sync.poll(services, "sales")
    (ticket,) = services.store.list_tickets()
    accounts.deliver(SUPPORT, make_mail(BOB, SUPPORT, f"[#{ticket['number']}] Invoice wrong", "Same here"))
    sync.poll(services, "support")
    return services.store.find_ticket(ticket["id"])


def claims(services) -> dict:
    return {key: doc for (collection, key), doc in services.store.docs.items() if collection == "message_copies"}


def test_export_lists_the_copy_claims_of_the_persons_messages(world):
    services, accounts = world
    ticket = ann_cc_d_to_both_then_bob_on_the_same_ticket(services, accounts)
    (key,) = claims(services)
    exported = privacy.export(services, ANN, **CLI)
    assert exported["message_copies"] == [{"id": key, "ticket_id": ticket["id"]}]
    assert privacy.export(services, BOB, **CLI)["message_copies"] == []


def test_erase_removes_the_persons_copy_keys_from_a_kept_ticket_and_deletes_their_claims(world):
    services, accounts = world
    ticket = ann_cc_d_to_both_then_bob_on_the_same_ticket(services, accounts)
    (key,) = claims(services)
    assert key in ticket[copies.FIELD]
    privacy.erase(services, ANN, **CLI)
    kept = services.store.find_ticket(ticket["id"])
    assert kept is not None and key not in (kept.get(copies.FIELD) or [])
    assert claims(services) == {}
