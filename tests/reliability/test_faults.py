"""Gmail faults and operational trouble: injected 429/500/503 with latency, history expiry in the
middle of a backlog, a token invalidated mid-poll, a deleted deletion label, a full send budget."""

from __future__ import annotations

import time

import pytest
import requests

from mailbridge.services import connect as connect_service
from mailbridge.services import labels, mailboxes, outgoing
from mailbridge.services import sync as ingest
from tests.helpers import make_mail, make_services
from tests.reliability.conftest import (ADDRESS, LEDGER, MAILBOX, backlog_messages, connect, deliver_all, fake_stats,
                                        gmail_labels, json_lines, lost_and_duplicated, outcome_view,
                                        remember_access_tokens)


def connected(fake, name=MAILBOX, address=ADDRESS, **kwargs):
    services = make_services()
    connect(services, fake.url, name, address, **kwargs)
    ingest.poll(services, name)
    return services


@pytest.mark.parametrize("count", [60, pytest.param(200, marks=pytest.mark.soak)])
def test_twenty_percent_gmail_errors_lose_nothing_and_each_retry_is_logged_once(mb_env, fake, firestore,
                                                                                storage_emulator, capsys, count):
    services = connected(fake)
    ids = deliver_all(fake.url, ADDRESS, backlog_messages(count))
    requests.post(f"{fake.url}/_fake/stats/reset", timeout=10).raise_for_status()
    requests.post(f"{fake.url}/_fake/faults", json={"error_rate": 0.2, "statuses": [429, 500, 503],
                                                    "latency_ms": 3, "seed": 20261128}, timeout=10).raise_for_status()
    capsys.readouterr()
    started = time.perf_counter()
    result = ingest.poll(make_services())
    seconds = time.perf_counter() - started
    requests.post(f"{fake.url}/_fake/faults", json={}, timeout=10).raise_for_status()
    logs = json_lines(capsys.readouterr().out)
    stats = fake_stats(fake.url)
    summary = result["mailboxes"][0]
    assert summary["outcome"] == "ok" and summary["complete"], summary
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, count) == (0, 0) and view["rows"] == count
    retry_lines = [line for line in logs if line.get("message") == "gmail retry"]
    logged = sum(line.get("count", 1) for line in retry_lines)
    assert stats["faulted"] > 0
    # every injected error was retried, and each retry appears in exactly one log line
    assert logged == summary["retries"] == stats["faulted"]
    # the pacer kept us inside the quota: Google's own limiter never answered 429
    assert stats["rate_limited"] == 0
    LEDGER.figure(f"Gmail faults ({count} messages)", messages=count, faults_injected=stats["faulted"],
                  retries_logged=logged, retry_log_lines=len(retry_lines), quota_429=stats["rate_limited"],
                  lost=0, duplicated=0, seconds=round(seconds, 1), quota_units=stats["quota_units"])


@pytest.mark.soak
def test_soak_paced_under_a_low_quota_never_hits_googles_limiter(mb_env, fake, firestore, storage_emulator,
                                                                  monkeypatch):
    monkeypatch.setenv("MAILBRIDGE_GMAIL_QUOTA_PER_MINUTE", "700")
    requests.post(f"{fake.url}/_fake/config", json={"quota_per_minute": 700}, timeout=10).raise_for_status()
    try:
        services = connected(fake)
        ids = deliver_all(fake.url, ADDRESS, backlog_messages(200))
        requests.post(f"{fake.url}/_fake/stats/reset", timeout=10).raise_for_status()
        started = time.perf_counter()
        while not ingest.poll(make_services())["mailboxes"][0].get("complete"):
            pass
        seconds = time.perf_counter() - started
        stats = fake_stats(fake.url)
    finally:
        requests.post(f"{fake.url}/_fake/config", json={"quota_per_minute": 6000}, timeout=10)
    assert stats["rate_limited"] == 0
    assert lost_and_duplicated(outcome_view(services, ids), 200) == (0, 0)
    LEDGER.figure("paced under a 700 units/min quota", messages=200, quota_units=stats["quota_units"],
                  seconds=round(seconds, 1), quota_429=0)


def test_history_expiry_in_the_middle_of_a_backlog(mb_env, fake, firestore, storage_emulator):
    services = connected(fake)
    ids = deliver_all(fake.url, ADDRESS, backlog_messages(120, tag="first"))
    later: list[str] = []

    def crash_after_first_chunk(done, total):
        # Gmail forgets history and new mail arrives while the poll is half way; then the poll dies.
        requests.post(f"{fake.url}/_fake/users/{ADDRESS}/expire-history", timeout=10).raise_for_status()
        later.extend(deliver_all(fake.url, ADDRESS, backlog_messages(10, tag="later")))
        raise RuntimeError("poll died after its first chunk")

    crashed = ingest.poll(make_services(), progress=crash_after_first_chunk)
    assert crashed["mailboxes"][0]["outcome"] == "error"
    result = ingest.poll(make_services())
    assert result["mailboxes"][0]["mode"] == "full"
    all_ids = ids + later
    view = outcome_view(services, all_ids)
    lost, duplicated = lost_and_duplicated(view, len(all_ids))
    assert (lost, duplicated) == (0, 0) and view["rows"] == len(all_ids)
    assert ingest.poll(make_services())["mailboxes"][0]["mode"] == "idle"  # incremental again: nothing new
    LEDGER.figure("history expiry mid-backlog", messages=len(all_ids), lost=lost, duplicated=duplicated)


def test_token_invalidated_mid_poll_stops_that_mailbox_only_and_resumes_after_sign_in(mb_env, fake, firestore,
                                                                                      storage_emulator):
    services = make_services()
    for name in ("one", "two", "three"):
        connect(services, fake.url, name, f"{name}@acme.example")
    ingest.poll(services)
    delivered = {name: deliver_all(fake.url, f"{name}@acme.example",
                                   backlog_messages(120 if name == "two" else 30, f"{name}@acme.example", tag=name))
                 for name in ("one", "two", "three")}

    def password_change_of_two(done, total):
        if total == 120 and done == 50:
            requests.post(f"{fake.url}/_fake/users/two@acme.example/invalidate-tokens", timeout=10).raise_for_status()
            requests.post(f"{fake.url}/_fake/users/two@acme.example/expire-access-tokens", timeout=10)

    result = ingest.poll(make_services(), progress=password_change_of_two)
    outcomes = {m["mailbox"]: m["outcome"] for m in result["mailboxes"]}
    assert outcomes == {"one": "ok", "two": "error", "three": "ok"}, result
    for name in ("one", "three"):
        assert lost_and_duplicated(outcome_view(services, delivered[name], name), 30) == (0, 0)
    cred = services.store.get_mailbox("two")["credentials"][0]
    assert cred["status"] == "disconnected" and "invalid_grant" in cred["last_error"]
    done_before = outcome_view(services, delivered["two"], "two")["rows"]
    assert 0 < done_before < 120
    # The admin signs in again: mail that waited during the outage is ingested, none twice.
    from tests.helpers import follow_consent

    params = follow_consent(services, fake.url, "two")
    LEDGER.secret(params.get("code"))
    connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))
    ingest.poll(make_services(), "two")
    view = outcome_view(services, delivered["two"], "two")
    assert lost_and_duplicated(view, 120) == (0, 0) and view["rows"] == 120
    LEDGER.figure("token invalidated mid-poll", mailboxes=3, messages=180, rows_before_revocation=done_before,
                  others="ok", lost_after_sign_in=0, duplicated=0)


def test_deleted_deletion_label_is_reported_and_mail_left_in_place(mb_env, fake, firestore, storage_emulator):
    services = connected(fake)
    label = labels.create_label(services, MAILBOX, "Processed by helpdesk")
    labels.set_deletion_label(services, MAILBOX, "Processed by helpdesk")
    mailboxes.set_mailbox_setting(services, MAILBOX, "incoming.after_processing", "delete")
    mailbox = services.store.get_mailbox(MAILBOX)
    tokens = requests.post(f"{fake.url}/_fake/oauth/tokens", json={
        "email": ADDRESS, "client_id": mailbox["credentials"][0]["client_id"]}, timeout=10).json()
    LEDGER.secret(tokens["access_token"])
    LEDGER.secret(tokens["refresh_token"])
    deleted = requests.delete(f"{fake.url}/gmail/v1/users/me/labels/{label['id']}",
                              headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert deleted.status_code in (200, 204), deleted.text
    ids = deliver_all(fake.url, ADDRESS, backlog_messages(12))
    result = ingest.poll(make_services())
    assert result["mailboxes"][0]["outcome"] == "ok", result
    view = outcome_view(services, ids)
    assert lost_and_duplicated(view, 12) == (0, 0) and view["rows"] == 12
    in_gmail = gmail_labels(fake.url)
    assert all("INBOX" in in_gmail[gid] for gid in ids), "mail must stay in the inbox"
    shown = mailboxes.view(services, services.store.get_mailbox(MAILBOX))
    assert shown["last_error"] and label["id"] in shown["last_error"], shown["last_error"]
    LEDGER.figure("deleted deletion label", messages=12, left_in_inbox=12, status_error=shown["last_error"])


def test_full_send_budget_skips_acknowledgements_and_queues_replies_without_failing_the_poll(
        mb_env, fake, firestore, storage_emulator):
    services = connected(fake, acknowledge=True)
    mailboxes.set_mailbox_setting(services, MAILBOX, "outgoing.daily_send_budget", "2")
    ids = deliver_all(fake.url, ADDRESS, [make_mail(f"c{i}@customer.example", ADDRESS, f"Budget {i}")
                                          for i in range(5)])
    result = ingest.poll(make_services())
    assert result["mailboxes"][0]["outcome"] == "ok" and result["totals"]["created"] == 5
    sent = requests.get(f"{fake.url}/_fake/users/{ADDRESS}/sent", timeout=10).json()
    assert len(sent) == 1  # acknowledgements may use 80 % of the budget: one of two (docs/outbox.md)
    ticket = services.store.list_tickets()[0]
    assert outgoing.send_reply(services, ticket["id"], "We are on it.")["status"] == "sent"
    waiting = outgoing.send_reply(services, ticket["id"], "One more thing.")
    assert waiting["status"] == "queued" and "daily send budget reached" in waiting["error"]
    LEDGER.record("exception send budget", waiting["error"])
    assert len(requests.get(f"{fake.url}/_fake/users/{ADDRESS}/sent", timeout=10).json()) == 2
    assert outcome_view(services, ids)["rows"] == 5
    remember_access_tokens(services)
    LEDGER.figure("full send budget", tickets=5, budget=2, acknowledgements_sent=1, reply="sent; the next one queued until tomorrow")
