"""Gmail API adapter: the official client, a quota-aware pace, retries with backoff, batching.

Every call goes through `_execute`, which spends quota units from a per-mailbox rolling
window (so we never ask for more than Google allows) and retries 429 / rate-limit 403 / 5xx
with exponential backoff from 1 s.
"""

from __future__ import annotations

import base64
import collections
import collections.abc
import copy
import functools
import json
import os
import random
import threading
import time

from mailbridge.errors import GmailError, HistoryExpired, TokenRevoked
from mailbridge.logs import log_event

UNITS = {
    "getProfile": 1, "labels.list": 1, "labels.get": 1, "history.list": 2,
    "messages.list": 5, "messages.get": 5, "messages.modify": 5, "messages.trash": 5,
    "messages.untrash": 5, "messages.delete": 10, "messages.attachments.get": 5,
    "labels.create": 5, "labels.update": 5, "labels.patch": 5, "labels.delete": 5,
    "messages.insert": 25, "messages.import": 25, "messages.batchModify": 50,
    "messages.send": 100, "watch": 100, "stop": 50, "threads.get": 10, "threads.list": 10,
    "settings.sendAs.list": 1,
}
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
MAX_BATCH = 50
MAX_TRIES = 7
# Google's front end refuses simple (non-upload) requests over 5 MiB with 413; {"raw": …} is
# base64 (4/3 of the message), so anything over 3 MiB goes through the upload route, which takes
# up to the discovery document's maxSize (35 MiB). See docs/gmail-differences.md.
SIMPLE_SEND_MAX_RAW = 3 * 1024 * 1024
UPLOAD_MAX_BYTES = 36_700_160
RESUMABLE_OVER = 5 * 1024 * 1024
# Raw mail held per batch of messages.get (the function has 1 GiB; a raw message costs several
# times its size while it is decoded and parsed). See docs/gmail-differences.md.
RAW_BATCH_BYTES = 16 * 1024 * 1024
FIRST_RAW_BATCH = 1


class QuotaPacer:
    """Rolling 60 s window of units spent; `spend` waits until the call fits."""

    def __init__(self, units_per_minute: int, safety: float = 0.97, clock=time.monotonic, sleep=time.sleep):
        self.limit = max(1, int(units_per_minute * safety))
        self.clock, self.sleep = clock, sleep
        self.window: collections.deque[tuple[float, int]] = collections.deque()
        self.total = 0
        self.used = 0
        self.lock = threading.Lock()

    def spend(self, units: int) -> None:
        while True:
            with self.lock:
                now = self.clock()
                while self.window and self.window[0][0] <= now - 60.0:
                    self.total -= self.window.popleft()[1]
                if self.total + units <= self.limit or not self.window:
                    self.window.append((now, units))
                    self.total += units
                    self.used += units
                    return
                wait = self.window[0][0] + 60.0 - now + 0.01
            self.sleep(min(wait, 5.0))


def _error_details(error) -> tuple[int, str, str]:
    status = int(getattr(error.resp, "status", 0) or 0)
    reason, message = "", ""
    try:
        body = json.loads(error.content.decode("utf-8", "replace"))
        err = body.get("error", {})
        message = err.get("message", "") if isinstance(err, dict) else str(err)
        errors = err.get("errors") or [{}] if isinstance(err, dict) else [{}]
        reason = errors[0].get("reason", "") if errors else ""
    except (ValueError, AttributeError):
        pass
    return status, reason, message


def _retryable(status: int, reason: str) -> bool:
    return status == 429 or status >= 500 or (status == 403 and reason in RATE_REASONS)


def _is_invalid_grant(exc) -> bool:
    return "invalid_grant" in str(exc)


@functools.lru_cache(maxsize=1)
def gmail_discovery_document() -> dict:
    """The Gmail discovery document shipped with googleapiclient (no network call at start)."""
    import googleapiclient

    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "gmail.v1.json")
    with open(path) as handle:
        return json.load(handle)


def discovery_document_for(api_url: str) -> dict:
    """A local copy of the discovery document pointed at `api_url` (empty: Google's own).

    googleapiclient sends media uploads to the document's rootUrl, not to `api_endpoint`, so the
    copy's rootUrl/baseUrl are what makes uploads reach MAILBRIDGE_GMAIL_API_URL (tests/fakes/README.md)."""
    document = gmail_discovery_document()
    if not api_url:
        return document
    document = copy.deepcopy(document)
    root = api_url.rstrip("/") + "/"
    document["rootUrl"] = root
    document["baseUrl"] = root + document.get("servicePath", "")
    document.pop("mtlsRootUrl", None)
    return document


class Resources:
    """The discovery-built Gmail resources, built once per process and API URL. Building them
    (and each `users().messages()` level) cost more CPU than a whole idle mailbox's sync, once
    per mailbox per task (docs/benchmarks.md, "Scale out"). They only build requests: every
    request is executed with one mailbox's authorized http (`execute(http=...)`), never with the
    placeholder http they were built with, which has no credentials."""

    def __init__(self, api_url: str):
        from googleapiclient.discovery import build_from_document
        import httplib2

        self.service = build_from_document(discovery_document_for(api_url), http=httplib2.Http(timeout=60))
        self.users = self.service.users()
        self.messages = self.users.messages()
        self.history = self.users.history()
        self.labels = self.users.labels()
        self.send_as = self.users.settings().sendAs()


_resources_lock = threading.Lock()
_resources: dict[str, Resources] = {}


def resources_for(api_url: str) -> Resources:
    with _resources_lock:
        if api_url not in _resources:
            _resources[api_url] = Resources(api_url)
        return _resources[api_url]


class Gmail:
    def __init__(self, settings, credentials, pacer: QuotaPacer | None = None, sleep=time.sleep):
        import google_auth_httplib2
        import httplib2

        self.settings = settings
        self.http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=60))
        self.api = resources_for(settings.gmail_api_url)
        base = settings.gmail_api_url or "https://gmail.googleapis.com"
        self.batch_uri = f"{base}/batch/gmail/v1"
        self.pacer = pacer or QuotaPacer(settings.gmail_quota_per_minute)
        self.sleep = sleep
        self.retries = 0
        self.calls = collections.Counter()
        self._largest_raw: int | None = None  # largest raw message of the last batch (None: none yet)
        self._batch_size = FIRST_RAW_BATCH

    # -- core --------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return min(32.0, 2 ** attempt) * (0.5 + random.random() / 2) + 0.0

    def _execute(self, method: str, request):
        from google.auth.exceptions import RefreshError
        from googleapiclient.errors import HttpError

        for attempt in range(MAX_TRIES):
            self.pacer.spend(UNITS.get(method, 5))
            self.calls[method] += 1
            try:
                return request.execute(http=self.http, num_retries=0)
            except RefreshError as e:
                if _is_invalid_grant(e):
                    raise TokenRevoked("Google refused the refresh token (invalid_grant)") from None
                raise GmailError(f"token refresh failed: {e.__class__.__name__}") from None
            except HttpError as e:
                status, reason, message = _error_details(e)
                if method == "history.list" and status == 404:
                    raise HistoryExpired("history id expired", status, reason) from None
                if _retryable(status, reason) and attempt < MAX_TRIES - 1:
                    delay = self._backoff(attempt)
                    self.retries += 1
                    log_event("WARNING", "gmail retry", method=method, status=status, reason=reason,
                              attempt=attempt + 1, delay_s=round(delay, 2))
                    self.sleep(delay)
                    continue
                raise GmailError(f"Gmail {method} failed: {status} {reason or message}"[:300], status, reason) from None
            except (OSError, TimeoutError) as e:
                if attempt < MAX_TRIES - 1:
                    self.retries += 1
                    self.sleep(self._backoff(attempt))
                    continue
                raise GmailError(f"Gmail {method} failed: {e.__class__.__name__}") from None
        raise GmailError(f"Gmail {method} failed after {MAX_TRIES} tries")

    # -- methods -----------------------------------------------------------------------
    def profile(self) -> dict:
        return self._execute("getProfile", self.api.users.getProfile(userId="me"))

    def new_mail(self, start_history_id: str):
        """Yield (inbox ids, spam ids, history id, last) pages of the messages added since
        `start_history_id`: ONE history.list without a label filter (2 units a page, as the inbox
        alone), split by each record's labels; sent mail, drafts and mail in neither are left out
        (docs/gmail-differences.md, Spam). The last page's history id is the next start."""
        token = None
        while True:
            response = self._execute("history.list", self.api.history.list(
                userId="me", startHistoryId=start_history_id, historyTypes=["messageAdded"],
                maxResults=500, pageToken=token))
            added = [(m["id"], m.get("labelIds", [])) for record in response.get("history", [])
                     for m in (item.get("message") or {} for item in record.get("messagesAdded", [])) if m.get("id")]
            token = response.get("nextPageToken")
            yield ([i for i, labels in added if "INBOX" in labels],
                   [i for i, labels in added if "SPAM" in labels and "INBOX" not in labels],
                   response.get("historyId"), token is None)
            if not token:
                return

    def list_ids(self, query: str):
        token = None
        while True:
            response = self._execute("messages.list", self.api.messages.list(
                userId="me", q=query, maxResults=500, pageToken=token))
            yield [m["id"] for m in response.get("messages", [])]
            token = response.get("nextPageToken")
            if not token:
                return

    def get_raw_many(self, ids: list[str]) -> "RawResults":
        """messages.get format=raw for many ids; each result is {"raw": bytes, "threadId",
        "labelIds", "internalDate"} or a GmailError. A mapping fetched as it is read, in batches
        whose size follows the bytes seen (`next_batch_size`), so a caller that drops each raw
        after use holds one batch of raw mail at a time, not every message of its chunk."""
        return RawResults(self, ids)

    def next_batch_size(self) -> int:
        """Gmail lists ids without sizes, so a batch is sized by the largest message of the
        previous one: RAW_BATCH_BYTES of mail at most, growing at most twofold per batch, from
        FIRST_RAW_BATCH (quota is per message, so smaller batches cost no units; docs/gmail-differences.md)."""
        if self._largest_raw is None:
            return FIRST_RAW_BATCH
        fits = max(1, RAW_BATCH_BYTES // max(1, self._largest_raw))
        return max(1, min(MAX_BATCH, fits, 2 * self._batch_size))

    def _fetch_raw_batch(self, ids: list[str]) -> dict[str, dict | GmailError]:
        """One sized batch (see next_batch_size); records the largest message it brought."""
        self._batch_size = len(ids)
        results = self._fetch_raw(ids)
        sizes = [len(r["raw"]) for r in results.values() if isinstance(r, dict)]
        if sizes:
            self._largest_raw = max(sizes)
        return results

    def _fetch_raw(self, ids: list[str]) -> dict[str, dict | GmailError]:
        from googleapiclient.http import BatchHttpRequest

        results: dict[str, dict | GmailError] = {}
        pending = list(dict.fromkeys(ids))
        attempt = 0
        while pending:
            retry = []
            for start in range(0, len(pending), MAX_BATCH):
                chunk = pending[start:start + MAX_BATCH]
                failures: dict[str, tuple[int, str]] = {}

                def callback(request_id, response, exception, failures=failures):
                    if exception is None:
                        results[request_id] = {
                            "raw": base64.urlsafe_b64decode(response["raw"] + "=" * (-len(response["raw"]) % 4)),
                            "threadId": response.get("threadId"), "labelIds": response.get("labelIds", []),
                            "internalDate": response.get("internalDate"),
                        }
                    else:
                        status, reason, message = _error_details(exception) if hasattr(exception, "resp") else (0, "", str(exception))
                        failures[request_id] = (status, reason or message)

                batch = BatchHttpRequest(callback=callback, batch_uri=self.batch_uri)
                for message_id in chunk:
                    batch.add(self.api.messages.get(userId="me", id=message_id, format="raw"),
                              request_id=message_id)
                self.pacer.spend(UNITS["messages.get"] * len(chunk))
                self.calls["messages.get"] += len(chunk)
                self.calls["batch"] += 1
                try:
                    batch.execute(http=self.http)
                except Exception as e:  # noqa: BLE001 - whole-batch failure: retry every part
                    from google.auth.exceptions import RefreshError

                    if isinstance(e, RefreshError) and _is_invalid_grant(e):
                        raise TokenRevoked("Google refused the refresh token (invalid_grant)") from None
                    for message_id in chunk:
                        if message_id not in results:
                            failures[message_id] = (503, e.__class__.__name__)
                for message_id, (status, reason) in failures.items():
                    if _retryable(status, reason) and attempt < MAX_TRIES - 1:
                        retry.append(message_id)
                    else:
                        results[message_id] = GmailError(f"messages.get failed: {status} {reason}"[:300], status, reason)
            if retry:
                delay = self._backoff(attempt)
                self.retries += len(retry)
                log_event("WARNING", "gmail retry", method="messages.get", count=len(retry),
                          attempt=attempt + 1, delay_s=round(delay, 2))
                self.sleep(delay)
                attempt += 1
            pending = retry
        return results

    def modify_many(self, ids: list[str], add: list[str], remove: list[str]) -> None:
        """Below 10 messages single modifies are cheaper (5 units each) than batchModify (50); one
        gone from Gmail (404: retried from its stored copy) is skipped, as batchModify skips it."""
        if not ids or (not add and not remove):
            return
        if len(ids) < 10:
            for message_id in ids:
                self._unless_gone("messages.modify", self.api.messages.modify(
                    userId="me", id=message_id, body={"addLabelIds": add, "removeLabelIds": remove}))
            return
        for start in range(0, len(ids), 1000):
            self._execute("messages.batchModify", self.api.messages.batchModify(
                userId="me", body={"ids": ids[start:start + 1000], "addLabelIds": add, "removeLabelIds": remove}))

    def labels(self) -> list[dict]:
        return self._execute("labels.list", self.api.labels.list(userId="me")).get("labels", [])

    def label(self, label_id: str) -> dict:
        return self._execute("labels.get", self.api.labels.get(userId="me", id=label_id))

    def create_label(self, name: str) -> dict:
        return self._execute("labels.create", self.api.labels.create(userId="me", body={
            "name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}))

    def _send_once(self, raw: bytes, thread_id: str | None) -> dict:
        """One messages.send: a JSON body up to SIMPLE_SEND_MAX_RAW, the upload route above."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import MediaInMemoryUpload

        if len(raw) > UPLOAD_MAX_BYTES:
            raise GmailError(f"Gmail send refused: {len(raw)} bytes is over the upload limit of {UPLOAD_MAX_BYTES}", 413, "uploadTooLarge")
        body = {"threadId": thread_id} if thread_id else {}
        self.pacer.spend(UNITS["messages.send"])
        self.calls["messages.send"] += 1
        try:
            if len(raw) <= SIMPLE_SEND_MAX_RAW:
                body["raw"] = base64.urlsafe_b64encode(raw).decode("ascii")
                return self.api.messages.send(userId="me", body=body).execute(http=self.http)
            self.calls["messages.send.upload"] += 1
            media = MediaInMemoryUpload(raw, mimetype="message/rfc822", resumable=len(raw) > RESUMABLE_OVER)
            return self.api.messages.send(userId="me", body=body or None, media_body=media).execute(http=self.http)
        except HttpError as e:
            status, reason, message = _error_details(e)
            # the message keeps Gmail's "Retry after <time>" for the outbox (docs/outbox.md)
            raise GmailError(f"Gmail send failed: {status} {' '.join(filter(None, (reason, message)))}"[:300],
                             status, reason) from None

    def send(self, raw: bytes, thread_id: str | None = None) -> dict:
        """Send once (not retried blindly: the caller owns idempotency for sends).

        A `threadId` Gmail no longer has (deleted, or TRASH emptied) is refused with 400 (or 404)
        before anything is sent; the message then goes once more without it and starts a new
        Gmail thread. The response's `threadId` is the thread it really joined."""
        try:
            return self._send_once(raw, thread_id)
        except GmailError as e:
            if not thread_id or e.status not in (400, 404):
                raise
            log_event("WARNING", "gmail thread refused; sending without threadId", status=e.status,
                      reason=e.reason, error=str(e)[:200])
            return self._send_once(raw, None)

    def message_metadata(self, message_id: str, names: list[str]) -> dict | None:
        """{"id", "threadId", "headers": {name: value}} of one message as Gmail stores it
        (format=metadata, 5 units), None if it is gone. Header names match case-insensitively;
        the first value of each wins."""
        response = self._unless_gone("messages.get", self.api.messages.get(
            userId="me", id=message_id, format="metadata", metadataHeaders=list(names)))
        if response is None:
            return None
        wanted = {n.lower(): n for n in names}
        headers: dict[str, str] = {}
        for header in (response.get("payload") or {}).get("headers") or []:
            name = wanted.get(str(header.get("name", "")).lower())
            if name and name not in headers:
                headers[name] = str(header.get("value", ""))
        return {"id": response.get("id", message_id), "threadId": response.get("threadId"), "headers": headers}

    def send_as_list(self) -> list[dict]:
        """settings.sendAs.list: the primary address first, then the custom "from" aliases."""
        return self._execute("settings.sendAs.list", self.api.send_as.list(userId="me")).get("sendAs", [])

    def watch(self, topic: str, label_ids=("INBOX",)) -> dict:
        return self._execute("watch", self.api.users.watch(userId="me", body={
            "topicName": topic, "labelIds": list(label_ids), "labelFilterBehavior": "include"}))

    def stop(self) -> None:
        self._execute("stop", self.api.users.stop(userId="me"))

    def trash(self, message_id: str) -> bool:
        """messages.trash (5 units): Gmail deletes it from Trash after 30 days; False if gone."""
        return self._unless_gone("messages.trash", self.api.messages.trash(userId="me", id=message_id)) is not None

    def _unless_gone(self, method: str, request):
        """_execute's answer, None when the message is gone (404)."""
        try:
            return self._execute(method, request)
        except GmailError as e:
            if e.status == 404:
                return None
            raise


class RawResults(collections.abc.Mapping):
    """get_raw_many's answer: message id → result, fetched batch by batch as ids are read (in the
    order given). The first batch is fetched at once."""

    def __init__(self, gmail: Gmail, ids: list[str]):
        self.gmail = gmail
        self.ids = list(dict.fromkeys(ids))
        self.pending = collections.deque(self.ids)
        self.done: dict[str, dict | GmailError] = {}
        if self.pending:
            self._fetch_next()

    def _fetch_next(self) -> None:
        batch = [self.pending.popleft() for _ in range(min(len(self.pending), self.gmail.next_batch_size()))]
        self.done.update(self.gmail._fetch_raw_batch(batch))

    def __getitem__(self, message_id: str):
        while message_id not in self.done and self.pending and message_id in self.pending:
            self._fetch_next()
        return self.done[message_id]

    def __iter__(self):
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)
