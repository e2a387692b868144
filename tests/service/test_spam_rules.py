"""Support mail rescued from Spam (issue 30, docs/gmail-differences.md "Spam"): an answer to our
message or an authenticated participant's mail is ingested and moved to the inbox; other spam is
left alone, counted and listed, and an admin may make a ticket of a listed one."""

import pytest

from mailbridge.errors import InvalidInput
from mailbridge.services import outgoing, sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS, CUSTOMER = "help@acme.example", "ann@customer.example"
SPAM = ("SPAM", "UNREAD")


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts)
    accounts.deliver(ADDRESS, make_mail(CUSTOMER, ADDRESS, "Printer jammed", message_id="<p1@customer.example>"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    return services, accounts, ticket


def labels(accounts, gmail_id):
    return accounts.account(ADDRESS)["messages"][gmail_id]["labelIds"]


def spam_state(services):
    return services.store.get_sync("help", services.settings.instance)


def test_an_answer_to_our_reply_filed_as_spam_joins_the_ticket_and_leaves_spam(world):
    services, accounts, ticket = world
    outgoing.send_reply(services, ticket["id"], "Try turning it off", idempotency_key="r1", wait=False)
    services.queue.deliver(services, kinds=("send",))
    ours = services.store.get_outbound("r1")["message_id"]
    answer = accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Re: Printer jammed", "no luck",
                                                 In_Reply_To=ours, References=ours), labels=SPAM, authentication="fail")
    sync.poll(services, "help")
    assert services.store.get_ticket(ticket["id"])["message_count"] == 2
    assert "SPAM" not in labels(accounts, answer) and "INBOX" in labels(accounts, answer)


def test_an_authenticated_participants_mail_in_spam_is_rescued(world):
    services, accounts, ticket = world
    follow_up = accounts.deliver(ADDRESS, make_mail(CUSTOMER, ADDRESS, f"[#{ticket['number']}] Printer jammed",
                                                    "any news?"), labels=SPAM)
    sync.poll(services, "help")
    assert services.store.get_ticket(ticket["id"])["message_count"] == 2
    assert labels(accounts, follow_up)[-1] == "INBOX"


def test_a_forged_participant_in_spam_is_left_there_and_counted(world):
    services, accounts, ticket = world
    forged = accounts.deliver(ADDRESS, make_mail(CUSTOMER, ADDRESS, f"[#{ticket['number']}] Printer jammed",
                                                 "pay here"), labels=SPAM, authentication="fail")
    stranger = accounts.deliver(ADDRESS, make_mail("offer@spam.example", ADDRESS, "Cheap toner"), labels=SPAM)
    sync.poll(services, "help")
    sync.poll(services, "help")
    state = spam_state(services)
    assert services.store.get_ticket(ticket["id"])["message_count"] == 1
    assert labels(accounts, forged) == list(SPAM) and labels(accounts, stranger) == list(SPAM)
    assert state["spam_count"] == 2
    assert [e["gmail_message_id"] for e in state["spam_recent"]] == [stranger, forged]
    assert {r["gmail_message_id"] for r in services.store.inbound_log("help")}.isdisjoint({forged, stranger})


def test_an_admin_makes_a_ticket_of_a_listed_spam_message_only(world):
    services, accounts, _ticket = world
    listed = accounts.deliver(ADDRESS, make_mail("bob@newcustomer.example", ADDRESS, "Quote please"), labels=SPAM)
    sync.poll(services, "help")
    with pytest.raises(InvalidInput):
        sync.make_ticket_from_spam(services, "help", "m99999")
    result = sync.make_ticket_from_spam(services, "help", listed)
    assert result["counts"]["created"] == 1
    assert "Quote please" in {t["subject"] for t in services.store.list_tickets()}
    assert labels(accounts, listed)[-1] == "INBOX" and "SPAM" not in labels(accounts, listed)
    assert spam_state(services)["spam_recent"] == []


def test_a_full_sync_after_the_history_expired_judges_spam_too(world):
    services, accounts, ticket = world
    follow_up = accounts.deliver(ADDRESS, make_mail(CUSTOMER, ADDRESS, f"[#{ticket['number']}] Printer jammed",
                                                    "still broken"), labels=SPAM)
    accounts.expire_history(ADDRESS)
    result = sync.poll(services, "help")
    assert result["mailboxes"][0]["mode"] == "full"
    assert services.store.get_ticket(ticket["id"])["message_count"] == 2
    assert labels(accounts, follow_up)[-1] == "INBOX"
