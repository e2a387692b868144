"""The `oauth_start` and `oauth_callback` functions: a signed link to Google's consent page, and
Google's answer turned into a connected credential set (services/connect.py)."""

from __future__ import annotations

from flask import redirect

from mailbridge import errors
from mailbridge.errors import MailbridgeError
from mailbridge.http.common import json_response, page, services
from mailbridge.services import connect, mailboxes


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
