"""The `api` function: the helpdesk's JSON API (docs/api.md), its contract at `/openapi.json`
(http/openapi.py).

Every call needs a Google-signed OIDC token of an account in MAILBRIDGE_API_CALLERS
(http/invoker.py). Answers are JSON; an error is `{"error": kind, "message": text}` with the
status of errors.py, and unknown routes, wrong methods and malformed input are 4xx, never 500.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as NoSuchMethod
from werkzeug.routing import Map, Rule

from mailbridge import errors
from mailbridge.errors import InvalidInput, MethodNotAllowed, NotFound
from mailbridge.http import invoker, openapi
from mailbridge.domain.parsing import safe_filename
from mailbridge.http.common import download_headers, json_response, services
from mailbridge.logs import log_event
from mailbridge.services import api as api_service
from mailbridge.services import merging
from mailbridge.services import audit

MAX_REQUEST_BYTES = 32 * 1024 * 1024  # Cloud Run's limit on an HTTP/1 request body
PATCH_FIELDS = ("status", "team", "type")


def error_response(error: BaseException, headers: dict | None = None):
    """`{"error": kind, "message": text}` with the error's HTTP status (errors.py)."""
    status = errors.http_status(error)
    if status >= 500:
        log_event("ERROR", "api request failed", error=error.__class__.__name__)
    body, status, base = json_response({"error": errors.kind(error), "message": errors.public_message(error)}, status)
    return body, status, {**base, **(headers or {})}


def attachment_url(ticket_id: str, message_id: str, index: int) -> str:
    """Where the caller downloads an attachment: this function's own route (download_attachment)."""
    base = services().settings.function_url("api")
    return f"{base}/tickets/{ticket_id}/messages/{quote(message_id, safe='~')}/attachments/{index}"


# ------------------------------------------------------------------ request parsing
def body_of(request) -> dict:
    """The request's JSON object; InvalidInput (400) for anything else."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        raise InvalidInput(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def text_field(body: dict, name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    return value


def check_fields(body: dict, allowed) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}: use {', '.join(allowed)}")


def matching(value: str | None, pattern: str, what: str) -> str | None:
    """`value` when it matches the document's `pattern` (http/openapi.py); InvalidInput naming `what`."""
    if value is not None and not re.fullmatch(pattern, value):
        raise InvalidInput(what)
    return value


def attachments_of(body: dict) -> list[tuple[str, str, bytes]]:
    items = body.get("attachments")
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > openapi.MAX_ATTACHMENTS:
        raise InvalidInput(f"attachments must be a list of at most {openapi.MAX_ATTACHMENTS} {{filename, content_type, data}}")
    result = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"attachment {number} must be an object {{filename, content_type, data}}")
        check_fields(item, ("filename", "content_type", "data"))
        filename = matching(text_field(item, "filename", required=True), openapi.FILENAME,
                            f"attachment {number}: filename must be 1-200 characters without control characters")
        content_type = matching(text_field(item, "content_type"), openapi.CONTENT_TYPE,
                                f"attachment {number}: content_type must be type/subtype, such as application/pdf")
        data = matching(text_field(item, "data", required=True), openapi.BASE64,
                        f"attachment {number}: data must be standard base64 (with padding)")
        result.append((filename, content_type or "application/octet-stream", base64.b64decode(data)))
    return result


def query_int(request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise InvalidInput(f"{name} must be a whole number")
    return int(raw)


# ------------------------------------------------------------------ routes
def openapi_document(request):
    return json_response(openapi.document(services().settings.function_url("api")))


def list_tickets(request):
    args = request.args
    return json_response(api_service.list_page(
        services(), attachment_url, mailbox=args.get("mailbox"), status=args.get("status"),
        updated_after=args.get("updated_after"), limit=query_int(request, "limit", api_service.PAGE_SIZE),
        cursor=args.get("cursor")))


def show_ticket(request, ticket_id: str):
    return json_response(api_service.ticket(services(), ticket_id, attachment_url))


def change_ticket(request, ticket_id: str):
    body = body_of(request)
    check_fields(body, PATCH_FIELDS)
    for name in PATCH_FIELDS:
        if name in body:
            text_field(body, name, required=name == "status")  # null clears team and type, never status
    return json_response(api_service.change(services(), ticket_id, body, attachment_url))


def reply(request, ticket_id: str):
    body = body_of(request)
    check_fields(body, ("text", "html", "attachments"))
    key = request.headers.get("Idempotency-Key")
    matching(key, openapi.IDEMPOTENCY_KEY, "Idempotency-Key must be 1-255 printable ASCII characters")
    result = api_service.reply(services(), ticket_id, text_field(body, "text", required=True),
                               html=text_field(body, "html"), attachments=attachments_of(body), idempotency_key=key)
    return json_response(result, 200 if result["final"] else 202)


def confirm_participant(request, ticket_id: str, email: str):
    return json_response(api_service.confirm_participant(services(), ticket_id, email))


def merge(request, ticket_id: str):
    body = body_of(request)
    check_fields(body, ("into",))
    into = body.get("into")
    if isinstance(into, int) and not isinstance(into, bool) and 1 <= into <= openapi.MAX_TICKET_NUMBER:
        into = str(into)  # a ticket number as a JSON number is as clear as its id
    elif not isinstance(into, str) or not re.fullmatch(openapi.TICKET_NUMBER, into):
        raise InvalidInput('into must be the id of the ticket to merge into, such as "42"')
    return json_response(merging.merge(services(), ticket_id, into.lstrip("#")))


def split(request, ticket_id: str):
    body = body_of(request)
    check_fields(body, ("message_id",))
    message = matching(text_field(body, "message_id", required=True), openapi.MESSAGE_NAME,
                       "message_id must be 1-400 characters without control characters")
    return json_response(merging.split(services(), ticket_id, message))


def download_attachment(request, ticket_id: str, message_id: str, index: str):
    if not re.fullmatch(r"[0-9]{1,4}", index):
        raise NotFound(f"no attachment {index[:20]!r}")
    filename, _content_type, data = api_service.attachment(services(), ticket_id, message_id, int(index))
    # the admin pages' download headers: opaque bytes whatever the sender claimed
    return data, 200, download_headers(safe_filename(filename) or f"attachment-{int(index) + 1}")


ROUTES = Map([
    Rule("/openapi.json", methods=["GET"], endpoint=openapi_document),
    Rule("/tickets", methods=["GET"], endpoint=list_tickets),
    Rule("/tickets/<ticket_id>", methods=["GET"], endpoint=show_ticket),
    Rule("/tickets/<ticket_id>", methods=["PATCH"], endpoint=change_ticket),
    Rule("/tickets/<ticket_id>/reply", methods=["POST"], endpoint=reply),
    Rule("/tickets/<ticket_id>/participants/<email>/confirm", methods=["POST"], endpoint=confirm_participant),
    Rule("/tickets/<ticket_id>/merge", methods=["POST"], endpoint=merge),
    Rule("/tickets/<ticket_id>/split", methods=["POST"], endpoint=split),
    Rule("/tickets/<ticket_id>/messages/<message_id>/attachments/<index>", methods=["GET"],
         endpoint=download_attachment),
], merge_slashes=False, strict_slashes=False, redirect_defaults=False)
AUDITED = {change_ticket: "ticket.set", reply: "reply.sent", confirm_participant: "ticket.participants"}
QUERY = {list_tickets: ("mailbox", "status", "updated_after", "limit", "cursor")}  # the others take none


def audited(request, caller: str | None, endpoint, values: dict) -> None:
    """One audit record per change the API made (services/audit.py); the caller's service account."""
    body = request.get_json(silent=True) or {}
    action = AUDITED[endpoint] if endpoint is not change_ticket else (
        "ticket.status" if "status" in body else "ticket.set")
    changed = {k: body[k] for k in PATCH_FIELDS if k in body} if endpoint is change_ticket else None
    audit.record(services(), action, values.get("ticket_id", ""), actor=caller or "api caller (unverified)",
                 source="api", after=changed)


def not_routed(request):
    """The JSON 404 of a path functions-framework cannot route to `handle` (functions/main.py)."""
    return error_response(NotFound(f"no route {request.method} {request.path[:200]!r}: see /openapi.json"))


def handle(request):
    """Check the caller, route, answer; every failure is a JSON error."""
    try:
        settings = services().settings
        caller = invoker.verified_caller(request, "api", settings.api_callers, "an allowed API caller",
                                         "MAILBRIDGE_API_CALLERS")
        try:
            endpoint, values = ROUTES.bind_to_environ(request.environ).match()
        except NoSuchMethod as e:
            allowed = sorted(e.valid_methods or [])
            return error_response(MethodNotAllowed(f"use {' or '.join(allowed)}"), {"Allow": ", ".join(allowed)})
        except HTTPException:
            return not_routed(request)
        unknown = sorted(set(request.args) - set(QUERY.get(endpoint, ())))
        if unknown:  # a misspelt filter must not silently list everything
            raise InvalidInput(f"unknown query parameter {unknown[0][:60]!r}"
                               + (f": use {', '.join(QUERY[endpoint])}" if endpoint in QUERY else ""))
        response = endpoint(request, **values)
        if endpoint in AUDITED:
            audited(request, caller, endpoint, values)
        return response
    except Exception as e:  # noqa: BLE001 - every failure answers JSON; the unexpected as 500 "internal"
        return error_response(e)

