"""A sync's commit step (docs/architecture.md, "The path of a poll"): a chunk's inbound
rows and tickets in ONE batch. Rows are `create`d (fail if present) and ticket updates carry a
last-update-time precondition, so a concurrent writer makes the batch fail; the chunk is then
re-read, re-matched and committed again."""

from __future__ import annotations

import dataclasses
import time

from mailbridge.domain import events, models, privacy
from mailbridge.errors import MailbridgeError, WriteConflict
from mailbridge.logs import log_event
from mailbridge.services import retention
from mailbridge.services.ports import SyncStore
from mailbridge.services.sync.decide import Prepared
from mailbridge.services.sync.match import ChunkTickets, Decision

FINAL = models.FINAL_INBOUND_OUTCOMES
COMMIT_ATTEMPTS = 4


@dataclasses.dataclass
class Committed:
    outcomes: dict[str, str]  # gmail id -> outcome
    new_tickets: list[tuple[dict, Prepared]]  # the tickets opened by accepted mail: acknowledgements
    events: tuple[str, dict] | None = None  # the commit's event document (id, fields), if any
    # The rows it wrote, by the "collection/key" their events name: what publishing the events
    # would read back (services/events.render), so a chunk's own events cost no read.
    rows: dict[str, dict] = dataclasses.field(default_factory=dict)


def commit_chunk(store: SyncStore, mailbox: str, prepared: list[Prepared], *, incoming: dict,
                 own_addresses: set[str], address: str = "", aliases: set[str] = frozenset(),
                 rows_read: dict[str, dict] | None = None) -> Committed:
    """`rows_read`: the chunk's inbound rows as the run read them under its lease (gmail id -> row
    with its version; absent: no row), used by the first attempt instead of reading them again.
    A row written since makes that attempt's create or versioned update fail, and the next
    attempt reads them afresh."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return _try_commit(store, mailbox, prepared, incoming, own_addresses, address, aliases,
                               rows_read if attempt == 0 else None)
        except WriteConflict as e:
            log_event("WARNING", "chunk commit conflict; re-reading", mailbox=mailbox,
                      attempt=attempt + 1, error=str(e))
            time.sleep(0.2 * (attempt + 1))
    raise MailbridgeError("chunk commit kept conflicting with another writer")


def _try_commit(store: SyncStore, mailbox: str, prepared: list[Prepared], incoming: dict,
                own_addresses: set[str], address: str, aliases: set[str],
                rows_read: dict[str, dict] | None = None) -> Committed:
    settings = store.settings()
    tag_format = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    if rows_read is None:
        existing = store.get_inbound_rows(mailbox, [p.gmail_id for p in prepared])
    else:
        existing = {p.gmail_id: rows_read[p.gmail_id] for p in prepared if p.gmail_id in rows_read}
    # Rows already final (another writer committed them): their outcome stands.
    outcomes = {p.gmail_id: existing[p.gmail_id]["outcome"] for p in prepared
                if (existing.get(p.gmail_id) or {}).get("outcome") in FINAL}
    pending = [p for p in prepared if p.gmail_id not in outcomes]
    tickets = ChunkTickets(store, mailbox, pending, incoming=incoming, own_addresses=own_addresses,
                           tag_format=tag_format, address=address, aliases=aliases)
    decisions = [tickets.decide(p) for p in pending]
    renames = tickets.number_new_tickets(store.reserve_ticket_numbers(tickets.new_count))
    now = models.now_iso()
    rows = []
    for seq, decision in enumerate(decisions):
        earlier = existing.get(decision.prepared.gmail_id)
        row = _row(mailbox, seq, decision, renames, earlier, now)
        expires_at = privacy.inbound_expiry(settings, decision.outcome, now)  # docs/privacy.md
        if expires_at:
            row["expires_at"] = expires_at
        rows.append((decision.prepared.gmail_id, row, earlier["_update_time"] if earlier else None))
        outcomes[decision.prepared.gmail_id] = decision.outcome
    event_document = _event_document(mailbox, decisions, tickets, renames, now, settings)
    store.commit_inbound_chunk(mailbox, rows, tickets.writes(), event_document, tickets.claims(renames, now))
    for ticket_id in tickets.reopened:  # its rows no longer expire (services/retention.py)
        retention.clear_expiry(store, ticket_id)
    for decision in decisions:
        if decision.outcome == "ignored":
            log_event("INFO", "message ignored", mailbox=mailbox, gmail_message_id=decision.prepared.gmail_id,
                      reason=decision.reason)
    written = {events.ref_path(events.inbound_ref(mailbox, gmail_id)): row for gmail_id, row, _version in rows}
    return Committed(outcomes, [(tickets.tickets[renames.get(d.ticket_id, d.ticket_id)], d.prepared)
                                for d in decisions if d.outcome == "created" and d.prepared.verdict.action == "accept"],
                     event_document, written)


def _event_document(mailbox: str, decisions: list[Decision], tickets: ChunkTickets, renames: dict[str, str],
                    now: str, settings: dict) -> tuple[str, dict] | None:
    """The chunk's ticket events, one per message that opened or joined a ticket, in one document
    of the same batch (docs/events.md): none is written without its row, nor a row without it."""
    joined = []
    for decision in decisions:
        if decision.joined is None:
            continue
        sequence, ticket_json = decision.joined
        ticket = tickets.tickets[renames.get(decision.ticket_id, decision.ticket_id)]
        joined.append(events.message_joined(events.numbered(ticket_json, ticket), sequence, mailbox,
                                            decision.prepared.gmail_id, decision.outcome == "created", now))
    return events.batch(joined, mailbox, now, events.retention_days(settings))


def _row(mailbox: str, seq: int, decision: Decision, renames: dict[str, str], earlier: dict | None,
         now: str) -> dict:
    """The inbound row of one decided message (with its message record unless it was ignored)."""
    p, parsed = decision.prepared, decision.prepared.parsed
    row = {
        "mailbox": mailbox, "gmail_message_id": p.gmail_id, "gmail_thread_id": p.thread_id,
        "message_id": parsed.message_id, "outcome": decision.outcome, "reason": decision.reason,
        "ticket_id": renames.get(decision.ticket_id, decision.ticket_id), "attempts": models.attempt_number(earlier),
        "processed_at": now, "seq": seq, "subject": parsed.subject[:300],
        "from_email": parsed.from_.email if parsed.from_ else "", "defects": parsed.defects[:20],
        "authentication": p.authentication.record(),
    }
    if decision.message is not None:
        row["message"] = decision.message
    elif decision.outcome == "updated":
        row["copy"] = True  # another mailbox's copy holds the message (domain/copies.py)
    return row
