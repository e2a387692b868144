"""Hostile input through the whole poll (delivered raw to the fake, fetched with messages.get
format=raw): random and mutated messages never crash a poll and each gets exactly one inbound
row; monstrous messages stay within bounded time and memory."""

from __future__ import annotations

import gc
import io
import random
import time
import tracemalloc
import uuid
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from mailbridge.services import sync as ingest
from tests.corpus import build_corpus, make_message
from tests.helpers import make_services
from tests.reliability.conftest import LEDGER, connect, deliver_all, lost_and_duplicated, outcome_view

FINAL = ("created", "updated", "ignored", "quarantined")


def fresh_mailbox(services, fake):
    name = f"h{uuid.uuid4().hex[:10]}"
    address = f"{name}@acme.example"
    connect(services, fake.url, name, address)
    ingest.poll(services, name)
    return name, address


def poll_and_check(services, name, ids):
    result = ingest.poll(services, name)
    summary = result["mailboxes"][0]
    assert summary["outcome"] == "ok", summary
    view = outcome_view(services, ids, name)
    lost, duplicated = lost_and_duplicated(view, len(ids))
    assert duplicated == 0
    rows = view["outcomes"]
    assert sorted(i for i in rows if i is not None) == list(range(len(ids))), "every message exactly one row"
    not_final = [i for i, outcome in rows.items() if outcome[0] not in FINAL]
    return summary, not_final


HEADER_NAMES = st.sampled_from(["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References",
                                "Content-Type", "Content-Transfer-Encoding", "Date", "Reply-To",
                                "Auto-Submitted", "Content-Disposition", "X-Anything"])
HEADER_VALUES = st.one_of(
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.sampled_from([b"multipart/mixed; boundary=\"b\"", b"=?utf-8?b?////?=", b"<>", b"\"\" <@>", b"base64",
                     b"quoted-printable", b"text/html; charset=x-unknown", b"message/rfc822", b",,,;;;"]),
)


@st.composite
def hostile_messages(draw):
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12))
    body = draw(st.one_of(st.binary(max_size=2000), st.just(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--")))
    raw = b"".join(name.encode() + b": " + value.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"
                   for name, value in headers) + b"\r\n" + body
    return raw if raw.strip() else b"X: y\r\n\r\nempty"


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(hostile_messages(), min_size=15, max_size=15))
def test_generated_messages_never_crash_a_poll(mb_env, fake, firestore, storage_emulator, batch):
    services = make_services()
    name, address = fresh_mailbox(services, fake)
    ids = deliver_all(fake.url, address, batch)
    summary, not_final = poll_and_check(services, name, ids)
    assert not_final == [], f"messages left failed: {not_final}"
    LEDGER.figure("hypothesis messages through the poll", examples_per_batch=15, batches=4)


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randrange(1, 30)):
        position = rng.randrange(len(data))
        action = rng.randrange(4)
        if action == 0:
            data[position] = rng.randrange(256)
        elif action == 1:
            del data[position:position + rng.randrange(1, 40)]
        elif action == 2:
            data[position:position] = rng.choice([b"=?", b"?=", b"\r\n", b"--", b"<", b";", b'"', b"\x00", b"\xff"])
        else:
            data[position:position] = data[max(0, position - 200):position]
    return bytes(data) if bytes(data).strip() else b"X: y\r\n\r\n"


@pytest.mark.parametrize("count", [120, pytest.param(1000, marks=pytest.mark.soak)])
def test_mutated_corpus_messages_through_the_poll(mb_env, fake, firestore, storage_emulator, count):
    corpus = build_corpus()
    names = sorted(corpus)
    rng = random.Random(20261128)
    messages = [mutate(corpus[names[i % len(names)]], rng) for i in range(count)]
    services = make_services()
    name, address = fresh_mailbox(services, fake)
    ids = deliver_all(fake.url, address, messages)
    started = time.perf_counter()
    summary, not_final = poll_and_check(services, name, ids)
    seconds = time.perf_counter() - started
    assert not_final == []
    LEDGER.figure(f"mutated corpus ({count} messages)", messages=count, poll_crashes=0, rows=count,
                  counts=summary["counts"], seconds=round(seconds, 1))


# --------------------------------------------------------------------------- monstrous messages
def ten_thousand_recipients():
    cc = ", ".join(f'"User {i}" <user{i}@example.com>' for i in range(10_000))
    return make_message(subject="Many recipients", cc=cc, message_id="<many-rcpt@x>")


def five_thousand_parts():
    parts = b"".join(b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                     b"filename=\"p%d.bin\"\r\n\r\npart %d\r\n" % (i, i) for i in range(5000))
    return (b"From: a@customer.example\r\nTo: help@acme.example\r\nSubject: parts\r\nMessage-ID: <parts@x>\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" + parts + b"--b--\r\n")


def deep_multipart(levels=3000):
    head, tail = b"", b""
    for level in range(levels):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    return (b"From: a@customer.example\r\nTo: help@acme.example\r\nSubject: deep\r\nMessage-ID: <deep@x>\r\n"
            + head + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + tail)


def nested_rfc822(levels=60):
    inner = make_message(subject="innermost", message_id="<in0@x>")
    for level in range(levels):
        inner = make_message(subject=f"wrapper {level}", message_id=f"<in{level + 1}@x>",
                             attachments=[("forwarded.eml", "message/rfc822", inner)])
    return inner


def megabyte_header_line():
    return (b"From: a@customer.example\r\nTo: help@acme.example\r\nSubject: " + b"s" * 1_000_000
            + b"\r\nX-Long: " + b"a" * 1_000_000 + b"\r\nMessage-ID: <long@x>\r\n\r\nbody\r\n")


def zip_bomb():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(4):
            archive.writestr(f"zeros{i}.bin", b"\0" * (50 * 1024 * 1024))  # 200 MB unpacked
    return make_message(subject="Report attached", message_id="<bomb@x>",
                        attachments=[("report.zip", "application/zip", buffer.getvalue())])


def large_message(megabytes):
    blob = random.Random(megabytes).randbytes(megabytes * 1024 * 1024)
    return make_message(subject=f"{megabytes} MB", message_id=f"<large{megabytes}@x>",
                        attachments=[("big.bin", "application/octet-stream", blob)])


MONSTERS = {
    "10,000 recipients": ten_thousand_recipients,
    "5,000 MIME parts": five_thousand_parts,
    "3,000-deep multipart": deep_multipart,
    "60 nested message/rfc822": nested_rfc822,
    "1 MB header lines": megabyte_header_line,
    "zip bomb (200 MB unpacked)": zip_bomb,
    "10 MB message": lambda: large_message(10),
}


def measure_one(services, fake, raw):
    name, address = fresh_mailbox(services, fake)
    ids = deliver_all(fake.url, address, [raw])
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        summary, not_final = poll_and_check(services, name, ids)
        seconds = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not_final == []
    return summary, seconds, peak


@pytest.mark.parametrize("kind", list(MONSTERS))
def test_monstrous_message_is_ingested_in_bounded_time_and_memory(mb_env, fake, firestore, storage_emulator, kind):
    raw = MONSTERS[kind]()
    services = make_services()
    summary, seconds, peak = measure_one(services, fake, raw)
    size = len(raw)
    # Generous bounds: they catch quadratic blow-ups and unbounded buffering, not jitter.
    assert seconds < 60, seconds
    assert peak < 64 * 1024 * 1024 + 12 * size, peak
    LEDGER.figure(f"monster: {kind}", bytes=size, seconds=round(seconds, 2), peak_traced_mib=round(peak / 2**20, 1),
                  outcome={k: v for k, v in summary["counts"].items() if v})


@pytest.mark.soak
def test_soak_hundred_megabyte_message(mb_env, fake, firestore, storage_emulator):
    raw = large_message(100)
    services = make_services()
    summary, seconds, peak = measure_one(services, fake, raw)
    assert seconds < 600
    assert peak < 64 * 1024 * 1024 + 12 * len(raw)
    LEDGER.figure("monster: 100 MB message", bytes=len(raw), seconds=round(seconds, 2),
                  peak_traced_mib=round(peak / 2**20, 1), outcome={k: v for k, v in summary["counts"].items() if v})
