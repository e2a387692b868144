"""A sync's fetch step (docs/architecture.md, "The path of a poll"): a chunk's raw messages
from Gmail, and the inbound rows of the messages that get no further: deleted before the fetch,
failed (retried by later runs), or quarantined after too many unfinished attempts."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from mailbridge.domain import models, privacy
from mailbridge.errors import GmailError, StoreUnavailable
from mailbridge.logs import log_event
from mailbridge.services.ports import AttemptsStore

BIG_MESSAGE_BYTES = 8 * 1024 * 1024  # from here on an attempt is counted before parsing


@dataclasses.dataclass
class Fetched:
    gmail_id: str
    thread_id: str | None
    internal_date: str | None  # ISO, from Gmail's internalDate
    raw: bytes


def _iso_from_ms(ms) -> str | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="milliseconds")
    except (TypeError, ValueError):
        return None


class Attempts:
    """The inbound rows of one mailbox's messages that did not reach a commit."""

    def __init__(self, store: AttemptsStore, mailbox: str, max_attempts: int):
        self.store, self.mailbox, self.max_attempts = store, mailbox, max_attempts
        self.written: set[str] = set()  # the messages whose rows this run wrote before their commit

    def begin(self, gmail_id: str, reason: str) -> bool:
        """A big message could exhaust the function's memory: then the process dies, writes
        nothing, and the same message would stop every later poll. So its attempt is counted
        before the risky work; after max_attempts unfinished tries it is quarantined unparsed.
        False when it is quarantined."""
        self.written.add(gmail_id)
        row = self.store.begin_attempt(self.mailbox, gmail_id, self.max_attempts, reason)
        if row.get("outcome") == "quarantined":
            log_event("ERROR", "message quarantined", mailbox=self.mailbox, gmail_message_id=gmail_id,
                      attempts=row.get("attempts"), reason=row.get("reason", "")[:200])
            return False
        return True

    def failure(self, gmail_id: str, reason: str) -> str:
        self.written.add(gmail_id)
        row = self.store.record_failure(self.mailbox, gmail_id, reason, self.max_attempts)
        log_event("WARNING", "message failed", mailbox=self.mailbox, gmail_message_id=gmail_id,
                  outcome=row["outcome"], attempts=row.get("attempts"), reason=reason[:200])
        return row["outcome"]

    def final_row(self, gmail_id: str, outcome: str, reason: str, **extra) -> str:
        now = models.now_iso()
        # kept retention.inbound_log_days (docs/privacy.md): Firestore's TTL policy deletes it then
        expires_at = privacy.inbound_expiry(self.store.settings(), outcome, now)
        self.written.add(gmail_id)
        try:
            self.store.put_inbound_row(self.mailbox, gmail_id, {
                "mailbox": self.mailbox, "gmail_message_id": gmail_id, "message_id": None,
                "outcome": outcome, "reason": reason, "ticket_id": None, "attempts": 1,
                "processed_at": now, **({"expires_at": expires_at} if expires_at else {}), **extra})
        except StoreUnavailable:
            return self.failure(gmail_id, reason)
        return outcome


def count_attempts_first(attempts: Attempts, chunk: list[str], outcomes: dict[str, str]) -> list[str]:
    """Careful mode (a run after one that died): every message's attempt is counted before it is
    fetched. Returns the chunk without the messages quarantined by it (their outcome is set)."""
    for gmail_id in chunk:
        if not attempts.begin(gmail_id, "processing this message never finished (the poll stopped)"):
            outcomes[gmail_id] = "quarantined"
    return [gmail_id for gmail_id in chunk if gmail_id not in outcomes]


def take(gmail_id: str, result, attempts: Attempts, outcomes: dict[str, str], *, careful: bool) -> Fetched | None:
    """One message of get_raw_many's answer: its raw bytes, or None with its outcome set (deleted
    in Gmail, a failed fetch, a big message quarantined after too many unfinished attempts)."""
    if isinstance(result, GmailError) or result is None:
        if isinstance(result, GmailError) and result.status == 404:
            outcomes[gmail_id] = attempts.final_row(gmail_id, "ignored", "deleted from Gmail before it was fetched")
        else:
            outcomes[gmail_id] = attempts.failure(gmail_id, f"fetch failed: {result}")
        return None
    raw = result.pop("raw")  # the chunk keeps parsed messages only, not every raw copy
    if len(raw) >= BIG_MESSAGE_BYTES and not careful and not attempts.begin(
            gmail_id, f"processing this {len(raw)}-byte message never finished (the poll stopped)"):
        outcomes[gmail_id] = "quarantined"
        return None
    return Fetched(gmail_id, result.get("threadId"), _iso_from_ms(result.get("internalDate")), raw)
