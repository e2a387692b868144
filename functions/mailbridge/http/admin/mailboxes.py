"""The mailbox list and the mailbox page (its sections: overview, credentials, deletion label,
incoming, outgoing, spam, remove), and how a mailbox form's action reports back to that page."""

from __future__ import annotations

from urllib.parse import quote

from mailbridge import errors
from mailbridge.domain import models
from mailbridge.errors import MailbridgeError, NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import confirm, confirmed, field_errors
from mailbridge.http.admin.rendering import plural, redirect, render
from mailbridge.services import events, labels, mailboxes, outbox, sync

MAILBOX_SECTIONS = (("overview", "Overview"), ("credentials", "Credentials"), ("labels", "Deletion label"),
                    ("incoming", "Incoming"), ("outgoing", "Outgoing"), ("spam", "Spam"),
                    ("remove", "Remove"))
# Gmail's own names for its system labels, as its web interface shows them.
SYSTEM_LABEL_NAMES = {
    "TRASH": "Trash", "SPAM": "Spam", "STARRED": "Starred", "IMPORTANT": "Important", "SENT": "Sent",
    "DRAFT": "Drafts", "CHAT": "Chats", "CATEGORY_PERSONAL": "Primary", "CATEGORY_SOCIAL": "Social",
    "CATEGORY_PROMOTIONS": "Promotions", "CATEGORY_UPDATES": "Updates", "CATEGORY_FORUMS": "Forums",
}


def mailbox_list(ctx: Ctx, error=None, status=200, form=None):
    services = ctx.services
    rows = []
    for mailbox in services.store.list_mailboxes():
        view = mailboxes.view(services, mailbox)
        own = models.credential_of(view, ctx.settings.instance)
        rows.append({**view, "own": own})
    return render(ctx, "mailboxes.html", status, mailboxes=rows, error=error, form=form or {},
                  field_errors=field_errors(error, ("name", "address")))


def mailbox_create(ctx: Ctx):
    try:
        created = mailboxes.add_mailbox(ctx.services, ctx.form("name").strip(), ctx.form("address").strip())
    except MailbridgeError as e:
        return mailbox_list(ctx, str(e), errors.http_status(e), form=ctx.request.form)
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(created['name'], safe='')}") + "#credentials",
                    f"Mailbox {created['name']} created. Next: add a credential set for instance "
                    f"{mailboxes.instance_label(ctx.settings.instance)}.")


def picker_labels(label_list: list[dict]) -> list[dict]:
    """Labels a deletion label can be: user labels first by name, then system labels by the name
    Gmail shows, each with its id."""
    choices = []
    for label in label_list:
        if not label.get("appliable") or label["id"] in ("INBOX", "UNREAD"):
            continue
        system = label.get("type") == "system"
        shown = SYSTEM_LABEL_NAMES.get(label["id"], label["name"].title()) if system else label["name"]
        choices.append({**label, "shown": shown, "system": system})
    choices.sort(key=lambda l: (l["system"], l["shown"].lower()))
    return choices


def _labels_for(ctx: Ctx, view: dict):
    own = models.credential_of(view, ctx.settings.instance)
    if not own or own["status"] != "connected":
        return None, "Sign in with Google first: labels are read from the connected mailbox."
    try:
        return picker_labels(labels.list_labels(ctx.services, view["name"])), None
    except MailbridgeError as e:
        return None, f"Cannot read labels from Gmail: {e}"


def mailbox_detail(ctx: Ctx, name: str, error=None, status=200, form=None, section=None, fields=()):
    """The mailbox page; after a failed save, `form` holds what was typed and the error sits at
    its field (one of `fields`) inside `section`."""
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    view = mailboxes.view(services, mailbox)
    view["outbox"] = outbox.status(services, mailbox)
    view["events_waiting"] = events.waiting(services, name)
    state = services.store.get_sync(name, ctx.settings.instance)  # mail left in Spam (services/sync/spam.py)
    view["spam_count"], view["spam_recent"] = int(state.get("spam_count") or 0), state.get("spam_recent") or []
    own = models.credential_of(view, ctx.settings.instance)
    label_list, label_note = _labels_for(ctx, view)
    redirect_uri = ctx.settings.redirect_uri if ctx.settings.has_function_urls else ""
    return render(ctx, "mailbox.html", status, m=view, own=own, labels=label_list, label_note=label_note,
                  redirect_uri=redirect_uri, after_processing=models.AFTER_PROCESSING, error=error,
                  form=form or {}, form_section=section if error else None,
                  field_errors=field_errors(error, fields), sections=MAILBOX_SECTIONS,
                  instances=mailboxes.INSTANCES)


def mailbox_action(ctx: Ctx, name: str, action, done_message, section: str = "overview", fields=()):
    """Run one mailbox action; on a domain error re-render the mailbox page with the reason at the
    field, keeping what was typed; on success return to the section saved."""
    try:
        result = action()
    except MailbridgeError as e:
        if isinstance(e, NotFound) and "no mailbox" in str(e):
            raise
        typed = {k: v for k, v in ctx.request.form.items() if k not in ("csrf", "client_secret")}
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), form=typed, section=section, fields=fields)
    message = done_message(result) if callable(done_message) else done_message
    kind = "ok"
    if isinstance(message, tuple):
        message, kind = message
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(name, safe='')}") + f"#{section}", message, kind)


def mailbox_remove(ctx: Ctx, name: str):
    ctx.services.store.get_mailbox(name)  # 404 before asking
    if not confirmed(ctx):
        return confirm(ctx, f"Remove mailbox {name}?", f"Remove mailbox {name}? This cannot be undone.",
                       ["Its Gmail watch is stopped and every credential set's token is revoked.",
                        "Its client secrets and tokens are destroyed in Secret Manager.",
                        "Its tickets and its inbound log are kept."],
                       f"/mailboxes/{quote(name, safe='')}/remove", "Remove mailbox",
                       f"/mailboxes/{quote(name, safe='')}#remove")
    try:
        mailboxes.remove_mailbox(ctx.services, name)
    except MailbridgeError as e:
        if isinstance(e, NotFound):
            raise
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), section="remove")
    return redirect(ctx, ctx.url("/"), f"Mailbox {name} removed. Its tickets and inbound log are kept.")


def spam_ticket(ctx: Ctx, name: str, gmail_id: str):
    """"Make a ticket" of a message the page lists as left in Spam: an admin's explicit choice."""
    def done(result):
        if result.get("outcome") != "ok":
            return f"No ticket made: {result.get('reason') or result.get('error')}", "warn"
        return f"Message {gmail_id} taken out of Spam and ingested.", "ok"

    return mailbox_action(ctx, name, lambda: sync.make_ticket_from_spam(ctx.services, name, gmail_id), done, "spam")


def _intake_words(intake: dict) -> str:
    counts = intake.get("counts", {})
    if not intake.get("total"):
        return f"nothing arrived in the last {intake['minutes']} minutes"
    parts = ", ".join(f"{plural(v, 'message')} {k}" for k, v in sorted(counts.items()))
    return f"in the last {intake['minutes']} minutes, by push or poll: {parts}"


def poll_now(ctx: Ctx, name: str):
    def done(result):
        intake = _intake_words(mailboxes.recent_intake(ctx.services, name))
        if result.get("status") == "off":
            return f"Nothing polled: {result['reason']}. {intake[0].upper() + intake[1:]}.", "warn"
        row = (result.get("mailboxes") or [{}])[0]
        if row.get("outcome") == "skipped":
            return f"Poll skipped: {row.get('reason')}. {intake[0].upper() + intake[1:]}.", "warn"
        if row.get("outcome") == "error":
            return f"Poll failed: {row.get('error')}", "warn"
        counts = row.get("counts", {})
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
        return f"Polled: {detail}. Taken in {intake}.", "ok"

    return mailbox_action(ctx, name, lambda: sync.poll(ctx.services, name, scheduled=False), done)
