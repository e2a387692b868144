"""In-memory repository of the tickets: numbers, headers, the Message-IDs and threads that match
mail to them, and their messages in order (as adapters/firestore/tickets.py).

Layout: counters/tickets   ticket numbers, reserved in blocks
        tickets/{number}   ticket header: subject, status, participants, Message-IDs, threads
"""

from __future__ import annotations

from mailbridge.domain import threads
from mailbridge.errors import NotFound
from tests.memory.store.base import MemoryRepository, array_union


class TicketRepository(MemoryRepository):
    def reserve_ticket_numbers(self, count: int) -> list[int]:
        if count <= 0:
            return []
        with self._lock:
            last = int((self._get("counters", "tickets") or {}).get("last", 0)) + count
            self._set_merge("counters", "tickets", {"last": last})
        return list(range(last - count + 1, last + 1))

    def find_ticket(self, ticket_id: str) -> dict | None:
        return self._get("tickets", str(ticket_id).lstrip("#"))

    def get_ticket(self, ticket_id: str) -> dict:
        ticket = self.find_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket {str(ticket_id).lstrip('#')!r}")
        return ticket

    def update_ticket(self, ticket_id: str, changes: dict) -> None:
        self._update("tickets", str(ticket_id), changes)

    def change_ticket(self, ticket_id: str, decide):
        """The ticket's changes and the event document decide returns, all or nothing."""
        with self._lock:
            ticket = self.find_ticket(ticket_id)
            if ticket is None:
                raise NotFound(f"no ticket {str(ticket_id)!r}")
            result, changes, event_document = decide(ticket)
            writes = [("tickets", str(ticket_id), self._updated("tickets", str(ticket_id), changes))] if changes else []
            if event_document:
                writes.append(("events", *self._new("events", *event_document)))
            self._write(writes)
            return result

    def move_messages(self, source_id: str, target_id: str, decide):
        """As the adapter's transaction: the two tickets and the source's rows read, decide's
        writes applied all or nothing."""
        with self._lock:
            source = self.find_ticket(source_id)
            if source is None:
                raise NotFound(f"no ticket {str(source_id)!r}")
            rows = [{**row, "_path": f"{collection}/{key}"} for collection in ("inbound", "outbound")
                    for key, row in sorted(self.collection(collection).items())
                    if row.get("ticket_id") == str(source_id)]
            result, changes, target_doc, moved, event_document = decide(source, self.find_ticket(target_id), rows)
            writes = [("tickets", str(source_id), self._updated("tickets", str(source_id), changes))] if changes else []
            writes += [("tickets", str(target_id), target_doc)] if target_doc is not None else []
            readable = {row["_path"] for row in rows}
            for path in moved:
                if path in readable:
                    collection, key = path.split("/", 1)
                    writes.append((collection, key, self._updated(collection, key, {"ticket_id": str(target_id)})))
            if event_document:
                writes.append(("events", *self._new("events", *event_document)))
            self._write(writes)
            return result

    def list_tickets(self, mailbox: str | None = None, status: str | None = None, limit: int = 200,
                     before: int | None = None) -> list[dict]:
        filters = [("mailbox", "==", mailbox)] if mailbox else []
        filters += [("status", "==", status)] if status else []
        filters += [("number", "<", int(before))] if before is not None else []
        return self._query("tickets", *filters, order_by="number", descending=True, limit=limit or None)

    def ticket_messages(self, ticket_id: str) -> list[dict]:
        rows = [r for coll in ("inbound", "outbound") for r in self._query(coll, ("ticket_id", "==", str(ticket_id)))]
        rows = [r for r in rows if r.get("message")]
        rows.sort(key=lambda r: (r["message"].get("received_at") or r["message"].get("date") or "", r.get("seq", 0)))
        return rows

    def _tickets_holding(self, field: str, values: list[str], sender: str = "") -> dict[str, str]:
        """Each of `values` that a ticket's array `field` holds -> the ticket threads.preferred_holder
        picks among those holding it (never document order, as the adapter)."""
        holders: dict[str, list[dict]] = {}
        for ticket in self._query("tickets", (field, "array_contains_any", values)) if values else []:
            for value in set(ticket.get(field, [])).intersection(values):
                holders.setdefault(value, []).append(ticket)
        return {value: threads.preferred_holder(found, sender) for value, found in holders.items()}

    def tickets_holding_message_ids(self, ids: list[str]) -> dict[str, list[dict]]:
        ids = list(dict.fromkeys(i for i in ids if i))
        holders: dict[str, list[dict]] = {}
        for ticket in self._query("tickets", ("message_ids", "array_contains_any", ids)) if ids else []:
            for value in set(ticket.get("message_ids", [])).intersection(ids):
                holders.setdefault(value, []).append(ticket)
        return holders

    def tickets_by_message_ids(self, ids: list[str], sender: str = "") -> dict[str, str]:
        # the adapter looks up the first 60 distinct ids (two array_contains_any queries)
        return self._tickets_holding("message_ids", list(dict.fromkeys(i for i in ids if i))[:60], sender)

    def tickets_by_thread_keys(self, keys: list[str]) -> dict[str, str]:
        return self._tickets_holding("thread_keys", list(dict.fromkeys(k for k in keys if k)))

    def find_ticket_by_thread(self, thread_key: str) -> str | None:
        return self._tickets_holding("thread_keys", [thread_key]).get(thread_key)

    def ticket_for_update(self, ticket_id: str) -> tuple[dict, object]:
        return self._get("tickets", ticket_id), self._version("tickets", ticket_id)

    def add_ticket_references(self, ticket_id: str, message_ids: list[str], thread_keys: list[str],
                              updated_at: str) -> None:
        with self._lock:
            ticket = self._get("tickets", str(ticket_id)) or {}  # a missing one: _update refuses it
            changes = {"updated_at": updated_at, "message_ids": array_union(ticket.get("message_ids"), message_ids)}
            if thread_keys:
                changes["thread_keys"] = array_union(ticket.get("thread_keys"), thread_keys)
            self._update("tickets", str(ticket_id), changes)
