"""What the Firestore repositories share: the client and the write count (Store sets both),
the keys of documents named by more than one aggregate, and the ticket documents that the inbound
commit and outgoing mail write too. One repository per aggregate, mixed into Store
(adapters/firestore/store.py, which lists the whole layout).
"""

from __future__ import annotations

from google.cloud import firestore


# Documents that several writers update at once (a mailbox's pacing document: its syncs and its
# send drainer; the acknowledgement counters of a burst) get more transaction attempts than the
# client's default 5: the emulator, and Firestore under contention, abort the losers.
CONTENDED_ATTEMPTS = 20


def inbound_key(mailbox: str, gmail_id: str) -> str:
    return f"{mailbox}~{gmail_id}"


def sync_key(mailbox: str, instance: str) -> str:
    return f"{mailbox}~{instance}"


class FirestoreRepository:
    db: firestore.Client
    write_count: int  # documents written by this process (benchmarks read it)

    def ticket_ref(self, ticket_id: str):
        return self.db.collection("tickets").document(str(ticket_id))
