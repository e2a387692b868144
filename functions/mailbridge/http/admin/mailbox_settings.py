"""The incoming and outgoing sections of a mailbox page: each form saves its section's settings,
validated like `scripts/mailbridge mailbox set`, in one update."""

from __future__ import annotations

from mailbridge.domain import models
from mailbridge.errors import InvalidInput
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.mailboxes import mailbox_action, mailbox_detail
from mailbridge.services import mailboxes

INCOMING_FIELDS = ("processed_label", "ignore_senders", "ignore_subjects", "max_message_mb", "backfill_days")
OUTGOING_FIELDS = ("send_as", "display_name", "acknowledgement_limit_per_hour", "acknowledgement_template",
                   "acknowledgement_templates", "daily_send_budget")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines() if line.strip()]


def _save_section(ctx: Ctx, name: str, values: dict) -> int:
    """Validate every field like `mailbox set` does, then write them in one update."""
    mailbox = ctx.services.store.get_mailbox(name)
    updates = {}
    for key, raw in values.items():
        path, typed = models.apply_mailbox_setting(mailbox, key, raw)
        if path == "outgoing.send_as" and typed != models.outgoing_settings(mailbox).get("send_as"):
            mailboxes.check_send_as(ctx.services, mailbox, typed)
        updates[path] = typed
    ctx.services.store.update_mailbox(name, updates)
    return len(updates)


def _megabytes(raw: str, field: str) -> str:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{field} must be a number of megabytes, got {raw!r}") from None
    if value <= 0 or value > 150:
        raise InvalidInput(f"{field} must be between 0 and 150 MB (Gmail's own limit)")
    return str(int(value * 1024 * 1024))


def incoming_save(ctx: Ctx, name: str):
    def save():
        return _save_section(ctx, name, {
            "incoming.enabled": ctx.form("enabled") == "on",
            "incoming.after_processing": ctx.form("after_processing"),
            "incoming.processed_label": ctx.form("processed_label").strip(),
            "incoming.ignore_senders": _lines(ctx.form("ignore_senders")),
            "incoming.ignore_subjects": [line.strip() for line in ctx.form("ignore_subjects").splitlines() if line.strip()],
            "incoming.accept_auto_replies": ctx.form("accept_auto_replies") == "on",
            "incoming.max_message_bytes": _megabytes(ctx.form("max_message_mb", "25"), "size limit"),
            "incoming.backfill_days": ctx.form("backfill_days", "0").strip() or "0",
        })

    return mailbox_action(ctx, name, save, "Incoming settings saved.", section="incoming", fields=INCOMING_FIELDS)


def outgoing_save(ctx: Ctx, name: str):
    def save():
        # JSON text validated as `mailbox set` validates it (domain/language.parse_templates); a
        # form without the field (an older page) leaves the templates as they are
        languages = {"outgoing.acknowledgement_templates": ctx.form("acknowledgement_templates").replace("\r\n", "\n")
                     } if "acknowledgement_templates" in ctx.request.form else {}
        return _save_section(ctx, name, {
            "outgoing.enabled": ctx.form("enabled") == "on",
            "outgoing.send_as": ctx.form("send_as").strip(),
            "outgoing.display_name": ctx.form("display_name").strip(),
            "outgoing.acknowledge_new": ctx.form("acknowledge_new") == "on",
            "outgoing.acknowledgement_limit_per_hour": ctx.form("acknowledgement_limit_per_hour", "3").strip(),
            "outgoing.acknowledgement_template": ctx.form("acknowledgement_template").replace("\r\n", "\n"),
            "outgoing.daily_send_budget": ctx.form("daily_send_budget", "2000").strip(), **languages,
        })

    for field in ("display_name", "send_as"):
        if any(c in ctx.form(field) for c in "\r\n"):
            return mailbox_detail(ctx, name, f"{field.replace('_', ' ')} must be a single line", 400,
                                  form=dict(ctx.request.form), section="outgoing", fields=OUTGOING_FIELDS)
    return mailbox_action(ctx, name, save, "Outgoing settings saved.", section="outgoing", fields=OUTGOING_FIELDS)
