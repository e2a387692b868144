"""The matching half of a sync's decide step (docs/architecture.md, "Threading"): which ticket
each judged message joins or opens, and the ticket and message records its commit writes."""

from __future__ import annotations

import dataclasses

from mailbridge.domain import events, merging, models, threads
from mailbridge.domain.threads import match_ticket
from mailbridge.services.ports import TicketRepository
from mailbridge.services.sync.decide import Prepared



@dataclasses.dataclass
class Decision:
    prepared: Prepared
    outcome: str  # "created", "updated" or "ignored"
    reason: str
    ticket_id: str | None  # a stored ticket's id, or "new-N" until the new tickets are numbered
    message: dict | None  # the message record; None when ignored
    # its ticket event's sequence and the ticket's JSON as the message left it (domain/events.joined)
    joined: tuple[int, dict] | None = None


def _address(addr) -> dict | None:
    return {"email": addr.email, "name": addr.name} if addr else None


def message_record(prepared: Prepared, mailbox_name: str) -> dict:
    parsed = prepared.parsed
    # bodies already cut to size, and kept in Cloud Storage when too large for the row (decide.py)
    notes = list(parsed.defects)
    text, full_text, html = parsed.text or "", parsed.full_text or "", parsed.html
    return {
        "id": f"{mailbox_name}~{prepared.gmail_id}", "direction": "in",
        "gmail_message_id": prepared.gmail_id, "gmail_thread_id": prepared.thread_id,
        "message_id": parsed.message_id, "in_reply_to": parsed.in_reply_to[:20],
        "references": parsed.references[-50:],
        "from": _address(parsed.from_) or {"email": "", "name": ""},
        "to": [_address(a) for a in parsed.to], "cc": [_address(a) for a in parsed.cc],
        "reply_to": [_address(a) for a in parsed.reply_to],
        "subject": parsed.subject, "date": parsed.date or prepared.internal_date,
        "received_at": prepared.internal_date or parsed.date,
        "text": text, "full_text": full_text, "html": html,
        "attachments": prepared.stored_attachments, "defects": notes, "size": parsed.size,
        **({"stored_parts": prepared.stored_parts} if prepared.stored_parts else {}),
    }


class StoreLookup:
    """threads.TicketLookup over Firestore plus the tickets touched earlier in this chunk."""

    def __init__(self, store: TicketRepository, overlay: dict, thread_keys: list[str] = (),
                 new_thread_keys: list[str] = ()):
        self.store = store
        self.overlay = overlay  # ticket id -> ticket dict
        # The chunk's Gmail threads, looked up in one query: key -> stored ticket id (or absent).
        # Threads that start with a message of this chunk are new: no stored ticket can hold them.
        self.new_thread_keys = set(new_thread_keys)
        self.thread_keys = set(thread_keys) - self.new_thread_keys
        self.stored_threads = store.tickets_by_thread_keys(sorted(self.thread_keys)) if self.thread_keys else {}

    def by_message_ids(self, ids, sender=""):
        """Of several tickets holding an id (stored or touched by this chunk), the one
        threads.preferred_holder picks: the sender's, then the oldest by number."""
        ids = list(ids)
        stored = self.store.tickets_by_message_ids(ids, sender)
        for message_id in ids:  # the strongest signal (first id) wins, wherever it is held
            holders = [dict(ticket, id=ticket_id) for ticket_id, ticket in self.overlay.items()
                       if message_id in ticket.get("message_ids", [])]
            held = stored.get(message_id)
            if held and held not in self.overlay:
                if not holders:
                    return held
                holders.append(self.store.find_ticket(held) or {"id": held, "number": held})
            if holders:
                return threads.preferred_holder(holders, sender)
        return None

    def find(self, ticket_id: str) -> dict | None:
        return self.overlay.get(ticket_id) or self.store.find_ticket(ticket_id)

    def by_number(self, number):
        """A merged ticket's tag names its survivor (docs/merging.md): the survivor's id and
        participants, which hold the merged ticket's."""
        ticket_id = merging.survivor_of(str(number), self.find)
        ticket = self.find(ticket_id)
        if ticket is None:
            return None
        return ticket_id, set(ticket.get("participants", [])) | {ticket.get("requester", {}).get("email", "")}

    def by_thread(self, mailbox, thread_id):
        key = f"{mailbox}:{thread_id}"
        for ticket_id, ticket in self.overlay.items():
            if key in ticket.get("thread_keys", []):
                return ticket_id
        if key in self.new_thread_keys:
            return None
        if key in self.thread_keys:
            return self.stored_threads.get(key)
        return self.store.find_ticket_by_thread(key)


class ChunkTickets:
    """The tickets one chunk touches, as its commit writes them: stored ones read with their
    version (the commit's precondition), new ones numbered just before the commit."""

    def __init__(self, store: TicketRepository, mailbox: str, pending: list[Prepared], *, incoming: dict,
                 own_addresses: set[str], tag_format: str):
        self.store = store
        self.mailbox = mailbox
        self.incoming = incoming
        self.own_addresses = own_addresses
        self.tag_format = tag_format
        self.tickets: dict[str, dict] = {}  # ticket id (or "new-N") -> the ticket as the chunk leaves it
        self.versions: dict[str, object] = {}
        self.new_count = 0
        self.reopened: set[str] = set()  # reopened tickets that had an expiry (services/retention.py)
        # Gmail gives a new thread the id of its first message (docs/gmail-differences.md): a
        # message whose thread id is its own id starts a conversation, so its thread is not looked up.
        self.lookup = StoreLookup(store, self.tickets, [f"{mailbox}:{p.thread_id}" for p in pending if p.thread_id],
                                  [f"{mailbox}:{p.thread_id}" for p in pending if p.thread_id == p.gmail_id])

    def decide(self, p: Prepared) -> Decision:
        """Ignored, or added to the ticket it matches, or a new ticket."""
        match = match_ticket(p.parsed, self.mailbox, p.thread_id, self.lookup, tag_format=self.tag_format)
        verdict = p.verdict
        if verdict.action != "accept" and not (verdict.automatic and self.incoming.get("accept_auto_replies")
                                               and match.ticket_id):
            return Decision(p, "ignored", verdict.reason, None, None)
        message = message_record(p, self.mailbox)
        if match.ticket_id:
            ticket_id = self._survivor(match.ticket_id)
            self._update_ticket(self.tickets[ticket_id], p)
            return Decision(p, "updated", f"{match.signal}: {match.note}"[:300], ticket_id, message,
                            events.joined(self.tickets[ticket_id]))
        self.new_count += 1
        temp_id = f"new-{self.new_count}"
        self.tickets[temp_id] = self._new_ticket(p, message)
        return Decision(p, "created", "new conversation", temp_id, message, events.joined(self.tickets[temp_id]))

    def _survivor(self, ticket_id: str) -> str:
        """The ticket the mail joins, read with its version: a ticket merged since its id was
        looked up hands it to its survivor (docs/merging.md), at no extra read otherwise."""
        for hop in range(merging.MAX_POINTER_HOPS):
            if ticket_id in self.tickets:
                return ticket_id
            ticket, version = self.store.ticket_for_update(ticket_id)
            if not (ticket or {}).get("merged_into") or hop == merging.MAX_POINTER_HOPS - 1:
                self.tickets[ticket_id], self.versions[ticket_id] = ticket, version
                return ticket_id
            ticket_id = str(ticket["merged_into"])
        return ticket_id

    def number_new_tickets(self, numbers: list[int]) -> dict[str, str]:
        """The reserved numbers given to the new tickets, in order: "new-N" -> its ticket id."""
        renames = {}
        for index, number in enumerate(numbers, start=1):
            ticket = self.tickets.pop(f"new-{index}")
            ticket.update(id=str(number), number=number)
            self.tickets[str(number)] = ticket
            renames[f"new-{index}"] = str(number)
        return renames

    def writes(self) -> list[tuple[str, dict, object]]:
        """(ticket id, ticket, version or None for a new one) for commit_inbound_chunk."""
        return [(ticket_id, ticket, self.versions.get(ticket_id)) for ticket_id, ticket in self.tickets.items()]

    def _new_ticket(self, p: Prepared, message: dict) -> dict:
        parsed = p.parsed
        requester = message["from"]
        participants = self._participants(parsed, [])
        ticket = {
            "id": None, "number": None, "subject": parsed.subject or "(no subject)", "status": "open",
            "mailbox": self.mailbox, "requester": requester, "participants": participants,
            "created_at": message["received_at"] or models.now_iso(), "updated_at": models.now_iso(),
            "message_ids": self._own_message_id(p, message),
            "thread_keys": [f"{self.mailbox}:{p.thread_id}"] if p.thread_id else [],
            "message_count": 1, "ticket_type": None, "team": None, "client": None,
        }
        if not p.authentication.passed and len(participants) > 1:
            # Nobody vouches for this sender: its Cc, To and Reply-To are only suggested, as on
            # replies (docs/reliability.md, "Hostile senders")
            sender = requester.get("email") or ""
            ticket["participants"] = [e for e in participants if e == sender]
            ticket["suggested_participants"] = threads.suggest_participants(
                [], [e for e in participants if e != sender], sender, models.now_iso())
        return ticket

    def _own_message_id(self, p: Prepared, message: dict) -> list[str]:
        """The new ticket holds its first message's Message-ID unless another sender's ticket
        holds it already: an id is evidence, not a key anyone can claim (a squatted id would
        capture that customer's follow-ups)."""
        message_id = p.parsed.message_id
        sender = (message["from"].get("email") or "").lower()
        held = self.lookup.by_message_ids([message_id], sender) if message_id else None
        if not held:
            return [message_id] if message_id else []
        holder = self.tickets.get(held) or self.store.find_ticket(held) or {}
        if threads.claimable_message_id(message_id, [holder], sender):
            return [message_id]
        message["defects"].append(f"Message-ID {message_id[:200]} is already held by another sender's ticket: "
                                  "this ticket does not hold it")
        return []

    def _participants(self, parsed, current: list[str]) -> list[str]:
        own = self.own_addresses
        people = list(current)
        candidates = [parsed.from_] + list(parsed.reply_to) + list(parsed.to) + list(parsed.cc)
        for addr in candidates:
            if addr and addr.email and addr.email not in own and addr.email not in people and len(people) < 100:
                people.append(addr.email)
        return people

    def _add_participants(self, ticket: dict, p: Prepared) -> None:
        """Only an existing participant whose mail Gmail authenticated adds people to a ticket;
        anyone else's new addresses (a spoofed From, a stranger quoting our Message-ID) wait in
        suggested_participants until an agent confirms them (docs/reliability.md)."""
        current = ticket.get("participants", [])
        found = self._participants(p.parsed, current)
        new = found[len(current):]
        if not new:
            return
        sender = p.parsed.from_.email if p.parsed.from_ else ""
        if threads.may_add_participants(ticket, sender, p.authentication.passed):
            ticket["participants"] = found
            return
        ticket["suggested_participants"] = threads.suggest_participants(
            ticket.get("suggested_participants", []), new, sender, models.now_iso())

    def _update_ticket(self, ticket: dict, p: Prepared) -> None:
        parsed = p.parsed
        if parsed.message_id not in ticket.setdefault("message_ids", []):
            ticket["message_ids"].append(parsed.message_id)
        if p.thread_id:
            key = f"{self.mailbox}:{p.thread_id}"
            if key not in ticket.setdefault("thread_keys", []):
                ticket["thread_keys"].append(key)
        self._add_participants(ticket, p)
        if ticket.get("status") == "closed":
            ticket["status"] = "open"
            ticket["reopened_at"] = models.now_iso()
            if ticket.get("expires_at"):
                self.reopened.add(str(ticket["id"]))
            ticket["expires_at"] = None  # reopened: retention no longer runs (services/retention.py)
        ticket["updated_at"] = models.now_iso()
        ticket["message_count"] = int(ticket.get("message_count", 0)) + 1
