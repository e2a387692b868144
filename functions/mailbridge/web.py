"""HTTP adapters behind functions/main.py: parse the request, call a use case, map errors.

Imports stay light (cold start): heavy clients load inside bootstrap when first used.
"""

from __future__ import annotations

import html
import json

from mailbridge.errors import AuthError, Conflict, InvalidInput, MailbridgeError, NotFound

STATUS = ((InvalidInput, 400), (AuthError, 403), (NotFound, 404), (Conflict, 409))


def status_for(error: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def json_response(body, status: int = 200):
    return (json.dumps(body, default=str), status, {"Content-Type": "application/json"})


def json_error(error: Exception):
    status = status_for(error)
    message = str(error) if isinstance(error, MailbridgeError) and status < 500 else (
        str(error) if isinstance(error, MailbridgeError) else "internal error")
    return json_response({"error": message}, status)


def page(title: str, body_html: str, status: int = 200):
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · mailbridge</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
        ".err{color:#a00}.ok{color:#060}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body_html}</main></body></html>")
    return (document, status, {"Content-Type": "text/html; charset=utf-8",
                               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                               "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


def services():
    from mailbridge.bootstrap import bootstrap

    return bootstrap()


def request_json(request) -> dict:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


# -- oauth ---------------------------------------------------------------------------------
def oauth_start(request):
    from flask import redirect

    from mailbridge import mailboxes

    if request.method != "GET":
        return json_response({"error": "use GET"}, 405)
    token = request.args.get("t", "")
    if not token:
        return page("Sign-in link missing", "<p class=err>This address needs a signed sign-in link. "
                    "Ask for one with <code>scripts/mailbridge connect-url MAILBOX</code> or use the admin page.</p>", 400)
    try:
        url = mailboxes.start_from_link(services(), token)
    except MailbridgeError as e:
        return page("Cannot start sign-in", f"<p class=err>{html.escape(str(e))}</p>", status_for(e) if status_for(e) < 500 else 500)
    response = redirect(url, code=302)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def oauth_callback(request):
    if request.method != "GET":
        return json_response({"error": "use GET"}, 405)
    args = request.args
    state = args.get("state", "")
    if not state:
        return page("Sign-in failed", "<p class=err>The answer from Google has no state; start again from the mailbox page.</p>", 400)
    try:
        cred = services().google.complete(state, args.get("code"), args.get("error"), args.get("scope"))
    except MailbridgeError as e:
        status = status_for(e)
        return page("Sign-in failed", f"<p class=err>{html.escape(str(e))}</p>", status if status < 500 else 500)
    email = html.escape(cred.get("connected_email") or "")
    admin = services().settings.function_url("admin")
    return page("Mailbox connected", f"<p class=ok>Connected as <strong>{email}</strong> "
                f"(instance {html.escape(cred['instance'])}). New mail will become tickets.</p>"
                f"<p><a href='{html.escape(admin)}/'>Back to mailboxes</a></p>")


# -- poll ------------------------------------------------------------------------------------
def poll(request):
    from mailbridge import ingest

    if request.method not in ("POST", "GET"):
        return json_response({"error": "use POST"}, 405)
    try:
        body = request_json(request)
        mailbox = body.get("mailbox")
        if mailbox is not None and not isinstance(mailbox, str):
            raise InvalidInput("mailbox must be a string")
        backfill_since = None
        if body.get("since") is not None:
            try:
                backfill_since = float(body["since"])
            except (TypeError, ValueError):
                raise InvalidInput("since must be a Unix time in seconds") from None
        result = ingest.poll(services(), mailbox, backfill_since=backfill_since)
    except MailbridgeError as e:
        return json_error(e)
    return json_response(result)


# -- labels ----------------------------------------------------------------------------------
def labels(request):
    from mailbridge import labels as label_service

    try:
        if request.method == "GET":
            mailbox = request.args.get("mailbox")
            if not mailbox:
                raise InvalidInput("mailbox is required")
            return json_response({"mailbox": mailbox, "labels": label_service.list_labels(services(), mailbox)})
        if request.method != "POST":
            return json_response({"error": "use GET or POST"}, 405)
        body = request_json(request)
        mailbox, action = body.get("mailbox"), body.get("action")
        if not isinstance(mailbox, str) or not mailbox:
            raise InvalidInput("mailbox is required")
        if action == "create":
            return json_response(label_service.create_label(services(), mailbox, body.get("name", "")), 201)
        if action == "set-deletion":
            return json_response(label_service.set_deletion_label(services(), mailbox, body.get("label", "")))
        if action == "resolve":
            return json_response(label_service.label_view(label_service.resolve_label(
                label_service._gmail(services(), mailbox)[1], body.get("label", ""))))
        raise InvalidInput("action must be create, set-deletion or resolve")
    except MailbridgeError as e:
        return json_error(e)


# -- admin and push live in their own modules ------------------------------------------------
def admin(request):
    from mailbridge import admin as admin_pages

    return admin_pages.handle(request)


def push(request):
    from mailbridge import push as push_service

    return push_service.handle(request)
