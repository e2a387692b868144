"""In-memory repository of single-use things: OAuth states and signed-link nonces (as
adapters/firestore/links.py).

Layout: oauth_states/{state}   PKCE verifier bound to mailbox + set, single use, expiring; once used
                               only a marker {used, expires_at} stays
        nonces/{nonce}         used signed links (single use)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc

from mailbridge.errors import AuthError
from tests.memory.store.base import MemoryRepository


def _plausible(state: str) -> bool:
    return bool(state) and "/" not in state and len(state) <= 200


class LinkRepository(MemoryRepository):
    def put_oauth_state(self, state: str, data: dict, ttl_seconds: int) -> None:
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds)
        self._set("oauth_states", state, dict(data, expires_at=expires, used=False))

    def consume_oauth_state(self, state: str) -> dict:
        if not _plausible(state):
            raise AuthError("unknown sign-in state")
        with self._lock:
            data = self._get("oauth_states", state)
            if data is None:
                raise AuthError("unknown sign-in state: start again from the mailbox page")
            if data.get("used"):
                raise AuthError("this sign-in link was already used: start again from the mailbox page")
            if data["expires_at"] < datetime.now(timezone.utc):  # left as it is: its TTL deletes it
                raise AuthError("sign-in took too long and expired: start again from the mailbox page")
            self._set("oauth_states", state, {"used": True, "expires_at": data["expires_at"]})
            return data

    def use_nonce(self, nonce: str, expires_epoch: int) -> None:
        try:
            self._create("nonces", nonce, {"expires_at": datetime.fromtimestamp(expires_epoch, timezone.utc)})
        except gexc.AlreadyExists as e:
            raise AuthError("this link was already used: ask for a new one") from e

    def peek_oauth_state(self, state: str) -> dict | None:
        return self._get("oauth_states", state) if _plausible(state) else None
