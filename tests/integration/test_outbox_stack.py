"""The outbox against the Firestore emulator and the fake Gmail (docs/outbox.md): a burst is
ingested before any acknowledgement leaves, each leaves once; a send killed at each stage; a 429
storm on messages.send only; the daily budget reached mid-burst; a disconnected mailbox keeps
its outbox. The queue is the in-memory one, so each test decides when a "send" task runs."""

import json
import time

import pytest
import requests

from mailbridge.bootstrap import bootstrap
from mailbridge.config import Settings
from mailbridge.services import mailboxes, outbox, outgoing
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, run_cli
from tests.memory.queue import MemoryQueue

ADDRESS = "help@acme.example"
KEY = "help~production"


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so no handler in the code under test can swallow it."""


def stats(fake) -> dict:
    return requests.get(f"{fake.url}/_fake/stats", timeout=10).json()["users"].get(ADDRESS, {})


def send_calls(fake) -> int:
    return stats(fake).get("calls", {}).get("gmail.users.messages.send", 0)


def sent(fake) -> list[dict]:
    return requests.get(f"{fake.url}/_fake/users/{ADDRESS}/sent", timeout=10).json()


def faults(fake, **config) -> None:
    requests.post(f"{fake.url}/_fake/faults", json=config, timeout=10).raise_for_status()


def make(**settings):
    return bootstrap(Settings.from_env(**settings), queue=MemoryQueue())


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    ingest.poll(services, "help")  # the first poll records the history id
    services.queue.take()
    return services


def burst(services, fake, count: int) -> None:
    for i in range(count):
        deliver(fake.url, ADDRESS, make_mail(f"customer{i}@example.org", ADDRESS, f"Question {i}"))
    ingest.poll(services, "help")


def run_send_tasks(services) -> list[dict]:
    return [outbox.handle_send_task(services, t["mailbox"], t) for t in services.queue.take() if t["kind"] == "send"]


def records(services) -> list[dict]:
    return services.store.outbox_records("help", "production", statuses=("queued", "sending", "failed", "sent", "skipped"))


def test_a_burst_is_ingested_before_any_acknowledgement_leaves_and_each_leaves_once(services, fake):
    burst(services, fake, 6)
    assert len(services.store.list_tickets()) == 6 and send_calls(fake) == 0
    run_send_tasks(services)
    outbox.handle_send_task(services, "help")  # a redelivered task
    assert send_calls(fake) == 6 and len(sent(fake)) == 6
    assert {r["status"] for r in records(services)} == {"sent"}


@pytest.mark.parametrize("stage", ["before_gmail", "after_gmail_before_record", "after_record"])
def test_a_send_killed_at_each_stage_is_sent_exactly_once(services, fake, stage):
    burst(services, fake, 1)
    services.queue.take()
    real_factory = services.gmail_for

    class Dying:
        def __init__(self, gmail):
            self._gmail = gmail

        def __getattr__(self, name):
            return getattr(self._gmail, name)

        def send(self, raw, thread_id=None):
            if stage == "before_gmail":
                raise SimulatedCrash("killed before calling Gmail")
            response = self._gmail.send(raw, thread_id)
            if stage == "after_gmail_before_record":
                raise SimulatedCrash("killed after Gmail accepted the message")
            return response

    dying = make(project=services.settings.project)
    dying._overrides["store"] = services.store
    dying._overrides["gmail_factory"] = lambda mailbox, credential: Dying(real_factory(mailbox, credential))
    if stage == "after_record":
        original = services.store.commit_sent

        def die(*args, **kwargs):
            original(*args, **kwargs)
            raise SimulatedCrash("killed after the sent record was committed, before its event was published")

        services.store.commit_sent = die
    try:
        with pytest.raises(SimulatedCrash):
            outbox.handle_send_task(dying, "help")
    finally:
        if stage == "after_record":
            services.store.commit_sent = original
    # a killed process renews nothing: its claims run out
    (record,) = records(services)
    services.store.update_outbound(record["key"], {"lease_until": 0})
    services.store.change_send_pacing(KEY, lambda bucket: (None, {"drain_owner": None, "drain_until": 0}))
    outbox.handle_send_task(services, "help")
    (record,) = records(services)
    assert record["status"] == "sent" and len(sent(fake)) == 1
    assert record["gmail_message_id"] == sent(fake)[0]["id"]
    # exactly one ticket.reply_sent event, with Gmail's id, committed with the sent record
    reply_events = [e for d in services.store.event_documents() for e in d["events"] if e["type"] == "ticket.reply_sent"]
    assert [e["data"]["outbound"]["gmail_message_id"] for e in reply_events] == [record["gmail_message_id"]]


def test_a_429_storm_on_messages_send_is_honoured_not_answered_with_more_calls(services, fake):
    burst(services, fake, 3)
    services.queue.take()
    calls_before = stats(fake).get("calls", {})
    faults(fake, error_rate=1.0, statuses=[429], methods=["messages.send"], seed=1)
    impatient = make(push_time_budget_s=2.0)
    impatient._overrides["store"] = services.store
    clients = []
    impatient._overrides["gmail_factory"] = lambda m, c: clients.append(services.gmail_for(m, c)) or clients[-1]
    try:
        with pytest.raises(outbox.RetryLater):
            outbox.handle_send_task(impatient, "help")
    finally:
        faults(fake, error_rate=0)
    assert clients[0].calls["messages.send"] == 1 and send_calls(fake) == 0  # one refused call, then it waited
    assert {(r["status"], r["attempts"]) for r in records(services)} == {("queued", 0)}
    assert services.store.get_send_pacing(KEY)["blocked_until"] > time.time() - 1
    calls = stats(fake).get("calls", {})
    assert {m: n for m, n in calls.items() if "send" not in m} == {m: n for m, n in calls_before.items() if "send" not in m}
    services.store.change_send_pacing(KEY, lambda bucket: (None, {"blocked_until": 0}))
    outbox.handle_send_task(services, "help")
    assert len(sent(fake)) == 3 and send_calls(fake) == 3


def test_the_daily_budget_reached_mid_burst_skips_acknowledgements_and_queues_replies(services, fake):
    mailboxes.set_mailbox_setting(services, "help", "outgoing.daily_send_budget", "4")
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledgement_share_percent", "50")
    burst(services, fake, 4)
    run_send_tasks(services)
    assert len(sent(fake)) == 2
    assert sorted(r["status"] for r in records(services)) == ["sent", "sent", "skipped", "skipped"]
    ticket = services.store.list_tickets()[0]
    replies = [outgoing.send_reply(services, ticket["id"], f"Answer {i}", wait=False) for i in range(3)]
    run_send_tasks(services)
    statuses = [services.store.get_outbound(r["idempotency_key"])["status"] for r in replies]
    assert statuses == ["sent", "sent", "queued"] and len(sent(fake)) == 4
    view = outbox.status(services, services.store.get_mailbox("help"))
    assert (view["queued"], view["sent_today"], view["daily_budget"]) == (1, 4, 4)
    assert "daily send budget reached" in view["last_error"]


def test_a_disconnected_mailbox_keeps_its_full_outbox_and_mailbox_show_says_why(services, fake, capsys):
    from mailbridge import bootstrap as bootstrap_module
    from mailbridge.cli import main

    burst(services, fake, 3)
    services.store.update_credential("help", "production", {"status": "disconnected",
                                                            "last_error": "Google refused the refresh token"})
    (summary,) = run_send_tasks(services)
    assert summary["status"] == "waiting" and send_calls(fake) == 0
    capsys.readouterr()
    bootstrap_module.reset()
    assert main(["mailbox", "show", "help", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = json.loads("\n".join(lines[lines.index("{"):]))
    assert shown["outbox"]["queued"] == 3 and "disconnected" in shown["outbox"]["last_error"]
    view = outbox.status(services, services.store.get_mailbox("help"))
    assert view["queued"] == 3 and "disconnected" in view["last_error"]

    services.store.update_credential("help", "production", {"status": "connected", "last_error": None})
    ingest.poll(services, "help")  # the tick wakes the outbox
    run_send_tasks(services)
    assert len(sent(fake)) == 3




def test_outbox_cli_lists_drops_and_refuses_with_one_line(services, fake, capsys):
    burst(services, fake, 2)
    code, out, _err = run_cli(["outbox", "list", "help", "--json"], capsys)
    lines = out.splitlines()
    rows = json.loads("\n".join(lines[lines.index("["):]))
    assert code == 0 and [r["status"] for r in rows] == ["queued", "queued"]
    assert all(r["reason"] is None and r["kind"] == "acknowledgement" for r in rows)
    code, _out, err = run_cli(["outbox", "drop", rows[0]["id"]], capsys)
    assert code == 2 and err.count("\n") == 1 and "--yes" in err
    code, _out, _err = run_cli(["outbox", "drop", rows[0]["id"], "--yes"], capsys)
    assert code == 0 and services.store.get_outbound(rows[0]["id"])["status"] == "dropped"
    code, _out, err = run_cli(["outbox", "retry", "no-such-id"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no outbox record" in err
    code, out, _err = run_cli(["outbox", "list", "--limit", "1", "--json"], capsys)
    lines = out.splitlines()
    assert [r["id"] for r in json.loads("\n".join(lines[lines.index("["):]))] == [rows[1]["id"]]
