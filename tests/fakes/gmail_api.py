"""Fake Gmail API v1: the route table, the request pipeline (bearer token, user, scope, faults,
quota) and one handler per discovery method.

Routes are declared with the discovery document's own method ids and path templates, so the
conformance test can compare them one to one with gmail.v1.json.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from .discovery import Discovery, discovery_document
from .errors import GoogleApiError, bad_request, empty_response, json_response, not_found
from .mailbox import HISTORY_TYPES, Mailbox, StoredMessage, Watch, now_ms
from .mime import (b64url, b64url_decode, build_payload, message_tree, parse, prepend_header,
                   without_header)
from .oauth import Token
from .search import compile_query

WATCH_SECONDS = 7 * 24 * 3600
MAX_PAGE = 500
DEFAULT_PAGE = 100
BATCH_MODIFY_LIMIT = 1000
_TOPIC = re.compile(r"^projects/[^/]+/topics/[^/]+$")


DISCOVERY = Discovery(discovery_document())
UPLOAD_PREFIXES = ("/upload/", "/resumable/upload/")


class EarlyResponse(Exception):
    """Raised by a handler step that answers before the method runs (resumable uploads)."""

    def __init__(self, response: Response):
        super().__init__("early response")
        self.response = response


@dataclass
class Call:
    """One authorized Gmail call, handed to a handler (the state lock is held)."""

    request: Request
    mailbox: Mailbox
    token: Token
    method_id: str

    def json(self) -> dict[str, Any]:
        if not self.request.data:
            return {}
        try:
            body = json.loads(self.request.data)
        except ValueError:
            raise bad_request("Invalid JSON payload received.", reason="parseError")
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON payload received.", reason="parseError")
        return body

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.request.args.get(name, default)

    def int_arg(self, name: str, default: int, maximum: int) -> int:
        value = self.request.args.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise bad_request(f"Invalid value for {name}: {value}")
        if number < 1:
            raise bad_request(f"Invalid value for {name}: {value}")
        return min(number, maximum)

    def bool_arg(self, name: str) -> bool:
        return (self.request.args.get(name) or "").lower() == "true"

    def list_arg(self, name: str) -> list[str]:
        values: list[str] = []
        for value in self.request.args.getlist(name):
            values.extend(v for v in value.split(",") if v)  # tolerate comma lists
        return values


# ----- message rendering -----------------------------------------------------------------------


def render_message(message: StoredMessage, fmt: str = "full",
                   metadata_headers: list[str] | None = None) -> dict[str, Any]:
    """A Message resource in one of Gmail's formats (minimal, metadata, full, raw)."""
    result: dict[str, Any] = {"id": message.id, "threadId": message.thread_id}
    if message.label_ids:
        result["labelIds"] = list(message.label_ids)
    result["snippet"] = message.parsed.snippet
    result["sizeEstimate"] = len(message.raw)
    result["historyId"] = str(message.history_id)
    result["internalDate"] = str(message.internal_date)
    if fmt == "raw":
        result["raw"] = b64url(message.raw)
    elif fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers or []}
        headers = [
            {"name": name, "value": value} for name, value in message.parsed.headers
            if not wanted or name.lower() in wanted
        ]
        result["payload"] = {"mimeType": message.parsed.content_type, "headers": headers}
    elif fmt == "full":
        payload, _ = build_payload(message_tree(message.raw), message.id)
        result["payload"] = payload
    return result


def _short(message: StoredMessage) -> dict[str, Any]:
    result: dict[str, Any] = {"id": message.id, "threadId": message.thread_id}
    if message.label_ids:
        result["labelIds"] = list(message.label_ids)
    return result


# ----- partial responses (?fields=) ---------------------------------------------------------------


def parse_fields(spec: str) -> dict[str, Any]:
    """Parse Google's partial-response syntax (``a,b(c,d),e/f``) into a selection tree."""

    def merge(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        merged = dict(left)
        for key, value in right.items():
            merged[key] = merge(merged[key], value) if key in merged else value
        return merged

    def item(index: int) -> tuple[str, Any, int]:
        end = index
        while end < len(spec) and spec[end] not in ",()/":
            end += 1
        name = spec[index:end].strip()
        if end < len(spec) and spec[end] == "/":
            child_name, child, end = item(end + 1)
            return name, {child_name: child}, end
        if end < len(spec) and spec[end] == "(":
            children, end = selection(end + 1)
            return name, children, end
        return name, None, end

    def selection(index: int) -> tuple[dict[str, Any], int]:
        tree: dict[str, Any] = {}
        while index < len(spec):
            if spec[index] == ")":
                return tree, index + 1
            if spec[index] == ",":
                index += 1
                continue
            name, child, index = item(index)
            if name:
                tree[name] = merge(tree[name], child) if name in tree else child
        return tree, index

    return selection(0)[0]


def apply_fields(value: Any, selection: dict[str, Any] | None) -> Any:
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply_fields(item, selection) for item in value]
    if isinstance(value, dict):
        return {k: apply_fields(v, selection[k]) for k, v in value.items() if k in selection}
    return value


# ----- the API ------------------------------------------------------------------------------------

Handler = Callable[..., Any]


class GmailApi:
    """Routes and handlers. ``app`` supplies lock, mailboxes, oauth, quota, faults, notifier."""

    def __init__(self, app: Any):
        self.app = app
        # (HTTP method, discovery path template, discovery method id, handler)
        self.routes: list[tuple[str, str, str, Handler]] = [
            ("GET", "gmail/v1/users/{userId}/profile", "gmail.users.getProfile", self.get_profile),
            ("POST", "gmail/v1/users/{userId}/watch", "gmail.users.watch", self.watch),
            ("POST", "gmail/v1/users/{userId}/stop", "gmail.users.stop", self.stop),
            ("GET", "gmail/v1/users/{userId}/history", "gmail.users.history.list",
             self.list_history),
            ("GET", "gmail/v1/users/{userId}/labels", "gmail.users.labels.list", self.list_labels),
            ("POST", "gmail/v1/users/{userId}/labels", "gmail.users.labels.create",
             self.create_label),
            ("GET", "gmail/v1/users/{userId}/labels/{id}", "gmail.users.labels.get",
             self.get_label),
            ("PATCH", "gmail/v1/users/{userId}/labels/{id}", "gmail.users.labels.patch",
             self.patch_label),
            ("PUT", "gmail/v1/users/{userId}/labels/{id}", "gmail.users.labels.update",
             self.update_label),
            ("DELETE", "gmail/v1/users/{userId}/labels/{id}", "gmail.users.labels.delete",
             self.delete_label),
            ("GET", "gmail/v1/users/{userId}/messages", "gmail.users.messages.list",
             self.list_messages),
            ("POST", "gmail/v1/users/{userId}/messages", "gmail.users.messages.insert",
             self.insert_message),
            ("POST", "upload/gmail/v1/users/{userId}/messages", "gmail.users.messages.insert",
             self.insert_message),
            ("POST", "gmail/v1/users/{userId}/messages/import", "gmail.users.messages.import",
             self.import_message),
            ("POST", "upload/gmail/v1/users/{userId}/messages/import",
             "gmail.users.messages.import", self.import_message),
            ("POST", "gmail/v1/users/{userId}/messages/send", "gmail.users.messages.send",
             self.send_message),
            ("POST", "upload/gmail/v1/users/{userId}/messages/send", "gmail.users.messages.send",
             self.send_message),
            ("POST", "resumable/upload/gmail/v1/users/{userId}/messages/send",
             "gmail.users.messages.send", self.send_message),
            # Resumable uploads continue with PUTs to the session URI the first POST answered.
            ("PUT", "upload/gmail/v1/users/{userId}/messages/send", "gmail.users.messages.send",
             self.send_message),
            ("PUT", "resumable/upload/gmail/v1/users/{userId}/messages/send",
             "gmail.users.messages.send", self.send_message),
            ("POST", "gmail/v1/users/{userId}/messages/batchModify",
             "gmail.users.messages.batchModify", self.batch_modify),
            ("POST", "gmail/v1/users/{userId}/messages/batchDelete",
             "gmail.users.messages.batchDelete", self.batch_delete),
            ("GET", "gmail/v1/users/{userId}/messages/{id}", "gmail.users.messages.get",
             self.get_message),
            ("DELETE", "gmail/v1/users/{userId}/messages/{id}", "gmail.users.messages.delete",
             self.delete_message),
            ("POST", "gmail/v1/users/{userId}/messages/{id}/modify", "gmail.users.messages.modify",
             self.modify_message),
            ("POST", "gmail/v1/users/{userId}/messages/{id}/trash", "gmail.users.messages.trash",
             self.trash_message),
            ("POST", "gmail/v1/users/{userId}/messages/{id}/untrash",
             "gmail.users.messages.untrash", self.untrash_message),
            ("GET", "gmail/v1/users/{userId}/messages/{messageId}/attachments/{id}",
             "gmail.users.messages.attachments.get", self.get_attachment),
            ("GET", "gmail/v1/users/{userId}/threads", "gmail.users.threads.list",
             self.list_threads),
            ("GET", "gmail/v1/users/{userId}/threads/{id}", "gmail.users.threads.get",
             self.get_thread),
            ("GET", "gmail/v1/users/{userId}/settings/sendAs", "gmail.users.settings.sendAs.list",
             self.list_send_as),
            ("GET", "gmail/v1/users/{userId}/settings/sendAs/{sendAsEmail}",
             "gmail.users.settings.sendAs.get", self.get_send_as),
        ]
        # Resumable upload sessions: upload_id -> (account, metadata, bytes so far).
        self.uploads: dict[str, tuple[str, dict[str, Any], bytearray]] = {}

    # ----- pipeline -----------------------------------------------------------------------------

    def handle(self, request: Request, method_id: str, handler: Handler,
               path_args: dict[str, str]) -> Response:
        app = self.app
        try:
            upload = request.path.startswith(UPLOAD_PREFIXES)
            self._check_size(request, method_id, upload)
            with app.lock:
                token = app.oauth.authenticate(request.headers.get("Authorization"),
                                               request.args.get("access_token")
                                               or request.args.get("oauth_token"))
                mailbox = self._mailbox_for(token, path_args.pop("userId"))
                self._check_scope(token, method_id)
                self._check_request(request, method_id, upload)
                delay, fault = app.faults.decide(method_id)
            if delay:
                time.sleep(delay)
            if fault is not None:
                with app.lock:
                    app.quota.user(mailbox.email).faulted += 1
                raise fault  # a faulted call is never executed and costs nothing
            if method_id == "gmail.users.watch":
                self._check_topic(request)  # talks to the emulator, so outside the lock
            with app.lock:
                if not request.args.get("upload_id"):  # a resumable session was charged once
                    app.quota.charge(mailbox.email, method_id)
                call = Call(request, mailbox, token, method_id)
                try:
                    result = handler(call, **path_args)
                except EarlyResponse as early:
                    return early.response
                if result is None:
                    return empty_response(204)
                fields = request.args.get("fields")
                if fields:
                    result = apply_fields(result, parse_fields(fields))
                return json_response(result)
        except GoogleApiError as error:
            return error.response()

    def _mailbox_for(self, token: Token, user_id: str) -> Mailbox:
        if user_id != "me" and user_id.lower() != token.email:
            raise GoogleApiError(403, f"Delegation denied for {token.email}", reason="forbidden")
        mailbox = self.app.mailboxes.get(token.email)
        if mailbox is None:
            raise GoogleApiError(400, "Mail service not enabled", reason="failedPrecondition",
                                 status="FAILED_PRECONDITION")
        return mailbox

    def _check_size(self, request: Request, method_id: str, upload: bool) -> None:
        """Google's front end: simple requests up to simple_request_limit_bytes, media uploads up
        to the discovery document's maxSize; larger ones are refused before anything else."""
        size = request.content_length
        if size is None:
            size = len(request.get_data())
        spec = DISCOVERY.methods.get(method_id)
        if upload:
            limit = spec.max_upload_bytes if spec else None
            declared = request.headers.get("X-Upload-Content-Length", "")
            if declared.isdigit():
                size = max(size, int(declared))
            if limit is not None and size > limit:
                raise GoogleApiError(413, f"Media larger than the maximum upload size of {limit} "
                                     "bytes.", reason="uploadTooLarge", status="OUT_OF_RANGE")
        elif size > self.app.behaviour.simple_request_limit_bytes:
            limit = self.app.behaviour.simple_request_limit_bytes
            raise GoogleApiError(413, f"Request payload size exceeds the limit: {limit} bytes.",
                                 reason="badRequest", status="OUT_OF_RANGE")

    def _check_request(self, request: Request, method_id: str, upload: bool) -> None:
        """Query parameters and the JSON body against the discovery document."""
        DISCOVERY.check_query(method_id, request.args, extra=("upload_id",) if upload else ())
        if upload or not request.get_data():
            return
        try:
            body = json.loads(request.get_data())
        except ValueError:
            raise bad_request("Invalid JSON payload received.", reason="parseError")
        DISCOVERY.check_body(method_id, body)

    def _check_scope(self, token: Token, method_id: str) -> None:
        allowed = DISCOVERY.scopes(method_id)
        if allowed and not allowed.intersection(token.scopes):
            raise GoogleApiError(403, "Request had insufficient authentication scopes.",
                                 reason="insufficientPermissions")

    def _check_topic(self, request: Request) -> None:
        try:
            topic = (json.loads(request.data or b"{}") or {}).get("topicName") or ""
        except ValueError:
            return  # the handler answers the parse error
        if _TOPIC.match(topic) and self.app.notifier.topic_exists(topic) is False:
            raise GoogleApiError(404, f"Resource not found (resource={topic.rsplit('/', 1)[-1]}).",
                                 reason="notFound")

    # ----- users --------------------------------------------------------------------------------

    def get_profile(self, call: Call) -> dict[str, Any]:
        return call.mailbox.profile()

    def watch(self, call: Call) -> dict[str, Any]:
        body = call.json()
        topic = body.get("topicName") or ""
        if not _TOPIC.match(topic):
            raise bad_request("Invalid topicName does not match projects/SOME_PROJECT/topics/"
                              "SOME_TOPIC")
        label_ids = call.mailbox.check_label_ids(body.get("labelIds") or [], applying=False)
        behavior = (body.get("labelFilterBehavior") or body.get("labelFilterAction")
                    or "include").lower()
        expiration = now_ms() + WATCH_SECONDS * 1000
        call.mailbox.watch = Watch(topic, tuple(label_ids), behavior != "exclude", expiration)
        return {"historyId": str(call.mailbox.history_id), "expiration": str(expiration)}

    def stop(self, call: Call) -> None:
        call.mailbox.watch = None

    # ----- history ------------------------------------------------------------------------------

    def list_history(self, call: Call) -> dict[str, Any]:
        start = call.arg("startHistoryId")
        if not start:
            raise bad_request("Missing required parameter startHistoryId")
        if not start.isdigit():
            raise bad_request(f"Invalid startHistoryId: {start}")
        types = call.list_arg("historyTypes")
        for kind in types:
            if kind not in HISTORY_TYPES:
                raise bad_request(f"Invalid value for historyTypes: {kind}")
        label_id = call.arg("labelId")
        max_results = call.int_arg("maxResults", DEFAULT_PAGE, MAX_PAGE)
        after = int(start)
        token = call.arg("pageToken")
        if token:
            if not token.isdigit():
                raise bad_request("Invalid pageToken")
            after = max(after, int(token))
        records = call.mailbox.history_after(int(start))
        selected = []
        more = False
        for record in records:
            if record.id <= after:
                continue
            if types and record.kind not in types:
                continue
            if label_id and not record.touches_label(label_id):
                continue
            if len(selected) == max_results:
                more = True
                break
            selected.append(record)
        result: dict[str, Any] = {}
        if selected:
            result["history"] = [self._history_json(record) for record in selected]
        if more:
            result["nextPageToken"] = str(selected[-1].id)
        result["historyId"] = str(call.mailbox.history_id)
        return result

    @staticmethod
    def _history_json(record: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": record.message_id, "threadId": record.thread_id}
        if record.label_ids:
            message["labelIds"] = list(record.label_ids)
        entry: dict[str, Any] = {
            "id": str(record.id),
            "messages": [{"id": record.message_id, "threadId": record.thread_id}],
        }
        if record.kind == "messageAdded":
            entry["messagesAdded"] = [{"message": message}]
        elif record.kind == "messageDeleted":
            entry["messagesDeleted"] = [{"message": {"id": record.message_id,
                                                     "threadId": record.thread_id}}]
        elif record.kind == "labelAdded":
            entry["labelsAdded"] = [{"message": message, "labelIds": list(record.changed_labels)}]
        else:
            entry["labelsRemoved"] = [{"message": message,
                                       "labelIds": list(record.changed_labels)}]
        return entry

    # ----- labels -------------------------------------------------------------------------------

    def list_labels(self, call: Call) -> dict[str, Any]:
        return {"labels": [dict(label) for label in call.mailbox.labels.values()]}

    def get_label(self, call: Call, id: str) -> dict[str, Any]:
        label = call.mailbox.label(id)
        return {**label, **call.mailbox.label_counts(id)}

    def create_label(self, call: Call) -> dict[str, Any]:
        return dict(call.mailbox.create_label(call.json()))

    def patch_label(self, call: Call, id: str) -> dict[str, Any]:
        return dict(call.mailbox.update_label(id, call.json(), partial=True))

    def update_label(self, call: Call, id: str) -> dict[str, Any]:
        return dict(call.mailbox.update_label(id, call.json(), partial=False))

    def delete_label(self, call: Call, id: str) -> None:
        call.mailbox.delete_label(id)

    # ----- messages: reading --------------------------------------------------------------------

    def _matching(self, call: Call) -> list[StoredMessage]:
        mailbox = call.mailbox
        label_ids = call.list_arg("labelIds")
        predicate, explicit = compile_query(mailbox, call.arg("q") or "")
        hidden: set[str] = set()
        if not call.bool_arg("includeSpamTrash"):
            # Gmail hides spam and trash unless asked for them by label or query.
            hidden = {"SPAM", "TRASH"} - set(label_ids) - explicit
            if "ANYWHERE" in explicit:
                hidden = set()
        return [
            message for message in mailbox.newest_first()
            if all(label in message.label_ids for label in label_ids)
            and not hidden.intersection(message.label_ids)
            and predicate(message)
        ]

    def _page(self, call: Call, items: list[Any], key: Callable[[Any], tuple[int, str]]
              ) -> tuple[list[Any], str | None]:
        """One page of `items` (sorted newest first by `key`) after the pageToken's cursor.

        Like Gmail's, the token is a position in the mailbox ordering rather than an offset,
        so labelling or deleting messages while paging neither skips nor repeats the rest.
        """
        max_results = call.int_arg("maxResults", DEFAULT_PAGE, MAX_PAGE)
        token = call.arg("pageToken")
        if token:
            cursor = _decode_cursor(token)
            items = [item for item in items if key(item) < cursor]
        page = items[:max_results]
        next_token = _encode_cursor(key(page[-1])) if len(items) > max_results else None
        return page, next_token

    def list_messages(self, call: Call) -> dict[str, Any]:
        matching = self._matching(call)
        page, next_token = self._page(call, matching, _order_key)
        result: dict[str, Any] = {}
        if page:
            result["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if next_token:
            result["nextPageToken"] = next_token
        result["resultSizeEstimate"] = len(matching)
        return result

    def _format(self, call: Call) -> str:
        fmt = call.arg("format") or "full"
        if fmt not in ("minimal", "metadata", "full", "raw"):
            raise bad_request(f"Invalid value for format: {fmt}")
        return fmt

    def get_message(self, call: Call, id: str) -> dict[str, Any]:
        message = call.mailbox.message(id)
        return render_message(message, self._format(call), call.list_arg("metadataHeaders"))

    def get_attachment(self, call: Call, messageId: str, id: str) -> dict[str, Any]:
        message = call.mailbox.message(messageId)
        _, attachments = build_payload(message_tree(message.raw), message.id)
        data = attachments.get(id)
        if data is None:
            raise bad_request("Invalid attachment token")
        return {"size": len(data), "data": b64url(data)}

    def list_threads(self, call: Call) -> dict[str, Any]:
        matching = self._matching(call)
        newest: dict[str, StoredMessage] = {}
        for message in matching:  # newest first, so a thread sorts by its newest match
            newest.setdefault(message.thread_id, message)
        threads = list(newest)
        page, next_token = self._page(call, threads, lambda t: _order_key(newest[t]))
        result: dict[str, Any] = {}
        if page:
            result["threads"] = []
            for thread_id in page:
                members = self._thread_messages(call.mailbox, thread_id)
                result["threads"].append({
                    "id": thread_id,
                    "snippet": members[-1].parsed.snippet,
                    "historyId": str(max(m.history_id for m in members)),
                })
        if next_token:
            result["nextPageToken"] = next_token
        result["resultSizeEstimate"] = len(threads)
        return result

    @staticmethod
    def _thread_messages(mailbox: Mailbox, thread_id: str) -> list[StoredMessage]:
        members = [mailbox.messages[i] for i in mailbox.threads.get(thread_id, [])]
        return sorted(members, key=lambda m: (m.internal_date, m.id))

    def get_thread(self, call: Call, id: str) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9a-f]{16}", id):
            raise bad_request("Invalid id value")
        members = self._thread_messages(call.mailbox, id)
        if not members:
            raise not_found()
        fmt = self._format(call)
        if fmt == "raw":
            raise bad_request("Invalid value for format: raw")
        return {
            "id": id,
            "historyId": str(max(m.history_id for m in members)),
            "messages": [render_message(m, fmt, call.list_arg("metadataHeaders"))
                         for m in members],
        }

    # ----- messages: writing --------------------------------------------------------------------

    def _uploaded(self, call: Call) -> tuple[bytes, dict[str, Any]]:
        """The raw message and metadata of insert/import/send, JSON or media upload."""
        request = call.request
        if request.path.startswith(UPLOAD_PREFIXES):
            upload_type = request.args.get("uploadType")
            if request.path.startswith("/resumable/") or upload_type == "resumable":
                return self._resumable(call)
            if upload_type == "media":
                _check_media_type(request.headers.get("Content-Type"))
                return request.get_data(), {}
            if upload_type == "multipart":
                media, metadata = _split_related(request)
                DISCOVERY.check_body(call.method_id, metadata)
                return media, metadata
            if upload_type is None:
                raise bad_request("Upload requests must include an uploadType URL parameter and "
                                  "a URL path beginning with /upload/")
            raise bad_request(f"Invalid value for uploadType: {upload_type}. Supported values: "
                              "media, multipart, resumable")
        body = call.json()
        raw = body.get("raw")
        if not raw:
            raise bad_request("'raw' RFC822 payload message string or uploading message via "
                              "/upload/* URL required")
        try:
            return b64url_decode(raw), body
        except ValueError:
            raise bad_request("Invalid value for ByteString: raw")

    def _resumable(self, call: Call) -> tuple[bytes, dict[str, Any]]:
        """Google's resumable protocol: a POST opens a session (metadata in the body, the
        session URI in Location), PUTs with Content-Range add bytes (308 until complete)."""
        request = call.request
        upload_id = request.args.get("upload_id")
        if upload_id is None:
            if request.method != "POST":
                raise bad_request("Missing upload_id")
            metadata = call.json()
            DISCOVERY.check_body(call.method_id, metadata)
            _check_media_type(request.headers.get("X-Upload-Content-Type"))
            upload_id = "fake-" + secrets.token_urlsafe(12)
            self.uploads[upload_id] = (call.mailbox.email, metadata, bytearray())
            location = f"{request.base_url}?uploadType=resumable&upload_id={upload_id}"
            raise EarlyResponse(Response(b"", status=200, headers={"Location": location}))
        session = self.uploads.get(upload_id)
        if session is None or session[0] != call.mailbox.email:
            raise not_found("No such upload session.")
        _, metadata, data = session
        content_range = request.headers.get("Content-Range")
        start, total = _content_range(content_range, len(data)) if content_range else (len(data),
                                                                                        None)
        del data[start:]
        data.extend(request.get_data())
        if not content_range:  # no Content-Range: the whole media in this one request
            total = len(data)
        limit = DISCOVERY.methods[call.method_id].max_upload_bytes or 0
        if len(data) > limit:
            del self.uploads[upload_id]
            raise GoogleApiError(413, f"Media larger than the maximum upload size of {limit} "
                                 "bytes.", reason="uploadTooLarge", status="OUT_OF_RANGE")
        if total is None or len(data) < total:
            headers = {"Range": f"bytes=0-{len(data) - 1}"} if data else {}
            raise EarlyResponse(Response(b"", status=308, headers=headers))
        del self.uploads[upload_id]
        return bytes(data), metadata

    def _store(self, call: Call, default_date_source: str) -> StoredMessage:
        raw, body = self._uploaded(call)
        mailbox = call.mailbox
        labels = body.get("labelIds") or []
        if "DRAFT" in labels:
            raise bad_request("Invalid label: DRAFT")
        labels = mailbox.check_label_ids(labels, applying=False)
        parsed = parse(raw)
        source = call.arg("internalDateSource") or default_date_source
        internal_date = parsed.date_ms if source == "dateHeader" and parsed.date_ms else now_ms()
        return mailbox.add_message(raw, labels, internal_date, body.get("threadId"), parsed)

    def _send_thread(self, mailbox: Mailbox, thread_id: str | None, parsed: Any) -> str | None:
        """The thread a sent message joins (None: a thread of its own), or Gmail's refusal."""
        behaviour = self.app.behaviour
        if not thread_id:
            return None
        if thread_id not in mailbox.threads:
            if behaviour.deleted_thread_status == 404:
                raise not_found()
            raise bad_request("Invalid thread_id value")
        if behaviour.thread_requires_subject_match and not mailbox.thread_accepts(thread_id,
                                                                                   parsed):
            return None
        return thread_id

    def insert_message(self, call: Call) -> dict[str, Any]:
        message = self._store(call, "receivedTime")
        return {"id": message.id, "threadId": message.thread_id}

    def import_message(self, call: Call) -> dict[str, Any]:
        message = self._store(call, "dateHeader")
        return {"id": message.id, "threadId": message.thread_id}

    def send_message(self, call: Call) -> dict[str, Any]:
        raw, body = self._uploaded(call)
        mailbox = call.mailbox
        parsed = parse(raw)
        if not parsed.to_addresses:
            raise bad_request("Recipient address required")
        thread_id = self._send_thread(mailbox, body.get("threadId"), parsed)
        if not parsed.header("From"):
            raw = prepend_header(raw, "From", mailbox.email)
        elif not all(mailbox.may_send_as(address) for address in parsed.from_addresses):
            # Gmail sends only as the account or an accepted alias; any other From is
            # rewritten to the account's own address (tests/fakes/README.md).
            own = email.utils.formataddr((mailbox.name, mailbox.email))
            raw = prepend_header(without_header(raw, "From"), "From", own)
        if parsed.message_id is None or self.app.behaviour.replace_message_id:
            gmail_id = f"<CA+fake{secrets.token_hex(12)}@mail.gmail.com>"
            raw = prepend_header(without_header(raw, "Message-ID"), "Message-ID", gmail_id)
        if parsed.header("Date") is None:
            raw = prepend_header(raw, "Date", email.utils.formatdate(localtime=False))
        message = mailbox.add_message(raw, ["SENT"], now_ms(), thread_id, parse(raw),
                                      auto_thread=not self.app.behaviour.thread_requires_subject_match)
        mailbox.sent_ids.append(message.id)
        return _short(message)

    def list_send_as(self, call: Call) -> dict[str, Any]:
        return {"sendAs": call.mailbox.send_as_list()}

    def get_send_as(self, call: Call, sendAsEmail: str) -> dict[str, Any]:
        return call.mailbox.send_as_get(sendAsEmail)

    def modify_message(self, call: Call, id: str) -> dict[str, Any]:
        body = call.json()
        message = call.mailbox.message(id)
        add = call.mailbox.check_label_ids(body.get("addLabelIds") or [])
        remove = call.mailbox.check_label_ids(body.get("removeLabelIds") or [])
        call.mailbox.modify(message, add, remove)
        return _short(message)

    def batch_modify(self, call: Call) -> None:
        body = call.json()
        ids = body.get("ids") or []
        if not ids:
            raise bad_request("ids must be non-empty")
        if len(ids) > BATCH_MODIFY_LIMIT:
            raise bad_request(f"Too many ids: at most {BATCH_MODIFY_LIMIT} per batchModify")
        add = call.mailbox.check_label_ids(body.get("addLabelIds") or [])
        remove = call.mailbox.check_label_ids(body.get("removeLabelIds") or [])
        for message_id in ids:
            message = call.mailbox.messages.get(message_id)
            if message is not None:  # ids that vanished meanwhile are skipped, not an error
                call.mailbox.modify(message, add, remove)

    def batch_delete(self, call: Call) -> None:
        ids = call.json().get("ids") or []
        if len(ids) > BATCH_MODIFY_LIMIT:
            raise bad_request(f"Too many ids: at most {BATCH_MODIFY_LIMIT} per batchDelete")
        for message_id in ids:
            message = call.mailbox.messages.get(message_id)
            if message is not None:
                call.mailbox.delete_message(message)

    def trash_message(self, call: Call, id: str) -> dict[str, Any]:
        message = call.mailbox.message(id)
        call.mailbox.modify(message, ["TRASH"], [])
        return _short(message)

    def untrash_message(self, call: Call, id: str) -> dict[str, Any]:
        message = call.mailbox.message(id)
        call.mailbox.modify(message, [], ["TRASH"])
        return _short(message)

    def delete_message(self, call: Call, id: str) -> None:
        call.mailbox.delete_message(call.mailbox.message(id))


def _order_key(message: StoredMessage) -> tuple[int, str]:
    return (message.internal_date, message.id)


def _encode_cursor(key: tuple[int, str]) -> str:
    # Digits only, like Gmail's tokens: 13 digits of internalDate, 20 of the numeric id.
    internal_date, message_id = key
    return f"{internal_date:013d}{int(message_id, 16):020d}"


def _decode_cursor(token: str) -> tuple[int, str]:
    if not (token.isdigit() and len(token) == 33):
        raise bad_request("Invalid pageToken")
    return int(token[:13]), format(int(token[13:]), "x")


def _check_media_type(content_type: str | None) -> None:
    """The discovery document's mediaUpload.accept: message/*."""
    if content_type and not content_type.lower().startswith("message/"):
        raise bad_request(f"Media type '{content_type}' is not supported. Valid media types: "
                          "[message/*]", reason="badContent")


def _content_range(header: str, received: int) -> tuple[int, int | None]:
    """(offset of this chunk, total size or None) from ``bytes a-b/total`` or ``bytes */total``."""
    match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", header.strip())
    if not match:
        raise bad_request(f"Invalid Content-Range: {header}")
    start = int(match.group(1)) if match.group(1) else received
    if start > received:
        raise bad_request(f"Content-Range starts at {start}, only {received} bytes received")
    total = None if match.group(3) == "*" else int(match.group(3))
    return start, total


def _split_related(request: Request) -> tuple[bytes, dict[str, Any]]:
    """uploadType=multipart: a multipart/related body of JSON metadata + the message, split on
    the boundary so the message's bytes arrive exactly as sent."""
    content_type = request.headers.get("Content-Type", "")
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/related") or not match:
        raise bad_request("Multipart upload needs Content-Type multipart/related with a boundary")
    delimiter = b"--" + match.group(1).encode()
    data = request.get_data()
    pieces = data.split(delimiter)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        piece = piece[2:] if piece.startswith(b"\r\n") else piece[1:] if piece.startswith(
            b"\n") else piece
        piece = piece[:-2] if piece.endswith(b"\r\n") else piece[:-1] if piece.endswith(
            b"\n") else piece
        crlf, lf = piece.find(b"\r\n\r\n"), piece.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf <= lf):
            head, body = piece[:crlf], piece[crlf + 4:]
        elif lf >= 0:
            head, body = piece[:lf], piece[lf + 2:]
        else:
            head, body = piece, b""
        parts.append((head.decode("latin-1"), body))
    if len(parts) != 2:
        raise bad_request("Multipart upload needs a metadata part and a media part")
    try:
        metadata = json.loads(parts[0][1] or b"{}")
    except ValueError:
        raise bad_request("Invalid JSON payload received.", reason="parseError")
    if not isinstance(metadata, dict):
        raise bad_request("Invalid JSON payload received.", reason="parseError")
    media_type = re.search(r"(?im)^content-type:\s*([^;\r\n]+)", parts[1][0])
    _check_media_type(media_type.group(1).strip() if media_type else None)
    if re.search(r"(?im)^content-transfer-encoding:\s*base64", parts[1][0]):
        return base64.b64decode(parts[1][1]), metadata
    return parts[1][1], metadata
