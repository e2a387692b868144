#!/usr/bin/env python3
"""Peak memory of one poll over fifty 25 MB messages (`large_batch_peak_rss_mib`).

The function has 1 GiB; Gmail lists message ids without sizes, so the Gmail adapter sizes its
batches by the bytes it has seen (docs/gmail-differences.md). `scripts/bench` calls
`bench_large_batch()` on its own stack; run alone, this script starts a private stack:

    .venv/bin/python scripts/bench_large.py [--messages 50] [--mb 25]
"""

import argparse
from email.message import EmailMessage
import json
import os
from pathlib import Path
import shlex
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if __name__ == "__main__" and Path(sys.executable).resolve() != VENV_PYTHON.resolve() and VENV_PYTHON.exists():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

import requests  # noqa: E402

ADDRESS = "large@acme.example"
LIMIT_MIB = 1024  # the poll function's memory (terraform: poll_memory 1Gi)
STACK_DIR = ROOT / ".bench-large-stack"

# The poll runs in its own process so that its peak RSS is the poll's alone.
POLL = ("import resource, sys, time; sys.path[:0] = ['functions', '.']; "
        "from tests.helpers import make_services; from mailbridge.services import sync; "
        "r = sync.poll(make_services(), 'large', budget_s=3600); "
        "print(r['totals']['created'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def large_mail(i: int, size: int) -> bytes:
    """A customer message of about `size` bytes: text plus one binary attachment (base64 in MIME)."""
    message = EmailMessage()
    message["From"] = f"customer{i}@example.org"
    message["To"] = ADDRESS
    message["Subject"] = f"Large scan {i}"
    message.set_content("The scan is attached.\n")
    message.add_attachment(os.urandom(size * 3 // 4 - 4096), maintype="application", subtype="octet-stream",
                           filename=f"scan-{i}.bin")
    return bytes(message)


def bench_large_batch(messages: int = 50, megabytes: int = 25) -> dict:
    """Deliver `messages` of `megabytes` MB to a fresh mailbox, poll once, report peak RSS."""
    from mailbridge.services import mailboxes
    from tests.helpers import connect_mailbox, make_services

    fake = os.environ["FAKE_GOOGLE_URL"]
    requests.post(fake + "/_fake/reset", timeout=60).raise_for_status()
    requests.post(fake + "/_fake/faults", json={"error_rate": 0, "latency_ms": 0}, timeout=10).raise_for_status()
    requests.delete(f"http://{os.environ['FIRESTORE_EMULATOR_HOST']}/emulator/v1/projects/"
                    f"{os.environ['GOOGLE_CLOUD_PROJECT']}/databases/(default)/documents", timeout=30)
    services = make_services()
    connect_mailbox(services, fake, "large", ADDRESS)
    mailboxes.set_mailbox_setting(services, "large", "outgoing.acknowledge_new", "false")
    mailboxes.set_mailbox_setting(services, "large", "incoming.max_message_bytes", str(50 * 1024 * 1024))
    size = megabytes * 1000 * 1000
    for i in range(messages):
        requests.post(f"{fake}/_fake/users/{ADDRESS}/messages", params={"labelIds": "INBOX,UNREAD"},
                      data=large_mail(i, size), timeout=300).raise_for_status()
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", POLL], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    created, rss_kib = out.stdout.strip().splitlines()[-1].split()
    return {"messages": messages, "message_mb": megabytes, "created": int(created),
            "peak_rss_mib": round(int(rss_kib) / 1024, 1), "limit_mib": LIMIT_MIB,
            "seconds": round(time.monotonic() - started, 1)}


def _load_env() -> None:
    for line in (STACK_DIR / "env").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            os.environ[key] = shlex.split(value)[0] if value else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--mb", type=int, default=25)
    args = parser.parse_args()
    env = dict(os.environ, MAILBRIDGE_STACK_DIR=str(STACK_DIR))
    subprocess.run([str(ROOT / "scripts" / "stack"), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        os.environ["MAILBRIDGE_STACK_DIR"] = str(STACK_DIR)
        _load_env()
        os.environ.pop("MAILBRIDGE_PUBSUB_TOPIC", None)
        result = bench_large_batch(args.messages, args.mb)
    finally:
        subprocess.run([str(ROOT / "scripts" / "stack"), "down"], env=env, stdout=subprocess.DEVNULL)
    print(json.dumps({"large_batch_peak_rss_mib": result["peak_rss_mib"], "large_batch": result}, indent=2))


if __name__ == "__main__":
    main()
