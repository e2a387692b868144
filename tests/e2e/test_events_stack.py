"""Ticket events end to end on the stack's Pub/Sub emulator (docs/events.md): a subscriber with
message ordering on the events topic sees, for mail ingested by the functions (push and poll), an
agent's reply sent by the outbox task and a status change, exactly the log's events — each id at
least once, each ticket's events in sequence order — read through `scripts/mailbridge events tail`."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from mailbridge.services import mailboxes
import stacklib  # on sys.path through tests/conftest.py
from tests.conftest import TEST_PROJECT
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, post_link, run_cli, wait_for

CUSTOMER = "dana@customer.example"


@pytest.fixture
def subscription(mb_env_push, pubsub_emulator, monkeypatch) -> str:
    """A pull subscription of this test's own, with ordering: it sees the events published from now on."""
    path = stacklib.create_events_subscription(pubsub_emulator, TEST_PROJECT, f"events-e2e-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("MAILBRIDGE_EVENTS_SUBSCRIPTION", path)
    return path


def tail(capsys, expected_ids: set[str], rounds: int = 8) -> list[dict]:
    """`events tail` until every expected id arrived (duplicates allowed): the events, as received."""
    received: list[dict] = []
    for _ in range(rounds):
        code, out, err = run_cli(["events", "tail", "--timeout", "8"], capsys)
        assert code == 0, err
        received += [json.loads(line) for line in out.splitlines() if line.strip()]
        if expected_ids <= {e["id"] for e in received}:
            break
    return received


def test_a_subscriber_gets_every_change_once_by_id_and_each_ticket_in_order(
        mb_env_push, fake, functions_url_push, subscription, capsys, tmp_path):
    services = make_services()
    assert services.settings.events_topic, "mb_env_push must set MAILBRIDGE_EVENTS_TOPIC"
    name = f"ev-{uuid.uuid4().hex[:8]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    assert run_cli(["mailbox", "set", name, "outgoing.acknowledge_new", "false"], capsys)[0] == 0
    assert run_cli(["poll", name], capsys)[0] == 0  # records where the mailbox's history starts

    first = make_mail(CUSTOMER, address, "Printer jammed", "It jams on every page.")
    deliver(fake.url, address, first)
    deliver(fake.url, address, make_mail("lee@buyer.example", address, "Invoice question", "The total is wrong."))
    wait_for(lambda: run_cli(["poll", name], capsys)[0] == 0 and len(services.store.inbound_log(name)) >= 2, 90,
             "two tickets")
    ticket = next(t for t in services.store.list_tickets(mailbox=name) if t["subject"] == "Printer jammed")
    first_id = next(line.split(":", 1)[1].strip() for line in first.decode().splitlines()
                    if line.lower().startswith("message-id:"))
    deliver(fake.url, address, make_mail(CUSTOMER, address, "Re: Printer jammed", "Still jammed.",
                                         In_Reply_To=first_id, References=first_id))
    wait_for(lambda: run_cli(["poll", name], capsys)[0] == 0 and len(services.store.inbound_log(name)) >= 3, 90,
             "the customer's answer")
    body = tmp_path / "reply.txt"
    body.write_text("We are sending a technician.\n")
    code, out, err = run_cli(["reply", ticket["id"], "--body-file", str(body)], capsys)  # sent by the push function
    assert code == 0 and "sent" in out, out + err
    assert run_cli(["tickets", "close", ticket["id"]], capsys)[0] == 0

    code, out, _err = run_cli(["events", "list", "--json", "--limit", "0"], capsys)
    logged = [e for e in json.loads(out) if e["data"].get("ticket", {}).get("mailbox") == name]
    assert [e["type"] for e in logged if e["subject"] == ticket["id"]] == [
        "ticket.created", "ticket.message_added", "ticket.reply_sent", "ticket.updated"]
    received = [e for e in tail(capsys, {e["id"] for e in logged}) if e["id"] in {x["id"] for x in logged}]

    assert {e["id"] for e in received} == {e["id"] for e in logged}
    first_seen: dict[str, dict] = {}
    for event in received:
        first_seen.setdefault(event["id"], event)
    for subject in {e["subject"] for e in logged}:
        in_arrival_order = [e["sequence"] for e in first_seen.values() if e["subject"] == subject]
        assert in_arrival_order == sorted(in_arrival_order), f"ticket {subject} out of order: {in_arrival_order}"
    by_id = {e["id"]: e for e in logged}
    assert all(event == by_id[event["id"]] for event in received), "published and listed events differ"
    reply = next(e for e in logged if e["type"] == "ticket.reply_sent")
    assert reply["data"]["outbound"]["gmail_message_id"] == reply["data"]["message"]["gmail_message_id"]
    assert [m["id"] for m in requests.get(f"{fake.url}/_fake/users/{address}/sent", timeout=10).json()] == [
        reply["data"]["outbound"]["gmail_message_id"]]
    code, out, _err = run_cli(["mailbox", "show", name, "--json"], capsys)
    assert json.loads(out)["events_waiting"] == 0


def test_replay_publishes_a_tickets_events_again_with_the_same_ids(mb_env_push, fake, functions_url_push,
                                                                   subscription, capsys):
    services = make_services()
    name = f"ev-{uuid.uuid4().hex[:8]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    assert run_cli(["mailbox", "set", name, "outgoing.acknowledge_new", "false"], capsys)[0] == 0
    assert run_cli(["poll", name], capsys)[0] == 0
    deliver(fake.url, address, make_mail(CUSTOMER, address, "Replay me", "Hello."))
    wait_for(lambda: run_cli(["poll", name], capsys)[0] == 0 and services.store.list_tickets(mailbox=name), 90,
             "the ticket")
    (ticket,) = services.store.list_tickets(mailbox=name)
    code, out, _err = run_cli(["events", "list", "--ticket", ticket["id"], "--json"], capsys)
    listed = json.loads(out)
    assert [e["type"] for e in listed] == ["ticket.created"]
    ids = {e["id"] for e in listed}
    assert {e["id"] for e in tail(capsys, ids) if e["subject"] == ticket["id"]} == ids  # published after its commit

    code, out, err = run_cli(["events", "replay", "--since", "1h", "--ticket", ticket["id"]], capsys)
    assert (code, out.strip()) == (0, "replayed 1 event"), err
    again = [e for e in tail(capsys, ids) if e["subject"] == ticket["id"]]
    assert again and all(e == listed[0] for e in again)  # the same event, the same id


def test_mailbox_show_and_the_admin_page_say_how_many_events_wait(mb_env, fake, functions_url, capsys):
    services = make_services()  # mb_env has no events topic: every event waits in the log
    name = f"ev-{uuid.uuid4().hex[:8]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    assert run_cli(["mailbox", "set", name, "outgoing.acknowledge_new", "false"], capsys)[0] == 0
    assert run_cli(["poll", name], capsys)[0] == 0
    for n in (1, 2):
        deliver(fake.url, address, make_mail(f"c{n}@customer.example", address, f"Waiting {n}", "Hello."))
    assert run_cli(["poll", name], capsys)[0] == 0

    code, out, _err = run_cli(["mailbox", "show", name, "--json"], capsys)
    assert (code, json.loads(out)["events_waiting"]) == (0, 2)
    assert "events waiting to be published: 2" in run_cli(["mailbox", "show", name], capsys)[1]
    session = requests.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303
    page = session.get(f"{functions_url}/admin/mailboxes/{name}", timeout=30).text
    assert '<dd id="events-waiting">2 events waiting to be published</dd>' in page


def test_bad_event_arguments_are_one_line_and_exit_2(mb_env, capsys):
    for args in (["events", "list", "--since", "yesterday"], ["events", "list", "--ticket", "abc"],
                 ["events", "replay"], ["events", "list", "--limit", "-1"], ["events", "tail", "--count", "0"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (args, err)
