"""Cloud Functions entry points: thin adapters over mailbridge.http.functions (imports stay light)."""

import functions_framework

from mailbridge.http import functions as handlers


@functions_framework.http
def oauth_start(request):
    """Signed, single-use link → redirect to Google's consent page."""
    return handlers.oauth_start(request)


@functions_framework.http
def oauth_callback(request):
    """Google's redirect after consent: check state, exchange the code, store the token."""
    return handlers.oauth_callback(request)


@functions_framework.http
def poll(request):
    """Cloud Scheduler (OIDC): poll every connected mailbox of this instance, or one."""
    return handlers.poll(request)


@functions_framework.http
def labels(request):
    """List/create labels; validate and save the deletion label."""
    return handlers.labels(request)


@functions_framework.http
def admin(request):
    """Admin pages (session from a signed link, CSRF on every form)."""
    return handlers.admin(request)


@functions_framework.http
def push(request):
    """Pub/Sub push of Gmail watch notifications → incremental sync of that mailbox."""
    return handlers.push(request)
