"""What every HTTP handler shares: JSON and page responses, the error mapping, the services."""

from __future__ import annotations

import html
import json

from mailbridge import bootstrap, errors
from mailbridge.errors import InvalidInput


def json_response(body, status: int = 200):
    return (json.dumps(body, default=str), status, {"Content-Type": "application/json"})


def json_error(error: Exception):
    return json_response({"error": errors.public_message(error)}, errors.http_status(error))


def page(title: str, body_html: str, status: int = 200):
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · mailbridge</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
        ".err{color:#a00}.ok{color:#060}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body_html}</main></body></html>")
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
