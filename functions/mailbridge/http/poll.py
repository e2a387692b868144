"""The `poll` function (Cloud Scheduler, OIDC): poll every connected mailbox of this instance, or one."""

from __future__ import annotations

from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.http import invoker
from mailbridge.http.common import json_error, json_response, request_json, services
from mailbridge.services import sync


def poll(request):
    if request.method not in ("POST", "GET"):
        return json_response({"error": "use POST"}, 405)
    if (refused := invoker.refusal(request, "poll")) is not None:
        return refused
    try:
        body = request_json(request)
        mailbox = body.get("mailbox")
        if mailbox is not None and not isinstance(mailbox, str):
            raise InvalidInput("mailbox must be a string")
        backfill_since = None
        if body.get("since") is not None:
            try:
                backfill_since = float(body["since"])
            except (TypeError, ValueError):
                raise InvalidInput("since must be a Unix time in seconds") from None
        # Cloud Scheduler names the run it retries: the same tick id, so a retried tick's tasks
        # are skipped where the first one's already ran (docs/architecture.md, "Queue").
        tick = request.headers.get("X-CloudScheduler-ScheduleTime") or None
        result = sync.poll(services(), mailbox, backfill_since=backfill_since, tick=tick)
    except MailbridgeError as e:
        return json_error(e)
    return json_response(result)
