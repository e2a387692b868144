"""Gmail behaviours where Google is stricter than a naive fake; strict by default and switched
through ``POST /_fake/behaviour`` (tests/fakes/README.md, "Behaviour switches").
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    # Non-upload (simple) requests larger than this are refused with 413, as Google's front end
    # does; /upload/ takes up to the discovery document's maxSize (35 MB).
    "simple_request_limit_bytes": 5 * 1024 * 1024,
    # True: messages.send replaces the client's Message-ID with one of Gmail's own.
    "replace_message_id": False,
    # True: a send with threadId joins the thread only if References/In-Reply-To are set and the
    # Subject matches the thread's once reply/forward prefixes are stripped; else a new thread.
    "thread_requires_subject_match": True,
    # The status of a send into a thread that no longer exists.
    "deleted_thread_status": 400,
}


class BehaviourError(ValueError):
    pass


class Behaviour:
    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        """`defaults` (validated like a POST) replace Gmail's strict ones for this server, and
        /_fake/reset comes back to them (server.py --behaviour)."""
        self.values = dict(DEFAULTS)
        self.defaults = self.configure(defaults or {})

    def reset(self) -> None:
        self.values = dict(self.defaults)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply the given keys (the others keep their value); all or nothing."""
        updated = dict(self.values)
        for key, value in changes.items():
            if key not in DEFAULTS:
                raise BehaviourError(f"unknown behaviour {key!r}; known: {', '.join(DEFAULTS)}")
            if key == "simple_request_limit_bytes":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise BehaviourError("simple_request_limit_bytes must be a positive integer")
            elif key == "deleted_thread_status":
                if value not in (400, 404):
                    raise BehaviourError("deleted_thread_status must be 400 or 404")
            elif not isinstance(value, bool):
                raise BehaviourError(f"{key} must be true or false")
            updated[key] = value
        self.values = updated
        return self.as_json()

    def as_json(self) -> dict[str, Any]:
        return dict(self.values)
