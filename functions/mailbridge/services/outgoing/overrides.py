"""Which mailbox answers a ticket: the operators' override rules and the resolution, explained.

The rule itself is pure (domain/routing.py); this module reads the overrides, the mailboxes and
the default outgoing mailbox from the store for it.
"""

from __future__ import annotations

from mailbridge.domain import models, routing
from mailbridge.errors import NotFound
from mailbridge.services.ports import OverridesPorts


def set_override(services: OverridesPorts, scope: str, key: str, mailbox: str) -> dict:
    scope, normalized = routing.normalize_override(scope, key)
    services.store.get_mailbox(mailbox)  # must exist (NotFound otherwise)
    row = {"scope": scope, "key": normalized, "display_key": key.strip(), "mailbox": mailbox,
           "updated_at": models.now_iso()}
    services.store.put_override(row)
    return row


def list_overrides(services: OverridesPorts) -> list[dict]:
    rows = services.store.list_override_rows()
    order = {scope: i for i, scope in enumerate(routing.SCOPES)}
    return sorted(rows, key=lambda r: (order.get(r.get("scope"), 9), r.get("key", "")))


def remove_override(services: OverridesPorts, scope: str, key: str) -> None:
    if not services.store.delete_override(routing.override_id(scope, key)):
        raise NotFound(f"no {scope} override for {key!r}")


def resolve_outgoing(services: OverridesPorts, ticket: dict) -> dict:
    """Which mailbox answers this ticket, which rule chose it, and what was skipped on the way."""
    store = services.store
    lookups = routing.override_lookups(ticket)
    overrides = store.overrides_for([f"{scope}~{key}" for _rule, scope, key in lookups])
    names = set(overrides.values()) | {ticket.get("mailbox"), store.settings().get("default_outgoing_mailbox")}
    mailboxes = {}
    for name in filter(None, names):
        try:
            mailboxes[name] = store.get_mailbox(name)
        except NotFound:
            pass
    default = store.settings().get("default_outgoing_mailbox")
    return routing.choose_mailbox(ticket, overrides, mailboxes, default, services.settings.instance)
