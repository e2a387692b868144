"""A person's data on in-memory ports (docs/privacy.md): the export holds every document that names
the address; after an erasure a scan of every document finds it nowhere (only the keyed hash
stands for the person), the same Gmail message read again is not ingested, and Gmail's copy is
trashed on request; retention expiry, legal hold, deleting a ticket's data, a mailbox's purge."""

from __future__ import annotations

import json
import time

import pytest

from mailbridge.domain import privacy as privacy_rules
from mailbridge.errors import InvalidInput
from mailbridge.services import audit, mailboxes, outbox, privacy, retention, sync, tickets
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
ANN = "ann.smith@customer.example"
BOB = "bob@partner.example"
CLI = {"actor": "ops@acme.example", "source": "cli"}


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    return services, accounts


def scan(services, needle: str) -> list[str]:
    """Every document and blob whose content holds `needle` (any case)."""
    found = [f"{c}/{k}" for (c, k), doc in services.store.docs.items()
             if privacy_rules.names(doc, needle) or needle.lower() in k.lower()]
    found += [f"blob/{sha}" for sha, data in services.blobs.blobs.items() if needle.lower().encode() in data.lower()]
    return found


def mail(services, accounts, sender: str, subject: str, **headers) -> dict:
    accounts.deliver(ADDRESS, make_mail(sender, ADDRESS, subject, **headers))
    sync.poll(services, "help")
    return max(services.store.list_tickets(), key=lambda t: t["number"])


def with_attachment(sender: str, subject: str, data: bytes, cc: str = "") -> bytes:
    from tests.helpers import make_email
    message = make_email(sender, ADDRESS, subject, **({"Cc": cc} if cc else {}))
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename="invoice.bin")
    return bytes(message)


def two_people(services, accounts) -> tuple[dict, dict]:
    """Ann's own ticket (with an attachment), and Bob's ticket on which Ann is copied."""
    accounts.deliver(ADDRESS, with_attachment(f"Ann Smith <{ANN}>", "My invoice", b"ann's private invoice"))
    sync.poll(services, "help")
    own = max(services.store.list_tickets(), key=lambda t: t["number"])
    cced = mail(services, accounts, f"Bob <{BOB}>", "Team question", Cc=f"Ann Smith <{ANN}>")
    return own, cced


def test_export_holds_every_document_that_names_the_address(world):
    services, accounts = world
    own, cced = two_people(services, accounts)
    mail(services, accounts, "carol@other.example", "Unrelated")

    exported = privacy.export(services, ANN.upper(), **CLI)

    named = {f"{c}/{k}" for (c, k), doc in services.store.docs.items()
             if c in privacy_rules.SCANNED_COLLECTIONS and privacy_rules.names(doc, ANN)}
    listed = {f"{c}/{row['id']}" for c in privacy_rules.SCANNED_COLLECTIONS for row in exported[c]}
    assert named and listed == named
    assert {t["id"] for t in exported["tickets"]} == {own["id"], cced["id"]}
    (sha,) = exported["files"]
    assert privacy.blob(services, sha) == b"ann's private invoice"
    assert ANN not in json.dumps(audit.records(services), default=str)


def test_erase_leaves_the_address_nowhere_but_in_the_keyed_hash(world):
    services, accounts = world
    own, cced = two_people(services, accounts)

    result = privacy.erase(services, ANN, **CLI)

    assert scan(services, ANN) == [] and scan(services, "Ann Smith") == []
    assert result["messages_removed"] == 1 and result["tickets_removed"] == 1 and result["blobs_deleted"] == 1
    assert "out of mailbridge's reach" in result["gmail_note"]
    assert services.store.find_ticket(own["id"]) is None
    kept = tickets.show(services, cced["id"])  # Bob's ticket keeps Bob's message
    assert len(kept["messages"]) == 1 and kept["participants"] == [BOB]
    _, hashed = privacy.person(services, ANN)
    assert services.store.get_erasure(hashed)["messages_removed"] == 1
    (record,) = [r for r in audit.records(services) if r["action"] == "privacy.erase"]
    assert record["target"] == hashed and hashed.startswith("hmac-sha256:")


def test_an_erased_message_read_again_from_gmail_is_ignored_not_ingested(world):
    services, accounts = world
    own, _ = two_people(services, accounts)
    privacy.erase(services, ANN, **CLI)
    before = len(services.store.list_tickets())

    sync.poll(services, "help", backfill_since=time.time() - 86400)  # a backfill lists the inbox again

    assert len(services.store.list_tickets()) == before
    rows = [r for r in services.store.inbound_log("help") if r["reason"] == privacy_rules.ERASED_REASON]
    assert len(rows) == 1 and rows[0]["outcome"] == "ignored"
    assert scan(services, ANN) == []


def test_erase_with_gmail_trash_moves_the_persons_messages_to_trash(world):
    services, accounts = world
    two_people(services, accounts)

    result = privacy.erase(services, ANN, gmail_trash=True, **CLI)

    assert result["gmail_trashed"] == {"trashed": 1, "gone": 0, "failed": 0} and result["gmail_note"] is None
    labels = [m["labelIds"] for m in accounts.account(ADDRESS)["messages"].values()]
    assert sum("TRASH" in ids for ids in labels) == 1


def test_a_bad_address_is_refused(world):
    services, _ = world
    with pytest.raises(InvalidInput):
        privacy.erase(services, "not-an-address", **CLI)


# -- retention ---------------------------------------------------------------------------------
def expiring(services, ticket) -> set[str]:
    return {d["collection"] for d in services.store.ticket_documents(ticket["id"])
            if d["collection"] != "events" and d["data"].get("expires_at")}


def test_closing_sets_the_expiry_on_the_ticket_and_its_messages_and_reopening_clears_it(world):
    services, accounts = world
    services.store.set_setting("retention.closed_ticket_days", 30)
    ticket = mail(services, accounts, ANN, "Printer")

    tickets.set_status(services, ticket["id"], "closed")
    assert expiring(services, ticket) == {"tickets", "inbound"}  # events keep their own TTL

    tickets.set_status(services, ticket["id"], "open")
    assert expiring(services, ticket) == set()


def test_a_mailbox_retention_overrides_the_global_one_and_a_hold_keeps_the_ticket(world):
    services, accounts = world
    mailboxes.set_mailbox_setting(services, "help", "retention.closed_ticket_days", "7")
    ticket = mail(services, accounts, ANN, "Printer")
    tickets.set_status(services, ticket["id"], "closed")
    closed = services.store.get_ticket(ticket["id"])
    assert (closed["expires_at"] - privacy_rules._moment(closed["closed_at"])).days == 7

    held = retention.hold(services, ticket["id"], True)

    assert held["expires_at"] is None and services.store.get_ticket(ticket["id"])["expires_at"] is None
    assert retention.hold(services, ticket["id"], False)["expires_at"] is not None


def test_deleting_a_tickets_data_removes_its_rows_events_and_blobs(world):
    services, accounts = world
    accounts.deliver(ADDRESS, with_attachment(ANN, "Invoice", b"bytes only this ticket has"))
    sync.poll(services, "help")
    ticket = max(services.store.list_tickets(), key=lambda t: t["number"])
    other = mail(services, accounts, BOB, "Other")

    counts = retention.delete_ticket_data(services, ticket["id"])

    assert counts["blobs"] == 1 and services.blobs.blobs == {}
    assert services.store.ticket_documents(ticket["id"]) == []
    assert services.store.find_ticket(other["id"]) is not None


def test_purge_deletes_everything_the_mailbox_left(world):
    services, accounts = world
    two_people(services, accounts)
    mailboxes.remove_mailbox(services, "help")

    result = privacy.purge_mailbox(services, "help")

    assert result["deleted"]["tickets"] == 2 and services.blobs.blobs == {}
    assert not [k for (c, k) in services.store.docs if c in privacy_rules.PERSONAL_COLLECTIONS]


def test_new_mail_reopening_a_closed_ticket_clears_the_expiry_of_its_messages(world):
    services, accounts = world
    services.store.set_setting("retention.closed_ticket_days", 30)
    ticket = mail(services, accounts, ANN, "Printer")
    tickets.set_status(services, ticket["id"], "closed")
    first = services.store.list_tickets()[0]

    mail(services, accounts, ANN, f"Re: Printer {first.get('subject') and '[#' + str(first['number']) + ']'}")

    assert services.store.get_ticket(ticket["id"])["status"] == "open"
    assert expiring(services, ticket) == set()


def test_ignored_rows_expire_after_the_inbound_log_retention(world):
    services, accounts = world
    services.store.set_setting("retention.inbound_log_days", 14)
    mail(services, accounts, ANN, "Kept")
    accounts.deliver(ADDRESS, make_mail("MAILER-DAEMON@customer.example", ADDRESS, "Undeliverable"))
    sync.poll(services, "help")

    rows = services.store.collection("inbound").values()
    assert {r["outcome"]: bool(r.get("expires_at")) for r in rows} == {"created": False, "ignored": True}


def test_erase_reaches_a_quarantined_raw_copy_and_a_large_body_kept_in_cloud_storage(world):
    services, accounts = world
    raw = make_mail(ANN, ADDRESS, "Broken message")
    services.blobs.put("f" * 64, raw, "message/rfc822")
    services.store.put_inbound_row("help", "q1", {"mailbox": "help", "gmail_message_id": "q1", "outcome": "quarantined",
                                                  "reason": "parse failed", "raw_sha256": "f" * 64,
                                                  "processed_at": "2026-01-01T00:00:00+00:00"})
    long_body = ("Ann Smith <" + ANN + "> asked about this. " + "x" * 700_000)
    kept = mail(services, accounts, BOB, "Long one", body=long_body)
    assert services.store.ticket_messages(kept["id"])[0]["message"]["stored_parts"]

    privacy.erase(services, ANN, **CLI)

    assert scan(services, ANN) == []  # her name is known only from a From, To or Cc: none here
    (message,) = tickets.show(services, kept["id"])["messages"]
    assert message["text"].startswith("Ann Smith <[erased]> asked about this.") and len(message["text"]) > 700_000
    assert services.store.collection("inbound")["help~q1"]["reason"] == privacy_rules.ERASED_REASON


def test_erase_reaches_acknowledgements_sent_to_the_person_and_their_counters():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"gmail_quota_units_per_minute": 15000})
    mail(services, accounts, f"Ann Smith <{ANN}>", "Printer")
    for task in services.queue.take():
        if task["kind"] == "send":
            outbox.handle_send_task(services, task["mailbox"], task)
    assert [r for r in services.store.collection("outbound").values() if r["status"] == "sent"]
    assert [path for path in scan(services, ANN) if path.startswith("ack_limits/")]

    privacy.erase(services, ANN, **CLI)

    assert scan(services, ANN) == [] and scan(services, "Ann Smith") == []
