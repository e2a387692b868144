"""An admin's retry of a message quarantined because it could not be stored is ingested from its
raw copy in Cloud Storage (issue 28, docs/reliability.md), so a message since deleted or moved in
Gmail can still be retried; without a copy it is read from Gmail; once either way."""

from __future__ import annotations

from mailbridge.services import stored_bodies, sync
from tests.helpers import make_mail
from tests.service.test_privacy import ADDRESS, world  # noqa: F401 - one connected mailbox, no acknowledgements


def quarantined_too_large(services, accounts, monkeypatch) -> str:
    """A message over Firestore's 1 MiB (its body kept in the row), quarantined with its raw copy;
    then the limit is as shipped again, as after an upgrade that stores it."""
    budget = stored_bodies.ROW_BODY_BUDGET
    monkeypatch.setattr(stored_bodies, "ROW_BODY_BUDGET", 10**9)
    gmail_id = accounts.deliver(ADDRESS, make_mail("log@example.org", ADDRESS, "Forwarded log", "张三 写道:\n" * 75_000))
    sync.poll(services, "help")
    monkeypatch.setattr(stored_bodies, "ROW_BODY_BUDGET", budget)
    row = row_of(services, gmail_id)
    assert row["outcome"] == "quarantined" and row["raw_sha256"] in services.blobs.blobs
    return gmail_id


def row_of(services, gmail_id: str) -> dict:
    return next(r for r in services.store.inbound_log("help") if r["gmail_message_id"] == gmail_id)


def test_a_retry_ingests_the_stored_copy_of_a_message_deleted_in_gmail_once(world, monkeypatch):
    services, accounts = world
    gmail_id = quarantined_too_large(services, accounts, monkeypatch)
    del accounts.account(ADDRESS)["messages"][gmail_id]
    sync.retry_quarantined(services, "help", gmail_id)
    sync.poll(services, "help")
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    row = row_of(services, gmail_id)
    assert (row["outcome"], row["ticket_id"], ticket["subject"]) == ("created", ticket["id"], "Forwarded log")
    assert services.store.get_sync("help", services.settings.instance).get("post_processing_error") is None


def test_a_retry_keeps_gmails_thread_of_the_stored_copy(world, monkeypatch):
    services, accounts = world
    gmail_id = quarantined_too_large(services, accounts, monkeypatch)
    thread_id = accounts.account(ADDRESS)["messages"][gmail_id]["threadId"]
    sync.retry_quarantined(services, "help", gmail_id)
    sync.poll(services, "help")
    row = services.store.get_inbound_rows("help", [gmail_id])[gmail_id]
    assert row["outcome"] == "created" and row["gmail_thread_id"] == thread_id


def test_without_a_readable_copy_the_retry_reads_gmail(world, monkeypatch):
    services, accounts = world
    gmail_id = quarantined_too_large(services, accounts, monkeypatch)
    services.blobs.delete(row_of(services, gmail_id)["raw_sha256"])
    sync.retry_quarantined(services, "help", gmail_id)
    sync.poll(services, "help")
    assert row_of(services, gmail_id)["outcome"] == "created" and len(services.store.list_tickets()) == 1


def test_a_retry_from_the_copy_that_fails_again_keeps_the_copy(world, monkeypatch):
    services, accounts = world
    monkeypatch.setattr(stored_bodies, "ROW_BODY_BUDGET", 10**9)
    gmail_id = accounts.deliver(ADDRESS, make_mail("log@example.org", ADDRESS, "Forwarded log", "张三 写道:\n" * 75_000))
    sync.poll(services, "help")
    sha256 = row_of(services, gmail_id)["raw_sha256"]
    del accounts.account(ADDRESS)["messages"][gmail_id]
    sync.retry_quarantined(services, "help", gmail_id)
    sync.poll(services, "help")
    row = row_of(services, gmail_id)
    assert (row["outcome"], row["raw_sha256"]) == ("quarantined", sha256) and services.store.list_tickets() == []
