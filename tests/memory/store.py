"""MemoryStore: every store repository of services/ports.py over dicts, with document versions
(so the exactly-once preconditions of the real store hold here too)."""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta, timezone
import time

from mailbridge.domain import models
from mailbridge.errors import AuthError, Conflict, NotFound, WriteConflict

FINAL = models.FINAL_INBOUND_OUTCOMES



def _check_firestore_value(value, where: str, in_array: bool = False) -> None:
    """Refuse what Firestore refuses, as its emulator does: an array directly inside an array."""
    if isinstance(value, dict):
        for field, inner in value.items():
            _check_firestore_value(inner, f"{where}.{field}")
    elif isinstance(value, (list, tuple)):
        if in_array:
            raise ValueError(f"{where}: Firestore cannot store an array value in an array value")
        for inner in value:
            _check_firestore_value(inner, where, in_array=True)

class MemoryStore:
    def __init__(self):
        self.docs: dict[tuple[str, str], dict] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self._clock = 0
        self.write_count = 0
        self.ticket_counter = 0
        self._lease_lock = threading.RLock()  # the heartbeat renews from its own thread

    # -- plumbing -------------------------------------------------------------------------
    def _get(self, collection: str, key: str) -> dict | None:
        doc = self.docs.get((collection, str(key)))
        return copy.deepcopy(doc) if doc is not None else None

    def _put(self, collection: str, key: str, data: dict) -> None:
        _check_firestore_value(data, f"{collection}/{key}")
        self._clock += 1
        self.docs[(collection, str(key))] = copy.deepcopy(data)
        self.versions[(collection, str(key))] = self._clock
        self.write_count += 1

    def _merge(self, collection: str, key: str, changes: dict) -> dict:
        data = self._get(collection, key) or {}
        for field, value in changes.items():
            target = data
            *path, last = field.split(".")
            for part in path:
                target = target.setdefault(part, {})
            target[last] = value
        self._put(collection, key, data)
        return data

    def _all(self, collection: str) -> list[dict]:
        return [copy.deepcopy(d) for (c, _k), d in sorted(self.docs.items()) if c == collection]

    def collection(self, name: str) -> dict[str, dict]:
        """Test helper: the documents of one collection by key."""
        return {k: copy.deepcopy(d) for (c, k), d in self.docs.items() if c == name}

    # -- settings ---------------------------------------------------------------------------
    def settings(self) -> dict:
        return {**models.DEFAULT_SETTINGS, **(self._get("settings", "global") or {})}

    def set_setting(self, key: str, value) -> None:
        self._merge("settings", "global", {key: value})

    # -- mailboxes ----------------------------------------------------------------------------
    def add_mailbox(self, mailbox: dict) -> None:
        if self._get("mailboxes", mailbox["name"]) is not None:
            raise Conflict(f"mailbox {mailbox['name']!r} already exists")
        self._put("mailboxes", mailbox["name"], mailbox)

    def get_mailbox(self, name: str) -> dict:
        mailbox = self._get("mailboxes", name)
        if mailbox is None:
            raise NotFound(f"no mailbox named {name!r}")
        return mailbox

    def list_mailboxes(self) -> list[dict]:
        return sorted(self._all("mailboxes"), key=lambda m: m["name"])

    def find_mailbox_by_address(self, address: str) -> dict | None:
        return next((m for m in self.list_mailboxes() if m["address"] == address.lower()), None)

    def update_mailbox(self, name: str, updates: dict) -> None:
        self.get_mailbox(name)
        self._merge("mailboxes", name, updates)

    def add_credential(self, name: str, credential: dict) -> None:
        mailbox = self.get_mailbox(name)
        if models.credential_of(mailbox, credential["instance"]) is not None:
            raise Conflict(f"mailbox {name!r} already has a credential set for instance {credential['instance']!r}")
        self._merge("mailboxes", name, {"credentials": mailbox.get("credentials", []) + [credential]})

    def update_credential(self, name: str, instance: str, changes: dict) -> dict:
        mailbox = self.get_mailbox(name)
        cred = models.credential_of(mailbox, instance)
        if cred is None:
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")
        cred.update(changes)
        self._merge("mailboxes", name, {"credentials": mailbox["credentials"]})
        return cred

    def remove_credential(self, name: str, instance: str) -> dict:
        mailbox = self.get_mailbox(name)
        cred = models.credential_of(mailbox, instance)
        if cred is None:
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")
        rest = [c for c in mailbox["credentials"] if c["instance"] != instance]
        self._merge("mailboxes", name, {"credentials": rest})
        return cred

    def delete_mailbox(self, name: str) -> None:
        self.get_mailbox(name)
        for key in [k for k in self.docs if (k[0] == "mailboxes" and k[1] == name)
                    or (k[0] == "sync" and k[1].split("~", 1)[0] == name)]:
            del self.docs[key]
            self.versions.pop(key, None)
        self.write_count += 1

    # -- sync and leases ------------------------------------------------------------------------
    def get_sync(self, mailbox: str, instance: str) -> dict:
        return self._get("sync", f"{mailbox}~{instance}") or {}

    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None:
        self._merge("sync", f"{mailbox}~{instance}", changes)

    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None) -> None:
        self._put("sync", f"{mailbox}~{instance}", {
            "history_id": str(history_id) if history_id else None, "connected_at": connected_at,
            "last_success_at": None, "last_error": None, "lease_owner": None, "lease_expires_at": 0})

    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        with self._lease_lock:
            data = self.get_sync(mailbox, instance)
            now = time.time()
            if data.get("lease_owner") and data.get("lease_expires_at", 0) > now:
                return False
            lease = {"lease_owner": owner, "lease_expires_at": now + ttl_seconds, "lease_since": now}
            if data.get("lease_owner"):
                lease["abandoned_runs"] = int(data.get("abandoned_runs") or 0) + 1
            self.update_sync(mailbox, instance, lease)
            return True

    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool:
        with self._lease_lock:
            if self.get_sync(mailbox, instance).get("lease_owner") != owner:
                return False
            self.update_sync(mailbox, instance, {"lease_expires_at": time.time() + ttl_seconds})
            return True

    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None:
        with self._lease_lock:
            if self.get_sync(mailbox, instance).get("lease_owner") not in (owner, None):
                return  # another sync took the mailbox over: its history id and status win
            update = dict(changes or {})
            if self.get_sync(mailbox, instance).get("lease_owner") == owner:
                update.update({"lease_owner": None, "lease_expires_at": 0, "lease_since": None})
            if update:
                self.update_sync(mailbox, instance, update)

    # -- single-use things ------------------------------------------------------------------------
    def put_oauth_state(self, state: str, data: dict, ttl_seconds: int) -> None:
        self._put("oauth_states", state, dict(data, expires_at=datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds),
                                               used=False))

    def consume_oauth_state(self, state: str) -> dict:
        data = self._get("oauth_states", state)
        if data is None:
            raise AuthError("unknown sign-in state: start again from the mailbox page")
        if data.get("used"):
            raise AuthError("this sign-in link was already used: start again from the mailbox page")
        if data["expires_at"] < datetime.now(timezone.utc):  # left as it is: its TTL deletes it
            raise AuthError("sign-in took too long and expired: start again from the mailbox page")
        self._put("oauth_states", state, {"used": True, "expires_at": data["expires_at"]})
        return data

    def use_nonce(self, nonce: str, expires_epoch: int) -> None:
        if self._get("nonces", nonce) is not None:
            raise AuthError("this link was already used: ask for a new one")
        self._put("nonces", nonce, {"expires_at": datetime.fromtimestamp(expires_epoch, timezone.utc)})

    # -- tickets ---------------------------------------------------------------------------------
    def reserve_ticket_numbers(self, count: int) -> list[int]:
        first = self.ticket_counter + 1
        self.ticket_counter += max(count, 0)
        return list(range(first, self.ticket_counter + 1))

    def find_ticket(self, ticket_id: str) -> dict | None:
        return self._get("tickets", str(ticket_id).lstrip("#"))

    def get_ticket(self, ticket_id: str) -> dict:
        ticket = self.find_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket {str(ticket_id).lstrip('#')!r}")
        return ticket

    def ticket_for_update(self, ticket_id: str) -> tuple[dict, object]:
        return self._get("tickets", ticket_id), self.versions.get(("tickets", str(ticket_id)))

    def update_ticket(self, ticket_id: str, changes: dict) -> None:
        self.get_ticket(ticket_id)
        self._merge("tickets", ticket_id, changes)

    def add_ticket_references(self, ticket_id: str, message_ids: list[str], thread_keys: list[str],
                              updated_at: str) -> None:
        ticket = self.get_ticket(ticket_id)
        changes = {"updated_at": updated_at,
                   "message_ids": ticket.get("message_ids", []) + [m for m in message_ids if m not in ticket.get("message_ids", [])]}
        if thread_keys:
            changes["thread_keys"] = ticket.get("thread_keys", []) + [k for k in thread_keys if k not in ticket.get("thread_keys", [])]
        self._merge("tickets", ticket_id, changes)

    def list_tickets(self, mailbox: str | None = None, status: str | None = None, limit: int = 200,
                     before: int | None = None) -> list[dict]:
        rows = [t for t in self._all("tickets") if (not mailbox or t.get("mailbox") == mailbox)
                and (not status or t.get("status") == status) and (before is None or int(t["number"]) < before)]
        return sorted(rows, key=lambda t: -int(t["number"]))[:limit or None]

    def ticket_messages(self, ticket_id: str) -> list[dict]:
        rows = [r for coll in ("inbound", "outbound") for r in self._all(coll)
                if r.get("ticket_id") == str(ticket_id) and r.get("message")]
        rows.sort(key=lambda r: (r["message"].get("received_at") or r["message"].get("date") or "", r.get("seq", 0)))
        return rows

    def _tickets_holding(self, field: str, values: list[str]) -> dict[str, str]:
        found = {}
        for ticket in sorted(self._all("tickets"), key=lambda t: str(t["id"])):  # Firestore's document order
            for value in set(ticket.get(field, [])).intersection(values):
                found.setdefault(value, ticket["id"])
        return found

    def tickets_by_message_ids(self, ids: list[str]) -> dict[str, str]:
        return self._tickets_holding("message_ids", ids)

    def tickets_by_thread_keys(self, keys: list[str]) -> dict[str, str]:
        return self._tickets_holding("thread_keys", keys)

    def find_ticket_by_thread(self, thread_key: str) -> str | None:
        return next((t["id"] for t in self._all("tickets") if thread_key in t.get("thread_keys", [])), None)

    # -- inbound -----------------------------------------------------------------------------------
    def get_inbound_rows(self, mailbox: str, gmail_ids: list[str]) -> dict[str, dict]:
        found = {}
        for gmail_id in gmail_ids:
            row = self._get("inbound", f"{mailbox}~{gmail_id}")
            if row is not None:
                found[gmail_id] = {**row, "_update_time": self.versions[("inbound", f"{mailbox}~{gmail_id}")]}
        return found

    def inbound_log(self, mailbox: str, limit: int = 500, before: str | None = None) -> list[dict]:
        rows = [r for r in self._all("inbound") if r.get("mailbox") == mailbox
                and (before is None or (r.get("processed_at") or "") < before)]
        return sorted(rows, key=lambda r: r.get("processed_at") or "", reverse=True)[:limit or None]

    def inbound_since(self, mailbox: str, since: str) -> list[dict]:
        rows = [r for r in self._all("inbound") if r.get("mailbox") == mailbox and (r.get("processed_at") or "") >= since]
        return sorted(rows, key=lambda r: r.get("processed_at") or "", reverse=True)

    def _change_open_row(self, mailbox: str, gmail_id: str, change) -> dict:
        data = self._get("inbound", f"{mailbox}~{gmail_id}") or {}
        if data.get("outcome") in FINAL:
            return data
        return self._merge("inbound", f"{mailbox}~{gmail_id}", change(data))

    def begin_attempt(self, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
        return self._change_open_row(mailbox, gmail_id, lambda data: models.begun_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def record_failure(self, mailbox: str, gmail_id: str, reason: str, max_attempts: int) -> dict:
        return self._change_open_row(mailbox, gmail_id, lambda data: models.failed_attempt(
            data, mailbox, gmail_id, max_attempts, reason))

    def retry_quarantined(self, mailbox: str, gmail_id: str) -> None:
        row = self._get("inbound", f"{mailbox}~{gmail_id}")
        if row is None or row.get("outcome") != "quarantined":
            raise NotFound(f"no quarantined message {gmail_id!r} in mailbox {mailbox!r}")
        self._merge("inbound", f"{mailbox}~{gmail_id}",
                    {"outcome": "failed", "attempts": 0, "unfinished": False, "reason": "retry requested by an admin"})

    def failed_rows(self, mailbox: str) -> list[str]:
        return [r["gmail_message_id"] for r in self._all("inbound")
                if r.get("mailbox") == mailbox and r.get("outcome") == "failed"]

    def put_inbound_row(self, mailbox: str, gmail_id: str, row: dict) -> None:
        self._merge("inbound", f"{mailbox}~{gmail_id}", row)

    def commit_inbound_chunk(self, mailbox: str, rows, tickets) -> int:
        writes = [("inbound", f"{mailbox}~{gmail_id}", row, version) for gmail_id, row, version in rows]
        writes += [("tickets", str(ticket_id), ticket, version) for ticket_id, ticket, version in tickets]
        for collection, key, _data, version in writes:  # all preconditions first: all or nothing
            current = self.versions.get((collection, key))
            if (version is None and current is not None) or (version is not None and current != version):
                raise WriteConflict(f"{collection}/{key} changed")
        for collection, key, data, _version in writes:
            data = {k: v for k, v in data.items()}
            if collection == "inbound":
                data.pop("unfinished", None)
                data = {**{k: v for k, v in (self._get(collection, key) or {}).items() if k != "unfinished"}, **data}
            self._put(collection, key, data)
        return len(writes)

    # -- outbound ------------------------------------------------------------------------------------
    def get_outbound(self, key: str) -> dict | None:
        return self._get("outbound", key)

    def create_outbound(self, key: str, record: dict) -> bool:
        if self._get("outbound", key) is not None:
            return False
        self._put("outbound", key, record)
        self.add_ticket_references(record["ticket_id"], [record["message_id"]], [],
                                   self.get_ticket(record["ticket_id"]).get("updated_at"))
        return True

    def update_outbound(self, key: str, changes: dict) -> None:
        self._merge("outbound", key, changes)

    def change_outbound(self, key: str, decide):
        data = self._get("outbound", key)
        result, changes = decide(data)
        if changes:
            self._merge("outbound", key, changes)
        return result, data or {}

    def unsent_outbound(self, limit: int = 500) -> list[dict]:
        return [r for r in self._all("outbound") if r.get("status") in ("queued", "pending", "sending", "failed")][:limit]

    def outbox_records(self, mailbox: str, instance: str, kind: str | None = None,
                       statuses: tuple = ("queued", "pending", "sending", "failed")) -> list[dict]:
        return [r for r in self._all("outbound") if r.get("mailbox") == mailbox and r.get("instance") == instance
                and r.get("status") in statuses and (kind is None or r.get("kind") == kind)]

    def get_send_pacing(self, key: str) -> dict | None:
        return self._get("send_pacing", key)

    def change_send_pacing(self, key: str, decide):
        result, changes = decide(self._get("send_pacing", key))
        if changes:
            self._merge("send_pacing", key, changes)
        return result

    def send_budget_used(self, mailbox: str, day: str) -> int:
        return int((self._get("send_budget", f"{mailbox}~{day}") or {}).get("count", 0))

    def take_send_budget(self, mailbox: str, day: str, budget: int) -> tuple[bool, int]:
        used = self.send_budget_used(mailbox, day)
        if used >= budget:
            return False, used
        self._put("send_budget", f"{mailbox}~{day}", {"mailbox": mailbox, "date": day, "count": used + 1,
                                                       "expires_at": datetime.strptime(day, "%Y-%m-%d")
                                                       .replace(tzinfo=timezone.utc) + timedelta(days=2)})
        return True, used

    def release_send_budget(self, mailbox: str, day: str) -> None:
        self._merge("send_budget", f"{mailbox}~{day}", {"count": self.send_budget_used(mailbox, day) - 1})

    def take_acknowledgement_slot(self, recipient: str, hour: str, limit: int) -> bool:
        used = int((self._get("ack_limits", f"{recipient}~{hour}") or {}).get("count", 0))
        if used >= limit:
            return False
        self._put("ack_limits", f"{recipient}~{hour}", {"recipient": recipient, "hour": hour, "count": used + 1,
                                                        "expires_at": datetime.now(timezone.utc) + timedelta(hours=2)})
        return True

    def take_acknowledgement_slots(self, counters: list[tuple[str, int]], hour: str) -> str | None:
        used = [int((self._get("ack_limits", f"{key}~{hour}") or {}).get("count", 0)) for key, _limit in counters]
        for (key, limit), count in zip(counters, used):
            if count >= limit:
                return key
        for (key, _limit), count in zip(counters, used):
            self._put("ack_limits", f"{key}~{hour}", {"recipient": key, "hour": hour, "count": count + 1,
                                                      "expires_at": datetime.now(timezone.utc) + timedelta(hours=2)})
        return None

    # -- overrides ---------------------------------------------------------------------------------------
    def put_override(self, row: dict) -> None:
        self._put("overrides", f"{row['scope']}~{row['key']}", row)

    def delete_override(self, override_id: str) -> bool:
        if self.docs.pop(("overrides", override_id), None) is None:
            return False
        self.write_count += 1
        return True

    def list_override_rows(self) -> list[dict]:
        return self._all("overrides")

    def overrides_for(self, override_ids: list[str]) -> dict[tuple[str, str], str]:
        rows = [self._get("overrides", i) for i in override_ids]
        return {(r["scope"], r["key"]): r.get("mailbox") for r in rows if r}

    # -- admin -----------------------------------------------------------------------------------------
    def get_admin_session(self, key: str) -> dict | None:
        return self._get("admin_sessions", key)

    def put_admin_session(self, key: str, data: dict) -> None:
        self._put("admin_sessions", key, data)

    def update_admin_session(self, key: str, changes: dict) -> None:
        self._merge("admin_sessions", key, changes)

    def clear_admin_flash(self, key: str) -> None:
        data = self._get("admin_sessions", key) or {}
        data.pop("flash", None)
        self._put("admin_sessions", key, data)

    def delete_admin_session(self, key: str) -> None:
        self.docs.pop(("admin_sessions", key), None)

    def delete_all_admin_sessions(self) -> int:
        keys = [k for k in self.docs if k[0] == "admin_sessions"]
        for key in keys:
            del self.docs[key]
        return len(keys)

    def peek_oauth_state(self, state: str) -> dict | None:
        return self._get("oauth_states", state)

    def find_stored_message(self, message_id: str) -> dict | None:
        for collection in ("inbound", "outbound"):
            for row in self._all(collection):
                if (row.get("message") or {}).get("id") == message_id:
                    return row["message"]
        return None
