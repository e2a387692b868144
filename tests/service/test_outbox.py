"""The outbox on in-memory ports: sends leave through the "send" task, never ingestion; replies
before acknowledgements; the quota bucket's share, ingestion first, 429 honoured; the daily
budget; exactly once across redeliveries and a lost record update (docs/outbox.md)."""

from datetime import datetime, timedelta, timezone

import pytest

from mailbridge.errors import GmailError, InvalidInput, NotFound
from mailbridge.services import outbox, outgoing, sync
from mailbridge.services.outbox import pacing
from mailbridge.services.outgoing import budget
from mailbridge.services.sync import handoffs
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
FAST = {"gmail_quota_units_per_minute": 15000}  # a full bucket holds 15 sends: no test waits for refill


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing=dict(FAST))
    return services, accounts, services.queue


def burst(services, accounts, count: int) -> list[dict]:
    for i in range(count):
        accounts.deliver(ADDRESS, make_mail(f"customer{i}@example.org", ADDRESS, f"Question {i}"))
    sync.poll(services, "help")
    return sorted(services.store.list_tickets(), key=lambda t: t["number"])


def sent(accounts) -> list[bytes]:
    return [m["raw"] for m in accounts.account(ADDRESS)["sent"]]


def run_tasks(services, queue) -> list[dict]:
    return [outbox.handle_send_task(services, task["mailbox"], task) for task in queue.take() if task["kind"] == "send"]


def test_ingestion_only_queues_acknowledgements_and_asks_for_one_send_task(world):
    services, accounts, queue = world
    burst(services, accounts, 3)
    assert sent(accounts) == []
    assert [(t["kind"], t["mailbox"]) for t in queue.pending] == [("send", "help")]
    assert {r["status"] for r in services.store.collection("outbound").values()} == {"queued"}


def test_the_send_task_sends_every_queued_acknowledgement_once(world):
    services, accounts, queue = world
    burst(services, accounts, 3)
    (summary,) = run_tasks(services, queue)
    assert summary["sent"] == 3 and len(sent(accounts)) == 3


def test_a_redelivered_send_task_sends_nothing_twice(world):
    services, accounts, queue = world
    burst(services, accounts, 2)
    tasks = queue.take()
    for task in tasks + tasks:
        outbox.handle_send_task(services, task["mailbox"], task)
    assert len(sent(accounts)) == 2


def test_a_reply_queued_behind_acknowledgements_is_sent_first(world):
    services, accounts, queue = world
    tickets = burst(services, accounts, 4)
    outgoing.send_reply(services, tickets[0]["id"], "An agent's answer", wait=False)
    run_tasks(services, queue)
    assert b"An agent's answer" in sent(accounts)[0]
    assert len(sent(accounts)) == 5


def test_reply_without_waiting_answers_queued_with_its_id_and_sends_nothing(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    queue.take()
    result = outgoing.send_reply(services, ticket["id"], "Later", wait=False, idempotency_key="reply-nw")
    assert (result["status"], result["idempotency_key"]) == ("queued", "reply-nw")
    assert sent(accounts) == [] and (queue.pending[0]["kind"], queue.pending[0]["mailbox"]) == ("send", "help")


def test_a_send_whose_record_update_was_lost_is_found_in_gmail_not_sent_again(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    queue.take()
    store = services.store
    original = store.commit_sent

    def lose_the_sent_commit(key, decide):
        if key == "reply-x1":
            raise RuntimeError("worker killed after Gmail answered")
        return original(key, decide)

    store.commit_sent = lose_the_sent_commit
    outgoing.send_reply(services, ticket["id"], "Exactly once", idempotency_key="reply-x1", wait=False)
    run_tasks(services, queue)
    store.commit_sent = original
    assert store.get_outbound("reply-x1")["status"] == "sending"
    store.update_outbound("reply-x1", {"lease_until": 0})  # the dead worker's claim expires
    outbox.handle_send_task(services, "help")
    assert sum(b"Exactly once" in raw for raw in sent(accounts)) == 1
    assert store.get_outbound("reply-x1")["status"] == "sent"
    # its ticket.reply_sent event was written once, with the send recorded from Gmail, and published
    assert [e["id"] for e in services.event_topic.published if e["type"] == "ticket.reply_sent"].count("reply-x1~sent") == 1


def test_a_429_is_honoured_with_its_retry_time_and_is_not_an_attempt(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    queue.take()
    store = services.store
    store.update_outbound(f"ack-{ticket['id']}", {"status": "dropped"})
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    stamp = later.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    accounts.fail_send.append(GmailError(f"Gmail send failed: 429 rateLimitExceeded User-rate limit exceeded.  "
                                         f"Retry after {stamp}", 429, "rateLimitExceeded"))
    outgoing.send_reply(services, ticket["id"], "Busy", idempotency_key="reply-r1", wait=False)
    with pytest.raises(outbox.RetryLater):
        run_tasks(services, queue)
    record = store.get_outbound("reply-r1")
    assert (record["status"], record["attempts"], accounts.send_calls) == ("queued", 0, 1)
    assert store.get_send_pacing("help~production")["blocked_until"] == pytest.approx(later.timestamp(), abs=0.01)


def test_a_blocked_mailbox_sends_nothing_until_the_retry_time(world):
    services, accounts, queue = world
    burst(services, accounts, 1)
    queue.take()
    services.store.change_send_pacing("help~production", lambda b: (None, {"blocked_until": 4_102_444_800}))
    with pytest.raises(outbox.RetryLater):
        outbox.handle_send_task(services, "help")
    assert accounts.send_calls == 0


def test_acknowledgements_stop_at_their_share_of_the_daily_budget_and_are_skipped_with_the_reason(world):
    services, accounts, queue = world
    services.store.update_mailbox("help", {"outgoing.daily_send_budget": 5, "outgoing.acknowledgement_share_percent": 60})
    burst(services, accounts, 5)
    run_tasks(services, queue)
    records = services.store.collection("outbound").values()
    assert len(sent(accounts)) == 3
    skipped = [r for r in records if r["status"] == "skipped"]
    assert len(skipped) == 2 and all("acknowledgements may use 3 of 5" in r["last_error"] for r in skipped)


def test_a_reply_past_the_daily_budget_waits_for_the_next_utc_day_never_dropped(world):
    services, accounts, queue = world
    services.store.update_mailbox("help", {"outgoing.daily_send_budget": 1, "outgoing.acknowledge_new": False})
    (ticket,) = burst(services, accounts, 1)
    outgoing.send_reply(services, ticket["id"], "First", idempotency_key="reply-d1", wait=False)
    outgoing.send_reply(services, ticket["id"], "Second", idempotency_key="reply-d2", wait=False)
    run_tasks(services, queue)
    record = services.store.get_outbound("reply-d2")
    assert record["status"] == "queued" and "queued until" in record["last_error"]
    assert record["next_attempt_at"] == budget.next_utc_midnight(datetime.now(timezone.utc).timestamp())
    assert services.store.get_mailbox("help")["outbox_wake_at"] == record["next_attempt_at"]


def test_a_disconnected_mailbox_keeps_its_outbox_and_says_why(world):
    services, accounts, queue = world
    burst(services, accounts, 3)
    services.store.update_credential("help", "production", {"status": "disconnected", "last_error": "invalid_grant"})
    (summary,) = run_tasks(services, queue)
    status = outbox.status(services, services.store.get_mailbox("help"))
    assert summary["status"] == "waiting" and sent(accounts) == []
    assert status["queued"] == 3 and "disconnected" in status["last_error"]


def test_a_reconnected_mailbox_is_woken_by_the_next_poll(world):
    services, accounts, queue = world
    burst(services, accounts, 2)
    services.store.update_credential("help", "production", {"status": "disconnected"})
    run_tasks(services, queue)
    services.store.update_credential("help", "production", {"status": "connected"})
    sync.poll(services, "help")
    run_tasks(services, queue)
    assert len(sent(accounts)) == 2


def test_mailbox_outbox_status_counts_queued_and_sent_today(world):
    services, accounts, queue = world
    services.store.update_mailbox("help", {"outgoing.daily_send_budget": 50})
    burst(services, accounts, 2)
    before = outbox.status(services, services.store.get_mailbox("help"))
    run_tasks(services, queue)
    after = outbox.status(services, services.store.get_mailbox("help"))
    assert (before["queued"], before["sent_today"], after["queued"], after["sent_today"]) == (2, 0, 0, 2)
    assert after["daily_budget"] == 50


def test_outbox_list_shows_unsent_records_with_their_reason_and_drop_keeps_them_unsent(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    rows = outbox.list_records(services, "help")
    assert [(r["id"], r["status"], r["kind"]) for r in rows] == [(f"ack-{ticket['id']}", "queued", "acknowledgement")]
    outbox.drop(services, rows[0]["id"])
    run_tasks(services, queue)
    assert outbox.list_records(services) == [] and sent(accounts) == []


def test_outbox_retry_requeues_a_given_up_record_and_asks_for_a_send_task(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    queue.take()
    key = f"ack-{ticket['id']}"
    services.store.update_outbound(key, {"status": "given_up", "last_error": "Gmail send failed: 500"})
    outbox.retry(services, key)
    run_tasks(services, queue)
    assert services.store.get_outbound(key)["status"] == "sent"


def test_outbox_verbs_refuse_unknown_and_sent_records(world):
    services, accounts, queue = world
    (ticket,) = burst(services, accounts, 1)
    run_tasks(services, queue)
    with pytest.raises(NotFound):
        outbox.retry(services, "nope")
    with pytest.raises(InvalidInput, match="is sent"):
        outbox.drop(services, f"ack-{ticket['id']}")


# ---- the quota ledger itself (pure)
def simulate_sends(seconds: float, quota: int, share: float, kind: str, ingestion_per_s: float = 0.0,
                   start: float = 1000.0) -> list[float]:
    """The times at which sends went, in a run of `seconds` with ingestion drawing steadily."""
    bucket, now, sent = None, start, []
    while now < start + seconds:
        if ingestion_per_s:
            _u, changes = pacing.spend_decision(bucket, now, quota, share, ingestion_per_s * 0.1)
            bucket = {**(bucket or {}), **changes}
        wait, changes = pacing.take_decision(bucket, now, quota, share, kind)
        if changes:
            bucket = {**(bucket or {}), **changes}
            sent.append(now)
            continue
        now += min(wait, 0.1)
    return sent


def most_in_one_minute(times: list[float]) -> int:
    return max((sum(1 for u in times if t <= u < t + 60) for t in times), default=0)


def test_while_ingestion_works_the_minute_keeps_the_rest_of_the_quota_for_new_mail():
    sent = simulate_sends(600, 6000, 0.7, "acknowledgement", ingestion_per_s=0.5)
    assert most_in_one_minute(sent) * 100 + 30 <= 0.7 * 5820  # ingestion's 30 units a minute included
    assert len(sent) * 100 >= 0.5 * 6000 * 10  # and they get most of it (spread: 6 sends per 10 s)


def test_acknowledgements_spread_over_the_minute_while_mail_arrives():
    sent = simulate_sends(60, 6000, 0.7, "acknowledgement", ingestion_per_s=0.5)
    assert max(sum(1 for u in sent if t <= u < t + 10) for t in sent) * 100 <= 0.7 * 5820 / 6


def test_once_ingestion_is_quiet_sends_use_the_whole_minute_and_never_go_over_the_quota():
    quiet = simulate_sends(600, 6000, 0.7, "acknowledgement")
    busy = simulate_sends(600, 6000, 0.7, "acknowledgement", ingestion_per_s=0.5)
    assert len(quiet) > len(busy) * 1.25
    assert most_in_one_minute(quiet) * 100 <= 6000  # Gmail's rolling minute
    assert len(quiet) * 100 >= 0.9 * 6000 * 10


def test_ingestion_holds_acknowledgements_to_their_share_for_a_while_after_it_draws():
    _units, bucket = pacing.spend_decision(None, 1000.0, 6000, 0.7, 5)
    full_share = {**bucket, "window": [{"at": 1000.0 + i, "units": 100.0, "sends": 100.0} for i in range(41)]}
    wait, _ = pacing.take_decision(full_share, 1025.0, 6000, 0.7, "acknowledgement")
    assert wait > 0  # 4,100 units in the minute: the share of 5,820 is spent while ingestion works
    assert pacing.take_decision(full_share, 1025.0, 6000, 0.7, "reply")[0] == 0  # a reply only needs quota
    wait, changes = pacing.take_decision(full_share, 1000.0 + pacing.INGESTION_WINDOW_SECONDS + 1, 6000, 0.7,
                                         "acknowledgement")
    assert wait == 0 and changes  # ingestion has been quiet: the whole quota again


def test_a_burst_being_ingested_keeps_its_units_and_leaves_room_for_a_reply():
    bucket, now, acks = None, 1000.0, 0
    for step in range(200):  # 20 s of 100 units/s of ingestion, the drainer trying all along
        now = 1000.0 + step / 10
        _u, changes = pacing.spend_decision(bucket, now, 6000, 0.7, 10)
        bucket = {**(bucket or {}), **changes}
        wait, changes = pacing.take_decision(bucket, now, 6000, 0.7, "acknowledgement")
        if changes:
            bucket, acks = {**bucket, **changes}, acks + 1
    assert 2000 + acks * 100 <= 0.7 * 5820  # ingestion never met a full minute
    assert pacing.take_decision(bucket, now, 6000, 0.7, "reply")[0] == 0


def test_ingestion_draws_first_and_sends_use_what_is_left():
    alone = simulate_sends(120, 6000, 0.7, "acknowledgement")
    beside = simulate_sends(120, 6000, 0.7, "acknowledgement", ingestion_per_s=60)
    assert len(beside) < len(alone)
    # every minute keeps the share's room: ingestion's 3,600 units a minute plus the sends
    assert most_in_one_minute([t for t in beside if t >= 1060]) * 100 + 3600 <= 0.7 * 5820 + 100


def test_an_acknowledgement_leaves_one_send_in_the_minute_for_a_reply():
    bucket = {"window": [{"at": 1000.0, "units": 5820.0 - 150.0, "sends": 0.0}]}
    assert pacing.take_decision(bucket, 1001.0, 6000, 0.7, "acknowledgement")[1] is None
    assert pacing.take_decision(bucket, 1001.0, 6000, 0.7, "reply")[1] is not None


def test_the_minute_forgets_what_left_it():
    bucket = {"window": [{"at": 1000.0, "units": 5820.0, "sends": 0.0}]}
    assert pacing.take_decision(bucket, 1030.0, 6000, 0.7, "reply")[0] == pytest.approx(31.0)
    wait, changes = pacing.take_decision(bucket, 1061.0, 6000, 0.7, "reply")
    assert wait == 0 and changes["window"] == [{"at": 1061.0, "units": 100.0, "sends": 100.0}]


def test_retry_time_is_read_from_gmails_message():
    assert pacing.retry_at("429 rateLimitExceeded Retry after 2026-12-02T10:15:01.500Z", 0) == \
        datetime(2026, 12, 2, 10, 15, 1, 500000, tzinfo=timezone.utc).timestamp()
    assert pacing.retry_at("429 rateLimitExceeded", 100.0) == 100.0 + pacing.RATE_LIMIT_DEFAULT_SECONDS


def test_a_burst_of_sends_writes_the_pacing_document_with_the_lease_not_once_per_send(world, monkeypatch):
    services, accounts, queue = world
    burst(services, accounts, 12)
    writes = []
    change = services.store.change_send_pacing
    monkeypatch.setattr(services.store, "change_send_pacing", lambda key, decide: writes.append(key) or change(key, decide))

    (summary,) = run_tasks(services, queue)

    assert summary["sent"] == 12 and len(writes) == 2  # the drain lease taken, then released
    window = services.store.get_send_pacing(pacing.pacing_key(services, "help"))["window"]
    assert sum(entry["sends"] for entry in window) == 12 * pacing.SEND_UNITS  # every send in the minute


def test_the_drainer_takes_the_daily_budget_in_blocks_and_gives_back_what_it_did_not_send(world, monkeypatch):
    services, accounts, queue = world
    burst(services, accounts, 12)
    takes = []
    take = services.store.take_send_budget
    monkeypatch.setattr(services.store, "take_send_budget", lambda *a: takes.append(a) or take(*a))

    (summary,) = run_tasks(services, queue)

    assert summary["sent"] == 12 and len(takes) == 2  # blocks of budget.BLOCK, not one write per send
    assert services.store.send_budget_used("help", budget.today()) == 12  # the rest of the block given back


def test_the_syncs_units_have_their_own_document_and_the_drainer_still_leaves_them_room(world):
    services, _accounts, _queue = world
    services.store.update_mailbox("help", {"outgoing.gmail_quota_units_per_minute": 6000})
    mailbox = services.store.get_mailbox("help")
    pacing.record_ingestion(services, mailbox, 5800)

    drainer = outbox.drain.Drainer(services, mailbox)
    wait = drainer._take_room(6000, 0.7, "acknowledgement")

    assert services.store.get_send_pacing(pacing.pacing_key(services, "help")) is None  # the drainer's: untouched
    assert services.store.get_send_pacing(pacing.ingestion_key(services, "help"))["window"][0]["units"] == 5800
    assert wait > 0 and drainer.unsaved == []  # the minute is the syncs': no send now



@pytest.mark.parametrize("acknowledge, waiting, new_tickets, recorded", [
    (True, False, 3, True),    # its new tickets are acknowledged: the sends must leave ingestion room
    (False, True, 0, True),    # records wait in the outbox: they go out this minute
    (False, False, 3, False),  # nothing can be sent soon: the run writes no pacing document
    (True, False, 0, False),   # no new ticket, nothing waiting
])
def test_a_syncs_units_are_recorded_only_when_a_send_can_follow(world, acknowledge, waiting, new_tickets, recorded):
    services, _accounts, _queue = world
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": acknowledge,
                                           "outbox_wake_at": 1e10 if waiting else None})
    mailbox = services.store.get_mailbox("help")
    handoffs.record_ingestion(services, mailbox, 40, [({}, None)] * new_tickets)
    bucket = services.store.get_send_pacing(pacing.ingestion_key(services, "help"))
    assert (bucket is not None) == recorded
