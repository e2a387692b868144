"""Issue 28, item 1: header text from mail is decoded to a fixed point and cleaned once
(parsing.decode_words), so what is stored and checked is what any later decoding would give."""

from __future__ import annotations

import base64
from email import policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain.parsing import decode_words, parse_message
from mailbridge.domain.parsing.charsets import MAX_DECODE_ROUNDS
from mailbridge.domain.parsing.model import Defects


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() + "?="


def nested(text: str, times: int) -> str:
    for _ in range(times):
        text = b_word(text)
    return text


def message(subject: str, sender: str = "dana@customer.example", extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: help@acme.example\r\nSubject: {subject}\r\n{extra}"
            "Date: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <m1@customer.example>\r\n\r\nHi\r\n").encode()


def test_an_encoded_word_inside_an_encoded_word_is_decoded_and_its_line_break_removed():
    notes = Defects()
    assert decode_words(nested("Printer\r\nBcc: x@evil.example", 2), notes, "Subject") == "Printer Bcc: x@evil.example"
    assert notes == ["Subject: encoded more than once; decoded 2 times"]


def test_a_value_encoded_once_notes_nothing():
    notes = Defects()
    assert decode_words(b_word("Grüße aus München"), notes, "Subject") == "Grüße aus München"
    assert notes == []


def test_nesting_past_the_bound_stops_and_leaves_nothing_anyone_would_decode():
    notes = Defects()
    value = decode_words(nested("Bcc: x@evil.example", MAX_DECODE_ROUNDS + 2), notes, "Subject")

    assert "=?" not in value and decode_words(value, None) == value
    assert str(policy.default.header_factory("subject", value)) == value
    assert f"Subject: encoded more than {MAX_DECODE_ROUNDS} times; the rest was left encoded" in notes


def test_control_characters_that_would_form_an_encoded_word_are_removed_before_it_is_looked_for():
    # "=\x01?" becomes "=?" once the control character goes: that word is decoded too
    assert decode_words(b_word("=\x01?utf-8?q?Bcc=3A_x?="), None) == "Bcc: x"


def test_whitespace_between_two_encoded_words_is_dropped_and_raw_text_around_them_kept():
    assert decode_words(f"日本 {b_word('a')} {b_word('b')} \\u0041", None) == "日本 ab \\u0041"


def test_the_stored_subject_and_display_name_are_the_final_form_with_defects_noted():
    name = nested("Dana\r\nBcc: x@evil.example", 2)
    parsed = parse_message(message(nested("Invoice\u2028https://evil.example", 3), f'"{name}" <dana@customer.example>'))
    assert parsed.subject == "Invoice https://evil.example"
    assert parsed.from_.name == "Dana Bcc: x@evil.example"
    assert "Subject: encoded more than once; decoded 3 times" in parsed.defects
    assert "From: encoded more than once; decoded 2 times" in parsed.defects


def test_authentication_results_are_not_decoded_in_the_header_map():
    """RFC 8601 values are structured: an encoded smtp.mailfrom must not turn into results."""
    value = f"mx.google.com; spf=pass smtp.mailfrom={b_word('x; dmarc=pass')}@evil.example"
    parsed = parse_message(message("Hi", extra=f"Authentication-Results: {value}\r\n"))
    assert parsed.headers["authentication-results"] == [value]


# Text an attacker may put in an encoded word: line breaks, header-like text, encoded-word
# delimiters and controls among ordinary letters.
PIECES = st.sampled_from(["\r\n", "\x00", "\x01", "\x85", "\u2028", "=?", "?=", "?b?", "?q?", "=?utf-8?q?",
                          "=0D=0A", "_", "Bcc: x", " ", "é", "日"])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=10).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, times=st.integers(0, MAX_DECODE_ROUNDS + 2))
def test_the_final_form_is_a_fixed_point_for_us_and_for_the_email_package(text, times):
    value = decode_words(nested(text, times), None)

    assert decode_words(value, None) == value
    assert str(policy.default.header_factory("subject", value)) == value  # nothing left for it to decode
    assert not any(c in value for c in "\r\n\x00\x85\u2028\u2029")
