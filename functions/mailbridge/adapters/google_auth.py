"""OAuth for mailbox credential sets: consent URL (PKCE), code exchange, token refresh, revoke.

Secrets pass through here on their way between Google and Secret Manager; nothing in this
module logs or returns them to callers other than the Gmail client.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import threading
import time
from urllib.parse import urlparse

from mailbridge.domain import models
from mailbridge.errors import AuthError, InvalidInput, MailbridgeError, TokenRevoked

MAIL_SCOPE = "https://mail.google.com/"
# openid + email ride along so that unticking Gmail on Google's granular consent screen
# still completes, and we can tell the admin exactly what went wrong.
SCOPES = ["openid", "https://www.googleapis.com/auth/userinfo.email", MAIL_SCOPE]
DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
STATE_TTL_SECONDS = 600


def _local_http(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "http" and parsed.hostname in ("localhost", "127.0.0.1", "::1")


class GoogleAuth:
    def __init__(self, services):
        self.services = services
        self.settings = services.settings
        self.auth_uri = self.settings.oauth_auth_url or DEFAULT_AUTH_URI
        self.token_uri = self.settings.oauth_token_url or DEFAULT_TOKEN_URI
        self.revoke_uri = self.settings.oauth_revoke_url or DEFAULT_REVOKE_URI
        self._cache: dict[tuple[str, str], object] = {}
        self._grants: dict[tuple[str, str], tuple] = {}  # which grant each cached entry belongs to
        self._cache_lock = threading.Lock()
        # oauthlib insists on https; the local stack serves the callback on http://127.0.0.1.
        if self.settings.functions_url and _local_http(self.settings.functions_url):
            os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
        # Users may untick the Gmail scope; we check the granted scope ourselves.
        os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

    # -- helpers -------------------------------------------------------------------------
    def _client_secret(self, mailbox: dict, cred: dict) -> str:
        secret = self.services.secrets.get(cred["client_secret_secret"])
        if not secret:
            raise MailbridgeError(f"client secret of mailbox {mailbox['name']!r} ({cred['instance']}) is missing in Secret Manager")
        return secret

    def _flow(self, cred: dict, client_secret: str, state: str | None = None, code_verifier: str | None = None):
        from google_auth_oauthlib.flow import Flow

        config = {"web": {
            "client_id": cred["client_id"], "client_secret": client_secret,
            "auth_uri": self.auth_uri, "token_uri": self.token_uri,
            "redirect_uris": [self.settings.redirect_uri],
        }}
        flow = Flow.from_client_config(config, scopes=SCOPES, state=state,
                                       code_verifier=code_verifier, autogenerate_code_verifier=True)
        flow.redirect_uri = self.settings.redirect_uri
        return flow

    # -- consent -------------------------------------------------------------------------
    def consent_url(self, mailbox: dict, instance: str) -> str:
        if instance != self.settings.instance:
            raise InvalidInput(
                f"this deployment is instance {self.settings.instance!r}; it cannot sign in the "
                f"{instance!r} credential set (use that instance's deployment)")
        cred = models.require_credential(mailbox, instance)
        flow = self._flow(cred, self._client_secret(mailbox, cred))
        state = pysecrets.token_urlsafe(32)
        url, _ = flow.authorization_url(
            access_type="offline", prompt="consent", login_hint=mailbox["address"],
            include_granted_scopes="false", state=state)
        self.services.store.put_oauth_state(state, {
            "mailbox": mailbox["name"], "instance": instance, "code_verifier": flow.code_verifier,
        }, STATE_TTL_SECONDS)
        return url

    def exchange_code(self, mailbox: dict, cred: dict, state: str, code_verifier: str, code: str):
        """Trade an authorization code for tokens: (token dict, google Credentials). AuthError if refused."""
        flow = self._flow(cred, self._client_secret(mailbox, cred), state=state, code_verifier=code_verifier)
        try:
            token = flow.fetch_token(code=code)
        except Exception as e:  # noqa: BLE001 - oauthlib raises many types; none may carry the code out
            if e.__class__.__name__ == "InvalidClientError":  # the token endpoint's invalid_client
                raise AuthError("Google refused the credential set: the client secret does not match the client id "
                                f"{cred['client_id']} (replace the secret in the credential set)") from None
            raise AuthError(f"Google refused the authorization code ({e.__class__.__name__})") from None
        return token, flow.credentials

    def forget(self, mailbox_name: str, instance: str) -> None:
        """Drop the cached access token of a credential set (its grant changed)."""
        with self._cache_lock:
            self._cache.pop((mailbox_name, instance), None)

    # -- tokens --------------------------------------------------------------------------
    def credentials_for(self, mailbox: dict, cred: dict):
        """google.oauth2 Credentials with a fresh access token; TokenRevoked on invalid_grant."""
        from google.auth.exceptions import RefreshError
        import google.auth.transport.requests
        from google.oauth2.credentials import Credentials

        key = (mailbox["name"], cred["instance"])
        # The grant the cache entry belongs to: a reconnection made by another instance (new
        # connected_at) must not reuse the old grant's tokens (they may be revoked by now).
        grant = (cred.get("refresh_token_secret"), cred.get("connected_at"), cred.get("client_id"))
        with self._cache_lock:
            cached = self._cache.get(key) if self._grants.get(key) == grant else None
        if cached is not None and cached.valid and cached.expiry and cached.expiry.timestamp() - time.time() > 300:
            return cached
        refresh_token = self.services.secrets.get(cred.get("refresh_token_secret") or "")
        if not refresh_token:
            raise TokenRevoked("no refresh token stored: sign in again")
        # Constructed directly: from_authorized_user_info would reset token_uri to Google's.
        credentials = Credentials(
            token=None, refresh_token=refresh_token, token_uri=self.token_uri,
            client_id=cred["client_id"], client_secret=self._client_secret(mailbox, cred), scopes=[MAIL_SCOPE])
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except RefreshError as e:
            if "invalid_grant" in str(e):
                raise TokenRevoked("Google refused the refresh token (invalid_grant): revoked, password changed or expired") from None
            raise MailbridgeError(f"token refresh failed ({e.__class__.__name__})") from None
        with self._cache_lock:
            self._cache[key] = credentials
            self._grants[key] = grant
        return credentials

    def mark_revoked(self, mailbox_name: str, instance: str, reason: str) -> None:
        with self._cache_lock:
            self._cache.pop((mailbox_name, instance), None)
        self.services.store.update_credential(mailbox_name, instance, {
            "status": "disconnected", "last_error": reason, "disconnected_at": models.now_iso()})

    def revoke(self, token: str | None) -> None:
        if not token:
            return
        import requests

        try:
            requests.post(self.revoke_uri, data={"token": token}, timeout=10)
        except requests.RequestException:
            pass  # best effort: the secret is destroyed either way

    def disconnect(self, mailbox: dict, instance: str) -> dict:
        cred = models.require_credential(mailbox, instance)
        secret_id = cred.get("refresh_token_secret")
        if secret_id:
            self.revoke(self.services.secrets.get(secret_id))
            self.services.secrets.destroy_all_versions(secret_id)
        with self._cache_lock:
            self._cache.pop((mailbox["name"], instance), None)
        return self.services.store.update_credential(mailbox["name"], instance, {
            "status": "not_connected", "connected_email": None, "connected_at": None,
            "refresh_token_secret": None, "last_error": None, "disconnected_at": models.now_iso()})
