"""In-memory repository of the mailboxes and their credential sets (as
adapters/firestore/mailboxes.py).

Layout: mailboxes/{name}   mailbox, its settings and credential sets; deleting one also deletes
        its sync/{name}~{instance} documents
"""

from __future__ import annotations

import copy

from mailbridge.domain import events, models
from mailbridge.errors import Conflict, NotFound
from tests.memory.store.base import MemoryRepository


class MailboxRepository(MemoryRepository):
    def add_mailbox(self, mailbox: dict) -> None:
        with self._lock:
            if self._get("mailboxes", mailbox["name"]) is not None:
                raise Conflict(f"mailbox {mailbox['name']!r} already exists")
            self._set("mailboxes", mailbox["name"], mailbox)

    def get_mailbox(self, name: str) -> dict:
        mailbox = self._get("mailboxes", name)
        if mailbox is None:
            raise NotFound(f"no mailbox named {name!r}")
        return mailbox

    def list_mailboxes(self) -> list[dict]:
        return self._query("mailboxes", order_by="name")

    def find_mailbox_by_address(self, address: str) -> dict | None:
        return next(iter(self._query("mailboxes", ("address", "==", address.lower()), limit=1)), None)

    def update_mailbox(self, name: str, updates: dict) -> None:
        with self._lock:
            self.get_mailbox(name)
            self._update("mailboxes", name, updates)

    def add_credential(self, name: str, credential: dict) -> None:
        with self._lock:
            mailbox = self.get_mailbox(name)
            if models.credential_of(mailbox, credential["instance"]) is not None:
                raise Conflict(
                    f"mailbox {name!r} already has a credential set for instance {credential['instance']!r}")
            self._update("mailboxes", name, {"credentials": mailbox.get("credentials", []) + [credential]})

    def update_credential(self, name: str, instance: str, changes: dict) -> dict:
        with self._lock:
            mailbox, cred = self._credential(name, instance)
            before = copy.deepcopy(mailbox["credentials"])
            cred.update(changes)
            self._write_credentials(mailbox, before, mailbox["credentials"])
            return cred

    def remove_credential(self, name: str, instance: str) -> dict:
        with self._lock:
            mailbox, cred = self._credential(name, instance)
            rest = [c for c in mailbox["credentials"] if c["instance"] != instance]
            self._write_credentials(mailbox, mailbox["credentials"], rest)
            return cred

    def _write_credentials(self, mailbox: dict, before: list[dict], after: list[dict]) -> None:
        """The new credential sets and, for a set no longer connected, its mailbox.disconnected
        event, in one commit (as the adapter's transaction)."""
        name = mailbox["name"]
        changes = {"credentials": after}
        disconnected = events.mailbox_disconnected(mailbox, before, after, models.now_iso())
        writes = []
        if disconnected:
            changes[events.SEQUENCE_FIELD] = mailbox[events.SEQUENCE_FIELD]
            document = events.batch(disconnected, name, disconnected[0]["time"], events.retention_days(self.settings()))
            writes.append(("events", *self._new("events", *document)))
        self._write([("mailboxes", name, self._updated("mailboxes", name, changes))] + writes)

    def _credential(self, name: str, instance: str) -> tuple[dict, dict]:
        mailbox = self.get_mailbox(name)
        cred = models.credential_of(mailbox, instance)
        if cred is None:
            raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")
        return mailbox, cred

    def delete_mailbox(self, name: str) -> None:
        """The mailbox document and its per-instance sync state; tickets and inbound rows stay."""
        with self._lock:
            self.get_mailbox(name)
            for collection, key in [k for k in self.docs if k[0] == "sync" and k[1].startswith(f"{name}~")]:
                self._delete(collection, key)
            self._delete("mailboxes", name)
            self.write_count += 1  # one batch, as the Firestore adapter counts it
