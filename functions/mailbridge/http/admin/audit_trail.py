"""The audit record of each admin page action (services/audit.py): every state-changing POST of
a signed-in admin that succeeded, with who, the action, its target, and before/after of the
settings it changed. Form fields that could hold a secret or a message body are never kept."""

from __future__ import annotations

from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import confirmed
from mailbridge.services import audit

# handler name → action (services/audit.ACTIONS and the few the pages add)
ACTIONS = {
    "mailbox_create": "mailbox.add", "credentials_add": "credentials.add", "credentials_update": "credentials.set",
    "credentials_remove": "credentials.remove", "mailbox_remove": "mailbox.remove", "connect": "mailbox.connect",
    "disconnect": "mailbox.disconnect", "poll_now": "mailbox.poll", "deletion_label": "labels.set_deletion",
    "label_create": "labels.create", "incoming_save": "mailbox.set", "outgoing_save": "mailbox.set",
    "inbound_retry": "inbound.retry", "settings_save": "settings.set", "admin_access_save": "settings.set",
    "override_set": "overrides.set", "override_remove": "overrides.remove", "ticket_reply": "reply.sent",
    "ticket_status": "ticket.status", "participant_confirm": "ticket.participants", "ticket_field": "ticket.set",
    "logout": "sign_out",
}
# never kept: secrets, message bodies, and a customer's address (an erasure could not reach it here)
LEFT_OUT = ("csrf", "body", "text", "html", "client_secret", "secret", "token", "email", "participant")
SETTINGS_PAGES = {"settings_save", "admin_access_save"}
# actions asked to be confirmed first (forms.confirmed): the first POST only shows the question
CONFIRMED_FIRST = {"mailbox_remove", "credentials_remove", "disconnect"}
MAILBOX_PAGES = {"incoming_save": "incoming", "outgoing_save": "outgoing"}


def actor(ctx: Ctx) -> str:
    return str((ctx.session or {}).get("email") or "admin-url link")


def snapshot(ctx: Ctx, handler, params: dict) -> dict | None:
    """The settings a POST may change, read before it (None for the other pages)."""
    name = getattr(handler, "__name__", "")
    if name in SETTINGS_PAGES:
        return dict(ctx.services.store.settings())
    if name in MAILBOX_PAGES and params.get("name"):
        return dict(ctx.services.store.get_mailbox(params["name"]).get(MAILBOX_PAGES[name]) or {})
    return None


def _changed(before: dict, after: dict) -> tuple[dict, dict]:
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def after(ctx: Ctx, handler, params: dict, before: dict | None, response) -> None:
    """One audit record for a POST that succeeded (an error page records nothing)."""
    name = getattr(handler, "__name__", "")
    if name not in ACTIONS or getattr(response, "status_code", 500) >= 400:
        return
    if name in CONFIRMED_FIRST and not confirmed(ctx):
        return
    target = str(params.get("ticket_id") or params.get("name") or params.get("instance") or "")
    details = {k: v[:200] for k, v in ctx.request.form.items() if not any(w in k.lower() for w in LEFT_OUT)}
    changed_before = changed_after = None
    if before is not None:
        current = snapshot(ctx, handler, params) or {}
        changed_before, changed_after = _changed(before, current)
    audit.record(ctx.services, ACTIONS[name], target, actor=actor(ctx), source="admin", before=changed_before,
                 after=changed_after, details={**{k: str(v) for k, v in params.items()}, **details})
