"""The `labels` function: list and create Gmail labels, resolve one, save the deletion label."""

from __future__ import annotations

from mailbridge.errors import InvalidInput, MailbridgeError
from mailbridge.http.common import json_error, json_response, request_json, services
from mailbridge.services import labels as label_service


def labels(request):
    try:
        if request.method == "GET":
            mailbox = request.args.get("mailbox")
            if not mailbox:
                raise InvalidInput("mailbox is required")
            return json_response({"mailbox": mailbox, "labels": label_service.list_labels(services(), mailbox)})
        if request.method != "POST":
            return json_response({"error": "use GET or POST"}, 405)
        body = request_json(request)
        mailbox, action = body.get("mailbox"), body.get("action")
        if not isinstance(mailbox, str) or not mailbox:
            raise InvalidInput("mailbox is required")
        if action == "create":
            return json_response(label_service.create_label(services(), mailbox, body.get("name", "")), 201)
        if action == "set-deletion":
            return json_response(label_service.set_deletion_label(services(), mailbox, body.get("label", "")))
        if action == "resolve":
            return json_response(label_service.resolve(services(), mailbox, body.get("label", "")))
        raise InvalidInput("action must be create, set-deletion or resolve")
    except MailbridgeError as e:
        return json_error(e)
