"""Poll: synchronize connected mailboxes and turn each new Gmail message into exactly one
inbound row (and a ticket or ticket update).

Exactly once: each chunk of ≤50 messages commits in ONE Firestore batch whose inbound rows are
`create`d (fail if present) and whose ticket updates carry a last-update-time precondition; a
concurrent writer makes the batch fail and the chunk is re-read and retried. The history id is
stored only after every message it covers has a row; post-processing (labels) runs after the
commit and is re-applied when a crash left it undone.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from datetime import datetime, timezone
import time
import uuid

from mailbridge.domain import models, rules, threads
from mailbridge.domain.authentication import NONE as UNAUTHENTICATED
from mailbridge.domain.authentication import authenticate
from mailbridge.domain.threads import match_ticket
from mailbridge.errors import (GmailError, HistoryExpired, MailbridgeError, StoreUnavailable, TokenRevoked,
                               WriteConflict)
from mailbridge.logs import log_event
from mailbridge.domain.parsing import parse_message
from mailbridge.services import labels, mailboxes, outbox, outgoing, watch
from mailbridge.services.ports import SyncPorts, SyncRepository, TicketRepository

FINAL = models.FINAL_INBOUND_OUTCOMES
CHUNK = 50
MAX_TEXT = 300_000  # characters kept per body field; Firestore documents cap at 1 MiB
BIG_MESSAGE_BYTES = 8 * 1024 * 1024  # from here on an attempt is counted before parsing
UPLOAD_WORKERS = 8  # parallel Cloud Storage uploads for a message with many attachments
TICK_DONE = "this tick's sync already ran"


@dataclasses.dataclass
class Prepared:
    gmail_id: str
    thread_id: str | None
    internal_date: str | None
    parsed: object
    verdict: object
    stored_attachments: list
    authentication: object = UNAUTHENTICATED  # domain.authentication.Authentication


def _iso_from_ms(ms) -> str | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="milliseconds")
    except (TypeError, ValueError):
        return None


def _address(addr) -> dict | None:
    return {"email": addr.email, "name": addr.name} if addr else None


def message_record(prepared: Prepared, mailbox_name: str) -> dict:
    parsed = prepared.parsed
    notes = list(parsed.defects)
    text, full_text, html = parsed.text or "", parsed.full_text or "", parsed.html
    if len(full_text) > MAX_TEXT or len(text) > MAX_TEXT or (html and len(html) > MAX_TEXT):
        notes.append(f"body truncated to {MAX_TEXT} characters for storage")
        text, full_text = text[:MAX_TEXT], full_text[:MAX_TEXT]
        html = html[:MAX_TEXT] if html else html
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

    def by_message_ids(self, ids):
        ids = list(ids)
        stored = self.store.tickets_by_message_ids(ids)
        for message_id in ids:  # the strongest signal (first id) wins, wherever it is held
            for ticket_id, ticket in self.overlay.items():
                if message_id in ticket.get("message_ids", []):
                    return ticket_id
            if message_id in stored:
                return stored[message_id]
        return None

    def by_number(self, number):
        ticket_id = str(number)
        ticket = self.overlay.get(ticket_id)
        if ticket is None:
            ticket = self.store.find_ticket(ticket_id)
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


OWN_ADDRESSES_TTL_S = 60.0
_OWN_ADDRESSES_LOCK = threading.Lock()


def own_addresses(services: SyncPorts) -> set[str]:
    """Every mailbox's address (loop protection), read once a minute per instance: with the fan-
    out each task syncs one mailbox, and reading every mailbox document for each busy task would
    be the largest Firestore cost (docs/benchmarks.md, cost model). A mailbox added in the last
    minute is caught by the loop-marker header until then."""
    cached = getattr(services, "_own_addresses_cache", None)
    if cached is not None and time.monotonic() - cached[0] < OWN_ADDRESSES_TTL_S:
        return cached[1]
    # One reader at a time: when a tick's tasks arrive together, the others wait for its answer
    # instead of each reading every mailbox document at once.
    with _OWN_ADDRESSES_LOCK:
        cached = getattr(services, "_own_addresses_cache", None)
        if cached is not None and time.monotonic() - cached[0] < OWN_ADDRESSES_TTL_S:
            return cached[1]
        value = models.own_addresses(services.store.list_mailboxes())
        services._own_addresses_cache = (time.monotonic(), value)
    return value


class MailboxSync:
    def __init__(self, services: SyncPorts, mailbox: dict, credential: dict, deadline: float, progress=None):
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self.mailbox = mailbox
        self.name = mailbox["name"]
        self.credential = credential
        self.incoming = models.incoming_settings(mailbox)
        self.deadline = deadline
        self.progress = progress
        self.counts = {k: 0 for k in ("created", "updated", "ignored", "quarantined", "failed")}
        self.new_tickets: list[tuple[dict, Prepared]] = []
        self.gmail = None
        self._own_addresses = None
        # Gmail threads with a message that failed in this run: their later messages wait for the
        # next run, so a reply never overtakes the message it answers (same tickets as a clean run).
        self.failed_threads: set[str] = set()
        self.deferred = 0
        self.backfill_done = False
        self.sync_state: dict = {}  # the mailbox's sync state as this run found it
        # After a poll of this mailbox died without a word (out of memory, killed), the next runs
        # go one message at a time and count each attempt first, until one completes: a message
        # that kills the process is then quarantined after max_attempts instead of blocking
        # the mailbox for ever.
        self.careful = False
        self.out_of_time = False  # the budget ran out mid-chunk: the rest waits for a continuation
        self.lease = None  # the Heartbeat holding this mailbox; lost → stop before the next message

    # -- helpers ---------------------------------------------------------------------
    def own_addresses(self) -> set[str]:
        if self._own_addresses is None:
            self._own_addresses = own_addresses(self.services)
        return self._own_addresses

    # -- the run -----------------------------------------------------------------------
    def run(self, backfill_since: float | None = None) -> dict:
        started = time.time()
        sync = self.store.get_sync(self.name, self.settings.instance)
        self.sync_state = sync
        self.careful = bool(sync.get("abandoned_runs"))
        if self.careful:
            log_event("WARNING", "an earlier poll died; ingesting one message at a time", mailbox=self.name,
                      abandoned_runs=sync.get("abandoned_runs"))
        self.gmail = self.services.gmail_for(self.mailbox, self.credential)
        complete = True
        mode = "incremental"
        if backfill_since is not None or not sync.get("history_id"):
            profile = self.gmail.profile()
            new_history = profile.get("historyId")
            if backfill_since is not None:
                mode = "backfill"
                complete = self.process(self._listed_ids(f"in:inbox after:{int(backfill_since)}"))
            else:
                mode = "first"  # by default nothing older than the connection is ingested
        else:
            ids: list[str] = []
            try:
                for page_ids, history_id, _last in self.gmail.history_ids(sync["history_id"]):
                    ids.extend(page_ids)
                    new_history = history_id
            except HistoryExpired:
                mode = "full"
                profile = self.gmail.profile()
                new_history = profile.get("historyId")
                since = sync.get("last_success_at") or sync.get("connected_at") or models.now_iso()
                epoch = int(datetime.fromisoformat(since).timestamp()) - 3600
                ids = self._listed_ids(f"in:inbox after:{epoch}")
                log_event("WARNING", "history expired; full sync", mailbox=self.name, since=since)
            pending_backfill = sync.get("backfill_since")
            if pending_backfill:
                # The window chosen by incoming.backfill_days at connection: older inbox mail,
                # taken once; rows make it idempotent if this run stops early.
                mode = "backfill"
                ids = self._listed_ids(f"in:inbox after:{int(pending_backfill)}") + ids
            complete = self.process(ids)
            if complete and pending_backfill:
                self.backfill_done = True

        watch.maybe_watch(self.services, self.mailbox, self.gmail, sync, force=mode == "first")
        changes = {"last_poll_at": models.now_iso(), "last_error": None}
        if complete:
            changes.update(history_id=str(new_history), last_success_at=datetime.fromtimestamp(
                started, timezone.utc).isoformat(timespec="seconds"), backlog=0)
            if self.backfill_done:
                changes["backfill_since"] = None
            if self.careful:
                changes["abandoned_runs"] = 0
        return {"mailbox": self.name, "mode": mode, "complete": complete, "changes": changes}

    def _listed_ids(self, query: str) -> list[str]:
        ids = []
        for page in self.gmail.list_ids(query):
            ids.extend(page)
        ids.reverse()  # messages.list is newest first; tickets thread best oldest first
        return ids

    def process(self, ids: list[str]) -> bool:
        """Ingest `ids`; return False when the time budget stopped us before the end."""
        ids = list(dict.fromkeys(ids))
        # Failed rows are retried by every run. The sync state says how many the last run left
        # (unknown after a run that ended in an error, and a run that died makes this one
        # careful), so a mailbox without failures skips the query, which reads the inbound log.
        if self.careful or self.sync_state.get("last_failed") != 0:
            ids += [i for i in self.store.failed_rows(self.name) if i not in ids]
        existing = self.store.get_inbound_rows(self.name, ids)
        post = [i for i in ids if existing.get(i, {}).get("outcome") in FINAL[:3]]
        todo = [i for i in ids if existing.get(i, {}).get("outcome") not in FINAL]
        self.backlog = len(todo)
        complete = True
        done = 0
        size = 1 if self.careful else CHUNK
        for start in range(0, len(todo), size):
            if self._must_stop():
                complete = False
                break
            chunk = todo[start:start + size]
            outcomes = self.ingest_chunk(chunk)
            post.extend(gid for gid, outcome in outcomes.items() if outcome in FINAL[:3])
            done += len(chunk)
            self.backlog = len(todo) - done
            if self.progress:
                self.progress(done, len(todo))
        self.post_process(post)
        return complete and not self.deferred and not self.out_of_time

    def _must_stop(self) -> bool:
        """Checked before every message: the push budget is below the push timeout, so a sync
        stops in time instead of being cut off mid-chunk (docs/architecture.md, "Queue")."""
        if self.lease and self.lease.lost:
            self.out_of_time = True
        # Every run finishes its first chunk, so a slow Gmail or store cannot leave a mailbox
        # where no budget ever covers a whole chunk (no progress at all).
        elif time.monotonic() > self.deadline and any(self.counts.values()):
            self.out_of_time = True
        return self.out_of_time

    def ingest_chunk(self, chunk: list[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        if self.careful:
            for gmail_id in chunk:
                if not self._begin_attempt(gmail_id, "processing this message never finished (the poll stopped)"):
                    outcomes[gmail_id] = "quarantined"
            chunk = [gmail_id for gmail_id in chunk if gmail_id not in outcomes]
        fetched = self.gmail.get_raw_many(chunk) if chunk else {}
        prepared: list[Prepared] = []
        for gmail_id in chunk:
            if self._must_stop():
                break  # no row: the continuation lists it again
            result = fetched.get(gmail_id)
            if isinstance(result, dict) and result.get("threadId") in self.failed_threads:
                self.deferred += 1  # no row yet; the history id stays, so the next run lists it again
                continue
            if isinstance(result, GmailError) or result is None:
                if isinstance(result, GmailError) and result.status == 404:
                    outcomes[gmail_id] = self._final_row(gmail_id, "ignored", "deleted from Gmail before it was fetched")
                else:
                    outcomes[gmail_id] = self._failure(gmail_id, f"fetch failed: {result}")
                continue
            raw = result.pop("raw")  # the chunk keeps parsed messages only, not every raw copy
            if len(raw) >= BIG_MESSAGE_BYTES and not self.careful and not self._begin_attempt(
                    gmail_id, f"processing this {len(raw)}-byte message never finished (the poll stopped)"):
                outcomes[gmail_id] = "quarantined"
                continue
            try:
                parsed = parse_message(raw)
                del raw
                self._apply_size_limit(parsed)
                verdict = rules.classify(
                    parsed, own_addresses=self.own_addresses(), loop_marker=rules.loop_marker(self.settings.prefix),
                    ignore_senders=self.incoming.get("ignore_senders") or [],
                    ignore_subjects=self.incoming.get("ignore_subjects") or [])
                stored = self._store_attachments(parsed) if verdict.action == "accept" or verdict.automatic else []
                prepared.append(Prepared(gmail_id, result.get("threadId"), _iso_from_ms(result.get("internalDate")),
                                         parsed, verdict, stored,
                                         authenticate(parsed.headers, parsed.from_.email if parsed.from_ else "")))
            except Exception as e:  # noqa: BLE001 - one bad message must never stop the poll
                outcomes[gmail_id] = self._failure(gmail_id, f"{e.__class__.__name__}: {str(e)[:200]}")
                if outcomes[gmail_id] == "failed" and result.get("threadId"):
                    self.failed_threads.add(result["threadId"])
        if prepared:
            outcomes.update(self._commit(prepared))
        for outcome in outcomes.values():
            self.counts[outcome if outcome in self.counts else "failed"] += 1
        return outcomes

    def _apply_size_limit(self, parsed) -> None:
        limit = int(self.incoming.get("max_message_bytes") or 0)
        if not limit or parsed.size <= limit:
            return
        total = parsed.size
        for attachment in sorted(parsed.attachments, key=lambda a: a.size, reverse=True):
            if total <= limit:
                break
            if attachment.data:
                total -= attachment.size
                attachment.data = b""
                attachment.omitted = f"message is larger than the {limit}-byte limit"
        parsed.defects.append(f"message of {parsed.size} bytes exceeds the {limit}-byte limit; large attachments omitted")

    def _store_attachments(self, parsed) -> list[dict]:
        """Upload each distinct attachment once; a message with many parts uploads them in
        parallel (Cloud Storage calls are I/O-bound). Any failed upload fails the message."""
        blobs = self.services.blobs
        distinct = {a.sha256: a for a in parsed.attachments if a.data}
        if len(distinct) > 1:
            with concurrent.futures.ThreadPoolExecutor(min(UPLOAD_WORKERS, len(distinct))) as pool:
                futures = {sha: pool.submit(blobs.put, sha, a.data, a.content_type) for sha, a in distinct.items()}
                try:
                    keys = {sha: future.result() for sha, future in futures.items()}
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        else:
            keys = {sha: blobs.put(sha, a.data, a.content_type) for sha, a in distinct.items()}
        stored = [{
            "filename": a.filename, "content_type": a.content_type, "size": a.size, "content_id": a.content_id,
            "sha256": a.sha256, "inline": a.inline, "omitted": a.omitted,
            "storage_key": keys[a.sha256] if a.data else None,
        } for a in parsed.attachments]
        for attachment in parsed.attachments:
            attachment.data = b""  # stored; the chunk need not hold the bytes until its commit
        return stored

    def _begin_attempt(self, gmail_id: str, reason: str) -> bool:
        """A big message could exhaust the function's memory: then the process dies, writes
        nothing, and the same message would stop every later poll. So its attempt is counted
        before the risky work; after max_attempts unfinished tries it is quarantined unparsed.
        False when it is quarantined."""
        row = self.store.begin_attempt(self.name, gmail_id, self.settings.max_attempts, reason)
        if row.get("outcome") == "quarantined":
            log_event("ERROR", "message quarantined", mailbox=self.name, gmail_message_id=gmail_id,
                      attempts=row.get("attempts"), reason=row.get("reason", "")[:200])
            return False
        return True

    def _failure(self, gmail_id: str, reason: str) -> str:
        row = self.store.record_failure(self.name, gmail_id, reason, self.settings.max_attempts)
        log_event("WARNING", "message failed", mailbox=self.name, gmail_message_id=gmail_id,
                  outcome=row["outcome"], attempts=row.get("attempts"), reason=reason[:200])
        return row["outcome"]

    def _final_row(self, gmail_id: str, outcome: str, reason: str) -> str:
        try:
            self.store.put_inbound_row(self.name, gmail_id, {
                "mailbox": self.name, "gmail_message_id": gmail_id, "message_id": None,
                "outcome": outcome, "reason": reason, "ticket_id": None, "attempts": 1,
                "processed_at": models.now_iso()})
        except StoreUnavailable:
            return self._failure(gmail_id, reason)
        return outcome

    # -- the commit ------------------------------------------------------------------------
    def _commit(self, prepared: list[Prepared]) -> dict[str, str]:
        for attempt in range(4):
            try:
                return self._try_commit(prepared)
            except WriteConflict as e:
                log_event("WARNING", "chunk commit conflict; re-reading", mailbox=self.name,
                          attempt=attempt + 1, error=str(e))
                time.sleep(0.2 * (attempt + 1))
        raise MailbridgeError("chunk commit kept conflicting with another writer")

    def _try_commit(self, prepared: list[Prepared]) -> dict[str, str]:
        store = self.store
        settings = store.settings()
        tag_format = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
        existing = store.get_inbound_rows(self.name, [p.gmail_id for p in prepared])
        overlay: dict[str, dict] = {}
        versions: dict[str, object] = {}
        decisions = []
        new_count = 0
        outcomes: dict[str, str] = {}
        pending = [p for p in prepared if (existing.get(p.gmail_id) or {}).get("outcome") not in FINAL]
        # Gmail gives a new thread the id of its first message (docs/gmail-differences.md): a
        # message whose thread id is its own id starts a conversation, so its thread is not looked up.
        lookup = StoreLookup(store, overlay, [f"{self.name}:{p.thread_id}" for p in pending if p.thread_id],
                             [f"{self.name}:{p.thread_id}" for p in pending if p.thread_id == p.gmail_id])
        for p in prepared:
            row = existing.get(p.gmail_id)
            if row and row.get("outcome") in FINAL:
                outcomes[p.gmail_id] = row["outcome"]
                continue
            match = match_ticket(p.parsed, self.name, p.thread_id, lookup, tag_format=tag_format)
            verdict = p.verdict
            if verdict.action != "accept" and not (verdict.automatic and self.incoming.get("accept_auto_replies") and match.ticket_id):
                decisions.append((p, "ignored", verdict.reason, None, match))
                continue
            message = message_record(p, self.name)
            if match.ticket_id:
                ticket_id = match.ticket_id
                if ticket_id not in overlay:
                    overlay[ticket_id], versions[ticket_id] = store.ticket_for_update(ticket_id)
                self._update_ticket(overlay[ticket_id], p, message)
                decisions.append((p, "updated", f"{match.signal}: {match.note}"[:300], ticket_id, message))
            else:
                new_count += 1
                temp_id = f"new-{new_count}"
                overlay[temp_id] = self._new_ticket(p, message)
                decisions.append((p, "created", "new conversation", temp_id, message))
        numbers = store.reserve_ticket_numbers(new_count)
        renames = {}
        for index, number in enumerate(numbers, start=1):
            ticket = overlay.pop(f"new-{index}")
            ticket.update(id=str(number), number=number)
            overlay[str(number)] = ticket
            renames[f"new-{index}"] = str(number)
        now = models.now_iso()
        rows = []
        for seq, (p, outcome, reason, ticket_id, extra) in enumerate(decisions):
            ticket_id = renames.get(ticket_id, ticket_id)
            parsed = p.parsed
            row = {
                "mailbox": self.name, "gmail_message_id": p.gmail_id, "gmail_thread_id": p.thread_id,
                "message_id": parsed.message_id, "outcome": outcome, "reason": reason,
                "ticket_id": ticket_id, "attempts": models.attempt_number(existing.get(p.gmail_id)),
                "processed_at": now, "seq": seq, "subject": parsed.subject[:300],
                "from_email": parsed.from_.email if parsed.from_ else "", "defects": parsed.defects[:20],
                "authentication": p.authentication.record(),
            }
            if outcome != "ignored":
                extra["id"] = f"{self.name}~{p.gmail_id}"
                row["message"] = extra
            earlier = existing.get(p.gmail_id)
            rows.append((p.gmail_id, row, earlier["_update_time"] if earlier else None))
            outcomes[p.gmail_id] = outcome
        store.commit_inbound_chunk(self.name, rows, [(ticket_id, ticket, versions.get(ticket_id))
                                                     for ticket_id, ticket in overlay.items()])
        for p, outcome, _reason, ticket_id, _extra in decisions:
            if outcome == "created" and p.verdict.action == "accept":
                self.new_tickets.append((overlay[renames.get(ticket_id, ticket_id)], p))
        for p, outcome, reason, _t, _e in decisions:
            if outcome == "ignored":
                log_event("INFO", "message ignored", mailbox=self.name, gmail_message_id=p.gmail_id, reason=reason)
        return outcomes

    def _new_ticket(self, p: Prepared, message: dict) -> dict:
        parsed = p.parsed
        requester = message["from"]
        participants = self._participants(parsed, [])
        return {
            "id": None, "number": None, "subject": parsed.subject or "(no subject)", "status": "open",
            "mailbox": self.name, "requester": requester, "participants": participants,
            "created_at": message["received_at"] or models.now_iso(), "updated_at": models.now_iso(),
            "message_ids": [parsed.message_id], "thread_keys": [f"{self.name}:{p.thread_id}"] if p.thread_id else [],
            "message_count": 1, "ticket_type": None, "team": None, "client": None,
        }

    def _participants(self, parsed, current: list[str]) -> list[str]:
        own = self.own_addresses()
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

    def _update_ticket(self, ticket: dict, p: Prepared, message: dict) -> None:
        parsed = p.parsed
        if parsed.message_id not in ticket.setdefault("message_ids", []):
            ticket["message_ids"].append(parsed.message_id)
        if p.thread_id:
            key = f"{self.name}:{p.thread_id}"
            if key not in ticket.setdefault("thread_keys", []):
                ticket["thread_keys"].append(key)
        self._add_participants(ticket, p)
        if ticket.get("status") == "closed":
            ticket["status"] = "open"
            ticket["reopened_at"] = models.now_iso()
        ticket["updated_at"] = models.now_iso()
        ticket["message_count"] = int(ticket.get("message_count", 0)) + 1

    # -- after the commit -------------------------------------------------------------------
    def post_process(self, ids: list[str]) -> None:
        if not ids:
            return
        try:
            labels.apply_after_processing(self.services, self.mailbox, self.gmail, ids)
        except GmailError as e:
            # Mail stays where it is: nothing is lost; the admin sees why.
            self.store.update_sync(self.name, self.settings.instance, {"post_processing_error": str(e)[:300]})
            log_event("WARNING", "post-processing failed; mail left in place", mailbox=self.name, error=str(e)[:200])

    def acknowledge(self) -> None:
        """Queue the acknowledgements in the outbox and ask for one send task (docs/outbox.md)."""
        if not self.new_tickets:
            return
        queued = 0
        for ticket, p in self.new_tickets:
            try:
                queued += outgoing.acknowledge(self.services, self.mailbox, ticket, p.parsed, p.verdict)["status"] == "queued"
            except Exception as e:  # noqa: BLE001 - an acknowledgement never fails the poll
                log_event("WARNING", "acknowledgement failed", mailbox=self.name, ticket=ticket.get("id"),
                          error=f"{e.__class__.__name__}: {str(e)[:200]}")
        self.new_tickets = []
        if queued:
            try:
                outgoing.enqueue_send(self.services, self.name, "acknowledgements")
            except Exception as e:  # noqa: BLE001 - the records are durable; the next poll wakes the outbox
                self.store.update_mailbox(self.name, {"outbox_wake_at": time.time()})
                log_event("WARNING", "send task not queued", mailbox=self.name, error=f"{e.__class__.__name__}: {str(e)[:200]}")


class Heartbeat:
    """Holds a mailbox's short lease (settings.lease_ttl_s) while a sync works: renews it every
    third of its life from a daemon thread. If the process dies the renewals stop and the next
    task takes the mailbox over within one lease period; if a renewal finds the lease gone (this
    process stalled past it and another sync took over), `lost` turns true and the sync stops
    before its next message and writes no history id (docs/architecture.md, "Queue")."""

    def __init__(self, store: SyncRepository, mailbox: str, instance: str, owner: str, ttl_s: float):
        self.store, self.mailbox, self.instance, self.owner, self.ttl_s = store, mailbox, instance, owner, ttl_s
        self.lost = False
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{mailbox}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def beat(self) -> bool:
        """One renewal (the thread calls it; tests call it directly)."""
        try:
            ok = self.store.renew_lease(self.mailbox, self.instance, self.owner, self.ttl_s)
        except Exception as e:  # noqa: BLE001 - a transient store error: the next beat retries
            log_event("WARNING", "lease renewal failed", mailbox=self.mailbox, error=f"{e.__class__.__name__}")
            return True
        self.renewals += 1
        if not ok:
            self.lost = True
            log_event("WARNING", "lease lost to another sync; stopping", mailbox=self.mailbox)
        return ok

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            if not self.beat():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _idle(services: SyncPorts, name: str, mailbox: dict, credential: dict, state: dict) -> dict | None:
    """The scheduled tick's cheap check (docs/benchmarks.md, idle_mailbox_cost): with nothing
    pending in the sync state, one history.list (2 Gmail units) and no Firestore write decide
    that a mailbox is idle. Returns the summary of an idle mailbox, None when there is work."""
    if (not state.get("history_id") or state.get("backfill_since") or state.get("abandoned_runs")
            or state.get("backlog") or state.get("last_failed") != 0 or state.get("lease_owner")
            or (services.settings.pubsub_topic
                and time.time() - float(state.get("watch_renewed_at") or 0) >= watch.WATCH_RENEW_SECONDS)):
        return None
    gmail = services.gmail_for(mailbox, credential)
    try:
        for page_ids, _history_id, _last in gmail.history_ids(state["history_id"]):
            if page_ids:
                return None
    except GmailError:
        return None  # expired history and the like: the full sync handles it
    return {"mailbox": name, "outcome": "ok", "mode": "idle", "complete": True,
            "counts": {k: 0 for k in ("created", "updated", "ignored", "quarantined", "failed")},
            "quota_units": gmail.pacer.used, "retries": gmail.retries, "backlog": 0}


def sync_mailbox(services: SyncPorts, name: str, *, budget_s: float | None = None, backfill_since: float | None = None,
                 progress=None, lease_wait_s: float = 0.0, task: dict | None = None,
                 mailbox: dict | None = None) -> dict:
    """Synchronize one mailbox under its lease. `task`: the work-queue task that asked for it
    (services/push.py): a tick's task first checks cheaply whether the mailbox is idle, and a
    sync that runs out of budget with work left publishes a continuation task."""
    settings = services.settings
    store = services.store
    started = time.monotonic()
    budget = budget_s if budget_s is not None else settings.poll_time_budget_s
    summary = {"mailbox": name, "outcome": "ok"}
    mailbox = mailbox or store.get_mailbox(name)
    credential = mailboxes.own_credential(services, mailbox)
    if credential is None:
        return {**summary, "outcome": "skipped", "reason": f"no credential set for instance {settings.instance!r}"}
    if credential.get("status") != "connected":
        return {**summary, "outcome": "skipped", "reason": f"credential set is {credential.get('status', 'not_connected')}"}
    if not mailbox.get("incoming", {}).get("enabled", True):
        return {**summary, "outcome": "skipped", "reason": "incoming is disabled for this mailbox"}
    tick = (task or {}).get("tick")
    if tick and backfill_since is None:
        state = store.get_sync(name, settings.instance)
        if state.get("last_tick") == tick:
            return {**summary, "outcome": "skipped", "reason": TICK_DONE}
        try:
            idle = _idle(services, name, mailbox, credential, state)
        except TokenRevoked:
            idle = None  # the full path below records it
        if idle:
            idle["duration_s"] = round(time.monotonic() - started, 3)
            return idle
    owner = uuid.uuid4().hex
    # Short and renewed (Heartbeat); never longer than the run could need.
    ttl = min(settings.lease_ttl_s, budget + settings.lease_margin_s)
    # A push-triggered sync of a few messages usually finishes within seconds: wait briefly
    # for it rather than skip, so a scheduled poll does its own pass right after.
    wait_until = time.monotonic() + max(0.0, lease_wait_s)
    while not store.acquire_lease(name, settings.instance, owner, ttl):
        if time.monotonic() >= wait_until:
            return {**summary, "outcome": "skipped", "reason": "another poll or push of this mailbox is running"}
        time.sleep(0.5)
    heartbeat = Heartbeat(store, name, settings.instance, owner, ttl).start()
    sync = MailboxSync(services, mailbox, credential, started + budget, progress)
    sync.lease = heartbeat
    changes = {}
    try:
        result = sync.run(backfill_since)
        changes = result["changes"]
        changes["backlog"] = getattr(sync, "backlog", 0)
        changes["last_failed"] = sync.counts["failed"]
        if tick:
            changes["last_tick"] = tick
        summary.update(mode=result["mode"], complete=result["complete"])
    except TokenRevoked as e:
        services.google.mark_revoked(name, settings.instance, str(e))
        summary.update(outcome="error", error=str(e))
        changes = {"last_poll_at": models.now_iso(), "last_error": str(e), "last_failed": None}
    except Exception as e:  # noqa: BLE001 - one broken mailbox never holds up the others
        message = f"{e.__class__.__name__}: {str(e)[:300]}"
        summary.update(outcome="error", error=message)
        changes = {"last_poll_at": models.now_iso(), "last_error": message, "last_failed": None}
    finally:
        heartbeat.stop()
        if heartbeat.lost:
            # Another sync holds the mailbox now: its history id and status win.
            changes = {}
            summary.update(complete=False, lease="lost")
        store.release_lease(name, settings.instance, owner, changes)
    if sync.gmail is not None and sync.gmail.pacer.used > 2:
        # ingestion draws on the mailbox's quota bucket first; the outbox's sends use what is left
        try:
            outbox.record_ingestion(services, mailbox, sync.gmail.pacer.used)
        except Exception as e:  # noqa: BLE001 - pacing is advisory: never fail ingestion over it
            log_event("WARNING", "quota bucket not updated", mailbox=name, error=f"{e.__class__.__name__}: {str(e)[:200]}")
    # Acknowledgements are only queued here (after the lease is released): the outbox sends them.
    sync.acknowledge()
    summary.update(counts=sync.counts, duration_s=round(time.monotonic() - started, 3),
                   quota_units=sync.gmail.pacer.used if sync.gmail else 0,
                   retries=sync.gmail.retries if sync.gmail else 0, backlog=changes.get("backlog", 0))
    if summary.get("complete") is False and summary["outcome"] == "ok" and settings.work_topic and not heartbeat.lost:
        _continue(services, name, task)
        summary["continued"] = True
    log_event("INFO" if summary["outcome"] != "error" else "ERROR", "mailbox polled", **summary)
    return summary


def _continue(services: SyncPorts, name: str, task: dict | None) -> None:
    """Work left after the budget: a continuation task picks it up in a fresh invocation (a
    duplicate of it only costs a history.list)."""
    step = int((task or {}).get("continuation") or 0) + 1
    try:
        services.queue.publish("sync", name, {"continuation": str(step)})
    except Exception as e:  # noqa: BLE001 - the next tick or notification continues instead
        log_event("WARNING", "continuation not queued", mailbox=name, error=f"{e.__class__.__name__}: {str(e)[:200]}")


def _zero_totals() -> dict:
    return {k: 0 for k in ("created", "updated", "ignored", "quarantined", "failed")}


def retry_quarantined(services: SyncPorts, name: str, gmail_id: str) -> None:
    """An admin's Retry of a quarantined message: its row becomes failed with no attempts, and the
    sync state says failures are waiting, so the next run reads the failed rows (it skips that
    query when the last run left none)."""
    services.store.get_mailbox(name)
    services.store.retry_quarantined(name, gmail_id)
    services.store.update_sync(name, services.settings.instance, {"last_failed": None})


def poll(services: SyncPorts, mailbox: str | None = None, *, scheduled: bool = True, backfill_since: float | None = None,
         budget_s: float | None = None, progress=None, lease_wait_s: float = 10.0, tick: str | None = None,
         fanout: bool | None = None) -> dict:
    """What Cloud Scheduler triggers. With a work queue (settings.work_topic) the tick only
    enqueues one "sync" task per connected mailbox, each synced in its own `push` invocation
    (docs/architecture.md, "Queue"); one named mailbox, or no queue, is synced here, concurrently."""
    settings = services.settings
    switches = services.store.settings()
    if not switches.get("use_incoming_service", True):
        return {"status": "off", "reason": "the incoming service is switched off (use_incoming_service=false)", "mailboxes": []}
    if scheduled and not switches.get("use_scheduling_service", True):
        return {"status": "off", "reason": "the scheduling service is switched off (use_scheduling_service=false)", "mailboxes": []}
    if mailbox:
        boxes = [services.store.get_mailbox(mailbox)]
    else:
        boxes = [m for m in services.store.list_mailboxes()
                 if (mailboxes.own_credential(services, m) or {}).get("status") == "connected"]
    names = [m["name"] for m in boxes]
    if fanout is None:
        fanout = bool(settings.work_topic) and not mailbox and backfill_since is None
    if fanout:
        return _fan_out(services, boxes, tick or uuid.uuid4().hex)
    results = []
    if names:
        workers = max(1, min(settings.poll_concurrency, len(names)))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(sync_mailbox, services, n, budget_s=budget_s, backfill_since=backfill_since,
                                   progress=progress, lease_wait_s=lease_wait_s) for n in names]
            for future in futures:
                results.append(future.result())
    totals = {k: sum(r.get("counts", {}).get(k, 0) for r in results) for k in _zero_totals()}
    _wake_outboxes(services, boxes)
    return {"status": "ok", "instance": settings.instance, "mailboxes": results, "totals": totals}


def _fan_out(services: SyncPorts, boxes: list[dict], tick: str) -> dict:
    """One "sync" task per mailbox, all carrying the tick id: a redelivered or re-published task
    of the same tick is skipped once the tick is recorded (services/push.py)."""
    names = [m["name"] for m in boxes]
    if names:
        services.queue.publish_many("sync", [(n, {"tick": tick}) for n in names])
    log_event("INFO", "tick queued", tick=tick, mailboxes=len(names))
    _wake_outboxes(services, boxes)
    return {"status": "ok", "instance": services.settings.instance, "tick": tick, "queued": len(names),
            "mailboxes": [{"mailbox": n, "outcome": "queued", "reason": f"queued for sync (tick {tick})"}
                          for n in names], "totals": _zero_totals()}


def _wake_outboxes(services: SyncPorts, boxes: list[dict]) -> None:
    """Outboxes that asked to be woken (backoff passed, next day, mailbox reconnected) get a send
    task; the mailbox documents were read anyway, so an idle mailbox costs nothing more."""
    for box in boxes:
        try:
            outbox.kick_if_waiting(services, box)
        except Exception as e:  # noqa: BLE001 - outgoing trouble must not fail ingestion
            log_event("WARNING", "outbox wake failed", mailbox=box["name"], error=f"{e.__class__.__name__}: {str(e)[:200]}")
