"""The audit log page: one record per admin action, newest first, filtered by actor and time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailbridge.errors import InvalidInput
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import page_size
from mailbridge.http.admin.rendering import render
from mailbridge.services import audit

SINCE_DAYS = {"": None, "1": 1, "7": 7, "30": 30, "400": 400}


def audit_page(ctx: Ctx):
    args = ctx.request.args
    actor = args.get("actor", "").strip()[:200]
    days = args.get("days", "").strip()
    if days not in SINCE_DAYS:
        raise InvalidInput("days must be 1, 7, 30 or 400")
    since = None
    if SINCE_DAYS[days]:
        since = (datetime.now(timezone.utc) - timedelta(days=SINCE_DAYS[days])).isoformat(timespec="milliseconds")
    rows = audit.records(ctx.services, since=since, actor=actor or None, limit=page_size(ctx))
    return render(ctx, "audit.html", rows=rows, actor=actor, days=days, day_choices=list(SINCE_DAYS))
