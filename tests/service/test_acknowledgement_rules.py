"""Acknowledgements that fit real customers (docs/outbox.md, "Acknowledgement limits"): the domain
limit is per mailbox, never applies to public mailbox providers nor the mailbox's own domain, and
only new mail is acknowledged (never a backfill, a full re-sync or mail Gmail received too long ago),
with the reason on the inbound row and in the log."""

import time

import pytest

from mailbridge.domain import mail_providers
from mailbridge.services import sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

HELP, SALES = "help@acme.example", "sales@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledgement_limit_per_domain_per_hour": 3})
    connected_mailbox(services, accounts, "sales", SALES, outgoing={"acknowledgement_limit_per_domain_per_hour": 3})
    return services, accounts


def write_in(services, accounts, senders, address=HELP, mailbox="help", **delivery) -> list[str]:
    ids = [accounts.deliver(address, make_mail(sender, address, f"Question from {sender}"), **delivery)
           for sender in senders]
    sync.poll(services, mailbox)
    return ids


def rows_of(services, ids) -> dict[str, dict]:
    return {r["gmail_message_id"]: r for r in services.store.collection("inbound").values() if r["gmail_message_id"] in ids}


def acknowledged(services, mailbox="help") -> int:
    return sum(1 for r in services.store.collection("outbound").values()
               if r["kind"] == "acknowledgement" and r["mailbox"] == mailbox)


def test_every_gmail_customer_is_acknowledged_however_many_write_in_an_hour(world):
    services, accounts = world
    write_in(services, accounts, [f"customer{i}@gmail.com" for i in range(8)])
    assert acknowledged(services) == 8


def test_a_company_domain_is_limited_per_mailbox_not_across_the_deployment(world):
    services, accounts = world
    write_in(services, accounts, [f"u{i}@bigcorp.example" for i in range(5)])
    write_in(services, accounts, [f"v{i}@bigcorp.example" for i in range(5)], SALES, "sales")
    assert (acknowledged(services), acknowledged(services, "sales")) == (3, 3)


def test_the_mailboxs_own_domain_is_never_domain_limited(world):
    services, accounts = world
    write_in(services, accounts, [f"colleague{i}@acme.example" for i in range(6)])
    assert acknowledged(services) == 6


def test_the_per_address_limit_still_holds_for_a_public_provider(world):
    services, accounts = world
    write_in(services, accounts, ["same@gmail.com"] * 5)
    assert acknowledged(services) == 3  # outgoing.acknowledgement_limit_per_hour


def test_the_default_domain_limit_is_sized_for_a_company_after_an_outage():
    from mailbridge.domain import models

    assert models.DEFAULT_OUTGOING["acknowledgement_limit_per_domain_per_hour"] == 200
    assert models.DEFAULT_OUTGOING["acknowledge_max_age_hours"] == 24


@pytest.mark.parametrize("domain", ["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "yahoo.com",
                                    "icloud.com", "gmx.de", "web.de", "qq.com", "163.com", "Proton.me"])
def test_the_public_providers_are_known(domain):
    assert mail_providers.is_public_provider(domain)


def test_a_company_domain_is_not_a_public_provider():
    assert not mail_providers.is_public_provider("bigcorp.example")


def test_mail_gmail_received_more_than_a_day_ago_is_not_acknowledged_and_the_row_says_why(world):
    services, accounts = world
    (old,) = write_in(services, accounts, ["late@gmail.com"], internal_date_ms=int((time.time() - 30 * 3600) * 1000))
    (new,) = write_in(services, accounts, ["fresh@gmail.com"])
    assert acknowledged(services) == 1
    rows = rows_of(services, [old, new])
    assert "outgoing.acknowledge_max_age_hours (24)" in rows[old]["acknowledgement"]["reason"]
    assert "acknowledgement" not in rows[new]


def test_the_age_limit_is_a_mailbox_setting(world):
    services, accounts = world
    services.store.update_mailbox("help", {"outgoing.acknowledge_max_age_hours": 48})
    write_in(services, accounts, ["late@gmail.com"], internal_date_ms=int((time.time() - 30 * 3600) * 1000))
    assert acknowledged(services) == 1


def test_a_backfill_acknowledges_nobody_and_the_rows_say_why(world, caplog):
    services, accounts = world
    ids = [accounts.deliver(HELP, make_mail(f"c{i}@gmail.com", HELP, f"Old question {i}")) for i in range(3)]
    sync.poll(services, "help", backfill_since=time.time() - 30 * 86400)
    assert len(services.store.list_tickets()) == 3 and acknowledged(services) == 0
    rows = rows_of(services, ids)
    assert {r["acknowledgement"]["reason"] for r in rows.values()} == {"the message came in through a backfill of older mail"}


def test_a_full_resync_after_history_expired_acknowledges_nobody(world):
    services, accounts = world
    accounts.expire_history(HELP)
    write_in(services, accounts, ["c1@gmail.com", "c2@gmail.com"])
    assert len(services.store.list_tickets()) == 2 and acknowledged(services) == 0


def test_new_mail_in_the_run_that_takes_the_connections_backfill_is_acknowledged():
    services, accounts = memory_services()
    older = accounts.deliver(HELP, make_mail("old@gmail.com", HELP, "Before connecting"))
    connected_mailbox(services, accounts, incoming={"backfill_days": 1})
    services.store.update_sync("help", services.settings.instance, {"backfill_since": time.time() - 86400})
    write_in(services, accounts, ["new@gmail.com"])
    rows = rows_of(services, [older])
    assert acknowledged(services) == 1 and "backfill" in rows[older]["acknowledgement"]["reason"]
