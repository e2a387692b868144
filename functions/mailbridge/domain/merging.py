"""Merge and split of tickets (docs/merging.md): pure decisions over a ticket, the other ticket
and the message rows (inbound rows and outbound records) the store read in the same transaction.

Merge moves everything that threads mail (Message-IDs, Gmail thread keys) and every message row
of the source into the survivor; the source stays, closed, with `merged_into`, so its `[#N]` tag
and anything that still names it lead to the survivor (services/sync/match.py follows the
pointer). Split opens a ticket from one message and the later messages of the same Gmail thread;
that thread's key moves with them, so the thread's next mail joins the new ticket.
"""

from __future__ import annotations

from mailbridge.domain import events
from mailbridge.errors import Conflict, InvalidInput

MAX_PARTICIPANTS = 100
# Firestore takes at most 500 writes in one transaction: the two tickets, the event document,
# one write per moved row.
MAX_MOVED_ROWS = 450
MAX_POINTER_HOPS = 10


def _tag(ticket: dict) -> str:
    return f"#{ticket.get('number', ticket.get('id'))}"


def _union(first: list, second: list, limit: int | None = None) -> list:
    result = list(first or [])
    for value in second or []:
        if value not in result and (limit is None or len(result) < limit):
            result.append(value)
    return result


def row_message_key(row: dict) -> str:
    """The id a message has in `tickets show --json` (inbound "mailbox~gmail id", outbound "out~key")."""
    return str((row.get("message") or {}).get("id") or "")


def names_message(row: dict, wanted: str) -> bool:
    """Whether `wanted` names this row's message: its JSON id, Gmail message id or Message-ID."""
    message = row.get("message") or {}
    wanted = (wanted or "").strip()
    names = {message.get("id"), message.get("gmail_message_id"), row.get("gmail_message_id"),
             message.get("message_id"), row.get("message_id"), row.get("sent_message_id")}
    return bool(wanted) and (wanted in names or f"<{wanted.strip('<>')}>" in names)


def row_message_ids(row: dict) -> list[str]:
    """The Message-IDs by which later mail names this row's message."""
    message = row.get("message") or {}
    found = [message.get("message_id"), row.get("message_id"), row.get("sent_message_id")]
    return [i for i in dict.fromkeys(found) if i]


def row_thread_key(row: dict) -> str | None:
    message = row.get("message") or {}
    thread = message.get("gmail_thread_id") or row.get("gmail_thread_id")
    mailbox = row.get("mailbox") or str(message.get("id") or "").split("~", 1)[0]
    return f"{mailbox}:{thread}" if thread and mailbox else None


def in_order(rows: list[dict]) -> list[dict]:
    """Message rows in the ticket's order (as the store's ticket_messages): rows without a message
    left out."""
    rows = [row for row in rows if row.get("message")]
    return sorted(rows, key=lambda r: (r["message"].get("received_at") or r["message"].get("date") or "",
                                       r.get("seq", 0)))


def _check_rows(rows: list) -> None:
    if len(rows) > MAX_MOVED_ROWS:
        raise InvalidInput(f"{len(rows)} messages to move: at most {MAX_MOVED_ROWS} move in one step")


# ------------------------------------------------------------------ merge
def check_merge(source: dict, survivor: dict | None) -> bool:
    """Whether the merge has work to do: False when `source` is merged into `survivor` already
    (a repeated or concurrent merge); raises InvalidInput/Conflict for a merge that cannot be."""
    if survivor is None:
        raise InvalidInput("the ticket to merge into does not exist")
    if str(source["id"]) == str(survivor["id"]):
        raise InvalidInput(f"cannot merge ticket {_tag(source)} into itself")
    if source.get("merged_into"):
        if str(source["merged_into"]) == str(survivor["id"]):
            return False
        raise Conflict(f"ticket {_tag(source)} was merged into #{source['merged_into']} already")
    if survivor.get("merged_into"):
        raise Conflict(f"ticket {_tag(survivor)} was merged into #{survivor['merged_into']}: merge into that one")
    return True


def merged(source: dict, survivor: dict, rows: list[dict], time: str) -> tuple[dict, dict]:
    """(the source's changes, the survivor as the merge leaves it) for `rows`, the source's
    message rows that move."""
    _check_rows(rows)
    after = dict(survivor)
    after["message_ids"] = _union(survivor.get("message_ids"), source.get("message_ids"))
    after["thread_keys"] = _union(survivor.get("thread_keys"), source.get("thread_keys"))
    source_people = [source.get("requester", {}).get("email")] + list(source.get("participants") or [])
    after["participants"] = _union(survivor.get("participants"), [p for p in source_people if p], MAX_PARTICIPANTS)
    known = {s.get("email") for s in survivor.get("suggested_participants") or []} | set(after["participants"])
    after["suggested_participants"] = list(survivor.get("suggested_participants") or []) + [
        s for s in source.get("suggested_participants") or [] if s.get("email") not in known]
    after["merged_from"] = _union(survivor.get("merged_from"), [str(source["id"])])
    after["message_count"] = int(survivor.get("message_count") or 0) + len(rows)
    after["updated_at"] = time
    source_changes = {"status": "closed", "merged_into": str(survivor["id"]), "merged_at": time,
                      "message_ids": [], "thread_keys": [], "message_count": 0, "updated_at": time}
    return source_changes, after


def merge_events(source: dict, source_changes: dict, survivor: dict, after: dict, moved: list[str],
                 time: str) -> list[dict]:
    """ticket.updated for both tickets: the source (status closed, merged_into), the survivor
    (merged_from, participants), each naming the moved messages (docs/events.md)."""
    source_after = {**source, **source_changes}
    found = [events.ticket_updated(source, source_after, time, {"moved_messages": moved, "into": str(survivor["id"])}),
             events.ticket_updated(survivor, after, time, {"moved_messages": moved, "from": str(source["id"])})]
    source_changes[events.SEQUENCE_FIELD] = source_after.get(events.SEQUENCE_FIELD)
    return [e for e in found if e]


# ------------------------------------------------------------------ split
def split_rows(ticket: dict, rows: list[dict], wanted: str) -> list[dict]:
    """The rows a split of `wanted` moves: that message and the later ones of its Gmail thread
    (rows in the ticket's order). NotFound-like InvalidInput when the ticket has no such message;
    Conflict when nothing would be left."""
    index = next((i for i, row in enumerate(rows) if names_message(row, wanted)), None)
    if index is None:
        raise Conflict(f"ticket {_tag(ticket)} has no message {wanted!r} (split already, or another ticket's)")
    thread = row_thread_key(rows[index])
    moving = [rows[index]] + [row for row in rows[index + 1:] if thread and row_thread_key(row) == thread]
    if len(moving) == len(rows):
        raise InvalidInput(f"splitting {wanted!r} would leave ticket {_tag(ticket)} without messages")
    _check_rows(moving)
    return moving


def _people(rows: list[dict], own: set[str]) -> list[str]:
    people: list[str] = []
    for row in rows:
        message = row.get("message") or {}
        if message.get("direction") == "out":
            continue
        for addr in [message.get("from")] + list(message.get("reply_to") or []) + list(message.get("to") or []) \
                + list(message.get("cc") or []):
            email = ((addr or {}).get("email") or "").lower()
            if email and email not in own and email not in people and len(people) < MAX_PARTICIPANTS:
                people.append(email)
    return people


def split(ticket: dict, moving: list[dict], number: int, own: set[str], time: str) -> tuple[dict, dict]:
    """(the original's changes, the new ticket) when `moving` leaves `ticket` as ticket `number`."""
    first = moving[0].get("message") or {}
    moved_ids = [i for row in moving for i in row_message_ids(row)]
    thread = row_thread_key(moving[0])
    sender = first.get("from") if first.get("direction") != "out" else None
    requester = sender or ticket.get("requester") or {"email": "", "name": ""}
    new = {
        "id": str(number), "number": number, "subject": first.get("subject") or ticket.get("subject") or "(no subject)",
        "status": "open", "mailbox": ticket.get("mailbox"), "requester": requester,
        "participants": _people(moving, own) or [requester.get("email")],
        "created_at": first.get("received_at") or first.get("date") or time, "updated_at": time,
        "message_ids": moved_ids, "thread_keys": [thread] if thread else [], "message_count": len(moving),
        "ticket_type": ticket.get("ticket_type"), "team": ticket.get("team"), "client": ticket.get("client"),
        "split_from": str(ticket["id"]),
    }
    changes = {
        "message_ids": [i for i in ticket.get("message_ids") or [] if i not in moved_ids],
        "thread_keys": [k for k in ticket.get("thread_keys") or [] if k != thread],
        "message_count": max(int(ticket.get("message_count") or 0) - len(moving), 0),
        "split_into": _union(ticket.get("split_into"), [str(number)]), "updated_at": time,
    }
    return changes, new


def split_events(ticket: dict, changes: dict, new: dict, first_ref: dict, moved: list[str], time: str) -> list[dict]:
    """ticket.updated for the original (split_into, the moved messages) and ticket.created for
    the new ticket, carrying its first message."""
    after = {**ticket, **changes}
    updated = events.ticket_updated(ticket, after, time, {"moved_messages": moved, "into": new["id"]})
    changes[events.SEQUENCE_FIELD] = after.get(events.SEQUENCE_FIELD)
    created = events.ticket_split_off(new, first_ref, time)
    return [e for e in (updated, created) if e]


def survivor_of(ticket_id: str, find) -> str:
    """The ticket that holds a merged ticket's mail now: follow `merged_into` (`find(id)` → ticket
    or None), a few hops at most."""
    current = str(ticket_id)
    for _hop in range(MAX_POINTER_HOPS):
        ticket = find(current)
        if not ticket or not ticket.get("merged_into"):
            return current
        current = str(ticket["merged_into"])
    return current
