"""Firestore repository of the tickets: numbers, headers, the Message-IDs and threads that
match mail to them (domain/threads.py), and their messages in order.

Layout: counters/tickets   ticket numbers: one increment per chunk, per block when busy (numbers.py)
        tickets/{number}   ticket header: subject, status, participants, Message-IDs, threads
"""

from __future__ import annotations

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from mailbridge.adapters.firestore import numbers
from mailbridge.adapters.firestore.base import FirestoreRepository
from mailbridge.domain import threads
from mailbridge.errors import NotFound


class TicketRepository(FirestoreRepository):
    def reserve_ticket_numbers(self, count: int) -> list[int]:
        """`count` unique numbers for new tickets: ONE atomic server-side increment and no
        transaction per reservation, and a busy process takes a block for its next seconds
        (numbers.py), so many mailboxes polled at once neither contend nor make
        counters/tickets a hot document."""
        return self.number_pool.take(count)

    def _increment_ticket_counter(self, count: int) -> tuple[int, int]:
        """(the last of `count` numbers reserved, the counter's reservations so far), one write."""
        ref = self.db.collection("counters").document("tickets")
        result = ref.set({"last": firestore.Increment(count), "reservations": firestore.Increment(1)}, merge=True)
        self.write_count += 1
        last, reservations = result.transform_results  # the client sends transforms by field path
        return int(last.integer_value), int(reservations.integer_value)

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

    def change_ticket(self, ticket_id: str, decide):
        """Read-modify-write of a ticket with the event of its change, in one transaction:
        `decide(ticket)` returns (result, changes or None, event document (id, fields) or None),
        written together only if the ticket did not change meanwhile. NotFound for no ticket."""
        ref = self.ticket_ref(ticket_id)

        @firestore.transactional
        def run(tx):
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound(f"no ticket {str(ticket_id)!r}")
            result, changes, event_document = decide(snap.to_dict())
            if changes:
                tx.update(ref, changes)
            if event_document:
                tx.create(self.events_ref(event_document[0]), event_document[1])
            return result, bool(changes) + bool(event_document)

        return self.run_contended(run, f"tickets/{ticket_id}")

    def move_messages(self, source_id: str, target_id: str, decide):
        """Merge and split (domain/merging.py) in one transaction: reads tickets/{source_id},
        tickets/{target_id} (None when absent) and the source's message rows, each with its
        "_path"; `decide(source, target, rows)` returns (result, source changes, the target as a
        whole document, the row paths that move to target_id, event document). NotFound for no
        source. A sync that changed either ticket meanwhile makes the other side retry."""
        source_ref, target_ref = self.ticket_ref(source_id), self.ticket_ref(target_id)

        @firestore.transactional
        def run(tx):
            source, target = source_ref.get(transaction=tx), target_ref.get(transaction=tx)
            if not source.exists:
                raise NotFound(f"no ticket {str(source_id)!r}")
            rows = []
            for collection in ("inbound", "outbound"):
                query = self.db.collection(collection).where(filter=FieldFilter("ticket_id", "==", str(source_id)))
                rows += [{**snap.to_dict(), "_path": f"{collection}/{snap.id}"} for snap in query.stream(transaction=tx)]
            result, changes, target_doc, moved, event_document = decide(
                source.to_dict(), target.to_dict() if target.exists else None, rows)
            if changes:
                tx.update(source_ref, changes)
            if target_doc is not None:
                tx.set(target_ref, target_doc)
            readable = {row["_path"] for row in rows}
            for path in moved:
                if path in readable:
                    tx.update(self.db.document(path), {"ticket_id": str(target_id)})
            if event_document:
                tx.create(self.events_ref(event_document[0]), event_document[1])
            return result, bool(changes) + (target_doc is not None) + len(moved) + bool(event_document)

        return self.run_contended(run, f"tickets/{source_id}")

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

    def _tickets_holding(self, field: str, values: list[str], sender: str = "") -> dict[str, str]:
        """Map each of `values` that a ticket's array `field` holds to the ticket
        threads.preferred_holder picks among those holding it (the sender's, then the oldest by
        number): never Firestore's document order, where "10" sorts before "4"."""
        return {value: threads.preferred_holder(found, sender) for value, found in self._holders(field, values).items()}

    def _holders(self, field: str, values: list[str]) -> dict[str, list[dict]]:
        """Each of `values` that a ticket's array `field` holds -> every ticket holding it."""
        holders: dict[str, dict[str, dict]] = {}
        for start in range(0, len(values), 30):  # array_contains_any takes at most 30 values
            query = self.db.collection("tickets").where(
                filter=FieldFilter(field, "array_contains_any", values[start:start + 30]))
            for snap in query.stream():
                ticket = snap.to_dict()
                for value in set(ticket.get(field, [])).intersection(values):
                    holders.setdefault(value, {})[ticket["id"]] = ticket
        return {value: list(found.values()) for value, found in holders.items()}

    def tickets_holding_message_ids(self, ids: list[str]) -> dict[str, list[dict]]:
        """Each of `ids` that tickets hold -> all those tickets: a sync chunk's own Message-IDs in
        one query per 30 (docs/benchmarks.md, "Scale out")."""
        return self._holders("message_ids", list(dict.fromkeys(i for i in ids if i)))

    def tickets_by_message_ids(self, ids: list[str], sender: str = "") -> dict[str, str]:
        """Map each of `ids` that a ticket holds to that ticket's id (of several, `sender`'s first)."""
        return self._tickets_holding("message_ids", list(dict.fromkeys(i for i in ids if i))[:60], sender)

    def tickets_by_thread_keys(self, keys: list[str]) -> dict[str, str]:
        """Map each of `keys` ("mailbox:gmail thread id") that a ticket holds to that ticket's id:
        one query for a whole chunk's threads instead of one per message (docs/benchmarks.md)."""
        return self._tickets_holding("thread_keys", list(dict.fromkeys(k for k in keys if k)))

    def find_ticket_by_thread(self, thread_key: str) -> str | None:
        return self._tickets_holding("thread_keys", [thread_key]).get(thread_key)

    def ticket_for_update(self, ticket_id: str) -> tuple[dict, object]:
        """A ticket and its version: commit_inbound_chunk updates it only if it is unchanged."""
        snap = self.ticket_ref(ticket_id).get()
        return snap.to_dict(), snap.update_time

    def add_ticket_references(self, ticket_id: str, message_ids: list[str], thread_keys: list[str],
                              updated_at: str) -> None:
        """Add Message-IDs and thread keys to a ticket (set union: concurrent adds all stay)."""
        changes = {"updated_at": updated_at, "message_ids": firestore.ArrayUnion(message_ids)}
        if thread_keys:
            changes["thread_keys"] = firestore.ArrayUnion(thread_keys)
        self.db.collection("tickets").document(str(ticket_id)).update(changes)
        self.write_count += 1
