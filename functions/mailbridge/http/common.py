"""What every HTTP handler shares: JSON and page responses, the error mapping, the services."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

from mailbridge import bootstrap, errors
from mailbridge.errors import InvalidInput


def json_response(body, status: int = 200):
    return (json.dumps(body, default=str), status, {"Content-Type": "application/json"})


def json_error(error: Exception):
    return json_response({"error": errors.public_message(error)}, errors.http_status(error))


_templates = None


def templates():
    """The Jinja2 environment of the function pages (http/templates); autoescaped."""
    global _templates
    if _templates is None:
        import jinja2

        _templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
            autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return _templates


def page(title: str, status: int = 200, **values):
    """An OAuth result page (templates/oauth.html): `error=` for a refusal, or the connection."""
    document = templates().get_template("oauth.html").render(title=title, **values)
    return (document, status, {"Content-Type": "text/html; charset=utf-8",
                               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                               "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


def services():
    return bootstrap.bootstrap()


def request_json(request) -> dict:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def content_disposition(filename: str) -> str:
    """`attachment` with a name already made safe (parsing.safe_filename, the one filename rule):
    an ASCII name for old clients and the UTF-8 one (RFC 6266)."""
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()+,=@!#$%&'~-]", "_", filename.encode("ascii", "replace").decode())
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_headers(filename: str) -> dict:
    """The headers of every attachment download (the admin pages and the API): opaque bytes
    whatever the sender claimed, never rendered, framed, sniffed or cached. `filename` is already
    safe (parsing.safe_filename)."""
    return {"Content-Type": "application/octet-stream", "Content-Disposition": content_disposition(filename),
            "Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
