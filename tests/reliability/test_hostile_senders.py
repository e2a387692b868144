"""Issue 17, hostile senders: each attack tried as an attacker would, and what now refuses it
(docs/reliability.md, "Hostile senders"). Most run on the in-memory ports (tests/memory): the
delivery there, like the fake Google server's, puts Google's Authentication-Results on top
(`authentication="pass"|"fail"|"none"`)."""

from __future__ import annotations

import pytest

from mailbridge.services import sync
from mailbridge.services import tickets as ticket_service
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
DANA = "dana@customer.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Invoice question", message_id="<q1@customer.example>"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def only_ticket(services):
    (ticket,) = services.store.list_tickets()
    return ticket


def inbound_rows(services):
    return sorted(services.store.inbound_log("help"), key=lambda r: r["gmail_message_id"])


# ---- 2. join someone else's ticket -------------------------------------------------------------
def test_a_spoofed_participant_with_a_guessed_tag_does_not_add_its_cc(world):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] Invoice question", "add my colleague",
                                        Cc="spy@evil.test"), authentication="fail")
    sync.poll(services, "help")

    updated = only_ticket(services)
    assert "spy@evil.test" not in updated["participants"]
    assert [s["email"] for s in updated["suggested_participants"]] == ["spy@evil.test"]


def test_a_stranger_quoting_a_ticket_message_id_updates_it_but_adds_nobody(world):
    services, accounts, _ticket = world
    accounts.deliver(ADDRESS, make_mail("mallory@evil.test", ADDRESS, "Re: Invoice question", "hi",
                                        In_Reply_To="<q1@customer.example>", Cc="spy@evil.test"))
    sync.poll(services, "help")

    updated = only_ticket(services)
    assert inbound_rows(services)[-1]["outcome"] == "updated"
    assert updated["participants"] == [DANA]
    assert {s["email"] for s in updated["suggested_participants"]} == {"mallory@evil.test", "spy@evil.test"}


def test_an_authenticated_participant_still_adds_its_cc(world):
    services, accounts, _ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "cc my boss",
                                        In_Reply_To="<q1@customer.example>", Cc="boss@customer.example"))
    sync.poll(services, "help")

    assert only_ticket(services)["participants"] == [DANA, "boss@customer.example"]


def test_an_agent_confirms_a_suggested_participant(world):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "cc",
                                        In_Reply_To="<q1@customer.example>", Cc="boss@customer.example"),
                     authentication="none")
    sync.poll(services, "help")

    result = ticket_service.confirm_participant(services, ticket["id"], "Boss@Customer.example")

    assert result["participants"] == [DANA, "boss@customer.example"]
    assert result["suggested_participants"] == []


def test_the_inbound_row_records_googles_verdict(world):
    services, accounts, _ticket = world
    forged = make_mail(DANA, ADDRESS, "Re: Invoice question", "x", In_Reply_To="<q1@customer.example>",
                       Authentication_Results="mx.google.com; dmarc=pass header.from=customer.example")
    accounts.deliver(ADDRESS, forged, authentication="fail")
    sync.poll(services, "help")

    assert inbound_rows(services)[-1]["authentication"]["verdict"] == "fail"
    assert inbound_rows(services)[0]["authentication"]["verdict"] == "pass"
