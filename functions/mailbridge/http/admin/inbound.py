"""The inbound log of a mailbox (one row per Gmail message taken in, newest first, paged), the
retry of a quarantined message and the download of its raw copy (docs/reliability.md, 28.0)."""

from __future__ import annotations

import re
from urllib.parse import quote

from mailbridge import errors
from mailbridge.errors import InvalidInput, MailbridgeError, NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import PAGE_SIZE, page_size
from mailbridge.http.admin.rendering import redirect, render, respond
from mailbridge.http.common import download_headers
from mailbridge.logs import log_event
from mailbridge.services import sync, tickets

GMAIL_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
ROW_FIELDS = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at",
              "subject", "from_email", "raw_sha256")


def inbound(ctx: Ctx, name: str, error=None, status=200):
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    before = ctx.request.args.get("before", "").strip()[:40] or None
    size = page_size(ctx)
    found, more = tickets.page(services.store.inbound_log(name, size + 1, before=before), size)
    rows = [{k: row.get(k) for k in ROW_FIELDS} for row in found]
    shown_size = size if size != PAGE_SIZE else None
    older = ctx.url(f"/mailboxes/{quote(name, safe='')}/inbound", before=rows[-1]["processed_at"], size=shown_size) \
        if more and rows and rows[-1].get("processed_at") else None
    return render(ctx, "inbound.html", status, m=mailbox, rows=rows, error=error, older=older, paged=bool(before),
                  newest=ctx.url(f"/mailboxes/{quote(name, safe='')}/inbound", size=shown_size))


def inbound_retry(ctx: Ctx, name: str, gmail_id: str):
    try:
        if not GMAIL_ID.match(gmail_id):
            raise InvalidInput("not a Gmail message id")
        sync.retry_quarantined(ctx.services, name, gmail_id)
    except MailbridgeError as e:
        return inbound(ctx, name, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(name, safe='')}/inbound"),
                    f"Message {gmail_id} will be retried at the next poll (or use Poll now).")


def inbound_raw(ctx: Ctx, name: str, gmail_id: str):
    """The raw copy of a message quarantined because it could never be stored, as a .eml download
    with the attachment route's headers: the admin can read what Gmail holds even after it is gone."""
    if not GMAIL_ID.match(gmail_id):
        raise NotFound("no such message")
    row = ctx.services.store.get_inbound_rows(name, [gmail_id]).get(gmail_id) or {}
    sha256 = str(row.get("raw_sha256") or "")
    if row.get("outcome") != "quarantined" or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise NotFound("no raw copy is kept for this message")
    try:
        data = ctx.services.blobs.get(sha256)
    except Exception as e:  # noqa: BLE001 - a storage error is a readable 404, never a trace
        log_event("WARNING", "raw copy download failed", mailbox=name, error=e.__class__.__name__)
        raise NotFound("the raw copy is not available") from None
    return respond(data, 200, download_headers(f"{gmail_id}.eml"))
