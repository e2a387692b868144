"""Issue 17, hostile senders: each attack tried as an attacker would, and what now refuses it
(docs/reliability.md, "Hostile senders"). Most run on the in-memory ports (tests/memory): the
delivery there, like the fake Google server's, puts Google's Authentication-Results on top
(`authentication="pass"|"fail"|"none"`)."""

from __future__ import annotations

import base64
import json

import pytest

from mailbridge.services import sync
from mailbridge.services import tickets as ticket_service
from tests.helpers import make_mail, post_link
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
    """The inbound rows as stored (inbound_log reads only the log's fields, as Firestore does)."""
    return sorted(services.store.collection("inbound").values(), key=lambda r: r["gmail_message_id"])


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


# ---- issue 28, 3. Authentication-Results read as RFC 8601 writes it ----------------------------
# What Google's MX would write for a spoofed From: dmarc=fail, with the envelope sender's quoted
# local part (the attacker's) holding a fake result ahead of it.
SMUGGLED_PASS = ('mx.google.com; spf=pass (google.com: domain of x@evil.example designates 192.0.2.9 as permitted '
                 'sender) smtp.mailfrom="x; dmarc=pass header.from=customer.example"@evil.example; '
                 "dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=customer.example")


def deliver_with_results(accounts, raw: bytes, results: str) -> None:
    """Delivered with `results` as the topmost Authentication-Results, as Google's MX puts its own."""
    accounts.deliver(ADDRESS, f"Authentication-Results: {results}\r\n".encode() + raw, authentication="none")


def test_a_dmarc_pass_smuggled_in_a_quoted_local_part_adds_no_participant(world):
    services, accounts, ticket = world
    deliver_with_results(accounts, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] Invoice question",
                                             "add my colleague", Cc="spy@evil.test"), SMUGGLED_PASS)
    sync.poll(services, "help")

    updated = only_ticket(services)
    verdict = inbound_rows(services)[-1]["authentication"]
    assert (verdict["dmarc"], verdict["verdict"]) == ("fail", "fail")
    assert "spy@evil.test" not in updated["participants"]
    assert [s["email"] for s in updated["suggested_participants"]] == ["spy@evil.test"]


def test_the_same_mail_with_googles_pass_still_adds_its_cc(world):
    services, accounts, ticket = world
    honest = SMUGGLED_PASS.replace("dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE)", "dmarc=pass (p=REJECT)")
    deliver_with_results(accounts, make_mail(DANA, ADDRESS, f"Re: [#{ticket['number']}] Invoice question",
                                             "add my colleague", Cc="boss@customer.example"), honest)
    sync.poll(services, "help")

    assert "boss@customer.example" in only_ticket(services)["participants"]


# ---- 7. push and poll check the caller's Google-signed OIDC token ---------------------------------
INVOKER = "scheduler@mailbridge-test.iam.gserviceaccount.com"
FUNCTIONS = "https://functions.example"


@pytest.fixture
def invoker_env(fake, monkeypatch):
    """poll/push with the invoker check on, Google's certificates served by the fake."""
    from mailbridge import bootstrap

    for key, value in {"GOOGLE_CLOUD_PROJECT": "mailbridge-test", "MAILBRIDGE_VERIFY_INVOKER": "true",
                       "MAILBRIDGE_INVOKER_SERVICE_ACCOUNT": INVOKER, "MAILBRIDGE_FUNCTIONS_URL": "",
                       "MAILBRIDGE_FUNCTION_URLS": f'{{"poll": "{FUNCTIONS}/poll", "push": "{FUNCTIONS}/push"}}',
                       "MAILBRIDGE_OAUTH_CERTS_URL": fake.url + "/oauth2/v1/certs"}.items():
        monkeypatch.setenv(key, value)
    bootstrap.reset()
    yield fake
    bootstrap.reset()


def oidc_token(fake, account=INVOKER, audience=f"{FUNCTIONS}/push") -> str:
    return fake.post("/_fake/oidc/token", {"service_account": account, "audience": audience})["token"]


def call_push(token: str | None, body=b"{}"):
    import flask

    from mailbridge.http import push

    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with flask.Flask(__name__).test_request_context("/", method="POST", data=body, headers=headers):
        answer, status, _headers = push.handle(flask.request)
    return status, json.loads(answer)


def test_push_accepts_the_invoker_token_for_its_own_url(invoker_env):
    status, body = call_push(oidc_token(invoker_env))
    assert (status, body["status"]) == (200, "acknowledged")  # reached the handler: malformed envelope


def test_push_without_a_token_is_401_with_a_reason(invoker_env):
    status, body = call_push(None)
    assert (status, body["error"]) == (401, "missing bearer token: callers need a Google-signed OIDC token")


def test_push_refuses_a_token_for_another_audience(invoker_env):
    status, body = call_push(oidc_token(invoker_env, audience=f"{FUNCTIONS}/poll"))
    assert (status, body["error"]) == (401, "token refused: wrong audience")


def test_push_refuses_another_service_account_with_403(invoker_env):
    status, body = call_push(oidc_token(invoker_env, account="intruder@other.iam.gserviceaccount.com"))
    assert status == 403
    assert "is not the invoker service account" in body["error"]


def test_push_refuses_an_expired_token(invoker_env, monkeypatch):
    import datetime

    import google.auth._helpers

    token = oidc_token(invoker_env)
    later = google.auth._helpers.utcnow() + datetime.timedelta(hours=2)
    monkeypatch.setattr(google.auth._helpers, "utcnow", lambda: later)  # the clock, at the library's boundary
    assert call_push(token) == (401, {"error": "token refused: token expired"})


def test_push_refuses_an_unsigned_token(invoker_env):
    header, payload, _signature = oidc_token(invoker_env).split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode() + f".{payload}."
    status, body = call_push(unsigned)
    assert status == 401
    assert body["error"].startswith("token refused")


def test_push_refuses_a_token_signed_with_anyone_elses_key(invoker_env):
    import time

    from tests.fakes.oauth import SigningKey  # another key, as anyone could make one

    now = int(time.time())
    forged = SigningKey().sign({"iss": "https://evil.example", "aud": f"{FUNCTIONS}/push", "email": INVOKER,
                                "email_verified": True, "iat": now, "exp": now + 600})
    status, body = call_push(forged)
    assert status == 401
    assert body["error"].startswith("token refused")


def test_poll_refuses_a_call_without_a_token(invoker_env):
    import flask

    from mailbridge.http import poll

    with flask.Flask(__name__).test_request_context("/", method="POST", json={}):
        answer, status, _headers = poll.poll(flask.request)
    assert (status, json.loads(answer)["error"]) == (401, "missing bearer token: callers need a Google-signed OIDC token")


# ---- 1 (rules part). Admin /regex/ ignore rules run on RE2 ----------------------------------------
def test_a_regex_rule_runs_on_re2_not_on_backtracking_re():
    from mailbridge.domain import rules

    compiled = rules._compile_subject_pattern("/(a+)+$/")
    assert type(compiled).__module__.startswith("re2")
    assert rules.subject_matches("/(a+)+$/", "a" * 5000 + "!") is False  # exponential on Python's re


def test_a_regex_rule_re2_cannot_run_is_refused_when_saved(world):
    from mailbridge.errors import InvalidInput
    from mailbridge.services import mailboxes

    services, _accounts, _ticket = world
    with pytest.raises(InvalidInput, match="rules run on RE2"):
        mailboxes.set_mailbox_setting(services, "help", "incoming.ignore_subjects", r"/(spam)\1/")


def test_a_regex_rule_is_still_case_insensitive():
    from mailbridge.domain import rules

    assert rules.subject_matches("/^newsletter \\d+/", "NEWSLETTER 42: offers")


# ---- 2 (pages). The reply form names every recipient; an agent confirms suggestions there ----------
@pytest.fixture
def served_ticket(mb_env, fake, firestore, storage_emulator, functions_url):
    """A ticket on the served stack with a participant added by an authenticated Cc and a stranger's
    Cc waiting as a suggestion."""
    import requests as http

    from mailbridge.services import mailboxes
    from tests.helpers import connect_mailbox, deliver, make_services

    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "false")
    sync.poll(services, "help", scheduled=False)
    deliver(fake.url, ADDRESS, make_mail(DANA, ADDRESS, "Invoice question", message_id="<q1@customer.example>"))
    sync.poll(services, "help", scheduled=False)
    deliver(fake.url, ADDRESS, make_mail(DANA, ADDRESS, "Re: Invoice question", "cc my boss",
                                         In_Reply_To="<q1@customer.example>", Cc="boss@customer.example"))
    deliver(fake.url, ADDRESS, make_mail("mallory@evil.test", ADDRESS, "Re: Invoice question", "me too",
                                         In_Reply_To="<q1@customer.example>"), authentication="fail")
    sync.poll(services, "help", scheduled=False)
    session = http.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303  # the link's confirmation POST
    return services, session, f"{functions_url}/admin/tickets/{only_ticket(services)['id']}"


def test_the_reply_form_names_every_recipient(served_ticket):
    _services, session, page = served_ticket
    html = session.get(page, timeout=30).text
    assert f"Your reply to {DANA}, cc boss@customer.example</label>" in html


def test_an_agent_confirms_a_suggested_participant_on_the_ticket_page(served_ticket):
    import re

    services, session, page = served_ticket
    html = session.get(page, timeout=30).text
    assert "Confirm mallory@evil.test" in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    response = session.post(page + "/participants", data={"csrf": csrf, "email": "mallory@evil.test"},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert only_ticket(services)["participants"] == [DANA, "boss@customer.example", "mallory@evil.test"]


# ---- 3. make us send their mail ------------------------------------------------------------------
@pytest.fixture
def acking():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": True})
    return services, accounts


def sent_messages(services, accounts):
    """What Gmail sent, once the outbox's queued "send" tasks have run (docs/outbox.md)."""
    import email
    from email import policy

    services.queue.deliver(services, kinds=("send",))
    return [email.message_from_bytes(m["raw"], policy=policy.default) for m in accounts.account(ADDRESS)["sent"]]


def test_a_spoofed_sender_gets_no_acknowledgement(acking):
    services, accounts = acking
    accounts.deliver(ADDRESS, make_mail("victim@bank.example", ADDRESS, "Hello"), authentication="fail")
    accounts.deliver(ADDRESS, make_mail("other@shop.example", ADDRESS, "Hello"), authentication="none")
    sync.poll(services, "help")

    assert len(services.store.list_tickets()) == 2
    assert sent_messages(services, accounts) == []


def test_an_authenticated_sender_is_acknowledged(acking):
    services, accounts = acking
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, "Printer jammed"))
    sync.poll(services, "help")

    (ack,) = sent_messages(services, accounts)
    assert (ack["To"], ack["Subject"]) == (DANA, "Re: Printer jammed")  # it joins the Gmail thread (README.md)


@pytest.mark.parametrize("subject", [
    "URGENT: your account is suspended, verify at https://evil.example/login",
    "Verify at evil.example/login now",
    "Call +1 (555) 010-9999 to keep your account",
    "Write to refunds@evil.example",
    "Invoice \u202egnp.exe",
])
def test_an_acknowledgement_never_repeats_bait_from_the_subject(acking, subject):
    services, accounts = acking
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, subject, message_id="<bait@customer.example>"))
    sync.poll(services, "help")

    (ack,) = sent_messages(services, accounts)
    assert ack["Subject"] == "Re: [#1] your message"
    assert "evil" not in ack.get_body(("plain",)).get_content()


def test_acknowledgements_per_sender_domain_are_limited(acking):
    services, accounts = acking
    services.store.update_mailbox("help", {"outgoing.acknowledgement_limit_per_domain_per_hour": 20})
    for n in range(25):
        accounts.deliver(ADDRESS, make_mail(f"throwaway{n}@spam.example", ADDRESS, f"Hello {n}"))
    sync.poll(services, "help")
    assert len(services.store.list_tickets()) == 25
    assert len(sent_messages(services, accounts)) == 20  # outgoing.acknowledgement_limit_per_domain_per_hour


# ---- 4. make a ticket unanswerable -----------------------------------------------------------------
SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def encoded_subject(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize("separator", SEPARATORS, ids=[hex(ord(s)) for s in SEPARATORS])
def test_a_line_separator_in_the_subject_leaves_the_ticket_answerable(acking, separator):
    from mailbridge.services import outgoing

    services, accounts = acking
    accounts.deliver(ADDRESS, make_mail(DANA, ADDRESS, encoded_subject(f"Help{separator}Bcc: x@evil.example")))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()

    queued = outgoing.send_reply(services, ticket["id"], "We are on it", wait=False)
    # the outbox sends the reply before the queued acknowledgement (docs/outbox.md)
    (reply,) = [m for m in sent_messages(services, accounts) if "We are on it" in m.get_body(("plain",)).get_content()]

    assert services.store.get_outbound(queued["idempotency_key"])["status"] == "sent"
    assert reply["Subject"].startswith("Re: ") and "Help" in reply["Subject"]  # the Gmail thread's subject (README.md)
    assert not any(c in reply["Subject"] for c in SEPARATORS)
    assert all(m["Bcc"] is None for m in sent_messages(services, accounts))  # the text stayed in one header


def test_an_error_while_building_a_message_is_invalid_input():
    from mailbridge.domain import compose
    from mailbridge.errors import InvalidInput

    out = compose.Outgoing("help@acme.example", "Acme\u2028Support", [DANA], [], "Re: x", "text", message_id="<a@b>")
    with pytest.raises(InvalidInput, match="display name contains a line break"):
        compose.build_mime(out)


def test_cli_reply_dry_run_names_every_recipient_and_survives_a_separator(world, monkeypatch):
    from click.testing import CliRunner

    from mailbridge import bootstrap
    from mailbridge.cli.app import cli

    services, accounts, ticket = world
    services.store.update_ticket(ticket["id"], {"subject": "Invoice\u2028question", "participants": [DANA, "boss@customer.example"]})
    monkeypatch.setattr(bootstrap, "_services", services)
    result = CliRunner().invoke(cli, ["reply", ticket["id"], "--body-file", "-", "--dry-run", "--json"], input="Hello")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {k: data[k] for k in ("mailbox", "from", "to", "cc", "subject")} == {
        "mailbox": "help", "from": ADDRESS, "to": [DANA], "cc": ["boss@customer.example"],
        "subject": "Re: Invoice question"}  # the reply joins the Gmail thread: its subject (README.md)


def test_the_admin_reply_to_a_ticket_with_a_separator_in_its_subject_is_not_a_500(served_ticket):
    import re

    services, session, page = served_ticket
    services.store.update_ticket(only_ticket(services)["id"], {"subject": "Invoice\u2028question"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', session.get(page, timeout=30).text).group(1)
    key = re.search(r'name="reply_key" value="([^"]+)"', session.get(page, timeout=30).text).group(1)
    response = session.post(page + "/reply", data={"csrf": csrf, "reply_key": key, "body": "On it"},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303


def test_cli_lists_participants_and_suggestions_as_json(world, monkeypatch):
    from click.testing import CliRunner

    from mailbridge import bootstrap
    from mailbridge.cli.app import cli

    services, accounts, ticket = world
    accounts.deliver(ADDRESS, make_mail("mallory@evil.test", ADDRESS, "Re: Invoice question", "x",
                                        In_Reply_To="<q1@customer.example>"))
    sync.poll(services, "help")
    monkeypatch.setattr(bootstrap, "_services", services)
    result = CliRunner().invoke(cli, ["tickets", "participants", ticket["id"], "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["participants"], [s["email"] for s in data["suggested_participants"]]) == ([DANA], ["mallory@evil.test"])


def test_confirming_an_address_nobody_suggested_is_refused(world):
    from mailbridge.errors import InvalidInput

    services, _accounts, ticket = world
    with pytest.raises(InvalidInput, match="is not a suggested participant"):
        ticket_service.confirm_participant(services, ticket["id"], "spy@evil.test")


# ---- 8. short-lived documents ------------------------------------------------------------------------
def test_a_used_oauth_state_keeps_no_pkce_verifier(world):
    services, _accounts, _ticket = world
    services.store.put_oauth_state("s" * 40, {"mailbox": "help", "code_verifier": "v" * 50}, 600)
    services.store.consume_oauth_state("s" * 40)

    assert set(services.store.collection("oauth_states")["s" * 40]) == {"used", "expires_at"}
