"""Stored messages as the ticket page shows them: a message's HTML, sanitized and sandboxed in
a frame with its inline images in place (docs/images.md), and its attachments as downloads. Both
are looked up by key, never by a path."""

from __future__ import annotations

import re

from mailbridge.domain import images, signing
from mailbridge.domain.parsing import safe_filename, sanitize_html
from mailbridge.errors import AuthError, NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.rendering import respond
from mailbridge.http.common import download_headers, templates
from mailbridge.logs import log_event
from mailbridge.services import stored_bodies

MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+=-]{0,200}(~[A-Za-z0-9_.:+=-]{1,200})?$")
MESSAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
# "show images in this message": the browser fetches them itself (no proxy of ours), still no script
SHOWN_CSP = MESSAGE_CSP.replace("img-src 'self' data:", "img-src 'self' data: https: http:")
SHA256 = re.compile(r"[0-9a-f]{64}")
INLINE_PURPOSE = "inline_image"
INLINE_TTL_S = 3600  # the frame's image links outlive a long read, not a day
MAX_SIZED_PARTS = 20  # inline images whose pixel size is read from their bytes


def _find_message(ctx: Ctx, message_id: str) -> dict:
    """The stored message with this id: looked up by key in the store, never by a path."""
    if not MESSAGE_ID.match(message_id) or ".." in message_id:
        raise NotFound("no such message")
    message = ctx.services.store.find_stored_message(message_id)
    if message is None:
        raise NotFound("no such message")
    return stored_bodies.load(ctx.services, message)


def _pixel_size(ctx: Ctx, item: dict) -> tuple[int, int] | None:
    try:
        return images.dimensions(ctx.services.blobs.get(item["sha256"]))
    except Exception as e:  # noqa: BLE001 - a part we cannot read is shown at its own size
        log_event("WARNING", "inline image not read", error=e.__class__.__name__)
        return None


def _inline_parts(ctx: Ctx, message_id: str, message: dict) -> dict[str, dict]:
    """content id -> {"url": a signed link to this part on our attachment route, "size"}: the
    sandboxed frame has no session (its requests carry no cookie), the link is its permission."""
    parts: dict[str, dict] = {}
    for index, item in enumerate(message.get("attachments") or []):
        content_id = str(item.get("content_id") or "").strip().strip("<>").lower()
        if not content_id or item.get("content_type") not in images.SHOWN_TYPES \
                or not SHA256.fullmatch(str(item.get("sha256") or "")):
            continue
        token = signing.sign(ctx.settings.signing_key, INLINE_PURPOSE, {"m": message_id, "i": index}, INLINE_TTL_S)
        size = _pixel_size(ctx, item) if len(parts) < MAX_SIZED_PARTS else None
        parts[content_id] = {"url": ctx.url(f"/inline/{token}"), "size": size}
    return parts


def show_remote_images(ctx: Ctx, message: dict) -> bool:
    """Whether this frame loads the message's remote images: the agent asked for this message
    (?images=1), or an admin chose to always show the sender's (docs/images.md)."""
    if ctx.request.args.get("images") == "1":
        return True
    sender = ((message.get("from") or {}).get("email") or "").lower()
    return bool(sender) and sender in remembered_senders(ctx)


def remembered_senders(ctx: Ctx) -> set[str]:
    """Senders whose remote images an admin chose to always show (setting show_images_from)."""
    return set(ctx.services.store.settings().get("show_images_from") or [])


def message_html(ctx: Ctx, message_id: str):
    message = _find_message(ctx, message_id)
    show = show_remote_images(ctx, message)
    # stored sanitized; cleaned again in depth, images placed, then framed by templates/message.html
    body, _counts = images.frame_html(sanitize_html(message.get("html") or ""),
                                      _inline_parts(ctx, message_id, message), show)
    document = templates().get_template("message.html").render(body_html=body)
    return respond(document, 200, {
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": SHOWN_CSP if show else MESSAGE_CSP,
        "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def inline_image(ctx: Ctx, token: str):
    """An inline image of a framed message: the attachment route, by the signed link that
    message_html made (the frame's request has no session)."""
    try:
        payload = signing.verify(ctx.settings.signing_key, INLINE_PURPOSE, token)
    except AuthError:
        raise NotFound("no such image") from None
    return attachment(ctx, str(payload.get("m") or ""), str(payload.get("i")))


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
