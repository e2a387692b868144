"""Signed, expiring links and session tokens (HMAC-SHA256 over a small JSON payload).

Single use is enforced by the caller, which records each token's nonce in the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from mailbridge.errors import AuthError, ConfigError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: str, purpose: str, payload: dict, ttl_seconds: int, now: float | None = None) -> str:
    if not key:
        raise ConfigError("MAILBRIDGE_SIGNING_KEY is not set")
    now = time.time() if now is None else now
    body = dict(payload, p=purpose, exp=int(now + ttl_seconds), n=secrets.token_urlsafe(12))
    encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{encoded}.{_b64(mac)}"


def verify(key: str, purpose: str, token: str, now: float | None = None) -> dict:
    """Return the payload of a valid token; raise AuthError with a reason otherwise."""
    if not key:
        raise ConfigError("MAILBRIDGE_SIGNING_KEY is not set")
    if not token or token.count(".") != 1:
        raise AuthError("link is malformed")
    encoded, mac = token.split(".")
    expected = _b64(hmac.new(key.encode(), encoded.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        raise AuthError("link signature is invalid")
    try:
        body = json.loads(_unb64(encoded))
    except ValueError as e:
        raise AuthError("link is malformed") from e
    if body.get("p") != purpose:
        raise AuthError("link is for another purpose")
    now = time.time() if now is None else now
    if int(body.get("exp", 0)) < now:
        raise AuthError("link has expired")
    return body
