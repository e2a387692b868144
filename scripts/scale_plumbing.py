"""The scale bench's plumbing (scripts/bench_scale.py; docs/benchmarks.md, "Scale out"): a stack
with the work queue on, mailboxes connected through the product's real connect path, mail
delivered to the fake, the tick, inbound rows counted, Firestore operations counted.

Connecting signs in through the fake's consent page as a person does (GET the page, POST its
form with the account and the permissions), not through `/_fake/oauth/approve-as`, which approves
as one account at a time: so thousands of mailboxes connect concurrently."""

from __future__ import annotations

import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import requests

import stacklib

LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "30"))
CONNECT_THREADS = int(os.environ.get("BENCH_CONNECT_THREADS", "16"))
DOMAIN = "scale.example"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, stack: stacklib.Stack):
        self.stack = stack
        self.env = stack.env(push=True)
        os.environ.update(self.env)
        self.fake_url = self.env["FAKE_GOOGLE_URL"]
        self.functions_url = stack.services["functions"].url
        self.http = requests.Session()
        from tests.helpers import make_services

        self.services = make_services()
        self.connected: list[str] = []
        self.push_endpoints = [self.functions_url + "/push"]

    def scale_out(self, instances: int) -> None:
        """`instances` functions servers share the work queue's shards (the others started here):
        one Python process serves about one core at most (the GIL), where Cloud Run runs as many
        instances as the load asks for (docs/benchmarks.md, "Scale out")."""
        for index in range(2, instances + 1):
            server = self.stack.start_functions(f"functions_{index}", push=True)
            self.push_endpoints.append(server.url + "/push")
        if len(self.push_endpoints) > 1:
            host = self.env["PUBSUB_EMULATOR_HOST"]
            stacklib.create_work_subscription(host, self.stack.project, self.push_endpoints)

    def fake(self, path: str, body=None, method: str | None = None):
        method = method or ("post" if body is not None else "get")
        response = getattr(self.http, method)(self.fake_url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        self.fake("/_fake/reset", {})
        self.fake("/_fake/faults", {"error_rate": 0, "latency_ms": LATENCY_MS})
        self.fake("/_fake/notifications", {"paused": True})  # the scheduled path alone must find the mail
        requests.delete(f"http://{self.env['FIRESTORE_EMULATOR_HOST']}/emulator/v1/projects/"
                        f"{self.env['GOOGLE_CLOUD_PROJECT']}/databases/(default)/documents", timeout=60)
        self.connected = []

    def connect(self, count: int) -> None:
        """Connect mailboxes up to `count` through the real OAuth flow, CONNECT_THREADS at a time."""
        start = len(self.connected)
        with ThreadPoolExecutor(CONNECT_THREADS) as pool:
            self.connected.extend(pool.map(self.connect_one, [f"s{i:05d}" for i in range(start, count)]))

    def connect_one(self, name: str) -> str:
        """The product's connect path: mailbox, credential set, connect link, OAuth start, the
        consent page signed in as the mailbox's account, the callback (connect.complete)."""
        from mailbridge.services import connect as connect_service
        from mailbridge.services import mailboxes
        from tests.helpers import CLIENT_SECRET, client_id_for, register_google_side

        address = f"{name}@{DOMAIN}"
        client_id = client_id_for(name)
        register_google_side(self.fake_url, self.services, address, client_id)
        mailboxes.add_mailbox(self.services, name, address)
        mailboxes.add_credentials(self.services, name, "production", client_id, CLIENT_SECRET)
        link = mailboxes.connect_url(self.services, name)
        consent_url = mailboxes.start_from_link(self.services, parse_qs(urlparse(link).query)["t"][0])
        params = self.sign_in(consent_url, address)
        connect_service.complete(self.services, params["state"], params.get("code"), params.get("error"),
                                 params.get("scope"))
        mailboxes.set_mailbox_setting(self.services, name, "outgoing.acknowledge_new", "false")
        return name

    def sign_in(self, consent_url: str, address: str) -> dict:
        """The consent page as a person fills it: the account, every permission asked, Allow."""
        page = requests.get(consent_url, allow_redirects=False, timeout=60)
        page.raise_for_status()
        form = {"transaction": unescape(re.search(r'name="transaction" value="([^"]*)"', page.text).group(1)),
                "email": address, "action": "allow",
                "scope": [unescape(v) for v in re.findall(r'name="scope" value="([^"]*)"', page.text)]}
        answer = requests.post(urljoin(consent_url, "/o/oauth2/consent"), data=form, allow_redirects=False, timeout=60)
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"consent refused: {answer.status_code} {answer.text[:200]}")
        return {k: v[0] for k, v in parse_qs(urlparse(answer.headers["Location"]).query).items()}

    def deliver(self, names: list[str], per_mailbox: int, tag: str, sender_domain: str | None = None) -> int:
        """`per_mailbox` new messages in each mailbox; from c0…@customer.example, or from a sender
        of its own per mailbox and message @sender_domain."""
        from tests.helpers import make_mail

        def one(item):
            name, i = item
            address = f"{name}@{DOMAIN}"
            sender = f"c{i}.{name}@{sender_domain}" if sender_domain else f"c{i}@customer.example"
            raw = make_mail(f'"Customer {i}" <{sender}>', address, f"{tag} {name} {i}")
            self.http.post(f"{self.fake_url}/_fake/users/{address}/messages", params={"labelIds": "INBOX,UNREAD"},
                           data=raw, headers={"Content-Type": "message/rfc822"}, timeout=60).raise_for_status()

        items = [(n, i) for n in names for i in range(per_mailbox)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, items))
        return len(items)

    def inbound_count(self, mailbox: str | None = None) -> int:
        query = self.services.store.db.collection("inbound")
        if mailbox:
            from google.cloud.firestore_v1.base_query import FieldFilter

            query = query.where(filter=FieldFilter("mailbox", "==", mailbox))
        return int(query.count().get()[0][0].value)

    def tick(self) -> dict:
        response = self.http.post(self.functions_url + "/poll", json={}, timeout=600)
        response.raise_for_status()
        return response.json()

    def wait_rows(self, expected: int, timeout: float, mailbox: str | None = None) -> float | None:
        """Seconds until `expected` inbound rows exist (None if not within `timeout`). The count
        is a query the emulator answers by reading every row, so it is asked once a second until
        the last 5 % and then every quarter second: the watching costs the stack under test
        little and the figure stays within 0.25 s."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            count = self.inbound_count(mailbox)
            if count >= expected:
                return time.monotonic() - started
            time.sleep(0.25 if count >= expected * 0.95 else 1.0)
        return None


class FirestoreCounter:
    """Counts Firestore document reads and writes made in this process (billing units)."""

    def __init__(self):
        self.reads = 0
        self.writes = 0
        self._patches = []

    def __enter__(self):
        from google.cloud.firestore_v1 import batch, client, document, query, transaction

        counter = self

        def patch(owner, name, wrapper):
            original = getattr(owner, name)
            self._patches.append((owner, name, original))
            setattr(owner, name, wrapper(original))

        def get(original):
            def wrapped(self_, *args, **kwargs):
                counter.reads += 1
                return original(self_, *args, **kwargs)
            return wrapped

        def stream(original):
            def wrapped(self_, *args, **kwargs):
                seen = 0
                for doc in original(self_, *args, **kwargs):
                    seen += 1
                    yield doc
                counter.reads += max(1, seen)  # a query costs at least one read
            return wrapped

        def get_all(original):
            def wrapped(self_, references, *args, **kwargs):
                references = list(references)
                counter.reads += len(references)
                return original(self_, references, *args, **kwargs)
            return wrapped

        def commit(original):
            def wrapped(self_, *args, **kwargs):
                counter.writes += len(getattr(self_, "_write_pbs", []) or [])
                return original(self_, *args, **kwargs)
            return wrapped

        patch(document.DocumentReference, "get", get)
        patch(query.Query, "stream", stream)
        patch(client.Client, "get_all", get_all)
        patch(batch.WriteBatch, "commit", commit)
        patch(transaction.Transaction, "_commit", commit)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)


