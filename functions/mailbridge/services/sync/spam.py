"""Support mail rescued from Spam (docs/gmail-differences.md, "Spam"): the run's history listing
also names the messages Gmail filed in Spam. One that answers one of our messages, or comes from
a participant of an open ticket whom Gmail authenticated, is ingested like inbox mail and, once
its row is final, moved out of Spam (SPAM removed, INBOX added: that also teaches Gmail). Every
other one is left where it is and only counted; the mailbox page lists the last ones with "make a
ticket", an admin's explicit choice (`make_ticket`)."""

from __future__ import annotations

from mailbridge.domain import models, threads
from mailbridge.domain.authentication import authenticate
from mailbridge.domain.parsing import parse_message
from mailbridge.errors import InvalidInput
from mailbridge.logs import log_event
from mailbridge.services.ports import SyncStore
from mailbridge.services.sync.match import StoreLookup

MAX_RECENT = 20  # spam messages the mailbox page lists


def judge(sync, ids: list[str]) -> list[str]:
    """The ids of `ids` (new in Spam) to ingest; their fetched messages wait in `sync.prefetched`
    and their ids in `sync.rescued`. The others are noted in `sync.spam_left` (counted, listed)."""
    fetched = sync.gmail.get_raw_many(ids)
    tag_format = sync.store.settings().get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    lookup = StoreLookup(sync.store, {})
    rescued = []
    for gmail_id in ids:
        result = fetched.get(gmail_id)
        if not isinstance(result, dict):
            continue  # gone or not fetched: it stays in Spam, as Gmail filed it
        try:
            parsed = parse_message(result["raw"])
            reason = rescue_reason(sync.store, lookup, parsed, sync.name, result.get("threadId"), tag_format)
        except Exception as e:  # noqa: BLE001 - spam that cannot be judged stays in Spam, uncounted
            log_event("WARNING", "spam message not judged", mailbox=sync.name, gmail_message_id=gmail_id,
                      error=f"{e.__class__.__name__}: {str(e)[:200]}")
            continue
        if reason:
            log_event("INFO", "message rescued from Spam", mailbox=sync.name, gmail_message_id=gmail_id, reason=reason)
            sync.prefetched[gmail_id] = result
            rescued.append(gmail_id)
        else:
            sync.spam_left.append({
                "gmail_message_id": gmail_id, "from_email": parsed.from_.email if parsed.from_ else "",
                "subject": parsed.subject[:200], "date": parsed.date, "seen_at": models.now_iso()})
    sync.rescued.extend(rescued)
    return rescued


def rescue_reason(store: SyncStore, lookup: StoreLookup, parsed, mailbox: str, thread_id: str | None,
                  tag_format: str) -> str | None:
    """Why a message in Spam belongs to a ticket, or None: it answers a message we sent (its
    In-Reply-To or References names our Message-ID), or its sender, authenticated by Gmail, takes
    part in the open ticket it threads to."""
    match = threads.match_ticket(parsed, mailbox, thread_id, lookup, tag_format=tag_format)
    ticket = store.find_ticket(match.ticket_id) if match.ticket_id else None
    if ticket is None:
        return None
    number = ticket.get("number", match.ticket_id)
    if match.signal in ("in_reply_to", "references"):
        referenced = set(parsed.in_reply_to) | set(parsed.references)
        if referenced & _our_message_ids(store, match.ticket_id):
            return f"answers our message on ticket #{number}"
    sender = (parsed.from_.email if parsed.from_ else "").lower()
    if (ticket.get("status") != "closed" and sender in threads.people(ticket)
            and authenticate(parsed.headers, sender).passed):
        return f"from {sender}, an authenticated participant of open ticket #{number}"
    return None


def _our_message_ids(store: SyncStore, ticket_id: str) -> set[str]:
    """The Message-IDs of what we sent on the ticket: ours, and the one Gmail sent if it replaced it."""
    found = set()
    for row in store.ticket_messages(ticket_id):
        if (row.get("message") or {}).get("direction") == "out":
            found.update(filter(None, [row.get("message_id"), row.get("sent_message_id"),
                                       row["message"].get("message_id")]))
    return found


def move_out_of_spam(gmail, rescued: list[str], processed: list[str]) -> None:
    """The rescued messages whose rows are final leave Spam for the inbox."""
    done = [gmail_id for gmail_id in rescued if gmail_id in set(processed)]
    if done:
        gmail.modify_many(done, add=["INBOX"], remove=["SPAM"])


def state_changes(state: dict, left: list[dict], taken: list[str] = ()) -> dict:
    """The sync state's `spam_count` and `spam_recent` (newest first) after a run: each message
    counted once, however many runs see it; the ones an admin made a ticket of leave the list."""
    recent = [entry for entry in state.get("spam_recent") or [] if entry.get("gmail_message_id") not in taken]
    known = {entry.get("gmail_message_id") for entry in recent}
    new = [entry for entry in left if entry["gmail_message_id"] not in known]
    if not new and len(recent) == len(state.get("spam_recent") or []):
        return {}
    return {"spam_count": int(state.get("spam_count") or 0) + len(new),
            "spam_recent": (list(reversed(new)) + recent)[:MAX_RECENT]}


def listed(state: dict, gmail_id: str) -> None:
    """An admin may make a ticket only of a message the mailbox page lists."""
    if gmail_id not in {entry.get("gmail_message_id") for entry in state.get("spam_recent") or []}:
        raise InvalidInput(f"message {gmail_id} is not among the spam messages this mailbox lists")
