"""Who may call `poll` and `push`: a Google-signed OIDC token (Cloud Scheduler, Pub/Sub push) for
this function's own URL, from the invoker service account (MAILBRIDGE_INVOKER_SERVICE_ACCOUNT).

Cloud Run's IAM already checks the token in a deployment; checking it here as well keeps the
functions closed when IAM is misconfigured (`allUsers` invoker) and pins the caller's identity.
The local stack turns the check off (MAILBRIDGE_VERIFY_INVOKER=false, scripts/stacklib/functions.py), and
every call then logs a warning saying so (docs/reliability.md, "Hostile senders").
"""

from __future__ import annotations

from mailbridge.errors import AuthError, ConfigError
from mailbridge.http.common import json_response, services
from mailbridge.logs import log_event

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def refusal(request, function: str):
    """None when the caller may call `function`; else the 401/403 JSON answer to return."""
    container = services()
    settings = container.settings
    if not settings.verify_invoker:
        log_event("WARNING", "invoker check is off (MAILBRIDGE_VERIFY_INVOKER=false): unauthenticated call accepted",
                  function=function)
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(function, 401, "missing bearer token: callers need a Google-signed OIDC token")
    try:
        audience = settings.function_url(function)
        if not settings.invoker_service_account:
            raise ConfigError("MAILBRIDGE_INVOKER_SERVICE_ACCOUNT is not set: no caller can be accepted")
    except ConfigError as e:
        return _refuse(function, 500, str(e))
    try:
        claims = container.invoker_verifier.verify(token.strip(), audience)
    except AuthError as e:
        return _refuse(function, 401, str(e))
    if claims.get("iss") not in GOOGLE_ISSUERS:
        return _refuse(function, 401, "token refused: not issued by Google")
    email = str(claims.get("email") or "").lower()
    if email != settings.invoker_service_account or claims.get("email_verified") not in (True, "true"):
        return _refuse(function, 403, f"caller {email or '(no email)'} is not the invoker service account")
    return None


def _refuse(function: str, status: int, reason: str):
    log_event("WARNING" if status < 500 else "ERROR", "invoker refused", function=function, status=status,
              reason=reason)
    return json_response({"error": reason}, status)
