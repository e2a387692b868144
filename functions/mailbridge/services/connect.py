"""Connect: finish a Google sign-in (the OAuth callback) for one mailbox's credential set.

The OAuth adapter only talks to Google (consent URL, code exchange, revocation); the decisions —
which account may connect, where history starts, when push starts — are made here.
"""

from __future__ import annotations

import time

from mailbridge.domain import models
from mailbridge.errors import AuthError, InvalidInput, MailbridgeError
from mailbridge.services import watch
from mailbridge.services.ports import ConnectPorts, ConnectStore

MAIL_SCOPE = "https://mail.google.com/"
# Consumer Google accounts: Gmail API access for a helpdesk needs a Workspace account (README.md).
PERSONAL_DOMAINS = ("gmail.com", "googlemail.com")
UNKNOWN_STATE = "the answer from Google does not match a sign-in started here: start again from the mailbox's page"
EXPIRED_STATE = "the answer from Google came too late or twice (sign-in expired or already used): try again"


def _record(store: ConnectStore, mailbox_name: str, instance: str, reason: str) -> None:
    """A failed sign-in is the credential set's and the mailbox's last error."""
    store.update_credential(mailbox_name, instance, {"last_error": reason})
    store.update_sync(mailbox_name, instance, {"last_error": f"sign-in failed: {reason}"})


def _refuse(store: ConnectStore, mailbox: dict, instance: str, reason: str):
    _record(store, mailbox["name"], instance, reason)
    raise AuthError(reason)


def _retire_old_token(services: ConnectPorts, previous: dict, secret_id: str, old_token: str | None, new_token: str,
                      email: str) -> None:
    """After a reconnection only the new refresh token stays stored: older secret versions are
    destroyed. The old token is revoked only when it belongs to another grant (another client or
    account): Google's revocation removes the app's whole grant for the account, which would take
    the new token with it (docs/gmail-differences.md)."""
    services.secrets.destroy_old_versions(secret_id)
    if previous.get("refresh_token_secret") and previous["refresh_token_secret"] != secret_id:
        services.secrets.destroy_all_versions(previous["refresh_token_secret"])
    same_grant = (previous.get("connected_client_id") or previous["client_id"]) == previous["client_id"] and (
        (previous.get("connected_email") or email) == email)
    if old_token and old_token != new_token and not same_grant:
        services.google.revoke(old_token)


def consent_for_admin(services: ConnectPorts, name: str, instance: str) -> str:
    """Google's consent URL for a signed-in admin (no single-use link needed)."""
    instance = models.validate_instance(instance)
    if instance != services.settings.instance:
        raise InvalidInput(
            f"this deployment is instance {services.settings.instance!r}; a {instance!r} credential set can only "
            f"be signed in from the {instance!r} deployment")
    mailbox = services.store.get_mailbox(name)
    if models.credential_of(mailbox, instance) is None:
        raise InvalidInput(f"mailbox {name!r} has no credential set for instance {instance!r}: add one first")
    return services.google.consent_url(mailbox, instance)


def finish(services: ConnectPorts, state: str, code: str | None, error: str | None,
           granted_scope: str | None) -> tuple[str, str | None, str]:
    """The callback's outcome for the admin's page: ("ok" | "failed" | "expired" | "unknown",
    the mailbox's name or None, the connected address or the reason). Every failure is
    recorded as the mailbox's last error."""
    store = services.store
    try:
        data = store.consume_oauth_state(state)
    except AuthError:
        known = store.peek_oauth_state(state) if state else None
        if known and known.get("used") and not known.get("mailbox"):
            # a used state keeps only its used-marker (no mailbox binding): say so, nothing to record it on
            return "unknown", None, EXPIRED_STATE
        if not known or known.get("kind") or not known.get("mailbox"):
            return "unknown", None, UNKNOWN_STATE  # forged, or not a mailbox sign-in: nothing to record it on
        try:
            _record(store, known["mailbox"], known["instance"], EXPIRED_STATE)
        except MailbridgeError:
            return "unknown", None, UNKNOWN_STATE
        return "expired", known["mailbox"], EXPIRED_STATE
    if data.get("kind") or not data.get("mailbox"):
        return "unknown", None, UNKNOWN_STATE
    try:
        credential = _complete_recorded(services, state, data, code, error, granted_scope)
    except MailbridgeError as e:
        return "failed", data["mailbox"], str(e)
    return "ok", data["mailbox"], credential.get("connected_email") or ""


def _check_workspace(services: ConnectPorts, mailbox: dict, instance: str, cred: dict, token: dict, email: str) -> None:
    domain = email.rsplit("@", 1)[-1]
    if domain in PERSONAL_DOMAINS:
        _refuse(services.store, mailbox, instance,
                f"{email} is a personal Google account: connect a Google Workspace mailbox")
    if token.get("id_token"):
        claims = services.admin_signin.verify(token["id_token"], audience=cred["client_id"])
        if not claims.get("hd"):
            _refuse(services.store, mailbox, instance,
                    f"{email} has no Google Workspace domain (a personal account): connect a Workspace mailbox")


def complete(services: ConnectPorts, state: str, code: str | None, error: str | None, granted_scope: str | None) -> dict:
    """Finish the sign-in; returns the connected credential set. Raises AuthError/InvalidInput;
    every refusal is recorded as the mailbox's last error."""
    return _complete_recorded(services, state, services.store.consume_oauth_state(state), code, error, granted_scope)


def _complete_recorded(services: ConnectPorts, state: str, data: dict, code, error, granted_scope) -> dict:
    store, instance = services.store, data["instance"]
    try:
        return _complete(services, state, data, code, error, granted_scope)
    except MailbridgeError as e:
        try:
            credential = models.credential_of(store.get_mailbox(data["mailbox"]), instance) or {}
            if credential.get("last_error") != str(e):
                _record(store, data["mailbox"], instance, str(e))
        except MailbridgeError:
            pass  # the mailbox itself is gone: nothing to record the failure on
        raise


def _check_answer(store: ConnectStore, mailbox: dict, instance: str, data: dict, code, error) -> None:
    """Google's answer carries a code, no error, and the sign-in kept its PKCE verifier."""
    if error:
        _refuse(store, mailbox, instance,
                "consent was denied" if error == "access_denied" else f"Google returned an error: {error[:80]}")
    if not code:
        raise AuthError("Google did not return an authorization code")
    if not data.get("code_verifier"):
        raise AuthError("sign-in state has no PKCE verifier: start again")


def _exchange(services: ConnectPorts, mailbox: dict, instance: str, previous: dict, state: str, data: dict, code):
    """(token, credentials) for the code; a refused client secret is named as the suspect."""
    try:
        return services.google.exchange_code(mailbox, previous, state, data["code_verifier"], code)
    except AuthError as e:
        if "InvalidClient" not in str(e):
            raise
        # Google names no detail; with the client id checked when added, the secret is the suspect.
        _refuse(services.store, mailbox, instance,
                f"Google refused the client secret for client id {previous['client_id']}: the secret does not "
                "match this client id. Replace it (mailbox page, Credentials, or `credentials set "
                f"{mailbox['name']} --instance {instance} --client-secret-stdin`), then sign in again")


def _check_grant(services: ConnectPorts, mailbox: dict, instance: str, token: dict, granted_scope) -> str:
    """The Gmail scope was granted and a refresh token came with it: the refresh token."""
    scopes = token.get("scope") or granted_scope or ""
    scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
    if MAIL_SCOPE not in scopes:
        services.google.revoke(token.get("refresh_token") or token.get("access_token"))
        _refuse(services.store, mailbox, instance,
                "the Gmail permission (https://mail.google.com/) was not granted: sign in again and keep it ticked")
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise AuthError("Google returned no refresh token (access_type=offline and prompt=consent are required)")
    return refresh_token


def _check_account(services: ConnectPorts, mailbox: dict, instance: str, previous: dict, token: dict,
                   refresh_token: str, gmail) -> tuple[dict, str]:
    """The account signed in is the mailbox's own, on Google Workspace (else the new token is
    revoked): its Gmail profile and address."""
    profile = gmail.profile()
    email = profile.get("emailAddress", "").lower()
    if email != mailbox["address"].lower():
        services.google.revoke(refresh_token)
        _refuse(services.store, mailbox, instance,
                f"signed in as {email or 'an unknown account'}, but this mailbox is {mailbox['address']}: "
                "sign in with the mailbox's own Google account")
    try:
        _check_workspace(services, mailbox, instance, previous, token, email)
    except AuthError:
        services.google.revoke(refresh_token)
        raise
    return profile, email


def _store_token(services: ConnectPorts, mailbox: dict, instance: str, previous: dict, refresh_token: str,
                 email: str, now: str) -> dict:
    """The refresh token into Secret Manager (older ones retired); the credential set, connected."""
    secret_id = models.credential_secret_id(services.settings.prefix, mailbox["name"], instance, "refresh")
    old_token = services.secrets.get(previous["refresh_token_secret"]) if previous.get("refresh_token_secret") else None
    services.secrets.put(secret_id, refresh_token)
    _retire_old_token(services, previous, secret_id, old_token, refresh_token, email)
    return services.store.update_credential(mailbox["name"], instance, {
        "status": "connected", "connected_email": email, "connected_at": now,
        "refresh_token_secret": secret_id, "last_error": None, "disconnected_at": None,
        "connected_client_id": previous["client_id"],
    })


def _start_history(store: ConnectStore, mailbox: dict, instance: str, previous: dict, email: str, profile: dict,
                   now: str) -> None:
    """Where the next sync starts reading the mailbox's history."""
    sync = store.get_sync(mailbox["name"], instance)
    if (previous.get("status") == "disconnected" and previous.get("connected_email") == email
            and sync.get("history_id")):
        # Signed in again after Google refused the token (password change, expiry): resume
        # from the last history id, so mail that arrived during the outage is not skipped.
        store.update_sync(mailbox["name"], instance, {"last_error": None})
    else:
        # History starts at the connection: mail arriving before the first poll is not missed.
        # The failed rows waiting for a retry are counted here, once a connection, so that the
        # first run of a mailbox without any skips the query of the inbound log as every later
        # run does (services/sync/run.py, _todo; docs/benchmarks.md, "Scale out").
        store.reset_sync(mailbox["name"], instance, now, history_id=profile.get("historyId"),
                         last_failed=len(store.failed_rows(mailbox["name"])))
        days = int((mailbox.get("incoming") or {}).get("backfill_days") or 0)
        if days > 0:  # an explicit choice: the first poll also takes this much older inbox mail
            store.update_sync(mailbox["name"], instance, {"backfill_since": time.time() - days * 86400})


def _complete(services: ConnectPorts, state: str, data: dict, code, error, granted_scope) -> dict:
    store = services.store
    mailbox = store.get_mailbox(data["mailbox"])
    instance = data["instance"]
    _check_answer(store, mailbox, instance, data, code, error)
    previous = models.require_credential(mailbox, instance)
    token, credentials = _exchange(services, mailbox, instance, previous, state, data, code)
    refresh_token = _check_grant(services, mailbox, instance, token, granted_scope)
    gmail = services.gmail_with(credentials)
    profile, email = _check_account(services, mailbox, instance, previous, token, refresh_token, gmail)
    now = models.now_iso()
    updated = _store_token(services, mailbox, instance, previous, refresh_token, email, now)
    _start_history(store, mailbox, instance, previous, email, profile, now)
    # Push starts at the connection (Gmail watch), not at the first scheduled poll.
    watch.maybe_watch(services, {**mailbox, "credentials": [updated]}, gmail, {}, force=True)
    services.google.forget(mailbox["name"], instance)
    return updated
