"""Gmail API adapter: the official client, a quota-aware pace, retries with backoff, batching.

Every call goes through `_execute`, which spends quota units from a per-mailbox rolling
window (so we never ask for more than Google allows) and retries 429 / rate-limit 403 / 5xx
with exponential backoff from 1 s.
"""

from __future__ import annotations

import base64
import collections
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


class Gmail:
    def __init__(self, settings, credentials, pacer: QuotaPacer | None = None, sleep=time.sleep):
        import google_auth_httplib2
        from googleapiclient.discovery import build_from_document
        import httplib2

        self.settings = settings
        self.http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=60))
        options = {"api_endpoint": settings.gmail_api_url + "/"} if settings.gmail_api_url else None
        self.service = build_from_document(gmail_discovery_document(), http=self.http, client_options=options)
        base = settings.gmail_api_url or "https://gmail.googleapis.com"
        self.batch_uri = f"{base}/batch/gmail/v1"
        self.pacer = pacer or QuotaPacer(settings.gmail_quota_per_minute)
        self.sleep = sleep
        self.retries = 0
        self.calls = collections.Counter()
        self.users = self.service.users()

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
        return self._execute("getProfile", self.users.getProfile(userId="me"))

    def history_ids(self, start_history_id: str, label_id: str = "INBOX"):
        """Yield (message ids of one page, history id) pages; the last page's id is the new start."""
        token = None
        while True:
            response = self._execute("history.list", self.users.history().list(
                userId="me", startHistoryId=start_history_id, historyTypes=["messageAdded"],
                labelId=label_id, maxResults=500, pageToken=token))
            ids = []
            for record in response.get("history", []):
                for added in record.get("messagesAdded", []):
                    message = added.get("message", {})
                    if label_id in message.get("labelIds", [label_id]):
                        ids.append(message["id"])
            token = response.get("nextPageToken")
            yield ids, response.get("historyId"), token is None
            if not token:
                return

    def list_ids(self, query: str):
        token = None
        while True:
            response = self._execute("messages.list", self.users.messages().list(
                userId="me", q=query, maxResults=500, pageToken=token))
            yield [m["id"] for m in response.get("messages", [])]
            token = response.get("nextPageToken")
            if not token:
                return

    def get_raw_many(self, ids: list[str]) -> dict[str, dict | GmailError]:
        """messages.get format=raw for many ids in batch requests of ≤50; each result is
        {"raw": bytes, "threadId", "labelIds", "internalDate"} or a GmailError."""
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
                    batch.add(self.users.messages().get(userId="me", id=message_id, format="raw"),
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
        """Below 10 messages single modifies are cheaper (5 units each) than batchModify (50)."""
        if not ids or (not add and not remove):
            return
        if len(ids) < 10:
            for message_id in ids:
                self._execute("messages.modify", self.users.messages().modify(
                    userId="me", id=message_id, body={"addLabelIds": add, "removeLabelIds": remove}))
            return
        for start in range(0, len(ids), 1000):
            self._execute("messages.batchModify", self.users.messages().batchModify(
                userId="me", body={"ids": ids[start:start + 1000], "addLabelIds": add, "removeLabelIds": remove}))

    def labels(self) -> list[dict]:
        return self._execute("labels.list", self.users.labels().list(userId="me")).get("labels", [])

    def label(self, label_id: str) -> dict:
        return self._execute("labels.get", self.users.labels().get(userId="me", id=label_id))

    def create_label(self, name: str) -> dict:
        return self._execute("labels.create", self.users.labels().create(userId="me", body={
            "name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}))

    def send(self, raw: bytes, thread_id: str | None = None) -> dict:
        body = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        if thread_id:
            body["threadId"] = thread_id
        # Not retried blindly: the caller owns idempotency for sends.
        from googleapiclient.errors import HttpError

        self.pacer.spend(UNITS["messages.send"])
        self.calls["messages.send"] += 1
        try:
            return self.users.messages().send(userId="me", body=body).execute(http=self.http)
        except HttpError as e:
            status, reason, message = _error_details(e)
            # the message keeps Gmail's "Retry after <time>" for the outbox (docs/outbox.md)
            raise GmailError(f"Gmail send failed: {status} {' '.join(filter(None, (reason, message)))}"[:300],
                             status, reason) from None

    def watch(self, topic: str, label_ids=("INBOX",)) -> dict:
        return self._execute("watch", self.users.watch(userId="me", body={
            "topicName": topic, "labelIds": list(label_ids), "labelFilterBehavior": "include"}))

    def stop(self) -> None:
        self._execute("stop", self.users.stop(userId="me"))
