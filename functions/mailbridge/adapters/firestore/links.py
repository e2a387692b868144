"""Firestore repository of single-use things: OAuth states (with the PKCE verifier) and the
nonces of signed links.

Layout: oauth_states/{state}   PKCE verifier bound to mailbox + set, single use, expiring; once used
                               only a marker {used, expires_at} stays (the TTL policy deletes it)
        nonces/{nonce}         used signed links (single use)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc
from google.cloud import firestore

from mailbridge.adapters.firestore.base import FirestoreRepository
from mailbridge.errors import AuthError


class LinkRepository(FirestoreRepository):
    def put_oauth_state(self, state: str, data: dict, ttl_seconds: int) -> None:
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds)
        self.db.collection("oauth_states").document(state).set(
            dict(data, expires_at=expires, used=False)
        )
        self.write_count += 1

    def consume_oauth_state(self, state: str) -> dict:
        """Return the state and replace it by a used-marker, so the PKCE verifier and the
        mailbox binding are gone once used; unknown, used or expired state is refused. An expired
        state is left as it is (its TTL deletes it), so the callback can still name its mailbox
        (services/connect.finish, peek_oauth_state)."""
        if not state or "/" in state or len(state) > 200:
            raise AuthError("unknown sign-in state")
        ref = self.db.collection("oauth_states").document(state)
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise AuthError("unknown sign-in state: start again from the mailbox page")
            data = snap.to_dict()
            if data.get("used"):
                raise AuthError("this sign-in link was already used: start again from the mailbox page")
            if data["expires_at"] < datetime.now(timezone.utc):
                raise AuthError("sign-in took too long and expired: start again from the mailbox page")
            tx.set(ref, {"used": True, "expires_at": data["expires_at"]})
            return data

        data = run(transaction)
        self.write_count += 1
        return data

    def use_nonce(self, nonce: str, expires_epoch: int) -> None:
        try:
            self.db.collection("nonces").document(nonce).create(
                {"expires_at": datetime.fromtimestamp(expires_epoch, timezone.utc)}
            )
        except gexc.AlreadyExists as e:
            raise AuthError("this link was already used: ask for a new one") from e
        self.write_count += 1

    def peek_oauth_state(self, state: str) -> dict | None:
        """An OAuth state as stored (used or not, expired or not): which mailbox a failed
        sign-in belonged to, so the answer can return to that mailbox's page."""
        if not state or "/" in state or len(state) > 200:
            return None
        snap = self.db.collection("oauth_states").document(state).get()
        return snap.to_dict() if snap.exists else None
