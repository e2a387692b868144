"""Admin pages: server-rendered HTML over the same use cases as the CLI.

Admins sign in with Google (services/admin_access.py); a signed, single-use link
(`scripts/mailbridge admin-url`) is the break-glass way in, spent only by the POST of its
confirmation page (a link scanner's GET or HEAD spends nothing). Every state-changing form
carries the session's CSRF token. Paths are relative to the function, whether it is mounted
at `$MAILBRIDGE_FUNCTIONS_URL/admin` or deployed at the root of its own URL.

One module per page or resource (signin, mailboxes, credentials, labels, mailbox_settings,
inbound, settings, tickets, messages, audit) over a shared core (context: the request; session: the
session, its flash, CSRF; rendering: templates and headers; forms; routing: the gates and the
error policy; audit_trail: the audit record of each action). The page modules import the core, never each other in a cycle; this module
composes their handlers into the route table.
"""

from __future__ import annotations

from mailbridge.http.admin import audit, credentials, inbound, labels, mailbox_settings, mailboxes, messages, \
    routing, settings, signin, tickets
from mailbridge.http.admin.rendering import script

PAGES = [
    # method, path, handler, needs a session
    ("GET", "/login", signin.login, False),
    ("POST", "/login", signin.login, False),
    ("POST", "/signin", signin.signin_start, False),
    ("GET", "/signin/callback", signin.signin_callback, False),
    ("GET", "/admin.js", script, False),
    ("POST", "/logout", signin.logout, True),
    ("GET", "/", mailboxes.mailbox_list, True),
    ("GET", "/mailboxes", mailboxes.mailbox_list, True),
    ("POST", "/mailboxes", mailboxes.mailbox_create, True),
    ("GET", "/mailboxes/<name:name>", mailboxes.mailbox_detail, True),
    ("POST", "/mailboxes/<name:name>/credentials", credentials.credentials_add, True),
    ("GET", "/mailboxes/<name:name>/connect", credentials.connect_confirm, True),
    ("POST", "/mailboxes/<name:name>/credentials/<instance>", credentials.credentials_update, True),
    ("POST", "/mailboxes/<name:name>/credentials/<instance>/remove", credentials.credentials_remove, True),
    ("POST", "/mailboxes/<name:name>/remove", mailboxes.mailbox_remove, True),
    ("POST", "/mailboxes/<name:name>/connect", credentials.connect, True),
    ("POST", "/mailboxes/<name:name>/disconnect", credentials.disconnect, True),
    ("POST", "/mailboxes/<name:name>/poll", mailboxes.poll_now, True),
    ("POST", "/mailboxes/<name:name>/deletion-label", labels.deletion_label, True),
    ("POST", "/mailboxes/<name:name>/labels", labels.label_create, True),
    ("POST", "/mailboxes/<name:name>/incoming", mailbox_settings.incoming_save, True),
    ("POST", "/mailboxes/<name:name>/outgoing", mailbox_settings.outgoing_save, True),
    ("GET", "/mailboxes/<name:name>/inbound", inbound.inbound, True),
    ("POST", "/mailboxes/<name:name>/inbound/<gmail_id>/retry", inbound.inbound_retry, True),
    ("POST", "/mailboxes/<name:name>/spam/<gmail_id>/ticket", mailboxes.spam_ticket, True),
    ("GET", "/mailboxes/<name:name>/inbound/<gmail_id>/raw", inbound.inbound_raw, True),
    ("GET", "/settings", settings.settings_page, True),
    ("POST", "/settings", settings.settings_save, True),
    ("POST", "/settings/admin-access", settings.admin_access_save, True),
    ("POST", "/settings/overrides", settings.override_set, True),
    ("POST", "/settings/overrides/remove", settings.override_remove, True),
    ("GET", "/tickets", tickets.ticket_list, True),
    ("GET", "/tickets/<ticket_id>", tickets.ticket_page, True),
    ("POST", "/tickets/<ticket_id>/reply", tickets.ticket_reply, True),
    ("POST", "/tickets/<ticket_id>/status", tickets.ticket_status, True),
    ("POST", "/tickets/<ticket_id>/participants", tickets.participant_confirm, True),
    ("POST", "/tickets/<ticket_id>/field", tickets.ticket_field, True),
    ("POST", "/tickets/<ticket_id>/merge", tickets.ticket_merge, True),
    ("POST", "/tickets/<ticket_id>/split", tickets.ticket_split, True),
    ("POST", "/tickets/<ticket_id>/images", tickets.remember_images, True),
    ("GET", "/audit", audit.audit_page, True),
    ("GET", "/messages/<message_id>/html", messages.message_html, True),
    ("GET", "/messages/<message_id>/attachments/<index>", messages.attachment, True),
    ("GET", "/inline/<token>", messages.inline_image, False),  # signed: the sandboxed frame has no session
]
URLS = routing.url_map(PAGES)


def handle(request):
    """The `admin` function's entry point (functions/main.py)."""
    return routing.handle(request, URLS)
