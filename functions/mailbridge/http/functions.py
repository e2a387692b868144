"""The HTTP functions behind functions/main.py: parse the request, call a use case, map errors.

Imports stay light (cold start): heavy clients load inside bootstrap when first used.
"""

from __future__ import annotations


from flask import redirect

from mailbridge import errors
from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.http import admin as admin_pages
from mailbridge.http import push as push_handler
from mailbridge.http.common import json_error, json_response, page, request_json, services
from mailbridge.services import connect
from mailbridge.services import labels as label_service
from mailbridge.services import mailboxes, sync


# -- oauth ---------------------------------------------------------------------------------
def oauth_start(request):

    if request.method != "GET":
        return json_response({"error": "use GET"}, 405)
    token = request.args.get("t", "")
    if not token:
        return page("Sign-in link missing", 400, error="This address needs a signed sign-in link.",
                    command="scripts/mailbridge connect-url MAILBOX")
    try:
        url = mailboxes.start_from_link(services(), token)
    except MailbridgeError as e:
        return page("Cannot start sign-in", errors.http_status(e), error=str(e))
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
        return page("Sign-in failed", 400, error="The answer from Google has no state; start again from the mailbox page.")
    try:
        cred = connect.complete(services(), state, args.get("code"), args.get("error"), args.get("scope"))
    except MailbridgeError as e:
        return page("Sign-in failed", errors.http_status(e), error=str(e))
    return page("Mailbox connected", connected_email=cred.get("connected_email") or "", instance=cred["instance"],
                admin_url=services().settings.function_url("admin"))


# -- poll ------------------------------------------------------------------------------------
def poll(request):
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
        result = sync.poll(services(), mailbox, backfill_since=backfill_since)
    except MailbridgeError as e:
        return json_error(e)
    return json_response(result)


# -- labels ----------------------------------------------------------------------------------
def labels(request):
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
            return json_response(label_service.resolve(services(), mailbox, body.get("label", "")))
        raise InvalidInput("action must be create, set-deletion or resolve")
    except MailbridgeError as e:
        return json_error(e)


# -- admin and push live in their own modules ------------------------------------------------
def admin(request):
    return admin_pages.handle(request)


def push(request):
    return push_handler.handle(request)
