"""Connecting a mailbox: credential sets, signed start links, the OAuth callback, tokens."""

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from mailbridge.domain import signing
from mailbridge.errors import AuthError, InvalidInput
from mailbridge.services import connect as connect_service
from mailbridge.services import mailboxes
from tests.helpers import (CLIENT_SECRET, client_id_for, connect_mailbox, export_all, follow_consent, make_services,
                           register_google_side)


@pytest.fixture
def services(mb_env, fake, firestore):
    return make_services()


def _prepare(services, fake, name="help", address="help@acme.example"):
    client_id = client_id_for(name)
    register_google_side(fake.url, services, address, client_id)
    mailboxes.add_mailbox(services, name, address)
    mailboxes.add_credentials(services, name, "production", client_id, CLIENT_SECRET)
    return client_id


def test_happy_path_connects_and_keeps_token_only_in_secret_manager(services, fake, capsys):
    mailbox = connect_mailbox(services, fake.url, "help", "help@acme.example")
    view = mailboxes.view(services, mailbox)
    cred = view["credentials"][0]
    assert view["status"] == "connected"
    assert cred["connected_email"] == "help@acme.example"
    assert cred["redirect_uri"] == services.settings.redirect_uri
    stored_cred = mailbox["credentials"][0]
    refresh = services.secrets.get(stored_cred["refresh_token_secret"])
    assert refresh
    exported = json.dumps(export_all(services.store.db), default=str)
    logs = capsys.readouterr()
    for secret in (refresh, CLIENT_SECRET):
        assert secret not in exported
        assert secret not in logs.out + logs.err


@pytest.mark.parametrize("client_id", ["1234-abc.apps.googleusercontent", "1234-abc", ".apps.googleusercontent.com", ""])
def test_truncated_client_id_is_refused(services, client_id):
    mailboxes.add_mailbox(services, "help", "help@acme.example")
    with pytest.raises(InvalidInput, match="whole id"):
        mailboxes.add_credentials(services, "help", "production", client_id, "s3cret")


def test_empty_secret_and_duplicate_instance_are_refused(services):
    mailboxes.add_mailbox(services, "help", "help@acme.example")
    with pytest.raises(InvalidInput, match="empty"):
        mailboxes.add_credentials(services, "help", "production", client_id_for("help"), "  ")
    mailboxes.add_credentials(services, "help", "production", client_id_for("help"), "s3cret")
    with pytest.raises(InvalidInput, match="already has a credential set"):
        mailboxes.add_credentials(services, "help", "production", client_id_for("help"), "other")


def test_connect_url_for_another_instance_is_refused(services, fake):
    _prepare(services, fake)
    mailboxes.add_credentials(services, "help", "uat", client_id_for("help-uat"), "s3cret")
    with pytest.raises(InvalidInput, match="instance 'production'"):
        mailboxes.connect_url(services, "help", "uat")


def test_wrong_account_is_refused_and_nothing_stored(services, fake):
    _prepare(services, fake)
    requests.post(f"{fake.url}/_fake/users", json={"email": "someone@gmail.com"}, timeout=10)
    params = follow_consent(services, fake.url, "help", approve_as="someone@gmail.com")
    with pytest.raises(AuthError, match="signed in as someone@gmail.com"):
        connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))
    cred = services.store.get_mailbox("help")["credentials"][0]
    assert cred["status"] == "not_connected"
    assert not cred.get("refresh_token_secret")


def test_missing_scope_is_refused(services, fake):
    """The admin unticks the Gmail permission on the consent page (click-through, no auto-approve)."""
    import re

    _prepare(services, fake)
    link = mailboxes.connect_url(services, "help")
    consent_url = mailboxes.start_from_link(services, parse_qs(urlparse(link).query)["t"][0])
    page = requests.get(consent_url, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    transaction = re.search(r'name="transaction" value="([^"]*)"', page.text).group(1)
    scopes = [s for s in re.findall(r'name="scope" value="([^"]*)"', page.text) if s != "https://mail.google.com/"]
    form = [("transaction", transaction), ("email", "help@acme.example"), ("action", "allow")] + [("scope", s) for s in scopes]
    answer = requests.post(requests.compat.urljoin(page.url, action), data=form, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:300]
    back = {k: v[0] for k, v in parse_qs(urlparse(answer.headers["Location"]).query).items()}
    with pytest.raises(AuthError, match="Gmail permission"):
        connect_service.complete(services, back["state"], back["code"], None, back.get("scope"))
    cred = services.store.get_mailbox("help")["credentials"][0]
    assert cred["status"] == "not_connected"


def test_replayed_state_is_refused(services, fake):
    _prepare(services, fake)
    params = follow_consent(services, fake.url, "help")
    connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))
    with pytest.raises(AuthError, match="already used"):
        connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))


def test_expired_state_is_refused(services, fake):
    _prepare(services, fake)
    params = follow_consent(services, fake.url, "help")
    from datetime import datetime, timedelta, timezone

    services.store.db.collection("oauth_states").document(params["state"]).update(
        {"expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)})
    with pytest.raises(AuthError, match="expired"):
        connect_service.complete(services, params["state"], params["code"], None, params.get("scope"))


def test_denied_consent_is_refused(services, fake):
    _prepare(services, fake)
    params = follow_consent(services, fake.url, "help")
    with pytest.raises(AuthError, match="denied"):
        connect_service.complete(services, params["state"], None, "access_denied", None)


def test_unknown_state_is_refused(services):
    with pytest.raises(AuthError, match="unknown"):
        connect_service.complete(services, "forged-state", "code", None, None)


def test_start_link_is_single_use_and_tamper_proof(services, fake):
    _prepare(services, fake)
    link = mailboxes.connect_url(services, "help")
    token = parse_qs(urlparse(link).query)["t"][0]
    mailboxes.start_from_link(services, token)
    with pytest.raises(AuthError, match="already used"):
        mailboxes.start_from_link(services, token)
    body, mac = token.split(".")
    with pytest.raises(AuthError, match="signature"):
        mailboxes.start_from_link(services, body + "x." + mac)
    expired = signing.sign(services.settings.signing_key, "oauth_start", {"m": "help", "i": "production"}, -1)
    with pytest.raises(AuthError, match="expired"):
        mailboxes.start_from_link(services, expired)


def test_invalidated_token_marks_set_disconnected_and_other_mailboxes_go_on(services, fake):
    from mailbridge.services import sync as ingest

    connect_mailbox(services, fake.url, "one", "one@acme.example")
    connect_mailbox(services, fake.url, "two", "two@acme.example")
    ingest.poll(services)  # records history ids
    requests.post(f"{fake.url}/_fake/users/one@acme.example/invalidate-tokens", timeout=10).raise_for_status()
    services.google._cache.clear()
    result = ingest.poll(services)
    outcomes = {m["mailbox"]: m["outcome"] for m in result["mailboxes"]}
    assert outcomes == {"one": "error", "two": "ok"}
    cred = services.store.get_mailbox("one")["credentials"][0]
    assert cred["status"] == "disconnected"
    assert "invalid_grant" in cred["last_error"]


def test_disconnect_revokes_and_destroys_the_token(services, fake):
    mailbox = connect_mailbox(services, fake.url, "help", "help@acme.example")
    secret_id = mailbox["credentials"][0]["refresh_token_secret"]
    mailboxes.disconnect(services, "help")
    view = mailboxes.view(services, services.store.get_mailbox("help"))
    assert view["credentials"][0]["status"] == "not_connected"
    assert services.secrets.get(secret_id) is None


def test_switched_off_poll_says_why(services):
    from mailbridge.services import sync as ingest

    mailboxes.set_global_setting(services, "use_incoming_service", "false")
    result = ingest.poll(services)
    assert result["status"] == "off" and "use_incoming_service" in result["reason"]
    mailboxes.set_global_setting(services, "use_incoming_service", "true")
    mailboxes.set_global_setting(services, "use_scheduling_service", "off")
    assert "use_scheduling_service" in ingest.poll(services)["reason"]


def test_reconnecting_keeps_only_the_new_token_version_and_the_new_token_works(services, fake):
    from tests.helpers import follow_consent
    from mailbridge.services import sync as ingest

    mailbox = connect_mailbox(services, fake.url, "help", "help@acme.example")
    secret_id = mailbox["credentials"][0]["refresh_token_secret"]
    first = services.secrets.get(secret_id)
    params = follow_consent(services, fake.url, "help")
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    name = services.secrets._name(secret_id)
    states = sorted(v.state.name for v in services.secrets.client.list_secret_versions(request={"parent": name}))
    assert states == ["DESTROYED", "ENABLED"]
    assert services.secrets.get(secret_id) not in (None, first)
    services.google._cache.clear()
    assert [m["outcome"] for m in ingest.poll(services, "help")["mailboxes"]] == ["ok"]


def test_a_connection_counts_the_failed_rows_its_first_run_must_retry(services, fake):
    """A new mailbox has none: its first run skips the query of the inbound log as later runs
    do. Signed in again (a new history start) with a failed row waiting, its first run retries it.
    (A set Google disconnected resumes its history and keeps what its last run recorded.)"""
    mailbox = connect_mailbox(services, fake.url, "help", "help@acme.example")
    store = services.store
    assert store.get_sync("help", "production")["last_failed"] == 0
    store.put_inbound_row("help", "g-broken", {"mailbox": "help", "gmail_message_id": "g-broken", "outcome": "failed",
                                               "reason": "fetch failed", "attempts": 1, "ticket_id": None,
                                               "processed_at": "2026-12-07T10:00:00+00:00"})
    params = follow_consent(services, fake.url, "help")
    connect_service.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    assert mailbox["name"] == "help" and store.get_sync("help", "production")["last_failed"] == 1


def test_the_first_poll_after_connecting_records_itself_and_later_idle_ones_write_nothing(services, fake):
    """No mail yet: the first poll is a whole run (the admin sees when it polled); the next, with
    the sync state saying nothing waits, is the idle check that writes nothing."""
    from mailbridge.services import sync as ingest

    connect_mailbox(services, fake.url, "help", "help@acme.example")
    first = ingest.poll(services, "help")["mailboxes"][0]
    shown = mailboxes.view(services, services.store.get_mailbox("help"))
    assert first["outcome"] == "ok" and first["mode"] != "idle" and shown["last_poll_at"]
    second = ingest.poll(services, "help")["mailboxes"][0]
    assert (second["outcome"], second["mode"]) == ("ok", "idle")
    assert services.store.get_sync("help", "production")["last_poll_at"] == shown["last_poll_at"]
