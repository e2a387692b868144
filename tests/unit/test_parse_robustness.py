"""parse_message never raises and stays bounded on hostile or random input."""

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain.parsing import MAX_PARTS, MAX_RECIPIENTS, ParsedMessage, parse_message
from tests.corpus import build_corpus

CORPUS = build_corpus()
CORPUS_NAMES = sorted(CORPUS)
# Generous: the real times are well under a second; this catches quadratic blow-ups.
BOUND_SECONDS = 5.0


def headers(extra=b""):
    return b"From: a@b.example\r\nTo: x@y.example\r\nSubject: s\r\nMessage-ID: <h@x>\r\n" + extra


def timed_parse(raw):
    start = time.perf_counter()
    message = parse_message(raw)
    return message, time.perf_counter() - start


def check_shape(message):
    assert isinstance(message, ParsedMessage)
    assert message.message_id.startswith("<") and message.message_id.endswith(">")
    assert isinstance(message.text, str) and isinstance(message.subject, str)
    message.text.encode("utf-8")  # no lone surrogates anywhere a store would choke
    message.subject.encode("utf-8")
    for address in message.to + message.cc:
        address.email.encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    check_shape(parse_message(raw))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(CORPUS_NAMES),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    edits=st.integers(min_value=1, max_value=30),
)
def test_mutated_corpus_messages_never_raise(name, seed, edits):
    rng = random.Random(seed)
    raw = bytearray(CORPUS[name])
    for _ in range(edits):
        position = rng.randrange(len(raw))
        action = rng.randrange(4)
        if action == 0:
            raw[position] = rng.randrange(256)
        elif action == 1:
            del raw[position : position + rng.randrange(1, 40)]
        elif action == 2:
            raw[position:position] = rng.choice([b"=?", b"?=", b"\r\n", b"--", b"<", b";", b'"', b"\x00", b"\xff"])
        else:
            raw[position:position] = raw[max(0, position - 200) : position]
    check_shape(parse_message(bytes(raw)))


def test_non_bytes_input_does_not_raise():
    check_shape(parse_message("From: a@b.example\r\n\r\nbody"))
    check_shape(parse_message(bytearray(b"Subject: x\r\n\r\nbody")))


def test_ten_thousand_recipients_are_capped():
    cc = b", ".join(b'"User %d" <user%d@example.com>' % (i, i) for i in range(10_000))
    message, seconds = timed_parse(headers(b"Cc: " + cc + b"\r\n") + b"\r\nbody\r\n")

    assert len(message.cc) == MAX_RECIPIENTS
    assert any("more than 1000 Cc addresses" in d for d in message.defects)
    assert seconds < BOUND_SECONDS


def test_five_thousand_parts_are_capped():
    parts = b"".join(b"--b\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n" for _ in range(5000))
    raw = headers(b'Content-Type: multipart/mixed; boundary="b"\r\n') + b"\r\n" + parts + b"--b--\r\n"

    message, seconds = timed_parse(raw)

    assert len(message.attachments) <= MAX_PARTS
    assert any("more than 1000 MIME parts" in d for d in message.defects)
    assert seconds < BOUND_SECONDS


def test_megabyte_header_lines_are_cut():
    raw = headers(
        b"X-Long: " + b"a" * 1_000_000 + b"\r\n"
        + b"Content-Type: text/plain; " + b"a=b; " * 200_000 + b"\r\n"
    ) + b"\r\nbody\r\n"

    message, seconds = timed_parse(raw)

    assert message.text == "body"
    assert any("X-Long header longer than" in d for d in message.defects)
    assert any("Content-Type header longer than" in d for d in message.defects)
    assert seconds < BOUND_SECONDS


def test_megabyte_subject_of_encoded_words_is_cut():
    raw = headers(b"Subject: " + b"=?utf-8?q?x?= " * 80_000 + b"\r\n").replace(b"Subject: s\r\n", b"", 1)

    message, seconds = timed_parse(raw + b"\r\nbody\r\n")

    assert message.subject.startswith("xxx")
    assert len(message.subject) < 20_000
    assert seconds < BOUND_SECONDS


def deep(levels):
    head, tail = b"", b""
    for level in range(levels):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    return headers() + head + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + tail


def test_deep_nesting_is_bounded():
    message, seconds = timed_parse(deep(3000))

    assert any("nesting deeper than 20" in d for d in message.defects)
    assert seconds < BOUND_SECONDS


def test_ordinary_nesting_is_read_through():
    message = parse_message(deep(5))

    assert message.text == "deep"
    assert not any("nesting" in d for d in message.defects)


def test_hundred_thousand_header_fields_are_capped():
    raw = headers(b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))) + b"\r\nbody\r\n"

    message, seconds = timed_parse(raw)

    assert message.text == "body"
    assert sum(len(v) for v in message.headers.values()) <= 1000
    assert seconds < BOUND_SECONDS


def test_huge_references_keep_the_newest():
    references = b" ".join(b"<r%d@x>" % i for i in range(50_000))

    message, seconds = timed_parse(headers(b"References: " + references + b"\r\n") + b"\r\nbody\r\n")

    assert message.references[-1] == "<r49999@x>"
    assert len(message.references) == 200
    assert seconds < BOUND_SECONDS


def test_multipart_whose_declared_boundary_never_occurs_uses_the_bodys_delimiter():
    # bulk mailers that randomize the boundary twice: header and body disagree
    raw = headers(b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n\tboundary="--=_declared"\r\n\r\n'
                  b"----=_actual\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe real text\r\n"
                  b"----=_actual\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The real text</p>\r\n"
                  b"----=_other--\r\n")

    message = parse_message(raw)

    assert message.text == "The real text"
    assert message.attachments == []
    assert any("declared MIME boundary not found" in d for d in message.defects)


def test_utf8_text_with_one_broken_byte_stays_utf8():
    body = ("Здравствуйте! Не пересылайте данное письмо, т.к. в нем ссылки. " * 3).encode()
    broken = body.replace("т.к.".encode(), b"\xd1f.\xd0\xba.", 1)
    raw = headers(b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + broken)

    message = parse_message(raw)

    assert message.text.startswith("Здравствуйте! Не пересылайте")
    assert any("1 invalid UTF-8 sequence(s) replaced" in d for d in message.defects)


def test_latin1_text_is_not_taken_for_broken_utf8():
    raw = headers(b"Content-Type: text/plain\r\n\r\n" + "Grüße aus Köln, schöne Straße".encode("latin-1") * 20)

    assert parse_message(raw).text.startswith("Grüße aus Köln")
