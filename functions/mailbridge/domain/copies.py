"""One mail, one ticket: the same message delivered to several connected mailboxes (a customer
writes to support@ and cc's sales@, a Group or an alias that reaches two mailboxes) is one
ticket; each mailbox's copy is an inbound row pointing at it (docs/gmail-differences.md).

A copy is recognised by its key: the Message-ID, the sender, the Date and whether Gmail
authenticated the sender, hashed. A Message-ID alone is evidence anyone can quote or squat
(docs/reliability.md, "Hostile senders"); a copy counts only when the sender and the Date match
too, and a forged copy (failed authentication) never matches a genuine one.
"""

from __future__ import annotations

import hashlib

MAX_COPY_KEYS = 200  # the newest keys a ticket keeps (a copy arrives within minutes)
CLAIM_DAYS = 30  # a claimed key (message_copies/{key}) expires then (Firestore TTL, terraform/firestore.tf)
FIELD = "copy_keys"


def copy_key(message_id: str, sender: str, date: str | None, authenticated: bool) -> str | None:
    """The key of a message's copies, or None when the message cannot be recognised as a copy
    (no Message-ID, no sender or no Date)."""
    message_id, sender, date = (message_id or "").strip(), (sender or "").strip().lower(), (date or "").strip()
    if not message_id or not sender or not date:
        return None
    text = "\n".join([message_id, sender, date, "pass" if authenticated else "unverified"])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def may_reach_other_mailboxes(recipients: list[str], own_address: str) -> bool:
    """Whether a copy of this message may be in another mailbox at the same time, so the
    commit claims its key (the claim makes two concurrent syncs agree on one ticket). Mail
    written to this mailbox's address alone needs no claim; anything cc'd, written to an alias,
    a Group or a Bcc (this address not named) may also be elsewhere. A copy found later, after
    the first one's commit, is recognised by the ticket's keys whatever this says."""
    named = {r.strip().lower() for r in recipients if r and r.strip()}
    return named != {(own_address or "").strip().lower()}


def holds_copy(ticket: dict, key: str | None) -> bool:
    return bool(key) and key in (ticket.get(FIELD) or [])


def remember(ticket: dict, key: str | None) -> None:
    """Keep `key` on the ticket (the newest MAX_COPY_KEYS)."""
    if not key:
        return
    keys = [k for k in ticket.get(FIELD) or [] if k != key] + [key]
    ticket[FIELD] = keys[-MAX_COPY_KEYS:]


def add_receiver(ticket: dict, mailbox: str) -> None:
    """The mailboxes that received the ticket's mail, first receiver first (it answers)."""
    received = list(ticket.get("received_by") or ([ticket["mailbox"]] if ticket.get("mailbox") else []))
    if mailbox and mailbox not in received:
        received.append(mailbox)
    ticket["received_by"] = received
