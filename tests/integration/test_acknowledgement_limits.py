"""Acknowledgements that fit real customers, against the Firestore emulator and the fake Gmail
(docs/outbox.md, "Acknowledgement limits"): every Gmail customer acknowledged while a company
domain is held to its limit per mailbox (its counter sharded, no hot document), and mail Gmail
received long ago or listed by a backfill acknowledged by nobody, the inbound row saying why."""

import time

import pytest

from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, make_services

ADDRESS = "help@acme.example"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledgement_limit_per_domain_per_hour", "3")
    ingest.poll(services, "help")  # the first poll records the history id
    return services


def acknowledgements(services) -> list[dict]:
    return [s.to_dict() for s in services.store.db.collection("outbound").stream()
            if s.to_dict().get("kind") == "acknowledgement"]


def rows(services) -> dict[str, dict]:
    return {s.to_dict()["gmail_message_id"]: s.to_dict() for s in services.store.db.collection("inbound").stream()}


def test_gmail_customers_are_all_acknowledged_and_a_company_domain_is_held_to_its_limit(services, fake):
    for i in range(5):
        deliver(fake.url, ADDRESS, make_mail(f"customer{i}@gmail.com", ADDRESS, f"Question {i}"))
        deliver(fake.url, ADDRESS, make_mail(f"staff{i}@bigcorp.example", ADDRESS, f"Outage {i}"))
    ingest.poll(services, "help")

    recipients = [a["message"]["to"][0]["email"] for a in acknowledgements(services)]
    assert sum("gmail.com" in r for r in recipients) == 5
    assert sum("bigcorp.example" in r for r in recipients) == 3


def test_mail_received_long_ago_or_listed_by_a_backfill_gets_no_acknowledgement(services, fake):
    day_old_ms = int((time.time() - 30 * 3600) * 1000)
    old = deliver(fake.url, ADDRESS, make_mail("late@gmail.com", ADDRESS, "Sent yesterday"), internalDate=str(day_old_ms))
    ingest.poll(services, "help")
    deliver(fake.url, ADDRESS, make_mail("earlier@gmail.com", ADDRESS, "Older question"))
    ingest.poll(services, "help", backfill_since=time.time() - 7 * 86400)

    assert acknowledgements(services) == []
    reasons = {row.get("acknowledgement", {}).get("reason", "") for row in rows(services).values()}
    assert any("outgoing.acknowledge_max_age_hours (24)" in r for r in reasons)
    assert "the message came in through a backfill of older mail" in reasons
    assert rows(services)[old["id"]]["acknowledgement"]["status"] == "skipped"
