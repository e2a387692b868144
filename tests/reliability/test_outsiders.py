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
from mailbridge.services import outgoing, stored_bodies, sync
from mailbridge.services import tickets as ticket_service
from tests.helpers import make_email, make_mail
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


# ---- 0. one message stalls the mailbox for good -------------------------------------------------
def html_mail(sender: str, subject: str, html: str) -> bytes:
    message = make_email(sender, ADDRESS, subject, "see the HTML version")
    message.add_alternative(html, subtype="html")
    return bytes(message)


BODIES = {"ascii": "Log line 42: connection reset by peer\n", "cjk": "张三写道:发票问题\n", "emoji": "🎫📬🔥 ok\n"}


@pytest.mark.parametrize("script", BODIES)
def test_a_3mb_text_and_a_5mb_html_mail_become_tickets_read_back_whole(script):
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False},
                      incoming={"max_message_bytes": 0})
    line = BODIES[script]
    text = line * (3_000_000 // len(line.encode()))
    html = "<p>" + line * (5_000_000 // len(line.encode())) + "</p>"
    accounts.deliver(ADDRESS, make_mail("log@customer.example", ADDRESS, "Big log", text))
    accounts.deliver(ADDRESS, html_mail("web@customer.example", "Big page", html))
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Ordinary question"))
    result = sync.poll(services, "help")

    assert result["mailboxes"][0]["counts"]["created"] == 3, result
    views = {v["subject"]: v for v in ticket_service.list_tickets(services, mailbox="help")}
    big_text, big_page = views["Big log"]["messages"][0], views["Big page"]["messages"][0]
    assert big_text["full_text"].startswith(line.strip()) and len(big_text["full_text"]) > 100_000
    assert big_page["html"] and len(big_page["html"]) > 100_000
    assert any("kept in Cloud Storage" in d for d in big_text["defects"] + big_page["defects"])
    stored = [services.store.ticket_messages(views[s]["id"])[0]["message"].get("stored_parts") for s in views]
    assert any(stored)  # such a row holds only a preview and the pointers


# ---- the same attacks through the local stack (Firestore and Storage emulators, fake Google) -----
@pytest.fixture
def stack(mb_env, fake, firestore, storage_emulator):
    from mailbridge.services import mailboxes
    from tests.helpers import connect_mailbox, make_services

    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "false")
    sync.poll(services, "help", scheduled=False)
    return services, fake


def stack_deliver(fake, raw: bytes, **params) -> dict:
    from tests.helpers import deliver

    return deliver(fake.url, ADDRESS, raw, **params)


def stack_sent(fake) -> list[email.message.Message]:
    import base64

    import requests

    rows = requests.get(f"{fake.url}/_fake/users/{ADDRESS}/sent", timeout=10).json()
    return [dict(row, message=email.message_from_bytes(base64.urlsafe_b64decode(row["raw"] + "=" * (-len(row["raw"]) % 4))))
            for row in rows]


def test_stack_a_06mb_cjk_mail_and_the_ordinary_mail_after_it_both_become_tickets(stack):
    services, fake = stack
    body = "张三 写道:\n" * 75_000  # about 0.6 MB of UTF-8 plain text, as in the issue
    stack_deliver(fake, make_mail("log@customer.example", ADDRESS, "Forwarded log", body))
    stack_deliver(fake, make_mail(DANA, ADDRESS, "Invoice question", "Where is my invoice?"))
    result = sync.poll(services, "help", scheduled=False)

    assert result["mailboxes"][0]["counts"]["created"] == 2, result
    views = {v["subject"]: v for v in ticket_service.list_tickets(services, mailbox="help")}
    assert set(views) == {"Forwarded log", "Invoice question"}
    assert views["Forwarded log"]["messages"][0]["full_text"].count("写道:") == 75_000  # read back whole


def test_stack_a_spoofed_tagged_message_does_not_steer_the_agents_reply(stack):
    services, fake = stack
    first = stack_deliver(fake, make_mail(DANA, ADDRESS, "Password reset", "locked out",
                                          message_id="<q1@customer.example>"))
    sync.poll(services, "help", scheduled=False)
    (ticket,) = services.store.list_tickets()
    stack_deliver(fake, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] {PHISH}", "click",
                                  message_id="<spoof@evil.test>"), authentication="fail")
    sync.poll(services, "help", scheduled=False)
    assert len(services.store.ticket_messages(ticket["id"])) == 2  # it joined the ticket

    result = outgoing.send_reply(services, ticket["id"], "Your new password: in the portal.")
    assert result["status"] == "sent", result
    (sent,) = stack_sent(fake)
    message = sent["message"]
    assert "Password reset" in message["Subject"] and "LOCKED" not in message["Subject"]
    assert message["In-Reply-To"] == "<q1@customer.example>" and "spoof" not in (message["References"] or "")
    assert sent["threadId"] == first["threadId"]
    assert (message["To"], message["Cc"], message["Bcc"]) == (DANA, None, None)


def test_stack_a_squatted_message_id_does_not_capture_the_customers_follow_up(stack):
    services, fake = stack
    stack_deliver(fake, make_mail(DANA, ADDRESS, "Bank details", "first", message_id="<victim@customer.example>"))
    sync.poll(services, "help", scheduled=False)
    for n in range(9):  # tickets up to #10: "10" sorts before "4" in document order
        stack_deliver(fake, make_mail(f"c{n}@other.example", ADDRESS, f"Other {n}", "x"))
    sync.poll(services, "help", scheduled=False)
    stack_deliver(fake, make_mail("mallory@evil.test", ADDRESS, "Bank details", "squat",
                                  message_id="<victim@customer.example>"))
    sync.poll(services, "help", scheduled=False)
    stack_deliver(fake, make_mail(DANA, ADDRESS, "Re: Bank details", "IBAN DE00 …",
                                  In_Reply_To="<victim@customer.example>"))
    sync.poll(services, "help", scheduled=False)

    tickets = {t["number"]: t for t in services.store.list_tickets(limit=0)}
    victim = next(t for t in tickets.values() if t["requester"]["email"] == DANA)
    squatter = next(t for t in tickets.values() if t["requester"]["email"] == "mallory@evil.test")
    assert "<victim@customer.example>" not in squatter["message_ids"]
    assert [r["message"]["text"].strip() for r in services.store.ticket_messages(victim["id"])] == ["first", "IBAN DE00 …"]
    squat_row = next(r for r in services.store.ticket_messages(squatter["id"]))
    assert any("Message-ID" in d for d in squat_row["message"]["defects"])


def test_stack_the_ticket_page_shows_each_verdict_and_warns_about_the_requester(stack, functions_url):
    import requests as http

    from mailbridge.services import mailboxes
    from tests.helpers import post_link

    services, fake = stack
    stack_deliver(fake, make_mail("ceo@bank.example", ADDRESS, "Wire transfer", "urgent", Cc="spy@evil.test",
                                  Reply_To="drop@evil.test"), authentication="fail")
    sync.poll(services, "help", scheduled=False)
    (ticket,) = services.store.list_tickets()
    assert ticket["participants"] == ["ceo@bank.example"]
    session = http.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303
    html = session.get(f"{functions_url}/admin/tickets/{ticket['id']}", timeout=30).text
    assert "not authenticated (verdict fail: dmarc=fail, spf=fail, dkim=fail)" in html
    assert 'id="requester-unauthenticated"' in html
    assert "Your reply to ceo@bank.example</label>" in html  # spy and drop only suggested


def test_a_message_that_cannot_be_stored_is_quarantined_with_its_raw_copy_and_the_rest_go_on(monkeypatch):
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    monkeypatch.setattr(stored_bodies, "ROW_BODY_BUDGET", 10**9)  # as before issue 28: bodies stay in the row
    big = accounts.deliver(ADDRESS, make_mail("log@customer.example", ADDRESS, "Forwarded log", "张三 写道:\n" * 75_000))
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Invoice question"))
    result = sync.poll(services, "help")["mailboxes"][0]

    assert (result["outcome"], result["counts"]["created"], result["counts"]["quarantined"]) == ("ok", 1, 1)
    row = next(r for r in services.store.collection("inbound").values() if r["gmail_message_id"] == big)
    assert row["outcome"] == "quarantined" and "DocumentTooLarge" in row["reason"]
    assert services.blobs.get(row["raw_sha256"]).endswith(accounts.account(ADDRESS)["messages"][big]["raw"][-200:])

    monkeypatch.undo()  # what a person's Retry meets once it can be stored (admin Retry = retry_quarantined)
    sync.retry_quarantined(services, "help", big)
    sync.poll(services, "help")
    assert services.store.get_inbound_rows("help", [big])[big]["outcome"] == "created"


# ---- 5. a squatted Message-ID captures the victim's follow-up ----------------------------------
def test_a_squatted_message_id_is_not_held_and_the_follow_up_reaches_the_victim(world):
    services, accounts, ticket = world
    for n in range(9):  # tickets #2..#10: "10" sorts before "1" and "4" in document order
        accounts.deliver(ADDRESS, make_mail(f"c{n}@other.example", ADDRESS, f"Other {n}", "x"))
    sync.poll(services, "help")
    accounts.deliver(ADDRESS, make_mail("mallory@evil.test", ADDRESS, "Invoice question", "squat",
                                        message_id="<q1@customer.example>"))
    sync.poll(services, "help")
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "IBAN DE00",
                                        In_Reply_To="<q1@customer.example>"))
    sync.poll(services, "help")

    squatter = next(t for t in services.store.list_tickets(limit=0) if t["requester"]["email"] == "mallory@evil.test")
    assert "<q1@customer.example>" not in squatter["message_ids"]
    (squat,) = services.store.ticket_messages(squatter["id"])
    assert any("already held by another sender's ticket" in d for d in squat["message"]["defects"])
    assert [r["message"]["text"].strip() for r in services.store.ticket_messages(ticket["id"])] == ["Hello", "IBAN DE00"]


def test_the_same_senders_message_id_in_a_second_mailbox_is_still_held(world):
    services, accounts, ticket = world
    connected_mailbox(services, accounts, "sales", "sales@acme.example", outgoing={"acknowledge_new": False})
    # another Date: not a copy of the same mail (that joins the first ticket, docs/gmail-differences.md)
    accounts.deliver("sales@acme.example", make_mail(DANA, "sales@acme.example", "Invoice question",
                                                     message_id="<q1@customer.example>",
                                                     Date="Tue, 01 Dec 2026 09:00:00 +0000"))
    sync.poll(services, "sales")
    other = next(t for t in services.store.list_tickets(limit=0) if t["mailbox"] == "sales")
    assert other["message_ids"] == ["<q1@customer.example>"]
