"""Outgoing mail against the Firestore emulator and the fake Gmail: threaded replies, the
mailbox resolution chain, acknowledgements and their loop guards, safety limits, exactly once."""

import base64
import email
from email import policy
import json
import time

import pytest
import requests

from mailbridge.adapters.firestore.store import Store
from mailbridge.bootstrap import bootstrap
from mailbridge.config import Settings
from mailbridge.domain import rules
from mailbridge.errors import Conflict, InvalidInput
from mailbridge.services import mailboxes, outbox, outgoing
from mailbridge.services.outgoing import delivery, records
from mailbridge.services import sync as ingest
from mailbridge.services import tickets
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, run_cli

ADDRESS = "help@acme.example"
CUSTOMER = "dana@customer.example"


def raw_of(row) -> bytes:
    return base64.urlsafe_b64decode(row["raw"] + "=" * (-len(row["raw"]) % 4))


def sent(fake, address=ADDRESS) -> list[dict]:
    rows = requests.get(f"{fake.url}/_fake/users/{address}/sent", timeout=10).json()
    for row in rows:
        row["message"] = email.message_from_bytes(raw_of(row), policy=policy.default)
    return rows


def send_calls(fake, address=ADDRESS) -> int:
    stats = requests.get(f"{fake.url}/_fake/stats", timeout=10).json()
    return stats["users"].get(address, {}).get("calls", {}).get("gmail.users.messages.send", 0)


def connect(services, fake, name, address, acknowledge=False):
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "true" if acknowledge else "false")
    ingest.poll(services, name)  # first poll records the history id


def new_ticket(services, fake, subject="Printer jammed", sender=f'"Dana" <{CUSTOMER}>', address=ADDRESS,
               mailbox="help", **headers) -> tuple[dict, dict]:
    delivered = deliver(fake.url, address, make_mail(sender, address, subject, "It is broken", **headers))
    ingest.poll(services, mailbox)
    ticket_id = services.store.find_ticket_by_thread(f"{mailbox}:{delivered['threadId']}")
    assert ticket_id, "the delivered mail did not become a ticket"
    return services.store.get_ticket(ticket_id), delivered


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect(services, fake, "help", ADDRESS)
    return services


# -- replies and threading ----------------------------------------------------------------------
def test_reply_is_sent_threaded_and_the_customers_answer_threads_back(services, fake):
    ticket, delivered = new_ticket(services, fake, message_id="<m1@customer.example>", Cc="boss@customer.example")

    result = outgoing.send_reply(services, ticket["id"], "We are on it.", html="<p>We are <b>on it</b>.</p>",
                                 attachments=[("steps.txt", "text/plain", b"1. open tray\n")], idempotency_key="r1")

    assert (result["status"], result["mailbox"], result["rule"]) == ("sent", "help", "arrival_mailbox")
    [row] = sent(fake)
    message = row["message"]
    assert message["From"].addresses[0].addr_spec == ADDRESS
    assert message["To"] == CUSTOMER
    assert message["Cc"] == "boss@customer.example"
    # the subject policy (README.md): joining the customer's Gmail thread takes its subject
    assert message["Subject"] == "Re: Printer jammed"
    assert message["In-Reply-To"] == "<m1@customer.example>"
    assert "<m1@customer.example>" in message["References"]
    # ours is kept beside the one Gmail really sent (equal unless Gmail replaced it)
    assert message["Message-ID"] == result["sent_message_id"]
    assert message["X-Mailbridge-Outbound"].strip() == result["message_id"]
    assert result["message_id"].endswith("@mailbridge.acme.example>")
    assert row["threadId"] == delivered["threadId"] == result["thread_id"]
    assert row["id"] == result["gmail_message_id"]
    assert [a.get_filename() for a in message.iter_attachments()] == ["steps.txt"]
    assert "on it" in message.get_body(("html",)).get_content()

    time.sleep(1.1)  # messages are ordered by their second-resolution timestamps
    deliver(fake.url, ADDRESS, make_mail(f'"Dana" <{CUSTOMER}>', ADDRESS, "Re: Printer jammed", "Thanks!",
                                         In_Reply_To=message["Message-ID"], References=message["Message-ID"]))
    assert ingest.poll(services, "help")["totals"]["updated"] == 1
    view = tickets.show(services, ticket["id"])
    assert [m["direction"] for m in view["messages"]] == ["in", "out", "in"]
    assert view["messages"][1]["message_id"] == result["message_id"]
    assert view["messages"][1]["status"] == "sent"
    assert len(services.store.list_tickets()) == 1


def test_retrying_a_sent_key_returns_the_same_message(services, fake):
    ticket, _ = new_ticket(services, fake)
    first = outgoing.send_reply(services, ticket["id"], "Hello", idempotency_key="same")
    again = outgoing.send_reply(services, ticket["id"], "Hello", idempotency_key="same")
    assert again["gmail_message_id"] == first["gmail_message_id"]
    assert len(sent(fake)) == 1


def test_dry_run_explains_and_sends_nothing(services, fake):
    ticket, _ = new_ticket(services, fake)
    preview = outgoing.send_reply(services, ticket["id"], "Hello", dry_run=True)
    assert preview["status"] == "dry_run" and preview["rule"] == "arrival_mailbox"
    assert preview["to"] == [CUSTOMER] and preview["headers"]["Subject"] == "Re: Printer jammed"
    assert sent(fake) == []
    assert services.store.db.collection("outbound").get() == []


# -- resolution chain ---------------------------------------------------------------------------
LEVELS = [("ticket", "tkt"), ("ticket_type", "kind"), ("team", "team"), ("client", "client")]


def test_each_override_level_wins_and_falls_through_when_disconnected(services, fake):
    for _scope, name in LEVELS + [(None, "fallback")]:
        connect(services, fake, name, f"{name}@acme.example")
    mailboxes.set_global_setting(services, "default_outgoing_mailbox", "fallback")
    ticket, _ = new_ticket(services, fake)
    services.store.update_ticket(ticket["id"], {"ticket_type": "Incident", "team": "billing"})
    keys = {"ticket": ticket["id"], "ticket_type": "incident", "team": "Billing", "client": "customer.example"}
    for scope, name in LEVELS:
        outgoing.set_override(services, scope, keys[scope], name)
    expected = [(f"{scope}_override", name) for scope, name in LEVELS] + [
        ("arrival_mailbox", "help"), ("default_outgoing_mailbox", "fallback")]

    for index, (rule, name) in enumerate(expected):
        ticket = services.store.get_ticket(ticket["id"])
        resolution = outgoing.resolve_outgoing(services, ticket)
        assert (resolution["rule"], resolution["mailbox"]) == (rule, name)
        assert [s["mailbox"] for s in resolution["skipped"]] == [n for _r, n in expected[:index]]
        assert all("not connected" in s["reason"] for s in resolution["skipped"])
        mailboxes.disconnect(services, name)

    with pytest.raises(InvalidInput, match="no usable outgoing mailbox"):
        outgoing.resolve_outgoing(services, services.store.get_ticket(ticket["id"]))


def test_reply_through_an_override_leaves_from_that_mailbox_in_a_new_thread(services, fake):
    connect(services, fake, "team", "team@acme.example")
    ticket, _ = new_ticket(services, fake)
    outgoing.set_override(services, "client", "customer.example", "team")
    result = outgoing.send_reply(services, ticket["id"], "From the team")
    assert (result["mailbox"], result["rule"]) == ("team", "client_override")
    assert "customer.example" in result["explanation"]
    [row] = sent(fake, "team@acme.example")
    assert row["message"]["From"].addresses[0].addr_spec == "team@acme.example"
    assert row["message"]["Subject"] == f"Re: [#{ticket['number']}] Printer jammed"  # a new thread: tagged
    assert sent(fake) == []
    # the customer answers the team mailbox: it threads by Message-ID into the same ticket
    deliver(fake.url, "team@acme.example", make_mail(CUSTOMER, "team@acme.example", "Re: Printer jammed", "ok",
                                                     In_Reply_To=row["message"]["Message-ID"]))
    assert ingest.poll(services, "team")["totals"]["updated"] == 1
    assert len(services.store.list_tickets()) == 1


def test_overrides_list_and_remove(services, fake):
    outgoing.set_override(services, "team", "Billing", "help")
    assert [(r["scope"], r["key"], r["mailbox"]) for r in outgoing.list_overrides(services)] == [
        ("team", "billing", "help")]
    outgoing.remove_override(services, "team", "BILLING")
    assert outgoing.list_overrides(services) == []
    with pytest.raises(Exception, match="no mailbox"):
        outgoing.set_override(services, "team", "x", "nope")


# -- acknowledgements ---------------------------------------------------------------------------
def test_new_tickets_are_acknowledged_with_auto_headers_at_most_three_per_hour(services, fake):
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "true")
    for i in range(4):
        deliver(fake.url, ADDRESS, make_mail(CUSTOMER, ADDRESS, f"Problem {i}"))
    ingest.poll(services, "help")
    ingest.poll(services, "help")
    acks = sent(fake)
    assert len(acks) == 3
    message = acks[0]["message"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Loop"] == rules.loop_marker(services.settings.prefix)
    assert message["To"] == CUSTOMER
    numbers = sorted(t["number"] for t in services.store.list_tickets())
    assert any(f"[#{n}]" in message.get_body(("plain",)).get_content() for n in numbers)


def test_auto_replies_are_not_acknowledged(services, fake):
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "true")
    deliver(fake.url, ADDRESS, make_mail(CUSTOMER, ADDRESS, "Out of office", Auto_Submitted="auto-replied"))
    deliver(fake.url, ADDRESS, make_mail("postmaster@mx.example", ADDRESS, "Delivery failure"))
    ingest.poll(services, "help")
    assert sent(fake) == []


def test_acknowledgement_loop_between_two_mailbridge_deployments_stops_at_once(services, fake, firestore):
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "true")
    project = services.settings.project + "-other"  # a second deployment with its own Firestore
    requests.delete(f"http://{firestore}/emulator/v1/projects/{project}/databases/(default)/documents",
                    timeout=30).raise_for_status()
    other = make_services(project=project)
    connect(other, fake, "desk", "desk@other.example", acknowledge=True)
    deliver(fake.url, ADDRESS, make_mail("desk@other.example", ADDRESS, "Hello from the other helpdesk"))

    for _round in range(3):  # each side polls and would acknowledge what the other sent
        ingest.poll(services, "help")
        for row in sent(fake, ADDRESS):
            delivered_ids = {m.get("message_id") for m in other.store.inbound_log("desk")}
            if row["message"]["Message-ID"] not in delivered_ids:
                deliver(fake.url, "desk@other.example", raw_of(row))
        ingest.poll(other, "desk")
        for row in sent(fake, "desk@other.example"):
            deliver(fake.url, ADDRESS, raw_of(row))

    assert len(sent(fake, ADDRESS)) == 1  # the one acknowledgement of the first mail
    assert sent(fake, "desk@other.example") == []
    [row] = other.store.inbound_log("desk")
    assert row["outcome"] == "ignored" and row["reason"]
    assert other.store.list_tickets() == []


# -- safety ---------------------------------------------------------------------------------------
def test_header_injection_is_refused_and_nothing_is_recorded_or_sent(services, fake):
    ticket, _ = new_ticket(services, fake)
    services.store.update_mailbox("help", {"outgoing.display_name": "Help\r\nBcc: victim@evil.example"})
    with pytest.raises(InvalidInput, match="line break"):
        outgoing.send_reply(services, ticket["id"], "Hello")
    services.store.update_mailbox("help", {"outgoing.display_name": "Help"})
    with pytest.raises(InvalidInput, match="line break"):
        outgoing.send_reply(services, ticket["id"], "Hello", attachments=[("a\nBcc: x@evil.example", "text/plain", b"x")])
    assert sent(fake) == []
    assert services.store.db.collection("outbound").get() == []


def test_a_bcc_smuggled_through_a_twice_encoded_subject_reaches_no_message(services, fake):
    """Issue 28: an encoded word inside an encoded word; the email package of 3.11.7 decoded the
    inner one while writing the acknowledgement and the agent's reply, into a real Bcc header."""
    def encoded(text: str) -> str:
        return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="

    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "true")
    subject = encoded(encoded("Printer\r\nBcc: x@evil.example"))
    deliver(fake.url, ADDRESS, (f"From: Dana <{CUSTOMER}>\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
                                "Date: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <smuggle@customer.example>\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n\r\nIt is broken\r\n").encode())
    ingest.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    assert ticket["subject"] == "Printer Bcc: x@evil.example"

    outgoing.send_reply(services, ticket["id"], "Your new password is in the portal.", idempotency_key="smuggle-1")

    rows = sent(fake)
    assert len(rows) == 2  # the acknowledgement and the reply
    for row in rows:
        assert b"\nbcc:" not in raw_of(row).lower() and row["message"]["Bcc"] is None
        assert [a.addr_spec for a in row["message"]["To"].addresses] == [CUSTOMER]


def test_a_reply_past_the_daily_budget_stays_queued_before_google(services, fake):
    mailboxes.set_mailbox_setting(services, "help", "outgoing.daily_send_budget", "2")
    ticket, _ = new_ticket(services, fake)
    for i in range(2):
        assert outgoing.send_reply(services, ticket["id"], f"Reply {i}")["status"] == "sent"
    result = outgoing.send_reply(services, ticket["id"], "One too many")
    assert result["status"] == "queued" and "daily send budget reached" in result["error"]
    assert send_calls(fake) == 2
    assert len(sent(fake)) == 2


# -- exactly once -----------------------------------------------------------------------------------
class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so no handler in the code under test can swallow it."""


class CrashAfterSendStore(Store):
    """The Firestore adapter with a fault at its boundary: the commit that marks an outbound record
    sent (with its ticket's references and its ticket.reply_sent event) dies before Firestore has it."""

    def commit_sent(self, key, decide):
        raise SimulatedCrash("died after Gmail accepted the message, before the record update")


def reply_sent_events(services) -> list[dict]:
    return [e for d in services.store.event_documents() for e in d["events"] if e["type"] == "ticket.reply_sent"]


def crashing_services(services):
    return bootstrap(Settings.from_env(), store=CrashAfterSendStore(services.store.db))


def test_crash_after_send_before_the_record_does_not_send_twice_on_retry(services, fake):
    ticket, _ = new_ticket(services, fake)
    with pytest.raises(SimulatedCrash):
        outgoing.send_reply(crashing_services(services), ticket["id"], "Exactly once", idempotency_key="crash-1")
    assert len(sent(fake)) == 1
    assert services.store.outbound_ref("crash-1").get().get("status") == "sending"

    result = outgoing.send_reply(services, ticket["id"], "Exactly once", idempotency_key="crash-1")

    assert result["status"] == "sent"
    [row] = sent(fake)
    assert result["gmail_message_id"] == row["id"]
    assert send_calls(fake) == 1
    [event] = reply_sent_events(services)  # the send recorded from Gmail: one event, with Gmail's id
    assert (event["id"], event["data"]["outbound"]["gmail_message_id"]) == ("crash-1~sent", row["id"])


def test_crash_after_send_is_recorded_by_the_next_send_task_once_the_lease_expires(services, fake):
    ticket, _ = new_ticket(services, fake)
    with pytest.raises(SimulatedCrash):
        outgoing.send_reply(crashing_services(services), ticket["id"], "Exactly once", idempotency_key="crash-2")
    outbox.handle_send_task(services, "help")  # the send lease is still held: nothing happens
    assert services.store.outbound_ref("crash-2").get().get("status") == "sending"
    services.store.outbound_ref("crash-2").update({"lease_until": 0})

    outbox.handle_send_task(services, "help")

    record = services.store.outbound_ref("crash-2").get().to_dict()
    assert record["status"] == "sent" and record["gmail_message_id"] == sent(fake)[0]["id"]
    assert send_calls(fake) == 1


def test_a_failed_send_is_recorded_and_retried_by_the_outbox_after_its_backoff(services, fake):
    ticket, _ = new_ticket(services, fake)
    requests.post(f"{fake.url}/_fake/faults", json={"error_rate": 1.0, "statuses": [500], "seed": 1, "methods": ["messages.send"]},
                  timeout=10).raise_for_status()
    try:
        result = outgoing.send_reply(services, ticket["id"], "Try again later", idempotency_key="flaky")
    finally:
        requests.post(f"{fake.url}/_fake/faults", json={"error_rate": 0}, timeout=10).raise_for_status()
    assert result["status"] == "failed" and "500" in result["error"]
    view = tickets.show(services, ticket["id"])
    assert view["messages"][-1]["direction"] == "out" and view["messages"][-1]["status"] == "failed"
    assert sent(fake) == []

    outbox.handle_send_task(services, "help")  # backoff not over yet
    assert sent(fake) == []
    services.store.outbound_ref("flaky").update({"next_attempt_at": 0})
    outbox.handle_send_task(services, "help")

    record = services.store.outbound_ref("flaky").get().to_dict()
    assert record["status"] == "sent" and record["attempts"] == 2
    assert len(sent(fake)) == 1


def test_concurrent_sender_holding_the_lease_is_not_doubled(services, fake):
    ticket, _ = new_ticket(services, fake)
    draft = outgoing.compose(services, ticket, "Hello")
    assert records.create(services, "held", draft)
    assert delivery.claim(services, "held")[0] == "claimed"  # another process is sending right now
    with pytest.raises(Conflict, match="being sent"):
        outgoing.send_reply(services, ticket["id"], "Hello", idempotency_key="held")
    assert sent(fake) == []


# -- CLI --------------------------------------------------------------------------------------------


def cli_json(out: str):
    """The command's JSON document (structured log lines are single-line JSON on stdout too)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


def test_cli_reply_dry_run_and_overrides(services, fake, tmp_path, capsys):
    ticket, _ = new_ticket(services, fake)
    body = tmp_path / "reply.txt"
    body.write_text("Hello from the CLI\n")

    code, out, _err = run_cli(["reply", ticket["id"], "--body-file", str(body), "--dry-run", "--json"], capsys)
    assert code == 0
    preview = cli_json(out)
    assert preview["rule"] == "arrival_mailbox" and preview["to"] == [CUSTOMER]
    assert sent(fake) == []

    code, out, _err = run_cli(["reply", ticket["id"], "--body-file", str(body), "--dry-run"], capsys)
    assert code == 0 and "arrival_mailbox" in out and "In-Reply-To:" in out

    assert run_cli(["overrides", "set", "team", "Billing", "help"], capsys)[0] == 0
    code, out, _err = run_cli(["overrides", "list", "--json"], capsys)
    assert cli_json(out)[0]["mailbox"] == "help"
    code, _out, err = run_cli(["overrides", "set", "planet", "x", "help"], capsys)
    assert code == 2 and err.count("\n") == 1 and "scope" in err
    assert run_cli(["overrides", "remove", "team", "billing"], capsys)[0] == 0

    code, out, _err = run_cli(["reply", ticket["id"], "--body-file", str(body), "--json"], capsys)
    assert code == 0 and cli_json(out)["status"] == "sent"
    assert len(sent(fake)) == 1


# -- send_as is checked against Gmail's sendAs list when it is saved ------------------------------
@pytest.mark.parametrize("alias, status, refusal", [("sales@acme.example", "pending", "not verified"),
                                                    ("other@acme.example", None, "not a \"Send mail as\" address")])
def test_send_as_that_gmail_would_rewrite_is_refused_with_the_reason(services, fake, alias, status, refusal):
    if status:
        fake.post(f"/_fake/users/{ADDRESS}/send-as", json={"sendAsEmail": alias, "verificationStatus": status})
    with pytest.raises(InvalidInput, match=refusal):
        mailboxes.set_mailbox_setting(services, "help", "outgoing.send_as", alias)
    assert not services.store.get_mailbox("help")["outgoing"].get("send_as")


def test_verified_send_as_is_saved_and_replies_go_out_from_it(services, fake):
    fake.post(f"/_fake/users/{ADDRESS}/send-as", json={"sendAsEmail": "sales@acme.example"})
    mailboxes.set_mailbox_setting(services, "help", "outgoing.send_as", "Sales@acme.example")
    ticket, _ = new_ticket(services, fake)
    outgoing.send_reply(services, ticket["id"], "Hello", idempotency_key="alias")
    [row] = sent(fake)
    assert row["message"]["From"].addresses[0].addr_spec == "sales@acme.example"


# -- Gmail as it really is (tests/fakes/README.md, "Strict Gmail behaviours") -------------------------
@pytest.mark.parametrize("status", [400, 404])
def test_a_deleted_gmail_thread_is_retried_once_without_it_and_the_new_thread_recorded(services, fake, status):
    fake.post("/_fake/behaviour", json={"deleted_thread_status": status})
    ticket, delivered = new_ticket(services, fake)
    fake.post(f"/_fake/users/{ADDRESS}/threads/{delivered['threadId']}/delete")

    result = outgoing.send_reply(services, ticket["id"], "Still here", idempotency_key="gone")

    assert result["status"] == "sent"
    [row] = sent(fake)
    assert result["thread_id"] == row["threadId"] != delivered["threadId"]
    record = services.store.outbound_ref("gone").get().to_dict()
    assert record["requested_thread_id"] == delivered["threadId"]
    assert send_calls(fake) == 2  # the refused one and the one without threadId
    time.sleep(1.1)
    deliver(fake.url, ADDRESS, make_mail(CUSTOMER, ADDRESS, row["message"]["Subject"], "ok",
                                         In_Reply_To=row["message"]["Message-ID"]))
    assert ingest.poll(services, "help")["totals"]["updated"] == 1


def test_a_reply_over_the_simple_request_limit_goes_through_the_upload_route(services, fake):
    ticket, delivered = new_ticket(services, fake)
    big = bytes(range(256)) * (24 * 1024)  # 6 MiB: the JSON body would be refused with 413

    result = outgoing.send_reply(services, ticket["id"], "The log", attachments=[("log.bin", "application/octet-stream", big)],
                                 idempotency_key="big")

    assert result["status"] == "sent"
    [row] = sent(fake)
    [attachment] = row["message"].iter_attachments()
    assert attachment.get_content() == big
    assert row["threadId"] == delivered["threadId"]


def test_when_gmail_replaces_the_message_id_both_ids_thread_and_a_crash_still_sends_once(services, fake):
    fake.post("/_fake/behaviour", json={"replace_message_id": True})
    ticket, _ = new_ticket(services, fake)
    with pytest.raises(SimulatedCrash):
        outgoing.send_reply(crashing_services(services), ticket["id"], "Exactly once", idempotency_key="swap")

    result = outgoing.send_reply(services, ticket["id"], "Exactly once", idempotency_key="swap")

    [row] = sent(fake)
    assert send_calls(fake) == 1 and result["gmail_message_id"] == row["id"]
    assert result["sent_message_id"] == row["message"]["Message-ID"] != result["message_id"]
    for n, answered in enumerate([result["sent_message_id"], result["message_id"]]):
        time.sleep(1.1)
        deliver(fake.url, ADDRESS, make_mail(CUSTOMER, ADDRESS, "Re: Printer jammed", f"answer {n}",
                                             In_Reply_To=answered, References=answered))
        assert ingest.poll(services, "help")["totals"]["updated"] == 1
    assert len(services.store.list_tickets()) == 1
