"""The CLI contract (README.md, CLI), end to end: `scripts/mailbridge` as a subprocess against a real
local stack started once for this module with `scripts/stack up` (its own MAILBRIDGE_STACK_DIR),
with the values of its `.stack/env` as the subprocess environment; `scripts/stack down` at the end.

The admin's session is built by module fixtures (mailbox added → credentials → connected →
mail polled into tickets), so each test asks for the state it needs and passes in any order;
tests that change shared state put it back, and `disconnect` works on a mailbox of its own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from tests.helpers import make_email, post_link

REPO = Path(__file__).resolve().parent.parent.parent
CLI = str(REPO / "scripts" / "mailbridge")
STACK = str(REPO / "scripts" / "stack")
ADDRESS = "support@acme-cli.example"
CLIENT_ID = "4242424242-cli.apps.googleusercontent.com"
CLIENT_SECRET = "cli-client-secret-do-not-print"

MAILBOX_KEYS = {"name", "address", "type", "status", "incoming", "outgoing", "credentials", "last_poll_at",
                "last_error"}
CREDENTIAL_KEYS = {"instance", "client_id", "redirect_uri", "status", "connected_email", "last_error", "connected_at"}
# The contract's keys plus each message's "authentication" verdict (docs/reliability.md, 28.4).
INBOUND_KEYS = {"gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at",
                "authentication"}
TICKET_KEYS = {"id", "number", "subject", "status", "mailbox", "requester", "participants", "created_at",
               "updated_at", "messages", "reply_from"}  # reply_from: added by issue 30 (aliases)
MESSAGE_KEYS = {"id", "direction", "gmail_message_id", "message_id", "from", "to", "cc", "subject", "date", "text",
                "html", "attachments", "authentication"}
ATTACHMENT_KEYS = {"filename", "content_type", "size", "content_id", "sha256"}

# Anything a developer's shell may have sourced from another stack must not reach the subprocesses.
FOREIGN = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "FAKE_GOOGLE_URL",
           "GOOGLE_CLOUD_PROJECT", "OAUTHLIB_INSECURE_TRANSPORT")


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_") and k not in FOREIGN}


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("cli-stack")
    env = {**clean_environ(), "MAILBRIDGE_STACK_DIR": str(state)}
    up = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    try:
        assert up.returncode == 0, f"scripts/stack up failed:\n{up.stdout}\n{up.stderr}"
        values = read_env_file(state / "env")
        for key in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "MAILBRIDGE_FUNCTIONS_URL", "FAKE_GOOGLE_URL",
                    "MAILBRIDGE_INSTANCE"):
            assert values.get(key), f".stack/env has no {key}"
        assert values["MAILBRIDGE_INSTANCE"] == "production"
        # `up` twice is harmless
        again = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
        assert again.returncode == 0 and "already running" in again.stdout
        yield {**clean_environ(), **values}
    finally:
        down = subprocess.run([STACK, "down"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
        assert down.returncode == 0, down.stderr


class Run:
    def __init__(self, result: subprocess.CompletedProcess):
        self.code, self.out, self.err = result.returncode, result.stdout, result.stderr

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            pytest.fail(f"stdout is not JSON (log lines mixed in?):\n{self.out[:2000]}\nstderr:\n{self.err[:1000]}")

    def __repr__(self):
        return f"exit {self.code}\nstdout:\n{self.out[-3000:]}\nstderr:\n{self.err[-3000:]}"


@pytest.fixture(scope="module")
def mb(stack):
    def run(*args, stdin: str | None = None, env: dict | None = None) -> Run:
        result = subprocess.run([CLI, *args], env={**stack, **(env or {})}, input=stdin, capture_output=True,
                                text=True, timeout=180, cwd=REPO)
        return Run(result)

    return run


def ok(run: Run) -> Run:
    assert run.code == 0, run
    assert CLIENT_SECRET not in run.out + run.err
    return run


def bad_input(run: Run, *words: str) -> str:
    """Exit 2 with exactly one line on stderr (and nothing on stdout)."""
    assert run.code == 2, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run
    assert run.out == "", run
    for word in words:
        assert word in lines[0], run
    return lines[0]


def fake_post(stack, path, **kwargs):
    response = requests.post(stack["FAKE_GOOGLE_URL"] + path, timeout=30, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def mail(sender: str, subject: str, body: str, **headers) -> EmailMessage:
    return make_email(sender, ADDRESS, subject, body, **headers)


def deliver(stack, message: EmailMessage) -> dict:
    return fake_post(stack, f"/_fake/users/{ADDRESS}/messages", params={"labelIds": "INBOX,UNREAD"},
                     data=bytes(message), headers={"Content-Type": "message/rfc822"})


def wait_for(predicate, timeout=20.0, interval=0.3):
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def connect(mb, stack, name: str, address: str, client_id: str) -> tuple[str, requests.Response]:
    """Credentials, the Google side (a user and an OAuth client) and the consent: (link, page)."""
    fake_post(stack, "/_fake/users", json={"email": address, "name": "ACME Support"})
    fake_post(stack, "/_fake/oauth/clients", json={"client_id": client_id, "client_secret": CLIENT_SECRET,
                                                   "redirect_uris": [stack["MAILBRIDGE_FUNCTIONS_URL"] + "/oauth_callback"]})
    url = ok(mb("connect-url", name)).out.strip()
    fake_post(stack, "/_fake/oauth/approve-as", json={"email": address})
    try:
        # oauth_start's confirmation button (POST) → consent (approved) → oauth_callback
        page = post_link(url, allow_redirects=True, timeout=60)
    finally:
        fake_post(stack, "/_fake/oauth/approve-as", json={"email": None})
    return url, page


@pytest.fixture(scope="module")
def added(mb):
    """`mailbox add support` (acknowledgements off: the sent mail of test_reply stays countable)."""
    run = ok(mb("mailbox", "add", "support", "--address", ADDRESS.upper()))
    ok(mb("mailbox", "set", "support", "outgoing.acknowledge_new", "false"))
    return run


@pytest.fixture(scope="module")
def with_credentials(mb, added):
    return ok(mb("credentials", "add", "support", "--instance", "production", "--client-id", CLIENT_ID,
                 "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"))


@pytest.fixture(scope="module")
def connected(mb, stack, with_credentials):
    return connect(mb, stack, "support", ADDRESS, CLIENT_ID)


@pytest.fixture(scope="module")
def polled(mb, stack, connected):
    """Two customers wrote; the poll (and push) made their tickets: (first message, poll answers)."""
    answers = [ok(mb("poll", "--json")).json()]
    first = mail('"Dana Customer" <dana@customer.example>', "Printer on floor 3 is jammed", "It jams.\n")
    deliver(stack, first)
    invoice = mail('"Lee Buyer" <lee@buyer.example>', "Invoice 2291", "See the HTML part.")
    invoice.add_alternative("<p>The <b>total</b> is wrong.</p><script>alert(1)</script>", subtype="html")
    invoice.add_attachment(b"%PDF-1.4 invoice\n", maintype="application", subtype="pdf", filename="invoice.pdf")
    deliver(stack, invoice)
    answers.append(ok(mb("poll", "support", "--json")).json())
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(ok(mb("inbound", "support", "--json")).json()))
    assert rows, "two inbound rows"
    return first, answers


# ------------------------------------------------------------------------------ mailboxes


def test_mailbox_add_list_show(mb, added):
    out = added.out
    assert "support" in out and "credentials add" in out
    rows = ok(mb("mailbox", "list", "--json")).json()
    assert "support" in [r["name"] for r in rows]
    view = ok(mb("mailbox", "show", "support", "--json")).json()
    assert MAILBOX_KEYS <= set(view)
    assert (view["name"], view["address"], view["type"]) == ("support", ADDRESS, "google")
    assert view["incoming"]["after_processing"] == "mark_read"
    assert "watch_expiration" in view
    text = ok(mb("mailbox", "show", "support")).out
    assert "support <" + ADDRESS + ">" in text
    assert "support" in ok(mb("mailbox", "list")).out


def test_a_new_mailbox_has_no_credentials_nor_polls(mb):
    ok(mb("mailbox", "add", "fresh", "--address", "fresh@acme-cli.example"))
    view = ok(mb("mailbox", "show", "fresh", "--json")).json()
    assert view["credentials"] == [] and view["last_poll_at"] is None and view["last_error"] is None
    bad_input(mb("mailbox", "set", "fresh", "incoming.after_processing", "delete"), "deletion label first")


def test_mailbox_bad_input(mb, added):
    bad_input(mb("mailbox", "add", "support", "--address", "other@acme-cli.example"), "already exists")
    bad_input(mb("mailbox", "add", "no spaces!", "--address", "x@acme-cli.example"), "mailbox name")
    bad_input(mb("mailbox", "add", "second", "--address", "not-an-address"), "not an email address")
    bad_input(mb("mailbox", "show", "nosuch"), "no mailbox named 'nosuch'")
    bad_input(mb("mailbox", "show", "nosuch", "--json"), "nosuch")
    bad_input(mb("mailbox", "set", "nosuch", "incoming.after_processing", "archive"), "nosuch")
    bad_input(mb("mailbox", "set", "support", "incoming.after_processing", "shred"), "leave", "delete")
    bad_input(mb("mailbox", "set", "support", "incoming.enabled", "perhaps"), "true or false")
    bad_input(mb("mailbox", "set", "support", "incoming.no_such_key", "1"), "unknown setting")


def test_mailbox_set(mb, added):
    assert "incoming.after_processing" in ok(mb("mailbox", "set", "support", "incoming.after_processing", "archive")).out
    assert ok(mb("mailbox", "show", "support", "--json")).json()["incoming"]["after_processing"] == "archive"
    ok(mb("mailbox", "set", "support", "incoming.after_processing", "mark_read"))
    assert ok(mb("mailbox", "show", "support", "--json")).json()["outgoing"]["acknowledge_new"] is False


# ------------------------------------------------------------------------------ credentials and connection


def test_credentials_add(mb, stack):
    ok(mb("mailbox", "add", "creds", "--address", "creds@acme-cli.example"))
    bad_input(mb("credentials", "add", "creds", "--instance", "production", "--client-id", "4242424242-cli",
                  "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"), "apps.googleusercontent.com")
    bad_input(mb("credentials", "add", "creds", "--instance", "production", "--client-id", CLIENT_ID),
              "--client-secret-stdin")
    bad_input(mb("credentials", "add", "creds", "--instance", "Prod Env", "--client-id", CLIENT_ID,
                 "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"), "instance")
    bad_input(mb("credentials", "add", "nosuch", "--instance", "production", "--client-id", CLIENT_ID,
                 "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"), "nosuch")
    out = ok(mb("credentials", "add", "creds", "--instance", "production", "--client-id", CLIENT_ID,
                "--client-secret-stdin", stdin=CLIENT_SECRET + "\n")).out
    redirect = stack["MAILBRIDGE_FUNCTIONS_URL"] + "/oauth_callback"
    assert redirect in out
    bad_input(mb("credentials", "add", "creds", "--instance", "production", "--client-id", CLIENT_ID,
                 "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"), "already has")
    view = ok(mb("mailbox", "show", "creds", "--json")).json()
    [cred] = view["credentials"]
    assert set(cred) == CREDENTIAL_KEYS
    assert (cred["instance"], cred["client_id"], cred["redirect_uri"], cred["status"]) == (
        "production", CLIENT_ID, redirect, "not_connected")
    assert view["status"] == "not_connected"


def test_connect_url_through_the_consent_page(mb, stack, connected):
    bad_input(mb("connect-url", "nosuch"), "nosuch")
    bad_input(mb("connect-url", "support", "--instance", "uat"), "production")
    url, page = connected
    assert url.startswith(stack["MAILBRIDGE_FUNCTIONS_URL"] + "/oauth_start?t=")
    assert len(url.splitlines()) == 1
    assert page.status_code == 200, page.text[:500]
    assert "Connected as" in page.text and ADDRESS in page.text
    assert post_link(url).status_code == 403  # single use (a GET only shows the confirmation page)
    view = ok(mb("mailbox", "show", "support", "--json")).json()
    assert view["status"] == "connected"
    [cred] = view["credentials"]
    assert (cred["status"], cred["connected_email"], cred["last_error"]) == ("connected", ADDRESS, None)
    assert cred["connected_at"]
    assert view["watch_expiration"], "the stack has push on: the watch starts at the connection"


# ------------------------------------------------------------------------------ poll, inbound, tickets


def test_poll_inbound_and_tickets(mb, stack, polled):
    first, (poll, poll_support) = polled
    assert poll["status"] == "ok" and poll["instance"] == "production"
    assert "support" in [m["mailbox"] for m in poll["mailboxes"]]
    # Push may have made the tickets already; poll (what Cloud Scheduler triggers) must still answer.
    poll = poll_support
    assert poll["status"] == "ok"
    assert poll["mailboxes"][0]["outcome"] in ("ok", "skipped")
    text = ok(mb("poll")).out
    assert "support" in text

    def inbound():
        return ok(mb("inbound", "support", "--json")).json()

    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(inbound()))
    assert rows, inbound()
    for row in rows:
        assert set(row) == INBOUND_KEYS
        assert row["outcome"] == "created" and row["ticket_id"] and row["attempts"] == 1
    assert "created" in ok(mb("inbound", "support")).out

    tickets = ok(mb("tickets", "list", "--json")).json()
    assert len(tickets) == 2
    for ticket in tickets:
        assert set(ticket) == TICKET_KEYS
        assert set(ticket["requester"]) == {"email", "name"}
        for message in ticket["messages"]:
            assert set(message) == MESSAGE_KEYS
            # our own answer (test_reply, if it ran first) is "out"; customers' mail is "in"
            assert message["direction"] == ("out" if message["from"]["email"] == ADDRESS else "in")
            assert set(message["from"]) == {"email", "name"}
            for attachment in message["attachments"]:
                assert set(attachment) == ATTACHMENT_KEYS
    by_subject = {t["subject"]: t for t in tickets}
    shown = ok(mb("tickets", "show", by_subject["Invoice 2291"]["id"], "--json")).json()
    assert set(shown) == TICKET_KEYS
    [message] = shown["messages"]
    assert shown["requester"] == {"email": "lee@buyer.example", "name": "Lee Buyer"}
    assert "<script" not in (message["html"] or "") and "total" in message["html"]
    [attachment] = message["attachments"]
    assert set(attachment) == ATTACHMENT_KEYS
    assert (attachment["filename"], attachment["content_type"], attachment["size"]) == (
        "invoice.pdf", "application/pdf", len(b"%PDF-1.4 invoice\n"))
    assert re.fullmatch(r"[0-9a-f]{64}", attachment["sha256"])
    assert "Invoice 2291" in ok(mb("tickets", "list")).out

    # a reply in the same conversation updates the ticket
    dana = by_subject["Printer on floor 3 is jammed"]
    deliver(stack, mail('"Dana Customer" <dana@customer.example>', "Re: Printer on floor 3 is jammed",
                        "Again this morning.\n", In_Reply_To=first["Message-ID"], References=first["Message-ID"]))
    ok(mb("poll", "support"))
    def incoming(view):  # test_reply may have added our own answer to this ticket
        return [m for m in view["messages"] if m["direction"] == "in"]

    threaded = wait_for(lambda: (lambda t: t if len(incoming(t)) == 2 else None)(
        ok(mb("tickets", "show", dana["id"], "--json")).json()))
    assert threaded, "the reply did not join the ticket"
    assert [m["subject"] for m in incoming(threaded)] == ["Printer on floor 3 is jammed",
                                                          "Re: Printer on floor 3 is jammed"]
    assert len(ok(mb("tickets", "list", "--json")).json()) == 2
    text = ok(mb("tickets", "show", dana["id"])).out
    assert "Again this morning." in text

    bad_input(mb("tickets", "show", "999"), "999")
    bad_input(mb("tickets", "list", "--status", "weird"), "weird")
    bad_input(mb("inbound", "nosuch"), "nosuch")


def test_reply(mb, stack, tmp_path, polled):
    tickets = ok(mb("tickets", "list", "--json")).json()
    dana = next(t for t in tickets if t["requester"]["email"] == "dana@customer.example")
    body = tmp_path / "reply.txt"
    body.write_text("We replaced the roller. Dana, can you try again?\n")
    ok(mb("reply", dana["id"], "--body-file", str(body)))
    sent = requests.get(f"{stack['FAKE_GOOGLE_URL']}/_fake/users/{ADDRESS}/sent", timeout=30).json()
    assert len(sent) == 1  # acknowledgements are off for this mailbox
    shown = ok(mb("tickets", "show", dana["id"], "--json")).json()
    assert shown["messages"][-1]["direction"] == "out"
    assert set(shown["messages"][-1]) == MESSAGE_KEYS
    bad_input(mb("reply", dana["id"], "--body-file", str(tmp_path / "missing.txt")), "missing.txt")


# ------------------------------------------------------------------------------ labels


def test_labels(mb, connected):
    rows = ok(mb("labels", "list", "support", "--json")).json()
    for row in rows:
        assert {"id", "name", "type", "visibility"} <= set(row)
    assert {"INBOX", "TRASH"} <= {r["id"] for r in rows}
    created = ok(mb("labels", "create", "support", "Helpdesk/Done", "--json")).json()
    assert created["name"] == "Helpdesk/Done" and created["id"].startswith("Label_")
    assert "Helpdesk/Done" in ok(mb("labels", "list", "support")).out
    assert "created label" in ok(mb("labels", "create", "support", "Plain")).out

    ui_id = "^x_" + created["id"].removeprefix("Label_")
    result = ok(mb("labels", "set-deletion", "support", ui_id, "--json")).json()
    assert (result["id"], result["name"], result["warning"]) == (created["id"], "Helpdesk/Done", None)
    assert ok(mb("labels", "set-deletion", "support", "helpdesk/done", "--json")).json()["id"] == created["id"]
    trash = ok(mb("labels", "set-deletion", "support", "trash"))
    assert "TRASH" in trash.out and "30 days" in trash.err
    assert "30 days" in ok(mb("labels", "set-deletion", "support", "trash", "--json")).json()["warning"]
    ok(mb("labels", "set-deletion", "support", created["id"]))
    incoming = ok(mb("mailbox", "show", "support", "--json")).json()["incoming"]
    assert incoming["deletion_label"] == created["id"]

    bad_input(mb("labels", "create", "support", "Helpdesk/Done"), "already exists")
    bad_input(mb("labels", "create", "support", "Inbox"), "reserved")
    bad_input(mb("labels", "set-deletion", "support", "SENT"), "SENT cannot be used")
    bad_input(mb("labels", "set-deletion", "support", "draft"), "DRAFT")
    bad_input(mb("labels", "set-deletion", "support", "CHAT"), "CHAT")
    bad_input(mb("labels", "set-deletion", "support", "Label_99999"), "no label with id")
    bad_input(mb("labels", "set-deletion", "support", "No Such Label"), "no label named")
    bad_input(mb("labels", "list", "nosuch", "--json"), "nosuch")


# ------------------------------------------------------------------------------ settings and admin


def test_settings(mb, added):
    data = ok(mb("settings", "show", "--json")).json()
    assert data["use_incoming_service"] is True and data["use_scheduling_service"] is True
    assert data["instance"] == "production"
    assert "use_incoming_service = true" in ok(mb("settings", "show")).out
    ok(mb("settings", "set", "use_scheduling_service", "false"))
    assert ok(mb("settings", "show", "--json")).json()["use_scheduling_service"] is False
    off = ok(mb("poll", "--json")).json()
    assert off["status"] == "off" and "use_scheduling_service" in off["reason"]
    ok(mb("settings", "set", "use_scheduling_service", "true"))
    ok(mb("settings", "set", "default_outgoing_mailbox", "support"))
    bad_input(mb("settings", "set", "use_scheduling_service", "maybe"), "true or false")
    bad_input(mb("settings", "set", "no_such_setting", "1"), "unknown setting")
    bad_input(mb("settings", "set", "ticket_tag_format", "[#]"), "{number}")
    bad_input(mb("settings", "set", "default_outgoing_mailbox", "nosuch"), "nosuch")


def test_admin_url(mb, stack, added):
    url = ok(mb("admin-url")).out.strip()
    assert url.startswith(stack["MAILBRIDGE_FUNCTIONS_URL"] + "/admin/login?t=")
    session = requests.Session()
    assert "Open admin session" in session.get(url, timeout=30).text  # a GET spends nothing
    page = post_link(url, session, allow_redirects=True)
    assert page.status_code == 200 and "support" in page.text
    assert post_link(url).status_code in (401, 403)  # single use


# ------------------------------------------------------------------------------ errors


def test_unknown_commands_and_missing_arguments_exit_2(mb, added):
    bad_input(mb("frobnicate"), "frobnicate")
    bad_input(mb("mailbox"), "missing command")
    bad_input(mb("mailbox", "show"), "NAME")
    bad_input(mb("mailbox", "list", "--yaml"), "--yaml")
    bad_input(mb("labels", "set-deletion", "support"), "LABEL")


def test_failures_exit_1(mb):
    import stacklib

    dead = f"http://127.0.0.1:{stacklib.free_port()}"
    run = mb("poll", "--json", env={"MAILBRIDGE_FUNCTIONS_URL": dead})
    assert run.code == 1, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0], run
    assert run.out == ""


# ------------------------------------------------------------------------------ disconnect


def test_disconnect(mb, stack):
    """On a mailbox of its own: the others stay connected whatever runs after this test."""
    address, client_id = "leaving@acme-cli.example", "4343434343-cli.apps.googleusercontent.com"
    ok(mb("mailbox", "add", "leaving", "--address", address))
    ok(mb("credentials", "add", "leaving", "--instance", "production", "--client-id", client_id,
          "--client-secret-stdin", stdin=CLIENT_SECRET + "\n"))
    _url, page = connect(mb, stack, "leaving", address, client_id)
    assert page.status_code == 200, page.text[:300]
    bad_input(mb("disconnect", "leaving", "--instance", "uat"), "uat")
    bad_input(mb("disconnect", "nosuch"), "nosuch")
    assert "disconnected" in ok(mb("disconnect", "leaving")).out
    view = ok(mb("mailbox", "show", "leaving", "--json")).json()
    assert view["status"] == "not_connected" and view["watch_expiration"] is None
    [cred] = view["credentials"]
    assert (cred["status"], cred["connected_email"]) == ("not_connected", None)
    stats = requests.get(stack["FAKE_GOOGLE_URL"] + "/_fake/stats", timeout=30).json()
    assert stats["users"][address]["calls"].get("gmail.users.stop") == 1
    poll = ok(mb("poll", "--json")).json()
    assert "leaving" not in [m["mailbox"] for m in poll["mailboxes"]]
    bad_input(mb("labels", "list", "leaving"), "not connected")
