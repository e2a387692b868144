"""Cloud Functions entry points: thin, each one hands the request to its module of mailbridge.http.

Every function is deployed from this same source, but an instance serves one function: its
module is imported on the instance's first request, so `poll` never loads the admin pages and
`import main` stays cheap (cold start: docs/benchmarks.md, docs/architecture.md).
"""

import flask
import functions_framework


@functions_framework.http
def oauth_start(request):
    """Signed, single-use link → redirect to Google's consent page."""
    from mailbridge.http import oauth

    return oauth.oauth_start(request)


@functions_framework.http
def oauth_callback(request):
    """Google's redirect after consent: check state, exchange the code, store the token."""
    from mailbridge.http import oauth

    return oauth.oauth_callback(request)


@functions_framework.http
def poll(request):
    """Cloud Scheduler (OIDC): poll every connected mailbox of this instance, or one."""
    from mailbridge.http import poll as handler

    return handler.poll(request)


@functions_framework.http
def labels(request):
    """List/create labels; validate and save the deletion label."""
    from mailbridge.http import labels as handler

    return handler.labels(request)


@functions_framework.http
def admin(request):
    """Admin pages (session from a signed link, CSRF on every form)."""
    from mailbridge.http import admin as handler

    return handler.handle(request)


@functions_framework.http
def push(request):
    """Pub/Sub push of Gmail watch notifications → incremental sync of that mailbox."""
    from mailbridge.http import push as handler

    return handler.handle(request)


@functions_framework.http
def api(request):
    """The helpdesk's JSON API (OIDC token of an allowed caller); its contract at /openapi.json."""
    from mailbridge.http import api as handler

    return handler.handle(request)


@functions_framework.errorhandler(404)
def not_routed(error):
    """A path functions-framework itself cannot route (a line break in it): the api answers it
    as JSON like its other errors; every other function keeps the framework's page."""
    if flask.current_app.name != "api":
        return error
    from mailbridge.http import api as handler

    return handler.not_routed(flask.request)
