"""Ticket events on in-memory ports (docs/events.md): every change stores exactly one event in its
own commit and is published after it, in each ticket's order; a failed publish waits in the log
and is retried by the queue and the tick's sweep; the log is listed, replayed with the same ids,
tailed."""

from __future__ import annotations

import json
from pathlib import Path
import time

import jsonschema_rs  # pinned in requirements.txt
import pytest

from mailbridge.errors import ConfigError, InvalidInput
from mailbridge.services import events, mailboxes, outbox, outgoing, push, stored_bodies, sync, tickets
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"gmail_quota_units_per_minute": 15000, "acknowledge_new": False})
    return services, accounts


def mail(accounts, sender: str, subject: str, **headers) -> None:
    accounts.deliver(ADDRESS, make_mail(sender, ADDRESS, subject, **headers))


def stored(services) -> list[dict]:
    """Every stored event, in the order the log lists them."""
    return [e for d in sorted(services.store.collection("events").values(), key=lambda d: d["created_at"])
            for e in d["events"]]


def published(services, **match) -> list[dict]:
    return [e for e in services.event_topic.published if all(e.get(k) == v for k, v in match.items())]


def new_ticket(services, accounts, sender: str = "ann@example.org", subject: str = "Broken printer") -> dict:
    mail(accounts, sender, subject)
    sync.poll(services, "help")
    return max(services.store.list_tickets(), key=lambda t: t["number"])


def send_tasks(services) -> None:
    for task in services.queue.take():
        if task["kind"] == "send":
            outbox.handle_send_task(services, task["mailbox"], task)


# ------------------------------------------------------------------ one event per change
def test_a_new_ticket_is_one_created_event_carrying_its_first_message(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    (event,) = published(services)
    assert (event["type"], event["subject"], event["sequence"]) == ("ticket.created", ticket["id"], 1)
    assert event["data"]["message"]["subject"] == "Broken printer"
    assert event["data"]["ticket"]["requester"]["email"] == "ann@example.org"
    assert [e["id"] for e in stored(services)] == [event["id"]]
    assert services.store.events_waiting("help") == 0


def test_an_events_message_says_how_gmail_authenticated_it_as_the_ticket_shows_it(world):
    """The rows read back for an event carry the row's authentication, and a chunk's own events
    (rendered from the rows it wrote) say the same as the stored log."""
    services, accounts = world
    ticket = new_ticket(services, accounts)
    (event,) = published(services)
    (shown,) = tickets.show(services, ticket["id"])["messages"]
    assert event["data"]["message"]["authentication"] == shown["authentication"]
    assert shown["authentication"]["verdict"] == "pass"
    listed, _more = events.list_events(services, ticket=ticket["id"])
    assert listed == [event]


def test_a_syncs_own_events_are_published_without_reading_their_rows_back(world):
    services, accounts = world
    store, asked = services.store, []

    class Watched:
        def __getattr__(self, name):
            if name == "event_message_rows":
                asked.append(name)
            return getattr(store, name)

    services._overrides["store"] = Watched()
    ticket = new_ticket(services, accounts)
    assert [e["subject"] for e in published(services)] == [ticket["id"]] and asked == []


def test_customer_mail_joining_a_ticket_is_message_added_with_the_next_sequence(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    mail(accounts, "ann@example.org", f"Re: Broken printer [#{ticket['number']}]")
    sync.poll(services, "help")
    assert [(e["type"], e["sequence"]) for e in published(services, subject=ticket["id"])] == [
        ("ticket.created", 1), ("ticket.message_added", 2)]


def test_two_messages_of_one_ticket_in_one_chunk_are_two_events_in_order(world):
    services, accounts = world
    mail(accounts, "ann@example.org", "Order 1")
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    mail(accounts, "ann@example.org", f"Re: Order 1 [#{ticket['number']}]")
    mail(accounts, "ann@example.org", f"Re: Order 1 again [#{ticket['number']}]")
    sync.poll(services, "help")
    events_of_ticket = published(services, subject=ticket["id"])
    assert [e["sequence"] for e in events_of_ticket] == [1, 2, 3]
    assert len({e["id"] for e in events_of_ticket}) == 3
    assert [e["data"]["message"]["subject"] for e in events_of_ticket[1:]] == [
        f"Re: Order 1 [#{ticket['number']}]", f"Re: Order 1 again [#{ticket['number']}]"]


def test_an_agents_reply_is_reply_sent_with_gmails_ids_when_it_leaves(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    outgoing.send_reply(services, ticket["id"], "We are on it", idempotency_key="r1", wait=False)
    assert published(services, type="ticket.reply_sent") == []  # queued is no change yet
    send_tasks(services)
    (event,) = published(services, type="ticket.reply_sent")
    record = services.store.get_outbound("r1")
    assert (event["id"], event["sequence"]) == ("r1~sent", 2)
    assert event["data"]["outbound"]["gmail_message_id"] == record["gmail_message_id"]
    assert event["data"]["message"]["gmail_message_id"] == record["gmail_message_id"]
    assert event["data"]["message"]["direction"] == "out"


def test_an_acknowledgement_that_leaves_is_reply_sent_too(world):
    services, accounts = world
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": True})
    ticket = new_ticket(services, accounts)
    send_tasks(services)
    assert [e["type"] for e in published(services, subject=ticket["id"])] == ["ticket.created", "ticket.reply_sent"]
    assert published(services, type="ticket.reply_sent")[0]["data"]["outbound"]["kind"] == "acknowledgement"


def test_status_team_type_and_participants_changes_are_ticket_updated_each(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    tickets.set_status(services, ticket["id"], "closed")
    tickets.set_field(services, ticket["id"], "team", "billing")
    tickets.set_field(services, ticket["id"], "type", "refund")
    tickets.set_field(services, ticket["id"], "team", "billing")  # no change: no event, no write
    updates = published(services, type="ticket.updated")
    assert [list(e["data"]["changes"]) for e in updates] == [["status"], ["team"], ["type"]]
    assert [e["sequence"] for e in updates] == [2, 3, 4]
    assert updates[-1]["data"]["ticket"]["type"] == "refund" and updates[-1]["data"]["ticket"]["status"] == "closed"
    assert services.store.get_ticket(ticket["id"])["event_sequence"] == 4


def test_a_confirmed_participant_is_ticket_updated(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    services.store.update_ticket(ticket["id"], {"suggested_participants": [{"email": "boss@example.org"}]})
    tickets.confirm_participant(services, ticket["id"], "boss@example.org")
    (event,) = published(services, type="ticket.updated")
    assert event["data"]["changes"]["participants"]["to"] == ["ann@example.org", "boss@example.org"]


def _count_look_ups(services, monkeypatch) -> list:
    looked = []
    original = services.store.pending_events
    monkeypatch.setattr(services.store, "pending_events", lambda *a, **k: looked.append(a) or original(*a, **k))
    return looked


def test_new_conversations_publish_their_events_without_a_look_up_and_a_reply_looks_once(world, monkeypatch):
    """A chunk whose events all concern tickets it created publishes them as committed: nothing
    older can wait for a new ticket, so the look-up for waiting events (a query on the events
    log) is skipped (docs/events.md). A message joining an existing ticket looks first, so an
    older event of that ticket left waiting goes out before it; a clean run does not look again."""
    services, accounts = world
    looked = _count_look_ups(services, monkeypatch)
    mail(accounts, "ann@example.org", "Broken printer")
    mail(accounts, "bob@example.org", "VPN down")
    sync.poll(services, "help")
    assert looked == [] and len(published(services, type="ticket.created")) == 2
    sync.poll(services, "help")  # nothing new: no chunk, no look-up
    assert looked == []
    assert services.store.events_waiting("help") == 0
    looked.clear()
    first = next(r["message_id"] for r in services.store.inbound_log("help") if r["subject"] == "Broken printer")
    mail(accounts, "ann@example.org", "Re: Broken printer", In_Reply_To=first)
    sync.poll(services, "help")
    assert len(looked) == 1 and len(published(services, type="ticket.message_added")) == 1
    assert services.store.events_waiting("help") == 0


def test_an_older_event_left_waiting_still_goes_out_first_for_its_ticket(world, monkeypatch):
    """A writer that died after its commit left a ticket's event waiting: the next message joining
    that ticket looks it up and publishes it before its own, in the ticket's sequence."""
    services, accounts = world
    ticket = new_ticket(services, accounts)
    (created,) = published(services, type="ticket.created")
    services.event_topic.failing = 1  # the status change's publish fails: its event waits
    tickets.set_status(services, ticket["id"], "closed")
    assert services.store.events_waiting("help") == 1
    first = next(r["message_id"] for r in services.store.inbound_log("help") if r["subject"] == "Broken printer")
    mail(accounts, "ann@example.org", "Re: Broken printer", In_Reply_To=first)
    sync.poll(services, "help")
    assert [e["sequence"] for e in published(services) if e["subject"] == created["subject"]] == [1, 2, 3]
    assert services.store.events_waiting("help") == 0


def _publishes(services, monkeypatch) -> list[int]:
    publishes = []
    original = services.event_topic.publish
    monkeypatch.setattr(services.event_topic, "publish", lambda batch: publishes.append(len(batch)) or original(batch))
    return publishes


def test_each_chunk_publishes_its_events_at_once(world, monkeypatch):
    """The lag from commit to publish is one request (docs/events.md): every chunk of an ordinary
    run publishes right after its commit, without a look-up when it only created tickets."""
    from mailbridge.services.sync import run

    services, accounts = world
    monkeypatch.setattr(run, "CHUNK", 2)
    looked, publishes = _count_look_ups(services, monkeypatch), _publishes(services, monkeypatch)
    for i in range(5):
        mail(accounts, f"c{i}@example.org", f"Question {i}")
    sync.poll(services, "help")
    assert publishes == [2, 2, 1] and looked == []
    assert [e["type"] for e in published(services)] == ["ticket.created"] * 5


def test_a_careful_runs_chunks_publish_at_most_once_a_second_and_the_run_publishes_the_rest(world, monkeypatch):
    """After a run died, the next goes one message per chunk (careful mode, docs/reliability.md):
    its chunks publish at most once a second, and whatever waits when the run ends is published
    then, in order, without a look-up when every chunk only created tickets."""
    services, accounts = world
    looked, publishes = _count_look_ups(services, monkeypatch), _publishes(services, monkeypatch)
    for i in range(5):
        mail(accounts, f"c{i}@example.org", f"Question {i}")
    services.store.update_sync("help", "production", {"abandoned_runs": 1})  # the last run died
    sync.poll(services, "help")
    assert publishes == [1, 4] and looked == []  # the first chunk's, then the rest at the run's end
    assert [e["type"] for e in published(services)] == ["ticket.created"] * 5
    assert services.store.events_waiting("help") == 0


def test_a_credential_set_that_loses_its_token_is_mailbox_disconnected(world):
    services, accounts = world
    services.google.mark_revoked("help", "production", "invalid_grant: token revoked")
    events.after_commit(services, "help")
    (event,) = published(services, type="mailbox.disconnected")
    assert event["subject"] == "mailboxes/help" and event["data"]["mailbox"]["reason"].startswith("invalid_grant")


@pytest.mark.parametrize("admin_action", [
    lambda services: mailboxes.disconnect(services, "help"),  # the CLI's disconnect and the admin page's button
    lambda services: mailboxes.remove_credentials(services, "help", "production"),
    lambda services: mailboxes.update_credentials(services, "help", "production", client_id="new.apps.googleusercontent.com"),
], ids=["disconnect", "remove-credentials", "new-client-id"])
def test_an_admin_disconnecting_a_credential_set_publishes_mailbox_disconnected_at_once(world, admin_action):
    services, accounts = world
    admin_action(services)
    (event,) = published(services, type="mailbox.disconnected")
    assert event["subject"] == "mailboxes/help" and event["data"]["mailbox"]["instance"] == "production"
    assert services.store.events_waiting("help") == 0


def test_a_disconnect_that_cannot_publish_leaves_the_event_waiting_for_an_events_task(world):
    services, accounts = world
    services.event_topic.failing = 1
    mailboxes.disconnect(services, "help")
    assert published(services) == [] and services.store.events_waiting("help") == 1
    assert [(t["kind"], t["mailbox"]) for t in services.queue.take()] == [("events", "help")]


def quarantines(services, gmail_id: str) -> list[dict]:
    return [e for e in stored(services) if e["type"] == "inbound.quarantined" and e["subject"] == f"inbound/help~{gmail_id}"]


def test_a_big_message_whose_attempts_never_finish_is_one_inbound_quarantined(world):
    services, accounts = world
    for _ in range(services.settings.max_attempts + 2):  # the attempts after the quarantine change nothing
        services.store.begin_attempt("help", "g-big", services.settings.max_attempts, "never finished")
    events.after_commit(services, "help")
    (event,) = published(services, type="inbound.quarantined")
    assert event["subject"] == "inbound/help~g-big" and event["data"]["inbound"]["outcome"] == "quarantined"
    assert len(quarantines(services, "g-big")) == 1


def test_a_message_that_keeps_failing_is_one_inbound_quarantined_when_the_sync_ends(world):
    services, accounts = world
    gmail_id = accounts.deliver(ADDRESS, make_mail("ann@example.org", ADDRESS, "Broken"))
    gmail = accounts.gmail(ADDRESS)
    services._overrides["gmail_factory"] = lambda mailbox, credential: gmail
    gmail.fail_fetch.add(gmail_id)
    for _ in range(services.settings.max_attempts + 1):
        services.store.update_sync("help", services.settings.instance, {"history_id": "100"})
        sync.poll(services, "help")
    (event,) = published(services, type="inbound.quarantined")
    assert event["data"]["inbound"]["reason"].startswith("fetch failed") and len(quarantines(services, gmail_id)) == 1


def test_a_message_that_can_never_be_stored_is_one_inbound_quarantined_and_its_retry_another(world, monkeypatch):
    services, accounts = world
    monkeypatch.setattr(stored_bodies, "ROW_BODY_BUDGET", 10**9)  # its body stays in the row: over 1 MiB
    big = accounts.deliver(ADDRESS, make_mail("log@example.org", ADDRESS, "Forwarded log", "张三 写道:\n" * 75_000))
    sync.poll(services, "help")
    (event,) = published(services, type="inbound.quarantined")
    assert event["subject"] == f"inbound/help~{big}" and "DocumentTooLarge" in event["data"]["inbound"]["reason"]
    assert services.store.events_waiting("help") == 0  # published when the sync ended
    sync.retry_quarantined(services, "help", big)  # quarantined again: a second quarantine, a second event
    sync.poll(services, "help")
    assert [e["sequence"] for e in quarantines(services, big)] == [1, 2]
    assert len({e["id"] for e in quarantines(services, big)}) == 2


# ------------------------------------------------------------------ publishing, never lost
def test_a_failed_publish_leaves_the_events_waiting_and_asks_the_queue_to_retry(world):
    services, accounts = world
    services.event_topic.failing = 1  # after the chunk's commit (a clean run does not try again at its end)
    ticket = new_ticket(services, accounts)
    assert published(services) == [] and services.store.events_waiting("help") == 1
    tasks = [t for t in services.queue.take() if t["kind"] == "events"]
    assert len(tasks) == 1 and {t["mailbox"] for t in tasks} == {"help"}
    tasks.append(dict(tasks[0]))  # Pub/Sub delivers at least once: a second delivery finds nothing
    assert [push.on_task(services, task).status for task in tasks] == [200, 200]
    assert [e["subject"] for e in published(services)] == [ticket["id"]]
    assert services.store.events_waiting("help") == 0


def test_an_events_task_that_cannot_publish_asks_for_redelivery(world):
    services, accounts = world
    services.event_topic.failing = 2  # the chunk's publish, then the task's first try
    new_ticket(services, accounts)
    task = [t for t in services.queue.take() if t["kind"] == "events"][0]
    assert push.on_task(services, task).status == 503
    assert push.on_task(services, task).status == 200


def test_the_ticks_sweep_queues_an_events_task_for_events_left_waiting(world, monkeypatch):
    services, accounts = world
    services.event_topic.failing = 1
    services.queue.publish = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("queue down too"))
    new_ticket(services, accounts)
    del services.queue.publish  # the instance attribute: the queue works again
    assert events.sweep(services) == []  # too recent: its writer may still be publishing
    later = time.time() + events.SWEEP_AGE_S + 1
    monkeypatch.setattr(events.time, "time", lambda: later)
    assert events.sweep(services) == ["help"]
    services.queue.deliver(services, kinds=("events",))
    assert len(published(services)) == 1


def test_a_later_event_publishes_the_earlier_one_waiting_first(world):
    services, accounts = world
    services.event_topic.failing = 1
    ticket = new_ticket(services, accounts)
    services.queue.take()
    tickets.set_status(services, ticket["id"], "closed")
    assert [e["sequence"] for e in published(services, subject=ticket["id"])] == [1, 2]


def test_without_an_events_topic_events_are_stored_and_wait(world):
    services, accounts = world
    services._overrides["event_topic"] = None
    new_ticket(services, accounts)
    assert services.store.events_waiting("help") == 1
    assert events.sweep(services) == []


# ------------------------------------------------------------------ the log
def test_the_log_lists_a_tickets_events_oldest_first_as_published(world):
    services, accounts = world
    first = new_ticket(services, accounts)
    other = new_ticket(services, accounts, "bob@example.org", "Other question")
    tickets.set_status(services, first["id"], "closed")
    listed, more = events.list_events(services, ticket=first["id"])
    assert [e["type"] for e in listed] == ["ticket.created", "ticket.updated"] and not more
    assert listed == published(services, subject=first["id"])
    newest, more = events.list_events(services, limit=1)
    assert [e["type"] for e in newest] == ["ticket.updated"] and more
    assert {e["subject"] for e in events.list_events(services)[0]} == {first["id"], other["id"]}
    assert events.list_events(services, since=time.time() + 60)[0] == []
    with pytest.raises(InvalidInput):
        events.list_events(services, ticket="seven")


def test_replay_publishes_the_same_events_again_with_the_same_ids(world):
    services, accounts = world
    ticket = new_ticket(services, accounts)
    tickets.set_status(services, ticket["id"], "closed")
    before = list(services.event_topic.published)
    assert events.replay(services, since=time.time() - 60, ticket=ticket["id"]) == 2
    assert services.event_topic.published[len(before):] == before
    services._overrides["event_topic"] = None
    with pytest.raises(ConfigError):
        events.replay(services, since=0)


def test_tail_hands_each_event_over_once_and_stops_at_its_count(world):
    services, accounts = world
    new_ticket(services, accounts)
    new_ticket(services, accounts, "bob@example.org", "Other")
    seen = []
    assert events.tail(services, seen.append, count=2, timeout_s=30) == 2
    assert [e["type"] for e in seen] == ["ticket.created", "ticket.created"]
    assert services.event_subscription.acked == ["0", "1"]
    assert events.tail(services, seen.append, timeout_s=0.01) == 0


def test_every_kind_of_event_matches_the_documented_json_schema(world):
    services, accounts = world
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": True})
    ticket = new_ticket(services, accounts)
    send_tasks(services)
    tickets.set_field(services, ticket["id"], "team", "billing")
    for _ in range(services.settings.max_attempts + 1):
        services.store.begin_attempt("help", "g-big", services.settings.max_attempts, "never finished")
    services.google.mark_revoked("help", "production", "invalid_grant")
    events.after_commit(services, "help")
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "event.schema.json").read_text())
    validator = jsonschema_rs.validator_for(schema)
    assert {e["type"] for e in published(services)} == {"ticket.created", "ticket.reply_sent", "ticket.updated",
                                                        "inbound.quarantined", "mailbox.disconnected"}
    for event in published(services):
        assert validator.is_valid(event), (event["type"], [str(e) for e in validator.iter_errors(event)][:3])
    assert not validator.is_valid({**published(services)[0], "sequence": 0})
