"""Polling: mail becomes tickets exactly once, threaded, loop-safe (emulator + fake Gmail)."""

import threading

import pytest
import requests

from mailbridge.services import connect as connect_service
from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, make_services

ADDRESS = "help@acme.example"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    ingest.poll(services)  # first poll: records the history id
    return services


def fake_messages(fake, address=ADDRESS):
    return requests.get(f"{fake.url}/_fake/users/{address}/messages", timeout=10).json()


def rows(services):
    return services.store.inbound_log("help")


def test_mail_before_connection_is_not_ingested(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    requests.post(f"{fake.url}/_fake/users", json={"email": ADDRESS}, timeout=10)
    deliver(fake.url, ADDRESS, make_mail("old@customer.example", ADDRESS, "Old mail"))
    connect_mailbox(services, fake.url, "help", ADDRESS)
    ingest.poll(services)
    ingest.poll(services)
    assert services.store.list_tickets() == []
    assert rows(services) == []


def test_new_mail_becomes_tickets_with_one_inbound_row_each(services, fake):
    for i in range(3):
        deliver(fake.url, ADDRESS, make_mail(f'"Customer {i}" <c{i}@customer.example>', ADDRESS, f"Problem {i}"))
    result = ingest.poll(services)
    assert result["totals"]["created"] == 3
    tickets = services.store.list_tickets()
    assert sorted(t["number"] for t in tickets) == [1, 2, 3]
    assert {t["requester"]["email"] for t in tickets} == {"c0@customer.example", "c1@customer.example", "c2@customer.example"}
    log = rows(services)
    assert len(log) == 3 and {r["outcome"] for r in log} == {"created"}
    # default after_processing = mark_read
    assert all("UNREAD" not in m["labelIds"] for m in fake_messages(fake))
    # a second poll changes nothing
    assert ingest.poll(services)["totals"]["created"] == 0
    assert len(rows(services)) == 3


def test_reply_by_header_updates_the_ticket_and_reopens_it(services, fake):
    first = make_mail('"Dana" <dana@customer.example>', ADDRESS, "Printer jammed", message_id="<m1@customer.example>")
    deliver(fake.url, ADDRESS, first)
    ingest.poll(services)
    ticket = services.store.list_tickets()[0]
    services.store.update_ticket(ticket["id"], {"status": "closed"})
    deliver(fake.url, ADDRESS, make_mail('"Dana" <dana@customer.example>', ADDRESS, "Re: Printer jammed",
                                         "Still broken\n\nOn Mon, x wrote:\n> old", In_Reply_To="<m1@customer.example>",
                                         References="<m1@customer.example>", Cc="boss@customer.example"))
    result = ingest.poll(services)
    assert result["totals"] == {"created": 0, "updated": 1, "ignored": 0, "quarantined": 0, "failed": 0}
    from mailbridge.services import tickets

    view = tickets.show(services, ticket["id"])
    assert view["status"] == "open"
    inbound = [m for m in view["messages"] if m["direction"] == "in"]
    assert len(inbound) == 2
    assert "boss@customer.example" in view["participants"]
    assert inbound[1]["text"].strip().startswith("Still broken")


def test_subject_tag_threads_only_for_participants(services, fake):
    deliver(fake.url, ADDRESS, make_mail("dana@customer.example", ADDRESS, "Need help"))
    ingest.poll(services)
    deliver(fake.url, ADDRESS, make_mail("dana@customer.example", ADDRESS, "Re: [#1] Need help", "more"))
    deliver(fake.url, ADDRESS, make_mail("stranger@evil.example", ADDRESS, "[#1] Need help", "let me in"))
    ingest.poll(services)
    outcomes = sorted(r["outcome"] for r in rows(services))
    assert outcomes == ["created", "created", "updated"]
    assert len(services.store.list_tickets()) == 2


def test_auto_replies_and_bounces_are_ignored_with_reason(services, fake):
    deliver(fake.url, ADDRESS, make_mail("dana@customer.example", ADDRESS, "Out of office", Auto_Submitted="auto-replied"))
    deliver(fake.url, ADDRESS, make_mail("MAILER-DAEMON@mx.example", ADDRESS, "Undelivered Mail Returned to Sender"))
    deliver(fake.url, ADDRESS, make_mail(ADDRESS, ADDRESS, "Our own mail"))
    deliver(fake.url, ADDRESS, make_mail("news@list.example", ADDRESS, "Weekly news", Precedence="bulk"))
    result = ingest.poll(services)
    assert result["totals"]["ignored"] == 4
    assert services.store.list_tickets() == []
    assert all(r["reason"] for r in rows(services))


def test_admin_ignore_rules(services, fake):
    mailboxes.set_mailbox_setting(services, "help", "incoming.ignore_senders", "@spam.example")
    deliver(fake.url, ADDRESS, make_mail("x@spam.example", ADDRESS, "Buy now"))
    assert ingest.poll(services)["totals"]["ignored"] == 1


def test_history_expiry_falls_back_to_full_sync_without_duplicates(services, fake):
    deliver(fake.url, ADDRESS, make_mail("a@customer.example", ADDRESS, "One"))
    ingest.poll(services)
    deliver(fake.url, ADDRESS, make_mail("b@customer.example", ADDRESS, "Two"))
    requests.post(f"{fake.url}/_fake/users/{ADDRESS}/expire-history", timeout=10).raise_for_status()
    result = ingest.poll(services)
    assert result["mailboxes"][0]["mode"] == "full"
    assert len(services.store.list_tickets()) == 2
    assert len(rows(services)) == 2


def test_concurrent_polls_do_not_duplicate(services, fake):
    for i in range(20):
        deliver(fake.url, ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"Issue {i}"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(ingest.poll(make_services()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ingest.poll(services)
    assert len(services.store.list_tickets()) == 20
    assert len(rows(services)) == 20


class CrashAfter(Exception):
    pass


@pytest.mark.parametrize("step", ["modify_many", "reserve_ticket_numbers", "commit"])
def test_crash_between_steps_loses_and_duplicates_nothing(services, fake, step):
    for i in range(5):
        deliver(fake.url, ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"Issue {i}"))
    from google.cloud.firestore_v1.batch import WriteBatch

    from mailbridge.adapters.gmail import Gmail

    targets = {"modify_many": (Gmail, "modify_many"), "reserve_ticket_numbers": (type(services.store), "reserve_ticket_numbers"),
               "commit": (WriteBatch, "commit")}
    owner, name = targets[step]
    original = getattr(owner, name)

    def crash_after(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        raise CrashAfter(f"injected crash after {name}")

    setattr(owner, name, crash_after)
    try:
        crashed = ingest.poll(make_services())
    finally:
        setattr(owner, name, original)
    assert any(m["outcome"] == "error" for m in crashed["mailboxes"])
    # the lease is released even on a crash; run again
    ingest.poll(services)
    tickets = services.store.list_tickets()
    assert len(tickets) == 5
    assert len({t["requester"]["email"] for t in tickets}) == 5
    assert len(rows(services)) == 5
    assert all("UNREAD" not in m["labelIds"] for m in fake_messages(fake))


def test_malformed_message_still_gets_one_row(services, fake):
    deliver(fake.url, ADDRESS, b"\xff\xfe garbage without headers \x00\x01")
    deliver(fake.url, ADDRESS, b"From: =?utf-8?q?broken\r\nSubject: =?x-unknown?b?????=\r\nContent-Type: multipart/mixed\r\n\r\nno boundary")
    ingest.poll(services)
    log = rows(services)
    # Mail that cannot be parsed cleanly still becomes a ticket (with its defects noted): a
    # customer's message is never dropped because their mail program is broken.
    assert [r["outcome"] for r in log] == ["created", "created"]
    assert len(services.store.list_tickets()) == 2


def test_backfill_window_chosen_before_connecting_takes_older_inbox_mail_once(mb_env, fake, firestore, storage_emulator):
    import time as _time

    services = make_services()
    requests.post(f"{fake.url}/_fake/users", json={"email": ADDRESS}, timeout=10)
    now_ms = int(_time.time() * 1000)
    deliver(fake.url, ADDRESS, make_mail("recent@customer.example", ADDRESS, "Two days old"),
            internalDate=str(now_ms - 2 * 86400 * 1000))
    deliver(fake.url, ADDRESS, make_mail("ancient@customer.example", ADDRESS, "Ten days old"),
            internalDate=str(now_ms - 10 * 86400 * 1000))
    from tests.helpers import CLIENT_SECRET, client_id_for, follow_consent, register_google_side

    register_google_side(fake.url, services, ADDRESS, client_id_for("help"))
    mailboxes.add_mailbox(services, "help", ADDRESS)
    mailboxes.set_mailbox_setting(services, "help", "incoming.backfill_days", "7")
    mailboxes.add_credentials(services, "help", "production", client_id_for("help"), CLIENT_SECRET)
    params = follow_consent(services, fake.url, "help")
    connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))
    first = ingest.poll(services)
    assert first["mailboxes"][0]["mode"] == "backfill"
    assert [t["requester"]["email"] for t in services.store.list_tickets()] == ["recent@customer.example"]
    assert ingest.poll(services)["mailboxes"][0]["mode"] == "idle"  # nothing new, no backfill again
    assert len(rows(services)) == 1


def test_cli_backfill_since_ingests_older_inbox_mail_with_a_progress_bar(mb_env, fake, firestore, storage_emulator, capsys):
    import time as _time

    from mailbridge import bootstrap
    from mailbridge.cli import main as cli_main

    services = make_services()
    requests.post(f"{fake.url}/_fake/users", json={"email": ADDRESS}, timeout=10)
    old_ms = int((_time.time() - 3 * 86400) * 1000)
    for i in range(3):  # already in the inbox when the mailbox is connected
        deliver(fake.url, ADDRESS, make_mail(f"old{i}@customer.example", ADDRESS, f"Old {i}"), internalDate=str(old_ms))
    connect_mailbox(services, fake.url, "help", ADDRESS)
    assert ingest.poll(services)["totals"]["created"] == 0  # not taken on its own
    bootstrap.reset()
    try:
        assert cli_main(["poll", "help", "--since", "7d"]) == 0
        assert cli_main(["poll", "--since", "7d"]) == 2  # a backfill names its mailbox
    finally:
        bootstrap.reset()
    captured = capsys.readouterr()
    assert "backfilling help" in captured.err
    assert "created 3" in captured.out
    assert len(services.store.list_tickets()) == 3
