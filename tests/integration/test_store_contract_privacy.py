"""The store contract of the privacy and audit repositories (services/repositories.py), on the
in-memory store and on Firestore over the emulator, as tests/integration/test_store_contract.py:
the scan for an address, a ticket's and a mailbox's documents, their rewrite and deletion, the
TTL field, blobs still pointed to, erasure records, the append-only audit log."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.integration.test_store_contract import create_tickets, inbound_row, store, ticket  # noqa: F401

ANN = "ann@customer.example"
SHA = "a" * 64


def message(sender: str, attachment_sha: str | None = None) -> dict:
    attachments = [{"filename": "f.bin", "sha256": attachment_sha, "storage_key": f"attachments/{attachment_sha}"}] \
        if attachment_sha else []
    return {"from": {"email": sender, "name": "Someone"}, "to": [], "cc": [], "text": "hi", "attachments": attachments}


def seed(store) -> None:
    create_tickets(store, ticket(1, requester={"email": ANN, "name": "Ann"}, participants=[ANN]),
                   ticket(2, mailbox="other", participants=["bob@partner.example"]))
    store.put_inbound_row("help", "g1", inbound_row("g1", ticket_id="1", message=message(ANN, SHA)))
    store.put_inbound_row("other", "g2", inbound_row("g2", mailbox="other", ticket_id="2",
                                                     message=message("bob@partner.example")))


def paths(documents: list[dict]) -> set[str]:
    return {f"{d['collection']}/{d['id']}" for d in documents}


def test_documents_naming_finds_the_address_in_any_case_and_only_there(store):
    seed(store)
    assert paths(store.documents_naming(ANN.upper().lower())) == {"tickets/1", "inbound/help~g1"}
    assert store.documents_naming("nobody@nowhere.example") == []


def test_a_tickets_and_a_mailboxs_documents(store):
    seed(store)
    assert paths(store.ticket_documents("1")) == {"tickets/1", "inbound/help~g1"}
    assert paths(store.mailbox_documents("other")) == {"tickets/2", "inbound/other~g2"}


def test_documents_are_rewritten_and_deleted_and_expiry_is_set_and_cleared(store):
    seed(store)
    (row,) = [d for d in store.ticket_documents("1") if d["collection"] == "inbound"]
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)

    store.write_documents([{**row, "data": {"mailbox": "help", "gmail_message_id": "g1", "outcome": "ignored"}}],
                          [{"collection": "tickets", "id": "2", "data": {}}])
    store.set_expiry([{"collection": "tickets", "id": "1"}], when)

    assert store.get_inbound_rows("help", ["g1"])["g1"]["outcome"] == "ignored"
    assert store.documents_naming(ANN) == [d for d in store.documents_naming(ANN) if d["id"] == "1"]
    assert store.find_ticket("2") is None
    assert store.get_ticket("1")["expires_at"] == when
    store.set_expiry([{"collection": "tickets", "id": "1"}], None)
    assert store.get_ticket("1")["expires_at"] is None


def test_blobs_in_use_are_those_a_document_outside_the_exclusion_points_to(store):
    seed(store)
    rows = [d for d in store.ticket_documents("1") if d["collection"] == "inbound"]
    assert store.blobs_in_use([SHA, "b" * 64], []) == {SHA}
    assert store.blobs_in_use([SHA], rows) == set()


def test_erasure_records_are_kept_by_the_persons_hash(store):
    assert store.get_erasure("hmac-sha256:ab") is None
    store.put_erasure("hmac-sha256:ab", {"erased_at": "2026-01-01T00:00:00Z", "messages_removed": 2})
    assert store.get_erasure("hmac-sha256:ab")["messages_removed"] == 2


def test_the_audit_log_is_appended_and_read_newest_first_by_time_or_actor(store):
    for at, actor in (("2026-01-01T00:00:00.000+00:00", "a@x.example"), ("2026-01-02T00:00:00.000+00:00", "b@x.example"),
                      ("2026-01-03T00:00:00.000+00:00", "a@x.example")):
        store.append_audit({"at": at, "actor": actor, "action": "settings.set", "target": "k"})

    assert [r["at"][:10] for r in store.audit_records()] == ["2026-01-03", "2026-01-02", "2026-01-01"]
    assert [r["at"][:10] for r in store.audit_records(actor="a@x.example")] == ["2026-01-03", "2026-01-01"]
    assert [r["at"][:10] for r in store.audit_records(since="2026-01-02", limit=1)] == ["2026-01-03"]
    assert len(store.audit_records(limit=0)) == 3


def test_spam_lists_naming_the_address_are_found_and_only_its_entries_forgotten(store):
    stranger = {"gmail_message_id": "s2", "from_email": "offer@spam.example", "subject": "Toner"}
    store.update_sync("help", "1", {"history_id": "7", "spam_count": 2, "spam_recent": [
        {"gmail_message_id": "s1", "from_email": ANN, "subject": "Order"}, stranger]})
    store.update_sync("other", "1", {"spam_recent": [dict(stranger, gmail_message_id="s3")]})

    (found,) = store.spam_lists_naming(ANN)
    assert (found["mailbox"], found["instance"], len(found["spam_recent"])) == ("help", "1", 2)
    assert store.forget_spam("help", "1", ["s1"]) == 1
    assert store.forget_spam("help", "1", ["s1"]) == 0
    assert store.get_sync("help", "1")["spam_recent"] == [stranger]
    assert store.get_sync("help", "1")["history_id"] == "7"
    assert store.spam_lists_naming(ANN) == []
