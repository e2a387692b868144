"""Verifying the Google-signed OIDC tokens that Cloud Scheduler and Pub/Sub push put on their
calls to `poll` and `push` (the check itself: http/invoker.py).

google-auth fetches Google's certificates and checks the signature, expiry and audience; the
certificates URL is a setting so the local fake Google server (tests/fakes/README.md) can sign.
"""

from __future__ import annotations

from mailbridge.errors import AuthError

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


class OidcVerifier:
    def __init__(self, certs_url: str = ""):
        self.certs_url = certs_url or GOOGLE_CERTS_URL
        self._request = None

    def verify(self, token: str, audience: str) -> dict:
        """The token's claims when Google signed it for `audience` and it has not expired;
        AuthError (with the reason, never the token) otherwise."""
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.oauth2 import id_token

        if self._request is None:
            self._request = google.auth.transport.requests.Request()
        try:
            return id_token.verify_token(token, self._request, audience=audience, certs_url=self.certs_url)
        except google.auth.exceptions.TransportError as e:
            raise AuthError(f"cannot fetch Google's token certificates: {e.__class__.__name__}") from None
        except (ValueError, google.auth.exceptions.GoogleAuthError) as e:
            raise AuthError(f"token refused: {_reason(e)}") from None


def _reason(error: Exception) -> str:
    """google-auth's message without the token or its claims."""
    text = str(error)
    for known in ("Token expired", "Token used too early", "Could not verify token signature",
                  "wrong audience", "Wrong number of segments", "Certificate for key id"):
        if known.lower() in text.lower():
            return known.lower()
    return error.__class__.__name__
