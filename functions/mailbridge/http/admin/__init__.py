"""Admin pages: server-rendered HTML over the same use cases as the CLI.

Admins sign in with Google (services/admin_access.py); a signed, single-use link
(`scripts/mailbridge admin-url`) is the break-glass way in, spent only by the POST of its
confirmation page (a link scanner's GET or HEAD spends nothing). Every state-changing form
carries the session's CSRF token. Paths are relative to the function, whether it is mounted
at `$MAILBRIDGE_FUNCTIONS_URL/admin` or deployed at the root of its own URL.
"""

from __future__ import annotations

from datetime import datetime, timezone
import hmac
import os
import re
import secrets
from urllib.parse import quote, urlencode, urlparse

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, Rule

from mailbridge import errors
from mailbridge.domain import models, routing
from mailbridge.errors import AuthError, InvalidInput, MailbridgeError, NotFound
from mailbridge.http.common import services, templates
from mailbridge.logs import log_event
from mailbridge.domain.parsing import safe_filename, sanitize_html
from mailbridge.services import admin_access, connect as connect_service, labels, mailboxes, outbox, outgoing, sync, tickets

SESSION_TTL = admin_access.SESSION_TTL
SIGNIN_COOKIE = "mailbridge_signin"
SIGNIN_OUTCOMES = ("ok", "failed", "expired", "unknown")
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
        _jinja.globals["instance_label"] = mailboxes.instance_label
        _jinja.filters["when"] = when
        _jinja.filters["count_of"] = lambda count, word: plural(int(count or 0), word)
    return _jinja


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
        for url in (self.settings.functions_url, self.settings.oauth_auth_url or "https://accounts.google.com",
                    *self.settings.function_urls.values()):
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
    if ctx.session and status < 300:
        values.setdefault("signin_notice", _signin_notice(ctx))
    document = environment().get_template(template).render(
        u=ctx.url, csrf=ctx.csrf, signed_in=ctx.session is not None, instance=ctx.settings.instance,
        flash=flash, error=values.pop("error", None), **values)
    return _response(document, status, _headers(ctx, {"Content-Type": "text/html; charset=utf-8"}))


def redirect(ctx: Ctx, location: str, flash: str | None = None, kind: str = "ok"):
    if flash and ctx.session_key:
        ctx.services.store.update_admin_session(ctx.session_key, {"flash": {"kind": kind, "text": flash[:1000]}})
    return _response("", 303, _headers(ctx, {"Location": location}))


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
    return _response(document, status, _headers(ctx, {"Content-Type": "text/html; charset=utf-8"}))


# -- sessions and the ways in ---------------------------------------------------------------------
def load_session(ctx: Ctx) -> None:
    found = admin_access.load_session(ctx.services, ctx.request.cookies.get(ctx.cookie_name, ""))
    if found is not None:
        ctx.session_key, ctx.session = found


def _pop_flash(ctx: Ctx) -> None:
    ctx.services.store.clear_admin_flash(ctx.session_key)


def _continue_page(ctx: Ctx, title: str, text: str, location: str, status: int = 200):
    """A page that moves on by itself: after a cross-site arrival (Google's redirect) the
    SameSite=Strict session cookie is sent only on a navigation our own page starts."""
    document = environment().get_template("continue.html").render(
        u=ctx.url, csrf="", signed_in=False, flash=None, error=None, instance=ctx.settings.instance,
        title=title, text=text, location=location)
    return _response(document, status, _headers(ctx, {"Content-Type": "text/html; charset=utf-8"}))


def _open_session(ctx: Ctx, email: str | None, via: str, location: str, page: tuple[str, str] | None = None):
    session_id = admin_access.open_session(ctx.services, email, via)
    if page is None:
        response = _response("", 303, _headers(ctx, {"Location": location}))
    else:
        response = _continue_page(ctx, page[0], page[1], location)
    response.set_cookie(ctx.cookie_name, session_id, max_age=int(SESSION_TTL.total_seconds()), path="/",
                        secure=ctx.secure, httponly=True, samesite="Strict")
    return response


def login(ctx: Ctx):
    """The break-glass link: GET shows a confirmation page, only its POST spends the link."""
    token = (ctx.form("t") if ctx.request.method == "POST" else ctx.request.args.get("t", "")).strip()
    if not token:
        return unauthorized(ctx)
    if ctx.request.method == "GET":
        try:
            mailboxes.check_link(ctx.services, "admin_login", token)
        except AuthError as e:
            return unauthorized(ctx, str(e))
        return render(ctx, "login.html", token=token)
    try:
        mailboxes.verify_link_once(ctx.services, "admin_login", token)
    except AuthError as e:
        return unauthorized(ctx, str(e))
    return _open_session(ctx, None, "link", ctx.url("/"))


def signin_start(ctx: Ctx):
    """Sign in with Google: to Google's account chooser, with a cookie binding this browser."""
    next_path = ctx.form("next", "/")
    try:
        url, binding = admin_access.start_signin(ctx.services, ctx.settings.admin_redirect_uri, next_path)
    except MailbridgeError as e:
        return unauthorized(ctx, f"Sign-in with Google cannot start: {e}", errors.http_status(e))
    response = _response("", 303, _headers(ctx, {"Location": url}))
    # Lax: the cookie must come back on Google's top-level redirect to the callback.
    response.set_cookie(SIGNIN_COOKIE, binding, max_age=admin_access.SIGNIN_STATE_TTL_SECONDS, path="/",
                        secure=ctx.secure, httponly=True, samesite="Lax")
    return response


def signin_callback(ctx: Ctx):
    args = ctx.request.args
    try:
        if not args.get("state"):
            raise AuthError("the answer from Google has no state: start again")
        email, next_path = admin_access.finish_signin(
            ctx.services, state=args["state"], code=args.get("code"), error=args.get("error"),
            binding=ctx.request.cookies.get(SIGNIN_COOKIE, ""), redirect_uri=ctx.settings.admin_redirect_uri)
    except MailbridgeError as e:
        response = unauthorized(ctx, f"Sign-in refused: {e}", 403 if isinstance(e, AuthError) else errors.http_status(e))
        response.delete_cookie(SIGNIN_COOKIE, path="/", secure=ctx.secure, httponly=True, samesite="Lax")
        return response
    response = _open_session(ctx, email, "google", ctx.url(next_path) if next_path != "/" else ctx.url("/"),
                             page=("Signed in", f"Signed in as {email}."))
    response.delete_cookie(SIGNIN_COOKIE, path="/", secure=ctx.secure, httponly=True, samesite="Lax")
    return response


def logout(ctx: Ctx):
    ctx.services.store.delete_admin_session(ctx.session_key)
    response = unauthorized(ctx, "You are signed out.", 200)
    response.delete_cookie(ctx.cookie_name, path="/", secure=ctx.secure, httponly=True, samesite="Strict")
    return response


def connect_confirm(ctx: Ctx, name: str):
    """The stable start URL of a mailbox sign-in (oauth_start?mailbox=NAME&instance=I lands here):
    a confirmation page; its POST goes to Google."""
    mailbox = ctx.services.store.get_mailbox(name)
    instance = (ctx.request.args.get("instance") or ctx.settings.instance).strip()
    return render(ctx, "connect.html", m=mailbox, connect_instance=instance)


def _signin_notice(ctx: Ctx) -> dict | None:
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


# -- mailboxes ----------------------------------------------------------------------------------
MAILBOX_SECTIONS = (("overview", "Overview"), ("credentials", "Credentials"), ("labels", "Deletion label"),
                    ("incoming", "Incoming"), ("outgoing", "Outgoing"), ("remove", "Remove"))
# Gmail's own names for its system labels, as its web interface shows them.
SYSTEM_LABEL_NAMES = {
    "TRASH": "Trash", "SPAM": "Spam", "STARRED": "Starred", "IMPORTANT": "Important", "SENT": "Sent",
    "DRAFT": "Drafts", "CHAT": "Chats", "CATEGORY_PERSONAL": "Primary", "CATEGORY_SOCIAL": "Social",
    "CATEGORY_PROMOTIONS": "Promotions", "CATEGORY_UPDATES": "Updates", "CATEGORY_FORUMS": "Forums",
}
# Words in an error message → the form field it is about (the first match wins).
FIELD_WORDS = (("credential set", "mailbox"), ("no mailbox", "mailbox"), ("client id", "client_id"), ("client secret", "client_secret"), ("secret", "client_secret"),
               ("instance", "instance"), ("personal google account", "address"), ("address", "address"),
               ("mailbox name", "name"), ("name", "name"), ("size limit", "max_message_mb"),
               ("backfill", "backfill_days"), ("processed_label", "processed_label"),
               ("ignore_senders", "ignore_senders"), ("ignore_subjects", "ignore_subjects"),
               ("send as", "send_as"), ("send_as", "send_as"), ("display name", "display_name"),
               ("display_name", "display_name"), ("acknowledgement_limit", "acknowledgement_limit_per_hour"),
               ("acknowledgement_template", "acknowledgement_template"), ("daily_send_budget", "daily_send_budget"),
               ("ticket_tag_format", "ticket_tag_format"), ("tag format", "ticket_tag_format"),
               ("ticket", "key"), ("override key", "key"), ("scope", "scope"), ("team", "value"),
               ("type", "value"), ("label", "label"), ("label", "label_name"))


def field_of(message: str, fields) -> str | None:
    """The form field an error is about, among `fields` (None: the error belongs to the form)."""
    lowered = message.lower()
    return next((field for words, field in FIELD_WORDS if field in fields and words in lowered), None)


def mailbox_list(ctx: Ctx, error=None, status=200, form=None):
    services = ctx.services
    rows = []
    for mailbox in services.store.list_mailboxes():
        view = mailboxes.view(services, mailbox)
        own = models.credential_of(view, ctx.settings.instance)
        rows.append({**view, "own": own})
    field = field_of(error, ("name", "address")) if error else None
    return render(ctx, "mailboxes.html", status, mailboxes=rows, error=error, form=form or {},
                  field_errors={field: error} if field else {})


def mailbox_create(ctx: Ctx):
    try:
        created = mailboxes.add_mailbox(ctx.services, ctx.form("name").strip(), ctx.form("address").strip())
    except MailbridgeError as e:
        return mailbox_list(ctx, str(e), errors.http_status(e), form=ctx.request.form)
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(created['name'], safe='')}") + "#credentials",
                    f"Mailbox {created['name']} created. Next: add a credential set for instance "
                    f"{mailboxes.instance_label(ctx.settings.instance)}.")


def picker_labels(label_list: list[dict]) -> list[dict]:
    """Labels a deletion label can be: user labels first by name, then system labels by the name
    Gmail shows, each with its id."""
    choices = []
    for label in label_list:
        if not label.get("appliable") or label["id"] in ("INBOX", "UNREAD"):
            continue
        system = label.get("type") == "system"
        shown = SYSTEM_LABEL_NAMES.get(label["id"], label["name"].title()) if system else label["name"]
        choices.append({**label, "shown": shown, "system": system})
    choices.sort(key=lambda l: (l["system"], l["shown"].lower()))
    return choices


def _labels_for(ctx: Ctx, view: dict):
    own = models.credential_of(view, ctx.settings.instance)
    if not own or own["status"] != "connected":
        return None, "Sign in with Google first: labels are read from the connected mailbox."
    try:
        return picker_labels(labels.list_labels(ctx.services, view["name"])), None
    except MailbridgeError as e:
        return None, f"Cannot read labels from Gmail: {e}"


def mailbox_detail(ctx: Ctx, name: str, error=None, status=200, form=None, section=None, fields=()):
    """The mailbox page; after a failed save, `form` holds what was typed and the error sits at
    its field (one of `fields`) inside `section`."""
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    view = mailboxes.view(services, mailbox)
    view["outbox"] = outbox.status(services, mailbox)
    own = models.credential_of(view, ctx.settings.instance)
    label_list, label_note = _labels_for(ctx, view)
    redirect_uri = ctx.settings.redirect_uri if ctx.settings.has_function_urls else ""
    field = field_of(error, fields) if error and fields else None
    return render(ctx, "mailbox.html", status, m=view, own=own, labels=label_list, label_note=label_note,
                  redirect_uri=redirect_uri, after_processing=models.AFTER_PROCESSING, error=error,
                  form=form or {}, form_section=section if error else None,
                  field_errors={field: error} if field else {}, sections=MAILBOX_SECTIONS,
                  instances=mailboxes.INSTANCES)


def _mailbox_action(ctx: Ctx, name: str, action, done_message, section: str = "overview", fields=()):
    """Run one mailbox action; on a domain error re-render the mailbox page with the reason at the
    field, keeping what was typed; on success return to the section saved."""
    try:
        result = action()
    except MailbridgeError as e:
        if isinstance(e, NotFound) and "no mailbox" in str(e):
            raise
        typed = {k: v for k, v in ctx.request.form.items() if k not in ("csrf", "client_secret")}
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), form=typed, section=section, fields=fields)
    message = done_message(result) if callable(done_message) else done_message
    kind = "ok"
    if isinstance(message, tuple):
        message, kind = message
    return redirect(ctx, ctx.url(f"/mailboxes/{quote(name, safe='')}") + f"#{section}", message, kind)


def confirm(ctx: Ctx, title: str, question: str, consequences: list[str], action: str, button: str,
            back: str, hidden: dict | None = None):
    """A page that asks before something that cannot be undone; its form posts `confirmed=yes`."""
    return render(ctx, "confirm.html", title=title, question=question, consequences=consequences,
                  action=action, button=button, back=back, hidden=hidden or {})


def _confirmed(ctx: Ctx) -> bool:
    return ctx.form("confirmed") == "yes"


def credentials_add(ctx: Ctx, name: str):
    instance = ctx.form("instance", ctx.settings.instance).strip() or ctx.settings.instance

    def add():
        return mailboxes.add_credentials(ctx.services, name, instance, ctx.form("client_id"), ctx.form("client_secret"))

    return _mailbox_action(ctx, name, add, lambda cred: (
        f"Credential set for instance {mailboxes.instance_label(cred['instance'])} added. Register the redirect URI "
        "with the OAuth client in Google Cloud console, then sign in with Google."),
        section="credentials", fields=("instance", "client_id", "client_secret"))


def credentials_update(ctx: Ctx, name: str, instance: str):
    client_id = ctx.form("client_id").strip()
    secret = ctx.form("client_secret")

    def update():
        current = models.credential_of(ctx.services.store.get_mailbox(name), instance.lower()) or {}
        new_id = client_id if client_id and client_id != current.get("client_id") else None
        return mailboxes.update_credentials(ctx.services, name, instance, new_id, secret or None)

    def done(cred):
        if cred.get("status") != "connected" and cred.get("instance") == ctx.settings.instance:
            return (f"Credential set {mailboxes.instance_label(cred['instance'])} updated. "
                    "Sign in with Google again to connect it.", "warn")
        return f"Credential set {mailboxes.instance_label(cred['instance'])} updated."

    return _mailbox_action(ctx, name, update, done, section="credentials", fields=("client_id", "client_secret"))


def credentials_remove(ctx: Ctx, name: str, instance: str):
    label = mailboxes.instance_label(instance.lower())
    if not _confirmed(ctx):
        return confirm(ctx, f"Remove the {label} credential set of {name}?",
                       f"Remove the {label} credential set of mailbox {name}?",
                       ["Its Google token is revoked and the mailbox stops being read by the "
                        f"{label} deployment.", "Its client secret and token are destroyed in Secret Manager.",
                        "To use it again you add a credential set and sign in again."],
                       f"/mailboxes/{quote(name, safe='')}/credentials/{quote(instance, safe='')}/remove",
                       "Remove credential set", f"/mailboxes/{quote(name, safe='')}#credentials")
    return _mailbox_action(ctx, name, lambda: mailboxes.remove_credentials(ctx.services, name, instance),
                           lambda r: f"Credential set {mailboxes.instance_label(r['instance'])} removed"
                                     f"{': its token was revoked' if r['revoked'] else ''}; its secrets were destroyed.",
                           section="credentials")


def connect(ctx: Ctx, name: str):
    instance = ctx.form("instance", ctx.settings.instance).strip() or ctx.settings.instance
    try:
        url = connect_service.consent_for_admin(ctx.services, name, instance)
    except MailbridgeError as e:
        if isinstance(e, NotFound) and "no mailbox" in str(e):
            raise
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), section="credentials")
    return _response("", 303, _headers(ctx, {"Location": url}))


def disconnect(ctx: Ctx, name: str):
    if not _confirmed(ctx):
        return confirm(ctx, f"Disconnect {name}?", f"Disconnect mailbox {name} from Google?",
                       ["Its Google token is revoked and removed.", "Polling and push stop for this mailbox.",
                        "Tickets and settings stay; sign in with Google again to resume."],
                       f"/mailboxes/{quote(name, safe='')}/disconnect", "Disconnect",
                       f"/mailboxes/{quote(name, safe='')}#credentials")

    def done(result):
        if result.get("revoked"):
            return "Disconnected: the token was revoked and removed. Polling stops for this mailbox."
        return "This credential set was not connected: there was no token to revoke.", "warn"

    return _mailbox_action(ctx, name, lambda: mailboxes.disconnect(ctx.services, name), done, section="credentials")


def mailbox_remove(ctx: Ctx, name: str):
    ctx.services.store.get_mailbox(name)  # 404 before asking
    if not _confirmed(ctx):
        return confirm(ctx, f"Remove mailbox {name}?", f"Remove mailbox {name}? This cannot be undone.",
                       ["Its Gmail watch is stopped and every credential set's token is revoked.",
                        "Its client secrets and tokens are destroyed in Secret Manager.",
                        "Its tickets and its inbound log are kept."],
                       f"/mailboxes/{quote(name, safe='')}/remove", "Remove mailbox",
                       f"/mailboxes/{quote(name, safe='')}#remove")
    try:
        mailboxes.remove_mailbox(ctx.services, name)
    except MailbridgeError as e:
        if isinstance(e, NotFound):
            raise
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), section="remove")
    return redirect(ctx, ctx.url("/"), f"Mailbox {name} removed. Its tickets and inbound log are kept.")


def plural(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else word + 's'}"


def _intake_words(intake: dict) -> str:
    counts = intake.get("counts", {})
    if not intake.get("total"):
        return f"nothing arrived in the last {intake['minutes']} minutes"
    parts = ", ".join(f"{plural(v, 'message')} {k}" for k, v in sorted(counts.items()))
    return f"in the last {intake['minutes']} minutes, by push or poll: {parts}"


def poll_now(ctx: Ctx, name: str):
    def done(result):
        intake = _intake_words(mailboxes.recent_intake(ctx.services, name))
        if result.get("status") == "off":
            return f"Nothing polled: {result['reason']}. {intake[0].upper() + intake[1:]}.", "warn"
        row = (result.get("mailboxes") or [{}])[0]
        if row.get("outcome") == "skipped":
            return f"Poll skipped: {row.get('reason')}. {intake[0].upper() + intake[1:]}.", "warn"
        if row.get("outcome") == "error":
            return f"Poll failed: {row.get('error')}", "warn"
        counts = row.get("counts", {})
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
        return f"Polled: {detail}. Taken in {intake}.", "ok"

    return _mailbox_action(ctx, name, lambda: sync.poll(ctx.services, name, scheduled=False), done)


def deletion_label(ctx: Ctx, name: str):
    also_delete = ctx.form("also_delete") == "on"

    def choose():
        if not ctx.form("label"):
            raise InvalidInput("choose a label from the list first")
        result = labels.set_deletion_label(ctx.services, name, ctx.form("label"))
        if also_delete:
            mailboxes.set_mailbox_setting(ctx.services, name, "incoming.after_processing", "delete")
        return result

    def done(result):
        shown = SYSTEM_LABEL_NAMES.get(result["id"], result["name"])
        text = f"Deletion label is now {shown} ({result['id']})."
        text += " After processing is now “delete”." if also_delete else \
            " It applies only when “after processing” is “delete”."
        if result.get("warning"):
            return f"{text} Warning: {result['warning']}.", "warn"
        return text

    return _mailbox_action(ctx, name, choose, done, section="labels", fields=("label",))


def label_create(ctx: Ctx, name: str):
    return _mailbox_action(ctx, name, lambda: labels.create_label(ctx.services, name, ctx.form("label_name")),
                           lambda label: f"Label {label['name']} ({label['id']}) created.",
                           section="labels", fields=("label_name",))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines() if line.strip()]


def _save_section(ctx: Ctx, name: str, values: dict) -> int:
    """Validate every field like `mailbox set` does, then write them in one update."""
    mailbox = ctx.services.store.get_mailbox(name)
    updates = {}
    for key, raw in values.items():
        path, typed = models.apply_mailbox_setting(mailbox, key, raw)
        if path == "outgoing.send_as" and typed != models.outgoing_settings(mailbox).get("send_as"):
            mailboxes.check_send_as(ctx.services, mailbox, typed)
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


INCOMING_FIELDS = ("processed_label", "ignore_senders", "ignore_subjects", "max_message_mb", "backfill_days")
OUTGOING_FIELDS = ("send_as", "display_name", "acknowledgement_limit_per_hour", "acknowledgement_template",
                   "daily_send_budget")


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

    return _mailbox_action(ctx, name, save, "Incoming settings saved.", section="incoming", fields=INCOMING_FIELDS)


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
            return mailbox_detail(ctx, name, f"{field.replace('_', ' ')} must be a single line", 400,
                                  form=dict(ctx.request.form), section="outgoing", fields=OUTGOING_FIELDS)
    return _mailbox_action(ctx, name, save, "Outgoing settings saved.", section="outgoing", fields=OUTGOING_FIELDS)


# -- inbound log --------------------------------------------------------------------------------
PAGE_SIZE = 50


def _page_size(ctx: Ctx) -> int:
    """Rows per page: ?size=N (1-200) or PAGE_SIZE."""
    raw = ctx.request.args.get("size", "")
    return min(max(int(raw), 1), 200) if raw.isdigit() and len(raw) < 4 else PAGE_SIZE


def inbound(ctx: Ctx, name: str, error=None, status=200):
    services = ctx.services
    mailbox = services.store.get_mailbox(name)
    fields = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at",
              "subject", "from_email")
    before = ctx.request.args.get("before", "").strip()[:40] or None
    size = _page_size(ctx)
    found, more = tickets.page(services.store.inbound_log(name, size + 1, before=before), size)
    rows = [{k: row.get(k) for k in fields} for row in found]
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


# -- global settings ----------------------------------------------------------------------------
def _overrides(ctx: Ctx):
    return outgoing.list_overrides(ctx.services)


SCOPE_WORDS = {"ticket": "Ticket number", "ticket_type": "Ticket type", "team": "Team",
               "client": "Client (email domain)"}


def settings_page(ctx: Ctx, error=None, status=200, form=None, fields=()):
    services = ctx.services
    current = services.store.settings()
    names = [m["name"] for m in services.store.list_mailboxes()]
    scopes = list(routing.SCOPES)
    field = field_of(error, fields) if error and fields else None
    return render(ctx, "settings.html", status, s=current, mailbox_names=names, error=error,
                  overrides=_overrides(ctx), override_scopes=scopes, scope_words=SCOPE_WORDS, form=form or {},
                  field_errors={field: error} if field else {}, admin_access=_admin_access_view(ctx))


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
    before = ctx.request.args.get("before", "").strip()
    before = int(before) if before.isdigit() and len(before) < 13 else None
    size = _page_size(ctx)
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
    if not TICKET_ID.match(ticket_id):
        raise NotFound(f"no ticket {ticket_id!r}")
    store = ctx.services.store
    ticket = store.get_ticket(ticket_id)
    view = tickets.view(ctx.services, ticket)
    # One key per rendered form: a double click or a re-sent POST resumes the same send, never a second one.
    reply_key = f"reply-admin-{secrets.token_urlsafe(18)}"
    field = field_of(error, fields) if error and fields else None
    return render(ctx, "ticket.html", status, t=view, resolution=_resolution(ctx, ticket), error=error, body=body,
                  reply_key=reply_key, recipients=tickets.reply_recipients(ctx.services, ticket),
                  suggested=ticket.get("suggested_participants") or [],
                  ticket_fields={"team": ticket.get("team") or "", "type": ticket.get("ticket_type") or ""},
                  form=form or {}, field_errors={field: error} if field else {})


def participant_confirm(ctx: Ctx, ticket_id: str):
    """An agent confirms a suggested participant (docs/reliability.md, "Hostile senders")."""
    email = ctx.form("email").strip()
    try:
        if not TICKET_ID.match(ticket_id):
            raise NotFound(f"no ticket {ticket_id!r}")
        tickets.confirm_participant(ctx.services, ticket_id, email)
    except MailbridgeError as e:
        return ticket_page(ctx, ticket_id, str(e), errors.http_status(e))
    return redirect(ctx, ctx.url(f"/tickets/{ticket_id}"), f"{email.lower()} now receives replies to this ticket.")


def ticket_field(ctx: Ctx, ticket_id: str):
    field = ctx.form("field")
    try:
        if not TICKET_ID.match(ticket_id):
            raise NotFound(f"no ticket {ticket_id!r}")
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
    ("POST", "/login", login, False),
    ("POST", "/signin", signin_start, False),
    ("GET", "/signin/callback", signin_callback, False),
    ("GET", "/admin.js", script, False),
    ("POST", "/logout", logout, True),
    ("GET", "/", mailbox_list, True),
    ("GET", "/mailboxes", mailbox_list, True),
    ("POST", "/mailboxes", mailbox_create, True),
    ("GET", "/mailboxes/<name:name>", mailbox_detail, True),
    ("POST", "/mailboxes/<name:name>/credentials", credentials_add, True),
    ("GET", "/mailboxes/<name:name>/connect", connect_confirm, True),
    ("POST", "/mailboxes/<name:name>/credentials/<instance>", credentials_update, True),
    ("POST", "/mailboxes/<name:name>/credentials/<instance>/remove", credentials_remove, True),
    ("POST", "/mailboxes/<name:name>/remove", mailbox_remove, True),
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
    ("POST", "/settings/admin-access", admin_access_save, True),
    ("POST", "/settings/overrides", override_set, True),
    ("POST", "/settings/overrides/remove", override_remove, True),
    ("GET", "/tickets", ticket_list, True),
    ("GET", "/tickets/<ticket_id>", ticket_page, True),
    ("POST", "/tickets/<ticket_id>/reply", ticket_reply, True),
    ("POST", "/tickets/<ticket_id>/status", ticket_status, True),
    ("POST", "/tickets/<ticket_id>/participants", participant_confirm, True),
    ("POST", "/tickets/<ticket_id>/field", ticket_field, True),
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
        if request.method == "HEAD":  # a link scanner's HEAD learns nothing and spends nothing
            return _response("", 405, _headers(ctx, {"Allow": "GET, POST"}))
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
