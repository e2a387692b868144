"""Retention (docs/privacy.md): a closed ticket's documents carry `expires_at`, set when it is
closed and cleared when it is reopened or held, and Firestore's TTL policies delete them
(terraform/firestore.tf); no sweeper. Deleting a ticket's data at once is one call here, which
the erasure, the mailbox purge and the tests use."""

from __future__ import annotations

from mailbridge.domain import models, privacy
from mailbridge.errors import NotFound
from mailbridge.logs import log_event
from mailbridge.services.ports import Blobs, PrivacyRepository, RetentionPorts

EXPIRING = ("tickets", "inbound", "outbound")  # a ticket's documents that its expiry reaches


def apply(services: RetentionPorts, ticket_id: str) -> dict:
    """Set (or clear) the expiry of a ticket and of its rows and records from its status, its hold
    and the retention in force (the mailbox's own, else the global). Returns {"expires_at"}."""
    store = services.store
    ticket = store.get_ticket(ticket_id)
    try:
        mailbox = store.get_mailbox(ticket.get("mailbox") or "")
    except NotFound:
        mailbox = None  # a removed mailbox: the global retention applies
    days = privacy.closed_ticket_days(store.settings(), mailbox)
    when = privacy.expiry(ticket, days)
    if when is None and ticket.get("expires_at") is None:
        return {"expires_at": None}  # nothing expires and nothing did: no reads, no writes
    refs = [d for d in store.ticket_documents(ticket["id"]) if d["collection"] in EXPIRING
            and (d["data"].get("expires_at") is not None or when is not None)]
    if refs:
        store.set_expiry(refs, when)
    return {"expires_at": when.isoformat() if when else None}


def clear_expiry(store: PrivacyRepository, ticket_id: str) -> int:
    """A ticket reopened by new mail: its rows and records no longer expire."""
    refs = [d for d in store.ticket_documents(ticket_id) if d["collection"] in EXPIRING and d["data"].get("expires_at")]
    return store.set_expiry(refs, None) if refs else 0


def closed_fields(status: str) -> dict:
    """The fields a status change adds: when it was closed (the expiry counts from it)."""
    return {"closed_at": models.now_iso()} if status == "closed" else {"closed_at": None}


def hold(services: RetentionPorts, ticket_id: str, held: bool) -> dict:
    """Legal hold on (or off): a held ticket never expires, whatever the retention."""
    ticket = services.store.get_ticket(ticket_id)
    services.store.update_ticket(ticket["id"], {"legal_hold": bool(held), "updated_at": models.now_iso()})
    return {"ticket": ticket["id"], "legal_hold": bool(held), **apply(services, ticket["id"])}


def delete_blobs(services: RetentionPorts, shas: set[str]) -> int:
    """Delete the blobs no remaining row or record points to (blobs are shared by content)."""
    if not shas:
        return 0
    keep = services.store.blobs_in_use(sorted(shas), [])
    return sum(_delete_blob(services.blobs, sha) for sha in sorted(shas - keep))


def _delete_blob(blobs: Blobs, sha: str) -> bool:
    try:
        return blobs.delete(sha)
    except Exception as e:  # noqa: BLE001 - one blob must not stop the deletion of the rest
        log_event("WARNING", "blob not deleted", sha256=sha[:12], error=e.__class__.__name__)
        return False


def without_tickets(documents: list[dict], ticket_ids: set[str]) -> tuple[list[dict], list[dict]]:
    """(puts, deletes) for `documents` of these tickets: the tickets and their rows and records
    deleted; an event document keeps the other tickets' events, or goes when none is left."""
    puts, deletes = [], []
    for d in documents:
        if d["collection"] != "events":
            deletes.append(d)
            continue
        events = [e for e in d["data"].get("events") or [] if str(e.get("subject")) not in ticket_ids]
        if not events:
            deletes.append(d)
        elif len(events) != len(d["data"].get("events") or []):
            subjects = sorted({str(e.get("subject")) for e in events})
            puts.append({**d, "data": {**d["data"], "events": events, "subjects": subjects, "count": len(events)}})
    return puts, deletes


def delete_ticket_data(services: RetentionPorts, ticket_id: str) -> dict:
    """Delete a ticket now, with its messages (inbound rows), outbound records, events and the
    blobs only it used: what the TTL policies do after expiry, at once. NotFound for no ticket."""
    ticket = services.store.get_ticket(ticket_id)
    documents = services.store.ticket_documents(ticket["id"])
    puts, deletes = without_tickets(documents, {str(ticket["id"])})
    services.store.write_documents(puts, deletes)
    shas = set().union(*(privacy.blob_refs(d["data"]) for d in documents)) if documents else set()
    counts = {"ticket": ticket["id"], "documents": len(deletes), "blobs": delete_blobs(services, shas)}
    log_event("INFO", "ticket data deleted", ticket=ticket["id"], documents=len(deletes), blobs=counts["blobs"])
    return counts
