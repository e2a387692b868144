"""Issue 28, item 1: a header smuggled through an encoded word inside an encoded word.

The subject `=?utf-8?b?` of `=?utf-8?b?` of "Printer\\r\\nBcc: x@evil.example" was stored decoded
once, so every check saw an encoded word and no CR/LF; compose then handed it to the email
package, which decoded the inner word while folding, and on CPython without the fix of
CVE-2024-6923 (3.11.7 here) the CR/LF became a real `Bcc:` header on the acknowledgement and on
the agent's reply. Now the parser decodes to a fixed point and cleans (parsing.decode_words), and
compose refuses a message that does not read back as built (compose.check_rendered). The mails
are written as bytes by hand: building them with the email package would hit the same flaw.
"""

from __future__ import annotations

import base64
import email
from email import policy

import pytest

from mailbridge.services import outgoing, sync
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
DANA = "dana@customer.example"


def encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


TWICE_ENCODED_BCC = encoded(encoded("Printer\r\nBcc: x@evil.example"))


def raw_mail(subject_header: str, message_id: str = "<smuggle@customer.example>") -> bytes:
    return (f"From: Dana <{DANA}>\r\nTo: {ADDRESS}\r\nSubject: {subject_header}\r\n"
            f"Date: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMy printer is broken.\r\n").encode()


@pytest.fixture
def acking():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": True})
    return services, accounts


def sent(services, accounts) -> list[bytes]:
    """The raw bytes Gmail sent, once the outbox's queued "send" tasks have run."""
    services.queue.deliver(services, kinds=("send",))
    return [m["raw"] for m in accounts.account(ADDRESS)["sent"]]


def header_names(raw: bytes) -> list[str]:
    return [name.lower() for name in email.message_from_bytes(raw, policy=policy.default).keys()]


def test_a_twice_encoded_subject_puts_no_bcc_on_the_acknowledgement(acking):
    services, accounts = acking
    accounts.deliver(ADDRESS, raw_mail(TWICE_ENCODED_BCC))
    sync.poll(services, "help")

    (ack,) = sent(services, accounts)
    assert "bcc" not in header_names(ack)
    assert b"\nBcc:" not in ack and b"\nbcc:" not in ack.lower()
    message = email.message_from_bytes(ack, policy=policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [DANA]
    assert message["Subject"] == "Re: [#1] your message"  # the final form holds an address: bait


def test_a_twice_encoded_subject_puts_no_bcc_on_the_agents_reply(acking):
    services, accounts = acking
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": False})
    accounts.deliver(ADDRESS, raw_mail(TWICE_ENCODED_BCC))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()

    queued = outgoing.send_reply(services, ticket["id"], "Here is your new password", wait=False)
    (reply,) = sent(services, accounts)

    assert services.store.get_outbound(queued["idempotency_key"])["status"] == "sent"
    assert "bcc" not in header_names(reply)
    message = email.message_from_bytes(reply, policy=policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [DANA]
    assert message["Subject"] == "Re: Printer Bcc: x@evil.example"  # one header, the text in plain sight


def test_the_stored_subject_is_the_final_form_with_a_defect_noted(acking):
    services, accounts = acking
    accounts.deliver(ADDRESS, raw_mail(TWICE_ENCODED_BCC))
    sync.poll(services, "help")

    (ticket,) = services.store.list_tickets()
    (row,) = services.store.inbound_log("help")
    assert ticket["subject"] == "Printer Bcc: x@evil.example"
    assert "Subject: encoded more than once; decoded 2 times" in row["defects"]


def test_a_link_hidden_in_a_twice_encoded_subject_is_not_repeated(acking):
    services, accounts = acking
    accounts.deliver(ADDRESS, raw_mail(encoded(encoded("Verify at https://evil.example/login"))))
    sync.poll(services, "help")

    (ack,) = sent(services, accounts)
    message = email.message_from_bytes(ack, policy=policy.default)
    assert message["Subject"] == "Re: [#1] your message"
    assert "evil" not in message.get_body(("plain",)).get_content()


def test_an_old_ticket_stored_with_an_encoded_word_in_its_subject_still_gets_a_clean_reply(acking):
    """Rows stored before the fix hold the subject decoded once: compose brings it to its final
    form too, so the reply carries no Bcc and is not refused."""
    services, accounts = acking
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": False})
    accounts.deliver(ADDRESS, raw_mail("Printer"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    old_form = encoded("Printer\r\nBcc: x@evil.example")
    services.store.update_ticket(ticket["id"], {"subject": old_form})
    for (collection, _key), row in services.store.docs.items():  # the message the Gmail thread's subject comes from
        if collection == "inbound":
            row["message"]["subject"] = old_form

    queued = outgoing.send_reply(services, ticket["id"], "On it", wait=False)
    (reply,) = sent(services, accounts)

    assert services.store.get_outbound(queued["idempotency_key"])["status"] == "sent"
    assert "bcc" not in header_names(reply)
    assert email.message_from_bytes(reply, policy=policy.default)["Subject"] == "Re: Printer Bcc: x@evil.example"
