"""The error tree: one root, a few precise subclasses callers map to statuses."""


class MailbridgeError(Exception):
    """Root of every error mailbridge raises on purpose."""


class ConfigError(MailbridgeError):
    """A required setting is missing or malformed."""


class InvalidInput(MailbridgeError):
    """The caller gave a value we refuse (maps to 4xx / CLI exit 2)."""


class NotFound(MailbridgeError):
    """The named mailbox, ticket or label does not exist."""


class Conflict(MailbridgeError):
    """The request collides with existing state (duplicate, already used)."""


class AuthError(MailbridgeError):
    """A signed link, session, OAuth state or token was refused."""


class TokenRevoked(AuthError):
    """Google answered invalid_grant: the refresh token no longer works."""


class GmailError(MailbridgeError):
    """A Gmail API call failed after retries."""

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class HistoryExpired(GmailError):
    """startHistoryId is older than Gmail keeps: a full sync is needed."""
