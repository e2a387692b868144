"""The admin session of a request: the cookie's session, its flash message, the CSRF check.

Sessions themselves (keys, idle and absolute expiry) are services/admin_access.py's.
"""

from __future__ import annotations

import hmac

from mailbridge.http.admin.context import Ctx
from mailbridge.services import admin_access


def load_session(ctx: Ctx) -> None:
    found = admin_access.load_session(ctx.services, ctx.request.cookies.get(ctx.cookie_name, ""))
    if found is not None:
        ctx.session_key, ctx.session = found


def keep_flash(ctx: Ctx, text: str, kind: str) -> None:
    """The message the next page shows once (render pops it)."""
    ctx.services.store.update_admin_session(ctx.session_key, {"flash": {"kind": kind, "text": text[:1000]}})


def pop_flash(ctx: Ctx) -> None:
    ctx.services.store.clear_admin_flash(ctx.session_key)


def csrf_ok(ctx: Ctx) -> bool:
    """Whether a state-changing form carries this session's CSRF token."""
    sent = ctx.request.form.get("csrf", "")
    return bool(sent) and hmac.compare_digest(sent.encode(), ctx.csrf.encode())
