"""Google's JSON error shape and small response helpers shared by every fake endpoint."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

# HTTP status -> the canonical gRPC status Google puts in "status".
CANONICAL_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# HTTP status -> the legacy "reason" Google puts in errors[0] when nothing more precise applies.
DEFAULT_REASON = {
    400: "invalidArgument",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    412: "failedPrecondition",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class GoogleApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "status", "errors": [...]}}``."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        status: str | None = None,
        domain: str = "global",
        headers: dict[str, str] | None = None,
        legacy_errors: bool = True,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or DEFAULT_REASON.get(code, "unknown")
        self.status = status or CANONICAL_STATUS.get(code, "UNKNOWN")
        self.domain = domain
        self.headers = headers or {}
        # Cloud APIs (Secret Manager) answer without the legacy "errors" list.
        self.legacy_errors = legacy_errors

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.legacy_errors:
            error["errors"] = [
                {"message": self.message, "domain": self.domain, "reason": self.reason}
            ]
        error["status"] = self.status
        return {"error": error}

    def response(self) -> Response:
        return json_response(self.body(), self.code, headers=self.headers)


def bad_request(message: str, reason: str = "invalidArgument") -> GoogleApiError:
    return GoogleApiError(400, message, reason=reason)


def not_found(message: str = "Requested entity was not found.") -> GoogleApiError:
    return GoogleApiError(404, message, reason="notFound")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response the way Google sends it (UTF-8, application/json)."""
    return Response(
        json.dumps(payload, indent=1, ensure_ascii=False),
        status=status,
        headers=headers,
        content_type="application/json; charset=UTF-8",
    )


def empty_response(status: int = 204) -> Response:
    return Response(b"", status=status)
