"""Ways into the admin pages, and the sessions they open (README.md, "Admin access").

- Sign in with Google: OpenID Connect through `services.admin_signin` (adapters/google_signin.py);
  an account is let in when its verified address is listed (MAILBRIDGE_ADMIN_EMAILS or the
  `admin_emails` setting) or its Workspace domain (`hd` claim) is the admin domain
  (MAILBRIDGE_ADMIN_DOMAIN or `admin_domain`).
- The break-glass link from `scripts/mailbridge admin-url` (services/mailboxes.admin_url).

A session document carries the generation of the signing key that opened it (rotating the key
ends it), an idle timeout and an absolute end (`expires_at`, also Firestore's TTL field).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib
import hmac
import re
import secrets

from mailbridge.errors import AuthError
from mailbridge.logs import log_event
from mailbridge.services.ports import AdminAccessPorts

SESSION_TTL = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(minutes=30)
# last_seen_at is written at most this often: a page view is not a Firestore write each time.
TOUCH_EVERY = timedelta(minutes=1)
SIGNIN_STATE_TTL_SECONDS = 600
SIGNIN_KIND = "admin_signin"
# Where a sign-in may return: a path of the admin pages, never another site ("//x", "/\\x").
NEXT_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]*")


# -- who is an admin ----------------------------------------------------------------------------
def allowed_admins(services: AdminAccessPorts) -> tuple[list[str], list[str]]:
    """(addresses, Workspace domains) allowed to sign in: the deployment's and the settings'."""
    stored = services.store.settings()
    emails = list(services.settings.admin_emails)
    emails += [e for e in (stored.get("admin_emails") or []) if e not in emails]
    domains = [d for d in (services.settings.admin_domain, stored.get("admin_domain") or "") if d]
    return emails, sorted(set(domains))


def admission(claims: dict, emails: list[str], domains: list[str]) -> str:
    """The address an ID token's claims sign in, or AuthError with the reason it may not."""
    email = str(claims.get("email") or "").lower()
    if not email:
        raise AuthError("Google did not say which account signed in (no email in the ID token)")
    if claims.get("email_verified") is not True:
        raise AuthError(f"Google has not verified the address {email}")
    if not emails and not domains:
        raise AuthError("no admins are configured: set MAILBRIDGE_ADMIN_EMAILS or MAILBRIDGE_ADMIN_DOMAIN "
                        "(Terraform admin_emails/admin_domain), or `scripts/mailbridge settings set admin_emails ADDRESS`")
    if email in emails:
        return email
    hosted_domain = str(claims.get("hd") or "").lower()
    if hosted_domain and hosted_domain in domains and email.endswith("@" + hosted_domain):
        return email
    if domains and not hosted_domain:
        raise AuthError(f"{email} is not a Google Workspace account of {', '.join(domains)}; "
                        "personal Google accounts cannot sign in")
    raise AuthError(f"{email} is not an admin of this deployment: ask an admin to add it to admin_emails")


# -- sign in with Google --------------------------------------------------------------------------
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def start_signin(services: AdminAccessPorts, redirect_uri: str, next_path: str = "/") -> tuple[str, str]:
    """(Google's authorization URL, the browser binding to keep in a cookie until the callback)."""
    state, nonce, verifier, binding = (secrets.token_urlsafe(32) for _ in range(4))
    emails, domains = allowed_admins(services)
    url = services.admin_signin.authorization_url(
        state=state, nonce=nonce, verifier=verifier, redirect_uri=redirect_uri,
        hosted_domain=domains[0] if len(domains) == 1 and not emails else "")
    services.store.put_oauth_state(state, {
        "kind": SIGNIN_KIND, "nonce": nonce, "code_verifier": verifier, "binding": _digest(binding),
        "next": next_path if NEXT_PATH.fullmatch(next_path or "") else "/",
    }, SIGNIN_STATE_TTL_SECONDS)
    return url, binding


def finish_signin(services: AdminAccessPorts, *, state: str, code: str | None, error: str | None, binding: str,
                  redirect_uri: str) -> tuple[str, str]:
    """(the admin's address, the page to return to); AuthError with the reason otherwise."""
    data = services.store.consume_oauth_state(state)
    if data.get("kind") != SIGNIN_KIND:
        raise AuthError("this answer from Google belongs to a mailbox sign-in, not to the admin pages")
    if not binding or not hmac.compare_digest(_digest(binding), data.get("binding", "")):
        raise AuthError("this sign-in was started in another browser: start again here")
    if error:
        raise AuthError("sign-in was cancelled at Google" if error == "access_denied"
                        else f"Google returned an error: {error[:80]}")
    if not code:
        raise AuthError("Google did not return an authorization code")
    claims = services.admin_signin.exchange(code=code, verifier=data["code_verifier"], redirect_uri=redirect_uri)
    if not hmac.compare_digest(str(claims.get("nonce") or ""), data.get("nonce", "")):
        raise AuthError("the ID token does not belong to this sign-in (nonce mismatch)")
    emails, domains = allowed_admins(services)
    try:
        email = admission(claims, emails, domains)
    except AuthError as e:
        log_event("WARNING", "admin sign-in refused", reason=str(e)[:200])
        raise
    return email, data.get("next") or "/"


# -- sessions -------------------------------------------------------------------------------------
def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def key_generation(settings) -> str:
    """Which signing key a session belongs to (not the key: a one-way digest of it)."""
    return hashlib.sha256(b"mailbridge.session\0" + settings.signing_key.encode()).hexdigest()[:16]


def open_session(services: AdminAccessPorts, email: str | None, via: str) -> str:
    """Store a new session; returns the session id (the cookie value; stored only hashed)."""
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    services.store.put_admin_session(session_key(session_id), {
        "csrf": secrets.token_urlsafe(32), "created_at": now, "last_seen_at": now,
        "expires_at": now + SESSION_TTL, "generation": key_generation(services.settings),
        "email": email, "via": via})
    log_event("INFO", "admin session opened", via=via)
    return session_id


def load_session(services: AdminAccessPorts, session_id: str) -> tuple[str, dict] | None:
    """(key, session) of a live session, else None (unknown, expired, idle, or an older key)."""
    if not session_id or len(session_id) > 200:
        return None
    key = session_key(session_id)
    data = services.store.get_admin_session(key)
    if data is None:
        return None
    now = datetime.now(timezone.utc)
    expired = data.get("expires_at") is None or data["expires_at"] < now
    idle = data.get("last_seen_at") is None or data["last_seen_at"] + IDLE_TIMEOUT < now
    rotated = data.get("generation") != key_generation(services.settings)
    if expired or idle or rotated:
        services.store.delete_admin_session(key)
        return None
    if data["last_seen_at"] + TOUCH_EVERY < now:
        services.store.update_admin_session(key, {"last_seen_at": now})
    return key, data


def revoke_all_sessions(services: AdminAccessPorts) -> int:
    count = services.store.delete_all_admin_sessions()
    log_event("NOTICE", "admin sessions revoked", count=count)
    return count
