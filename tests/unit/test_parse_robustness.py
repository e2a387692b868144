"""parse_message never raises and stays bounded on hostile or random input."""

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain.parsing import MAX_PARTS, MAX_RECIPIENTS, ParsedMessage, parse_message
from tests.corpus import build_corpus

CORPUS = build_corpus()
CORPUS_NAMES = sorted(CORPUS)
# CPU of a hostile message over that of the same message at a quarter of its size: linear
# work gives about 4, a quadratic step 16. A ratio, never a time threshold.
GROWTH_BOUND = 10


def headers(extra=b""):
    return b"From: a@b.example\r\nTo: x@y.example\r\nSubject: s\r\nMessage-ID: <h@x>\r\n" + extra


def cpu_seconds(raw):
    best = None
    for _ in range(2):
        start = time.process_time()
        parse_message(raw)
        spent = time.process_time() - start
        best = spent if best is None else min(best, spent)
    return max(best, 0.002)


def growth(build, size):
    """CPU at `size` over CPU at a quarter of it (build(n) makes the message of scale n)."""
    return cpu_seconds(build(size)) / cpu_seconds(build(size // 4))


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


def recipients(count):
    cc = b", ".join(b'"User %d" <user%d@example.com>' % (i, i) for i in range(count))
    return headers(b"Cc: " + cc + b"\r\n") + b"\r\nbody\r\n"


def test_ten_thousand_recipients_are_capped():
    message = parse_message(recipients(10_000))

    assert len(message.cc) == MAX_RECIPIENTS
    assert any("more than 1000 Cc addresses" in d for d in message.defects)
    assert growth(recipients, 10_000) <= GROWTH_BOUND


def many_parts(count):
    parts = b"".join(b"--b\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n" for _ in range(count))
    return headers(b'Content-Type: multipart/mixed; boundary="b"\r\n') + b"\r\n" + parts + b"--b--\r\n"


def test_five_thousand_parts_are_capped():
    message = parse_message(many_parts(5000))

    assert len(message.attachments) <= MAX_PARTS
    assert any("more than 1000 MIME parts" in d for d in message.defects)
    assert growth(many_parts, 5000) <= GROWTH_BOUND


def long_header_lines(scale):
    return headers(
        b"X-Long: " + b"a" * (5 * scale) + b"\r\n"
        + b"Content-Type: text/plain; " + b"a=b; " * scale + b"\r\n"
    ) + b"\r\nbody\r\n"


def test_megabyte_header_lines_are_cut():
    message = parse_message(long_header_lines(200_000))

    assert message.text == "body"
    assert any("X-Long header longer than" in d for d in message.defects)
    assert any("Content-Type header longer than" in d for d in message.defects)
    assert growth(long_header_lines, 200_000) <= GROWTH_BOUND


def encoded_subject(count):
    raw = headers(b"Subject: " + b"=?utf-8?q?x?= " * count + b"\r\n").replace(b"Subject: s\r\n", b"", 1)
    return raw + b"\r\nbody\r\n"


def test_megabyte_subject_of_encoded_words_is_cut():
    message = parse_message(encoded_subject(80_000))

    assert message.subject.startswith("xxx")
    assert len(message.subject) < 20_000
    assert growth(encoded_subject, 80_000) <= GROWTH_BOUND


def deep(levels):
    head, tail = b"", b""
    for level in range(levels):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    return headers() + head + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + tail


def test_deep_nesting_is_bounded():
    message = parse_message(deep(3000))

    assert any("nesting deeper than 20" in d for d in message.defects)
    assert growth(deep, 3000) <= GROWTH_BOUND


def test_ordinary_nesting_is_read_through():
    message = parse_message(deep(5))

    assert message.text == "deep"
    assert not any("nesting" in d for d in message.defects)


def many_fields(count):
    return headers(b"".join(b"X-H%d: v\r\n" % i for i in range(count))) + b"\r\nbody\r\n"


def test_hundred_thousand_header_fields_are_capped():
    message = parse_message(many_fields(100_000))

    assert message.text == "body"
    assert sum(len(v) for v in message.headers.values()) <= 1000
    assert growth(many_fields, 100_000) <= GROWTH_BOUND


def references(count):
    ids = b" ".join(b"<r%d@x>" % i for i in range(count))
    return headers(b"References: " + ids + b"\r\n") + b"\r\nbody\r\n"


def test_huge_references_keep_the_newest():
    message = parse_message(references(50_000))

    assert message.references[-1] == "<r49999@x>"
    assert len(message.references) == 200
    assert growth(references, 50_000) <= GROWTH_BOUND


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
