"""A person's data and its lifecycle through the CLI, against the Firestore emulator, the Storage
emulator and the fake Google (docs/privacy.md): an export as complete as a scan of every
document; an erasure after which a scan finds the address nowhere (the keyed hash stands for the
person), Gmail's copy not ingested again and moved to Trash on request; a purge after which the
mailbox's blobs are gone from the Storage emulator; a retention run; an audit record per action."""

from __future__ import annotations

import json
import time

import pytest
import requests

from mailbridge.services import retention, sync
from tests.helpers import connect_mailbox, deliver, export_all, make_email, make_mail, make_services
from tests.integration.test_cli_fixes import json_of, run

ADDRESS = "help@acme.example"
ANN = "ann.smith@customer.example"
BOB = "bob@partner.example"
PERSONAL = ("tickets", "inbound", "outbound", "events")


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, monkeypatch):
    monkeypatch.setenv("MAILBRIDGE_ACTOR", "ops@acme.example")
    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": False})
    return services


def naming(services, needle: str) -> list[str]:
    """Every Firestore document (path or content) holding `needle`, any case."""
    needle = needle.lower()
    return [d["path"] for d in export_all(services.store.db)
            if needle in d["path"].lower() or needle in json.dumps(d["data"], default=str).lower()]


def stored_blobs(services) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in services.blobs.bucket.list_blobs(prefix="attachments/")}


def two_people(services, fake) -> None:
    """Ann's own ticket with an attachment, and Bob's ticket on which Ann is copied."""
    message = make_email(f"Ann Smith <{ANN}>", ADDRESS, "My invoice")
    message.add_attachment(b"ann's private invoice", maintype="application", subtype="octet-stream",
                           filename="invoice.bin")
    deliver(fake.url, ADDRESS, bytes(message))
    deliver(fake.url, ADDRESS, make_mail(f"Bob <{BOB}>", ADDRESS, "Team question", Cc=f"Ann Smith <{ANN}>"))
    sync.poll(services, "help")


def test_export_writes_every_document_that_names_the_address_and_its_files(services, fake, capsys, monkeypatch,
                                                                            tmp_path):
    two_people(services, fake)
    deliver(fake.url, ADDRESS, make_mail("carol@other.example", ADDRESS, "Unrelated"))
    sync.poll(services, "help")

    code, out, err = run(["privacy", "export", ANN, "--out", str(tmp_path)], capsys, monkeypatch)

    assert code == 0, err
    exported = json.loads((tmp_path / "export.json").read_text())
    listed = {f"{c}/{row['id']}" for c in PERSONAL for row in exported[c]}
    assert listed and listed == {p for p in naming(services, ANN) if p.split("/")[0] in PERSONAL}
    (meta,) = exported["files"].values()
    assert (tmp_path / meta["path"]).read_bytes() == b"ann's private invoice"


def test_export_without_out_prints_the_json_and_lists_the_files(services, fake, capsys, monkeypatch):
    two_people(services, fake)
    code, out, err = run(["privacy", "export", ANN], capsys, monkeypatch)
    exported = json_of(out)
    assert code == 0 and exported["address"] == ANN and len(exported["tickets"]) == 2
    assert len(exported["files"]) == 1 and "--out DIR" in err


def test_erase_leaves_the_address_nowhere_and_gmail_copies_are_not_ingested_again(services, fake, capsys,
                                                                                  monkeypatch):
    two_people(services, fake)

    code, out, err = run(["privacy", "erase", ANN, "--yes", "--gmail-trash"], capsys, monkeypatch)

    assert code == 0, err
    assert "1 messages moved to Trash" in out
    assert naming(services, ANN) == [] and naming(services, "Ann Smith") == []
    assert not [name for name, data in stored_blobs(services).items() if b"ann's private invoice" in data]
    gmail = requests.get(f"{fake.url}/_fake/users/{ADDRESS}/messages", timeout=10).json()
    assert sum("TRASH" in m["labelIds"] for m in gmail) == 1

    sync.poll(services, "help", backfill_since=time.time() - 86400)  # Gmail's copies listed again

    assert [t["requester"]["email"] for t in services.store.list_tickets()] == [BOB]
    assert naming(services, ANN) == []


def test_erase_without_gmail_trash_says_gmail_is_out_of_reach(services, fake, capsys, monkeypatch):
    two_people(services, fake)
    code, out, _ = run(["privacy", "erase", ANN, "--yes"], capsys, monkeypatch)
    assert code == 0 and "out of mailbridge's reach" in out
    code, _, err = run(["privacy", "erase", ANN], capsys, monkeypatch)
    assert code == 2 and "--yes" in err


def test_purge_deletes_the_mailboxs_documents_and_its_blobs_from_storage(services, fake, capsys, monkeypatch):
    others = set(stored_blobs(services))  # the Storage emulator is shared by the session's tests
    two_people(services, fake)
    assert set(stored_blobs(services)) - others

    code, out, err = run(["mailbox", "remove", "help", "--yes", "--purge"], capsys, monkeypatch)

    assert code == 0, err
    left = stored_blobs(services)
    assert not set(left) - others
    assert not [name for name, data in left.items() if b"ann's private invoice" in data]
    assert not [d for d in export_all(services.store.db) if d["path"].split("/")[0] in PERSONAL]


def test_a_retention_run_deletes_a_closed_tickets_data_but_a_held_one_stays_unexpired(services, fake, capsys,
                                                                                      monkeypatch):
    two_people(services, fake)
    assert run(["settings", "set", "retention.closed_ticket_days", "30"], capsys, monkeypatch)[0] == 0
    first, second = sorted(services.store.list_tickets(), key=lambda t: t["number"])
    assert run(["tickets", "close", first["id"]], capsys, monkeypatch)[0] == 0
    assert run(["tickets", "close", second["id"]], capsys, monkeypatch)[0] == 0
    assert run(["tickets", "hold", second["id"]], capsys, monkeypatch)[0] == 0

    expired = [d for d in services.store.ticket_documents(first["id"]) if d["data"].get("expires_at")]
    assert {d["collection"] for d in expired} >= {"tickets", "inbound"}
    assert services.store.get_ticket(second["id"]).get("expires_at") is None
    retention.delete_ticket_data(services, first["id"])  # what the TTL policy does once expired

    assert services.store.find_ticket(first["id"]) is None
    assert not [name for name, data in stored_blobs(services).items() if b"ann's private invoice" in data]


def test_each_admin_action_of_the_cli_leaves_one_audit_record(services, fake, capsys, monkeypatch, tmp_path):
    two_people(services, fake)
    ticket = min(services.store.list_tickets(), key=lambda t: t["number"])
    for args in (["settings", "set", "retention.inbound_log_days", "90"],
                 ["mailbox", "set", "help", "retention.closed_ticket_days", "10"],
                 ["tickets", "close", ticket["id"]], ["tickets", "hold", ticket["id"]],
                 ["tickets", "release", ticket["id"]], ["privacy", "export", ANN, "--out", str(tmp_path)],
                 ["privacy", "erase", ANN, "--yes"], ["admin", "sessions", "revoke-all"],
                 ["disconnect", "help"], ["mailbox", "remove", "help", "--yes", "--purge"]):
        code, _, err = run(args, capsys, monkeypatch)
        assert code == 0, (args, err)

    code, out, _ = run(["audit", "--json", "--limit", "0"], capsys, monkeypatch)

    records = json_of(out)
    assert sorted(r["action"] for r in records) == sorted([
        "settings.set", "mailbox.set", "ticket.status", "ticket.hold", "ticket.release", "privacy.export",
        "privacy.erase", "sessions.revoke", "mailbox.disconnect", "mailbox.remove", "mailbox.purge"])
    assert {r["actor"] for r in records} == {"ops@acme.example"}
    (setting,) = [r for r in records if r["action"] == "settings.set"]
    assert setting["before"] == {"retention.inbound_log_days": 0} and setting["after"] == {"retention.inbound_log_days": 90}
    assert ANN not in out
    assert run(["audit", "--actor", "someone@else.example", "--json"], capsys, monkeypatch)[1].strip() == "[]"


def test_erase_after_acknowledgements_were_sent_leaves_the_address_nowhere(services, fake, capsys, monkeypatch):
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": True})
    two_people(services, fake)
    sent = requests.get(f"{fake.url}/_fake/users/{ADDRESS}/sent", timeout=10).json()
    assert len(sent) == 2 and naming(services, ANN)

    code, _, err = run(["privacy", "erase", ANN, "--yes"], capsys, monkeypatch)

    assert code == 0, err
    assert naming(services, ANN) == [] and naming(services, "Ann Smith") == []
