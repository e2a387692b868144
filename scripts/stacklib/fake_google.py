"""The fake Google server (tests/fakes/server.py) and the admin pages' OAuth client on it."""

from __future__ import annotations

import secrets

from .common import HOST, REPO, StackError, venv_python

# The admin pages' own OAuth client on the fake (README.md, "Admin access"): sign in with Google.
ADMIN_CLIENT_ID = "mailbridge-admin-local.apps.googleusercontent.com"
ADMIN_CLIENT_SECRET_ID = "mailbridge-admin-oauth-client-secret"


def fake_google_command(port: int) -> list[str]:
    return [venv_python(), str(REPO / "tests/fakes/server.py"), "--host", HOST, "--port", str(port)]


def register_admin_client(fake_url: str, project: str, redirect_uris: list[str],
                          client_secret: str | None = None) -> None:
    """Register the admin pages' OAuth client on the fake, as an admin does in Google's console,
    and keep its secret in the fake's Secret Manager (MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID)."""
    import base64
    import requests

    secret = client_secret or secrets.token_urlsafe(24)
    try:
        requests.post(f"{fake_url}/_fake/oauth/clients", json={
            "client_id": ADMIN_CLIENT_ID, "client_secret": secret, "redirect_uris": redirect_uris},
            timeout=10).raise_for_status()
        parent = f"{fake_url}/v1/projects/{project}/secrets"
        created = requests.post(parent, params={"secretId": ADMIN_CLIENT_SECRET_ID},
                                json={"replication": {"automatic": {}}}, timeout=10)
        if created.status_code not in (200, 409):
            created.raise_for_status()
        requests.post(f"{parent}/{ADMIN_CLIENT_SECRET_ID}:addVersion",
                      json={"payload": {"data": base64.b64encode(secret.encode()).decode()}},
                      timeout=10).raise_for_status()
    except requests.RequestException as e:
        raise StackError(f"fake_google: could not register the admin OAuth client: {e}") from e
