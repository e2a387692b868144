"""Pacing: one rolling minute of Gmail units per mailbox, shared by ingestion and sends, as Gmail
counts its per-user quota (docs/outbox.md, "Order, pacing and budgets").

Ingestion adds its units first and never waits; a send adds its 100 units only when the minute
stays within 97 % of the quota with them (and, while ingestion is working, an acknowledgement
within the sends' share). The arithmetic is pure; `record_ingestion` writes the minute.
"""

from __future__ import annotations

from datetime import datetime, timezone
import re
import time

from mailbridge.domain import models
from mailbridge.services.ports import InstancePorts, PacingPorts

SEND_UNITS = 100                 # messages.send
WINDOW_SECONDS = 60.0
SAFETY = 0.97
INGESTION_WINDOW_SECONDS = 30.0  # acknowledgements keep to their share this long after ingestion drew units
SPREAD_SECONDS = 10.0            # ... and take at most a sixth of it per ten seconds meanwhile
RATE_LIMIT_DEFAULT_SECONDS = 5.0  # a 429 without a retry time: Gmail's backoff starts at 1 s


# ============================================================ pure: the quota ledger
# The pacing document holds `window`: per second of the last minute, {"at": second, "units":
# ingestion's and the sends' units, "sends": the sends' part} (Firestore stores no array inside
# an array), so every process that calls Gmail for the mailbox sees what the others spent. The
# arithmetic below works on [second, units, send units] lists.
def window_of(bucket: dict | None, now: float) -> list[list[float]]:
    """The entries still inside the rolling minute at `now`, oldest first."""
    entries = ([float(e.get("at", 0)), float(e.get("units", 0)), float(e.get("sends", 0))]
               for e in (bucket or {}).get("window") or [] if isinstance(e, dict))
    return sorted((e for e in entries if e[0] + 1 > now - WINDOW_SECONDS), key=lambda e: e[0])


def _with(window: list[list[float]], now: float, units: float, send_units: float) -> list[dict]:
    """The stored form of `window` with `units` (of which `send_units` for sends) added at `now`."""
    second = float(int(now))
    window = [list(e) for e in window]
    if window and window[-1][0] == second:
        window[-1][1] += units
        window[-1][2] += send_units
    else:
        window.append([second, units, send_units])
    return [{"at": at, "units": used, "sends": sends} for at, used, sends in window]


def _ingesting(bucket: dict, now: float) -> bool:
    """Ingestion drew units within the last INGESTION_WINDOW_SECONDS: acknowledgements keep to their share."""
    ingested_at = bucket.get("ingested_at")
    return ingested_at is not None and now - float(ingested_at) < INGESTION_WINDOW_SECONDS


def _wait_to_free(window: list[list[float]], now: float, excess: float, column: int,
                  horizon: float = WINDOW_SECONDS) -> float:
    """Seconds until entries holding at least `excess` units (of `column`) leave the last
    `horizon` seconds."""
    freed = 0.0
    for entry in window:
        freed += entry[column]
        if freed >= excess:
            return entry[0] + 1 + horizon - now
    return horizon


def take_decision(bucket: dict | None, now: float, quota_per_minute: int, share: float, kind: str):
    """(seconds to wait, changes): 0 and the new window when one send may go now.

    Every send keeps the rolling minute (ingestion and sends together) within 97 % of the quota.
    While ingestion is working (it drew units in the last INGESTION_WINDOW_SECONDS), an
    acknowledgement also keeps the minute within the sends' share, leaving the rest for new
    mail, and acknowledgements spread over the minute (a sixth of the share per ten seconds)
    instead of taking it at once, ahead of the mail still arriving. An agent's reply is held by
    the quota alone, and an acknowledgement leaves one send's worth for it."""
    bucket = bucket or {}
    blocked = float(bucket.get("blocked_until") or 0)
    if blocked > now:
        return blocked - now, None
    window = window_of(bucket, now)
    limit = max(1, quota_per_minute) * SAFETY
    need = SEND_UNITS if kind == "reply" else 2 * SEND_UNITS
    used = sum(e[1] for e in window)
    waits = []
    if used + need > limit:
        waits.append(_wait_to_free(window, now, used + need - limit, 1))
    if kind != "reply" and _ingesting(bucket, now):
        quiet_in = float(bucket["ingested_at"]) + INGESTION_WINDOW_SECONDS - now
        if used + need > limit * share:
            waits.append(min(_wait_to_free(window, now, used + need - limit * share, 1), quiet_in))
        recent = [e for e in window if e[0] + 1 > now - SPREAD_SECONDS]
        recent_sends = sum(e[2] for e in recent)
        allowed = limit * share * SPREAD_SECONDS / WINDOW_SECONDS
        if recent_sends + SEND_UNITS > allowed:
            waits.append(min(_wait_to_free(recent, now, recent_sends + SEND_UNITS - allowed, 2, SPREAD_SECONDS),
                             quiet_in))
    if waits:
        return max(max(waits), 0.05), None
    return 0.0, {"window": _with(window, now, SEND_UNITS, SEND_UNITS)}


def spend_decision(bucket: dict | None, now: float, quota_per_minute: int, share: float, units: int):
    """Ingestion's units go into the minute first, whatever it holds (ingestion never waits),
    and hold acknowledgements to their share for the next INGESTION_WINDOW_SECONDS."""
    return units, {"window": _with(window_of(bucket, now), now, units, 0.0), "ingested_at": now}


def retry_at(error_text: str, now: float) -> float:
    """When Gmail said to come back ("… Retry after 2026-12-02T10:15:01.123Z"), else soon."""
    match = re.search(r"Retry after (\d{4}-\d\d-\d\dT[0-9:.]+)Z?", error_text or "")
    if match:
        try:
            return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    return now + RATE_LIMIT_DEFAULT_SECONDS


# ============================================================ a mailbox's pacing document
def quota_of(mailbox: dict) -> tuple[int, float]:
    settings = models.outgoing_settings(mailbox)
    return int(settings["gmail_quota_units_per_minute"]), int(settings["send_share_percent"]) / 100.0


def pacing_key(services: InstancePorts, mailbox_name: str) -> str:
    return f"{mailbox_name}~{services.settings.instance}"


def ingestion_key(services: InstancePorts, mailbox_name: str) -> str:
    """The syncs' half of the minute: its own document, so the syncs' writes and the drainer's
    never land on one document (docs/architecture.md, "No hot documents")."""
    return f"{pacing_key(services, mailbox_name)}~ingestion"


def combined(sends: dict | None, ingestion: dict | None) -> dict:
    """The mailbox's whole minute: the drainer's document with the syncs' units and their time."""
    bucket = dict(sends or {})
    bucket["window"] = list(bucket.get("window") or []) + list((ingestion or {}).get("window") or [])
    if (ingestion or {}).get("ingested_at") is not None:
        bucket["ingested_at"] = max(float(ingestion["ingested_at"]), float(bucket.get("ingested_at") or 0))
    return bucket


def record_ingestion(services: PacingPorts, mailbox: dict, units: int) -> None:
    """Ingestion's Gmail units, added to the mailbox's rolling minute so sends leave them room."""
    if units <= 0:
        return
    quota, share = quota_of(mailbox)
    now = time.time()
    services.store.change_send_pacing(ingestion_key(services, mailbox["name"]),
                                      lambda bucket: spend_decision(bucket, now, quota, share, units))
