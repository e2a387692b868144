"""Gmail push: a Pub/Sub push delivery names a mailbox; run the same incremental sync as
`poll` (sharing its lease). Bad or unknown notifications are acknowledged (2xx) and logged,
never retried forever; transient failures answer 5xx so Pub/Sub redelivers.

In production the push subscription carries an OIDC token and the function is private, so
Cloud Run has authenticated the caller before this code runs.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

from mailbridge import mailboxes
from mailbridge.logs import log_event

WATCH_RENEW_SECONDS = 24 * 3600
# A notification that finds the mailbox being synchronized waits for that run (well inside the
# push subscription's ack deadline) before asking Pub/Sub to redeliver.
LEASE_WAIT_SECONDS = 15.0
LEASE_POLL_SECONDS = 0.2


def _ack(reason: str, status: int = 200, **fields):
    log_event("INFO" if status < 300 else "WARNING", f"push: {reason}", **fields)
    return (json.dumps({"status": "acknowledged" if status < 300 else "retry", "reason": reason}), status,
            {"Content-Type": "application/json"})


def decode(body) -> tuple[str, int]:
    """Return (emailAddress, historyId) from a Pub/Sub push envelope; ValueError if malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise ValueError("not a Pub/Sub push envelope")
    data = body["message"].get("data")
    if not isinstance(data, str):
        raise ValueError("message has no data")
    try:
        payload = json.loads(base64.b64decode(data + "=" * (-len(data) % 4), validate=False))
    except (ValueError, TypeError) as e:
        raise ValueError("data is not base64 JSON") from e
    if not isinstance(payload, dict) or not isinstance(payload.get("emailAddress"), str):
        raise ValueError("data has no emailAddress")
    try:
        history_id = int(payload.get("historyId"))
    except (TypeError, ValueError) as e:
        raise ValueError("data has no numeric historyId") from e
    return payload["emailAddress"].lower(), history_id


def handle(request):
    from mailbridge import ingest
    from mailbridge.web import services as get_services

    if request.method != "POST":
        return _ack("use POST", 405)
    try:
        address, history_id = decode(request.get_json(silent=True))
    except ValueError as e:
        return _ack(f"malformed notification ({e})")
    services = get_services()
    try:
        switches = services.store.settings()
        if not switches.get("use_incoming_service", True):
            return _ack("incoming service is switched off", address=address)
        mailbox = services.store.find_mailbox_by_address(address)
        if mailbox is None:
            return _ack("no mailbox for this address", address=address)
        cred = mailboxes.own_credential(services, mailbox)
        if not cred or cred.get("status") != "connected":
            return _ack("mailbox is not connected for this instance", mailbox=mailbox["name"])
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            sync = services.store.get_sync(mailbox["name"], services.settings.instance)
            if sync.get("history_id") and int(sync["history_id"]) >= history_id:
                return _ack("already synchronized past this notification", mailbox=mailbox["name"])
            busy = sync.get("lease_owner") and float(sync.get("lease_expires_at") or 0) > time.time()
            if not busy:
                result = ingest.sync_mailbox(services, mailbox["name"],
                                             budget_s=min(services.settings.poll_time_budget_s, 120))
                if not (result.get("outcome") == "skipped" and "another poll" in result.get("reason", "")):
                    break
            if time.monotonic() > deadline:
                # The running poll may have listed history before this message arrived: redeliver later.
                return _ack("mailbox is being polled; retry later", 429, mailbox=mailbox["name"])
            # Wait for the running sync (a plain read, no lease transaction): it often covers this
            # notification, and waiting here beats Pub/Sub's redelivery backoff.
            time.sleep(LEASE_POLL_SECONDS)
    except Exception as e:  # noqa: BLE001 - transient: let Pub/Sub redeliver
        return _ack(f"transient failure ({e.__class__.__name__})", 503, address=address)
    if result.get("outcome") == "error" and "invalid_grant" not in result.get("error", ""):
        return _ack("sync failed; retry later", 503, mailbox=mailbox["name"], error=result.get("error"))
    return _ack("synchronized", 200, mailbox=mailbox["name"], counts=result.get("counts"))


def maybe_watch(services, mailbox: dict, gmail, sync: dict, force: bool = False) -> None:
    """Start or renew the Gmail watch (at most daily; Gmail needs it at least every 7 days)."""
    topic = services.settings.pubsub_topic
    if not topic:
        return
    renewed = float(sync.get("watch_renewed_at") or 0)
    if not force and time.time() - renewed < WATCH_RENEW_SECONDS:
        return
    try:
        response = gmail.watch(topic)
    except Exception as e:  # noqa: BLE001 - polling remains the safety net
        log_event("WARNING", "gmail watch failed; polling continues", mailbox=mailbox["name"],
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")
        return
    expiration = response.get("expiration")
    services.store.update_sync(mailbox["name"], services.settings.instance, {
        "watch_renewed_at": time.time(),
        "watch_expiration": datetime.fromtimestamp(int(expiration) / 1000, timezone.utc).isoformat(
            timespec="seconds") if expiration else None,
    })
