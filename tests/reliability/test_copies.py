"""One mail, one ticket against the Firestore emulator and the fake Google server: the same mail
delivered to two connected mailboxes, both synced at the same moment, makes exactly one ticket
per mail (the copy key's claim in the chunk's batch, domain/copies.py)."""

from __future__ import annotations

from mailbridge.services import sync as ingest
from tests.helpers import deliver, make_mail, make_services
from tests.reliability.conftest import LEDGER, connect
from tests.reliability.test_concurrency import run_together

SUPPORT, SALES = "support@acme.example", "sales@acme.example"


def test_two_concurrent_syncs_of_two_mailboxes_make_one_ticket_per_mail(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect(services, fake.url, "support", SUPPORT)
    connect(services, fake.url, "sales", SALES)
    ingest.poll(services)
    count = 30
    for i in range(count):
        raw = make_mail(f"customer{i}@customer.example", SUPPORT, f"Order {i}", "where is it?", Cc=SALES,
                        message_id=f"<order-{i}@customer.example>")
        deliver(fake.url, SUPPORT, raw)
        deliver(fake.url, SALES, raw)
    results = run_together([lambda: ingest.sync_mailbox(make_services(), "support"),
                            lambda: ingest.sync_mailbox(make_services(), "sales")])
    assert [r["outcome"] for r in results] == ["ok", "ok"]
    tickets = services.store.list_tickets(limit=0)
    assert len(tickets) == count
    rows = {name: services.store.inbound_log(name, limit=0) for name in ("support", "sales")}
    assert all(len(found) == count for found in rows.values())
    by_ticket = {}
    for found in rows.values():
        for row in found:
            by_ticket.setdefault(row["ticket_id"], []).append(row["outcome"])
    assert sorted(by_ticket) == sorted(t["id"] for t in tickets)
    assert all(sorted(outcomes) == ["created", "updated"] for outcomes in by_ticket.values())
    assert all(t["message_count"] == 1 for t in tickets)
    LEDGER.figure("one mail at two mailboxes, synced at once", mails=count, tickets=len(tickets),
                  created_by={name: sum(r["outcome"] == "created" for r in found) for name, found in rows.items()})
