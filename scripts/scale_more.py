"""Two fan-outs of scripts/bench_scale.py beyond `--sizes` (docs/benchmarks.md, "Scale out"):

- the shared-domain fan-out: every sender of every mailbox writes from one company domain and
  acknowledgements are on, so every new ticket counts against that domain's acknowledgement
  limit (issue 32: one document per domain-hour took every increment, and stalled the run);
- the many-mailbox fan-out: N connected mailboxes (10,000 for `fanout_10000_mailboxes_s`), a
  warm-up tick takes each one's first sync, then BUSY of them get 3 new messages each and one
  tick has every message in with the rest idle (2 Gmail units and 2 document reads each).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import bench_firestore
from scale_plumbing import Bench, log

MESSAGES_PER_MAILBOX = 3
BUSY = 1000
SHARED_DOMAIN = "bigcustomer.example"  # a company domain: public providers get no acknowledgement


def _tick_and_wait(bench: Bench, expected: int, timeout: float) -> tuple[float, float | None]:
    started = time.monotonic()
    bench.tick()
    answered = time.monotonic() - started
    waited = bench.wait_rows(expected, timeout=timeout)
    return answered, (answered + waited) if waited is not None else None


def bench_shared_domain(bench: Bench, size: int = 1000) -> dict:
    """`size` connected mailboxes (the fan-out's), acknowledgements on, 3 new messages each, all
    senders @SHARED_DOMAIN; one tick → seconds until every message has its inbound row, and the
    busiest document's sustained write rate over the run and the acknowledgements it queued."""
    from mailbridge.services import mailboxes

    bench.connect(size)
    names = bench.connected[:size]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: mailboxes.set_mailbox_setting(bench.services, n, "outgoing.acknowledge_new", "true"),
                      names))
    baseline = bench.inbound_count()
    expected = baseline + bench.deliver(names, MESSAGES_PER_MAILBOX, "shared", sender_domain=SHARED_DOMAIN)
    sends_before = _sends(bench)
    since = bench_firestore.mark()
    answered, elapsed = _tick_and_wait(bench, expected, timeout=max(300, size * 1.0))
    time.sleep(10)  # the acknowledgements' sends go on after the rows: their writes count too
    new = expected - baseline
    acks = _sends(bench) - sends_before
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: mailboxes.set_mailbox_setting(bench.services, n, "outgoing.acknowledge_new", "false"),
                      names))
    return {"mailboxes": size, "messages": new, "sender_domain": SHARED_DOMAIN, "acknowledgements": True,
            "tick_answer_s": round(answered, 2), "seconds": round(elapsed, 1) if elapsed else None,
            "rows": bench.inbound_count() - baseline, "acknowledgements_sent_10s_after": acks,
            "firestore": bench_firestore.phase(f"fanout_{size}_shared_domain", since, new)}


def _sends(bench: Bench) -> int:
    users = bench.fake("/_fake/stats")["users"].values()
    return sum(u.get("calls", {}).get("gmail.users.messages.send", 0) for u in users)


def bench_many(bench: Bench, total: int, busy: int = BUSY) -> dict:
    """`total` connected mailboxes, `busy` of them with 3 new messages, one tick."""
    started = time.monotonic()
    bench.connect(total)
    connect_s = time.monotonic() - started
    log(f"  {total} mailboxes connected in {connect_s:.0f} s; warm-up tick (first syncs) …")
    warm = _warm_up(bench, total)
    names = bench.connected[-busy:]
    baseline = bench.inbound_count()
    expected = baseline + bench.deliver(names, MESSAGES_PER_MAILBOX, f"many{total}")
    bench.fake("/_fake/stats/reset", {})
    since = bench_firestore.mark()
    log(f"  one tick over {total} mailboxes, {busy} with new mail …")
    answered, elapsed = _tick_and_wait(bench, expected, timeout=900)
    new = expected - baseline
    project = bench.fake("/_fake/stats")["project"]
    return {"mailboxes": total, "busy": busy, "messages": new, "connect_s": round(connect_s, 1),
            "warm_up_tick_s": warm, "tick_answer_s": round(answered, 2),
            "seconds": round(elapsed, 1) if elapsed else None, "rows": bench.inbound_count() - baseline,
            "gmail_units": project.get("quota_units"),
            "firestore": bench_firestore.phase(f"fanout_{total}_mailboxes", since, new)}


def _warm_up(bench: Bench, total: int, timeout: float = 1800) -> float | None:
    """A tick over every mailbox before the measured one, so that one meets mailboxes that have
    been polled: a mailbox never polled gets a whole first run (services/sync/mailbox.py, _idle),
    which lists its history; an idle-checked one only lists it. Seconds until every task made
    its history.list and no lease is held (a first run still going), so the measured tick does
    not run into the warm-up's tasks. (Waiting for each sync state's history id would not do:
    connecting writes it.)"""
    from google.cloud.firestore_v1.base_query import FieldFilter

    bench.fake("/_fake/stats/reset", {})
    started = time.monotonic()
    bench.tick()
    held = bench.services.store.db.collection("sync").where(filter=FieldFilter("lease_expires_at", ">", 0))
    while time.monotonic() - started < timeout:
        users = bench.fake("/_fake/stats")["users"].values()
        listed = sum(u.get("calls", {}).get("gmail.users.history.list", 0) for u in users)
        if listed >= total and int(held.count().get()[0][0].value) == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(2)
    return None
