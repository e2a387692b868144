"""Gmail push: a notification names a mailbox; run the same incremental sync as `poll`
(sharing its lease). The HTTP edge (mailbridge.http.push) decodes the Pub/Sub envelope and
turns the Outcome into an acknowledgement: 2xx for bad or unknown notifications (never retried
forever), 429/5xx for transient failures so Pub/Sub redelivers.
"""

from __future__ import annotations

import time

from mailbridge.services import mailboxes, sync

# A notification that finds the mailbox being synchronized waits for that run (well inside the
# push subscription's ack deadline) before asking Pub/Sub to redeliver.
LEASE_WAIT_SECONDS = 15.0
LEASE_POLL_SECONDS = 0.2


class Outcome:
    """What to answer Pub/Sub: 2xx acknowledges, 429/5xx asks for redelivery."""

    def __init__(self, reason: str, status: int = 200, **fields):
        self.reason, self.status, self.fields = reason, status, fields


def on_notification(services, address: str, history_id: int) -> Outcome:
    """Synchronize the mailbox a notification names, unless it is already past `history_id`."""
    try:
        switches = services.store.settings()
        if not switches.get("use_incoming_service", True):
            return Outcome("incoming service is switched off", address=address)
        mailbox = services.store.find_mailbox_by_address(address)
        if mailbox is None:
            return Outcome("no mailbox for this address", address=address)
        cred = mailboxes.own_credential(services, mailbox)
        if not cred or cred.get("status") != "connected":
            return Outcome("mailbox is not connected for this instance", mailbox=mailbox["name"])
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            state = services.store.get_sync(mailbox["name"], services.settings.instance)
            if state.get("history_id") and int(state["history_id"]) >= history_id:
                return Outcome("already synchronized past this notification", mailbox=mailbox["name"])
            busy = state.get("lease_owner") and float(state.get("lease_expires_at") or 0) > time.time()
            if not busy:
                result = sync.sync_mailbox(services, mailbox["name"],
                                    budget_s=min(services.settings.poll_time_budget_s, 120))
                if not (result.get("outcome") == "skipped" and "another poll" in result.get("reason", "")):
                    break
            if time.monotonic() > deadline:
                # The running poll may have listed history before this message arrived: redeliver later.
                return Outcome("mailbox is being polled; retry later", 429, mailbox=mailbox["name"])
            # Wait for the running sync (a plain read, no lease transaction): it often covers this
            # notification, and waiting here beats Pub/Sub's redelivery backoff.
            time.sleep(LEASE_POLL_SECONDS)
    except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
        return Outcome(f"transient failure ({e.__class__.__name__})", 503, address=address)
    if result.get("outcome") == "error" and "invalid_grant" not in result.get("error", ""):
        return Outcome("sync failed; retry later", 503, mailbox=mailbox["name"], error=result.get("error"))
    return Outcome("synchronized", 200, mailbox=mailbox["name"], counts=result.get("counts"))


