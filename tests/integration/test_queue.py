"""The work queue on the real Pub/Sub emulator (docs/architecture.md, "Queue"): the `poll`
function's tick publishes one task per mailbox through adapters/pubsub.py, the emulator's push
subscription delivers them to `push`, which syncs each mailbox; Gmail notifications are paused,
so only the queued path can find the mail."""

from __future__ import annotations

import time
import uuid

import requests

from mailbridge.services import mailboxes
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, wait_for


def test_a_tick_fans_out_through_the_emulator_and_each_mailbox_is_synced_once(mb_env_push, fake, functions_url_push):
    services = make_services()
    assert services.settings.work_topic, "mb_env_push must set MAILBRIDGE_WORK_TOPIC"
    names = [f"q-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for name in names:
        connect_mailbox(services, fake.url, name, f"{name}@acme.example")
        mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    fake.post("/_fake/notifications", json={"paused": True})
    for name in names:
        for i in range(2):
            deliver(fake.url, f"{name}@acme.example", make_mail(f"c{i}@customer.example", f"{name}@acme.example",
                                                                f"Queued {name} {i}"))
    answer = requests.post(functions_url_push + "/poll", json={}, timeout=120)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["queued"] == len(body["mailboxes"]) >= 3
    assert {m["mailbox"] for m in body["mailboxes"]} >= set(names)
    assert {m["outcome"] for m in body["mailboxes"]} == {"queued"}
    for name in names:
        wait_for(lambda: len(services.store.inbound_log(name)) >= 2, 120, f"{name}'s two rows")
    time.sleep(2)  # a duplicate delivery must not add anything
    for name in names:
        rows = services.store.inbound_log(name)
        assert sorted(r["outcome"] for r in rows) == ["created", "created"], name
        assert len(services.store.list_tickets(mailbox=name)) == 2
        state = services.store.get_sync(name, services.settings.instance)
        assert state.get("last_tick") == body["tick"] and state.get("lease_owner") is None


def test_a_sync_task_published_by_the_adapter_reaches_push(mb_env_push, fake, functions_url_push):
    from mailbridge.adapters.pubsub import PubSubQueue

    services = make_services()
    name = f"q-{uuid.uuid4().hex[:8]}"
    connect_mailbox(services, fake.url, name, f"{name}@acme.example")
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    fake.post("/_fake/notifications", json={"paused": True})
    deliver(fake.url, f"{name}@acme.example", make_mail("c@customer.example", f"{name}@acme.example", "One task"))
    PubSubQueue(services.settings).publish("sync", name)
    wait_for(lambda: services.store.inbound_log(name), 120, "the row made by the task")
    assert [t["subject"] for t in services.store.list_tickets(mailbox=name)] == ["One task"]
