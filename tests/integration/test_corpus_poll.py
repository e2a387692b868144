"""The whole test corpus through a real poll: every message gets exactly one inbound row with
the outcome its kind calls for, nothing crashes, HTML is sanitized, attachments are stored."""

import pytest

from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from mailbridge.services import tickets
from tests.corpus import build_corpus
from tests.helpers import connect_mailbox, deliver, make_services

ADDRESS = "support@helpdesk.example"
IGNORED = {"auto_submitted", "x_autoreply", "x_autorespond", "outlook_oof", "precedence_bulk", "precedence_junk",
           "precedence_list", "x_loop", "own_address", "bounce_report", "bounce_mailer_daemon", "bounce_postmaster",
           "read_receipt"}


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make_services(prefix="helpdesk")  # loop marker helpdesk@mailbridge, as the corpus uses
    connect_mailbox(services, fake.url, "help", ADDRESS)
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "false")
    return services


def test_every_corpus_message_gets_one_row_with_the_right_outcome(services, fake):
    corpus = build_corpus()
    delivered = {}
    for name, raw in corpus.items():
        delivered[deliver(fake.url, ADDRESS, raw)["id"]] = name
    result = ingest.poll(services)
    assert result["mailboxes"][0]["outcome"] == "ok"
    log = services.store.inbound_log("help", limit=1000)
    assert sorted(r["gmail_message_id"] for r in log) == sorted(delivered)
    outcomes = {delivered[r["gmail_message_id"]]: r for r in log}
    for name, row in outcomes.items():
        if name in IGNORED:
            assert row["outcome"] == "ignored", (name, row)
            assert row["reason"], name
        else:
            assert row["outcome"] in ("created", "updated"), (name, row)
    counts = result["totals"]
    assert counts["created"] + counts["updated"] + counts["ignored"] == len(corpus)
    assert counts["quarantined"] == counts["failed"] == 0


def test_stored_messages_are_sanitized_and_keep_attachments(services, fake):
    corpus = build_corpus()
    ids = {name: deliver(fake.url, ADDRESS, corpus[name])["id"]
           for name in ("html_dangerous", "attachments_inline", "nested_rfc822", "winmail_dat", "no_message_id", "koi8r")}
    ingest.poll(services)
    rows = {r["gmail_message_id"]: r for r in services.store.inbound_log("help")}
    views = {name: tickets.show(services, rows[gid]["ticket_id"]) for name, gid in ids.items()}
    dangerous = views["html_dangerous"]["messages"][0]
    assert "<script" not in (dangerous["html"] or "").lower() and "onerror" not in (dangerous["html"] or "").lower()
    inline = views["attachments_inline"]["messages"][0]["attachments"]
    assert inline and all(len(a["sha256"]) == 64 and a["size"] > 0 for a in inline)
    assert any(a["content_id"] for a in inline)
    for a in inline:
        assert services.blobs.get(a["sha256"])  # bytes are in Cloud Storage
    row = services.store.inbound_ref("help", ids["attachments_inline"]).get().to_dict()
    assert [a["storage_key"] for a in row["message"]["attachments"]] == [
        f"attachments/{a['sha256']}" for a in row["message"]["attachments"]]
    nested = views["nested_rfc822"]["messages"][0]["attachments"]
    assert [a["content_type"] for a in nested] == ["message/rfc822"]
    assert any(a["filename"].lower() == "winmail.dat" for a in views["winmail_dat"]["messages"][0]["attachments"])
    assert views["no_message_id"]["messages"][0]["message_id"].endswith("@mailbridge.invalid>")
    assert any("а" <= ch <= "я" for ch in views["koi8r"]["messages"][0]["text"].lower())
