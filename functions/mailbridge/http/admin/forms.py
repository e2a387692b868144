"""What the admin forms share: an error placed at its field, the confirmation page before what
cannot be undone, and the page size of the paged lists."""

from __future__ import annotations

from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.rendering import render

# Words in an error message → the form field it is about (the first match wins).
FIELD_WORDS = (("credential set", "mailbox"), ("no mailbox", "mailbox"), ("client id", "client_id"),
               ("client secret", "client_secret"), ("secret", "client_secret"),
               ("instance", "instance"), ("personal google account", "address"), ("address", "address"),
               ("mailbox name", "name"), ("name", "name"), ("size limit", "max_message_mb"),
               ("backfill", "backfill_days"), ("processed_label", "processed_label"),
               ("ignore_senders", "ignore_senders"), ("ignore_subjects", "ignore_subjects"),
               ("send as", "send_as"), ("send_as", "send_as"), ("display name", "display_name"),
               ("display_name", "display_name"), ("acknowledgement_limit", "acknowledgement_limit_per_hour"),
               ("acknowledgement_templates", "acknowledgement_templates"),
               ("acknowledgement_template", "acknowledgement_template"), ("daily_send_budget", "daily_send_budget"),
               ("ticket_tag_format", "ticket_tag_format"), ("tag format", "ticket_tag_format"),
               ("ticket", "key"), ("override key", "key"), ("scope", "scope"), ("team", "value"),
               ("type", "value"), ("label", "label"), ("label", "label_name"))
PAGE_SIZE = 50


def field_of(message: str, fields) -> str | None:
    """The form field an error is about, among `fields` (None: the error belongs to the form)."""
    lowered = message.lower()
    return next((field for words, field in FIELD_WORDS if field in fields and words in lowered), None)


def field_errors(error: str | None, fields) -> dict:
    """{field: error} for the template when the error is about one of `fields`, else {}."""
    field = field_of(error, fields) if error and fields else None
    return {field: error} if field else {}


def confirm(ctx: Ctx, title: str, question: str, consequences: list[str], action: str, button: str,
            back: str, hidden: dict | None = None):
    """A page that asks before something that cannot be undone; its form posts `confirmed=yes`."""
    return render(ctx, "confirm.html", title=title, question=question, consequences=consequences,
                  action=action, button=button, back=back, hidden=hidden or {})


def confirmed(ctx: Ctx) -> bool:
    return ctx.form("confirmed") == "yes"


def page_size(ctx: Ctx) -> int:
    """Rows per page: ?size=N (1-200) or PAGE_SIZE."""
    raw = ctx.request.args.get("size", "")
    return min(max(int(raw), 1), 200) if raw.isdigit() and len(raw) < 4 else PAGE_SIZE
