"""Who may call `poll`, `push` and `api`: a Google-signed OIDC token for this function's own URL
from an allowed service account — for poll and push the invoker account
(MAILBRIDGE_INVOKER_SERVICE_ACCOUNT: Cloud Scheduler, Pub/Sub push), for api the helpdesk's
accounts (MAILBRIDGE_API_CALLERS).

Cloud Run's IAM already checks the token in a deployment; checking it here as well keeps the
functions closed when IAM is misconfigured (`allUsers` invoker) and pins the caller's identity.
The local stack turns the check off (MAILBRIDGE_VERIFY_INVOKER=false, scripts/stacklib/functions.py), and
every call then logs a warning saying so (docs/reliability.md, "Hostile senders").
"""

from __future__ import annotations

from mailbridge import errors
from mailbridge.errors import AuthError, ConfigError, MailbridgeError, Unauthenticated
from mailbridge.http.common import json_response, services
from mailbridge.logs import log_event

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def verified_caller(request, function: str, accounts, role: str, setting: str) -> str | None:
    """The email of the caller of `function` when its bearer token is Google's, for this
    function's URL, from one of `accounts` (the `role` named in refusals, configured by the
    environment variable `setting`); None when the check is off (the local stack).
    Unauthenticated (401) for a missing or refused token, AuthError (403) for another account,
    ConfigError (500) when no account can be accepted. Every refusal is logged."""
    settings = services().settings
    if not settings.verify_invoker:
        log_event("WARNING", "invoker check is off (MAILBRIDGE_VERIFY_INVOKER=false): unauthenticated call accepted",
                  function=function)
        return None
    try:
        return _check(request, function, tuple(accounts), role, setting)
    except MailbridgeError as e:
        status = errors.http_status(e)
        log_event("WARNING" if status < 500 else "ERROR", "invoker refused", function=function, status=status,
                  reason=str(e))
        raise


def _check(request, function: str, accounts: tuple, role: str, setting: str) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token: callers need a Google-signed OIDC token")
    container = services()
    audience = container.settings.function_url(function)
    if not accounts:
        raise ConfigError(f"{setting} is not set: no caller can be accepted")
    try:
        claims = container.invoker_verifier.verify(token.strip(), audience)
    except AuthError as e:
        raise Unauthenticated(str(e)) from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Unauthenticated("token refused: not issued by Google")
    email = str(claims.get("email") or "").lower()
    if email not in accounts or claims.get("email_verified") not in (True, "true"):
        raise AuthError(f"caller {email or '(no email)'} is not {role}")
    return email


def refusal(request, function: str):
    """For poll and push: None when the invoker account calls `function`; else the 401/403 JSON
    answer to return (`{"error": reason}`)."""
    account = services().settings.invoker_service_account
    try:
        verified_caller(request, function, (account,) if account else (), "the invoker service account",
                        "MAILBRIDGE_INVOKER_SERVICE_ACCOUNT")
    except MailbridgeError as e:
        return json_response({"error": errors.public_message(e)}, errors.http_status(e))
    return None
