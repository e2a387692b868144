"""Reliability and security suite: shared fixtures, a backlog builder, a canonical view of what a
poll produced (to compare a crashed run with a clean one), and the session's secret ledger.

The ledger: every client secret, refresh/access token and auth code a test handles is recorded
(the fake issues them with recognisable prefixes, so leaked ones are also caught by pattern),
and every test leaves evidence behind — the Firestore export at its end, mailbridge's log lines,
HTML pages served to it, exception messages it saw. A session fixture scans it all after the
last test, whatever the order; test_secrets.py also checks a fresh flow on its own.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from mailbridge.services import connect as connect_service
from tests.helpers import (CLIENT_SECRET, client_id_for, event_ledger, export_all, follow_consent, make_mail,
                           register_google_side)

ADDRESS = "help@acme.example"
MAILBOX = "help"
SOAK = bool(os.environ.get("MAILBRIDGE_SOAK"))

# Tokens and codes the fake issues: ya29.fake-… (access), 1//fake-… (refresh), 4/fake-… (code).
SECRET_PATTERN = re.compile(r"(ya29\.fake-|1//fake-|1%2F%2Ffake-|4/fake-|4%2Ffake-)[A-Za-z0-9_-]{8,}")


class Ledger:
    """Session-wide: secrets seen, and evidence (text that must not contain them)."""

    def __init__(self):
        self.secrets: set[str] = {CLIENT_SECRET}
        self.evidence: list[tuple[str, str]] = []
        self.figures: dict[str, dict] = {}

    def secret(self, value) -> None:
        if isinstance(value, str) and len(value) >= 8:
            self.secrets.add(value)

    def record(self, source: str, text) -> None:
        if text:
            self.evidence.append((source, text if isinstance(text, str) else json.dumps(text, default=str)))

    def leaks(self) -> list[tuple[str, str]]:
        """(source, secret's first characters) for each known secret or token-shaped text found."""
        secrets = {s for s in self.secrets if s}
        found = []
        for source, text in self.evidence:
            for secret in secrets:
                if secret in text:
                    found.append((source, secret[:6] + "…"))
            match = SECRET_PATTERN.search(text)
            if match:
                found.append((source, match.group(0)[:12] + "…"))
        return found

    def page(self, source: str, response) -> None:
        self.record(f"page {source}", response.text if hasattr(response, "text") else str(response))
        self.record(f"headers {source}", json.dumps(dict(getattr(response, "headers", {}) or {})))

    def figure(self, scenario: str, **values) -> None:
        self.figures.setdefault(scenario, {}).update(values)


LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


class _Tee(io.TextIOBase):
    """mailbridge's JSON log lines go where they always go AND into the ledger's buffer."""

    def __init__(self, buffer: list[str]):
        self.buffer = buffer

    def write(self, text):
        self.buffer.append(text)
        return sys.stdout.write(text)

    def flush(self):
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def _leave_evidence(request):
    """Log lines and the final Firestore state of every reliability test go into the ledger."""
    from mailbridge import logs

    lines: list[str] = []
    previous = logs._stream
    logs._stream = _Tee(lines)
    try:
        yield
    finally:
        logs._stream = previous
        LEDGER.record(f"logs {request.node.nodeid}", "".join(lines))
        if "firestore" in request.fixturenames or "mb_env" in request.fixturenames:
            host = request.getfixturevalue("firestore_emulator")
            LEDGER.record(f"firestore {request.node.nodeid}", json.dumps(export_firestore(host), default=str))


def export_firestore(host: str) -> list[dict]:
    from google.cloud import firestore

    from tests.conftest import TEST_PROJECT

    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        client = firestore.Client(project=TEST_PROJECT)
        try:
            return export_all(client)
        finally:
            client.close()
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


# --------------------------------------------------------------------------- connecting


def connect(services, fake_url: str, name: str = MAILBOX, address: str = ADDRESS, *, acknowledge: bool = False):
    """connect_mailbox, recording the auth code and refresh token; acknowledgements off by default
    (each costs 100 quota units: a 200-message backlog would otherwise wait for Gmail's quota)."""
    from mailbridge.services import mailboxes

    client_id = client_id_for(name)
    register_google_side(fake_url, services, address, client_id)
    mailboxes.add_mailbox(services, name, address)
    mailboxes.add_credentials(services, name, services.settings.instance, client_id, CLIENT_SECRET)
    params = follow_consent(services, fake_url, name)
    LEDGER.secret(params.get("code"))
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    mailbox = services.store.get_mailbox(name)
    LEDGER.secret(services.secrets.get(mailbox["credentials"][0]["refresh_token_secret"]))
    if not acknowledge:
        mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    return mailbox


def remember_access_tokens(services) -> None:
    for credentials in list(services.google._cache.values()):
        LEDGER.secret(getattr(credentials, "token", None))


# --------------------------------------------------------------------------- the backlog


def backlog_messages(count: int, address: str = ADDRESS, *, tag: str = "m") -> list[bytes]:
    """`count` messages in a realistic mix: new conversations, replies threaded by In-Reply-To,
    auto-replies (ignored), and every 7th conversation with an attachment (Cloud Storage)."""
    from tests.corpus import make_message

    messages = []
    for i in range(count):
        message_id = f"<{tag}{i}@customer.example>"
        sender = f'"Customer {i}" <c{i}@customer.example>'
        if i % 5 == 3:  # a reply to the message two before it, from that sender
            parent = i - 2
            messages.append(make_message(
                from_=f'"Customer {parent}" <c{parent}@customer.example>', to=address, subject=f"Re: Issue {parent}",
                body=f"More about issue {parent}\n", message_id=message_id,
                in_reply_to=f"<{tag}{parent}@customer.example>", references=f"<{tag}{parent}@customer.example>"))
        elif i % 11 == 9:
            messages.append(make_message(from_=sender, to=address, subject=f"Out of office {i}",
                                         body="I am away.\n", message_id=message_id, auto_submitted="auto-replied"))
        elif i % 7 == 0:
            messages.append(make_message(from_=sender, to=address, subject=f"Issue {i}", body=f"Problem {i}\n",
                                         message_id=message_id,
                                         attachments=[(f"log-{i}.txt", "text/plain", f"log line {i}\n".encode())]))
        else:
            messages.append(make_mail(sender, address, f"Issue {i}", f"Problem {i}", message_id=message_id))
    return messages


def deliver_all(fake_url: str, address: str, messages: list[bytes]) -> list[str]:
    """Deliver over one HTTP session; returns the Gmail ids in delivery order."""
    ids = []
    with requests.Session() as http:
        for raw in messages:
            response = http.post(f"{fake_url}/_fake/users/{address}/messages", params={"labelIds": "INBOX,UNREAD"},
                                 data=raw, headers={"Content-Type": "message/rfc822"}, timeout=30)
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


# --------------------------------------------------------------------------- what a poll produced


def outcome_view(services, gmail_ids: list[str], name: str = MAILBOX) -> dict:
    """A run's result, independent of ticket numbers and timing: per delivered message (by
    delivery index) its outcome and the delivery indexes sharing its ticket; plus counts."""
    store = services.store
    index = {gid: i for i, gid in enumerate(gmail_ids)}
    rows = [s.to_dict() for s in store.db.collection("inbound").stream()]
    rows = [r for r in rows if r.get("mailbox") == name]
    by_ticket: dict[str, list[int]] = {}
    per_message = {}
    for row in rows:
        i = index.get(row["gmail_message_id"])
        per_message.setdefault(i, []).append(row["outcome"])
        if row.get("ticket_id"):
            by_ticket.setdefault(row["ticket_id"], []).append(i)
    tickets = [s.to_dict() for s in store.db.collection("tickets").stream()]
    tickets = [t for t in tickets if t.get("mailbox") == name]
    groups = {i: tuple(sorted(members)) for members in by_ticket.values() for i in members}
    creators: dict[str, int] = {}
    for row in rows:
        if row.get("outcome") == "created" and row.get("ticket_id"):
            creators[row["ticket_id"]] = creators.get(row["ticket_id"], 0) + 1
    return {
        "rows": len(rows),
        "outcomes": {i: tuple(o) for i, o in sorted(per_message.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))},
        "groups": dict(sorted(groups.items())),
        "tickets": len(tickets),
        "ticket_message_counts": sorted(int(t.get("message_count", 0)) for t in tickets),
        "ticket_message_ids": sorted(m for t in tickets for m in t.get("message_ids", [])),
        # a ticket no row created (a commit split in two), or one created twice
        "ticket_duplicates": sum(1 for t in tickets if str(t.get("id")) not in by_ticket)
        + sum(n - 1 for n in creators.values() if n > 1),
    }


def event_problems(services, name: str = MAILBOX) -> list[str]:
    """What breaks "exactly one event per change" for one mailbox (tests/helpers.event_ledger)."""
    return event_ledger(services, name)["problems"]


def lost_and_duplicated(view: dict, delivered: int) -> tuple[int, int]:
    """Messages with no final row (lost) and extra rows/ticket entries (duplicated)."""
    final = ("created", "updated", "ignored", "quarantined")
    lost = sum(1 for i in range(delivered) if not any(o in final for o in view["outcomes"].get(i, ())))
    duplicated = sum(max(0, len(o) - 1) for o in view["outcomes"].values())
    duplicated += view["ticket_duplicates"]
    return lost, duplicated


def gmail_labels(fake_url: str, address: str = ADDRESS) -> dict[str, list[str]]:
    return {m["id"]: m["labelIds"] for m in requests.get(f"{fake_url}/_fake/users/{address}/messages", timeout=30).json()}


def fake_stats(fake_url: str, address: str = ADDRESS) -> dict:
    return requests.get(f"{fake_url}/_fake/stats", timeout=30).json()["users"].get(address, {})


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def location_params(response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}


@pytest.fixture(scope="session", autouse=True)
def _no_secret_leaked_anywhere():
    """After the whole suite, whatever order it ran in: the evidence every test left holds no
    secret (test_secrets.py checks a fresh flow on its own as well)."""
    yield
    leaks = LEDGER.leaks()
    if leaks:
        pytest.fail(f"secrets leaked into the evidence: {leaks[:10]}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _write_figures():
    """The figures docs/reliability.md quotes, from the last run: test-artifacts/reliability-figures.json."""
    yield
    if LEDGER.figures:
        from tests.conftest import ARTIFACTS

        ARTIFACTS.mkdir(exist_ok=True)
        name = "reliability-figures-soak.json" if SOAK else "reliability-figures.json"
        (ARTIFACTS / name).write_text(json.dumps(LEDGER.figures, indent=1, default=str))
