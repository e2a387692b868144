"""Mailbox defaults and validation of the values admins set (pure, no I/O)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
import hashlib
import re

from mailbridge.domain import language, patterns
from mailbridge.errors import InvalidInput

MAILBOX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CLIENT_ID_SUFFIX = ".apps.googleusercontent.com"
INSTANCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
AFTER_PROCESSING = ("leave", "mark_read", "archive", "delete")

DEFAULT_INCOMING = {
    "enabled": True,
    # mark_read keeps mail visible in Gmail while showing it was handled; the
    # other choices are an explicit admin decision.
    "after_processing": "mark_read",
    "deletion_label": None,
    "deletion_label_name": None,
    "remove_unread_on_delete": True,
    "processed_label": "",
    "accept_auto_replies": False,
    "ignore_senders": [],
    "ignore_subjects": [],
    "max_message_bytes": 25 * 1024 * 1024,
    "backfill_days": 0,
}
DEFAULT_OUTGOING = {
    "enabled": True,
    "send_as": "",
    "display_name": "",
    "acknowledge_new": True,
    "acknowledgement_limit_per_hour": 3,
    # per recipient domain and mailbox: throwaway senders of one domain cannot make us mail a third
    # party in bulk; sized for a company domain writing in after an outage. Public mailbox providers
    # and the mailbox's own domain have no domain limit (domain/mail_providers.py).
    "acknowledgement_limit_per_domain_per_hour": 200,
    # Only new mail is acknowledged: never a backfill or full re-sync, nor mail Gmail received
    # longer ago than this (its internalDate).
    "acknowledge_max_age_hours": 24,
    "acknowledgement_template": (
        "Thank you for your message. We have opened ticket {tag} and will reply soon.\n"
    ),
    # per BCP 47 tag, same fields; chosen by the customer's language, else the template above
    # (domain/language.py): `mailbox set NAME outgoing.acknowledgement_templates '{"de": "…"}'`
    "acknowledgement_templates": {},
    "daily_send_budget": 2000,
    # The outbox (docs/outbox.md): acknowledgements may use this share of the daily budget, so the
    # rest always remains for agents' replies; sends use at most send_share_percent of the mailbox's
    # Gmail quota (6,000 units/min for projects created since May 2026, 15,000 for older ones).
    "acknowledgement_share_percent": 80,
    "send_share_percent": 70,
    "gmail_quota_units_per_minute": 6000,
}
DEFAULT_SETTINGS = {
    "use_incoming_service": True,
    "use_scheduling_service": True,
    "default_outgoing_mailbox": None,
    "ticket_tag_format": "[#{number}]",
    # Who may sign in to the admin pages with Google, besides MAILBRIDGE_ADMIN_EMAILS/_DOMAIN.
    "admin_emails": [],
    "admin_domain": "",
    # How long the ticket event log keeps an event (docs/events.md): Firestore's TTL policy on the
    # events' expires_at deletes them after that (terraform/firestore.tf).
    "events.retention_days": 30,
    # Senders whose remote images the ticket page loads without asking (docs/images.md): only what
    # an admin chose, by the "Always show images from" button or `settings set`.
    "show_images_from": [],
    # Personal data (docs/privacy.md): closed tickets and ignored/quarantined inbound rows are
    # deleted this many days later by Firestore's TTL policies (0 = kept); the audit log is kept
    # audit.retention_days.
    "retention.closed_ticket_days": 0,
    "retention.inbound_log_days": 0,
    "audit.retention_days": 400,
}
DEFAULT_RETENTION = {"closed_ticket_days": 0}  # a mailbox's own; 0 = the global setting
ADMIN_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def validate_mailbox_name(name: str) -> str:
    if not MAILBOX_NAME.fullmatch(name or ""):  # not match: `$` would let a trailing newline in
        raise InvalidInput(
            f"mailbox name {name!r} is invalid: use 1-63 letters, digits, '.', '_' or '-'"
        )
    return name


def validate_address(address: str) -> str:
    if not EMAIL.match(address or ""):
        raise InvalidInput(f"address {address!r} is not an email address")
    return address.strip().lower()


def validate_instance(instance: str) -> str:
    if not INSTANCE.match(instance or ""):
        raise InvalidInput(f"instance {instance!r} is invalid: use lowercase letters, digits, '-' or '_'")
    return instance


def validate_client_id(client_id: str) -> str:
    client_id = (client_id or "").strip()
    if not client_id.endswith(CLIENT_ID_SUFFIX) or len(client_id) <= len(CLIENT_ID_SUFFIX):
        raise InvalidInput(
            f"client id must be the whole id ending in {CLIENT_ID_SUFFIX}; "
            "copy it again from Google Cloud console > APIs & Services > Credentials"
        )
    if any(c.isspace() for c in client_id):
        raise InvalidInput("client id must not contain spaces")
    return client_id


def validate_client_secret(secret: str) -> str:
    secret = (secret or "").strip()
    if not secret:
        raise InvalidInput("client secret is empty")
    return secret


def new_mailbox(name: str, address: str) -> dict:
    return {
        "name": validate_mailbox_name(name),
        "address": validate_address(address),
        "type": "google",
        "created_at": now_iso(),
        "incoming": copy.deepcopy(DEFAULT_INCOMING),
        "outgoing": copy.deepcopy(DEFAULT_OUTGOING),
        "credentials": [],
    }


def _coerce(current, raw: str, key: str):
    """Convert a CLI string to the type of the setting it replaces."""
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise InvalidInput(f"{key} must be true or false, got {raw!r}")
    if isinstance(current, int):
        try:
            value = int(raw)
        except ValueError as e:
            raise InvalidInput(f"{key} must be a whole number, got {raw!r}") from e
        if value < 0:
            raise InvalidInput(f"{key} must not be negative")
        return value
    if isinstance(current, list):
        if isinstance(raw, list):
            return raw
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def apply_mailbox_setting(mailbox: dict, key: str, raw) -> tuple[str, object]:
    """Validate `incoming.x` / `outgoing.x` and return (dotted key, typed value)."""
    section, _, field = key.partition(".")
    defaults = {"incoming": DEFAULT_INCOMING, "outgoing": DEFAULT_OUTGOING, "retention": DEFAULT_RETENTION}.get(section)
    if defaults is None or field not in defaults:
        known = ", ".join(f"incoming.{k}" for k in DEFAULT_INCOMING) + ", " + ", ".join(
            f"outgoing.{k}" for k in DEFAULT_OUTGOING
        ) + ", retention.closed_ticket_days"
        raise InvalidInput(f"unknown setting {key!r}; known: {known}")
    if field in ("deletion_label", "deletion_label_name"):
        raise InvalidInput("set the deletion label with `labels set-deletion MAILBOX LABEL`, which validates it")
    current = mailbox.get(section, {}).get(field, defaults[field])
    if current is None:
        current = defaults[field]
    value = _coerce(current, raw, key) if isinstance(raw, str) else raw
    if field == "after_processing" and value not in AFTER_PROCESSING:
        raise InvalidInput(f"incoming.after_processing must be one of {', '.join(AFTER_PROCESSING)}")
    if field == "after_processing" and value == "delete" and not mailbox.get("incoming", {}).get("deletion_label"):
        raise InvalidInput("set a deletion label first: `labels set-deletion MAILBOX LABEL`")
    if field == "send_as" and value:
        validate_address(value)
    if field == "acknowledgement_templates":
        value = language.parse_templates(value)
    if field == "ignore_subjects":
        patterns.check_subject_patterns(value)
    if field in ("acknowledgement_share_percent", "send_share_percent") and not 1 <= value <= 100:
        raise InvalidInput(f"{key} must be a percentage between 1 and 100")
    if field == "acknowledge_max_age_hours" and not 1 <= value <= 24 * 365:
        raise InvalidInput(f"{key} must be between 1 and 8760 hours")
    if field == "gmail_quota_units_per_minute" and not 100 <= value <= 15000:
        raise InvalidInput(f"{key} must be between 100 and 15000 (Gmail's per-user limit)")
    return f"{section}.{field}", value


def apply_global_setting(key: str, raw) -> object:
    if key not in DEFAULT_SETTINGS:
        raise InvalidInput(f"unknown setting {key!r}; known: {', '.join(DEFAULT_SETTINGS)}")
    current = DEFAULT_SETTINGS[key]
    if key in ("admin_emails", "admin_domain", "show_images_from"):
        return _admin_setting(key, raw)
    if current is None:
        return None if raw in ("", "none", "null") else raw
    if key == "ticket_tag_format" and "{number}" not in raw:
        raise InvalidInput("ticket_tag_format must contain {number}")
    value = _coerce(current, raw, key) if isinstance(raw, str) else raw
    if key == "events.retention_days" and not 1 <= value <= 3650:
        raise InvalidInput("events.retention_days must be between 1 and 3650")
    if key.startswith("retention.") and value > 36500:
        raise InvalidInput(f"{key} must be between 0 (keep) and 36500 days")
    if key == "audit.retention_days" and not 1 <= value <= 36500:
        raise InvalidInput("audit.retention_days must be between 1 and 36500")
    return value


def _admin_setting(key: str, raw):
    if key == "admin_domain":
        domain = str(raw or "").strip().lower()
        if domain in ("", "none", "null"):
            return ""
        if not ADMIN_DOMAIN.match(domain):
            raise InvalidInput(f"admin_domain {raw!r} is not a domain name (e.g. example.com)")
        return domain
    items = raw if isinstance(raw, list) else str(raw or "").replace(",", " ").split()
    emails = []
    for item in items:
        item = str(item).strip().lower()
        if not EMAIL.match(item):
            raise InvalidInput(f"{key}: {item!r} is not an email address")
        if item not in emails:
            emails.append(item)
    return emails


def credential_secret_id(prefix: str, mailbox: str, instance: str, kind: str) -> str:
    """Secret ids are [A-Za-z0-9_-]; hash the pair so any mailbox name fits and ids stay stable."""
    digest = hashlib.sha256(f"{mailbox}\0{instance}".encode()).hexdigest()[:20]
    return f"{prefix}-cred-{digest}-{kind}"


def attempt_number(row: dict | None) -> int:
    """The number of the attempt now under way on an inbound row: an unfinished row
    (begin_attempt) already counted it."""
    row = row or {}
    return int(row.get("attempts", 0)) + (0 if row.get("unfinished") else 1)


# The outcomes an inbound row keeps for good: no attempt is counted on them any more.
FINAL_INBOUND_OUTCOMES = ("created", "updated", "ignored", "quarantined")


def begun_attempt(row: dict, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
    """The changes to an open inbound row when risky work on it begins: the attempt is counted
    before the work (the row stays `failed` + `unfinished` until the work ends), and an unfinished
    row that already used up max_attempts is quarantined instead."""
    attempts = int(row.get("attempts", 0))
    if row.get("unfinished") and attempts >= max_attempts:
        return {"outcome": "quarantined", "reason": reason[:500], "processed_at": now_iso()}
    return {"mailbox": mailbox, "gmail_message_id": gmail_id, "message_id": row.get("message_id"),
            "attempts": attempts + 1, "outcome": "failed", "reason": reason[:500],
            "ticket_id": None, "unfinished": True, "processed_at": now_iso()}


def failed_attempt(row: dict, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict:
    """The changes to an open inbound row whose attempt failed: quarantined after max_attempts."""
    attempts = attempt_number(row)
    return {"mailbox": mailbox, "gmail_message_id": gmail_id, "unfinished": False,
            "message_id": row.get("message_id"), "attempts": attempts,
            "outcome": "quarantined" if attempts >= max_attempts else "failed",
            "reason": reason[:500], "ticket_id": None, "processed_at": now_iso()}


def credential_of(mailbox: dict, instance: str) -> dict | None:
    """The credential set of `instance` on a mailbox, or None."""
    return next((c for c in mailbox.get("credentials", []) if c["instance"] == instance), None)


def require_credential(mailbox: dict, instance: str) -> dict:
    cred = credential_of(mailbox, instance)
    if cred is None:
        raise InvalidInput(f"mailbox {mailbox['name']!r} has no credential set for instance {instance!r}")
    return cred


def incoming_settings(mailbox: dict) -> dict:
    """A mailbox's incoming settings with the defaults filled in."""
    return {**DEFAULT_INCOMING, **(mailbox.get("incoming") or {})}


def outgoing_settings(mailbox: dict) -> dict:
    """A mailbox's outgoing settings with the defaults filled in."""
    return {**DEFAULT_OUTGOING, **(mailbox.get("outgoing") or {})}


def own_addresses(mailboxes: list[dict]) -> set[str]:
    """Every address the deployment's mailboxes receive or send as (lower case)."""
    addresses = set()
    for mailbox in mailboxes:
        addresses.add(mailbox["address"].lower())
        send_as = (mailbox.get("outgoing") or {}).get("send_as")
        if send_as:
            addresses.add(send_as.lower())
    return addresses
