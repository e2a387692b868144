"""A sync's first step, finding new mail (docs/architecture.md, "The path of a poll"): the Gmail
history since the stored history id, or a listing of the inbox on a first, full or backfill run."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from mailbridge.domain import models
from mailbridge.errors import HistoryExpired
from mailbridge.logs import log_event
from mailbridge.services.ports import Gmail


@dataclasses.dataclass
class NewMail:
    mode: str  # "first", "incremental", "full" or "backfill"
    ids: list[str]  # oldest first
    history_id: object  # where the next run starts, once every message listed here has a row
    ends_backfill: bool = False  # the sync state's pending backfill window is listed here
    spam_ids: list[str] = dataclasses.field(default_factory=list)  # new in Spam: judged by spam.py
    # Listed by a backfill (older mail, never acknowledged: services/outgoing/acknowledgements.py)
    backfill_ids: frozenset = frozenset()


def find_new_mail(gmail: Gmail, state: dict, mailbox: str, backfill_since: float | None = None) -> NewMail:
    """What this run ingests. `state`: the mailbox's sync state; `backfill_since`: an admin's
    backfill (epoch seconds) instead of the history."""
    if backfill_since is not None or not state.get("history_id"):
        history_id = gmail.profile().get("historyId")
        if backfill_since is None:
            return NewMail("first", [], history_id)  # by default nothing older than the connection is ingested
        ids = listed_ids(gmail, f"in:inbox after:{int(backfill_since)}")
        return NewMail("backfill", ids, history_id, backfill_ids=frozenset(ids))
    found = _history(gmail, state, mailbox)
    pending_backfill = state.get("backfill_since")
    if pending_backfill:
        # The window chosen by incoming.backfill_days at connection: older inbox mail,
        # taken once; rows make it idempotent if this run stops early.
        found.mode, found.ends_backfill = "backfill", True
        older = listed_ids(gmail, f"in:inbox after:{int(pending_backfill)}")
        found.ids, found.backfill_ids = older + found.ids, frozenset(older) - set(found.ids)
    return found


def _history(gmail: Gmail, state: dict, mailbox: str) -> NewMail:
    ids: list[str] = []
    spam_ids: list[str] = []
    history_id = None
    try:
        # the inbox and Spam in one history.list (docs/gmail-differences.md, Spam)
        for page_ids, page_spam_ids, page_history_id, _last in gmail.new_mail(state["history_id"]):
            ids.extend(page_ids)
            spam_ids.extend(page_spam_ids)
            history_id = page_history_id
    except HistoryExpired:
        return _full_listing(gmail, state, mailbox)
    return NewMail("incremental", ids, history_id, spam_ids=spam_ids)


def _full_listing(gmail: Gmail, state: dict, mailbox: str) -> NewMail:
    """Gmail no longer has the history since the stored id: the inbox since the last success (an
    hour's margin); the rows of what was ingested before make the overlap harmless."""
    history_id = gmail.profile().get("historyId")
    since = state.get("last_success_at") or state.get("connected_at") or models.now_iso()
    epoch = int(datetime.fromisoformat(since).timestamp()) - 3600
    ids = listed_ids(gmail, f"in:inbox after:{epoch}")
    spam_ids = listed_ids(gmail, f"in:spam after:{epoch}")  # judged like the history's (spam.py)
    log_event("WARNING", "history expired; full sync", mailbox=mailbox, since=since)
    return NewMail("full", ids, history_id, spam_ids=spam_ids)


def listed_ids(gmail: Gmail, query: str) -> list[str]:
    ids = []
    for page in gmail.list_ids(query):
        ids.extend(page)
    ids.reverse()  # messages.list is newest first; tickets thread best oldest first
    return ids
