"""Signed, expiring links and session tokens: itsdangerous signs a small JSON payload
(HMAC-SHA256 over the payload, key derived from the deployment's signing key).

Each token carries its purpose (`p`), its expiry (`exp`) and a random nonce (`n`). Single use is
enforced by the caller, which records each token's nonce in the store (services/mailboxes.py).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from itsdangerous import BadPayload, BadSignature, URLSafeSerializer

from mailbridge.errors import AuthError, ConfigError

SALT = "mailbridge.link"


def _serializer(key: str) -> URLSafeSerializer:
    if not key:
        raise ConfigError("MAILBRIDGE_SIGNING_KEY is not set")
    return URLSafeSerializer(key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign(key: str, purpose: str, payload: dict, ttl_seconds: int, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return _serializer(key).dumps(dict(payload, p=purpose, exp=int(now + ttl_seconds), n=secrets.token_urlsafe(12)))


def verify(key: str, purpose: str, token: str, now: float | None = None) -> dict:
    """Return the payload of a valid token; raise AuthError with a reason otherwise."""
    serializer = _serializer(key)
    if not token or "." not in token:
        raise AuthError("link is malformed")
    try:
        body = serializer.loads(token)
    except BadPayload as e:
        raise AuthError("link is malformed") from e
    except BadSignature as e:
        raise AuthError("link signature is invalid") from e
    if not isinstance(body, dict):
        raise AuthError("link is malformed")
    if body.get("p") != purpose:
        raise AuthError("link is for another purpose")
    now = time.time() if now is None else now
    if int(body.get("exp", 0)) < now:
        raise AuthError("link has expired")
    return body
