"""Admin pages: server-rendered HTML over the same use cases as the CLI.

A signed, single-use link (`scripts/mailbridge admin-url`) opens a session; every state-changing
form carries the session's CSRF token. Paths are relative to the function, whether it is mounted
at `$MAILBRIDGE_FUNCTIONS_URL/admin` or deployed at the root of its own URL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib
import hmac
import os
import re
import secrets
from urllib.parse import quote, urlencode, urlparse

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, Rule

from mailbridge import errors
from mailbridge.domain import models
from mailbridge.errors import AuthError, InvalidInput, MailbridgeError, NotFound
from mailbridge.http.common import services, templates
from mailbridge.logs import log_event
from mailbridge.domain.parsing import safe_filename, sanitize_html
from mailbridge.services import labels, mailboxes, outbox, outgoing, sync, tickets

SESSION_TTL = timedelta(hours=12)
TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
TICKET_ID = re.compile(r"^\d{1,12}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+=-]{0,200}(~[A-Za-z0-9_.:+=-]{1,200})?$")
GMAIL_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
MESSAGE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"

_jinja = None


# -- plumbing ------------------------------------------------------------------------------------
def environment():
    global _jinja
    if _jinja is None:
        import jinja2

        _jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                    trim_blocks=True, lstrip_blocks=True,
                                    undefined=jinja2.ChainableUndefined)
        _jinja.globals["q"] = lambda value: quote(str(value), safe="")
    return _jinja


def _origin(url: str) -> str:
    parsed = urlparse(url or "")
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""


class Ctx:
    """One request: where the function is mounted, its services, the session."""

    def __init__(self, request):
        self.request = request
        self.services = services()
        self.settings = self.services.settings
        self.session = None
        self.session_key = None
        self.base, self.path = self._mount(request)

    def _mount(self, request):
        path = request.path or "/"
        base = (request.script_root or "").rstrip("/")
        if path == "/admin" or path.startswith("/admin/"):  # mounted under one base URL, prefix kept
            base, path = base + "/admin", path[len("/admin"):] or "/"
        if not base and self.settings.functions_url:
            functions = urlparse(self.settings.functions_url)
            if functions.netloc == request.host:  # the platform stripped the function name
                base = functions.path.rstrip("/") + "/admin"
        return base, path

    def url(self, path: str = "/", **query) -> str:
        query = {k: v for k, v in query.items() if v not in (None, "")}
        return self.base + path + (("?" + urlencode(query)) if query else "")

    @property
    def secure(self) -> bool:
        host = (self.request.host or "").rsplit(":", 1)[0] if not (self.request.host or "").startswith("[") \
            else (self.request.host or "").split("]")[0] + "]"
        return host not in LOCAL_HOSTS

    @property
    def cookie_name(self) -> str:
        return "__Host-mailbridge_admin" if self.secure else "mailbridge_admin"

    def form(self, name: str, default: str = "") -> str:
        return self.request.form.get(name, default)

    @property
    def csrf(self) -> str:
        return (self.session or {}).get("csrf", "")

    def csp(self) -> str:
        form_targets = {"'self'"}
        for url in (self.settings.functions_url, self.settings.oauth_auth_url or "https://accounts.google.com"):
            if _origin(url):
                form_targets.add(_origin(url))
        return ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
                "frame-src 'self'; connect-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                f"form-action {' '.join(sorted(form_targets))}")


def _headers(ctx: Ctx | None, extra: dict | None = None) -> dict:
    headers = {
        "Content-Security-Policy": ctx.csp() if ctx else "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Cross-Origin-Opener-Policy": "same-origin",
    }
    headers.update(extra or {})
    return headers


def _response(body, status: int, headers: dict):
    from flask import Response

    return Response(body, status=status, headers=headers)


def render(ctx: Ctx, template: str, status: int = 200, **values):
    flash = None
    if ctx.session and ctx.session.get("flash") and status < 300:
        flash = ctx.session["flash"]
        _pop_flash(ctx)
    document = environment().get_template(template).render(
        u=ctx.url, csrf=ctx.csrf, signed_in=ctx.session is not None, instance=ctx.settings.instance,
        flash=flash, error=values.pop("error", None), **values)
    return _response(document, status, _headers(ctx, {"Content-Type": "text/html; charset=utf-8"}))


def redirect(ctx: Ctx, location: str, flash: str | None = None, kind: str = "ok"):
    if flash and ctx.session_key:
        ctx.services.store.update_admin_session(ctx.session_key, {"flash": {"kind": kind, "text": flash[:1000]}})
    return _response("", 303, _headers(ctx, {"Location": location}))


def unauthorized(ctx: Ctx | None, reason: str | None = None):
    document = environment().get_template("unauthorized.html").render(
        u=(ctx.url if ctx else (lambda p="/", **q: p)), csrf="", signed_in=False, flash=None, error=None,
        instance="", reason=reason)
    return _response(document, 401, _headers(ctx, {"Content-Type": "text/html; charset=utf-8"}))


# -- sessions -----------------------------------------------------------------------------------
def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def load_session(ctx: Ctx) -> None:
    session_id = ctx.request.cookies.get(ctx.cookie_name, "")
    if not session_id or len(session_id) > 200:
        return
    key = _session_key(session_id)
    data = ctx.services.store.get_admin_session(key)
    if data is None:
        return
    if data.get("expires_at") is None or data["expires_at"] < datetime.now(timezone.utc):
        return
    ctx.session, ctx.session_key = data, key


def _pop_flash(ctx: Ctx) -> None:
    ctx.services.store.clear_admin_flash(ctx.session_key)


def login(ctx: Ctx):
    token = ctx.request.args.get("t", "")
    if not token:
        return unauthorized(ctx)
    try:
        mailboxes.verify_link_once(ctx.services, "admin_login", token)
    except AuthError as e:
        return unauthorized(ctx, str(e))
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    ctx.services.store.put_admin_session(_session_key(session_id), {
        "csrf": secrets.token_urlsafe(32), "created_at": now, "expires_at": now + SESSION_TTL})
    log_event("INFO", "admin session opened")
    response = _response("", 303, _headers(ctx, {"Location": ctx.url("/")}))
    response.set_cookie(ctx.cookie_name, session_id, max_age=int(SESSION_TTL.total_seconds()), path="/",
                        secure=ctx.secure, httponly=True, samesite="Strict")
    return response


def logout(ctx: Ctx):
    ctx.services.store.delete_admin_session(ctx.session_key)
    response = unauthorized(ctx, "You are signed out.")
    response.status_code = 200
    response.delete_cookie(ctx.cookie_name, path="/", secure=ctx.secure, httponly=True, samesite="Strict")
    return response


# -- mailboxes ----------------------------------------------------------------------------------
def mailbox_list(ctx: Ctx, error=None, status=200, form=None):
    services = ctx.services
    rows = []
    for mailbox in services.store.list_mailboxes():
        view = mailboxes.view(services, mailbox)
        own = models.credential_of(view, ctx.settings.instance)
        rows.append({**view, "own": own})
    return render(ctx, "mailboxes.html", status, mailboxes=rows, error=error, form=form or {})


def mailbox_create(ctx: Ctx):
    try:
        created = mailboxes.add_mailbox(ctx.services, ctx.form("name").strip(), ctx.form("address").strip())
    except MailbridgeError as e:
        return mailbox_list(ctx, str(e), errors.http_status(e), form=ctx.request.form)
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(created['name'], safe='')}"),
                    f"Mailbox {created['name']} created. Next: add a credential set for instance "
                    f"{ctx.settings.instance}.")


def _labels_for(ctx: Ctx, view: dict):
    own = models.credential_of(view, ctx.settings.instance)
    if not own or own["status"] != "connected":
        return None, "Sign in with Google first: labels are read from the connected mailbox."
    try:
        return labels.list_labels(ctx.services, view["name"]), None
    except MailbridgeError as e:
        return None, f"Cannot read labels from Gmail: {e}"


def mailbox_detail(ctx: Ctx, name: str, error=None, status=200):
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    view = mailboxes.view(services, mailbox)
    view["outbox"] = outbox.status(services, mailbox)
    own = models.credential_of(view, ctx.settings.instance)
    label_list, label_note = _labels_for(ctx, view)
    redirect_uri = ctx.settings.redirect_uri if ctx.settings.functions_url else ""
    return render(ctx, "mailbox.html", status, m=view, own=own, labels=label_list, label_note=label_note,
                  redirect_uri=redirect_uri, after_processing=models.AFTER_PROCESSING, error=error)


def _mailbox_action(ctx: Ctx, name: str, action, done_message):
    """Run one mailbox action; on a domain error re-render the mailbox page with the reason."""
    try:
        result = action()
    except MailbridgeError as e:
        if isinstance(e, NotFound) and "no mailbox" in str(e):
            raise
        return mailbox_detail(ctx, name, str(e), errors.http_status(e))
    message = done_message(result) if callable(done_message) else done_message
    kind = "ok"
    if isinstance(message, tuple):
        message, kind = message
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(name, safe='')}"), message, kind)


def credentials_add(ctx: Ctx, name: str):
    instance = ctx.form("instance", ctx.settings.instance).strip() or ctx.settings.instance
    return _mailbox_action(ctx, name, lambda: mailboxes.add_credentials(
        ctx.services, name, instance, ctx.form("client_id"), ctx.form("client_secret")),
        f"Credential set for instance {instance} added. Register the redirect URI with the OAuth "
        "client in Google Cloud console, then sign in with Google.")


def connect(ctx: Ctx, name: str):
    try:
        url = mailboxes.connect_url(ctx.services, name)
    except MailbridgeError as e:
        return mailbox_detail(ctx, name, str(e), errors.http_status(e))
    return _response("", 303, _headers(ctx, {"Location": url}))


def disconnect(ctx: Ctx, name: str):
    return _mailbox_action(ctx, name, lambda: mailboxes.disconnect(ctx.services, name),
                           "Disconnected: the token was revoked and removed. Polling stops for this mailbox.")


def poll_now(ctx: Ctx, name: str):
    def done(result):
        if result.get("status") == "off":
            return f"Nothing polled: {result['reason']}.", "warn"
        row = (result.get("mailboxes") or [{}])[0]
        if row.get("outcome") == "skipped":
            return f"Poll skipped: {row.get('reason')}.", "warn"
        if row.get("outcome") == "error":
            return f"Poll failed: {row.get('error')}", "warn"
        counts = row.get("counts", {})
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
        return f"Polled: {detail}.", "ok"

    return _mailbox_action(ctx, name, lambda: sync.poll(ctx.services, name, scheduled=False), done)


def deletion_label(ctx: Ctx, name: str):
    def done(result):
        text = f"Deletion label is now {result['name']} ({result['id']})."
        if result.get("warning"):
            return f"{text} Warning: {result['warning']}.", "warn"
        return text

    return _mailbox_action(ctx, name, lambda: labels.set_deletion_label(ctx.services, name, ctx.form("label")), done)


def label_create(ctx: Ctx, name: str):
    return _mailbox_action(ctx, name, lambda: labels.create_label(ctx.services, name, ctx.form("label_name")),
                           lambda label: f"Label {label['name']} ({label['id']}) created.")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines() if line.strip()]


def _save_section(ctx: Ctx, name: str, values: dict) -> int:
    """Validate every field like `mailbox set` does, then write them in one update."""
    mailbox = ctx.services.store.get_mailbox(name)
    updates = {}
    for key, raw in values.items():
        path, typed = models.apply_mailbox_setting(mailbox, key, raw)
        updates[path] = typed
    ctx.services.store.update_mailbox(name, updates)
    return len(updates)


def _megabytes(raw: str, field: str) -> str:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{field} must be a number of megabytes, got {raw!r}") from None
    if value <= 0 or value > 150:
        raise InvalidInput(f"{field} must be between 0 and 150 MB (Gmail's own limit)")
    return str(int(value * 1024 * 1024))


def incoming_save(ctx: Ctx, name: str):
    def save():
        return _save_section(ctx, name, {
            "incoming.enabled": ctx.form("enabled") == "on",
            "incoming.after_processing": ctx.form("after_processing"),
            "incoming.processed_label": ctx.form("processed_label").strip(),
            "incoming.ignore_senders": _lines(ctx.form("ignore_senders")),
            "incoming.ignore_subjects": [line.strip() for line in ctx.form("ignore_subjects").splitlines() if line.strip()],
            "incoming.accept_auto_replies": ctx.form("accept_auto_replies") == "on",
            "incoming.max_message_bytes": _megabytes(ctx.form("max_message_mb", "25"), "size limit"),
            "incoming.backfill_days": ctx.form("backfill_days", "0").strip() or "0",
        })

    return _mailbox_action(ctx, name, save, "Incoming settings saved.")


def outgoing_save(ctx: Ctx, name: str):
    def save():
        return _save_section(ctx, name, {
            "outgoing.enabled": ctx.form("enabled") == "on",
            "outgoing.send_as": ctx.form("send_as").strip(),
            "outgoing.display_name": ctx.form("display_name").strip(),
            "outgoing.acknowledge_new": ctx.form("acknowledge_new") == "on",
            "outgoing.acknowledgement_limit_per_hour": ctx.form("acknowledgement_limit_per_hour", "3").strip(),
            "outgoing.acknowledgement_template": ctx.form("acknowledgement_template").replace("\r\n", "\n"),
            "outgoing.daily_send_budget": ctx.form("daily_send_budget", "2000").strip(),
        })

    for field in ("display_name", "send_as"):
        if any(c in ctx.form(field) for c in "\r\n"):
            return mailbox_detail(ctx, name, f"{field.replace('_', ' ')} must be a single line", 400)
    return _mailbox_action(ctx, name, save, "Outgoing settings saved.")


# -- inbound log --------------------------------------------------------------------------------
def inbound(ctx: Ctx, name: str, error=None, status=200):
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    fields = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at",
              "subject", "from_email")
    rows = [{k: row.get(k) for k in fields} for row in services.store.inbound_log(name, 500)]
    return render(ctx, "inbound.html", status, m=mailbox, rows=rows, error=error)


def inbound_retry(ctx: Ctx, name: str, gmail_id: str):
    try:
        if not GMAIL_ID.match(gmail_id):
            raise InvalidInput("not a Gmail message id")
        ctx.services.store.get_mailbox(name)
        ctx.services.store.retry_quarantined(name, gmail_id)
    except MailbridgeError as e:
        return inbound(ctx, name, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(name, safe='')}/inbound"),
                    f"Message {gmail_id} will be retried at the next poll (or use Poll now).")


# -- global settings ----------------------------------------------------------------------------
def _overrides(ctx: Ctx):
    return outgoing.list_overrides(ctx.services)


def settings_page(ctx: Ctx, error=None, status=200):
    services = ctx.services
    current = services.store.settings()
    names = [m["name"] for m in services.store.list_mailboxes()]
    scopes = list(outgoing.SCOPES)
    return render(ctx, "settings.html", status, s=current, mailbox_names=names, error=error,
                  overrides=_overrides(ctx), override_scopes=scopes)


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
        return settings_page(ctx, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url("/settings"), "Settings saved.")


def override_set(ctx: Ctx):
    try:
        row = outgoing.set_override(ctx.services, ctx.form("scope"), ctx.form("key"), ctx.form("mailbox"))
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url("/settings"),
                    f"Override saved: {row['scope'].replace('_', ' ')} {row['display_key']} → {row['mailbox']}.")


def override_remove(ctx: Ctx):
    try:
        outgoing.remove_override(ctx.services, ctx.form("scope"), ctx.form("key"))
    except MailbridgeError as e:
        return settings_page(ctx, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url("/settings"), "Override removed.")


# -- tickets ------------------------------------------------------------------------------------
def ticket_list(ctx: Ctx):
    services = ctx.services
    mailbox = ctx.request.args.get("mailbox", "").strip() or None
    status = ctx.request.args.get("status", "").strip() or None
    if status not in (None, "open", "closed"):
        status = None
    names = [m["name"] for m in services.store.list_mailboxes()]
    if mailbox and mailbox not in names:
        mailbox = None
    rows = services.store.list_tickets(mailbox=mailbox, status=status, limit=200)
    return render(ctx, "tickets.html", tickets=rows, mailbox_names=names, mailbox=mailbox or "", status_filter=status or "")


def _resolution(ctx: Ctx, ticket: dict) -> dict:
    """Which mailbox will send a reply, and why (outgoing.resolve_outgoing)."""
    try:
        result = outgoing.resolve_outgoing(ctx.services, ticket)
    except MailbridgeError as e:
        return {"ok": False, "mailbox": None, "explanation": str(e), "skipped": []}
    return {"ok": True, "mailbox": result["mailbox"], "rule": result.get("rule"),
            "explanation": result.get("explanation", ""), "skipped": result.get("skipped", [])}


def ticket_page(ctx: Ctx, ticket_id: str, error=None, status=200, body=""):
    if not TICKET_ID.match(ticket_id):
        raise NotFound(f"no ticket {ticket_id!r}")
    store = ctx.services.store
    ticket = store.get_ticket(ticket_id)
    view = tickets.view(ctx.services, ticket)
    # One key per rendered form: a double click or a re-sent POST resumes the same send, never a second one.
    reply_key = f"reply-admin-{secrets.token_urlsafe(18)}"
    return render(ctx, "ticket.html", status, t=view, resolution=_resolution(ctx, ticket), error=error, body=body,
                  reply_key=reply_key)


def ticket_reply(ctx: Ctx, ticket_id: str):
    body = ctx.form("body").replace("\r\n", "\n")
    key = ctx.form("reply_key").strip() or None
    try:
        if not TICKET_ID.match(ticket_id):
            raise NotFound(f"no ticket {ticket_id!r}")
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


# -- stored messages: sandboxed HTML and attachments --------------------------------------------
def _find_message(ctx: Ctx, message_id: str) -> dict:
    """The stored message with this id: looked up by key in the store, never by a path."""
    if not MESSAGE_ID.match(message_id) or ".." in message_id:
        raise NotFound("no such message")
    message = ctx.services.store.find_stored_message(message_id)
    if message is None:
        raise NotFound("no such message")
    return message


def message_html(ctx: Ctx, message_id: str):
    message = _find_message(ctx, message_id)
    # stored sanitized; cleaned again in depth, then framed by templates/message.html
    document = templates().get_template("message.html").render(body_html=sanitize_html(message.get("html") or ""))
    return _response(document, 200, {
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
    # One filename rule (parse.safe_filename, as at ingest); only the header's quoting is ours.
    filename = safe_filename(item.get("filename") or "") or f"attachment-{int(index) + 1}"
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()+,=@!#$%&'~-]", "_", filename.encode("ascii", "replace").decode())
    return _response(data, 200, {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


def script(ctx: Ctx):
    with open(os.path.join(TEMPLATES, "admin.js"), "rb") as handle:
        data = handle.read()
    return _response(data, 200, _headers(ctx, {"Content-Type": "text/javascript; charset=utf-8",
                                               "Cache-Control": "public, max-age=300"}))


# -- routing ------------------------------------------------------------------------------------
class _NameConverter(BaseConverter):
    """A mailbox name as models.validate_name accepts it."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


PAGES = [
    # method, path, handler, needs a session
    ("GET", "/login", login, False),
    ("GET", "/admin.js", script, False),
    ("POST", "/logout", logout, True),
    ("GET", "/", mailbox_list, True),
    ("GET", "/mailboxes", mailbox_list, True),
    ("POST", "/mailboxes", mailbox_create, True),
    ("GET", "/mailboxes/<name:name>", mailbox_detail, True),
    ("POST", "/mailboxes/<name:name>/credentials", credentials_add, True),
    ("POST", "/mailboxes/<name:name>/connect", connect, True),
    ("POST", "/mailboxes/<name:name>/disconnect", disconnect, True),
    ("POST", "/mailboxes/<name:name>/poll", poll_now, True),
    ("POST", "/mailboxes/<name:name>/deletion-label", deletion_label, True),
    ("POST", "/mailboxes/<name:name>/labels", label_create, True),
    ("POST", "/mailboxes/<name:name>/incoming", incoming_save, True),
    ("POST", "/mailboxes/<name:name>/outgoing", outgoing_save, True),
    ("GET", "/mailboxes/<name:name>/inbound", inbound, True),
    ("POST", "/mailboxes/<name:name>/inbound/<gmail_id>/retry", inbound_retry, True),
    ("GET", "/settings", settings_page, True),
    ("POST", "/settings", settings_save, True),
    ("POST", "/settings/overrides", override_set, True),
    ("POST", "/settings/overrides/remove", override_remove, True),
    ("GET", "/tickets", ticket_list, True),
    ("GET", "/tickets/<ticket_id>", ticket_page, True),
    ("POST", "/tickets/<ticket_id>/reply", ticket_reply, True),
    ("POST", "/tickets/<ticket_id>/status", ticket_status, True),
    ("GET", "/messages/<message_id>/html", message_html, True),
    ("GET", "/messages/<message_id>/attachments/<index>", attachment, True),
]
URLS = Map([Rule(path, methods=[method], endpoint=(handler, private)) for method, path, handler, private in PAGES],
           converters={"name": _NameConverter}, strict_slashes=False, merge_slashes=False)


def _match(method: str, path: str):
    """(handler, needs a session, path values, allowed methods): werkzeug routing over PAGES."""
    try:
        (handler, private), values = URLS.bind("admin").match(path, method=method)
    except MethodNotAllowed as e:
        return None, True, {}, list(e.valid_methods or [])
    except HTTPException:
        return None, True, {}, []
    return handler, private, values, []


def handle(request):
    ctx = None
    try:
        ctx = Ctx(request)
        handler, private, params, allowed = _match(request.method, ctx.path)
        if private or handler is None:
            load_session(ctx)
            if ctx.session is None:
                return unauthorized(ctx)
        if handler is None:
            if allowed:
                return render(ctx, "error.html", 405, title="Method not allowed",
                              error="This address does not accept that kind of request.")
            return render(ctx, "error.html", 404, title="Not found", error="There is no page at this address.")
        if request.method == "POST" and private:
            sent = request.form.get("csrf", "")
            if not sent or not hmac.compare_digest(sent.encode(), ctx.csrf.encode()):
                return render(ctx, "error.html", 403, title="Request refused",
                              error="The form's security token is missing or wrong. Reload the page and try again.")
        return handler(ctx, **params)
    except MailbridgeError as e:
        if ctx is None:
            raise
        status = errors.http_status(e)
        log_event("WARNING" if status < 500 else "ERROR", "admin request failed",
                  path=ctx.path, error=e.__class__.__name__)
        if ctx.session is None:
            return unauthorized(ctx)
        return render(ctx, "error.html", status, title="Cannot do that", error=str(e))
    except Exception as e:  # noqa: BLE001 - never show a stack trace (it could hold data)
        log_event("ERROR", "admin request crashed", path=getattr(ctx, "path", "?"),
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")
        if ctx is None:
            return _response("internal error", 500, _headers(None, {"Content-Type": "text/plain"}))
        return render(ctx, "error.html", 500, title="Something went wrong",
                      error="The server hit an unexpected error; it is logged. Try again.")
