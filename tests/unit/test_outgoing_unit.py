"""Outgoing mail, pure parts: mailbox resolution, recipients, subject, MIME, acknowledgement guards."""

import email
from email import policy

import pytest

from mailbridge.domain import compose, routing, rules
from mailbridge.errors import InvalidInput
from mailbridge.domain.parsing import parse_message

INSTANCE = "production"


def mailbox(name, status="connected", instance=INSTANCE, enabled=True):
    return {"name": name, "address": f"{name}@acme.example", "outgoing": {"enabled": enabled},
            "credentials": [{"instance": instance, "status": status}]}


def ticket(**fields):
    base = {"id": "7", "number": 7, "subject": "Printer jammed", "mailbox": "arrival",
            "requester": {"email": "dana@customer.example", "name": "Dana"}, "participants": ["dana@customer.example"],
            "ticket_type": "incident", "team": "Billing", "client": None, "thread_keys": []}
    base.update(fields)
    return base


ALL = {name: mailbox(name) for name in ("t", "tt", "team", "client", "arrival", "default")}
OVERRIDES = {("ticket", "7"): "t", ("ticket_type", "incident"): "tt", ("team", "billing"): "team",
             ("client", "customer.example"): "client"}


@pytest.mark.parametrize("removed, expected", [
    ((), "ticket_override"),
    (("ticket",), "ticket_type_override"),
    (("ticket", "ticket_type"), "team_override"),
    (("ticket", "ticket_type", "team"), "client_override"),
    (("ticket", "ticket_type", "team", "client"), "arrival_mailbox"),
])
def test_each_override_level_beats_the_levels_below(removed, expected):
    overrides = {k: v for k, v in OVERRIDES.items() if k[0] not in removed}
    result = routing.choose_mailbox(ticket(), overrides, ALL, "default", INSTANCE)
    assert result["rule"] == expected
    assert result["skipped"] == []
    assert expected in result["explanation"]


def test_default_mailbox_is_used_when_nothing_else_applies():
    result = routing.choose_mailbox(ticket(mailbox=None), {}, ALL, "default", INSTANCE)
    assert (result["mailbox"], result["rule"]) == ("default", "default_outgoing_mailbox")


def test_unusable_mailboxes_fall_through_and_say_why():
    mailboxes = dict(ALL, t=mailbox("t", status="disconnected"), tt=mailbox("tt", instance="uat"),
                     team=mailbox("team", enabled=False))
    result = routing.choose_mailbox(ticket(), OVERRIDES, mailboxes, "default", INSTANCE)
    assert result["rule"] == "client_override"
    reasons = {s["rule"]: s["reason"] for s in result["skipped"]}
    assert "disconnected" in reasons["ticket_override"]
    assert "no credential set for instance 'production'" in reasons["ticket_type_override"]
    assert "disabled" in reasons["team_override"]
    assert "skipped ticket_override" in result["explanation"]


def test_nothing_usable_raises_with_every_reason():
    mailboxes = {"arrival": mailbox("arrival", status="not_connected")}
    with pytest.raises(InvalidInput, match="arrival_mailbox.*not connected.*default_outgoing_mailbox.*does not exist"):
        routing.choose_mailbox(ticket(), {}, mailboxes, "gone", INSTANCE)
    with pytest.raises(InvalidInput, match="default_outgoing_mailbox is not set"):
        routing.choose_mailbox(ticket(mailbox=None), {}, {}, None, INSTANCE)


def test_client_is_the_ticket_client_first_then_the_requester_domain():
    overrides = {("client", "acme corp"): "t", ("client", "customer.example"): "client"}
    assert routing.choose_mailbox(ticket(client="ACME Corp"), overrides, ALL, None, INSTANCE)["mailbox"] == "t"
    assert routing.choose_mailbox(ticket(), overrides, ALL, None, INSTANCE)["mailbox"] == "client"


@pytest.mark.parametrize("scope, key", [("galaxy", "x"), ("team", ""), ("team", "a/b"), ("client", "x\ny")])
def test_bad_override_scope_or_key_is_refused(scope, key):
    with pytest.raises(InvalidInput):
        routing.normalize_override(scope, key)


def test_override_keys_normalize():
    assert routing.override_id("ticket", "#12") == "ticket~12"
    assert routing.override_id("client", "@Customer.Example") == "client~customer.example"


def test_reply_all_never_includes_our_own_addresses():
    t = ticket(participants=["dana@customer.example", "help@acme.example", "boss@customer.example"])
    to, cc = compose.recipients(t, {"help@acme.example"})
    assert to == ["dana@customer.example"] and cc == ["boss@customer.example"]


def test_more_than_100_recipients_is_refused():
    t = ticket(participants=[f"p{i}@customer.example" for i in range(101)])
    with pytest.raises(InvalidInput, match="at most 100"):
        compose.recipients(t, set())


def test_subject_carries_the_tag_once():
    assert compose.reply_subject("Printer jammed", 7, "[#{number}]") == "Re: [#7] Printer jammed"
    assert compose.reply_subject("Re: [#7] Printer jammed", 7, "[#{number}]").count("[#7]") == 1


def test_reference_chain_uses_the_last_message_and_trims():
    messages = [{"message_id": f"<m{i}@x>", "references": [f"<m{j}@x>" for j in range(i)]} for i in range(30)]
    in_reply_to, refs = compose.reference_chain(messages)
    assert in_reply_to == "<m29@x>"
    assert refs[0] == "<m0@x>" and refs[-1] == "<m29@x>" and len(refs) == compose.MAX_REFERENCES


def make_outgoing(**changes):
    base = dict(from_email="help@acme.example", from_name="Acme Help", to=["dana@customer.example"],
                cc=["boss@customer.example"], subject="Re: [#7] Printer jammed", text="Hello Dana",
                html="<p>Hello <b>Dana</b></p>", in_reply_to="<m1@customer.example>",
                references=["<m0@customer.example>", "<m1@customer.example>"],
                message_id="<abc@mailbridge.acme.example>",
                attachments=[("log.txt", "text/plain", b"line 1\n")])
    base.update(changes)
    return compose.Outgoing(**base)


def test_mime_has_threading_headers_alternatives_and_attachment():
    raw = compose.build_mime(make_outgoing())
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["From"] == "Acme Help <help@acme.example>"
    assert message["Cc"] == "boss@customer.example"
    assert message["In-Reply-To"] == "<m1@customer.example>"
    assert message["References"] == "<m0@customer.example> <m1@customer.example>"
    assert message["Message-ID"] == "<abc@mailbridge.acme.example>"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Dana"
    assert "<b>Dana</b>" in message.get_body(("html",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "log.txt" and attachment.get_content() == "line 1\n"
    parsed = parse_message(raw)
    assert parsed.message_id == "<abc@mailbridge.acme.example>"


@pytest.mark.parametrize("changes", [
    {"subject": "Hi\r\nBcc: victim@evil.example"},
    {"from_name": "Acme\nBcc: x@evil.example"},
    {"to": ["dana@customer.example\r\nBcc: x@evil.example"]},
    {"attachments": [("a\r\nX-Evil: 1.txt", "text/plain", b"x")]},
    {"extra_headers": [("X-Loop", "a\nb")]},
])
def test_header_injection_is_refused(changes):
    with pytest.raises(InvalidInput):
        compose.build_mime(make_outgoing(**changes))


def test_oversized_message_is_refused():
    big = b"x" * (compose.MAX_MESSAGE_BYTES + 1)
    with pytest.raises(InvalidInput, match="limit"):
        compose.build_mime(make_outgoing(attachments=[("big.bin", "application/octet-stream", big)]))


def test_acknowledgement_template_and_a_broken_template_falls_back():
    assert compose.acknowledgement_text("Ticket {tag} ({number}): {subject}", "[#7]", 7, "Printer") == \
        "Ticket [#7] (7): Printer"
    assert compose.acknowledgement_text("{unknown} {tag}", "[#7]", 7, "x") == "{unknown} [#7]"
    assert "[#7]" in compose.acknowledgement_text("broken {", "[#7]", 7, "x")


def parsed_mail(sender="dana@customer.example", **headers):
    lines = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return parse_message((f"From: {sender}\r\nTo: help@acme.example\r\nSubject: x\r\n"
                          f"Message-ID: <q@customer.example>\r\n{lines}\r\nbody\r\n").encode())


@pytest.mark.parametrize("headers, sender, expected", [
    ({}, "dana@customer.example", None),
    ({"Auto_Submitted": "auto-replied"}, "dana@customer.example", "automatic"),
    ({"Precedence": "bulk"}, "dana@customer.example", "automatic"),
    ({"X_Loop": "mailbridge@mailbridge"}, "dana@customer.example", "not accepted"),
    ({}, "mailer-daemon@mx.example", "not accepted"),
    ({}, "noreply@shop.example", "no-reply"),
    ({}, "help@acme.example", "not accepted"),
    ({}, "x@spam.example", "not accepted"),
    ({"List_Id": "<team.customer.example>"}, "dana@customer.example", "mailing-list"),
    ({"X_Auto_Response_Suppress": "OOF"}, "dana@customer.example", "no automatic replies"),
])
def test_acknowledgement_follows_the_one_auto_mail_policy(headers, sender, expected):
    """classify() and the acknowledgement share one policy: what classify ignores or marks
    automatic is never acknowledged; list mail and no-reply senders are not either."""
    parsed = parsed_mail(sender, **headers)
    verdict = rules.classify(parsed, own_addresses={"help@acme.example"}, loop_marker="mailbridge@mailbridge",
                             ignore_senders=["@spam.example"])
    reason = rules.acknowledgement_refusal(parsed, verdict, sender)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason


def test_auto_headers_mark_our_mail_as_automatic():
    headers = dict(compose.auto_headers("mailbridge@mailbridge"))
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["X-Auto-Response-Suppress"] == "All"
    assert "mailbridge@mailbridge" in headers["X-Loop"]


def test_backoff_grows_and_caps():
    assert [compose.backoff_seconds(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert compose.backoff_seconds(20) == 3600
