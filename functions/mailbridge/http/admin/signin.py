"""The ways in and out of the admin pages: sign-in with Google, the break-glass link
(`scripts/mailbridge admin-url`, spent only by the POST of its confirmation page), sign-out."""

from __future__ import annotations

from mailbridge import errors
from mailbridge.errors import AuthError, MailbridgeError
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.rendering import SESSION_TTL, continue_page, render, see_other, unauthorized
from mailbridge.services import admin_access, audit, mailboxes

SIGNIN_COOKIE = "mailbridge_signin"


def _open_session(ctx: Ctx, email: str | None, via: str, location: str, page: tuple[str, str] | None = None):
    session_id = admin_access.open_session(ctx.services, email, via)
    audit.record(ctx.services, "sign_in", email or "admin-url link", actor=email or "admin-url link", source="admin",
                 details={"via": via})
    if page is None:
        response = see_other(ctx, location)
    else:
        response = continue_page(ctx, page[0], page[1], location)
    response.set_cookie(ctx.cookie_name, session_id, max_age=int(SESSION_TTL.total_seconds()), path="/",
                        secure=ctx.secure, httponly=True, samesite="Strict")
    return response


def _forget_binding(ctx: Ctx, response):
    response.delete_cookie(SIGNIN_COOKIE, path="/", secure=ctx.secure, httponly=True, samesite="Lax")
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
    response = see_other(ctx, url)
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
        return _forget_binding(ctx, unauthorized(
            ctx, f"Sign-in refused: {e}", 403 if isinstance(e, AuthError) else errors.http_status(e)))
    location = ctx.url(next_path) if next_path != "/" else ctx.url("/")
    return _forget_binding(ctx, _open_session(ctx, email, "google", location,
                                              page=("Signed in", f"Signed in as {email}.")))


def logout(ctx: Ctx):
    ctx.services.store.delete_admin_session(ctx.session_key)
    response = unauthorized(ctx, "You are signed out.", 200)
    response.delete_cookie(ctx.cookie_name, path="/", secure=ctx.secure, httponly=True, samesite="Strict")
    return response
