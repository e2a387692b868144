"""The subject policy of replies (README.md, "Replies and Gmail threads")."""

import base64
import email
from email import policy

from mailbridge.domain import compose

TAG = "[#{number}]"


def test_a_reply_joining_a_gmail_thread_takes_the_threads_subject():
    assert compose.thread_reply_subject("Printer jammed", "Printer jammed", 7, TAG) == "Re: Printer jammed"


def test_a_thread_subject_that_already_is_a_reply_is_not_prefixed_twice():
    assert compose.thread_reply_subject("RE: [#7] Printer jammed", "Printer jammed", 7, TAG) == "RE: [#7] Printer jammed"


def test_a_reply_starting_a_new_thread_carries_the_ticket_tag():
    assert compose.thread_reply_subject(None, "Printer jammed", 7, TAG) == "Re: [#7] Printer jammed"


def encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def test_a_thread_subject_stored_decoded_once_is_brought_to_its_final_form():
    """Issue 28: rows stored before the fixed-point decoding may still hold an encoded word."""
    stored = encoded("Printer\r\nBcc: x@evil.example")
    assert compose.thread_reply_subject(stored, stored, 7, TAG) == "Re: Printer Bcc: x@evil.example"
    assert compose.thread_reply_subject(None, stored, 7, TAG) == "Re: [#7] Printer Bcc: x@evil.example"


def test_the_subject_line_carries_the_text_checked_not_a_decoding_of_it():
    subject = compose.reply_subject("Grüße " + encoded(encoded("für März")), 7, TAG)
    raw = compose.build_mime(compose.Outgoing("help@acme.example", "Acme", ["dana@customer.example"], [], subject,
                                              "text", message_id="<o1@acme.example>"))
    message = email.message_from_bytes(raw, policy=policy.default)
    assert (subject, message["Subject"]) == ("Re: [#7] Grüße für März", "Re: [#7] Grüße für März")
