"""Small helpers shared by integration and e2e tests: build services, connect a mailbox
through the real OAuth flow against the fake, deliver mail."""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, urlparse
import time

import requests

from mailbridge.bootstrap import bootstrap
from mailbridge.config import Settings
from mailbridge.services import connect as connect_service

CLIENT_SECRET = "test-client-secret-7f3a9"


def make_services(**overrides):
    return bootstrap(Settings.from_env(**overrides))


def client_id_for(name: str) -> str:
    return f"{abs(hash(name)) % 10**12}-{name.lower()}.apps.googleusercontent.com"


def register_google_side(fake_url: str, services, address: str, client_id: str, secret: str = CLIENT_SECRET):
    requests.post(f"{fake_url}/_fake/users", json={"email": address, "name": address.split("@")[0]}, timeout=10)
    response = requests.post(f"{fake_url}/_fake/oauth/clients", json={
        "client_id": client_id, "client_secret": secret,
        "redirect_uris": [services.settings.redirect_uri]}, timeout=10)
    response.raise_for_status()


def post_link(link: str, session=None, **kwargs):
    """Spend a signed link as its confirmation page's button does: POST the token (a GET only
    shows the confirmation page)."""
    token = parse_qs(urlparse(link).query)["t"][0]
    kwargs.setdefault("allow_redirects", False)
    kwargs.setdefault("timeout", 30)
    return (session or requests).post(link, data={"t": token}, **kwargs)


def follow_consent(services, fake_url: str, mailbox_name: str, approve_as: str | None = None):
    """connect-url → oauth_start (in process) → fake consent (auto-approve) → callback params."""
    from mailbridge.services import mailboxes

    link = mailboxes.connect_url(services, mailbox_name)
    token = parse_qs(urlparse(link).query)["t"][0]
    consent_url = mailboxes.start_from_link(services, token)
    mailbox = services.store.get_mailbox(mailbox_name)
    requests.post(f"{fake_url}/_fake/oauth/approve-as", json={"email": approve_as or mailbox["address"]},
                  timeout=10).raise_for_status()
    try:
        response = requests.get(consent_url, allow_redirects=False, timeout=10)
    finally:
        requests.post(f"{fake_url}/_fake/oauth/approve-as", json={"email": None}, timeout=10)
    assert response.status_code in (302, 303), response.text[:300]
    params = {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}
    return params


def connect_mailbox(services, fake_url: str, name: str, address: str, instance: str = "production"):
    """Create mailbox + credential set, sign in through the fake consent page, return the mailbox."""
    from mailbridge.services import mailboxes

    client_id = client_id_for(name)
    register_google_side(fake_url, services, address, client_id)
    mailboxes.add_mailbox(services, name, address)
    mailboxes.add_credentials(services, name, instance, client_id, CLIENT_SECRET)
    params = follow_consent(services, fake_url, name)
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    return services.store.get_mailbox(name)


def make_email(sender: str, to: str, subject: str, body: str = "Hello", **headers) -> EmailMessage:
    """A plain customer email; extra headers as keywords (In_Reply_To → In-Reply-To)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = headers.pop("Date", None) or format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = headers.pop("message_id", None) or make_msgid(domain="customer.example")
    for key, value in headers.items():
        message[key.replace("_", "-")] = value
    message.set_content(body)
    return message


def make_mail(sender: str, to: str, subject: str, body: str = "Hello", **headers) -> bytes:
    return bytes(make_email(sender, to, subject, body, **headers))


def deliver(fake_url: str, address: str, raw: bytes, labels: str = "INBOX,UNREAD", **params) -> dict:
    response = requests.post(f"{fake_url}/_fake/users/{address}/messages", params={"labelIds": labels, **params},
                             data=raw, headers={"Content-Type": "message/rfc822"}, timeout=10)
    response.raise_for_status()
    return response.json()


def export_all(db) -> list[dict]:
    """Every document of every collection of a Firestore client (tests search it for leaks)."""
    out = []

    def walk(collection):
        for snap in collection.stream():
            out.append({"path": snap.reference.path, "data": snap.to_dict()})
            for sub in snap.reference.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    return out


def run_cli(args, capsys):
    """Run the CLI in-process on fresh services: (exit code, stdout, stderr)."""
    from mailbridge import bootstrap as bootstrap_module
    from mailbridge.cli import main

    capsys.readouterr()
    bootstrap_module.reset()
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def event_ledger(services, name: str) -> dict:
    """The changes of one mailbox and their stored events (docs/events.md), and what breaks
    "exactly one event per change": each inbound row that created or joined a ticket has its one
    ticket.created / ticket.message_added, each sent outbound record its one ticket.reply_sent, each
    quarantined row one inbound.quarantined; no event without its change, no id twice, each
    subject's sequence 1..n. {"changes", "events" (those of the changes above), "problems"} ([]
    when all hold). Agents' ticket changes and lost connections have no second record to check
    them against: they count in the sequences only."""
    store = services.store
    stored = [e for d in store.event_documents() if d.get("mailbox") == name for e in d["events"]]
    counts: dict[str, int] = {}
    for event in stored:
        counts[event["id"]] = counts.get(event["id"], 0) + 1
    problems = [f"event {i} stored {n} times" for i, n in counts.items() if n > 1]
    rows = store.inbound_log(name, limit=0)
    expected = {f"{name}~{r['gmail_message_id']}": "ticket.created" if r["outcome"] == "created" else "ticket.message_added"
                for r in rows if r.get("outcome") in ("created", "updated")
                and not str(r.get("reason") or "").startswith("copy:")}  # a copy adds no message (domain/copies.py)
    sent = store.outbox_records(name, services.settings.instance, statuses=("sent",))
    expected.update({f"{r['key']}~sent": "ticket.reply_sent" for r in sent})
    found = {e["id"]: e["type"] for e in stored if e["type"] not in ("inbound.quarantined", "mailbox.disconnected",
                                                                     "ticket.updated")}
    problems += [f"no event for {i}" for i in sorted(expected.keys() - found.keys())]
    problems += [f"event {i} without its change" for i in sorted(found.keys() - expected.keys())]
    problems += [f"event {i} is {found[i]}, not {kind}" for i, kind in expected.items() if found.get(i, kind) != kind]
    quarantined = sum(1 for r in rows if r.get("outcome") == "quarantined")
    changes = len(expected) + quarantined
    if sum(1 for e in stored if e["type"] == "inbound.quarantined") != quarantined:
        problems.append(f"{quarantined} quarantined rows, other than their events")
    sequences: dict[str, list[int]] = {}
    for event in stored:
        sequences.setdefault(event["subject"], []).append(event["sequence"])
    for subject, numbers in sequences.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            problems.append(f"subject {subject}: sequences {sorted(numbers)}")
    checked = sum(1 for e in stored if e["type"] not in ("mailbox.disconnected", "ticket.updated"))
    return {"changes": changes, "events": checked, "problems": problems}


def wait_for(predicate, timeout: float, message: str):
    """predicate()'s first true value, asked every 0.3 s; fails naming `message` after `timeout` s."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.3)
        value = predicate()
    assert value, f"timed out after {timeout}s waiting for {message}"
    return value
