"""One mail, one ticket (issue 30, docs/gmail-differences.md): the same message delivered to two
connected mailboxes opens one ticket, each copy an inbound row pointing at it; a copy counts only
when the Message-ID, the sender and the Date match (the squatting rule of docs/reliability.md)."""

import email
import email.policy
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

from mailbridge.services import sync, tickets
from tests.helpers import event_ledger, make_mail
from tests.memory.services import connected_mailbox, memory_services

SUPPORT, SALES = "support@acme.example", "sales@acme.example"
CUSTOMER = "ann@customer.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, "support", SUPPORT)
    connected_mailbox(services, accounts, "sales", SALES)
    return services, accounts


def cc_mail(**headers):
    return make_mail(CUSTOMER, SUPPORT, "Invoice wrong", "Please fix", Cc=SALES,
                     message_id="<inv-1@customer.example>", **headers)


def dated(raw: bytes, when: datetime) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    message.replace_header("Date", format_datetime(when))
    return bytes(message)


def inbound_messages(services, ticket):
    return [m for m in tickets.show(services, ticket["id"])["messages"] if m["direction"] == "in"]


def at_both(services, accounts, raw, order=("support", "sales")):
    """`raw` delivered to both mailboxes, then each synced in `order`."""
    accounts.deliver(SUPPORT, raw)
    accounts.deliver(SALES, raw)
    for name in order:
        sync.poll(services, name)


def rows(services, mailbox):
    return services.store.inbound_log(mailbox)


def test_a_mail_cc_d_to_two_mailboxes_makes_one_ticket_answered_by_the_first(world):
    services, accounts = world
    at_both(services, accounts, cc_mail())
    (ticket,) = services.store.list_tickets()
    (first,), (copy,) = rows(services, "support"), rows(services, "sales")
    assert (first["outcome"], first["ticket_id"]) == ("created", ticket["id"])
    assert (copy["outcome"], copy["ticket_id"]) == ("updated", ticket["id"])
    assert copy["reason"].startswith("copy:")
    assert ticket["mailbox"] == "support" and ticket["received_by"] == ["support", "sales"]
    assert len(inbound_messages(services, ticket)) == 1


def test_the_same_message_id_from_another_sender_is_not_a_copy(world):
    services, accounts = world
    accounts.deliver(SUPPORT, cc_mail())
    accounts.deliver(SALES, make_mail("mallory@evil.example", SALES, "Invoice wrong", "pay here", Cc=SUPPORT,
                                      message_id="<inv-1@customer.example>"))
    sync.poll(services, "support")
    sync.poll(services, "sales")
    assert len(services.store.list_tickets()) == 2
    assert rows(services, "sales")[0]["outcome"] == "created"


def test_the_same_message_id_and_sender_with_another_date_is_not_a_copy(world):
    services, accounts = world
    day = datetime(2026, 1, 1, tzinfo=timezone.utc)
    accounts.deliver(SUPPORT, dated(cc_mail(), day))
    accounts.deliver(SALES, dated(cc_mail(), day + timedelta(days=1)))
    sync.poll(services, "support")
    sync.poll(services, "sales")
    assert len(services.store.list_tickets()) == 2


def test_two_syncs_committing_the_same_mail_at_once_make_one_ticket(world, monkeypatch):
    services, accounts = world
    raw = cc_mail()
    accounts.deliver(SUPPORT, raw)
    accounts.deliver(SALES, raw)
    store, original = services.store, services.store.commit_inbound_chunk
    interleaved = []

    def support_commits_meanwhile(mailbox, *args, **kwargs):
        # sales decided "new ticket"; support's sync commits the same mail before sales does
        if mailbox == "sales" and not interleaved:
            interleaved.append(1)
            monkeypatch.setattr(store, "commit_inbound_chunk", original)
            sync.poll(services, "support")
            monkeypatch.setattr(store, "commit_inbound_chunk", support_commits_meanwhile)
        return original(mailbox, *args, **kwargs)

    monkeypatch.setattr(store, "commit_inbound_chunk", support_commits_meanwhile)
    sync.poll(services, "sales")
    (ticket,) = services.store.list_tickets()
    assert interleaved and ticket["mailbox"] == "support"
    assert rows(services, "sales")[0]["ticket_id"] == ticket["id"]
    assert ticket["message_count"] == 1


def test_a_reply_all_reaching_both_mailboxes_is_added_once(world):
    services, accounts = world
    at_both(services, accounts, cc_mail())
    follow_up = make_mail(CUSTOMER, SUPPORT, "Re: Invoice wrong", "any news?", Cc=SALES,
                          In_Reply_To="<inv-1@customer.example>", References="<inv-1@customer.example>")
    at_both(services, accounts, follow_up, order=("sales", "support"))
    (ticket,) = services.store.list_tickets()
    assert ticket["message_count"] == 2
    assert len(inbound_messages(services, ticket)) == 2


def test_a_bcc_copy_found_after_the_first_commit_joins_the_ticket(world):
    services, accounts = world
    raw = make_mail(CUSTOMER, SUPPORT, "Quote", "price?", message_id="<q-1@customer.example>")  # sales in Bcc
    accounts.deliver(SUPPORT, raw)
    accounts.deliver(SALES, raw)
    sync.poll(services, "support")
    sync.poll(services, "sales")
    (ticket,) = services.store.list_tickets()
    assert rows(services, "sales")[0]["ticket_id"] == ticket["id"]
    assert "message_copies" not in {c for c, _ in services.store.docs}  # mail to one address claims nothing


def test_a_copy_adds_no_ticket_event_and_the_event_ledger_holds(world):
    services, accounts = world
    at_both(services, accounts, cc_mail())
    for name in ("support", "sales"):
        assert event_ledger(services, name)["problems"] == []
    (ticket,) = services.store.list_tickets()
    types = [e["type"] for d in services.store.event_documents() for e in d["events"] if e["subject"] == ticket["id"]]
    assert types.count("ticket.created") == 1 and "ticket.message_added" not in types
