"""The `push` function: decode a Pub/Sub push envelope and acknowledge it.

Two subscriptions push here: Gmail watch notifications (no attributes) and work-queue tasks
(attribute `kind`: "sync" or "send"; docs/architecture.md, "Queue").

In production the push subscription carries an OIDC token and the function is private, so
Cloud Run has authenticated the caller before this code runs.
"""

from __future__ import annotations

import base64
import json

from mailbridge.http import invoker
from mailbridge.http.common import services
from mailbridge.logs import log_event
from mailbridge.services import push as push_service


def _ack(reason: str, status: int = 200, **fields):
    log_event("INFO" if status < 300 else "WARNING", f"push: {reason}", **fields)
    return (json.dumps({"status": "acknowledged" if status < 300 else "retry", "reason": reason}), status,
            {"Content-Type": "application/json"})


def decode(body) -> tuple[str, int]:
    """Return (emailAddress, historyId) from a Pub/Sub push envelope; ValueError if malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise ValueError("not a Pub/Sub push envelope")
    data = body["message"].get("data")
    if not isinstance(data, str):
        raise ValueError("message has no data")
    try:
        payload = json.loads(base64.b64decode(data + "=" * (-len(data) % 4), validate=False))
    except (ValueError, TypeError) as e:
        raise ValueError("data is not base64 JSON") from e
    if not isinstance(payload, dict) or not isinstance(payload.get("emailAddress"), str):
        raise ValueError("data has no emailAddress")
    try:
        history_id = int(payload.get("historyId"))
    except (TypeError, ValueError) as e:
        raise ValueError("data has no numeric historyId") from e
    return payload["emailAddress"].lower(), history_id


def task_attributes(body) -> dict | None:
    """The work-queue task in a push envelope (its string attributes), or None for a Gmail
    notification (Gmail's messages carry no `kind` attribute)."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        return None
    attributes = body["message"].get("attributes")
    if not isinstance(attributes, dict) or "kind" not in attributes:
        return None
    return {str(k): v for k, v in attributes.items() if isinstance(v, str)}


def handle(request):
    if request.method != "POST":
        return _ack("use POST", 405)
    if (refused := invoker.refusal(request, "push")) is not None:
        return refused
    body = request.get_json(silent=True)
    task = task_attributes(body)
    if task is not None:
        outcome = push_service.on_task(services(), task)
        return _ack(outcome.reason, outcome.status, **{"kind": task.get("kind"), **outcome.fields})
    try:
        address, history_id = decode(body)
    except ValueError as e:
        return _ack(f"malformed notification ({e})")
    outcome = push_service.on_notification(services(), address, history_id)
    return _ack(outcome.reason, outcome.status, **outcome.fields)
