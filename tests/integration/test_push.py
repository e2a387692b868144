"""Gmail push (issue 11): watch + the real Pub/Sub emulator + the `push` function over HTTP.

The fake Gmail publishes `{emailAddress, historyId}` to the emulator's topic `gmail-push`; a
push subscription delivers them to a functions server started with push on (fixture
`functions_url_push`). Each test uses its own mailbox name and address: the functions server
lives for the whole session and caches credentials per mailbox.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
from pathlib import Path
import threading
import time
import uuid

import pytest
import requests

from mailbridge.services import connect as connect_service
from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, make_services


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"timed out after {timeout}s waiting for {message}"
    return value


def notifications_for(fake, address: str) -> list[dict]:
    return [n for n in fake.get("/_fake/notifications") if n["emailAddress"] == address]


def envelope(payload) -> dict:
    data = payload if isinstance(payload, str) else base64.b64encode(json.dumps(payload).encode()).decode()
    return {"message": {"data": data, "messageId": "1", "publishTime": "2026-01-01T00:00:00Z"},
            "subscription": "projects/mailbridge-test/subscriptions/gmail-push-sub"}


@pytest.fixture
def box(mb_env_push, fake, firestore, storage_emulator):
    """A mailbox connected with push on: the watch starts at the connection, no poll yet."""
    suffix = uuid.uuid4().hex[:8]
    name, address = f"push-{suffix}", f"push-{suffix}@acme.example"
    services = make_services()
    assert services.settings.pubsub_topic, "mb_env_push must set MAILBRIDGE_PUBSUB_TOPIC"
    connect_mailbox(services, fake.url, name, address)
    # 200 acknowledgements would cost 20,000 quota units: not what these tests are about.
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    return services, name, address


def inbound_count(services, name) -> int:
    return len(services.store.inbound_log(name, limit=5000))


def test_watch_starts_at_connection_and_mailbox_show_has_its_expiry(box, fake):
    services, name, address = box
    view = mailboxes.view(services, services.store.get_mailbox(name))
    assert view["watch_expiration"], view
    assert view["watch_expiration"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    stats = fake.get("/_fake/stats")["users"][address]["calls"]
    assert stats.get("gmail.users.watch") == 1
    # the first poll does not watch again (renewal is daily)
    ingest.poll(services, name)
    assert fake.get("/_fake/stats")["users"][address]["calls"].get("gmail.users.watch") == 1


def test_mail_after_connection_becomes_a_ticket_without_poll(box, fake):
    services, name, address = box
    deliver(fake.url, address, make_mail('"Dana" <dana@customer.example>', address, "Pushed printer problem"))
    tickets = wait_for(lambda: services.store.list_tickets(mailbox=name), 20, message="a ticket made by push")
    assert [t["subject"] for t in tickets] == ["Pushed printer problem"]
    assert notifications_for(fake, address), "the fake published no notification"
    rows = services.store.inbound_log(name)
    assert [r["outcome"] for r in rows] == ["created"]
    # a reply in the same conversation updates the ticket, still without poll
    first = services.store.ticket_messages(tickets[0]["id"])[0]["message"]["message_id"]
    deliver(fake.url, address, make_mail('"Dana" <dana@customer.example>', address, "Re: Pushed printer problem",
                                         "still jammed", In_Reply_To=first, References=first))
    wait_for(lambda: inbound_count(services, name) == 2, 20, message="the reply")
    assert len(services.store.list_tickets(mailbox=name)) == 1
    assert {r["outcome"] for r in services.store.inbound_log(name)} == {"created", "updated"}
    # post-processing ran (default mark_read); it follows the commit, so the row can come first
    wait_for(lambda: all("UNREAD" not in m["labelIds"] for m in fake.get(f"/_fake/users/{address}/messages")), 20,
             message="both messages marked read")


def pushed_counts(log_text: str, name: str) -> int:
    created = 0
    for line in log_text.splitlines():
        if line.startswith("{") and '"push: synchronized"' in line:
            entry = json.loads(line)
            if entry.get("mailbox") == name:
                created += (entry.get("counts") or {}).get("created", 0)
    return created


def test_burst_of_200_with_push_and_a_concurrent_poll_makes_exactly_200_tickets(box, fake, _stack):
    services, name, address = box
    total = 200
    marker = len(_push_log(_stack))
    done = threading.Event()
    polled_during_burst = threading.Event()
    poll_results = []

    def poller():
        poll_services = make_services()  # its own clients, like a separate scheduler run
        while not done.is_set():
            result = ingest.poll(poll_services, name)
            poll_results.append(result)
            if any(m["outcome"] == "ok" for m in result["mailboxes"]):
                polled_during_burst.set()
            time.sleep(0.3)
        poll_results.append(ingest.poll(poll_services, name))

    thread = threading.Thread(target=poller)
    session = requests.Session()

    def one(i):
        raw = make_mail(f'"Customer {i}" <c{i}@burst.example>', address, f"Burst request {i}")
        session.post(f"{fake.url}/_fake/users/{address}/messages", params={"labelIds": "INBOX,UNREAD"},
                     data=raw, headers={"Content-Type": "message/rfc822"}, timeout=30).raise_for_status()

    # The burst comes in three parts, each waiting for a state instead of a time, so a loaded
    # machine cannot leave one side without work: push alone ingests the start, the poller joins
    # while mail keeps arriving and both compete for the lease, and the tail only comes once a
    # poll has won the lease in the middle of the burst ("push and poll share one mailbox").
    head, tail = 40, 20
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(head)))
            wait_for(lambda: inbound_count(services, name) > 0, 120, message="push ingesting the burst")
            thread.start()
            list(pool.map(one, range(head, total - tail)))
            assert polled_during_burst.wait(timeout=180), "no poll won the lease during the burst"
            list(pool.map(one, range(total - tail, total)))
    finally:
        done.set()
        if thread.is_alive():
            thread.join(timeout=120)
    assert not thread.is_alive()
    assert all(m["outcome"] in ("ok", "skipped") for r in poll_results for m in r["mailboxes"]), poll_results
    wait_for(lambda: inbound_count(services, name) >= total, 60, message="200 inbound rows")
    time.sleep(2)  # late redeliveries must not add anything
    tickets = services.store.list_tickets(mailbox=name, limit=1000)
    rows = services.store.inbound_log(name, limit=1000)
    assert len(rows) == total
    assert {r["outcome"] for r in rows} == {"created"}
    assert len(tickets) == total
    # Unique, each ticket once; two processes reserving blocks during a burst may leave gaps
    # (adapters/firestore/numbers.py, docs/architecture.md "No hot documents").
    numbers = [t["number"] for t in tickets]
    assert len(set(numbers)) == total and min(numbers) >= 1, numbers
    assert len({t["subject"] for t in tickets}) == total
    # push and poll shared the work through one lease (which one wins how much is a race)
    by_push = pushed_counts(_push_log(_stack)[marker:], name)
    by_poll = sum(m.get("counts", {}).get("created", 0) for r in poll_results for m in r["mailboxes"])
    assert by_push > 0, (by_push, by_poll)
    assert by_push + by_poll == total
    assert polled_during_burst.is_set() and any(m["outcome"] == "ok" for r in poll_results[:-1] for m in r["mailboxes"]), \
        "no poll ran during the burst"


def test_a_dropped_notification_is_caught_by_the_next_poll(box, fake, pubsub_emulator, functions_url_push, _stack):
    services, name, address = box
    import stacklib

    ingest.poll(services, name)
    _, subscriber = stacklib._pubsub_clients(pubsub_emulator)
    path = f"projects/{services.settings.project}/subscriptions/{stacklib.PUSH_SUBSCRIPTION}"
    before = len(notifications_for(fake, address))
    subscriber.delete_subscription(subscription=path, timeout=10)
    try:
        deliver(fake.url, address, make_mail("lost@customer.example", address, "Nobody told the push function"))
        wait_for(lambda: len(notifications_for(fake, address)) > before, 10, message="the (dropped) notification")
        time.sleep(1.5)
        assert services.store.list_tickets(mailbox=name) == [], "no subscription: nothing may arrive by push"
    finally:
        stacklib.create_push_subscription(pubsub_emulator, _stack.stack.topic, services.settings.project,
                                          stacklib.PUSH_SUBSCRIPTION, functions_url_push + "/push")
    result = ingest.poll(services, name)
    assert result["totals"]["created"] == 1
    assert [t["subject"] for t in services.store.list_tickets(mailbox=name)] == ["Nobody told the push function"]
    # and push works again afterwards
    deliver(fake.url, address, make_mail("next@customer.example", address, "Push is back"))
    wait_for(lambda: len(services.store.list_tickets(mailbox=name)) == 2, 20, message="the next pushed ticket")


def _push_log(_stack) -> str:
    return Path(_stack.stack.extra["functions_push"].log).read_text(errors="replace")


@pytest.mark.parametrize("body, reason", [
    (envelope({"emailAddress": "nobody-here@acme.example", "historyId": 12345}), "no mailbox for this address"),
    (envelope("%%% not base64 %%%"), "malformed notification"),
    (envelope({"historyId": 1}), "malformed notification"),
    (envelope({"emailAddress": "x@acme.example", "historyId": "soon"}), "malformed notification"),
    ({"hello": "world"}, "malformed notification"),
    (None, "malformed notification"),
])
def test_unknown_or_garbage_notifications_are_acknowledged_and_logged(box, functions_url_push, _stack, body, reason):
    marker = len(_push_log(_stack))
    if body is None:
        response = requests.post(functions_url_push + "/push", data=b"\x00garbage{", timeout=30,
                                 headers={"Content-Type": "application/json"})
    else:
        response = requests.post(functions_url_push + "/push", json=body, timeout=30)
    assert 200 <= response.status_code < 300, response.text
    assert response.json()["status"] == "acknowledged"
    assert reason in response.json()["reason"]
    wait_for(lambda: f"push: {reason}" in _push_log(_stack)[marker:], 5, message="the log line")


def test_garbage_published_to_the_topic_is_acknowledged_once(box, pubsub_emulator, functions_url_push, _stack):
    import stacklib

    services, _name, _address = box
    publisher, _ = stacklib._pubsub_clients(pubsub_emulator)
    token = uuid.uuid4().hex
    marker = len(_push_log(_stack))
    publisher.publish(_stack.stack.topic, json.dumps({"emailAddress": f"ghost-{token}@acme.example",
                                                      "historyId": 7}).encode()).result(timeout=10)
    publisher.publish(_stack.stack.topic, b"not json at all " + token.encode()).result(timeout=10)
    wait_for(lambda: f"ghost-{token}" in _push_log(_stack)[marker:], 15, message="the unknown-address delivery")
    wait_for(lambda: _push_log(_stack)[marker:].count("push: malformed notification") >= 1, 15,
             message="the malformed delivery")
    time.sleep(3)  # acknowledged: no redelivery
    assert _push_log(_stack)[marker:].count(f"ghost-{token}") == 1


def test_a_stale_notification_is_acknowledged_without_work(box, fake, functions_url_push):
    services, name, address = box
    ingest.poll(services, name)
    stored = int(services.store.get_sync(name, services.settings.instance)["history_id"])
    response = requests.post(functions_url_push + "/push",
                             json=envelope({"emailAddress": address.upper(), "historyId": stored - 1}), timeout=30)
    assert response.status_code == 200
    assert "already synchronized" in response.json()["reason"]


def test_disconnect_stops_the_watch(box, fake):
    services, name, address = box
    deliver(fake.url, address, make_mail("one@customer.example", address, "Before disconnect"))
    wait_for(lambda: services.store.list_tickets(mailbox=name), 20, message="the pushed ticket")
    wait_for(lambda: notifications_for(fake, address), 5, message="a notification")
    mailboxes.disconnect(services, name)
    view = mailboxes.view(services, services.store.get_mailbox(name))
    assert view["watch_expiration"] is None
    assert view["credentials"][0]["status"] == "not_connected"
    assert fake.get("/_fake/stats")["users"][address]["calls"].get("gmail.users.stop") == 1
    time.sleep(1.5)  # let the notifier flush what was pending before the stop
    count = len(notifications_for(fake, address))
    deliver(fake.url, address, make_mail("two@customer.example", address, "After disconnect"))
    time.sleep(2.5)  # the fake publishes at most once a second: give it time to (wrongly) publish
    assert len(notifications_for(fake, address)) == count
    assert [t["subject"] for t in services.store.list_tickets(mailbox=name)] == ["Before disconnect"]


def test_reconnecting_restarts_the_watch_and_push_uses_the_new_grant(box, fake):
    """The functions server cached the first grant's tokens; disconnect revokes that grant.
    After signing in again (elsewhere), push must use the new grant, not mark it revoked."""
    from tests.helpers import follow_consent

    services, name, address = box
    deliver(fake.url, address, make_mail("one@customer.example", address, "First grant"))
    wait_for(lambda: services.store.list_tickets(mailbox=name), 20, message="the first pushed ticket")
    mailboxes.disconnect(services, name)
    params = follow_consent(services, fake.url, name)
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    view = mailboxes.view(services, services.store.get_mailbox(name))
    assert view["status"] == "connected" and view["watch_expiration"]
    deliver(fake.url, address, make_mail("two@customer.example", address, "Second grant"))
    wait_for(lambda: len(services.store.list_tickets(mailbox=name)) == 2, 20, message="the ticket after reconnecting")
    cred = mailboxes.own_credential(services, services.store.get_mailbox(name))
    assert cred["status"] == "connected" and cred["last_error"] is None


def test_an_instance_with_cached_tokens_uses_the_grant_of_a_reconnection_made_elsewhere(box, fake):
    """Two function instances: A polled (and cached the grant's tokens); B disconnects (which
    revokes that grant) and signs in again. A's next poll must use the new grant instead of
    refreshing the revoked one and marking the fresh connection disconnected."""
    from tests.helpers import follow_consent

    services, name, address = box  # instance B
    instance_a = make_services()
    assert ingest.poll(instance_a, name)["mailboxes"][0]["outcome"] == "ok"
    mailboxes.disconnect(services, name)
    params = follow_consent(services, fake.url, name)
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    result = ingest.poll(instance_a, name)
    assert result["mailboxes"][0]["outcome"] == "ok", result
    cred = mailboxes.own_credential(services, services.store.get_mailbox(name))
    assert (cred["status"], cred["last_error"]) == ("connected", None)
