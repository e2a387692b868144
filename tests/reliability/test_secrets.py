"""No client secret, refresh/access token or auth code appears in a Firestore export, log line,
served page or exception message, nor in the functions server's own log. This test runs a fresh
end-to-end sign-in and poll over HTTP and scans everything collected so far, so it proves
something in any order; the session fixture in conftest.py scans the whole suite's evidence
once every test has run."""

from __future__ import annotations

import json
from pathlib import Path

from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from tests.helpers import make_services, post_link
from tests.reliability.conftest import (ADDRESS, LEDGER, backlog_messages, deliver_all, export_firestore,
                                        remember_access_tokens)
from tests.reliability.test_oauth_attacks import callback, consent_as, prepare, start


def test_no_secret_in_firestore_logs_pages_or_errors(mb_env, fake, firestore, storage_emulator, functions_url, _stack):
    services = make_services()
    prepare(services, fake)
    consent, _state = start(services)
    params = consent_as(fake, consent, ADDRESS)
    assert callback(functions_url, **params).status_code == 200
    cred = services.store.get_mailbox("help")["credentials"][0]
    LEDGER.secret(services.secrets.get(cred["refresh_token_secret"]))
    mailboxes.set_mailbox_setting(services, "help", "outgoing.acknowledge_new", "false")
    ingest.poll(services)
    deliver_all(fake.url, ADDRESS, backlog_messages(10))
    ingest.poll(services)
    remember_access_tokens(services)
    session_link = mailboxes.admin_url(services)
    import requests

    http = requests.Session()
    post_link(session_link, http)
    for path in ("/", "/mailboxes/help", "/mailboxes/help/inbound", "/tickets", "/settings"):
        LEDGER.page(path, http.get(f"{functions_url}/admin{path}", timeout=30))
    LEDGER.record("firestore final", json.dumps(export_firestore(firestore), default=str))
    for log in Path(_stack.stack.log_dir).glob("functions*.log"):
        text = log.read_text("utf-8", "replace")
        # werkzeug's access lines echo request URLs (Google's redirect carries the one-time code,
        # spent by then); mailbridge's own JSON lines must carry no secret at all.
        LEDGER.record(f"server log {log.name}", "\n".join(line for line in text.splitlines() if line.startswith("{")))

    secrets = {s for s in LEDGER.secrets if s}
    assert len(secrets) >= 4, "the flow should have handled a client secret, a code and tokens"
    leaks = LEDGER.leaks()
    LEDGER.figure("secrets scan", secrets_known=len(secrets), evidence_items=len(LEDGER.evidence),
                  evidence_mib=round(sum(len(t) for _s, t in LEDGER.evidence) / 2**20, 1), leaks=len(leaks))
    assert leaks == []
