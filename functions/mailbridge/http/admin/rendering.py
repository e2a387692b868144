"""Admin pages as responses: the Jinja2 environment of templates/, the security headers, the
sign-in page, redirects with a flash message, and the sign-in notice every page may show."""

from __future__ import annotations

from datetime import datetime, timezone
import json
import os
from urllib.parse import quote

from mailbridge.domain import models
from mailbridge.errors import MailbridgeError
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.session import keep_flash, pop_flash
from mailbridge.services import admin_access, mailboxes

SESSION_TTL = admin_access.SESSION_TTL
SIGNIN_OUTCOMES = ("ok", "failed", "expired", "unknown")
TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")

_jinja = None


def environment():
    global _jinja
    if _jinja is None:
        import jinja2

        _jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                    trim_blocks=True, lstrip_blocks=True,
                                    undefined=jinja2.ChainableUndefined)
        _jinja.globals["q"] = lambda value: quote(str(value), safe="")
        _jinja.globals["instance_label"] = mailboxes.instance_label
        _jinja.filters["when"] = when
        _jinja.filters["count_of"] = lambda count, word: plural(int(count or 0), word)
        # a setting's JSON as an admin edits it: readable accents, one language a line
        _jinja.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False, indent=1) if value else ""
    return _jinja


def plural(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else word + 's'}"


def relative(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            amount = plural(seconds // size, unit)
            return f"in {amount}" if future else f"{amount} ago"
    return "just now"


def when(value, missing: str = "—"):
    """A stored ISO time as <time>: relative words, the exact time on hover; admin.js shows both
    in the viewer's own time zone."""
    from markupsafe import Markup, escape

    if not value:
        return missing
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{escape(moment.isoformat())}" title="{escape(exact)}">'
                  f'{escape(relative(moment, datetime.now(timezone.utc)))}</time>')


def headers_for(ctx: Ctx | None, extra: dict | None = None) -> dict:
    """The security headers of every admin answer (without a context: a CSP that allows nothing)."""
    headers = {
        "Content-Security-Policy": ctx.csp() if ctx else "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Cross-Origin-Opener-Policy": "same-origin",
    }
    headers.update(extra or {})
    return headers


def respond(body, status: int, headers: dict):
    from flask import Response

    return Response(body, status=status, headers=headers)


def see_other(ctx: Ctx, location: str):
    """A 303 to `location` (ours or Google's), with no flash message."""
    return respond("", 303, headers_for(ctx, {"Location": location}))


def _html(ctx: Ctx | None, document: str, status: int):
    return respond(document, status, headers_for(ctx, {"Content-Type": "text/html; charset=utf-8"}))


def render(ctx: Ctx, template: str, status: int = 200, **values):
    flash = None
    if ctx.session and ctx.session.get("flash") and status < 300:
        flash = ctx.session["flash"]
        pop_flash(ctx)
    if ctx.session and status < 300:
        values.setdefault("signin_notice", signin_notice(ctx))
    document = environment().get_template(template).render(
        u=ctx.url, csrf=ctx.csrf, signed_in=ctx.session is not None, instance=ctx.settings.instance,
        flash=flash, error=values.pop("error", None), **values)
    return _html(ctx, document, status)


def redirect(ctx: Ctx, location: str, flash: str | None = None, kind: str = "ok"):
    if flash and ctx.session_key:
        keep_flash(ctx, flash, kind)
    return see_other(ctx, location)


def unauthorized(ctx: Ctx | None, reason: str | None = None, status: int = 401):
    """The sign-in page: Google sign-in (or why it is not set up) and the break-glass link."""
    google_problem, next_path = "sign-in with Google is not available here", "/"
    if ctx is not None:
        try:
            google_problem = ctx.services.admin_signin.configured()
        except MailbridgeError as e:
            google_problem = str(e)
        if ctx.request.method == "GET" and ctx.path not in ("/login", "/signin/callback", "/signin"):
            next_path = ctx.path + (("?" + ctx.request.query_string.decode("latin-1"))
                                    if ctx.request.query_string else "")
    document = environment().get_template("unauthorized.html").render(
        u=(ctx.url if ctx else (lambda p="/", **q: p)), csrf="", signed_in=False, flash=None, error=None,
        instance="", reason=reason, google_problem=google_problem, next_path=next_path,
        session_hours=int(SESSION_TTL.total_seconds() // 3600),
        idle_minutes=int(admin_access.IDLE_TIMEOUT.total_seconds() // 60))
    return _html(ctx, document, status)


def continue_page(ctx: Ctx, title: str, text: str, location: str, status: int = 200):
    """A page that moves on by itself: after a cross-site arrival (Google's redirect) the
    SameSite=Strict session cookie is sent only on a navigation our own page starts."""
    document = environment().get_template("continue.html").render(
        u=ctx.url, csrf="", signed_in=False, flash=None, error=None, instance=ctx.settings.instance,
        title=title, text=text, location=location)
    return _html(ctx, document, status)


def signin_notice(ctx: Ctx) -> dict | None:
    """The result of a mailbox's Google sign-in (oauth_callback sends the admin back with
    ?signin=OUTCOME): the words come from the stored credential, never from the address."""
    outcome = ctx.request.args.get("signin", "")
    if outcome not in SIGNIN_OUTCOMES:
        return None
    parts = ctx.path.strip("/").split("/")
    if outcome == "unknown" or len(parts) < 2 or parts[0] != "mailboxes":
        return {"kind": "warn", "mailbox": None, "text": "The answer from Google did not match a sign-in started "
                "here (forged, or from another deployment). Start again from the mailbox's page."}
    try:
        mailbox = ctx.services.store.get_mailbox(parts[1])
    except MailbridgeError:
        return None
    credential = models.credential_of(mailbox, ctx.settings.instance) or {}
    if outcome == "ok" and credential.get("status") == "connected":
        return {"kind": "ok", "mailbox": None,
                "text": f"Connected as {credential.get('connected_email')}: new mail will become tickets."}
    reason = credential.get("last_error") or "the sign-in did not finish"
    return {"kind": "err", "mailbox": mailbox["name"], "text": f"Sign-in with Google failed: {reason}."}


def script(ctx: Ctx):
    """admin.js, the pages' only script (the CSP allows scripts from 'self' only)."""
    with open(os.path.join(TEMPLATES, "admin.js"), "rb") as handle:
        data = handle.read()
    return respond(data, 200, headers_for(ctx, {"Content-Type": "text/javascript; charset=utf-8",
                                                "Cache-Control": "public, max-age=300"}))
