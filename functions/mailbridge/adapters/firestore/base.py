"""What the Firestore repositories share: the client and the write count (Store sets both),
the keys of documents named by more than one aggregate, the ticket documents that the inbound
commit and outgoing mail write too, the event documents every change writes with it, and the
one place where a document over Firestore's size limit becomes DocumentTooLarge. One repository
per aggregate, mixed into Store (adapters/firestore/store.py, which lists the whole layout).
"""

from __future__ import annotations

import functools

from google.api_core import exceptions as gexc
from google.cloud import firestore

from mailbridge.adapters.firestore import accounting
from mailbridge.errors import DocumentTooLarge, WriteConflict

# Documents that several writers update at once (a mailbox's pacing document: its syncs and its
# send drainer; the acknowledgement counters of a burst) get more transaction attempts than the
# client's default 5: the emulator, and Firestore under contention, abort the losers.
CONTENDED_ATTEMPTS = 20


# How Firestore (and its emulator) words a refused size: a document over 1 MiB, a value over
# 1 MiB - 89 bytes (the in-memory store refuses the same: tests/memory/store/base.py).
TOO_LARGE = ("maximum entity size", "exceeds the maximum allowed size", "is longer than 1048487 bytes")


def watch_commits(client) -> None:
    """Every write of every repository (a set, a batch, a transaction) reaches Firestore through
    the client's one Commit call. There a refused size becomes DocumentTooLarge, whichever
    repository wrote the document, instead of the library's generic InvalidArgument; each
    committed document is recorded and each contention abort counted (accounting.py)."""
    api = client._firestore_api
    commit = api.commit
    if getattr(commit, "watches_commits", False):
        return  # a second Store over the same client

    @functools.wraps(commit)
    def checked_commit(*args, **kwargs):
        request = kwargs.get("request") or (args[0] if args else None) or {}
        try:
            response = commit(*args, **kwargs)
        except gexc.Aborted:
            accounting.WRITES.aborted()  # the transaction is retried by the client
            raise
        except gexc.InvalidArgument as e:
            if any(words in str(e) for words in TOO_LARGE):
                raise DocumentTooLarge(f"Firestore refused a document over its size limit ({e.message})") from e
            raise
        if accounting.WRITES.log_path and isinstance(request, dict):  # tests and the bench only
            accounting.WRITES.record(accounting.documents_of(request))
        return response

    checked_commit.watches_commits = True
    api.commit = checked_commit


def inbound_key(mailbox: str, gmail_id: str) -> str:
    return f"{mailbox}~{gmail_id}"


def sync_key(mailbox: str, instance: str) -> str:
    return f"{mailbox}~{instance}"


class FirestoreRepository:
    write_count: int  # documents written by this process (benchmarks read it)

    @property
    def db(self) -> firestore.Client:
        return self._db

    @db.setter
    def db(self, client: firestore.Client) -> None:
        watch_commits(client)
        self._db = client

    def ticket_ref(self, ticket_id: str):
        return self.db.collection("tickets").document(str(ticket_id))

    def run_contended(self, run, what: str):
        """Run a @firestore.transactional `run(tx)` answering (result, documents written) with
        CONTENDED_ATTEMPTS; WriteConflict when every attempt lost; returns the result."""
        try:
            result, writes = run(self.db.transaction(max_attempts=CONTENDED_ATTEMPTS))
        except ValueError as e:  # the client's "Failed to commit transaction in N attempts"
            raise WriteConflict(f"{what}: {e}") from None
        self.write_count += writes
        return result

    def events_ref(self, document_id: str):
        """An event document (adapters/firestore/events.py), written in the commit of its change."""
        return self.db.collection("events").document(document_id)
