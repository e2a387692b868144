"""Outbox benchmarks (docs/outbox.md, docs/benchmarks.md): a burst of new conversations from as
many senders, acknowledgements on, the fake Gmail at 6,000 units/min per user, every send through
the work queue (Pub/Sub emulator → `push` → services/outbox.handle_send_task).

  burst_400_ingest_s     last delivery → every message has its inbound row      (target ≤ 30)
  burst_400_acks_s       last delivery → every acknowledgement sent, each once  (target ≤ 480)
  reply_during_burst_s   an agent reply queued 10 s into the burst → sent        (target ≤ 20)
  units_per_ack          Gmail units of sends, look-ups and refused sends / ack  (target ≤ 105)
  event_lag_p95_s, events_per_change, event_extra_writes_per_message: the ticket events of the
                         burst, its sends and a killed worker's run (scripts/bench_events.py)

`scripts/bench` calls run() on its stack; `python scripts/bench_outbox.py` brings up its own.
BENCH_OUTBOX_BURST (default 400) and BENCH_OUTBOX_DELIVERY_S (default 20) shape the burst;
BENCH_OUTBOX_SEND_SHARE (default 70, the product's default) sets outgoing.send_share_percent;
BENCH_EVENTS_KILLED (default 100) is the killed worker's backlog.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

import requests  # noqa: E402

BURST = int(os.environ.get("BENCH_OUTBOX_BURST", "400"))
DELIVERY_S = float(os.environ.get("BENCH_OUTBOX_DELIVERY_S", "20"))
SEND_SHARE = int(os.environ.get("BENCH_OUTBOX_SEND_SHARE", "70"))  # outgoing.send_share_percent
QUOTA = 6000
ADDRESS = "outbox@acme.example"
NAME = "outbox"
GIVE_UP_S = 1500
KILLED = int(os.environ.get("BENCH_EVENTS_KILLED", "100"))


def log(message):
    print(message, file=sys.stderr, flush=True)


def fake(path, **kwargs):
    method = "post" if "json" in kwargs or "data" in kwargs else "get"
    response = getattr(requests, method)(os.environ["FAKE_GOOGLE_URL"] + path, timeout=60, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def poll(mailbox: str) -> None:
    """What a push notification or a tick does for one mailbox (`poll {"mailbox"}`)."""
    try:
        requests.post(os.environ["MAILBRIDGE_FUNCTIONS_URL"] + "/poll", json={"mailbox": mailbox}, timeout=300)
    except requests.RequestException as e:
        log(f"  poll failed: {e.__class__.__name__}")


def run() -> dict:
    import bench_events  # scripts/bench_events.py
    from mailbridge.services import mailboxes, outgoing
    from tests.helpers import connect_mailbox, make_mail, make_services

    fake("/_fake/reset", json={})
    fake("/_fake/config", json={"quota_per_minute": QUOTA})
    fake("/_fake/faults", json={"error_rate": 0, "latency_ms": 0})
    requests.delete(f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/emulator/v1/projects/"
                    f"{os.environ['GOOGLE_CLOUD_PROJECT']}/databases/(default)/documents", timeout=30)
    services = make_services()
    connect_mailbox(services, os.environ["FAKE_GOOGLE_URL"], NAME, ADDRESS)
    mailboxes.set_mailbox_setting(services, NAME, "outgoing.acknowledgement_limit_per_hour", "10")
    mailboxes.set_mailbox_setting(services, NAME, "outgoing.send_share_percent", str(SEND_SHARE))
    poll(NAME)  # records the history id
    subscriber = bench_events.Subscriber()  # every ticket event from here on
    units_before = fake("/_fake/stats")["users"].get(ADDRESS, {}).get("quota_units", 0)

    # a ticket for the agent's reply, before the burst
    fake(f"/_fake/users/{ADDRESS}/messages?labelIds=INBOX,UNREAD",
         data=make_mail("vip@customer.example", ADDRESS, "Where is my order?"))
    poll(NAME)
    vip_ticket = services.store.list_tickets(mailbox=NAME)[0]

    delivered: list[str] = []
    reply = {}
    polling = threading.Event()

    def poller():  # push notifications arrive every couple of seconds during a burst
        while not polling.is_set():
            poll(NAME)
            polling.wait(2.0)

    def reply_later(start):
        time.sleep(max(0.0, start + 10 - time.monotonic()))
        result = outgoing.send_reply(services, vip_ticket["id"], "Your order left today.", wait=False)
        reply.update(key=result["idempotency_key"], queued_at=time.monotonic())

    log(f"  delivering {BURST} conversations over {DELIVERY_S:g} s …")
    start = time.monotonic()
    threads = [threading.Thread(target=poller, daemon=True), threading.Thread(target=reply_later, args=(start,))]
    for thread in threads:
        thread.start()
    session = requests.Session()
    for i in range(BURST):
        raw = make_mail(f'"Customer {i}" <burst{i}@customers{i % 40}.example>', ADDRESS, f"Outage report {i}",
                        f"Hello,\n\nsince this morning nothing works ({i}).\n")
        response = session.post(f"{os.environ['FAKE_GOOGLE_URL']}/_fake/users/{ADDRESS}/messages",
                                params={"labelIds": "INBOX,UNREAD"}, data=raw, timeout=30)
        response.raise_for_status()
        delivered.append(response.json()["id"])
        time.sleep(max(0.0, start + DELIVERY_S * (i + 1) / BURST - time.monotonic()))
    last_delivery = time.monotonic()

    ingest_s = acks_s = reply_s = None
    deadline = last_delivery + GIVE_UP_S
    while time.monotonic() < deadline:
        now = time.monotonic()
        if ingest_s is None and len(services.store.get_inbound_rows(NAME, delivered)) == len(delivered):
            ingest_s = round(now - last_delivery, 1)
            polling.set()
            log(f"  every message ingested {ingest_s} s after the last delivery")
        if reply_s is None and reply.get("key"):
            record = services.store.get_outbound(reply["key"]) or {}
            if record.get("status") == "sent":
                reply_s = round(now - reply["queued_at"], 1)
                log(f"  agent reply sent {reply_s} s after it was queued")
        records = services.store.outbox_records(NAME, services.settings.instance, kind="acknowledgement",
                                                statuses=("sent",))
        if ingest_s is not None and len(records) >= BURST:
            acks_s = round(now - last_delivery, 1)
            break
        time.sleep(1.0)
    polling.set()
    stats = fake("/_fake/stats")["users"].get(ADDRESS, {})
    calls = stats.get("calls", {})
    sends = calls.get("gmail.users.messages.send", 0)
    acks_sent = len(services.store.outbox_records(NAME, services.settings.instance, kind="acknowledgement",
                                                  statuses=("sent",)))
    lookups = calls.get("gmail.users.messages.list", 0)
    send_units = 100 * sends + 5 * lookups
    log(f"  {acks_sent} acknowledgements sent ({sends} sends, {lookups} look-ups); "
        f"all sent {acks_s} s after the last delivery")
    skipped = [r for r in services.store.outbox_records(NAME, services.settings.instance, statuses=("skipped",))]
    log(f"  a killed worker's run of {KILLED} messages …")
    killed = bench_events.killed_worker_run(services, fake, KILLED)
    event_figures = bench_events.figures(services, subscriber, NAME, killed, ingested=len(delivered) + 1)
    log(f"  events: lag p95 {event_figures['event_lag_p95_s']} s, per change {event_figures['events_per_change']}, "
        f"extra writes per message {event_figures['event_extra_writes_per_message']}")
    return {
        **event_figures,
        "burst_400_ingest_s": ingest_s,
        "burst_400_acks_s": acks_s,
        "reply_during_burst_s": reply_s,
        # the agent's reply is one of the sends: it is not an acknowledgement's cost
        "units_per_ack": round((send_units - 100 * (reply_s is not None)) / max(1, acks_sent), 1),
        "outbox_burst": {"conversations": BURST, "delivery_s": DELIVERY_S, "quota_units_per_minute": QUOTA,
                         "send_share_percent": SEND_SHARE, "acks_sent": acks_sent, "acks_skipped": len(skipped),
                         "gmail_sends": sends, "send_lookups": lookups,
                         "gmail_units_total": stats.get("quota_units", 0) - units_before},
    }


def main():
    from mailbridge import logs

    stack_dir = ROOT / ".bench-outbox-stack"
    env = dict(os.environ, MAILBRIDGE_STACK_DIR=str(stack_dir))
    (ROOT / "bench").mkdir(exist_ok=True)
    logs.to_stream(open(ROOT / "bench" / "bench_outbox.log", "w"))
    log("starting the outbox bench stack …")
    subprocess.run([str(ROOT / "scripts" / "stack"), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        os.environ["MAILBRIDGE_STACK_DIR"] = str(stack_dir)
        for line in (stack_dir / "env").read_text().splitlines():
            if line.startswith("export "):
                import shlex

                key, _, value = line[len("export "):].partition("=")
                os.environ[key] = shlex.split(value)[0] if value else ""
        os.environ.pop("MAILBRIDGE_PUBSUB_TOPIC", None)  # no Gmail watch: the poller stands in for push
        results = run()
    finally:
        subprocess.run([str(ROOT / "scripts" / "stack"), "down"], env=env, stdout=subprocess.DEVNULL)
    path = ROOT / "bench" / "results.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
