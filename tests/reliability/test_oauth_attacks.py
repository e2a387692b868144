"""OAuth attacks against oauth_start / oauth_callback / admin served over HTTP: forged, replayed,
expired and cross-mailbox state; code reuse; a missing PKCE verifier; the wrong account; a scope
downgrade; open redirects through URL parameters; tampered and reused signed links."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import re
from urllib.parse import parse_qs, urlencode, urlparse

from itsdangerous.encoding import base64_decode, base64_encode
import pytest
import requests

from mailbridge.domain import signing
from mailbridge.services import mailboxes
from tests.helpers import CLIENT_SECRET, client_id_for, make_services, post_link, register_google_side
from tests.reliability.conftest import LEDGER, location_params

EVIL = "https://evil.example/steal"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


def prepare(services, fake, name="help", address="help@acme.example"):
    register_google_side(fake.url, services, address, client_id_for(name))
    mailboxes.add_mailbox(services, name, address)
    mailboxes.add_credentials(services, name, "production", client_id_for(name), CLIENT_SECRET)


def start(services, name="help", **extra):
    """POST the signed start link over HTTP (its confirmation page's button); returns (consent URL, state)."""
    link = mailboxes.connect_url(services, name)
    response = post_link(link + ("&" + urlencode(extra) if extra else ""))
    LEDGER.page("oauth_start", response)
    assert response.status_code == 303, response.text[:300]
    consent = response.headers["Location"]
    return consent, parse_qs(urlparse(consent).query)["state"][0]


def consent_as(fake, consent_url, email):
    requests.post(f"{fake.url}/_fake/oauth/approve-as", json={"email": email}, timeout=10).raise_for_status()
    try:
        response = requests.get(consent_url, allow_redirects=False, timeout=30)
    finally:
        requests.post(f"{fake.url}/_fake/oauth/approve-as", json={"email": None}, timeout=10)
    params = location_params(response)
    LEDGER.secret(params.get("code"))
    return params


def callback(functions_url, **params):
    response = requests.get(f"{functions_url}/oauth_callback", params=params, allow_redirects=False, timeout=30)
    LEDGER.page("oauth_callback", response)
    return response


def credential(services, name="help"):
    return services.store.get_mailbox(name)["credentials"][0]


def assert_refused(response, reason):
    assert response.status_code in (400, 403), (response.status_code, response.text[:300])
    assert re.search(reason, response.text, re.IGNORECASE), response.text[:500]
    assert "Location" not in response.headers
    assert "<script" not in response.text.lower()


def test_consent_url_binds_pkce_state_and_our_redirect_uri(services, fake, functions_url):
    prepare(services, fake)
    consent, state = start(services)
    query = parse_qs(urlparse(consent).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["redirect_uri"] == [services.settings.redirect_uri]
    assert len(state) >= 32
    stored = services.store.db.collection("oauth_states").document(state).get().to_dict()
    assert stored["mailbox"] == "help" and stored["code_verifier"] not in consent


def test_forged_state_is_refused(services, fake, functions_url):
    prepare(services, fake)
    for state in ("forged", "../../mailboxes/help", "a" * 5000, "x/y"):
        assert_refused(callback(functions_url, state=state, code="4/fake-forged-code"), "state|sign-in")
    assert credential(services)["status"] == "not_connected"


def test_replayed_callback_is_refused_and_changes_nothing(services, fake, functions_url):
    prepare(services, fake)
    consent, _state = start(services)
    params = consent_as(fake, consent, "help@acme.example")
    first = callback(functions_url, **params)
    assert first.status_code == 200 and "Mailbox connected" in first.text
    connected_at = credential(services)["connected_at"]
    assert_refused(callback(functions_url, **params), "already used")
    assert credential(services)["connected_at"] == connected_at


def test_expired_state_is_refused(services, fake, functions_url):
    prepare(services, fake)
    consent, state = start(services)
    params = consent_as(fake, consent, "help@acme.example")
    services.store.db.collection("oauth_states").document(state).update(
        {"expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)})
    assert_refused(callback(functions_url, **params), "expired")
    assert credential(services)["status"] == "not_connected"


def test_cross_mailbox_state_and_code_are_refused(services, fake, functions_url):
    """The code Google issued for mailbox B's sign-in, replayed with mailbox A's state."""
    prepare(services, fake, "alpha", "alpha@acme.example")
    prepare(services, fake, "beta", "beta@acme.example")
    consent_a, state_a = start(services, "alpha")
    consent_b, _state_b = start(services, "beta")
    params_b = consent_as(fake, consent_b, "beta@acme.example")
    assert_refused(callback(functions_url, state=state_a, code=params_b["code"], scope=params_b.get("scope", "")),
                   "refused the authorization code")
    assert credential(services, "alpha")["status"] == "not_connected"
    assert credential(services, "beta")["status"] == "not_connected"


def test_code_reuse_with_a_fresh_state_is_refused(services, fake, functions_url):
    prepare(services, fake)
    consent, _ = start(services)
    params = consent_as(fake, consent, "help@acme.example")
    assert callback(functions_url, **params).status_code == 200
    _consent2, state2 = start(services)
    assert_refused(callback(functions_url, state=state2, code=params["code"], scope=params.get("scope", "")),
                   "refused the authorization code")
    assert credential(services)["status"] == "connected"


def test_missing_pkce_verifier_is_refused(services, fake, functions_url):
    from google.cloud import firestore

    prepare(services, fake)
    consent, state = start(services)
    params = consent_as(fake, consent, "help@acme.example")
    services.store.db.collection("oauth_states").document(state).update({"code_verifier": firestore.DELETE_FIELD})
    assert_refused(callback(functions_url, **params), "PKCE")
    assert credential(services)["status"] == "not_connected"


def test_wrong_account_is_refused_and_nothing_stored(services, fake, functions_url):
    prepare(services, fake)
    requests.post(f"{fake.url}/_fake/users", json={"email": "attacker@gmail.com"}, timeout=10)
    consent, _ = start(services)
    params = consent_as(fake, consent, "attacker@gmail.com")
    assert_refused(callback(functions_url, **params), "signed in as attacker@gmail.com")
    cred = credential(services)
    assert cred["status"] == "not_connected" and not cred.get("refresh_token_secret")


def test_scope_downgrade_is_refused(services, fake, functions_url):
    prepare(services, fake)
    consent, _ = start(services)
    page = requests.get(consent, timeout=30)
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    transaction = re.search(r'name="transaction" value="([^"]*)"', page.text).group(1)
    scopes = [s for s in re.findall(r'name="scope" value="([^"]*)"', page.text) if s != "https://mail.google.com/"]
    answer = requests.post(requests.compat.urljoin(page.url, action), allow_redirects=False, timeout=30,
                           data=[("transaction", transaction), ("email", "help@acme.example"), ("action", "allow")]
                           + [("scope", s) for s in scopes])
    params = location_params(answer)
    LEDGER.secret(params.get("code"))
    assert_refused(callback(functions_url, **params), "Gmail permission")
    assert credential(services)["status"] == "not_connected"


@pytest.mark.parametrize("param", ["next", "redirect_uri", "return_to", "continue", "url", "redirect"])
def test_no_url_parameter_turns_a_function_into_an_open_redirect(services, fake, functions_url, param):
    prepare(services, fake)
    consent, state = start(services, **{param: EVIL})
    assert consent.startswith(fake.url + "/o/oauth2/v2/auth")
    assert parse_qs(urlparse(consent).query)["redirect_uri"] == [services.settings.redirect_uri]
    assert "evil.example" not in consent
    params = consent_as(fake, consent, "help@acme.example")
    done = callback(functions_url, **params, **{param: EVIL})
    assert done.status_code == 200 and "evil.example" not in done.text and "Location" not in done.headers
    for path in ("/admin/login", "/admin/", "//evil.example/", "/admin//evil.example"):
        query = {param: EVIL}
        if path == "/admin/login":
            query["t"] = urlparse(mailboxes.admin_url(services)).query.split("t=", 1)[1]
        response = requests.get(functions_url + path, params=query, allow_redirects=False, timeout=30)
        LEDGER.page(path, response)
        location = response.headers.get("Location", "")
        assert "evil.example" not in location and not location.startswith("//"), (path, location)


def test_signed_links_tampered_swapped_or_reused_are_refused(services, fake, functions_url):
    prepare(services, fake)
    prepare(services, fake, "other", "other@acme.example")
    link = mailboxes.connect_url(services, "help")
    token = parse_qs(urlparse(link).query)["t"][0]
    body, mac = token.split(".")
    payload = base64_decode(body).replace(b'"m":"help"', b'"m":"other"')
    forged = base64_encode(payload).decode() + "." + mac
    admin_token = parse_qs(urlparse(mailboxes.admin_url(services)).query)["t"][0]
    expired = signing.sign(services.settings.signing_key, "oauth_start", {"m": "help", "i": "production"}, -5)
    wrong_key = signing.sign("another-key-0123456789", "oauth_start", {"m": "help", "i": "production"}, 600)
    for bad, reason in ((forged, "signature"), (admin_token, "another purpose"), (expired, "expired"),
                        (wrong_key, "signature"), (token + "x", "signature"), ("", "signed sign-in link")):
        response = requests.get(f"{functions_url}/oauth_start", params={"t": bad}, allow_redirects=False, timeout=30)
        LEDGER.page("oauth_start bad", response)
        assert response.status_code in (400, 403) and "Location" not in response.headers, bad
        assert reason in response.text, (reason, response.text[:300])
    assert post_link(link).status_code == 303
    reused = post_link(link)
    assert reused.status_code == 403 and "already used" in reused.text
    start_token_at_admin = requests.get(f"{functions_url}/admin/login", params={"t": token}, allow_redirects=False,
                                        timeout=30)
    assert start_token_at_admin.status_code == 401 and "Set-Cookie" not in start_token_at_admin.headers
