"""Ticket event figures (docs/events.md, docs/benchmarks.md), measured around the outbox burst of
scripts/bench_outbox.py on its stack's Pub/Sub emulator:

  event_lag_p95_s                 a change committed → its event published (the emulator's
                                  publishTime minus the event's time, set at the commit), p95 over
                                  the burst's ingestion and its sends                (target ≤ 2)
  events_per_change               stored events / changes (rows that created or joined a ticket,
                                  sent records, quarantines) over the burst, its replies and a run
                                  whose worker is SIGKILLed mid-sync; every change's id checked
                                                                                     (target 1.000)
  event_extra_writes_per_message  event documents written by the ingestion plus their published
                                  marks (each marked once), per ingested message      (target ≤ 1)

A subscriber with message ordering pulls everything published and checks each ticket's order.
"""

from __future__ import annotations

import base64
from datetime import datetime
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests

ROOT = Path(__file__).resolve().parent.parent
KILL_SCRIPT = """
import sys
from tests.helpers import make_services
from mailbridge.services import sync
print(sync.sync_mailbox(make_services(), sys.argv[1], budget_s=30.0), flush=True)
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Subscriber:
    """A pull subscription of its own on the events topic (with ordering), read in a thread."""

    def __init__(self):
        sys.path.insert(0, str(ROOT / "scripts"))
        import stacklib

        host = os.environ["PUBSUB_EMULATOR_HOST"]
        self.base = f"http://{host}/v1/"
        self.path = stacklib.create_events_subscription(host, os.environ["GOOGLE_CLOUD_PROJECT"],
                                                        f"bench-events-{uuid.uuid4().hex[:8]}")
        self.received: list[dict] = []  # {"event", "publish_time"} in arrival order
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._pull, daemon=True)
        self.thread.start()

    def _pull(self):
        session = requests.Session()
        while not self.stopped.is_set():
            try:
                answer = session.post(f"{self.base}{self.path}:pull", json={"maxMessages": 1000, "returnImmediately": True},
                                      timeout=30).json()
            except (requests.RequestException, ValueError):
                continue
            got = answer.get("receivedMessages", [])
            for item in got:
                message = item["message"]
                self.received.append({"event": json.loads(base64.b64decode(message["data"])),
                                      "publish_time": epoch(message["publishTime"])})
            if got:
                session.post(f"{self.base}{self.path}:acknowledge", json={"ackIds": [i["ackId"] for i in got]},
                             timeout=10)
            else:
                self.stopped.wait(0.2)

    def wait_for(self, ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ids <= {r["event"]["id"] for r in self.received}:
            time.sleep(0.5)

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=15)


def delivery(received: list[dict], stored_ids: set[str]) -> dict:
    """Of what the subscriber got: ids missing, duplicates, tickets whose first deliveries are out
    of sequence, and the lag of each event's first delivery (publishTime - event time)."""
    first: dict[str, dict] = {}
    for item in received:
        first.setdefault(item["event"]["id"], item)
    by_subject: dict[str, list[int]] = {}
    for item in first.values():
        by_subject.setdefault(item["event"]["subject"], []).append(item["event"]["sequence"])
    lags = sorted(max(0.0, first[i]["publish_time"] - epoch(first[i]["event"]["time"])) for i in stored_ids if i in first)
    return {"missing": len(stored_ids - first.keys()), "duplicates": sum(1 for r in received if r["event"]["id"] in stored_ids)
            - len(stored_ids & first.keys()), "out_of_order": sum(1 for s in by_subject.values() if s != sorted(s)),
            "lags": lags}


def p95(values: list[float]) -> float | None:
    return round(values[max(0, int(len(values) * 0.95) - 1)], 3) if values else None


def killed_worker_run(services, fake, count: int) -> dict:
    """A mailbox of its own: `count` messages, a sync SIGKILLed after its first rows, the lease
    run out, a poll that takes over (and publishes what the dead one committed)."""
    from tests.helpers import connect_mailbox, event_ledger, make_mail

    name = f"killed-{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, os.environ["FAKE_GOOGLE_URL"], name, address)
    requests.post(os.environ["MAILBRIDGE_FUNCTIONS_URL"] + "/poll", json={"mailbox": name}, timeout=300)
    for i in range(count):
        fake(f"/_fake/users/{address}/messages?labelIds=INBOX,UNREAD",
             data=make_mail(f"k{i}@customer{i % 7}.example", address, f"Killed run {i}"))
    fake("/_fake/faults", json={"latency_ms": 15})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, name], cwd=str(ROOT), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and not services.store.inbound_log(name, limit=1):
        time.sleep(0.05)
    rows_at_kill = len(services.store.inbound_log(name, limit=0))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    fake("/_fake/faults", json={"latency_ms": 0})
    state = services.store.get_sync(name, services.settings.instance)
    time.sleep(max(0.0, float(state.get("lease_expires_at") or 0) - time.time()) + 0.5)
    for _ in range(10):
        requests.post(os.environ["MAILBRIDGE_FUNCTIONS_URL"] + "/poll", json={"mailbox": name}, timeout=300)
        if len(services.store.inbound_log(name, limit=0)) >= count:
            break
    ledger = event_ledger(services, name)
    log(f"  killed worker: {rows_at_kill} rows at the kill, {ledger['changes']} changes, "
        f"{ledger['events']} events, problems {ledger['problems'][:3]}")
    return {"mailbox": name, "rows_at_kill": rows_at_kill, **ledger}


def figures(services, subscriber: Subscriber, burst_mailbox: str, killed: dict, ingested: int) -> dict:
    """The three figures over the burst's mailbox and the killed run's."""
    from tests.helpers import event_ledger

    burst = event_ledger(services, burst_mailbox)
    documents = [d for d in services.store.event_documents() if d.get("mailbox") in (burst_mailbox, killed["mailbox"])]
    stored_ids = {e["id"] for d in documents for e in d["events"]}
    subscriber.wait_for(stored_ids, 60)
    subscriber.stop()
    got = delivery(subscriber.received, stored_ids)
    lags = got["lags"]
    inbound = [d for d in documents if d.get("mailbox") == burst_mailbox
               and d["events"][0]["type"] in ("ticket.created", "ticket.message_added")]
    writes = len(inbound) + sum(1 for d in inbound if d.get("published"))
    changes, events = burst["changes"] + killed["changes"], burst["events"] + killed["events"]
    per_change = round(events / max(changes, 1), 3)
    problems = burst["problems"] + killed["problems"]
    return {
        "event_lag_p95_s": p95(lags),
        "events_per_change": per_change if not problems else {"value": per_change, "problems": problems[:10]},
        "event_extra_writes_per_message": round(writes / max(ingested, 1), 3),
        "events": {"changes": changes, "stored": events, "burst_changes": burst["changes"],
                   "killed_run_changes": killed["changes"], "rows_at_kill": killed["rows_at_kill"],
                   "received_missing": got["missing"], "received_duplicates": got["duplicates"],
                   "tickets_out_of_order": got["out_of_order"],
                   "lag_p50_s": round(lags[len(lags) // 2], 3) if lags else None,
                   "lag_max_s": round(lags[-1], 3) if lags else None,
                   "inbound_event_documents": len(inbound), "ingested_messages": ingested},
    }
