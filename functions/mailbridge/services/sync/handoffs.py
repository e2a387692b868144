"""A sync's last step, after the commit (docs/architecture.md, "The path of a poll"): the
hand-offs to other use cases, each a named step with its own port (services/ports.py: what it
needs of the use case it hands to), so SyncPorts names only what the sync itself reads and
writes. mailbox.py calls them: the labels after processing and the Gmail watch under the lease,
the quota bucket and the acknowledgements after it; the poll (fanout.py) wakes the outboxes."""

from __future__ import annotations

import time

from mailbridge.domain import models
from mailbridge.errors import GmailError
from mailbridge.logs import log_event
from mailbridge.services import labels, outbox, outgoing
from mailbridge.services.ports import AcknowledgementPorts, LabelsPorts, PacingPorts, SendTaskPorts
from mailbridge.services.sync.decide import Prepared


def _error(e: Exception) -> str:
    return f"{e.__class__.__name__}: {str(e)[:200]}"


def label_processed(services: LabelsPorts, mailbox: dict, gmail, ids: list[str]) -> None:
    """The labels processing adds and removes (services/labels.py), on the messages whose rows
    are final."""
    if not ids:
        return
    try:
        labels.apply_after_processing(services, mailbox, gmail, ids)
    except GmailError as e:
        # Mail stays where it is: nothing is lost; the admin sees why.
        services.store.update_sync(mailbox["name"], services.settings.instance, {"post_processing_error": str(e)[:300]})
        log_event("WARNING", "post-processing failed; mail left in place", mailbox=mailbox["name"], error=str(e)[:200])


def record_ingestion(services: PacingPorts, mailbox: dict, units: int, new_tickets: list = ()) -> None:
    """Ingestion draws on the mailbox's quota bucket first; the outbox's sends use what is left
    (docs/outbox.md). A run that only asked for its history (2 units) leaves the bucket alone, and
    so does a run after which no send can follow soon: nothing waits in the outbox (the mailbox
    as the task read it) and no new ticket is acknowledged (docs/outbox.md, "One quota budget")."""
    if units <= 2 or not sends_may_follow(mailbox, new_tickets):
        return
    try:
        outbox.record_ingestion(services, mailbox, units)
    except Exception as e:  # noqa: BLE001 - pacing is advisory: never fail ingestion over it
        log_event("WARNING", "quota bucket not updated", mailbox=mailbox["name"], error=_error(e))


def sends_may_follow(mailbox: dict, new_tickets: list) -> bool:
    """Records wait in the outbox (its wake time is set), or new tickets may be acknowledged."""
    if mailbox.get("outbox_wake_at") is not None:
        return True
    return bool(new_tickets) and bool(models.outgoing_settings(mailbox).get("acknowledge_new", True))


def queue_acknowledgements(services: AcknowledgementPorts, mailbox: dict, new_tickets: list[tuple[dict, Prepared]],
                           found=None) -> None:
    """Queue the acknowledgements of the new tickets in the outbox and ask for one send task
    (docs/outbox.md): they are only queued here; the outbox sends them. `new_tickets`: (ticket,
    the message that opened it) pairs; `found`: the run's listing.NewMail (a backfill's or a full
    re-sync's mail is not acknowledged)."""
    queued = 0
    for ticket, prepared in new_tickets:
        mode = "incremental" if found is None else found.mode
        if found is not None and mode == "backfill" and prepared.gmail_id not in found.backfill_ids:
            mode = "incremental"  # new mail of the run that also took the connection's backfill
        try:
            queued += outgoing.acknowledge(services, mailbox, ticket, prepared.parsed, prepared.verdict,
                                           prepared.gmail_id, sync_mode=mode,
                                           received_at=prepared.internal_date)["status"] == "queued"
        except Exception as e:  # noqa: BLE001 - an acknowledgement never fails the poll
            log_event("WARNING", "acknowledgement failed", mailbox=mailbox["name"], ticket=ticket.get("id"),
                      error=_error(e))
    if not queued:
        return
    # The tick's safety net for these records (outgoing.enqueue_send) is written once a run: a
    # wake time already pending and no later than a new one covers them too.
    pending = mailbox.get("outbox_wake_at")
    covered = pending is not None and float(pending) <= time.time() + outgoing.WAKE_FALLBACK_SECONDS
    try:
        outgoing.enqueue_send(services, mailbox["name"], "acknowledgements", new_records=not covered)
        if not covered:
            mailbox["outbox_wake_at"] = time.time() + outgoing.WAKE_FALLBACK_SECONDS
    except Exception as e:  # noqa: BLE001 - the records are durable; the next poll wakes the outbox
        services.store.update_mailbox(mailbox["name"], {"outbox_wake_at": time.time()})
        log_event("WARNING", "send task not queued", mailbox=mailbox["name"], error=_error(e))


def wake_outboxes(services: SendTaskPorts, boxes: list[dict]) -> None:
    """Outboxes that asked to be woken (backoff passed, next day, mailbox reconnected) get a send
    task; the mailbox documents were read anyway, so an idle mailbox costs nothing more."""
    for box in boxes:
        try:
            outbox.kick_if_waiting(services, box)
        except Exception as e:  # noqa: BLE001 - outgoing trouble must not fail ingestion
            log_event("WARNING", "outbox wake failed", mailbox=box["name"], error=_error(e))
