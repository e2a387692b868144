"""One run over one mailbox (docs/architecture.md, "The path of a poll"): find new mail
(listing.py), then chunk by chunk fetch (fetch.py), decide (decide.py, match.py) and commit
(commit.py), within the time budget and while the lease holds. The hand-offs after the commit
are the caller's (mailbox.py, handoffs.py): a run says what they need in `processed` and
`new_tickets`, and touches only what SyncPorts names."""

from __future__ import annotations

from datetime import datetime, timezone
import hashlib
import time

from mailbridge.domain import events as events_of
from mailbridge.domain import models, workspace
from mailbridge.errors import DocumentTooLarge, GmailError, InvalidInput, StoreUnavailable
from mailbridge.logs import log_event
from mailbridge.services import events
from mailbridge.services.ports import SyncPorts
from mailbridge.services.sync import commit, fetch, listing, spam
from mailbridge.services.sync.decide import Decider, Prepared

FINAL = models.FINAL_INBOUND_OUTCOMES
CHUNK = 50
PUBLISH_EVERY_S = 1.0  # the most a chunk's events wait for the next publish (docs/events.md)
RELIST_RESERVE_S = 5.0  # a run lists the history again only with this much of its budget left


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
        self.attempts = fetch.Attempts(self.store, self.name, self.settings.max_attempts)
        self.decider = Decider(services, self.incoming)
        self.gmail = None
        # For the hand-offs after the commit: the ids whose rows are final (labels after
        # processing), and the tickets opened by accepted mail (acknowledgements).
        self.processed: list[str] = []
        self.new_tickets: list[tuple[dict, Prepared]] = []
        # Gmail threads with a message that failed in this run: their later messages wait for the
        # next run, so a reply never overtakes the message it answers (same tickets as a clean run).
        self.failed_threads: set[str] = set()
        self.deferred = 0
        self.backlog = 0
        self.backfill_done = False
        self.listing = None  # listing.NewMail of this run
        # Chunks publish their events at most every PUBLISH_EVERY_S (one look-up, one read of the
        # rows, one publish, one mark each): a careful run commits one message per chunk.
        self.published_at = 0.0
        self.unpublished = False  # a chunk's events wait for the next publish or the run's end
        # The event documents committed since the last publish, while each is only about tickets
        # its commit created (published as they are); None once one is not (then looked up).
        self.fresh_events: list[tuple[str, dict]] | None = []
        self.fresh_rows: dict[str, dict] = {}  # the rows those chunks wrote (commit.Committed.rows)
        self.sync_state: dict = {}  # the mailbox's sync state as this run found it
        # After a poll of this mailbox died without a word (out of memory, killed), the next runs
        # go one message at a time and count each attempt first, until one completes: a message
        # that kills the process is then quarantined after max_attempts instead of blocking
        # the mailbox for ever.
        self.careful = False
        self.out_of_time = False  # the budget ran out mid-chunk: the rest waits for a continuation
        self.lease = None  # the Heartbeat holding this mailbox; lost → stop before the next message
        # Spam (spam.py): messages fetched while judged, the ones to move out of Spam once their
        # rows are final, the ones left there (counted and listed), and an admin's choices
        self.prefetched: dict[str, dict] = {}
        self.rescued: list[str] = []
        self.spam_left: list[dict] = []
        self.taken_from_spam: list[str] = []
        # An admin's retry of a message quarantined because it could not be stored: read from
        # its raw copy in Cloud Storage (gmail id -> the row's raw fields), not from Gmail
        self.from_copy: dict[str, dict] = {}
        self.aliases: set[str] | None = None  # read on first need (_aliases)
        self.passes = 0  # listings ingested under this run's lease (run)
        self.after_pass = None  # the caller's hand-offs between passes (mailbox.py)
        self.prelisted = None  # (start history id, listing.NewMail) of the idle check (mailbox.py)
        self.leased_state: dict | None = None  # the sync state as the lease was taken (mailbox.py)
        self.rows_read: dict[str, dict] | None = None  # the pass's inbound rows as _todo read them

    # -- the run -----------------------------------------------------------------------
    def run(self, backfill_since: float | None = None) -> dict:
        """The passes of this run under one lease: after a pass that completed, the history is
        listed again and the run goes on while new mail keeps coming and time is left, so a stream
        of mail (and its notifications) makes one run, one lease taken and released. The history
        id written is that of the last pass whose every message has a row."""
        started = time.time()
        self._begin()
        found = self._prelisting(backfill_since) or listing.find_new_mail(
            self.gmail, self.sync_state, self.name, backfill_since)
        self.listing = found  # which new tickets come from new mail (acknowledgements)
        mode, complete, history_id = found.mode, True, found.history_id
        if found.mode != "first":
            self.rescued.extend(self.taken_from_spam)
            complete = self._pass(found, self.taken_from_spam)
            self.backfill_done = complete and found.ends_backfill
            history_id = found.history_id if complete else None
            while complete and self._may_list_again():
                try:
                    found = self._list_again(history_id)
                except GmailError as e:  # what is committed stands; the next run lists again
                    log_event("WARNING", "history not listed again", mailbox=self.name, error=str(e)[:200])
                    break
                if not (found.ids or found.spam_ids):
                    history_id = found.history_id  # nothing new since: the next run starts there
                    break
                self.listing = found
                complete = self._pass(found)
                history_id = found.history_id if complete else history_id
        return {"mailbox": self.name, "mode": mode, "complete": complete,
                "changes": self._changes(complete, history_id, started)}

    def _prelisting(self, backfill_since: float | None) -> listing.NewMail | None:
        """The listing the idle check made just before the lease (mailbox.py), when it started
        where this run starts: new mail listed since is taken by the next pass."""
        if self.prelisted is None or backfill_since is not None or self.sync_state.get("backfill_since"):
            return None
        start, found = self.prelisted
        return found if start == self.sync_state.get("history_id") else None

    def _pass(self, found: listing.NewMail, taken_from_spam: list[str] = ()) -> bool:
        """Ingest what one listing found; False when the budget or the lease stopped it."""
        ids = found.ids + spam.judge(self, [i for i in found.spam_ids if i not in found.ids]) \
            if found.spam_ids else list(found.ids)
        self.passes += 1
        return self.process(ids + [i for i in taken_from_spam if i not in ids])

    def _may_list_again(self) -> bool:
        """Another pass only with time left, the lease held, and not in careful mode (a run after
        one that died goes message by message and ends as soon as it completes)."""
        return (not self.careful and not (self.lease and self.lease.lost)
                and time.monotonic() < self.deadline - RELIST_RESERVE_S)

    def _list_again(self, history_id) -> listing.NewMail:
        """The history since this run's last listing (2 Gmail units), after the pass's hand-offs:
        mail that arrived while the pass worked, its notifications waiting for this lease."""
        if self.after_pass:
            self.after_pass()
        self.sync_state = {**self.sync_state, "history_id": str(history_id), "backfill_since": None,
                           "last_failed": 0}  # this run's failed rows wait for the next run
        return listing.find_new_mail(self.gmail, self.sync_state, self.name)

    def _begin(self) -> None:
        # The state the lease's write read (sync/mailbox.py), else read now.
        self.sync_state = self.leased_state or self.store.get_sync(self.name, self.settings.instance)
        self.careful = bool(self.sync_state.get("abandoned_runs"))
        if self.careful:
            log_event("WARNING", "an earlier poll died; ingesting one message at a time", mailbox=self.name,
                      abandoned_runs=self.sync_state.get("abandoned_runs"))
        self.gmail = self.services.gmail_for(self.mailbox, self.credential)

    def _changes(self, complete: bool, history_id, started: float) -> dict:
        """The sync state after this run, written as the lease is released: the new history id
        only once every message it covers has a row (`history_id` None: no pass completed)."""
        changes = {"last_poll_at": models.now_iso(), "last_error": None,
                   **spam.state_changes(self.sync_state, self.spam_left, self.taken_from_spam)}
        if history_id is not None:
            changes.update(history_id=str(history_id), last_success_at=datetime.fromtimestamp(
                started, timezone.utc).isoformat(timespec="seconds"))
            if self.backfill_done:
                changes["backfill_since"] = None
            if self.careful:
                changes["abandoned_runs"] = 0
        if complete:
            changes["backlog"] = 0
        return changes

    def process(self, ids: list[str]) -> bool:
        """Ingest `ids`; return False when the time budget stopped us before the end."""
        todo = self._todo(ids)
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
            self.processed.extend(gid for gid, outcome in outcomes.items() if outcome in FINAL[:3])
            done += len(chunk)
            self.backlog = len(todo) - done
            if self.progress:
                self.progress(done, len(todo))
        return complete and not self.deferred and not self.out_of_time

    def _todo(self, ids: list[str]) -> list[str]:
        """The ids without a final row, and the failed rows to retry; ids whose rows are final
        already (a run that stopped before its labels) go to `processed`."""
        ids = list(dict.fromkeys(ids))
        # Failed rows are retried by every run. The sync state says how many the last run left
        # (unknown after a run that ended in an error, and a run that died makes this one
        # careful), so a mailbox without failures skips the query, which reads the inbound log.
        if self.careful or self.sync_state.get("last_failed") != 0:
            ids += [i for i in self.store.failed_rows(self.name) if i not in ids]
        existing = self.store.get_inbound_rows(self.name, ids)
        # A careful run writes each row's attempt before ingesting it (fetch.count_attempts_first),
        # so only an ordinary run's commits start from this read (commit.commit_chunk, rows_read).
        self.rows_read = None if self.careful else existing
        self.processed.extend(i for i in ids if existing.get(i, {}).get("outcome") in FINAL[:3]
                              and i not in self.processed)
        todo = [i for i in ids if existing.get(i, {}).get("outcome") not in FINAL]
        for gmail_id in todo:
            self._read_stored_copy(gmail_id, existing.get(gmail_id) or {})
        return todo

    def _read_stored_copy(self, gmail_id: str, row: dict) -> None:
        """A failed row that keeps its raw message in Cloud Storage (quarantined because it could
        not be stored, then retried) is ingested from that copy, so a message since deleted or
        moved in Gmail can still be retried; without a readable copy it is read from Gmail. The
        row stays the exactly-once guard either way (docs/reliability.md)."""
        sha256 = row.get("raw_sha256")
        if row.get("outcome") != "failed" or not isinstance(sha256, str) or not sha256 or gmail_id in self.prefetched:
            return
        try:
            raw = self.services.blobs.get(sha256)
        except Exception as e:  # noqa: BLE001 - no copy: Gmail's message, as before the copy was kept
            log_event("WARNING", "stored copy not read; retrying from Gmail", mailbox=self.name,
                      gmail_message_id=gmail_id, error=e.__class__.__name__)
            return
        self.prefetched[gmail_id] = {"raw": raw, "threadId": row.get("gmail_thread_id"),
                                     "internalDate": row.get("gmail_internal_date")}
        self.from_copy[gmail_id] = {"raw_sha256": sha256, "gmail_thread_id": row.get("gmail_thread_id"),
                                    "gmail_internal_date": row.get("gmail_internal_date")}

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

    # -- one chunk: fetch, decide, commit --------------------------------------------------
    def ingest_chunk(self, chunk: list[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        if self.careful:
            chunk = fetch.count_attempts_first(self.attempts, chunk, outcomes)
        ready = {gmail_id: self.prefetched.pop(gmail_id) for gmail_id in chunk if gmail_id in self.prefetched}
        rest = [gmail_id for gmail_id in chunk if gmail_id not in ready]
        fetched = self.gmail.get_raw_many(rest) if rest else {}
        prepared: list[Prepared] = []
        for gmail_id in chunk:
            if self._must_stop():
                break  # no row: the continuation lists it again
            result = ready[gmail_id] if gmail_id in ready else fetched.get(gmail_id)
            if isinstance(result, dict) and result.get("threadId") in self.failed_threads:
                self.deferred += 1  # no row yet; the history id stays, so the next run lists it again
                continue
            message = fetch.take(gmail_id, result, self.attempts, outcomes, careful=self.careful)
            if message is not None:
                self._prepare(message, prepared, outcomes)
        if prepared:
            self._commit(prepared, outcomes)
            self.unpublished = True
            # A careful run commits one message per chunk: its chunks publish at most once a
            # second; any other chunk publishes at once (event lag, docs/benchmarks.md).
            if not self.careful or time.monotonic() - self.published_at >= PUBLISH_EVERY_S:
                self.publish_events()
        for outcome in outcomes.values():
            self.counts[outcome if outcome in self.counts else "failed"] += 1
        return outcomes

    def publish_events(self, look_up: bool = False) -> None:
        """The ticket events committed so far and still waiting (docs/events.md): the chunks' own
        documents as they are when each only concerns tickets it created (nothing older can wait
        for them), else every waiting one, looked up (`look_up`: events written outside a chunk)."""
        if look_up or self.fresh_events is None:
            events.after_commit(self.services, self.name)
        else:
            events.publish_fresh(self.services, self.name, self.fresh_events, self.fresh_rows)
        self.published_at, self.unpublished, self.fresh_events, self.fresh_rows = time.monotonic(), False, [], {}

    def _commit(self, prepared: list[Prepared], outcomes: dict[str, str]) -> None:
        """The chunk in one commit; when that fails for any reason but an unavailable store, once
        more message by message, so a message that cannot be stored (over Firestore's 1 MiB even
        with its bodies in Cloud Storage) never holds up the others (docs/reliability.md). When
        no message at all can be committed and the reason is not the mail's (not an InvalidInput),
        the store is at fault: the run ends in that error and the next one retries them all."""
        try:
            batches = [self._commit_one_batch(prepared)]
        except StoreUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - the next step tells the messages apart
            log_event("WARNING", "chunk commit failed; committing message by message", mailbox=self.name,
                      messages=len(prepared), error=f"{e.__class__.__name__}: {str(e)[:200]}")
            batches, unknown = [], []
            for p in prepared:
                try:
                    batches.append(self._commit_one_batch([p]))
                except StoreUnavailable:
                    raise
                except InvalidInput as error:  # the mail itself cannot be stored
                    outcomes[p.gmail_id] = self._unstorable(p, error)
                except Exception as error:  # noqa: BLE001 - judged below
                    unknown.append((p, error))
            if unknown and not batches:
                raise unknown[0][1]
            for p, error in unknown:
                outcomes[p.gmail_id] = self._unstorable(p, error)
        for committed in batches:
            outcomes.update(committed.outcomes)
            self.new_tickets.extend(committed.new_tickets)
            if committed.events is not None and self.fresh_events is not None:
                self.fresh_rows.update(committed.rows)
                self.fresh_events = self.fresh_events + [committed.events] if events_of.fresh_only(
                    committed.events[1]) else None

    def _commit_one_batch(self, prepared: list[Prepared]) -> commit.Committed:
        return commit.commit_chunk(self.store, self.name, prepared, incoming=self.incoming,
                                   own_addresses=self.decider.own_addresses(), address=self.mailbox.get("address", ""),
                                   aliases=self._aliases(prepared), rows_read=self._rows_read(prepared))

    def _rows_read(self, prepared: list[Prepared]) -> dict[str, dict] | None:
        """The pass's read of these messages' rows, unless this run wrote one of them since (a big
        message's attempt counted first): then the commit reads them again."""
        if self.rows_read is None or any(p.gmail_id in self.attempts.written for p in prepared):
            return None
        return self.rows_read

    def _aliases(self, prepared: list[Prepared]) -> set[str]:
        """The mailbox's verified send-as aliases (settings.sendAs.list, 1 unit, once a run), asked
        only when a message was written to an address other than the mailbox's own."""
        if self.aliases is not None:
            return self.aliases
        own = {self.mailbox.get("address", "").lower()}
        if not any(set(workspace.addresses_written_to(p.parsed.headers, p.parsed.to, p.parsed.cc)) - own
                   for p in prepared):
            return set()
        try:
            self.aliases = workspace.verified_aliases(self.gmail.send_as_list(), self.mailbox.get("address", ""))
        except GmailError as e:  # answered from the mailbox's address, as before aliases
            log_event("WARNING", "send-as aliases not read", mailbox=self.name, error=str(e)[:200])
            self.aliases = set()
        return self.aliases

    def _unstorable(self, p: Prepared, error: Exception) -> str:
        """A message whose own commit failed: quarantined at once with the reason when it can
        never fit a document (its raw copy kept in Cloud Storage, `raw_sha256` on the row), else a
        failed attempt like any other (quarantined after max_attempts)."""
        reason = f"could not be stored: {error.__class__.__name__}: {str(error)[:200]}"
        if not isinstance(error, DocumentTooLarge):
            outcome = self.attempts.failure(p.gmail_id, reason)
            if outcome == "failed" and p.thread_id:
                self.failed_threads.add(p.thread_id)
            return outcome
        log_event("ERROR", "message quarantined", mailbox=self.name, gmail_message_id=p.gmail_id, reason=reason)
        return self.attempts.final_row(p.gmail_id, "quarantined", reason, **self._keep_raw(p.gmail_id))

    def _keep_raw(self, gmail_id: str) -> dict:
        """The raw message kept in Cloud Storage for a person to look at and for a retry, with
        the Gmail thread and date a retry from it needs: the row's fields (raw_sha256 None if not
        fetched). A message retried from its copy keeps that copy."""
        if gmail_id in self.from_copy:
            return self.from_copy[gmail_id]
        try:
            result = self.gmail.get_raw_many([gmail_id]).get(gmail_id)
            raw = result["raw"] if isinstance(result, dict) else None
            if raw is None:
                return {"raw_sha256": None}
            sha256 = hashlib.sha256(raw).hexdigest()
            self.services.blobs.put(sha256, raw, "message/rfc822")
            return {"raw_sha256": sha256, "gmail_thread_id": result.get("threadId"),
                    "gmail_internal_date": result.get("internalDate")}
        except Exception as e:  # noqa: BLE001 - the quarantine stands without the copy
            log_event("WARNING", "raw copy of a quarantined message not kept", mailbox=self.name,
                      gmail_message_id=gmail_id, error=e.__class__.__name__)
            return {"raw_sha256": None}

    def _prepare(self, message: fetch.Fetched, prepared: list[Prepared], outcomes: dict[str, str]) -> None:
        try:
            prepared.append(self.decider.prepare(message))
        except Exception as e:  # noqa: BLE001 - one bad message must never stop the poll
            outcomes[message.gmail_id] = self.attempts.failure(message.gmail_id, f"{e.__class__.__name__}: {str(e)[:200]}")
            if outcomes[message.gmail_id] == "failed" and message.thread_id:
                self.failed_threads.add(message.thread_id)


def retry_quarantined(services: SyncPorts, name: str, gmail_id: str) -> None:
    """An admin's Retry of a quarantined message: its row becomes failed with no attempts, and the
    sync state says failures are waiting, so the next run reads the failed rows (it skips that
    query when the last run left none)."""
    services.store.get_mailbox(name)
    services.store.retry_quarantined(name, gmail_id)
    services.store.update_sync(name, services.settings.instance, {"last_failed": None})
