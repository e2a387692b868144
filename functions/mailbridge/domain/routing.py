"""Which mailbox answers a ticket: override keys and the resolution order (ticket, ticket type,
team, client overrides, then the mailbox the mail arrived in, then the default), with the reason
each candidate was skipped. Pure: services/outgoing/overrides.py reads the overrides and mailboxes."""

from __future__ import annotations

from mailbridge.domain import models
from mailbridge.errors import InvalidInput

SCOPES = ("ticket", "ticket_type", "team", "client")


def normalize_override(scope: str, key: str) -> tuple[str, str]:
    """Validate an override scope and key; keys match case-insensitively (ticket ids drop '#')."""
    if scope not in SCOPES:
        raise InvalidInput(f"override scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    key = (key or "").strip()
    if scope == "ticket":
        key = key.lstrip("#")
    if scope == "client":
        key = key.lstrip("@")
    if not key or len(key) > 200:
        raise InvalidInput("override key must be 1-200 characters")
    if "/" in key or any(ord(c) < 32 or ord(c) == 127 for c in key) or key in (".", ".."):
        raise InvalidInput(f"override key {key!r} may not contain '/' or control characters")
    return scope, key.casefold()


def override_id(scope: str, key: str) -> str:
    scope, key = normalize_override(scope, key)
    return f"{scope}~{key}"


def override_lookups(ticket: dict) -> list[tuple[str, str, str]]:
    """(rule, scope, key) in precedence order; the client is the ticket's client field, then the
    requester's email domain."""
    lookups = [("ticket_override", "ticket", str(ticket.get("id") or ticket.get("number") or ""))]
    if ticket.get("ticket_type"):
        lookups.append(("ticket_type_override", "ticket_type", str(ticket["ticket_type"])))
    if ticket.get("team"):
        lookups.append(("team_override", "team", str(ticket["team"])))
    clients = []
    if ticket.get("client"):
        clients.append(str(ticket["client"]))
    email = ((ticket.get("requester") or {}).get("email") or "").lower()
    if "@" in email:
        clients.append(email.rsplit("@", 1)[1])
    for client in clients:
        lookups.append(("client_override", "client", client))
    valid = []
    for rule, scope, key in lookups:
        try:
            valid.append((rule, scope, normalize_override(scope, key)[1]))
        except InvalidInput:
            continue  # a ticket field no admin could have written an override for
    return valid


def unusable_reason(mailbox: dict | None, name: str, instance: str) -> str | None:
    """Why a mailbox cannot send for this instance, or None when it can."""
    if mailbox is None:
        return f"mailbox {name!r} does not exist"
    cred = next((c for c in mailbox.get("credentials", []) if c.get("instance") == instance), None)
    if cred is None:
        return f"mailbox {name!r} has no credential set for instance {instance!r}"
    status = cred.get("status", "not_connected")
    if status != "connected":
        detail = f": {cred['last_error']}" if cred.get("last_error") else ""
        return f"mailbox {name!r} is {status.replace('_', ' ')} for instance {instance!r}{detail}"
    if not models.outgoing_settings(mailbox).get("enabled", True):
        return f"outgoing mail is disabled for mailbox {name!r} (outgoing.enabled=false)"
    return None


def choose_mailbox(ticket: dict, overrides: dict[tuple[str, str], str], mailboxes: dict[str, dict],
                   default: str | None, instance: str) -> dict:
    """Pure resolution: ticket > ticket type > team > client override > arrival mailbox > default.

    `overrides` maps (scope, normalized key) → mailbox name; `mailboxes` maps name → mailbox.
    A configured but unusable mailbox falls through and is listed in `skipped`."""
    candidates: list[tuple[str, str, str]] = []  # (rule, mailbox name, why it is a candidate)
    seen_client = False
    for rule, scope, key in override_lookups(ticket):
        name = overrides.get((scope, key))
        if not name or (rule == "client_override" and seen_client):
            continue
        seen_client = seen_client or rule == "client_override"
        label = {"ticket": "ticket #", "ticket_type": "ticket type ", "team": "team ", "client": "client "}[scope]
        candidates.append((rule, name, f"{label}{key if scope == 'ticket' else repr(key)} is overridden to {name!r}"))
    if ticket.get("mailbox"):
        candidates.append(("arrival_mailbox", ticket["mailbox"], f"the ticket arrived through {ticket['mailbox']!r}"))
    if default:
        candidates.append(("default_outgoing_mailbox", default, f"the global default outgoing mailbox is {default!r}"))
    skipped = []
    for rule, name, why in candidates:
        reason = unusable_reason(mailboxes.get(name), name, instance)
        if reason:
            skipped.append({"rule": rule, "mailbox": name, "reason": reason})
            continue
        explanation = f"{rule}: {why}"
        if skipped:
            explanation += "; skipped " + "; ".join(f"{s['rule']} ({s['reason']})" for s in skipped)
        return {"mailbox": name, "rule": rule, "explanation": explanation, "skipped": skipped}
    number = ticket.get("number") or ticket.get("id")
    if skipped:
        reasons = "; ".join(f"{s['rule']} → {s['reason']}" for s in skipped)
        raise InvalidInput(f"no usable outgoing mailbox for ticket #{number}: {reasons}")
    raise InvalidInput(f"no outgoing mailbox for ticket #{number}: no override matches, it has no arrival "
                       "mailbox and default_outgoing_mailbox is not set "
                       "(`settings set default_outgoing_mailbox NAME`)")
