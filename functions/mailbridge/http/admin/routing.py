"""From a request to a page: werkzeug routing over the route table (`PAGES` in the package), the
session and CSRF gates, and the error policy of the admin pages (docs/architecture.md, "One
error policy": the status from errors.http_status, never a stack trace)."""

from __future__ import annotations

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, Rule

from mailbridge import errors
from mailbridge.errors import MailbridgeError
from mailbridge.http.admin import audit_trail
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.rendering import headers_for, render, respond, unauthorized
from mailbridge.http.admin.session import csrf_ok, load_session
from mailbridge.logs import log_event


class _NameConverter(BaseConverter):
    """A mailbox name as models.validate_name accepts it."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


def url_map(pages) -> Map:
    """The werkzeug map of a route table: rows of (method, path, handler, needs a session)."""
    return Map([Rule(path, methods=[method], endpoint=(handler, private)) for method, path, handler, private in pages],
               converters={"name": _NameConverter}, strict_slashes=False, merge_slashes=False)


def _match(urls: Map, method: str, path: str):
    """(handler, needs a session, path values, allowed methods): werkzeug routing over the table."""
    try:
        (handler, private), values = urls.bind("admin").match(path, method=method)
    except MethodNotAllowed as e:
        return None, True, {}, list(e.valid_methods or [])
    except HTTPException:
        return None, True, {}, []
    return handler, private, values, []


def _dispatch(ctx: Ctx, urls: Map):
    """The page for this request, behind the session and CSRF gates."""
    request = ctx.request
    if request.method == "HEAD":  # a link scanner's HEAD learns nothing and spends nothing
        return respond("", 405, headers_for(ctx, {"Allow": "GET, POST"}))
    handler, private, params, allowed = _match(urls, request.method, ctx.path)
    if private or handler is None:
        load_session(ctx)
        if ctx.session is None:
            return unauthorized(ctx)
    if handler is None:
        if allowed:
            return render(ctx, "error.html", 405, title="Method not allowed",
                          error="This address does not accept that kind of request.")
        return render(ctx, "error.html", 404, title="Not found", error="There is no page at this address.")
    if request.method == "POST" and private and not csrf_ok(ctx):
        return render(ctx, "error.html", 403, title="Request refused",
                      error="The form's security token is missing or wrong. Reload the page and try again.")
    if request.method != "POST" or not private:
        return handler(ctx, **params)
    before = audit_trail.snapshot(ctx, handler, params)
    response = handler(ctx, **params)
    audit_trail.after(ctx, handler, params, before, response)  # one audit record per action that succeeded
    return response


def handle(request, urls: Map):
    ctx = None
    try:
        ctx = Ctx(request)
        return _dispatch(ctx, urls)
    except MailbridgeError as e:
        if ctx is None:
            raise
        status = errors.http_status(e)
        log_event("WARNING" if status < 500 else "ERROR", "admin request failed",
                  path=ctx.path, error=e.__class__.__name__)
        if ctx.session is None:
            return unauthorized(ctx)
        return render(ctx, "error.html", status, title="Cannot do that", error=str(e))
    except Exception as e:  # noqa: BLE001 - never show a stack trace (it could hold data)
        log_event("ERROR", "admin request crashed", path=getattr(ctx, "path", "?"),
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")
        if ctx is None:
            return respond("internal error", 500, headers_for(None, {"Content-Type": "text/plain"}))
        return render(ctx, "error.html", 500, title="Something went wrong",
                      error="The server hit an unexpected error; it is logged. Try again.")
