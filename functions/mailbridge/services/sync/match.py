"""The matching half of a sync's decide step (docs/architecture.md, "Threading"): which ticket
each judged message joins or opens, and the ticket and message records its commit writes."""

from __future__ import annotations

import dataclasses

from mailbridge.domain import copies, events, merging, models, threads, workspace
from mailbridge.domain.parsing.model import Address
from mailbridge.domain.threads import match_ticket
from mailbridge.services.ports import SyncStore, TicketRepository
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


def requester_of(p: Prepared) -> dict:
    """Who wrote the message: the person behind a Google Group that rewrote the From when Gmail's
    ARC verdict vouches for them (domain/workspace.py), else the From."""
    if p.relay is not None and p.relay.verified:
        return {"email": p.relay.person, "name": p.relay.person_name}
    return _address(p.parsed.from_) or {"email": "", "name": ""}


def copy_key_of(p: Prepared) -> str | None:
    """The key of this message's copies in other mailboxes (domain/copies.py)."""
    return copies.copy_key(p.parsed.message_id, requester_of(p)["email"], p.parsed.date, p.authentication.passed)


def recipients_of(p: Prepared) -> list[str]:
    return [a.email for a in list(p.parsed.to) + list(p.parsed.cc) if a and a.email]


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

    def __init__(self, store: SyncStore, mailbox: str, pending: list[Prepared], *, incoming: dict,
                 own_addresses: set[str], tag_format: str, address: str = "", aliases: set[str] = frozenset()):
        self.store = store
        self.aliases = set(aliases)  # the mailbox's verified send-as aliases (domain/workspace.py)
        self.mailbox = mailbox
        self.incoming = incoming
        self.own_addresses = own_addresses
        self.tag_format = tag_format
        self.tickets: dict[str, dict] = {}  # ticket id (or "new-N") -> the ticket as the chunk leaves it
        self.versions: dict[str, object] = {}
        self.new_count = 0
        # One mail, one ticket (domain/copies.py): each message's copy key, whether its commit
        # claims it, and the tickets holding the claimed keys (the store's, then this chunk's).
        self.copy_keys = {p.gmail_id: copy_key_of(p) for p in pending}
        self.claiming = {p.gmail_id for p in pending if self.copy_keys[p.gmail_id]
                         and copies.may_reach_other_mailboxes(recipients_of(p), address)}
        self.claimed = store.message_copies([self.copy_keys[g] for g in self.claiming]) if self.claiming else {}
        self.new_claims: dict[str, str] = {}  # copy key -> ticket id, claimed by this chunk
        # The stored tickets holding each message's own Message-ID (the copy and squatting checks),
        # looked up for the whole chunk at once: one query, not one per message (docs/benchmarks.md).
        own_ids = sorted({p.parsed.message_id for p in pending if p.parsed.message_id})
        self.id_holders = store.tickets_holding_message_ids(own_ids) if own_ids else {}
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
        copy_of = self._copy_of(p, match.ticket_id)
        if copy_of:
            return self._copy(p, copy_of)
        message = message_record(p, self.mailbox)
        if match.ticket_id:
            ticket_id = self._survivor(match.ticket_id)
            self._update_ticket(self.tickets[ticket_id], p)
            self._claim(p, ticket_id)
            return Decision(p, "updated", f"{match.signal}: {match.note}"[:300], ticket_id, message,
                            events.joined(self.tickets[ticket_id]))
        self.new_count += 1
        temp_id = f"new-{self.new_count}"
        self.tickets[temp_id] = self._new_ticket(p, message)
        self._claim(p, temp_id)
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

    def claims(self, renames: dict[str, str], now: str) -> list[tuple[str, dict]]:
        """(copy key, claim) for commit_inbound_chunk: created, so a concurrent commit of the
        same message by another mailbox fails and decides again, finding this ticket."""
        return [(key, {"ticket_id": renames.get(ticket_id, ticket_id), "mailbox": self.mailbox, "created_at": now})
                for key, ticket_id in self.new_claims.items()]

    def writes(self) -> list[tuple[str, dict, object]]:
        """(ticket id, ticket, version or None for a new one) for commit_inbound_chunk."""
        return [(ticket_id, ticket, self.versions.get(ticket_id)) for ticket_id, ticket in self.tickets.items()]

    # -- one mail, one ticket (domain/copies.py) ----------------------------------------------
    def _copy_of(self, p: Prepared, matched: str | None) -> str | None:
        """The ticket already holding this very message (received by another mailbox), or None."""
        key = self.copy_keys.get(p.gmail_id)
        if not key:
            return None
        held = self.new_claims.get(key) or self.claimed.get(key)
        if held:
            return held if self._ticket(held) is not None else None
        if matched:
            ticket = self._ticket(matched)  # read for update: the message joins it either way
            return matched if ticket is not None and copies.holds_copy(ticket, key) else None
        sender = (p.parsed.from_.email if p.parsed.from_ else "").lower()
        holder = self._holder(p.parsed.message_id, sender)
        ticket = self._held_ticket(holder) if holder else None
        if ticket is None or not copies.holds_copy(ticket, key):
            return None
        return holder if self._ticket(holder) is not None else None

    def _holder(self, message_id: str, sender: str) -> str | None:
        """The ticket holding a new message's own Message-ID, of several the one
        threads.preferred_holder picks: the chunk's tickets as it leaves them, and the stored
        ones it has not touched (read once for the chunk)."""
        holders = {t["id"]: t for t in self.id_holders.get(message_id, []) if t["id"] not in self.tickets}
        holders.update((ticket_id, dict(ticket, id=ticket_id)) for ticket_id, ticket in self.tickets.items()
                       if message_id in ticket.get("message_ids", []))
        return threads.preferred_holder(list(holders.values()), sender)

    def _held_ticket(self, ticket_id: str) -> dict | None:
        """A holder _holder named, as the chunk leaves it or as the chunk's look-up read it."""
        if ticket_id in self.tickets:
            return self.tickets[ticket_id]
        found = [t for held in self.id_holders.values() for t in held if t["id"] == ticket_id]
        return found[0] if found else self.store.find_ticket(ticket_id)

    def _ticket(self, ticket_id: str) -> dict | None:
        """A ticket as this chunk leaves it, read for update on first use (None if it is gone)."""
        if ticket_id not in self.tickets:
            ticket, version = self.store.ticket_for_update(ticket_id)
            if ticket is None:
                return None
            self.tickets[ticket_id], self.versions[ticket_id] = ticket, version
        return self.tickets[ticket_id]

    def _copy(self, p: Prepared, ticket_id: str) -> Decision:
        """This mailbox's copy of a message the ticket holds: a row pointing at the ticket, no
        second message; its Gmail thread joins the ticket, so later mail of it threads here."""
        ticket = self.tickets[ticket_id]
        if p.thread_id and f"{self.mailbox}:{p.thread_id}" not in ticket.setdefault("thread_keys", []):
            ticket["thread_keys"].append(f"{self.mailbox}:{p.thread_id}")
        copies.add_receiver(ticket, self.mailbox)
        first = (ticket.get("received_by") or [ticket.get("mailbox")])[0]
        return Decision(p, "updated", f"copy: the same message (Message-ID, sender and Date) reached mailbox "
                        f"{first} first; the ticket holds it once", ticket_id, None)

    def _claim(self, p: Prepared, ticket_id: str) -> None:
        key = self.copy_keys.get(p.gmail_id)
        copies.remember(self.tickets[ticket_id], key)
        if p.gmail_id in self.claiming:
            self.new_claims[key] = ticket_id

    def _new_ticket(self, p: Prepared, message: dict) -> dict:
        parsed = p.parsed
        requester = requester_of(p)
        participants = self._participants(parsed, [], p.relay)
        ticket = {
            "id": None, "number": None, "subject": parsed.subject or "(no subject)", "status": "open",
            "mailbox": self.mailbox, "requester": requester, "participants": participants,
            "created_at": message["received_at"] or models.now_iso(), "updated_at": models.now_iso(),
            "message_ids": self._own_message_id(p, message),
            "thread_keys": [f"{self.mailbox}:{p.thread_id}"] if p.thread_id else [],
            "message_count": 1, "ticket_type": None, "team": None, "client": None,
            "received_by": [self.mailbox],
            "reply_from": workspace.written_to(parsed.headers, parsed.to, parsed.cc, self.aliases),
        }
        if not p.authentication.passed and len(participants) > 1:
            # Nobody vouches for this sender: its Cc, To and Reply-To are only suggested, as on
            # replies (docs/reliability.md, "Hostile senders")
            sender = requester.get("email") or ""
            ticket["participants"] = [e for e in participants if e == sender]
            ticket["suggested_participants"] = threads.suggest_participants(
                [], [e for e in participants if e != sender], sender, models.now_iso())
        if p.relay is not None:
            self._relayed(ticket, p.relay)
        return ticket

    def _own_message_id(self, p: Prepared, message: dict) -> list[str]:
        """The new ticket holds its first message's Message-ID unless another sender's ticket
        holds it already: an id is evidence, not a key anyone can claim (a squatted id would
        capture that customer's follow-ups)."""
        message_id = p.parsed.message_id
        sender = (message["from"].get("email") or "").lower()
        held = self._holder(message_id, sender) if message_id else None
        if not held:
            return [message_id] if message_id else []
        holder = self._held_ticket(held) or {}
        if threads.claimable_message_id(message_id, [holder], sender):
            return [message_id]
        message["defects"].append(f"Message-ID {message_id[:200]} is already held by another sender's ticket: "
                                  "this ticket does not hold it")
        return []

    def _relayed(self, ticket: dict, relay) -> None:
        """A Google Group relayed the message: the ticket records the group; a person Gmail's ARC
        verdict does not vouch for is only suggested (the group stays the requester)."""
        ticket["via_group"] = {"address": relay.group, "verified": relay.verified, "note": relay.note[:200]}
        if relay.group in self.aliases and not ticket.get("reply_from"):
            ticket["reply_from"] = relay.group
        if not relay.verified:
            ticket["participants"] = [e for e in ticket["participants"] if e != relay.person]
            ticket["suggested_participants"] = threads.suggest_participants(
                ticket.get("suggested_participants", []), [relay.person], relay.group, models.now_iso())

    def _participants(self, parsed, current: list[str], relay=None) -> list[str]:
        """The message's people who are not our addresses, our aliases or the group that relayed it."""
        own = self.own_addresses | self.aliases
        people = list(current)
        candidates = [parsed.from_] + list(parsed.reply_to) + list(parsed.to) + list(parsed.cc)
        if relay is not None and relay.verified:
            own = own | {relay.group}
            candidates = [Address(relay.person)] + candidates
        for addr in candidates:
            if addr and addr.email and addr.email not in own and addr.email not in people and len(people) < 100:
                people.append(addr.email)
        return people

    def _add_participants(self, ticket: dict, p: Prepared) -> None:
        """Only an existing participant whose mail Gmail authenticated adds people to a ticket;
        anyone else's new addresses (a spoofed From, a stranger quoting our Message-ID) wait in
        suggested_participants until an agent confirms them (docs/reliability.md)."""
        current = ticket.get("participants", [])
        found = self._participants(p.parsed, current, p.relay)
        new = found[len(current):]
        if not new:
            return
        sender = requester_of(p)["email"]  # the person behind a Group Gmail's ARC verdict vouches for
        vouched = p.authentication.passed or (p.relay is not None and p.relay.verified)
        if threads.may_add_participants(ticket, sender, vouched):
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
