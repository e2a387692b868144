"""The `oauth_start` and `oauth_callback` functions: the way to Google's consent page for one
mailbox's credential set, and Google's answer turned into a connected credential set
(services/connect.py).

`oauth_start` takes either a signed, single-use link (`?t=`, from `scripts/mailbridge connect-url`),
spent only by the POST of its confirmation page, or the stable `?mailbox=NAME&instance=I`,
which sends a signed-in admin to that mailbox's confirmation page in the admin pages. HEAD is
refused; a GET never spends anything, so a link scanner's prefetch is harmless.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import redirect

from mailbridge import errors
from mailbridge.errors import MailbridgeError
from mailbridge.http.common import json_response, page, services
from mailbridge.services import audit, connect, mailboxes


def _no_store(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def oauth_start(request):
    if request.method not in ("GET", "POST"):
        return json_response({"error": "use GET (a confirmation page) or POST (its button)"}, 405)
    if request.method == "GET" and request.args.get("mailbox"):
        query = urlencode({"instance": request.args.get("instance", "")}) if request.args.get("instance") else ""
        target = (f"{services().settings.function_url('admin')}/mailboxes/{quote(request.args['mailbox'], safe='')}"
                  f"/connect{'?' + query if query else ''}")
        return _no_store(redirect(target, code=303))
    token = (request.form.get("t") if request.method == "POST" else request.args.get("t")) or ""
    if not token:
        return page("Sign-in link missing", 400, error="This address needs a signed sign-in link.",
                    command="scripts/mailbridge connect-url MAILBOX")
    if request.method == "GET":
        try:
            payload = mailboxes.check_link(services(), "oauth_start", token)
        except MailbridgeError as e:
            return page("Cannot start sign-in", errors.http_status(e), error=str(e),
                        command="scripts/mailbridge connect-url MAILBOX")
        return page("Sign in with Google", confirm_token=token, mailbox=payload.get("m"), instance=payload.get("i"))
    try:
        url = mailboxes.start_from_link(services(), token)
    except MailbridgeError as e:
        return page("Cannot start sign-in", errors.http_status(e), error=str(e),
                    command="scripts/mailbridge connect-url MAILBOX")
    return _no_store(redirect(url, code=303))


def _back_to_mailbox(name: str | None, outcome: str, title: str, detail: str):
    """Back to the mailbox's admin page, which shows the outcome with a "try again"; through a
    page of ours, so the admin's SameSite=Strict session cookie goes along."""
    admin = services().settings.function_url("admin")
    location = (f"{admin}/mailboxes/{quote(name, safe='')}?signin={outcome}" if name
                else f"{admin}/?signin={outcome}")
    return page(title, 200 if outcome == "ok" else 403, location=location, outcome=outcome, mailbox=name,
                detail=detail)


def oauth_callback(request):
    if request.method != "GET":
        return json_response({"error": "use GET"}, 405)
    args = request.args
    outcome, name, detail = connect.finish(services(), args.get("state", ""), args.get("code"), args.get("error"),
                                           args.get("scope"))
    if name:  # the connection through Google's consent, signed by an admin's single-use link
        audit.record(services(), "mailbox.connect", name, actor=f"consent link of {name}", source="oauth",
                     details={"outcome": outcome})
    return _back_to_mailbox(name, outcome, "Mailbox connected" if outcome == "ok" else "Sign-in failed", detail)
