"""Who may sign in to the admin pages, and how long a session lives (services/admin_access.py),
on the in-memory store; Google's side is a small stateful stand-in that issues claims for the
codes it handed out."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from mailbridge import bootstrap
from mailbridge.errors import AuthError, InvalidInput
from mailbridge.services import admin_access, mailboxes
from tests.memory.services import memory_services

REDIRECT = "https://admin.example/signin/callback"


class MemorySignIn:
    """Google's authorization endpoint and token endpoint for the admin client, in memory."""

    def __init__(self):
        self.pending: dict[str, dict] = {}   # state -> the authorization request
        self.codes: dict[str, dict] = {}     # code -> claims

    def authorization_url(self, *, state, nonce, verifier, redirect_uri, hosted_domain=""):
        self.pending[state] = {"nonce": nonce, "verifier": verifier, "hd": hosted_domain}
        return f"https://accounts.example/auth?state={state}"

    def approve(self, url: str, email: str, **claims) -> tuple[str, str]:
        """The account chooser: (state, code) for this account."""
        state = parse_qs(urlparse(url).query)["state"][0]
        request = self.pending.pop(state)
        code = f"code-{len(self.codes)}"
        domain = email.split("@")[1]
        self.codes[code] = {"email": email, "email_verified": True, "nonce": request["nonce"],
                            "verifier": request["verifier"],
                            **({"hd": domain} if domain not in ("gmail.com", "googlemail.com") else {}), **claims}
        return state, code

    def exchange(self, *, code, verifier, redirect_uri):
        claims = self.codes.pop(code)
        if claims.pop("verifier") != verifier:
            raise AuthError("invalid_grant")
        return claims


@pytest.fixture
def services():
    made, _accounts = memory_services()
    return bootstrap.bootstrap(made.settings, store=made.store, secrets=made.secrets, admin_signin=MemorySignIn())


def sign_in(services, email: str, binding_override: str | None = None, **claims):
    url, binding = admin_access.start_signin(services, REDIRECT, "/settings")
    state, code = services.admin_signin.approve(url, email, **claims)
    return admin_access.finish_signin(services, state=state, code=code, error=None,
                                      binding=binding_override if binding_override is not None else binding,
                                      redirect_uri=REDIRECT)


# -- who is an admin --------------------------------------------------------------------------------
def test_a_listed_address_signs_in_and_returns_to_the_page_it_came_from(services):
    mailboxes.set_global_setting(services, "admin_emails", "Boss@Acme.example, ops@acme.example")
    assert sign_in(services, "boss@acme.example") == ("boss@acme.example", "/settings")


def test_an_address_from_the_deployment_is_allowed_without_settings():
    made, _ = memory_services(admin_emails=("boss@acme.example",))
    services = bootstrap.bootstrap(made.settings, store=made.store, secrets=made.secrets, admin_signin=MemorySignIn())
    assert sign_in(services, "boss@acme.example")[0] == "boss@acme.example"


def test_a_workspace_domain_admits_its_accounts_by_their_hd_claim(services):
    mailboxes.set_global_setting(services, "admin_domain", "acme.example")
    assert sign_in(services, "anyone@acme.example")[0] == "anyone@acme.example"


def test_the_domain_needs_the_hd_claim_not_just_the_address(services):
    mailboxes.set_global_setting(services, "admin_domain", "acme.example")
    with pytest.raises(AuthError, match="not a Google Workspace account of acme.example"):
        sign_in(services, "anyone@acme.example", hd=None)


def test_a_personal_account_is_refused_for_a_domain(services):
    mailboxes.set_global_setting(services, "admin_domain", "acme.example")
    with pytest.raises(AuthError, match="personal Google accounts cannot sign in"):
        sign_in(services, "someone@gmail.com")


def test_an_unlisted_address_is_refused_with_the_way_to_be_added(services):
    mailboxes.set_global_setting(services, "admin_emails", "boss@acme.example")
    with pytest.raises(AuthError, match="not an admin of this deployment"):
        sign_in(services, "intruder@acme.example")


def test_an_unverified_address_is_refused(services):
    mailboxes.set_global_setting(services, "admin_emails", "boss@acme.example")
    with pytest.raises(AuthError, match="not verified"):
        sign_in(services, "boss@acme.example", email_verified=False)


def test_with_no_admin_configured_nobody_signs_in_and_the_reason_says_how(services):
    with pytest.raises(AuthError, match="settings set admin_emails"):
        sign_in(services, "boss@acme.example")


def test_an_id_token_of_another_sign_in_is_refused(services):
    mailboxes.set_global_setting(services, "admin_emails", "boss@acme.example")
    with pytest.raises(AuthError, match="nonce"):
        sign_in(services, "boss@acme.example", nonce="from-another-sign-in")


def test_an_answer_in_another_browser_is_refused(services):
    mailboxes.set_global_setting(services, "admin_emails", "boss@acme.example")
    with pytest.raises(AuthError, match="another browser"):
        sign_in(services, "boss@acme.example", binding_override="attacker-browser")


def test_a_sign_in_state_works_once(services):
    mailboxes.set_global_setting(services, "admin_emails", "boss@acme.example")
    url, binding = admin_access.start_signin(services, REDIRECT)
    state, code = services.admin_signin.approve(url, "boss@acme.example")
    admin_access.finish_signin(services, state=state, code=code, error=None, binding=binding, redirect_uri=REDIRECT)
    with pytest.raises(AuthError, match="already used"):
        admin_access.finish_signin(services, state=state, code=code, error=None, binding=binding,
                                   redirect_uri=REDIRECT)


@pytest.mark.parametrize("next_path", ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:x"])
def test_the_page_to_return_to_is_always_one_of_ours(services, next_path):
    admin_access.start_signin(services, REDIRECT, next_path)
    (stored,) = services.store.collection("oauth_states").values()
    assert stored["next"] == "/"


@pytest.mark.parametrize("raw", ["not-an-address", "a@b.c, nope"])
def test_admin_emails_must_be_addresses(services, raw):
    with pytest.raises(InvalidInput, match="not an email address"):
        mailboxes.set_global_setting(services, "admin_emails", raw)


# -- sessions ---------------------------------------------------------------------------------------
def age(services, session_id: str, **changes) -> None:
    services.store.update_admin_session(admin_access.session_key(session_id), changes)


def test_a_new_session_loads_and_carries_its_expiry_for_the_ttl_policy(services):
    session_id = admin_access.open_session(services, "boss@acme.example", "google")
    key, data = admin_access.load_session(services, session_id)
    assert data["email"] == "boss@acme.example"
    assert data["expires_at"] - data["created_at"] == admin_access.SESSION_TTL
    assert session_id not in key  # stored hashed


def test_an_idle_session_ends(services):
    session_id = admin_access.open_session(services, None, "link")
    age(services, session_id, last_seen_at=datetime.now(timezone.utc) - admin_access.IDLE_TIMEOUT - timedelta(seconds=1))
    assert admin_access.load_session(services, session_id) is None
    assert services.store.collection("admin_sessions") == {}


def test_use_keeps_a_session_alive(services):
    session_id = admin_access.open_session(services, None, "link")
    almost_idle = datetime.now(timezone.utc) - admin_access.IDLE_TIMEOUT + timedelta(minutes=2)
    age(services, session_id, last_seen_at=almost_idle)
    _key, data = admin_access.load_session(services, session_id)
    (stored,) = services.store.collection("admin_sessions").values()
    assert stored["last_seen_at"] > almost_idle


def test_a_session_ends_at_its_absolute_expiry_even_when_used(services):
    session_id = admin_access.open_session(services, None, "link")
    age(services, session_id, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert admin_access.load_session(services, session_id) is None


def test_rotating_the_signing_key_ends_sessions(services):
    session_id = admin_access.open_session(services, None, "link")
    rotated = bootstrap.bootstrap(dataclasses.replace(services.settings, signing_key="n" * 32), store=services.store)
    assert admin_access.load_session(rotated, session_id) is None


def test_revoke_all_ends_every_session(services):
    sessions = [admin_access.open_session(services, None, "link") for _ in range(3)]
    assert admin_access.revoke_all_sessions(services) == 3
    assert all(admin_access.load_session(services, s) is None for s in sessions)
