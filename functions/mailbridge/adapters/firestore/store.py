"""Firestore adapter: mailboxes, settings, OAuth state, leases, tickets and the inbound log.

Layout (collection/doc):
  settings/global            backend switches and global defaults
  mailboxes/{name}           mailbox, its settings and credential sets (no secrets)
  sync/{name}~{instance}     history id, lease and poll status of one credential set
  oauth_states/{state}       PKCE verifier bound to mailbox + set, single use, expiring; once used
                             only a marker {used, expires_at} stays (the TTL policy deletes it)
  nonces/{nonce}             used signed links (single use)
  counters/tickets           ticket numbers, reserved in blocks (never one write per ticket)
  tickets/{number}           ticket header: subject, status, participants, Message-IDs, threads
  inbound/{name}~{gmail_id}  one row per Gmail message seen: the log AND the stored message
  outbound/{id}              messages we sent (or will send), keyed by idempotency key
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import time

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore.admin import AdminRepository
from mailbridge.adapters.firestore.outbound import OutboundRepository
from mailbridge.domain import models
from mailbridge.errors import AuthError, Conflict, NotFound, StoreUnavailable, WriteConflict


def inbound_key(mailbox: str, gmail_id: str) -> str:
    return f"{mailbox}~{gmail_id}"


def sync_key(mailbox: str, instance: str) -> str:
    return f"{mailbox}~{instance}"


class Store(OutboundRepository, AdminRepository):
    """Every repository over one Firestore client (one per aggregate in adapters/firestore/)."""

    def __init__(self, client: "firestore.Client"):
        self.db = client
        self.write_count = 0  # documents written by this process (benchmarks read it)

    # -- settings ---------------------------------------------------------------------
    def settings(self) -> dict:
        snap = self.db.collection("settings").document("global").get()
        return {**models.DEFAULT_SETTINGS, **(snap.to_dict() or {})}

    def set_setting(self, key: str, value) -> None:
        self.db.collection("settings").document("global").set({key: value}, merge=True)
        self.write_count += 1

    # -- mailboxes ----------------------------------------------------------------------
    def add_mailbox(self, mailbox: dict) -> None:
        try:
            self.db.collection("mailboxes").document(mailbox["name"]).create(mailbox)
        except gexc.AlreadyExists as e:
            raise Conflict(f"mailbox {mailbox['name']!r} already exists") from e
        self.write_count += 1

    def get_mailbox(self, name: str) -> dict:
        snap = self.db.collection("mailboxes").document(name).get()
        if not snap.exists:
            raise NotFound(f"no mailbox named {name!r}")
        return snap.to_dict()

    def list_mailboxes(self) -> list[dict]:
        return [s.to_dict() for s in self.db.collection("mailboxes").order_by("name").stream()]

    def find_mailbox_by_address(self, address: str) -> dict | None:
        query = self.db.collection("mailboxes").where(filter=FieldFilter("address", "==", address.lower()))
        for snap in query.limit(1).stream():
            return snap.to_dict()
        return None

    def update_mailbox(self, name: str, updates: dict) -> None:
        try:
            self.db.collection("mailboxes").document(name).update(updates)
        except gexc.NotFound as e:
            raise NotFound(f"no mailbox named {name!r}") from e
        self.write_count += 1

    def _change_credentials(self, name: str, change):
        """Run `change(credentials)` on a mailbox's credential sets in one transaction; it
        returns (new list, result). Both credential writers share this read-modify-write."""
        ref = self.db.collection("mailboxes").document(name)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"no mailbox named {name!r}")
            credentials, result = change(snap.to_dict().get("credentials", []))
            tx.update(ref, {"credentials": credentials})
            return result

        result = run(self.db.transaction())
        self.write_count += 1
        return result

    def update_credential(self, name: str, instance: str, changes: dict) -> dict:
        """Merge `changes` into one credential set, atomically; returns the new set."""
        def change(credentials):
            for cred in credentials:
                if cred["instance"] == instance:
                    cred.update(changes)
                    return credentials, cred
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")

        return self._change_credentials(name, change)

    def remove_credential(self, name: str, instance: str) -> dict:
        """Drop one credential set, atomically; returns the set removed (its secret ids)."""
        def change(credentials):
            for cred in credentials:
                if cred["instance"] == instance:
                    return [c for c in credentials if c["instance"] != instance], cred
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")

        return self._change_credentials(name, change)

    def delete_mailbox(self, name: str) -> None:
        """The mailbox document and its per-instance sync state; tickets and inbound rows stay."""
        ref = self.db.collection("mailboxes").document(name)
        if not ref.get().exists:
            raise NotFound(f"no mailbox named {name!r}")
        batch = self.db.batch()
        prefix = sync_key(name, "")
        for snap in self.db.collection("sync").select([]).stream():  # one small document per mailbox and instance
            if snap.id.startswith(prefix):
                batch.delete(snap.reference)
        batch.delete(ref)
        batch.commit()
        self.write_count += 1

    def add_credential(self, name: str, credential: dict) -> None:
        def change(credentials):
            if any(c["instance"] == credential["instance"] for c in credentials):
                raise Conflict(
                    f"mailbox {name!r} already has a credential set for instance {credential['instance']!r}")
            return credentials + [credential], None

        self._change_credentials(name, change)

    # -- sync state and leases ------------------------------------------------------------
    def get_sync(self, mailbox: str, instance: str) -> dict:
        snap = self.db.collection("sync").document(sync_key(mailbox, instance)).get()
        return snap.to_dict() or {}

    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None:
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(changes, merge=True)
        self.write_count += 1

    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None) -> None:
        self.db.collection("sync").document(sync_key(mailbox, instance)).set(
            {"history_id": str(history_id) if history_id else None, "connected_at": connected_at,
             "last_success_at": None,
             "last_error": None, "lease_owner": None, "lease_expires_at": 0}
        )
        self.write_count += 1

    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") and data.get("lease_expires_at", 0) > time.time():
                return False
            now = time.time()
            lease = {"lease_owner": owner, "lease_expires_at": now + ttl_seconds, "lease_since": now}
            if data.get("lease_owner"):  # its holder died (killed, out of memory) before releasing it
                lease["abandoned_runs"] = int(data.get("abandoned_runs") or 0) + 1
            tx.set(ref, lease, merge=True)
            return True

        try:
            acquired = run(transaction)
        except (gexc.Aborted, ValueError):
            # Another poll won the race, or the commit's answer was lost after it was applied:
            # read back, else a lease we hold would block this mailbox until it expires.
            acquired = (ref.get().to_dict() or {}).get("lease_owner") == owner
        if acquired:
            self.write_count += 1
        return acquired

    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        """The heartbeat (services/sync.py): False once the lease is no longer ours."""
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") != owner:
                return False
            tx.update(ref, {"lease_expires_at": time.time() + ttl_seconds})
            return True

        try:
            renewed = run(transaction)
        except (gexc.Aborted, ValueError):
            renewed = (ref.get().to_dict() or {}).get("lease_owner") == owner
        if renewed:
            self.write_count += 1
        return renewed

    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None:
        ref = self.db.collection("sync").document(sync_key(mailbox, instance))
        transaction = self.db.transaction()

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("lease_owner") not in (owner, None):
                return  # another sync took the mailbox over: its history id and status win
            update = dict(changes or {})
            if data.get("lease_owner") == owner:
                update.update({"lease_owner": None, "lease_expires_at": 0, "lease_since": None})
            if update:
                tx.set(ref, update, merge=True)

        run(transaction)
        self.write_count += 1

    # -- OAuth state and single-use links ------------------------------------------------
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

    # -- tickets ------------------------------------------------------------------------
    def reserve_ticket_numbers(self, count: int) -> list[int]:
        """Reserve `count` consecutive numbers with ONE write and no transaction: Firestore
        applies the increment atomically on the server and returns the new value, so many
        mailboxes polled at once never contend in retries (once per chunk, never per ticket)."""
        if count <= 0:
            return []
        ref = self.db.collection("counters").document("tickets")
        result = ref.set({"last": firestore.Increment(count)}, merge=True)
        self.write_count += 1
        last = int(result.transform_results[0].integer_value)
        return list(range(last - count + 1, last + 1))

    def ticket_ref(self, ticket_id: str):
        return self.db.collection("tickets").document(str(ticket_id))

    def inbound_ref(self, mailbox: str, gmail_id: str):
        return self.db.collection("inbound").document(inbound_key(mailbox, gmail_id))

    def find_ticket(self, ticket_id: str) -> dict | None:
        snap = self.ticket_ref(str(ticket_id).lstrip("#")).get()
        return snap.to_dict() if snap.exists else None

    def get_ticket(self, ticket_id: str) -> dict:
        ticket = self.find_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket {str(ticket_id).lstrip('#')!r}")
        return ticket

    def update_ticket(self, ticket_id: str, changes: dict) -> None:
        self.ticket_ref(ticket_id).update(changes)
        self.write_count += 1

    def list_tickets(self, mailbox: str | None = None, status: str | None = None, limit: int = 200,
                     before: int | None = None) -> list[dict]:
        query = self.db.collection("tickets")
        if mailbox:
            query = query.where(filter=FieldFilter("mailbox", "==", mailbox))
        if status:
            query = query.where(filter=FieldFilter("status", "==", status))
        if before is not None:  # same field as the order: the composite indexes of indexes.py serve it
            query = query.where(filter=FieldFilter("number", "<", int(before)))
        query = query.order_by("number", direction=firestore.Query.DESCENDING)
        if limit:
            query = query.limit(limit)
        return [s.to_dict() for s in query.stream()]

    def ticket_messages(self, ticket_id: str) -> list[dict]:
        rows = []
        for coll in ("inbound", "outbound"):
            query = self.db.collection(coll).where(filter=FieldFilter("ticket_id", "==", str(ticket_id)))
            rows.extend(s.to_dict() for s in query.stream())
        rows = [r for r in rows if r.get("message")]
        rows.sort(key=lambda r: (r["message"].get("received_at") or r["message"].get("date") or "", r.get("seq", 0)))
        return rows

    def tickets_by_message_ids(self, ids: list[str]) -> dict[str, str]:
        """Map each of `ids` that a ticket holds to that ticket's id."""
        ids = list(dict.fromkeys(i for i in ids if i))[:60]
        found: dict[str, str] = {}
        for start in range(0, len(ids), 30):  # array_contains_any takes at most 30 values
            query = self.db.collection("tickets").where(
                filter=FieldFilter("message_ids", "array_contains_any", ids[start:start + 30]))
            for snap in query.stream():
                ticket = snap.to_dict()
                for message_id in set(ticket.get("message_ids", [])).intersection(ids):
                    found.setdefault(message_id, ticket["id"])
        return found

    def find_ticket_by_thread(self, thread_key: str) -> str | None:
        query = self.db.collection("tickets").where(filter=FieldFilter("thread_keys", "array_contains", thread_key))
        for snap in query.limit(1).stream():
            return snap.to_dict()["id"]
        return None

    # -- inbound log ----------------------------------------------------------------------
    def get_inbound_rows(self, mailbox: str, gmail_ids: list[str]) -> dict[str, dict]:
        refs = [self.inbound_ref(mailbox, gid) for gid in gmail_ids]
        found = {}
        for i in range(0, len(refs), 300):
            for snap in self.db.get_all(refs[i:i + 300], field_paths=["gmail_message_id", "outcome", "attempts", "unfinished"]):
                if snap.exists:
                    # the version lets a retry of a failed row commit only if nobody else did
                    found[snap.get("gmail_message_id")] = {**snap.to_dict(), "_update_time": snap.update_time}
        return found

    INBOUND_LOG_FIELDS = ["gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts",
                          "processed_at", "subject", "from_email", "mailbox", "defects"]

    def inbound_log(self, mailbox: str, limit: int = 500, before: str | None = None) -> list[dict]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox))
        if before is not None:
            query = query.where(filter=FieldFilter("processed_at", "<", before))
        query = query.order_by("processed_at", direction=firestore.Query.DESCENDING)
        if limit:
            query = query.limit(limit)
        return [s.to_dict() for s in query.select(self.INBOUND_LOG_FIELDS).stream()]

    def inbound_since(self, mailbox: str, since: str) -> list[dict]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox)).where(
            filter=FieldFilter("processed_at", ">=", since))
        query = query.order_by("processed_at", direction=firestore.Query.DESCENDING)
        return [s.to_dict() for s in query.select(self.INBOUND_LOG_FIELDS).stream()]

    def _change_open_row(self, mailbox: str, gmail_id: str, change) -> dict:
        """Read-modify-write of an inbound row in one transaction; `change(data)` gives the
        fields to merge. A final row is returned unchanged."""
        ref = self.inbound_ref(mailbox, gmail_id)

        @firestore.transactional
        def run(tx):
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("outcome") in models.FINAL_INBOUND_OUTCOMES:
                return data
            row = change(data)
            tx.set(ref, row, merge=True)
            return {**data, **row}

        row = run(self.db.transaction())
        self.write_count += 1
        return row

    def record_failure(self, mailbox: str, gmail_id: str, reason: str, max_attempts: int) -> dict:
        """Count a failed attempt; quarantine after max_attempts. Never overwrites a final row."""
        return self._change_open_row(mailbox, gmail_id, lambda data: models.failed_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def begin_attempt(self, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
        """Count an attempt before risky work (the row stays `failed` + `unfinished` until the
        work ends); an unfinished row that already used up max_attempts becomes quarantined."""
        return self._change_open_row(mailbox, gmail_id, lambda data: models.begun_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def retry_quarantined(self, mailbox: str, gmail_id: str) -> None:
        ref = self.inbound_ref(mailbox, gmail_id)
        snap = ref.get()
        if not snap.exists or snap.get("outcome") != "quarantined":
            raise NotFound(f"no quarantined message {gmail_id!r} in mailbox {mailbox!r}")
        ref.update({"outcome": "failed", "attempts": 0, "unfinished": False, "reason": "retry requested by an admin"})
        self.write_count += 1

    def failed_rows(self, mailbox: str) -> list[str]:
        query = self.db.collection("inbound").where(filter=FieldFilter("mailbox", "==", mailbox)).where(
            filter=FieldFilter("outcome", "==", "failed"))
        return [s.get("gmail_message_id") for s in query.select(["gmail_message_id"]).stream()]

    def ticket_for_update(self, ticket_id: str) -> tuple[dict, object]:
        """A ticket and its version: commit_inbound_chunk updates it only if it is unchanged."""
        snap = self.ticket_ref(ticket_id).get()
        return snap.to_dict(), snap.update_time

    def put_inbound_row(self, mailbox: str, gmail_id: str, row: dict) -> None:
        """Merge `row` into an inbound row (StoreUnavailable if Firestore refuses)."""
        try:
            self.inbound_ref(mailbox, gmail_id).set(row, merge=True)
        except gexc.GoogleAPICallError as e:
            raise StoreUnavailable(f"inbound row not written ({e.__class__.__name__})") from e
        self.write_count += 1

    def commit_inbound_chunk(self, mailbox: str, rows: list[tuple[str, dict, object]],
                             tickets: list[tuple[str, dict, object]]) -> int:
        """One batch for a chunk of messages, all or nothing. `rows`: (gmail_id, row, version of
        the earlier row or None); `tickets`: (ticket_id, ticket, version read or None for a new
        one). New documents are created (fail if present); earlier ones are updated only if
        unchanged since read, and a retried row loses its `unfinished` mark. WriteConflict if
        another writer came first. Returns the number of documents written."""
        batch = self.db.batch()
        for gmail_id, row, version in rows:
            ref = self.inbound_ref(mailbox, gmail_id)
            if version is not None:  # a failed earlier attempt left a row: guard on its version
                batch.update(ref, {**row, "unfinished": firestore.DELETE_FIELD},
                             option=self.db.write_option(last_update_time=version))
            else:
                batch.create(ref, row)
        for ticket_id, ticket, version in tickets:
            if version is not None:  # precondition: nobody changed the ticket since we read it
                batch.update(self.ticket_ref(ticket_id), ticket, option=self.db.write_option(last_update_time=version))
            else:
                batch.create(self.ticket_ref(ticket_id), ticket)
        writes = len(rows) + len(tickets)
        if not writes:
            return 0
        try:
            batch.commit()
        except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict) as e:
            raise WriteConflict(e.__class__.__name__) from e
        self.write_count += writes
        return writes
