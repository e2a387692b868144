"""Admin sign-in with Google (OpenID Connect, authorization code flow with PKCE): the
authorization URL, the code exchange, and the ID token verified by google-auth (signature,
issuer, audience, expiry). Which account may sign in is decided in services/admin_access.py.

The client secret is read from Secret Manager (MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID) and never
leaves this module; nothing here logs a code or a token.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

from mailbridge.errors import AuthError, ConfigError

DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Google's ID tokens name either form of the issuer (OpenID Connect, "Validating an ID token").
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
SCOPES = "openid email"


def code_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class GoogleSignIn:
    def __init__(self, services):
        self.services = services
        self.settings = services.settings
        self.auth_uri = self.settings.oauth_auth_url or DEFAULT_AUTH_URI
        self.token_uri = self.settings.oauth_token_url or DEFAULT_TOKEN_URI

    @property
    def client_id(self) -> str:
        if not self.settings.admin_oauth_client_id:
            raise ConfigError("MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID is not set")
        return self.settings.admin_oauth_client_id

    def _client_secret(self) -> str:
        secret_id = self.settings.admin_oauth_client_secret_id
        if not secret_id:
            raise ConfigError("MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID is not set")
        secret = self.services.secrets.get(secret_id)
        if not secret:
            raise ConfigError(f"Secret Manager secret {secret_id} has no version: add the admin OAuth client's secret")
        return secret

    def configured(self) -> str | None:
        """None when sign-in with Google can work, else what is missing (no secret value named)."""
        try:
            self.client_id
            self._client_secret()
        except ConfigError as e:
            return str(e)
        except Exception as e:  # noqa: BLE001 - Secret Manager unreachable: say so, never crash a page
            return f"the admin OAuth client secret cannot be read ({e.__class__.__name__})"
        return None

    def authorization_url(self, *, state: str, nonce: str, verifier: str, redirect_uri: str,
                          hosted_domain: str = "") -> str:
        query = {
            "client_id": self.client_id, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": SCOPES, "state": state, "nonce": nonce, "prompt": "select_account",
            "code_challenge": code_challenge(verifier), "code_challenge_method": "S256",
        }
        if hosted_domain:  # a hint for Google's account chooser; the ID token is still checked
            query["hd"] = hosted_domain
        return f"{self.auth_uri}?{urlencode(query)}"

    def exchange(self, *, code: str, verifier: str, redirect_uri: str) -> dict:
        """Trade the code for tokens and return the verified ID token's claims."""
        import requests

        try:
            response = requests.post(self.token_uri, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.client_id, "client_secret": self._client_secret(), "code_verifier": verifier,
            }, timeout=20)
        except requests.RequestException as e:
            raise AuthError(f"cannot reach Google's token endpoint ({e.__class__.__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            error = str(body.get("error") or response.status_code)[:60]
            if error == "invalid_client":
                raise AuthError("Google refused the admin OAuth client: the client secret does not match the "
                                "client id (MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID)")
            raise AuthError(f"Google refused the sign-in ({error}): start again")
        if not body.get("id_token"):
            raise AuthError("Google returned no ID token")
        return self.verify(body["id_token"])

    def verify(self, token: str, audience: str | None = None) -> dict:
        """The claims of a Google ID token: signature, expiry, audience (the admin client unless
        named: a mailbox's client for its own sign-in) and issuer checked."""
        import google.auth.transport.requests
        from google.oauth2 import id_token

        kwargs = {"certs_url": self.settings.oauth_certs_url} if self.settings.oauth_certs_url else {}
        try:
            claims = id_token.verify_token(token, google.auth.transport.requests.Request(),
                                           audience=audience or self.client_id, clock_skew_in_seconds=10, **kwargs)
        except Exception as e:  # noqa: BLE001 - google-auth raises ValueError/GoogleAuthError variants
            raise AuthError(f"the ID token from Google is not valid ({e.__class__.__name__})") from None
        if claims.get("iss") not in ISSUERS:
            raise AuthError("the ID token was not issued by Google")
        return claims
