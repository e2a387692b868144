"""The OAuth clients' redirect URIs: Google has no API that lists them, so doctor asks Google's
authorization endpoint whether each client accepts ours (README.md, "Admin access")."""

from __future__ import annotations

from urllib.parse import urlencode

from mailbridge.adapters.doctor.context import Context, Finding, HttpError, unreadable

# Where Google returns an admin after sign-in: the admin URL + this (README.md, "Admin access").
ADMIN_REDIRECT_PATH = "/signin/callback"


def check_redirect_uri(context: Context, client_id: str, function: str = "oauth_callback", path: str = "") -> Finding:
    """Ask Google's authorization endpoint whether the client accepts our redirect URI: it answers
    400 redirect_uri_mismatch when the URI is not registered on the client."""
    name = f"redirect URI of {client_id.split('.', 1)[0][:24]}…"
    try:
        redirect_uri = context.function_url(function) + path
    except HttpError as e:
        return unreadable(name, e, "the project number", "roles/browser")
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "openid", "access_type": "offline"})
    try:
        context.fetch(f"https://accounts.google.com/o/oauth2/v2/auth?{query}")
    except HttpError as e:
        if "redirect_uri_mismatch" in e.message:
            return Finding(name, False, f"{redirect_uri} is not an authorized redirect URI of this client",
                           "Google Auth Platform → Clients → this client → Authorized redirect URIs: add "
                           f"{redirect_uri}" + (" (terraform output oauth_redirect_uri)" if not path else ""))
        if "invalid_client" in e.message or "deleted_client" in e.message:
            return Finding(name, False, "Google does not know this client id",
                           "copy the whole client id from Google Auth Platform → Clients")
        return Finding(name, False, f"Google refused the sign-in request: {e.message[:200]}",
                       "open the client in Google Auth Platform → Clients and compare")
    return Finding(name, True)
