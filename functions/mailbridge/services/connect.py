"""Connect: finish a Google sign-in (the OAuth callback) for one mailbox's credential set.

The OAuth adapter only talks to Google (consent URL, code exchange, revocation); the decisions —
which account may connect, where history starts, when push starts — are made here.
"""

from __future__ import annotations

import time

from mailbridge.domain import models
from mailbridge.errors import AuthError
from mailbridge.services import watch

MAIL_SCOPE = "https://mail.google.com/"


def _refuse(store, mailbox: dict, instance: str, reason: str):
    store.update_credential(mailbox["name"], instance, {"last_error": reason})
    raise AuthError(reason)


def complete(services, state: str, code: str | None, error: str | None, granted_scope: str | None) -> dict:
    """Finish the sign-in; returns the connected credential set. Raises AuthError/InvalidInput."""
    store, google = services.store, services.google
    data = store.consume_oauth_state(state)
    mailbox = store.get_mailbox(data["mailbox"])
    instance = data["instance"]
    if error:
        _refuse(store, mailbox, instance,
                "consent was denied" if error == "access_denied" else f"Google returned an error: {error[:80]}")
    if not code:
        raise AuthError("Google did not return an authorization code")
    if not data.get("code_verifier"):
        raise AuthError("sign-in state has no PKCE verifier: start again")
    previous = models.require_credential(mailbox, instance)
    try:
        token, credentials = google.exchange_code(mailbox, previous, state, data["code_verifier"], code)
    except AuthError as e:
        if "InvalidClient" not in str(e):
            raise
        # Google names no detail; with the client id checked when added, the secret is the suspect.
        _refuse(store, mailbox, instance,
                f"Google refused the client secret for client id {previous['client_id']}: the secret does not "
                "match this client id. Replace it (mailbox page, Credentials, or `credentials set "
                f"{mailbox['name']} --instance {instance} --client-secret-stdin`), then sign in again")
    scopes = token.get("scope") or granted_scope or ""
    scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
    if MAIL_SCOPE not in scopes:
        google.revoke(token.get("refresh_token") or token.get("access_token"))
        _refuse(store, mailbox, instance,
                "the Gmail permission (https://mail.google.com/) was not granted: sign in again and keep it ticked")
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise AuthError("Google returned no refresh token (access_type=offline and prompt=consent are required)")
    gmail = services.gmail_with(credentials)
    profile = gmail.profile()
    email = profile.get("emailAddress", "").lower()
    if email != mailbox["address"].lower():
        google.revoke(refresh_token)
        _refuse(store, mailbox, instance,
                f"signed in as {email or 'an unknown account'}, but this mailbox is {mailbox['address']}: "
                "sign in with the mailbox's own Google account")
    secret_id = models.credential_secret_id(services.settings.prefix, mailbox["name"], instance, "refresh")
    services.secrets.put(secret_id, refresh_token)
    now = models.now_iso()
    updated = store.update_credential(mailbox["name"], instance, {
        "status": "connected", "connected_email": email, "connected_at": now,
        "refresh_token_secret": secret_id, "last_error": None, "disconnected_at": None,
    })
    sync = store.get_sync(mailbox["name"], instance)
    if (previous.get("status") == "disconnected" and previous.get("connected_email") == email
            and sync.get("history_id")):
        # Signed in again after Google refused the token (password change, expiry): resume
        # from the last history id, so mail that arrived during the outage is not skipped.
        store.update_sync(mailbox["name"], instance, {"last_error": None})
    else:
        # History starts at the connection: mail arriving before the first poll is not missed.
        store.reset_sync(mailbox["name"], instance, now, history_id=profile.get("historyId"))
        days = int((mailbox.get("incoming") or {}).get("backfill_days") or 0)
        if days > 0:  # an explicit choice: the first poll also takes this much older inbox mail
            store.update_sync(mailbox["name"], instance, {"backfill_since": time.time() - days * 86400})
    # Push starts at the connection (Gmail watch), not at the first scheduled poll.
    watch.maybe_watch(services, {**mailbox, "credentials": [updated]}, gmail, {}, force=True)
    google.forget(mailbox["name"], instance)
    return updated
