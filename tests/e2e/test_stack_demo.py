"""`make demo`'s script end to end (README.md): it starts its own stack (in a temporary
MAILBRIDGE_STACK_DIR), connects a mailbox through the consent page, delivers mail, polls as
Cloud Scheduler would, prints tickets (one with a threaded reply) and stops the stack.

Part of `make test` (not a soak test); about 40 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
DEMO = REPO / "scripts" / "demo"
FOREIGN = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "FAKE_GOOGLE_URL",
           "GOOGLE_CLOUD_PROJECT", "OAUTHLIB_INSECURE_TRANSPORT")


def section(output: str, title: str) -> str:
    """The text of one `=== title` step of the demo."""
    match = re.search(rf"^=== {re.escape(title)}.*?$(.*?)(?=^=== |\Z)", output, re.S | re.M)
    assert match, f"the demo printed no step {title!r}:\n{output[-3000:]}"
    return match.group(1)


@pytest.mark.timeout(240)
def test_demo_shows_tickets_and_a_threaded_reply(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_") and k not in FOREIGN}
    env["MAILBRIDGE_STACK_DIR"] = str(tmp_path / "stack")
    env["MAILBRIDGE_DEMO_CLIENT_SECRET"] = "demo-client-secret-never-shown"
    python = REPO / ".venv" / "bin" / "python"
    result = subprocess.run([str(python if python.exists() else sys.executable), str(DEMO)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=180)
    output = result.stdout
    assert result.returncode == 0, f"demo failed:\n{output[-4000:]}\n{result.stderr[-3000:]}"
    assert "demo-client-secret-never-shown" not in output + result.stderr

    assert "Connected as support@acme-demo.example" in section(output, "Sign in with Google")
    tickets = section(output, "Tickets")
    listed = re.findall(r"^#(\d+)\s+open\s+support\s+(\S+)\s+(.+?)\s+\((\d+) messages?\)$", tickets, re.M)
    by_number = {int(n): (email, subject, int(count)) for n, email, subject, count in listed}
    assert set(by_number) == {1, 2}, tickets
    assert by_number[1][:2] == ("dana@customer.example", "Printer on floor 3 is jammed")
    assert by_number[2][:2] == ("lee@buyer.example", "Invoice 2291 question")
    # ticket 1: the customer's mail, our acknowledgement, then the customer's threaded reply
    shown = tickets.split("tickets show 1", 1)[1]
    assert shown.index("the printer on floor 3 jams") < shown.index("It is jamming again this morning.")
    assert "Re: Printer on floor 3 is jammed" in shown
    assert "> we will look" not in shown  # quoted history is not shown as the message text
    inbound = section(output, "Inbound log")
    assert re.search(r"\bupdated\s+ticket 1\b", inbound), inbound
    assert re.search(r"\bignored\b.*auto-replied", inbound), inbound
    assert len(re.findall(r"\bcreated\s+ticket \d", inbound)) == 2
    # the demo ends with its tickets' events: the log, and what reached the events subscription
    events = section(output, "Ticket events")
    log, arrived = events.split("events tail", 1)
    for text in (log, arrived):
        assert re.search(r"ticket\.created\s+1\s+seq 1 ", text) and re.search(r"ticket\.created\s+2\s+seq 1 ", text), text
        assert re.search(r"ticket\.message_added\s+1\s+seq \d+ ", text), text
    assert "stack: stopped" in section(output, "Stop the local stack")
    assert not (tmp_path / "stack" / "pids.json").exists()
