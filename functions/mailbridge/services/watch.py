"""Gmail watch (push): started at connection and renewed by polls; polling stays the safety net."""

from __future__ import annotations

from datetime import datetime, timezone
import time

from mailbridge.logs import log_event
from mailbridge.services.ports import WatchPorts

WATCH_RENEW_SECONDS = 24 * 3600


def maybe_watch(services: WatchPorts, mailbox: dict, gmail, sync: dict, force: bool = False) -> None:
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
