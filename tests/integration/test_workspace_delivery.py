"""Issue 30's "done" through the real adapters (Firestore emulator, fake Google server): a
support address that is a Google Group and an alias, cc'd to two mailboxes, with a customer whose
answer lands in Spam, yields one ticket with the customer as requester, answered from the
address they wrote to; the answer is rescued from Spam."""

from __future__ import annotations

import base64
import email
import email.policy
import json

import requests

from mailbridge.services import mailboxes, outgoing, tickets
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, run_cli
from tests.service.test_workspace_rules import GROUP, PERSON, group_mail

SUPPORT, SALES = "help@acme.example", "sales@acme.example"


def labels_of(fake, address, gmail_id):
    listed = requests.get(f"{fake.url}/_fake/users/{address}/messages", timeout=10).json()
    return next(m["labelIds"] for m in listed if m["id"] == gmail_id)


def test_a_group_alias_cc_d_to_two_mailboxes_with_an_answer_in_spam(mb_env, fake, firestore, storage_emulator, capsys):
    services = make_services()
    connect_mailbox(services, fake.url, "help", SUPPORT)
    connect_mailbox(services, fake.url, "sales", SALES)
    requests.post(f"{fake.url}/_fake/users/{SUPPORT}/send-as",
                  json={"sendAsEmail": GROUP, "verificationStatus": "accepted"}, timeout=10).raise_for_status()
    ingest.poll(services)
    raw = group_mail()
    deliver(fake.url, SUPPORT, raw, authentication="none")
    deliver(fake.url, SALES, raw, authentication="none")
    ingest.poll(services, "help")
    ingest.poll(services, "sales")

    (ticket,) = services.store.list_tickets()
    shown = tickets.show(services, ticket["id"])
    assert shown["requester"]["email"] == PERSON and shown["reply_from"] == GROUP
    assert {r["ticket_id"] for r in services.store.inbound_log("sales")} == {ticket["id"]}
    code, out, _err = run_cli(["tickets", "show", ticket["id"], "--json"], capsys)
    assert code == 0 and json.loads(out)["reply_from"] == GROUP

    outgoing.send_reply(services, ticket["id"], "Your invoice is attached.", idempotency_key="ws-1")
    sent = services.store.get_outbound("ws-1")
    assert sent["status"] == "sent"
    # the agent's reply (and the vouched person's acknowledgement, once the outbox sent it): from the Group
    sent_mail = [email.message_from_bytes(base64.urlsafe_b64decode(out["raw"]), policy=email.policy.default)
                 for out in requests.get(f"{fake.url}/_fake/users/{SUPPORT}/sent", timeout=10).json()]
    assert [m for m in sent_mail if not m["Auto-Submitted"]], "the agent's reply was not sent"
    for message in sent_mail:
        assert message["From"].addresses[0].addr_spec == GROUP and message["To"].addresses[0].addr_spec == PERSON

    answer = make_mail(PERSON, GROUP, "Re: Invoice missing", "Got it, thanks",
                       In_Reply_To=sent["message_id"], References=sent["message_id"])
    filed = deliver(fake.url, SUPPORT, answer, labels="SPAM,UNREAD", authentication="fail")
    ingest.poll(services, "help")
    assert services.store.get_ticket(ticket["id"])["message_count"] == 2
    assert "SPAM" not in labels_of(fake, SUPPORT, filed["id"]) and "INBOX" in labels_of(fake, SUPPORT, filed["id"])


def test_reading_spam_costs_no_gmail_call_but_each_spam_messages_own_fetch(mb_env, fake, firestore, storage_emulator):
    """The bench's figure (≤ 5.5 units per message, docs/benchmarks.md) rests on one history.list a
    page, one messages.get per message and one batchModify: reading Spam keeps that shape and adds
    only each spam message's fetch (5 units)."""
    services = make_services()
    connect_mailbox(services, fake.url, "help", SUPPORT)
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "false")  # sends are not ingestion
    ingest.poll(services, "help")
    for i in range(100):
        deliver(fake.url, SUPPORT, make_mail(f"c{i}@customer.example", SUPPORT, f"Request {i}"))
    for i in range(2):
        deliver(fake.url, SUPPORT, make_mail(f"offer{i}@spam.example", SUPPORT, f"Offer {i}"), labels="SPAM,UNREAD")
    fake.post("/_fake/stats/reset")
    result = ingest.poll(services, "help")
    stats = fake.get("/_fake/stats")["users"][SUPPORT]
    assert result["totals"]["created"] == 100
    assert services.store.get_sync("help", services.settings.instance)["spam_count"] == 2
    # the history listed before the lease (the run starts from it), and again before the release
    assert stats["calls"] == {"gmail.users.history.list": 2, "gmail.users.messages.get": 102,
                              "gmail.users.messages.batchModify": 1}, stats["calls"]
    assert stats["quota_units"] == 2 * 2 + 5 * 102 + 50
