"""Outgoing rules on in-memory ports: override resolution, send budgets, one send per key."""

import pytest

from mailbridge.services import outgoing, sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    connected_mailbox(services, accounts, "sales", "sales@acme.example", outgoing={"acknowledge_new": False})
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def test_a_ticket_without_override_answers_from_its_own_mailbox(world):
    services, _accounts, ticket = world
    assert outgoing.resolve_outgoing(services, ticket)["mailbox"] == "help"


def test_a_ticket_override_beats_the_ticket_mailbox(world):
    services, _accounts, ticket = world
    outgoing.set_override(services, "ticket", ticket["id"], "sales")
    resolution = outgoing.resolve_outgoing(services, ticket)
    assert (resolution["mailbox"], resolution["rule"]) == ("sales", "ticket_override")


def test_an_override_to_a_disconnected_mailbox_is_skipped_with_a_reason(world):
    services, _accounts, ticket = world
    outgoing.set_override(services, "ticket", ticket["id"], "sales")
    services.store.update_credential("sales", services.settings.instance, {"status": "disconnected"})
    resolution = outgoing.resolve_outgoing(services, ticket)
    assert resolution["mailbox"] == "help"
    assert [s["mailbox"] for s in resolution["skipped"]] == ["sales"]


def reply_and_deliver(services, ticket, text, key):
    """A reply queued in the outbox, then the queue's "send" tasks delivered (services/push.py)."""
    outgoing.send_reply(services, ticket["id"], text, idempotency_key=key, wait=False)
    services.queue.deliver(services, kinds=("send",))
    return services.store.get_outbound(key)


def test_a_reply_with_the_same_key_is_sent_once(world):
    services, accounts, ticket = world
    first = reply_and_deliver(services, ticket, "On it.", "reply-k1")
    again = reply_and_deliver(services, ticket, "On it.", "reply-k1")
    assert (first["status"], again["status"]) == ("sent", "sent")
    assert len(accounts.account(ADDRESS)["sent"]) == 1


def test_a_reply_past_the_daily_send_budget_stays_queued_with_the_reason_and_sends_nothing(world):
    services, accounts, ticket = world
    services.store.update_mailbox("help", {"outgoing.daily_send_budget": 1})
    reply_and_deliver(services, ticket, "First.", "reply-b1")
    second = reply_and_deliver(services, ticket, "Second.", "reply-b2")
    assert second["status"] == "queued" and "daily send budget reached" in second["last_error"]
    assert len(accounts.account(ADDRESS)["sent"]) == 1
