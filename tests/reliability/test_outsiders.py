"""Issue 28, outsiders: mail nobody vouches for neither steers what we send nor captures anyone's
ticket (docs/reliability.md, "Hostile senders"). On the in-memory ports (tests/memory), whose
delivery puts Google's Authentication-Results on top (`authentication="pass"|"fail"|"none"`)."""

from __future__ import annotations

import email
import json

import pytest
from click.testing import CliRunner

from mailbridge import bootstrap
from mailbridge.cli.app import cli
from mailbridge.services import outgoing, sync
from mailbridge.services import tickets as ticket_service
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
DANA = "dana@customer.example"
PHISH = "ACCOUNT LOCKED - re-verify at https://evil.test/login"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Invoice question", message_id="<q1@customer.example>"),
                     thread_id="t-dana")
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def sent_reply(services, accounts, ticket) -> email.message.Message:
    outgoing.send_reply(services, ticket["id"], "Your new password is in the portal.", idempotency_key="reply-k", wait=False)
    services.queue.deliver(services, kinds=("send",))
    (sent,) = accounts.account(ADDRESS)["sent"]
    return sent


def parsed(sent) -> email.message.Message:
    return email.message_from_bytes(sent["raw"])


# ---- 2. the agent's reply follows a spoofed message --------------------------------------------
def test_a_spoofed_tagged_message_joins_the_ticket_but_does_not_steer_the_reply(world):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] {PHISH}", "click it",
                                        message_id="<spoof@evil.test>"), authentication="fail", thread_id="t-evil")
    sync.poll(services, "help")
    view = ticket_service.show(services, ticket["id"])
    assert [m["authentication"]["verdict"] for m in view["messages"]] == ["pass", "fail"]  # joined, marked

    sent = sent_reply(services, accounts, ticket)
    message = parsed(sent)
    assert "evil" not in message["Subject"] and "LOCKED" not in message["Subject"]
    assert message["In-Reply-To"] == "<q1@customer.example>"
    assert "<spoof@evil.test>" not in (message["References"] or "")
    assert sent.get("threadId") != "t-evil"
    assert (message["To"], message["Cc"], message["Bcc"]) == (DANA, None, None)


def test_a_spoofed_message_in_the_customers_thread_does_not_become_in_reply_to(world):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "see the link",
                                        message_id="<spoof2@evil.test>", In_Reply_To="<q1@customer.example>"),
                     authentication="none", thread_id="t-dana")
    sync.poll(services, "help")
    message = parsed(sent_reply(services, accounts, ticket))
    assert message["In-Reply-To"] == "<q1@customer.example>"
    assert "spoof2" not in (message["References"] or "")


def test_an_authenticated_follow_up_still_steers_the_reply(world):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "more",
                                        message_id="<q2@customer.example>", In_Reply_To="<q1@customer.example>"),
                     thread_id="t-dana")
    sync.poll(services, "help")
    sent = sent_reply(services, accounts, ticket)
    assert parsed(sent)["In-Reply-To"] == "<q2@customer.example>"
    assert sent.get("threadId") == "t-dana"


# ---- 4. unauthenticated new tickets; every message shows its verdict ---------------------------
@pytest.fixture
def spoofed_ceo():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    accounts.deliver(ADDRESS, make_mail("ceo@bank.example", ADDRESS, "Wire transfer", "urgent",
                                        Cc="spy@evil.test", Reply_To="drop@evil.test"), authentication="fail")
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def test_an_unauthenticated_new_ticket_only_suggests_its_cc_and_reply_to(spoofed_ceo):
    _services, _accounts, ticket = spoofed_ceo
    assert ticket["participants"] == ["ceo@bank.example"]
    assert {s["email"] for s in ticket["suggested_participants"]} == {"spy@evil.test", "drop@evil.test"}


def test_an_authenticated_new_ticket_still_takes_its_cc(world):
    services, accounts, _ticket = world
    accounts.deliver(ADDRESS, make_mail("eve@partner.example", ADDRESS, "New order", "hi", Cc="bob@partner.example"))
    sync.poll(services, "help")
    newest = services.store.list_tickets()[0]
    assert newest["participants"] == ["eve@partner.example", "bob@partner.example"]


def cli_json(services, monkeypatch, *args):
    monkeypatch.setattr(bootstrap, "_services", services)
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_tickets_show_and_inbound_json_give_each_messages_verdict(spoofed_ceo, monkeypatch):
    services, _accounts, ticket = spoofed_ceo
    shown = cli_json(services, monkeypatch, "tickets", "show", ticket["id"], "--json")
    assert shown["messages"][0]["authentication"] == {"verdict": "fail", "dmarc": "fail", "spf": "fail", "dkim": "fail"}
    (row,) = cli_json(services, monkeypatch, "inbound", "help", "--json")
    assert row["authentication"]["verdict"] == "fail"


def test_an_outgoing_message_has_no_verdict_and_an_unstamped_one_is_none(world, monkeypatch):
    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "x", In_Reply_To="<q1@customer.example>"),
                     authentication="none")
    sync.poll(services, "help")
    sent_reply(services, accounts, ticket)
    shown = cli_json(services, monkeypatch, "tickets", "show", ticket["id"], "--json")
    assert [(m["direction"], (m["authentication"] or {}).get("verdict")) for m in shown["messages"]] == [
        ("in", "pass"), ("in", "none"), ("out", None)]
