"""The error tree and the one error policy: each kind carries its HTTP status and CLI exit code.

Every function (http/common.py), the admin pages (http/admin) and the CLI (cli/app.py) answer
an error with `http_status(error)` / `exit_code(error)`; nothing else maps errors to codes.
"""

import re


class MailbridgeError(Exception):
    """Root of every error mailbridge raises on purpose."""

    http_status = 500
    exit_code = 1  # a failure


class ConfigError(MailbridgeError):
    """A required setting is missing or malformed."""


class InvalidInput(MailbridgeError):
    """The caller gave a value we refuse (maps to 4xx / CLI exit 2)."""

    http_status = 400
    exit_code = 2  # bad input


class HeaderMismatch(InvalidInput):
    """A message we built does not read back with the header names, recipients and values we
    checked (domain/compose.check_rendered): it is refused, never sent."""


class MethodNotAllowed(InvalidInput):
    """The route exists, but not for this method (405; the answer names the allowed ones)."""

    http_status = 405


class DocumentTooLarge(InvalidInput):
    """Firestore refused a document over its 1 MiB limit (or a field value over 1 MiB - 89 bytes)."""


class NotFound(MailbridgeError):
    """The named mailbox, ticket or label does not exist."""

    http_status = 404
    exit_code = 2


class Conflict(MailbridgeError):
    """The request collides with existing state (duplicate, already used)."""

    http_status = 409
    exit_code = 2


class WriteConflict(Conflict):
    """A concurrent writer changed what a batch read (or created it first): re-read and retry."""


class StoreUnavailable(MailbridgeError):
    """The store refused or failed a write; the caller may retry later."""

    http_status = 503


class AuthError(MailbridgeError):
    """A signed link, session, OAuth state or token was refused."""

    http_status = 403


class Unauthenticated(AuthError):
    """No credentials, or credentials we cannot verify (a missing or refused bearer token): 401,
    where AuthError's 403 means the caller is known and not allowed."""

    http_status = 401


class TokenRevoked(AuthError):
    """Google answered invalid_grant: the refresh token no longer works."""


class GmailError(MailbridgeError):
    """A Gmail API call failed after retries (the upstream failed: 502)."""

    http_status = 502

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class HistoryExpired(GmailError):
    """startHistoryId is older than Gmail keeps: a full sync is needed."""


def http_status(error: BaseException) -> int:
    """The HTTP status answering `error`: its kind's, 500 for anything unexpected."""
    return error.http_status if isinstance(error, MailbridgeError) else 500


def exit_code(error: BaseException) -> int:
    """The CLI exit code for `error`: 2 bad input, 1 failure."""
    return error.exit_code if isinstance(error, MailbridgeError) else 1


def kind(error: BaseException) -> str:
    """The error's kind as a caller reads it in JSON (`invalid_input`, `not_found`, …): its
    class name in snake case; `internal` for anything unexpected, which says nothing more."""
    if not isinstance(error, MailbridgeError) or type(error) is MailbridgeError:
        return "internal"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def public_message(error: BaseException) -> str:
    """What a caller may read: our own errors' text, never an unexpected exception's."""
    return str(error) if isinstance(error, MailbridgeError) else "internal error"
