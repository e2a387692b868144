"""The ticket list and the ticket page: the conversation, the reply form (and which mailbox will
send it), status, team and type, suggested participants."""

from __future__ import annotations

import re
import secrets

from mailbridge import errors
from mailbridge.domain import images
from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput, MailbridgeError, NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin import messages
from mailbridge.http.admin.forms import PAGE_SIZE, field_errors, page_size
from mailbridge.http.admin.rendering import redirect, render
from mailbridge.services import merging, outgoing, tickets

TICKET_ID = re.compile(r"^\d{1,12}$")


def _check_ticket_id(ticket_id: str) -> None:
    if not TICKET_ID.match(ticket_id):
        raise NotFound(f"no ticket {ticket_id!r}")


def ticket_list(ctx: Ctx):
    services = ctx.services
    mailbox = ctx.request.args.get("mailbox", "").strip() or None
    status = ctx.request.args.get("status", "").strip() or None
    if status not in (None, "open", "closed"):
        status = None
    names = [m["name"] for m in services.store.list_mailboxes()]
    if mailbox and mailbox not in names:
        mailbox = None
    before = ctx.request.args.get("before", "").strip()
    before = int(before) if before.isdigit() and len(before) < 13 else None
    size = page_size(ctx)
    shown_size = size if size != PAGE_SIZE else None
    rows, more = tickets.page(services.store.list_tickets(mailbox=mailbox, status=status, limit=size + 1,
                                                          before=before), size)
    older = ctx.url("/tickets", mailbox=mailbox, status=status, before=rows[-1]["number"], size=shown_size) \
        if more and rows else None
    return render(ctx, "tickets.html", tickets=rows, mailbox_names=names, mailbox=mailbox or "",
                  status_filter=status or "", older=older, paged=before is not None,
                  newest=ctx.url("/tickets", mailbox=mailbox, status=status, size=shown_size))


def _resolution(ctx: Ctx, ticket: dict) -> dict:
    """Which mailbox will send a reply, and why (outgoing.resolve_outgoing)."""
    try:
        result = outgoing.resolve_outgoing(ctx.services, ticket)
    except MailbridgeError as e:
        return {"ok": False, "mailbox": None, "explanation": str(e), "skipped": []}
    words = tickets.describe_resolution(result, ticket)
    return {"ok": True, "mailbox": result["mailbox"], "because": words["because"], "skipped": words["skipped"]}


def ticket_page(ctx: Ctx, ticket_id: str, error=None, status=200, body="", form=None, fields=()):
    _check_ticket_id(ticket_id)
    store = ctx.services.store
    ticket = store.get_ticket(ticket_id)
    view = tickets.view(ctx.services, ticket)
    _mark_images(ctx, view)
    # One key per rendered form: a double click or a re-sent POST resumes the same send, never a second one.
    reply_key = f"reply-admin-{secrets.token_urlsafe(18)}"
    return render(ctx, "ticket.html", status, t=view, resolution=_resolution(ctx, ticket), error=error, body=body,
                  reply_key=reply_key, recipients=tickets.reply_recipients(ctx.services, ticket),
                  suggested=ticket.get("suggested_participants") or [],
                  requester_authenticated=ticket_views.requester_authenticated(view),
                  ticket_fields={"team": ticket.get("team") or "", "type": ticket.get("ticket_type") or ""},
                  form=form or {}, field_errors=field_errors(error, fields))


def _mark_images(ctx: Ctx, view: dict) -> None:
    """Per message: whether its frame shows inline images (then it opens), and how many remote
    images it blocks (then the "show images" control appears) (docs/images.md)."""
    remembered = messages.remembered_senders(ctx)
    for message in view["messages"]:
        message["inline_images"] = any(a.get("content_id") and a.get("content_type") in images.SHOWN_TYPES
                                       for a in message["attachments"])
        sender = ((message.get("from") or {}).get("email") or "").lower()
        message["remote_images"] = 0 if sender in remembered else images.remote_count(message.get("html") or "")


def participant_confirm(ctx: Ctx, ticket_id: str):
    """An agent confirms a suggested participant (docs/reliability.md, "Hostile senders")."""
    email = ctx.form("email").strip()
    try:
        _check_ticket_id(ticket_id)
        tickets.confirm_participant(ctx.services, ticket_id, email)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"), f"{email.lower()} now receives replies to this ticket.")


def ticket_field(ctx: Ctx, ticket_id: str):
    field = ctx.form("field")
    try:
        _check_ticket_id(ticket_id)
        tickets.set_field(ctx.services, ticket_id, field, ctx.form("value"))
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e), form=dict(ctx.request.form), fields=("value",))
    word = "Ticket type" if field == "type" else "Team"
    value = ctx.form("value").strip()
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}") + "#reply",
                    f"{word} {'set to ' + value if value else 'cleared'}. The reply's mailbox follows it.")


def ticket_reply(ctx: Ctx, ticket_id: str):
    body = ctx.form("body").replace("\r\n", "\n")
    key = ctx.form("reply_key").strip() or None
    try:
        _check_ticket_id(ticket_id)
        if not body.strip():
            raise InvalidInput("the reply is empty")
        result = outgoing.send_reply(ctx.services, ticket_id, body, idempotency_key=key)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e), body=body)
    if result.get("status") == "sent":
        return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"), f"Reply sent through {result.get('mailbox')}.")
    detail = f": {result['error']}" if result.get("error") else ""
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"),
                    f"Reply recorded but not sent yet ({result.get('status')}){detail}. It is retried automatically.",
                    "warn")


def ticket_status(ctx: Ctx, ticket_id: str):
    new_status = ctx.form("status")
    try:
        tickets.set_status(ctx.services, ticket_id, new_status)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"), f"Ticket {'closed' if new_status == 'closed' else 'reopened'}.")


def ticket_merge(ctx: Ctx, ticket_id: str):
    """Merge this ticket into another (docs/merging.md); the page of the survivor follows."""
    into = ctx.form("into").strip().lstrip("#")
    try:
        _check_ticket_id(ticket_id)
        if not TICKET_ID.match(into):
            raise InvalidInput("give the number of the ticket to merge into")
        result = merging.merge(ctx.services, ticket_id, into)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e), form=dict(ctx.request.form), fields=("into",))
    moved = len(result["moved_messages"])
    note = f"Ticket #{result['number']} merged into this one ({moved} message{'s' if moved != 1 else ''} moved)." \
        if result["changed"] else f"Ticket #{result['number']} was merged into this one already."
    return redirect(ctx, ctx.url(f"/tickets/{result['into']}"), note)


def ticket_split(ctx: Ctx, ticket_id: str):
    """A new ticket from one message and the later ones of its Gmail thread; its page follows."""
    message = ctx.form("message").strip()
    try:
        _check_ticket_id(ticket_id)
        result = merging.split(ctx.services, ticket_id, message)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/tickets/{result['into']}"),
                    f"Split off ticket #{result['number']}: {len(result['moved_messages'])} message(s) moved here.")


def remember_images(ctx: Ctx, ticket_id: str):
    """An admin asks to always show one sender's remote images (docs/images.md)."""
    sender = ctx.form("sender").strip().lower()
    try:
        _check_ticket_id(ticket_id)
        tickets.show_images_from(ctx.services, sender)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"),
                    f"Images from {sender} are shown from now on (Settings: show_images_from).")
