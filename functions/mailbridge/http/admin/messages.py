"""Stored messages as the ticket page shows them: a message's HTML, sanitized and sandboxed in
a frame, and its attachments as downloads. Both are looked up by key, never by a path."""

from __future__ import annotations

import re

from mailbridge.domain.parsing import safe_filename, sanitize_html
from mailbridge.errors import NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.rendering import respond
from mailbridge.http.common import download_headers, templates
from mailbridge.logs import log_event
from mailbridge.services import stored_bodies

MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+=-]{0,200}(~[A-Za-z0-9_.:+=-]{1,200})?$")
MESSAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


def _find_message(ctx: Ctx, message_id: str) -> dict:
    """The stored message with this id: looked up by key in the store, never by a path."""
    if not MESSAGE_ID.match(message_id) or ".." in message_id:
        raise NotFound("no such message")
    message = ctx.services.store.find_stored_message(message_id)
    if message is None:
        raise NotFound("no such message")
    return stored_bodies.load(ctx.services, message)


def message_html(ctx: Ctx, message_id: str):
    message = _find_message(ctx, message_id)
    # stored sanitized; cleaned again in depth, then framed by templates/message.html
    document = templates().get_template("message.html").render(body_html=sanitize_html(message.get("html") or ""))
    return respond(document, 200, {
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": MESSAGE_CSP,
        "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def attachment(ctx: Ctx, message_id: str, index: str):
    message = _find_message(ctx, message_id)
    attachments = message.get("attachments") or []
    if not index.isdigit() or int(index) >= len(attachments):
        raise NotFound("no such attachment")
    item = attachments[int(index)]
    sha256 = str(item.get("sha256") or "")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise NotFound("this attachment was not stored")
    try:
        data = ctx.services.blobs.get(sha256)
    except Exception as e:  # noqa: BLE001 - storage errors become a readable 404/502
        log_event("WARNING", "attachment download failed", error=e.__class__.__name__)
        raise NotFound("the attachment's content is not available") from None
    # One filename rule (parse.safe_filename, as at ingest); one set of download headers.
    filename = safe_filename(item.get("filename") or "") or f"attachment-{int(index) + 1}"
    return respond(data, 200, download_headers(filename))
