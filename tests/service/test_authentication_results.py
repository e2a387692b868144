"""Issue 28, item 3, on the in-memory ports: Google's Authentication-Results read as RFC 8601
writes it, so a `;` inside a quoted smtp.mailfrom no longer makes a spoofer's mail authenticated
(the spoofer's Cc became a participant of the ticket at once)."""

from __future__ import annotations

import pytest

from mailbridge.services import sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
DANA = "dana@customer.example"
# What Google's MX would write for a spoofed From: dmarc=fail, with the envelope sender's quoted
# local part (the attacker's) holding a fake result ahead of it.
SMUGGLED = ('mx.google.com; spf=pass (google.com: domain of x@evil.example designates 192.0.2.9 as permitted '
            'sender) smtp.mailfrom="x; dmarc=pass header.from=customer.example"@evil.example; '
            "dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=customer.example")


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Invoice question", message_id="<q1@customer.example>"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def deliver_with_results(accounts, raw: bytes, results: str) -> None:
    """Delivered with `results` as the topmost Authentication-Results, as Google's MX puts its own."""
    accounts.deliver(ADDRESS, f"Authentication-Results: {results}\r\n".encode() + raw, authentication="none")


def test_a_smuggled_dmarc_pass_adds_no_participant(world):
    services, accounts, ticket = world
    deliver_with_results(accounts, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] Invoice question",
                                             "add my colleague", Cc="spy@evil.test"), SMUGGLED)
    sync.poll(services, "help")

    (updated,) = services.store.list_tickets()
    row = max(services.store.inbound_log("help"), key=lambda r: r["gmail_message_id"])
    assert row["authentication"]["verdict"] == "fail" and row["authentication"]["dmarc"] == "fail"
    assert "spy@evil.test" not in updated["participants"]
    assert [s["email"] for s in updated["suggested_participants"]] == ["spy@evil.test"]


def test_the_same_mail_with_googles_pass_still_adds_its_cc(world):
    services, accounts, ticket = world
    honest = SMUGGLED.replace("dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE)", "dmarc=pass (p=REJECT)")
    deliver_with_results(accounts, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] Invoice question",
                                             "add my colleague", Cc="boss@customer.example"), honest)
    sync.poll(services, "help")

    (updated,) = services.store.list_tickets()
    assert "boss@customer.example" in updated["participants"]
