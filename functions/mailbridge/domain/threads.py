"""Which ticket an incoming message belongs to: headers first, then our subject tag, then threadId."""

from __future__ import annotations

import dataclasses
import re
from typing import Protocol

from mailbridge.errors import InvalidInput
from mailbridge.domain.parsing import ParsedMessage

DEFAULT_TAG_FORMAT = "[#{number}]"
# Firestore `in` queries take 30 values; the newest references matter most.
MAX_REFERENCES_LOOKED_UP = 50
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|antw|ant|vs|r|rif|odp|отв|回复|答复|fw|fwd|wg|tr|rv|enc|doorst)\s*(\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


class TicketLookup(Protocol):
    def by_message_ids(self, ids: list[str], sender: str = "") -> str | None:
        """Ticket of the first id (in the order given) stored on any ticket message, or None; of
        several tickets holding it, the one `preferred_holder` picks."""

    def by_number(self, number: int) -> tuple[str, set[str]] | None:
        """(ticket id, participant emails in lower case) of the ticket with this number."""

    def by_thread(self, mailbox: str, thread_id: str) -> str | None:
        """Ticket holding a message of this Gmail thread in this mailbox."""


@dataclasses.dataclass
class Match:
    ticket_id: str | None
    signal: str | None  # "in_reply_to" | "references" | "subject_tag" | "thread_id" | None
    note: str


def format_tag(number: int, fmt: str = DEFAULT_TAG_FORMAT) -> str:
    _check_format(fmt)
    return fmt.replace("{number}", str(int(number)))


def find_tag_numbers(subject: str, fmt: str = DEFAULT_TAG_FORMAT) -> list[int]:
    """Ticket numbers tagged in a subject, in order of appearance, without repeats."""
    numbers: list[int] = []
    for match in _tag_pattern(fmt).finditer(subject or ""):
        number = int(match.group(1))
        if number not in numbers:
            numbers.append(number)
    return numbers


def subject_with_tag(subject: str, number: int, fmt: str = DEFAULT_TAG_FORMAT, *, reply: bool = False) -> str:
    """The subject carrying our tag once, after any Re:/Fwd: prefixes.

    reply=True makes it a reply subject: one "Re: " in front, whatever prefixes were there
    (Re:, RE:, AW:, SV:, Fwd: …) before.
    """
    subject = (subject or "").strip()
    match = _REPLY_PREFIX.match(subject)
    prefix, rest = (subject[: match.end()], subject[match.end() :]) if match else ("", subject)
    if reply:
        prefix = "Re: "
    tag = format_tag(number, fmt)
    if number not in find_tag_numbers(subject, fmt):
        rest = f"{tag} {rest}".strip()
    return f"{prefix}{rest}".strip()


def match_ticket(
    msg: ParsedMessage,
    mailbox: str,
    gmail_thread_id: str | None,
    lookup: TicketLookup,
    *,
    tag_format: str = DEFAULT_TAG_FORMAT,
) -> Match:
    """The ticket this message updates, strongest signal first (docs/architecture.md, "Threading"), or a new ticket."""
    own_id = msg.message_id
    sender = msg.from_.email if msg.from_ else ""
    in_reply_to = [i for i in msg.in_reply_to if i != own_id]
    if in_reply_to:
        ticket_id = lookup.by_message_ids(in_reply_to, sender)
        if ticket_id:
            return Match(ticket_id, "in_reply_to", "In-Reply-To names a message of this ticket")

    references = [i for i in reversed(msg.references) if i != own_id and i not in in_reply_to]
    references = references[:MAX_REFERENCES_LOOKED_UP]
    if references:
        ticket_id = lookup.by_message_ids(references, sender)
        if ticket_id:
            return Match(ticket_id, "references", "References names a message of this ticket")

    unknown_tags = []
    for number in find_tag_numbers(msg.subject, tag_format):
        found = lookup.by_number(number)
        if not found:
            unknown_tags.append(number)
            continue
        ticket_id, participants = found
        if sender and sender in {p.lower() for p in participants}:
            return Match(ticket_id, "subject_tag", f"subject tag {format_tag(number, tag_format)} from a participant")
        # A tag is easy to copy; from a stranger it must not open someone else's ticket.
        return Match(
            None,
            None,
            f"subject tag {format_tag(number, tag_format)} names ticket {ticket_id}, "
            f"but sender {sender or '(none)'} is not a participant: new ticket",
        )

    if gmail_thread_id:
        ticket_id = lookup.by_thread(mailbox, gmail_thread_id)
        if ticket_id:
            return Match(ticket_id, "thread_id", "Gmail thread holds a message of this ticket")

    note = "no stored Message-ID, tag or thread matched: new ticket"
    if unknown_tags:
        note = f"subject tag for unknown ticket number {unknown_tags[0]}; " + note
    return Match(None, None, note)


def ticket_order(ticket: dict) -> tuple[int, str]:
    """Oldest first by number compared as a number ("4" before "10"), never document order."""
    number = ticket.get("number")
    if number is None:
        number = ticket.get("id")
    try:
        return int(number), str(ticket.get("id"))
    except (TypeError, ValueError):
        return 2 ** 63, str(ticket.get("id"))


def preferred_holder(tickets: list[dict], sender: str = "") -> str | None:
    """Of several tickets a reference (Message-ID, thread) could mean, the one to join: first one
    whose participants (or requester) include `sender`, then the oldest by number; deterministic
    whatever order the store answered in (docs/reliability.md, "Hostile senders")."""
    sender = (sender or "").strip().lower()
    return min(tickets, key=lambda t: (0 if sender and sender in people(t) else 1, ticket_order(t)))["id"] \
        if tickets else None


def people(ticket: dict) -> set[str]:
    """A ticket's participants and requester, in lower case."""
    found = {str(p).lower() for p in ticket.get("participants") or []}
    found.add(((ticket.get("requester") or {}).get("email") or "").lower())
    found.discard("")
    return found


def claimable_message_id(message_id: str, holders: list[dict], sender: str) -> bool:
    """Whether a new message's own Message-ID may be held by the ticket it opens: not when another
    ticket already holds it for a different sender (a squatted id would capture that customer's
    follow-ups). `holders` are the tickets that hold it now."""
    sender = (sender or "").strip().lower()
    if not message_id:
        return False
    return all(sender and sender in people(ticket) for ticket in holders)


def _check_format(fmt: str) -> None:
    if not isinstance(fmt, str) or fmt.count("{number}") != 1 or not fmt.replace("{number}", "").strip():
        raise InvalidInput(f"ticket tag format must contain {{number}} once plus some text, got {fmt!r}")


def _tag_pattern(fmt: str) -> re.Pattern:
    _check_format(fmt)
    before, after = fmt.split("{number}")
    pattern = re.escape(before.strip()).replace("\\ ", r"\s*")
    pattern = (pattern + r"\s*" if before.endswith(" ") else pattern) + r"(\d{1,12})"
    pattern += (r"\s*" if after.startswith(" ") else "") + re.escape(after.strip()).replace("\\ ", r"\s*")
    if not before.strip():
        pattern = r"(?<!\d)" + pattern
    if not after.strip():
        pattern += r"(?!\d)"
    return re.compile(pattern, re.IGNORECASE)


# -- who may add participants (docs/reliability.md, "Hostile senders") ---------------------------
MAX_SUGGESTED_PARTICIPANTS = 50


def may_add_participants(ticket: dict, sender: str, authenticated: bool) -> bool:
    """Whether the Cc/To/Reply-To of a message from `sender` become participants of `ticket` at
    once: only when Gmail authenticated the sender (domain/authentication.py) and the sender
    already takes part. A From is trivial to forge and a Message-ID is quoted to everyone in a
    thread, so anything less only suggests them."""
    sender = (sender or "").strip().lower()
    if not authenticated or not sender:
        return False
    return sender in people(ticket)


def suggest_participants(suggested: list[dict], emails: list[str], suggested_by: str, at: str) -> list[dict]:
    """`suggested` with each new email added once ({"email", "suggested_by", "suggested_at"})."""
    result = [dict(s) for s in suggested]
    known = {s.get("email") for s in result}
    for email in emails:
        if email and email not in known and len(result) < MAX_SUGGESTED_PARTICIPANTS:
            result.append({"email": email, "suggested_by": (suggested_by or "").lower(), "suggested_at": at})
            known.add(email)
    return result


def confirm_participant(ticket: dict, email: str) -> tuple[list[str], list[dict]]:
    """(participants, suggested_participants) after an agent confirms a suggested `email`."""
    email = (email or "").strip().lower()
    suggested = ticket.get("suggested_participants") or []
    if email not in {s.get("email") for s in suggested}:
        raise InvalidInput(f"{email or '(empty)'} is not a suggested participant of ticket #{ticket.get('number')}")
    participants = list(ticket.get("participants", []))
    if email not in participants:
        participants.append(email)
    return participants, [s for s in suggested if s.get("email") != email]
