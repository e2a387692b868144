#!/usr/bin/env python3
"""Scale-out benchmarks (issue 21; docs/benchmarks.md, "Scale out"): the scheduled tick's fan-out
on the work queue, what an idle mailbox costs per tick, recovery after a killed sync, and the
share of Gmail's per-project quota a busy fan-out uses.

Everything runs the deployed path on the local stack: the tick is a POST to the `poll` function,
which publishes one task per mailbox to the Pub/Sub emulator, whose push subscription delivers
them to the `push` function. Figures are reported, never asserted.

  .venv/bin/python scripts/bench_scale.py [--sizes 100,300,1000] [--parts probe,fanout,shared,idle,kill,many]
      [--many 10000]   standalone: own stack, writes bench/scale.json and merges its keys into
      bench/results.json; `shared` is the fan-out whose senders share one domain (scale_more.py),
      `many` the fan-out over --many mailboxes, a tenth of them (at most 1,000) with new mail
  scripts/bench calls run(stack) on its own stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if __name__ == "__main__" and Path(sys.executable).resolve() != VENV_PYTHON.resolve() and VENV_PYTHON.exists():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
sys.path[:0] = [p for p in (str(ROOT / "functions"), str(ROOT), str(ROOT / "scripts")) if p not in sys.path]

import requests  # noqa: E402

import stacklib  # noqa: E402
import bench_firestore  # noqa: E402

MESSAGES_PER_MAILBOX = 3
KILL_MESSAGES = 300
PROJECT_LIMIT_PER_MINUTE = 1_200_000  # Gmail's per-project quota (tests/fakes/README.md)
USER_LIMIT_PER_MINUTE = 6_000
STACK_DIR = ROOT / ".bench-scale-stack"
# Functions servers sharing the work queue: Cloud Run runs several instances under load, and one
# Python process uses about one of the machine's two cores (docs/benchmarks.md, "Scale out").
FUNCTION_INSTANCES = int(os.environ.get("BENCH_FUNCTION_INSTANCES", "2"))


import scale_more  # noqa: E402
from scale_plumbing import LATENCY_MS, Bench, FirestoreCounter, log  # noqa: E402


# --------------------------------------------------------------------------- fan-out


def bench_fanout(bench: Bench, sizes: list[int]) -> dict:
    """One tick → every message of every mailbox has its inbound row (notifications paused)."""
    bench.reset()
    results = {}
    for size in sizes:
        log(f"  fan-out: connecting {size} mailboxes …")
        bench.connect(size)
        baseline = bench.inbound_count()
        expected = baseline + bench.deliver(bench.connected, MESSAGES_PER_MAILBOX, f"tick{size}")
        bench.fake("/_fake/stats/reset", {})
        log(f"  fan-out: one tick over {size} mailboxes …")
        since, started = bench_firestore.mark(), time.monotonic()
        answer = bench.tick()
        queued_s = time.monotonic() - started
        waited = bench.wait_rows(expected, timeout=max(300, size * 1.0))
        elapsed = (queued_s + waited) if waited is not None else None
        stats = bench.fake("/_fake/stats")
        project = stats["project"]
        users = stats["users"].values()
        new = expected - baseline
        results[str(size)] = {
            "mailboxes": size, "messages": new, "queued": answer.get("queued"), "tick_answer_s": round(queued_s, 2),
            "seconds": round(elapsed, 1) if elapsed else None,
            "messages_per_s": round(new / elapsed, 1) if elapsed else None,
            "rows": bench.inbound_count() - baseline,
            "gmail_units": project.get("quota_units"),
            "gmail_units_per_minute": round(project.get("quota_units", 0) / elapsed * 60) if elapsed else None,
            "project_rate_limited": project.get("rate_limited", 0),
            "users_rate_limited": sum(u.get("rate_limited", 0) for u in users),
            "max_units_one_user": max((u.get("quota_units", 0) for u in users), default=0),
            "firestore": bench_firestore.phase(f"fanout_{size}_mailboxes", since, new),
        }
        log(f"  fan-out {size}: {results[str(size)]}")
    return results


def project_quota_share(fanout: dict) -> dict:
    """The busiest fan-out's use of Gmail's per-project limit, and the per-user pacing kept."""
    largest = fanout[max(fanout, key=int)]
    per_minute = largest.get("gmail_units_per_minute") or 0
    return {
        "mailboxes": largest["mailboxes"], "units_per_minute": per_minute,
        "share": round(per_minute / PROJECT_LIMIT_PER_MINUTE, 4),
        "project_limit_per_minute": PROJECT_LIMIT_PER_MINUTE,
        "over_project_limit": largest["project_rate_limited"] > 0,
        "per_user_pacing_kept": largest["users_rate_limited"] == 0 and largest["max_units_one_user"] <= USER_LIMIT_PER_MINUTE,
    }


# --------------------------------------------------------------------------- idle cost


def bench_idle(bench: Bench, sample: int = 20) -> dict:
    """Per idle mailbox per tick: Gmail units and Firestore operations, measured on `sample` tick
    tasks handled in this process (the same code `push` runs), after a tick has synced them."""
    from mailbridge.services import push

    names = bench.connected[:sample]
    instance = bench.services.settings.instance
    before = bench.fake("/_fake/stats")["users"]
    with FirestoreCounter() as counter:
        outcomes = [push.on_task(bench.services, {"kind": "sync", "mailbox": n, "instance": instance,
                                                  "tick": f"idle-{time.time()}"}) for n in names]
    after = bench.fake("/_fake/stats")["users"]
    units = sum(after.get(f"{n}@scale.example", {}).get("quota_units", 0)
                - before.get(f"{n}@scale.example", {}).get("quota_units", 0) for n in names)
    return {"gmail_units": round(units / len(names), 2),
            "firestore_ops": round((counter.reads + counter.writes) / len(names), 2),
            "firestore_reads": round(counter.reads / len(names), 2),
            "firestore_writes": round(counter.writes / len(names), 2),
            "mailboxes": len(names), "answers": sorted({o.reason for o in outcomes})}


def bench_idle_tick(bench: Bench) -> dict:
    """A whole tick over idle mailboxes: how long until every task is answered (the fake's
    history.list calls are counted)."""
    bench.fake("/_fake/stats/reset", {})
    started = time.monotonic()
    bench.tick()
    expected = len(bench.connected)
    deadline = started + 600
    calls = 0
    while time.monotonic() < deadline:
        users = bench.fake("/_fake/stats")["users"].values()
        calls = sum(u.get("calls", {}).get("gmail.users.history.list", 0) for u in users)
        if calls >= expected:
            break
        time.sleep(0.5)
    units = bench.fake("/_fake/stats")["project"].get("quota_units", 0)
    return {"mailboxes": expected, "seconds": round(time.monotonic() - started, 1),
            "history_list_calls": calls, "gmail_units_per_mailbox": round(units / max(expected, 1), 2)}


# --------------------------------------------------------------------------- kill recovery


def bench_kill(bench: Bench) -> dict:
    """kill -9 of the instance syncing a 300-message mailbox mid-way; seconds from the kill until
    all 300 are in, exactly once. The task it was working on is redelivered by Pub/Sub (to the
    other `push` server, as Cloud Run would route it to another instance) and takes the mailbox
    over once the dead sync's lease has run out."""
    from mailbridge.adapters.pubsub import PubSubQueue

    name = "killme"
    host = f"{stacklib.HOST}:{bench.stack.services['pubsub'].port}"
    bench.connect_one(name)
    bench.deliver([name], KILL_MESSAGES, "kill")
    victim = bench.stack.start_functions("functions_victim", push=True)
    stacklib.create_work_subscription(host, bench.stack.project, victim.url + "/push")
    try:
        PubSubQueue(bench.services.settings).publish("sync", name)
        if bench.wait_rows(30, timeout=300, mailbox=name) is None:
            return {"error": "the victim never started ingesting"}
        before = bench.inbound_count(name)
        os.killpg(victim.pgid, signal.SIGKILL)
        killed = time.monotonic()
        stacklib.create_work_subscription(host, bench.stack.project, bench.push_endpoints)
    finally:
        with contextlib.suppress(Exception):
            bench.stack.stop_service(victim)
        stacklib.create_work_subscription(host, bench.stack.project, bench.push_endpoints)
    waited = bench.wait_rows(KILL_MESSAGES, timeout=600, mailbox=name)
    time.sleep(2)  # late redeliveries must not add anything
    rows = bench.services.store.inbound_log(name, limit=5000)
    tickets = bench.services.store.list_tickets(mailbox=name, limit=5000)
    return {"seconds": round(waited, 1) if waited is not None else None, "rows_at_kill": before,
            "rows": len(rows), "tickets": len(tickets), "exactly_once": len(rows) == len(tickets) == KILL_MESSAGES
            and {r["outcome"] for r in rows} == {"created"}, "since_kill_s": round(time.monotonic() - killed, 1),
            "lease_ttl_s": bench.services.settings.lease_ttl_s}


# --------------------------------------------------------------------------- the emulator's pace


def bench_emulator_push_concurrency(stack: stacklib.Stack, messages: int = 60, hold_s: float = 1.0) -> dict:
    """How many pushes the Pub/Sub emulator has in flight at once: its subscription pushes to a
    stand-in endpoint that holds each request `hold_s`. Cloud Pub/Sub scales pushes up to the
    push service's max instances; the emulator's bound is what limits the local fan-out."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"now": 0, "max": 0, "done": 0}
    lock = threading.Lock()

    class Hold(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(hold_s)
            with lock:
                state["now"] -= 1
                state["done"] += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((stacklib.HOST, 0), Hold)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"{stacklib.HOST}:{stack.services['pubsub'].port}"
    topic = f"projects/{stack.project}/topics/bench-probe"
    stacklib.create_topic(host, topic)
    stacklib.create_push_subscription(host, topic, stack.project, "bench-probe-push",
                                      f"http://{stacklib.HOST}:{server.server_port}/push")
    body = {"messages": [{"data": "e30=", "attributes": {"i": str(i)}} for i in range(messages)]}
    requests.post(f"http://{host}/v1/{topic}:publish", json=body, timeout=30).raise_for_status()
    started = time.monotonic()
    while state["done"] < messages and time.monotonic() - started < 300:
        time.sleep(0.2)
    server.shutdown()
    return {"max_in_flight": state["max"], "messages": state["done"],
            "seconds": round(time.monotonic() - started, 1), "hold_s": hold_s}


# --------------------------------------------------------------------------- entry points


PARTS = ("probe", "fanout", "shared", "idle", "kill", "many")


def run(stack: stacklib.Stack, sizes=(100, 300, 1000), parts=PARTS, many: int = 0) -> dict:
    """The scale figures `parts` names on a running stack (functions with push on); keys for
    bench/results.json. `many`: the mailboxes of the many-mailbox fan-out (0: not run)."""
    saved = dict(os.environ)
    try:
        bench = Bench(stack)
        bench.scale_out(FUNCTION_INSTANCES)
        from mailbridge import logs  # noqa: F401  (the log stream is the caller's)

        results: dict = {}
        if "probe" in parts:
            log("scale: the emulator's push concurrency …")
            results["emulator_push_concurrency"] = bench_emulator_push_concurrency(stack)
        if "fanout" in parts:
            log("scale: fan-out …")
            results.update(_fanout_keys(bench_fanout(bench, list(sizes)), sizes))
        if "idle" in parts:
            log("scale: idle mailboxes …")
            idle = bench_idle(bench)
            results.update(idle_mailbox_cost={"gmail_units": idle["gmail_units"], "firestore_ops": idle["firestore_ops"]},
                           idle_detail=idle, idle_tick=bench_idle_tick(bench))
        if "kill" in parts:
            log("scale: kill recovery …")
            try:
                kill = bench_kill(bench)
            except Exception as e:  # noqa: BLE001 - report, do not hide the other figures
                kill = {"error": f"{e.__class__.__name__}: {e}"[:300]}
            results.update(kill_recovery_s=kill.get("seconds"), kill_recovery=kill)
            log(f"  kill recovery: {kill}")
        if "shared" in parts:
            log("scale: fan-out, senders of one domain, acknowledgements on …")
            shared = scale_more.bench_shared_domain(bench, max(sizes))
            results.update({f"fanout_shared_domain_{max(sizes)}_s": shared["seconds"], "fanout_shared_domain": shared})
            bench_firestore.merge(results, shared["firestore"])
            log(f"  shared domain: {shared}")
        if "many" in parts and many:
            log(f"scale: fan-out over {many} mailboxes …")
            figures = scale_more.bench_many(bench, many, busy=min(scale_more.BUSY, many // 10))
            results.update({f"fanout_{many}_mailboxes_s": figures["seconds"], f"fanout_{many}_mailboxes": figures})
            log(f"  {many} mailboxes: {figures}")
        return results
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _fanout_keys(fanout: dict, sizes) -> dict:
    largest = fanout[str(max(sizes))]
    return {**bench_firestore.merge({}, largest["firestore"]),
            "fanout_1000_mailboxes_s": fanout.get("1000", {}).get("seconds"),
            "fanout": fanout, "fanout_messages_per_s": largest.get("messages_per_s"),
            "project_quota_share": project_quota_share(fanout)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--parts", default=",".join(PARTS), help="of " + ",".join(PARTS))
    parser.add_argument("--many", type=int, default=0, help="mailboxes of the many-mailbox fan-out (10000)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: comma-separated numbers, not {args.sizes!r}")
    parts = tuple(p for p in args.parts.split(",") if p)
    if set(parts) - set(PARTS) or (("shared" in parts or "idle" in parts) and "fanout" not in parts):
        parser.error(f"--parts: some of {','.join(PARTS)}; shared and idle use the fan-out's mailboxes")
    from mailbridge import logs

    (ROOT / "bench").mkdir(exist_ok=True)
    logs.to_stream(open(ROOT / "bench" / "bench_scale.log", "w"))
    bench_firestore.start()  # before the stack: its functions log their writes too (scripts/bench_firestore.py)
    stack = stacklib.Stack(STACK_DIR, project="mailbridge-bench-scale")
    log("starting the scale bench stack …")
    stack.up()
    try:
        results = run(stack, sizes, parts, args.many)
    finally:
        stack.stop()
    results["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["latency_ms_per_call"] = LATENCY_MS
    (ROOT / "bench" / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    merged_path = ROOT / "bench" / "results.json"
    merged = json.loads(merged_path.read_text()) if merged_path.is_file() else {}
    merged.update({k: v for k, v in results.items() if k != "date"})
    merged_path.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
