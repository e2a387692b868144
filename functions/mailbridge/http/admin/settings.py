"""The settings page: the global switches, who may sign in as an admin, and the overrides of
which mailbox answers a ticket (domain/routing.py)."""

from __future__ import annotations

from mailbridge import errors
from mailbridge.domain import models, routing
from mailbridge.errors import MailbridgeError
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import field_errors
from mailbridge.http.admin.rendering import redirect, render
from mailbridge.services import mailboxes, outgoing

SCOPE_WORDS = {"ticket": "Ticket number", "ticket_type": "Ticket type", "team": "Team",
               "client": "Client (email domain)"}


def settings_page(ctx: Ctx, error=None, status=200, form=None, fields=()):
    services = ctx.services
    current = services.store.settings()
    names = [m["name"] for m in services.store.list_mailboxes()]
    scopes = list(routing.SCOPES)
    return render(ctx, "settings.html", status, s=current, mailbox_names=names, error=error,
                  overrides=outgoing.list_overrides(services), override_scopes=scopes, scope_words=SCOPE_WORDS,
                  form=form or {}, field_errors=field_errors(error, fields), admin_access=_admin_access_view(ctx))


def settings_save(ctx: Ctx):
    current = ctx.services.store.settings()
    wanted = {
        "use_incoming_service": "true" if ctx.form("use_incoming_service") == "on" else "false",
        "use_scheduling_service": "true" if ctx.form("use_scheduling_service") == "on" else "false",
        "default_outgoing_mailbox": ctx.form("default_outgoing_mailbox").strip(),
        "ticket_tag_format": ctx.form("ticket_tag_format", current.get("ticket_tag_format", "")).strip(),
    }
    try:
        for key, raw in wanted.items():
            typed = models.apply_global_setting(key, raw)
            if typed != current.get(key):
                mailboxes.set_global_setting(ctx.services, key, raw)
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e), form=dict(ctx.request.form),
                             fields=("ticket_tag_format",))
    return redirect(ctx, ctx.url("/settings") + "#switches", "Settings saved.")


def _admin_access_view(ctx: Ctx) -> dict:
    try:
        redirect_uri = ctx.settings.admin_redirect_uri
    except MailbridgeError:
        redirect_uri = "(set MAILBRIDGE_FUNCTION_URLS)"
    return {"env_emails": list(ctx.settings.admin_emails), "env_domain": ctx.settings.admin_domain,
            "redirect_uri": redirect_uri, "google_problem": ctx.services.admin_signin.configured()}


def admin_access_save(ctx: Ctx):
    try:
        for key in ("admin_emails", "admin_domain"):
            mailboxes.set_global_setting(ctx.services, key, ctx.form(key))
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url("/settings") + "#admin-access", "Admin access saved.")


def override_set(ctx: Ctx):
    try:
        mailboxes.check_override_target(ctx.services, ctx.form("scope"), ctx.form("key"), ctx.form("mailbox"))
        row = outgoing.set_override(ctx.services, ctx.form("scope"), ctx.form("key"), ctx.form("mailbox"))
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e), form=dict(ctx.request.form),
                             fields=("key", "scope", "mailbox"))
    return redirect(ctx, ctx.url("/settings") + "#overrides",
                    f"Override saved: {SCOPE_WORDS.get(row['scope'], row['scope'])} {row['display_key']} → {row['mailbox']}.")


def override_remove(ctx: Ctx):
    try:
        outgoing.remove_override(ctx.services, ctx.form("scope"), ctx.form("key"))
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url("/settings") + "#overrides", "Override removed.")
