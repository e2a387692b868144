"""adapters/google_signin.py against the fake Google server (tests/fakes/README.md, ID tokens):
the authorization URL, the code exchange and google-auth's verification of the ID token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from mailbridge.errors import AuthError
import stacklib
from tests.helpers import make_services

REDIRECT = "http://127.0.0.1:1/admin/signin/callback"


@pytest.fixture
def signin(mb_env, fake):
    stacklib.register_admin_client(fake.url, mb_env["GOOGLE_CLOUD_PROJECT"], [REDIRECT], client_secret="admin-secret")
    return make_services().admin_signin


def code_for(fake, signin, email: str, nonce: str = "n-1", verifier: str = "v" * 43, **user) -> str:
    fake.post("/_fake/users", json={"email": email, **user})
    url = signin.authorization_url(state="s-1", nonce=nonce, verifier=verifier, redirect_uri=REDIRECT)
    fake.post("/_fake/oauth/approve-as", json={"email": email})
    try:
        response = requests.get(url, allow_redirects=False, timeout=10)
    finally:
        fake.post("/_fake/oauth/approve-as", json={"email": None})
    return parse_qs(urlparse(response.headers["Location"]).query)["code"][0]


def test_a_workspace_account_comes_back_verified_with_its_domain(signin, fake):
    code = code_for(fake, signin, "boss@acme.example")
    claims = signin.exchange(code=code, verifier="v" * 43, redirect_uri=REDIRECT)
    assert (claims["email"], claims["email_verified"], claims["hd"], claims["nonce"]) == (
        "boss@acme.example", True, "acme.example", "n-1")
    assert claims["aud"] == stacklib.ADMIN_CLIENT_ID


def test_a_gmail_account_has_no_workspace_domain(signin, fake):
    claims = signin.exchange(code=code_for(fake, signin, "someone@gmail.com"), verifier="v" * 43, redirect_uri=REDIRECT)
    assert "hd" not in claims


def test_a_token_for_another_client_is_refused(signin, fake):
    code = code_for(fake, signin, "boss@acme.example")
    token = requests.post(f"{fake.url}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "v" * 43,
        "client_id": stacklib.ADMIN_CLIENT_ID, "client_secret": "admin-secret"}, timeout=10).json()["id_token"]
    with pytest.raises(AuthError, match="not valid"):
        signin.verify(token, audience="someone-else.apps.googleusercontent.com")


def test_a_wrong_client_secret_is_named(signin, fake):
    # Google's side now has another secret than the one in Secret Manager (a typo when storing it).
    requests.post(f"{fake.url}/_fake/oauth/clients", json={
        "client_id": stacklib.ADMIN_CLIENT_ID, "client_secret": "only-google-knows", "redirect_uris": [REDIRECT]},
        timeout=10).raise_for_status()
    code = code_for(fake, signin, "boss@acme.example")
    with pytest.raises(AuthError, match="the client secret does not match the client id"):
        signin.exchange(code=code, verifier="v" * 43, redirect_uri=REDIRECT)


def test_without_a_secret_version_the_reason_names_the_secret(mb_env, fake):
    problem = make_services().admin_signin.configured()
    assert problem and stacklib.ADMIN_CLIENT_SECRET_ID in problem
