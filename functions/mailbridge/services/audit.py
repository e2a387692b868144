"""The audit log (docs/privacy.md, "Audit log"): one append-only record per admin action, from the
admin pages, the CLI and the API: who, what, when, the target, and before/after for settings
(never a secret). Each record is also one structured Cloud Logging line (labels audit=true) that
a log sink can keep beyond the store's audit.retention_days."""

from __future__ import annotations

from mailbridge.domain import models, privacy
from mailbridge.logs import log_event
from mailbridge.services.ports import AuditPorts

ACTIONS = ("sign_in", "settings.set", "mailbox.add", "mailbox.set", "mailbox.remove", "mailbox.purge",
           "credentials.add", "credentials.set", "credentials.remove", "mailbox.connect", "mailbox.disconnect",
           "reply.sent", "ticket.status", "ticket.set", "ticket.hold", "ticket.release", "privacy.export",
           "privacy.erase", "sessions.revoke", "labels.set_deletion")
SOURCES = ("cli", "admin", "api", "oauth")
SECRET_WORDS = ("secret", "token", "password", "signing_key", "private_key", "code")


def scrub(value):
    """A value as the audit log may keep it: any field whose name speaks of a secret is replaced."""
    if isinstance(value, dict):
        return {k: "[secret]" if any(w in str(k).lower() for w in SECRET_WORDS) else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def record(services: AuditPorts, action: str, target: str, *, actor: str, source: str, before=None, after=None,
           details: dict | None = None) -> dict:
    """Append one record and log it; returns the record. An audit write that fails is logged as
    an ERROR and never undoes or blocks the action it describes."""
    at = models.now_iso()
    entry = {"at": at, "actor": str(actor or "unknown").lower(), "source": source, "action": action,
             "target": str(target or ""), "before": scrub(before), "after": scrub(after),
             "details": scrub(details or {})}
    log_event("NOTICE", f"audit: {action}", labels={"audit": "true", "action": action}, audit=entry)
    try:
        stored = {**entry, "expires_at": privacy.audit_expiry(services.store.settings(), at)}
        entry["id"] = services.store.append_audit(stored)
    except Exception as e:  # noqa: BLE001 - the Cloud Logging line above still holds the record
        log_event("ERROR", "audit record not stored", action=action, error=e.__class__.__name__)
    return entry


def records(services: AuditPorts, since: str | None = None, actor: str | None = None, limit: int = 100) -> list[dict]:
    """The audit log, newest first, without the store's TTL field."""
    rows = services.store.audit_records(since=since, actor=(actor or "").lower() or None, limit=limit)
    return [{k: v for k, v in row.items() if k != "expires_at"} for row in rows]
