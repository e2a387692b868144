"""Issue 28, items 1 and 6: whatever subject or display name mail carries, the message we send
reads back (stdlib email, policy.default) with exactly the header names, recipients and decoded
values we intended, and what we checked is what the recipient reads.

The whole outgoing path of a subject: inbound bytes → parse_message (decoded to a fixed point,
cleaned) → the stored subject → the bait filter (rules.repeatable_subject) and the subject
policy (compose.reply_subject / thread_reply_subject) → compose.build_mime, which parses its own
output back (compose.check_rendered). Mail is written as bytes by hand: the email package would
hit the flaw under test (CVE-2024-6923) while building it.
"""

from __future__ import annotations

import base64
import email
import quopri
from email import policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain import compose, rules
from mailbridge.domain.parsing import parse_message
from mailbridge.errors import HeaderMismatch, InvalidInput

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG = "[#{number}]"
US = "help@acme.example"
REQUESTER = "dana@customer.example"
MIME = {"mime-version", "content-type", "content-transfer-encoding"}

# What an attacker puts in a header: line breaks of every kind, header-like text, encoded-word
# delimiters, quotes and escapes, controls, bidi and zero-width characters, and plain letters.
PIECES = ["\r\n", "\r", "\n", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\t", " ",
          "Bcc: x@evil.example", "Cc:", "To: y@evil.example", "=?", "?=", "?q?", "?b?", "=?utf-8?q?",
          "=0D=0A", "_", '"', "\\", "(", ")", "<", ">", ",", ";", ":", "@", "\u202e", "\u200b", "é", "日本",
          "😀", "https://evil.example/x", "Printer"]
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=12).map("".join)


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() + "?="


def q_word(text: str) -> str:
    body = quopri.encodestring(text.encode("utf-8", "surrogatepass"), header=True).decode().replace("=\n", "")
    return "=?utf-8?q?" + body.replace("?", "=3F").replace(" ", "_").replace("\n", "=0A").replace("\r", "=0D") + "?="


@st.composite
def header_values(draw) -> str:
    """A header value as it arrives: plain text, or encoded up to three times (b or q)."""
    value = draw(TEXT)
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.sampled_from([b_word, q_word]))(value)
    return value


def inbound(subject: str, display_name: str) -> bytes:
    header_safe = [v.replace("\r", " ").replace("\n", " ") for v in (subject, display_name)]
    return (f'From: "{header_safe[1]}" <{REQUESTER}>\r\nTo: {US}\r\nSubject: {header_safe[0]}\r\n'
            "Date: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <m1@customer.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n").encode("utf-8", "surrogatepass")


def outgoing(subject: str, from_name: str = "Acme Support", cc=()) -> compose.Outgoing:
    return compose.Outgoing(US, from_name, [REQUESTER], list(cc), subject, "text", message_id="<o1@acme.example>",
                            in_reply_to="<m1@customer.example>", references=["<m1@customer.example>"],
                            extra_headers=compose.auto_headers("acme@mailbridge"))


def read_back(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def assert_reads_back_as_intended(out: compose.Outgoing) -> None:
    message = read_back(compose.build_mime(out))
    names = [name.lower() for name in message.keys()]
    intended = [name.lower() for name in out.headers()] + ["date"]
    assert sorted(n for n in names if n not in MIME) == sorted(intended)
    assert "bcc" not in names
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [("", a) for a in out.to]
    # the final form, as every header text; the email package reads the fold between two encoded
    # words of a display name as a space (RFC 2047 drops it): runs of white space count as one
    assert [(one_line(a.display_name), a.addr_spec) for a in message["From"].addresses] == [
        (compose.clean_header_text(out.from_name), out.from_email)]
    assert one_line(message["Subject"]) == one_line(out.subject)


def one_line(value) -> str:
    return " ".join(str(value).split())


@SETTINGS
@given(subject=header_values(), display_name=header_values())
def test_any_subject_from_mail_is_sent_exactly_as_checked(subject, display_name):
    parsed = parse_message(inbound(subject, display_name))
    stored = parsed.subject
    assert compose.clean_header_text(stored) == " ".join(stored.split())  # final: nothing left to decode

    for final in (compose.reply_subject(stored, 7, TAG), compose.thread_reply_subject(stored, stored, 7, TAG),
                  compose.reply_subject(rules.repeatable_subject(stored), 7, TAG)):
        assert_reads_back_as_intended(outgoing(final))


@SETTINGS
@given(subject=header_values())
def test_the_bait_filter_sees_the_text_the_recipient_reads(subject):
    stored = parse_message(inbound(subject, "Dana")).subject
    repeated = rules.repeatable_subject(stored)
    if repeated == rules.NEUTRAL_SUBJECT:
        return
    message = read_back(compose.build_mime(outgoing(compose.reply_subject(repeated, 7, TAG))))
    assert str(message["Subject"]) == f"Re: [#7] {repeated}"
    assert rules.repeatable_subject(str(message["Subject"])[len("Re: [#7] "):]) == repeated


@SETTINGS
@given(from_name=TEXT.filter(lambda name: not any(c in compose.LINE_SEPARATORS for c in name)))
def test_any_display_name_we_accept_is_written_exactly(from_name):
    assert_reads_back_as_intended(outgoing("Re: [#7] Printer", from_name=from_name, cc=["boss@customer.example"]))


def test_a_subject_holding_an_encoded_word_is_written_as_that_text_not_decoded():
    """compose folds the Subject itself (compose.fold_text): the email package never sees an
    encoded word to decode there, so on 3.11.7 too the recipient reads the text we were given."""
    subject = "Re: " + b_word("Printer\r\nBcc: x@evil.example")
    message = read_back(compose.build_mime(outgoing(subject)))

    assert "Bcc" not in message and str(message["Subject"]) == subject


def test_a_german_subject_keeps_its_spaces():
    """The email package's own folding reads this back as "fürMärz" on 3.11.7."""
    assert_reads_back_as_intended(outgoing(
        "Re: [#7] Grüße aus München, Rechnung für März und April bitte prüfen und zurückschicken danke"))


def test_an_encoded_word_in_a_message_id_cannot_add_a_header():
    """In-Reply-To and References are written by the email package, which decodes an encoded word
    even inside a message id while folding (3.11.7: a real Bcc). Such an id, whatever mail said,
    is left out of the chain; one that reaches build_mime anyway is refused, never sent."""
    hostile = "<a" + b_word("\r\nBcc: x@evil.example\r\n") + "@evil.example>"
    in_reply_to, references = compose.reference_chain([{"message_id": "<m0@customer.example>"},
                                                       {"message_id": hostile, "references": ["<m0@customer.example>"]}])
    assert (in_reply_to, references) == (None, ["<m0@customer.example>"])

    out = outgoing("Re: [#7] Printer")
    out.in_reply_to = hostile
    with pytest.raises(HeaderMismatch, match="the message was not sent"):
        compose.build_mime(out)


def test_a_header_injected_while_rendering_is_refused():
    out = outgoing("Re: [#7] Printer")
    raw = compose.build_mime(out)
    injected = raw.replace(b"\r\nMessage-ID:", b"\r\nBcc: x@evil.example\r\nMessage-ID:", 1)
    with pytest.raises(HeaderMismatch, match=r"unexpected \['bcc'\]"):
        compose.check_rendered(injected, out)


@pytest.mark.parametrize("change, reason", [
    ((b"\r\nTo: dana@customer.example", b"\r\nTo: dana@customer.example, x@evil.example"), "To recipients differ"),
    ((b"\r\nTo: dana@customer.example", b"\r\nTo: Evil <dana@customer.example>"), "To recipients differ"),
    ((b"Subject: Re: [#7] Printer", b"Subject: Re: [#7] Printer jammed"), "Subject reads back differently"),
    ((b"From: Acme Support <help@acme.example>", b"From: Acme <help@acme.example>"), "From differs"),
    ((b"\r\nMessage-ID:", b"\r\n\r\nMessage-ID:"), "missing"),
    ((b"\r\nX-Loop:", b"\r\nX-Loop: a\r\nX-Loop:"), "unexpected \\['x-loop'\\]"),
])
def test_a_message_that_reads_back_otherwise_than_built_is_refused(change, reason):
    out = outgoing("Re: [#7] Printer")
    raw = compose.build_mime(out)
    assert change[0] in raw
    with pytest.raises(HeaderMismatch, match=reason):
        compose.check_rendered(raw.replace(change[0], change[1], 1), out)


def test_the_refusal_is_bad_input_for_the_caller():
    assert issubclass(HeaderMismatch, InvalidInput)
