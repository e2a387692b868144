"""Google's multipart/mixed batch endpoint (``/batch/gmail/v1`` and ``/batch``).

Each part is an ``application/http`` request; it is run through the normal Gmail pipeline (so
it is authorized, faulted and charged like a direct call) and answered in a part whose
Content-ID is ``response-`` + the request's Content-ID, as googleapiclient expects.
"""

from __future__ import annotations

import secrets
from email import policy
from email.parser import BytesParser, Parser
from http import HTTPStatus
from typing import Callable
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from .errors import GoogleApiError

MAX_PARTS = 100


def handle_batch(request: Request, dispatch: Callable[[Request], Response]) -> Response:
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/mixed"):
        return GoogleApiError(400, "Batch requests must be multipart/mixed.").response()
    container = BytesParser(policy=policy.compat32).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.get_data()
    )
    parts = container.get_payload() if container.is_multipart() else []
    if not isinstance(parts, list) or not parts:
        return GoogleApiError(400, "Batch request has no parts.").response()
    if len(parts) > MAX_PARTS:
        return GoogleApiError(400, f"Too many requests in batch: {len(parts)} > {MAX_PARTS}.",
                              reason="batchSizeTooLarge").response()

    boundary = "batch_" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for part in parts:
        content_id = part.get("Content-ID", "")
        response = _run_part(part.get_payload(), request, dispatch)
        chunks.append(_serialize(response, content_id, boundary))
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")


def _run_part(payload: object, outer: Request, dispatch: Callable[[Request], Response]) -> Response:
    text = payload if isinstance(payload, str) else str(payload)
    request_line, _, rest = text.lstrip("\r\n").partition("\n")
    try:
        method, target, _version = request_line.strip().split(" ", 2)
    except ValueError:
        return GoogleApiError(400, "Malformed request line in batch part.").response()
    inner = Parser(policy=policy.compat32).parsestr(rest)
    body = inner.get_payload()
    body_bytes = body.encode("utf-8") if isinstance(body, str) else b""
    headers = [(k, v) for k, v in inner.items() if k.lower() not in ("content-length", "host")]
    if not any(k.lower() == "authorization" for k, _ in headers) and "Authorization" in outer.headers:
        # Google applies the outer request's credentials to parts that carry none.
        headers.append(("Authorization", outer.headers["Authorization"]))
    split = urlsplit(target)
    if not split.path.startswith(("/gmail/v1/", "/upload/gmail/v1/")):
        return GoogleApiError(404, f"Not a Gmail API path: {split.path}").response()
    builder = EnvironBuilder(path=split.path, query_string=split.query, method=method,
                             headers=headers, data=body_bytes if body_bytes.strip() else None)
    try:
        return dispatch(builder.get_request())
    finally:
        builder.close()


def _serialize(response: Response, content_id: str, boundary: str) -> bytes:
    response_id = content_id
    if content_id.startswith("<") and content_id.endswith(">"):
        response_id = f"<response-{content_id[1:-1]}>"
    body = response.get_data()
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = "Unknown"
    head = f"HTTP/1.1 {response.status_code} {reason}\r\n"
    # Always at least one header: googleapiclient splits each part at the first blank line.
    if body:
        head += f"Content-Type: {response.content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    for name, value in response.headers.items():
        if name.lower() in ("retry-after", "www-authenticate"):
            head += f"{name}: {value}\r\n"
    return (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {response_id}\r\n\r\n"
        f"{head}\r\n"
    ).encode() + body + b"\r\n"
