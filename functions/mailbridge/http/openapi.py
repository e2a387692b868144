"""The OpenAPI 3.1 document of the `api` function (http/api.py): the contract a helpdesk codes
against, served at `/openapi.json`; tests/e2e/test_api_contract.py drives the API from it."""

from __future__ import annotations

from mailbridge.services import api as api_service

# Patterns the handlers (http/api.py) check input against, so the document and the code agree.
BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
FILENAME = "^[^\\u0000-\\u001f\\u007f\\u0085\\u2028\\u2029]{1,200}$"
CONTENT_TYPE = "^(application|text|image|audio|video)/[a-z0-9.+-]{1,60}$"
IDEMPOTENCY_KEY = "^[!-~]{1,255}$"  # printable ASCII, as the IETF draft's examples
MAX_ATTACHMENTS = 20
TICKET_NUMBER = "^#?[0-9]{1,12}$"
MAX_TICKET_NUMBER = 10 ** 12 - 1
MESSAGE_NAME = "^[^\\u0000-\\u001f\\u007f]{1,400}$"

NULLABLE_STRING = {"type": ["string", "null"]}
# What services/tickets.set_field accepts for a team or a type ("" or null clears it).
FIELD_VALUE = {"type": ["string", "null"], "maxLength": 200, "pattern": "^[^/\\u0000-\\u001f\\u007f]*$"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, required=None, **extra) -> dict:
    # required=[] means none (the PATCH body): only None means every property
    return {"type": "object", "properties": properties,
            "required": list(properties if required is None else required), **extra}


PERSON = obj({"email": NULLABLE_STRING, "name": NULLABLE_STRING}, required=["email"])
ATTACHMENT = obj({
    "filename": NULLABLE_STRING, "content_type": NULLABLE_STRING, "size": {"type": ["integer", "null"]},
    "content_id": NULLABLE_STRING, "sha256": NULLABLE_STRING,
    "url": {"type": ["string", "null"], "description": "GET it with the same token; null when not stored"},
})
MESSAGE = obj({
    "id": {"type": "string"}, "direction": {"enum": ["in", "out"]},
    "gmail_message_id": NULLABLE_STRING, "message_id": NULLABLE_STRING,
    "from": {"anyOf": [ref("Person"), {"type": "null"}]},
    "to": {"type": "array", "items": {"anyOf": [ref("Person"), {"type": "null"}]}},
    "cc": {"type": "array", "items": {"anyOf": [ref("Person"), {"type": "null"}]}},
    "subject": NULLABLE_STRING, "date": NULLABLE_STRING, "text": NULLABLE_STRING,
    "html": {"type": ["string", "null"], "description": "sanitized HTML"},
    "attachments": {"type": "array", "items": ref("Attachment")},
    "authentication": {"anyOf": [obj({field: {"enum": ["pass", "fail", "none"]} if field == "verdict" else
                                       {"type": "string"} for field in ("verdict", "dmarc", "spf", "dkim")}),
                                 {"type": "null"}],
                       "description": "Gmail's verdict on the sender (null for mail we sent); only authenticated "
                                      "mail steers replies"},
})
SUGGESTION = obj({"email": NULLABLE_STRING, "suggested_by": NULLABLE_STRING, "suggested_at": NULLABLE_STRING},
                 required=["email"])
TICKET = obj({
    "id": {"type": "string"}, "number": {"type": "integer"}, "subject": NULLABLE_STRING,
    "status": {"type": "string", "description": "open or closed"}, "mailbox": NULLABLE_STRING,
    "requester": ref("Person"), "participants": {"type": "array", "items": {"type": "string"}},
    "created_at": NULLABLE_STRING, "updated_at": NULLABLE_STRING,
    "messages": {"type": "array", "items": ref("Message")},
    "reply_from": {"type": ["string", "null"], "description": "the verified alias the customer wrote to, "
                                                               "replies leave from it (null: the mailbox's address)"},
    "team": NULLABLE_STRING, "type": NULLABLE_STRING,
    "suggested_participants": {"type": "array", "items": ref("Suggestion")},
}, description="The JSON of `scripts/mailbridge tickets show --json`, plus team, type, suggested "
               "participants and attachment links.")
PAGE = obj({"tickets": {"type": "array", "items": ref("Ticket")},
            "next_cursor": {"type": ["string", "null"], "description": "null on the last page"}})
REPLY_REQUEST = obj({
    "text": {"type": "string", "description": "the reply's plain text"},
    "html": {"type": ["string", "null"], "description": "an HTML alternative (sanitized when stored)"},
    "attachments": {"type": ["array", "null"], "maxItems": MAX_ATTACHMENTS, "items": obj({
        "filename": {"type": "string", "pattern": FILENAME},
        "content_type": {"type": "string", "pattern": CONTENT_TYPE},
        "data": {"type": "string", "contentEncoding": "base64", "pattern": BASE64},
    }, required=["filename", "data"], additionalProperties=False)},
}, required=["text"], additionalProperties=False)
REPLY = obj({
    "ticket": NULLABLE_STRING, "mailbox": NULLABLE_STRING, "rule": NULLABLE_STRING,
    "explanation": NULLABLE_STRING, "message_id": NULLABLE_STRING, "sent_message_id": NULLABLE_STRING,
    "gmail_message_id": NULLABLE_STRING, "thread_id": NULLABLE_STRING,
    "status": {"type": "string", "description": "sent, queued, sending, failed, given_up, dropped or skipped"},
    "idempotency_key": {"type": ["string", "null"], "description": "the outbox record's id (`outbox list`)"},
    "attempts": {"type": "integer"}, "error": NULLABLE_STRING, "next_attempt_at": {},
    "final": {"type": "boolean", "description": "false while the outbox may still send it"},
}, required=["status", "final"])
CHANGE = {**obj({"status": {"enum": ["open", "closed"]}, "team": FIELD_VALUE, "type": FIELD_VALUE}, required=[]),
          "minProperties": 1, "additionalProperties": False}
PARTICIPANTS = obj({"ticket": {"type": "string"}, "number": {"type": ["integer", "null"]},
                    "requester": {"type": "string"}, "participants": {"type": "array", "items": {"type": "string"}},
                    "suggested_participants": {"type": "array", "items": ref("Suggestion")}})
MERGE_REQUEST = obj({"into": {"type": ["string", "integer"], "pattern": TICKET_NUMBER, "minimum": 1,
                             "maximum": MAX_TICKET_NUMBER, "description": "the surviving ticket's id (or number)"}},
                    additionalProperties=False)
SPLIT_REQUEST = obj({"message_id": {"type": "string", "pattern": MESSAGE_NAME,
                                    "description": "the message's id (as in Ticket.messages), Gmail id or Message-ID"}},
                    additionalProperties=False)
MOVED = obj({
    "action": {"enum": ["merge", "split"]},
    "changed": {"type": "boolean", "description": "false when this merge or split was made already"},
    "ticket": {"type": "string", "description": "the ticket the messages left"}, "number": {"type": ["integer", "null"]},
    "into": {"type": "string", "description": "the ticket they are on now"}, "into_number": {"type": ["integer", "null"]},
    "moved_messages": {"type": "array", "items": {"type": "string"}},
}, description="docs/merging.md")
ERROR = obj({"error": {"type": "string", "description": "the kind: invalid_input, unauthenticated, auth_error, "
                                                        "not_found, method_not_allowed, conflict, gmail_error, "
                                                        "store_unavailable, internal, …"},
             "message": {"type": "string"}})


def json_body(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": json_body(ref("Error"), "bad input: malformed JSON, a wrong field or value"),
    "401": json_body(ref("Error"), "no bearer token, or a token Google did not sign for this URL"),
    "403": json_body(ref("Error"), "the token's account is not in api_callers"),
    "404": json_body(ref("Error"), "no such ticket, message, attachment or route"),
    "default": json_body(ref("Error"), "the error's kind and status (docs/architecture.md, error policy)"),
}


def path_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


TICKET_ID = path_param("ticket_id", {"type": "string", "pattern": "^[0-9]{1,12}$"}, "the ticket's id (its number)")


def operation(summary: str, ok: dict, parameters=(), body: dict | None = None, **statuses) -> dict:
    result = {"summary": summary, "parameters": list(parameters), "responses": {**ok, **ERRORS, **statuses}}
    if body is not None:
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return result


def paths() -> dict:
    query = [
        {"name": "mailbox", "in": "query", "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}},
        {"name": "status", "in": "query", "schema": {"enum": ["open", "closed"]}},
        {"name": "updated_after", "in": "query", "schema": {"type": "string", "format": "date-time"},
         "description": "only tickets changed after this RFC 3339 instant"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": api_service.PAGE_MAX,
                                                     "default": api_service.PAGE_SIZE}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"},
         "description": "next_cursor of the previous page, as given"},
    ]
    key = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY},
           "description": "the same key on the same ticket sends once; a retry answers with that send's state"}
    email = path_param("email", {"type": "string", "minLength": 3, "maxLength": 254},
                       "a suggested participant's address")
    message = path_param("message_id", {"type": "string", "minLength": 1, "maxLength": 400}, "a message's id")
    index = path_param("index", {"type": "string", "pattern": "^[0-9]{1,4}$"}, "the attachment's position, from 0")
    return {
        "/openapi.json": {"get": operation("This document", {"200": json_body({"type": "object"}, "OpenAPI 3.1")})},
        "/tickets": {"get": operation("Tickets, newest first, a page at a time", {"200": json_body(ref("TicketPage"),
                                                                                                  "a page")}, query)},
        "/tickets/{ticket_id}": {
            "get": operation("One ticket with its messages", {"200": json_body(ref("Ticket"), "the ticket")},
                             [TICKET_ID]),
            "patch": operation("Set status, team and/or type (null or \"\" clears team and type)",
                               {"200": json_body(ref("Ticket"), "the ticket after the change")}, [TICKET_ID],
                               ref("TicketChange")),
        },
        "/tickets/{ticket_id}/reply": {"post": operation(
            "Reply to everyone on the ticket through its outgoing mailbox",
            {"200": json_body(ref("Reply"), "the send is final (sent, or why not)"),
             "202": json_body(ref("Reply"), "queued or failed for now: the outbox retries it")},
            [TICKET_ID, key], ref("ReplyRequest"),
            **{"409": json_body(ref("Error"), "a send with this key is under way: retry later")})},
        "/tickets/{ticket_id}/participants/{email}/confirm": {"post": operation(
            "Confirm a suggested participant: they receive every later reply",
            {"200": json_body(ref("Participants"), "the ticket's participants")}, [TICKET_ID, email])},
        "/tickets/{ticket_id}/merge": {"post": operation(
            "Merge this ticket into another: its messages, participants and attachments move; it stays "
            "closed with merged_into", {"200": json_body(ref("Moved"), "merged (or merged already)")},
            [TICKET_ID], ref("MergeRequest"), **{"409": json_body(ref("Error"), "merged into another ticket")})},
        "/tickets/{ticket_id}/split": {"post": operation(
            "A new ticket from one message and the later messages of its Gmail thread",
            {"200": json_body(ref("Moved"), "split (or split already)")}, [TICKET_ID], ref("SplitRequest"),
            **{"409": json_body(ref("Error"), "the ticket holds no such message")})},
        "/tickets/{ticket_id}/messages/{message_id}/attachments/{index}": {"get": operation(
            "An attachment's content", {"200": {"description": "the bytes", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
            [TICKET_ID, message, index])},
    }


def document(server_url: str) -> dict:
    """The OpenAPI 3.1 document, its server this function's URL."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "mailbridge API", "version": "1",
                 "description": "Tickets made from mail: read them, answer them, change them (docs/api.md)."},
        "servers": [{"url": server_url}],
        "security": [{"oidc": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {"oidc": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A Google-signed OIDC ID token of a service account in api_callers, "
                               "its audience this function's URL"}},
            "schemas": {"Error": ERROR, "Person": PERSON, "Attachment": ATTACHMENT, "Message": MESSAGE,
                        "Suggestion": SUGGESTION, "Ticket": TICKET, "TicketPage": PAGE, "ReplyRequest": REPLY_REQUEST,
                        "Reply": REPLY, "TicketChange": CHANGE, "Participants": PARTICIPANTS,
                        "MergeRequest": MERGE_REQUEST, "SplitRequest": SPLIT_REQUEST, "Moved": MOVED},
        },
    }
