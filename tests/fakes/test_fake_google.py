"""The fake Google server, driven only through the official client libraries.

google-api-python-client (Gmail, batch), google-auth (refresh, id_token), google-auth-oauthlib
(the web flow with PKCE) and google-cloud-secret-manager (REST) talk to a real server process;
the control routes set the scene. The last tests hold the fake to the Gmail discovery document.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from email.message import EmailMessage
from typing import Any

import google.auth.transport.requests
import httplib2
import google.oauth2.credentials
import pytest
import requests
from google.auth.exceptions import RefreshError
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from tests.fakes.gmail_api import discovery_document
from tests.fakes.harness import FakeGoogleProcess, PubSubEmulator

ACCOUNT = "support@acme.example"
CLIENT_ID = "123-fake.apps.googleusercontent.com"
CLIENT_SECRET = "not-a-real-secret"
REDIRECT_URI = "http://localhost:8080/oauth_callback"
GMAIL_SCOPE = "https://mail.google.com/"
SCOPES = ["openid", "https://www.googleapis.com/auth/userinfo.email", GMAIL_SCOPE]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", autouse=True)
def oauthlib_over_http():
    # The fake speaks plain http; Google's scope normalization needs the relaxed check.
    saved = {k: os.environ.get(k) for k in ("OAUTHLIB_INSECURE_TRANSPORT",
                                             "OAUTHLIB_RELAX_TOKEN_SCOPE")}
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def fake():
    env = {"PUBSUB_EMULATOR_HOST": ""}  # the watch test starts its own emulator and fake
    with FakeGoogleProcess(env=env) as server:
        yield server


@pytest.fixture(autouse=True)
def scene(fake):
    fake.post("/_fake/reset")
    fake.post("/_fake/users", {"email": ACCOUNT, "name": "ACME Support"})
    fake.post("/_fake/oauth/clients", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                       "redirect_uris": [REDIRECT_URI]})
    return fake


# ----- helpers -----------------------------------------------------------------------------------


def make_flow(fake: FakeGoogleProcess, scopes: list[str] = SCOPES,
              redirect_uri: str = REDIRECT_URI) -> Flow:
    config = {"web": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "auth_uri": fake.url + "/o/oauth2/auth", "token_uri": fake.url + "/token",
                      "redirect_uris": [REDIRECT_URI]}}
    return Flow.from_client_config(config, scopes=scopes, redirect_uri=redirect_uri)


def authorize(fake: FakeGoogleProcess, flow: Flow, **params: str) -> requests.Response:
    url, _ = flow.authorization_url(access_type="offline", prompt="consent", **params)
    return requests.get(url, allow_redirects=False, timeout=10)


def sign_in(fake: FakeGoogleProcess, email: str = ACCOUNT,
            scopes: list[str] = SCOPES) -> google.oauth2.credentials.Credentials:
    """The whole web flow (PKCE included) with the consent page auto-approving as `email`."""
    fake.post("/_fake/oauth/approve-as", {"email": email})
    flow = make_flow(fake, scopes)
    response = authorize(fake, flow)
    assert response.status_code == 302, response.text
    flow.fetch_token(authorization_response=response.headers["Location"])
    return flow.credentials


def gmail(fake: FakeGoogleProcess, credentials: Any) -> Any:
    return build("gmail", "v1", credentials=credentials, static_discovery=True,
                 client_options={"api_endpoint": fake.url + "/"}, cache_discovery=False)


def rfc822(subject: str = "Printer on fire", sender: str = "customer@example.org",
           to: str = ACCOUNT, body: str = "Please help, the printer is on fire.",
           message_id: str | None = None, in_reply_to: str | None = None,
           attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Jun 2025 10:00:00 +0000"
    message["Message-ID"] = message_id or f"<{time.monotonic_ns()}@example.org>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="octet-stream",
                               filename="report.bin")
    return message.as_bytes()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def error_reason(error: HttpError) -> str:
    return json.loads(error.content)["error"]["errors"][0]["reason"]


@pytest.fixture
def service(scene):
    return gmail(scene, sign_in(scene))


# ----- Gmail: profile, labels, messages ---------------------------------------------------------


def test_profile_reports_account_and_current_history_id(fake, service):
    fake.deliver(ACCOUNT, rfc822())

    profile = service.users().getProfile(userId="me").execute()

    assert profile["emailAddress"] == ACCOUNT
    assert profile["messagesTotal"] == 1
    messages = fake.get(f"/_fake/users/{ACCOUNT}/messages")
    assert profile["historyId"] == messages[0]["historyId"]


def test_other_users_mailbox_is_forbidden(fake, service):
    fake.post("/_fake/users", {"email": "other@acme.example"})

    with pytest.raises(HttpError) as error:
        service.users().getProfile(userId="other@acme.example").execute()

    assert error.value.resp.status == 403
    assert service.users().getProfile(userId=ACCOUNT).execute()["emailAddress"] == ACCOUNT


def test_unknown_bearer_token_is_unauthenticated(fake):
    # Without credentials google-auth would try (and fail) to refresh; send the header as is.
    unauthenticated = build("gmail", "v1", http=httplib2.Http(), static_discovery=True,
                            client_options={"api_endpoint": fake.url + "/"})
    request = unauthenticated.users().getProfile(userId="me")
    request.headers["Authorization"] = "Bearer ya29.made-up"

    with pytest.raises(HttpError) as error:
        request.execute()

    assert error.value.resp.status == 401
    assert json.loads(error.value.content)["error"]["status"] == "UNAUTHENTICATED"


def test_labels_lifecycle_and_validation(service):
    labels = service.users().labels()
    system = {label["id"]: label for label in labels.list(userId="me").execute()["labels"]}
    assert {"INBOX", "SENT", "TRASH", "UNREAD", "CATEGORY_UPDATES"} <= set(system)
    assert all(label["name"] == label_id and label["type"] == "system"
               for label_id, label in system.items())

    created = labels.create(userId="me", body={"name": "Helpdesk/Processed"}).execute()
    assert created["id"].startswith("Label_") and created["type"] == "user"

    with pytest.raises(HttpError) as duplicate:
        labels.create(userId="me", body={"name": "helpdesk/processed"}).execute()
    assert duplicate.value.resp.status == 409
    with pytest.raises(HttpError) as reserved:
        labels.create(userId="me", body={"name": "Inbox"}).execute()
    assert reserved.value.resp.status == 400
    with pytest.raises(HttpError) as missing:
        labels.get(userId="me", id="Label_999").execute()
    assert missing.value.resp.status == 404 and error_reason(missing.value) == "notFound"

    patched = labels.patch(userId="me", id=created["id"], body={"name": "Done"}).execute()
    assert patched["name"] == "Done"
    updated = labels.update(userId="me", id=created["id"],
                            body={"name": "Done2", "labelListVisibility": "labelHide"}).execute()
    assert updated["labelListVisibility"] == "labelHide"
    fetched = labels.get(userId="me", id=created["id"]).execute()
    assert fetched["messagesTotal"] == 0
    labels.delete(userId="me", id=created["id"]).execute()
    assert created["id"] not in {l["id"] for l in labels.list(userId="me").execute()["labels"]}


def test_message_formats_and_attachments(service):
    attachment = os.urandom(3000)
    original = rfc822(attachment=attachment)
    inserted = service.users().messages().insert(
        userId="me", body={"raw": b64(original), "labelIds": ["INBOX"]},
    ).execute()
    messages = service.users().messages()

    minimal = messages.get(userId="me", id=inserted["id"], format="minimal").execute()
    metadata = messages.get(userId="me", id=inserted["id"], format="metadata",
                            metadataHeaders=["Subject", "Message-ID"]).execute()
    full = messages.get(userId="me", id=inserted["id"], format="full").execute()
    raw = messages.get(userId="me", id=inserted["id"], format="raw").execute()

    assert "payload" not in minimal and minimal["labelIds"] == ["INBOX"]
    assert minimal["snippet"].startswith("Please help")
    assert int(minimal["internalDate"]) > 0 and minimal["sizeEstimate"] > 3000
    assert {h["name"] for h in metadata["payload"]["headers"]} == {"Subject", "Message-ID"}
    assert base64.urlsafe_b64decode(raw["raw"]) == original
    payload = full["payload"]
    assert payload["mimeType"] == "multipart/mixed" and payload["partId"] == ""
    text, binary = payload["parts"]
    assert text["partId"] == "0" and text["mimeType"] == "text/plain"
    assert base64.urlsafe_b64decode(text["body"]["data"]).startswith(b"Please help")
    assert binary["filename"] == "report.bin" and binary["body"]["size"] == 3000
    fetched = messages.attachments().get(userId="me", messageId=inserted["id"],
                                         id=binary["body"]["attachmentId"]).execute()
    assert base64.urlsafe_b64decode(fetched["data"]) == attachment


def test_list_supports_gmail_queries_paging_and_spam_trash(fake, service):
    now_ms = int(time.time() * 1000)
    day = 86400 * 1000
    old = fake.deliver(ACCOUNT, rfc822("old"), "INBOX", internal_date_ms=now_ms - 10 * day)
    unread = fake.deliver(ACCOUNT, rfc822("new", sender="vip@example.org"), "INBOX,UNREAD")
    label = service.users().labels().create(userId="me", body={"name": "Processed"}).execute()
    processed = fake.deliver(ACCOUNT, rfc822("done"), f"INBOX,{label['id']}")
    trashed = fake.deliver(ACCOUNT, rfc822("bin"), "TRASH")
    messages = service.users().messages()

    def ids(**kwargs: Any) -> list[str]:
        return [m["id"] for m in messages.list(userId="me", **kwargs).execute()
                .get("messages", [])]

    assert ids(q="in:inbox") == [processed["id"], unread["id"], old["id"]]  # newest first
    assert ids(q="is:unread") == [unread["id"]]
    assert ids(q="label:processed") == [processed["id"]]
    assert ids(q="in:inbox -label:Processed") == [unread["id"], old["id"]]
    assert ids(q=f"after:{(now_ms - day) // 1000}") == [processed["id"], unread["id"]]
    assert ids(q="before:2000/01/01") == []
    assert ids(q="newer_than:2d") == [processed["id"], unread["id"]]
    assert ids(q="from:vip@example.org") == [unread["id"]]
    assert ids(labelIds=["INBOX", "UNREAD"]) == [unread["id"]]
    assert trashed["id"] not in ids()
    assert trashed["id"] in ids(includeSpamTrash=True)
    empty = messages.list(userId="me", q="label:nothing-like-this").execute()
    assert "messages" not in empty and empty["resultSizeEstimate"] == 0

    first = messages.list(userId="me", q="in:inbox", maxResults=2).execute()
    second = messages.list(userId="me", q="in:inbox", maxResults=2,
                           pageToken=first["nextPageToken"]).execute()
    assert [m["id"] for m in first["messages"] + second["messages"]] == ids(q="in:inbox")
    assert "nextPageToken" not in second


def test_page_tokens_survive_relabelling_while_paging(fake, service):
    delivered = [fake.deliver(ACCOUNT, rfc822(f"p{i}"))["id"] for i in range(6)]
    messages = service.users().messages()
    seen: list[str] = []
    page_token = None
    while True:
        page = messages.list(userId="me", q="in:inbox", maxResults=2,
                             pageToken=page_token).execute()
        page_ids = [m["id"] for m in page.get("messages", [])]
        seen.extend(page_ids)
        # Post-processing the page (archiving it) must not make the next page skip mail.
        if page_ids:
            messages.batchModify(userId="me", body={"ids": page_ids,
                                                    "removeLabelIds": ["INBOX"]}).execute()
        page_token = page.get("nextPageToken")
        if not page_token:
            break
    assert seen == list(reversed(delivered))


def test_media_upload_insert_accepts_simple_and_multipart(fake):
    # googleapiclient sends uploads to https://, so this speaks the wire format directly.
    credentials = sign_in(fake)
    service = gmail(fake, credentials)
    headers = {"Authorization": f"Bearer {credentials.token}"}
    simple = requests.post(fake.url + "/upload/gmail/v1/users/me/messages",
                           params={"uploadType": "media"}, data=rfc822("simple"),
                           headers={**headers, "Content-Type": "message/rfc822"}, timeout=10)
    related = (b"--part\r\nContent-Type: application/json\r\n\r\n"
               b'{"labelIds": ["INBOX", "UNREAD"]}\r\n--part\r\n'
               b"Content-Type: message/rfc822\r\n\r\n" + rfc822("multipart") + b"\r\n--part--")
    multipart = requests.post(fake.url + "/upload/gmail/v1/users/me/messages",
                              params={"uploadType": "multipart"}, data=related,
                              headers={**headers,
                                       "Content-Type": "multipart/related; boundary=part"},
                              timeout=10)

    assert simple.status_code == 200 and multipart.status_code == 200
    stored = {m["id"]: m for m in fake.get(f"/_fake/users/{ACCOUNT}/messages")}
    assert "labelIds" not in service.users().messages().get(
        userId="me", id=simple.json()["id"], format="minimal").execute()
    assert stored[multipart.json()["id"]]["labelIds"] == ["INBOX", "UNREAD"]


def test_partial_responses_honour_fields(fake, service):
    delivered = fake.deliver(ACCOUNT, rfc822())
    messages = service.users().messages()

    listed = messages.list(userId="me", fields="messages/id,nextPageToken").execute()
    got = messages.get(userId="me", id=delivered["id"], format="metadata",
                       fields="id,payload(headers(name))").execute()

    assert listed == {"messages": [{"id": delivered["id"]}]}
    assert set(got) == {"id", "payload"}
    assert all(set(header) == {"name"} for header in got["payload"]["headers"])


def test_threading_follows_gmail_rules_and_send_is_recorded(fake, service):
    original = fake.deliver(ACCOUNT, rfc822("Printer", message_id="<first@example.org>"))
    reply = fake.deliver(ACCOUNT, rfc822("Re: Printer", in_reply_to="<first@example.org>"))
    other_subject = fake.deliver(ACCOUNT, rfc822("Something else",
                                                 in_reply_to="<first@example.org>"))
    assert reply["threadId"] == original["threadId"]
    assert other_subject["threadId"] != original["threadId"]

    answer = rfc822("Re: Printer", sender=ACCOUNT, to="customer@example.org",
                    in_reply_to="<first@example.org>")
    sent = service.users().messages().send(
        userId="me", body={"raw": b64(answer), "threadId": original["threadId"]}).execute()
    assert sent["threadId"] == original["threadId"] and sent["labelIds"] == ["SENT"]
    thread = service.users().threads().get(userId="me", id=original["threadId"]).execute()
    assert [m["id"] for m in thread["messages"]][-1] == sent["id"]
    outbox = fake.get(f"/_fake/users/{ACCOUNT}/sent")
    assert [m["id"] for m in outbox] == [sent["id"]]
    assert base64.urlsafe_b64decode(outbox[0]["raw"]) == answer


def test_modify_trash_delete_and_batch_modify(fake, service):
    first = fake.deliver(ACCOUNT, rfc822("a"))
    second = fake.deliver(ACCOUNT, rfc822("b"))
    messages = service.users().messages()

    modified = messages.modify(userId="me", id=first["id"],
                               body={"removeLabelIds": ["UNREAD"], "addLabelIds": ["STARRED"]}
                               ).execute()
    assert modified["labelIds"] == ["INBOX", "STARRED"]
    with pytest.raises(HttpError) as error:
        messages.modify(userId="me", id=first["id"], body={"addLabelIds": ["Label_77"]}).execute()
    assert error.value.resp.status == 400
    assert "TRASH" in messages.trash(userId="me", id=first["id"]).execute()["labelIds"]
    assert "TRASH" not in messages.untrash(userId="me", id=first["id"]).execute()["labelIds"]

    result = messages.batchModify(userId="me", body={
        "ids": [first["id"], second["id"]], "removeLabelIds": ["INBOX", "UNREAD"]}).execute()
    assert not result  # 204, empty body
    assert messages.list(userId="me", q="in:inbox").execute()["resultSizeEstimate"] == 0
    with pytest.raises(HttpError) as too_many:
        messages.batchModify(userId="me", body={"ids": ["0" * 16] * 1001,
                                                "addLabelIds": ["STARRED"]}).execute()
    assert too_many.value.resp.status == 400

    messages.delete(userId="me", id=second["id"]).execute()
    with pytest.raises(HttpError) as gone:
        messages.get(userId="me", id=second["id"]).execute()
    assert gone.value.resp.status == 404


# ----- history ----------------------------------------------------------------------------------


def test_history_pages_filters_and_expires(fake, service):
    start = service.users().getProfile(userId="me").execute()["historyId"]
    history = service.users().history()
    nothing = history.list(userId="me", startHistoryId=start).execute()
    assert "history" not in nothing and nothing["historyId"] == start

    delivered = [fake.deliver(ACCOUNT, rfc822(f"m{i}")) for i in range(5)]
    service.users().messages().modify(userId="me", id=delivered[0]["id"],
                                      body={"removeLabelIds": ["UNREAD"]}).execute()
    service.users().messages().delete(userId="me", id=delivered[1]["id"]).execute()

    seen: list[dict] = []
    page_token = None
    while True:
        page = history.list(userId="me", startHistoryId=start, maxResults=2,
                            pageToken=page_token).execute()
        seen.extend(page.get("history", []))
        page_token = page.get("nextPageToken")
        if not page_token:
            break
    assert len(seen) == 7
    assert [int(h["id"]) for h in seen] == sorted(int(h["id"]) for h in seen)
    assert int(page["historyId"]) == int(seen[-1]["id"])
    added = [h["messagesAdded"][0]["message"]["id"] for h in seen if "messagesAdded" in h]
    assert added == [d["id"] for d in delivered]
    assert any("labelsRemoved" in h and h["labelsRemoved"][0]["labelIds"] == ["UNREAD"]
               for h in seen)
    assert any("messagesDeleted" in h for h in seen)

    only_added = history.list(userId="me", startHistoryId=start,
                              historyTypes=["messageAdded"]).execute()["history"]
    assert len(only_added) == 5 and all(set(h) == {"id", "messages", "messagesAdded"}
                                        for h in only_added)
    unread_only = history.list(userId="me", startHistoryId=start, labelId="UNREAD",
                               historyTypes=["labelRemoved"]).execute()["history"]
    assert len(unread_only) == 1

    fake.post(f"/_fake/users/{ACCOUNT}/expire-history")
    with pytest.raises(HttpError) as expired:
        history.list(userId="me", startHistoryId=start).execute()
    assert expired.value.resp.status == 404 and error_reason(expired.value) == "notFound"
    current = service.users().getProfile(userId="me").execute()["historyId"]
    assert "history" not in history.list(userId="me", startHistoryId=current).execute()


# ----- batch, quota, faults --------------------------------------------------------------------


def test_batch_of_fifty_gets_counts_each_call(fake, service):
    ids = [fake.deliver(ACCOUNT, rfc822(f"batch {i}"))["id"] for i in range(50)]
    fake.post("/_fake/stats/reset")
    results: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Exception | None) -> None:
        results[request_id] = exception or response

    batch = BatchHttpRequest(callback=collect, batch_uri=fake.url + "/batch/gmail/v1")
    for message_id in ids:
        batch.add(service.users().messages().get(userId="me", id=message_id, format="raw"),
                  request_id=message_id)
    batch.execute()

    assert set(results) == set(ids)
    assert all(results[i]["id"] == i and "raw" in results[i] for i in ids)
    usage = fake.get("/_fake/stats")["users"][ACCOUNT]
    assert usage["calls"] == {"gmail.users.messages.get": 50}
    assert usage["quota_units"] == 250


def test_batch_mixes_writes_empty_bodies_and_errors(fake, service):
    first, second = (fake.deliver(ACCOUNT, rfc822(f"mixed {i}"))["id"] for i in range(2))
    results: dict[str, Any] = {}
    batch = BatchHttpRequest(batch_uri=fake.url + "/batch/gmail/v1",
                             callback=lambda rid, resp, exc: results.__setitem__(rid, (resp, exc)))
    messages = service.users().messages()
    batch.add(messages.modify(userId="me", id=first, body={"removeLabelIds": ["UNREAD"]}),
              request_id="m")
    batch.add(messages.delete(userId="me", id=second), request_id="d")
    batch.add(messages.get(userId="me", id="ffffffffffffffff"), request_id="g")
    batch.execute()

    assert results["m"] == ({"id": first, "threadId": first, "labelIds": ["INBOX"]}, None)
    assert results["d"][1] is None  # 204 with an empty body
    assert isinstance(results["g"][1], HttpError) and results["g"][1].resp.status == 404
    assert [m["id"] for m in fake.get(f"/_fake/users/{ACCOUNT}/messages")] == [first]


def test_batch_refuses_more_than_one_hundred_parts(fake, service):
    batch = BatchHttpRequest(batch_uri=fake.url + "/batch")
    for _ in range(101):
        batch.add(service.users().getProfile(userId="me"))

    with pytest.raises(HttpError) as error:
        batch.execute()

    assert error.value.resp.status == 400


def test_quota_exhaustion_answers_429_without_executing(fake, service):
    message_id = fake.deliver(ACCOUNT, rfc822())["id"]
    fake.post("/_fake/stats/reset")
    fake.post("/_fake/config", {"quota_per_minute": 12})
    messages = service.users().messages()

    messages.get(userId="me", id=message_id).execute()
    messages.get(userId="me", id=message_id).execute()
    with pytest.raises(HttpError) as error:
        messages.modify(userId="me", id=message_id, body={"removeLabelIds": ["UNREAD"]}).execute()

    assert error.value.resp.status == 429 and error_reason(error.value) == "rateLimitExceeded"
    usage = fake.get("/_fake/stats")["users"][ACCOUNT]
    assert usage["quota_units"] == 10 and usage["rate_limited"] == 1
    assert fake.get(f"/_fake/users/{ACCOUNT}/messages")[0]["labelIds"] == ["INBOX", "UNREAD"]
    assert service.users().getProfile(userId="me").execute()  # 1 unit still fits


def test_injected_faults_cost_nothing_and_clear(fake, service):
    fake.post("/_fake/stats/reset")
    fake.post("/_fake/faults", {"error_rate": 1.0, "statuses": [503], "seed": 7,
                                "methods": ["getProfile"]})

    with pytest.raises(HttpError) as error:
        service.users().getProfile(userId="me").execute()
    service.users().labels().list(userId="me").execute()  # not a faulted method
    fake.post("/_fake/faults", {"error_rate": 0})
    service.users().getProfile(userId="me").execute()

    assert error.value.resp.status == 503
    usage = fake.get("/_fake/stats")["users"][ACCOUNT]
    assert usage["faulted"] == 1 and usage["quota_units"] == 2


# ----- OAuth ------------------------------------------------------------------------------------


def test_expired_access_token_is_refreshed_transparently(fake):
    credentials = sign_in(fake)
    service = gmail(fake, credentials)
    first_token = credentials.token
    fake.post(f"/_fake/users/{ACCOUNT}/expire-access-tokens")

    profile = service.users().getProfile(userId="me").execute()

    assert profile["emailAddress"] == ACCOUNT
    assert credentials.token != first_token


def test_revoked_grant_fails_refresh_with_invalid_grant(fake):
    credentials = sign_in(fake)
    response = requests.post(fake.url + "/revoke", data={"token": credentials.refresh_token},
                             timeout=10)
    assert response.status_code == 200

    with pytest.raises(RefreshError) as error:
        credentials.refresh(google.auth.transport.requests.Request())

    assert "invalid_grant" in str(error.value)


def test_password_change_invalidates_refresh_tokens(fake):
    credentials = sign_in(fake)
    credentials.refresh(google.auth.transport.requests.Request())  # works before
    fake.post(f"/_fake/users/{ACCOUNT}/invalidate-tokens")

    with pytest.raises(RefreshError) as error:
        credentials.refresh(google.auth.transport.requests.Request())

    assert "invalid_grant" in str(error.value)
    assert "Token has been expired or revoked." in str(error.value)


def test_pkce_verifier_mismatch_is_invalid_grant(fake):
    fake.post("/_fake/oauth/approve-as", {"email": ACCOUNT})
    flow = make_flow(fake)
    location = authorize(fake, flow).headers["Location"]
    flow.code_verifier = "x" * 64  # not the verifier the challenge was made from

    with pytest.raises(InvalidGrantError):
        flow.fetch_token(authorization_response=location)


def test_authorization_code_is_single_use(fake):
    fake.post("/_fake/oauth/approve-as", {"email": ACCOUNT})
    flow = make_flow(fake)
    location = authorize(fake, flow).headers["Location"]
    flow.fetch_token(authorization_response=location)
    assert flow.credentials.refresh_token

    with pytest.raises(InvalidGrantError):
        flow.fetch_token(authorization_response=location)


def test_unregistered_redirect_uri_shows_error_page_without_redirect(fake):
    flow = make_flow(fake, redirect_uri="http://evil.example/callback")

    response = authorize(fake, flow)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "redirect_uri_mismatch" in response.text


def test_consent_page_allow_with_downgraded_scopes_and_deny(fake):
    flow = make_flow(fake)
    page = authorize(fake, flow, login_hint=ACCOUNT, state="s-123")
    assert page.status_code == 200
    for fragment in ('<label for="email">Account</label>', f'value="{ACCOUNT}"',
                     ">Allow</button>", ">Deny</button>", f'value="{GMAIL_SCOPE}" checked'):
        assert fragment in page.text
    transaction = page.text.split('name="transaction" value="')[1].split('"')[0]
    consent_url = fake.url + "/o/oauth2/consent"

    unknown = requests.post(consent_url, data={"transaction": transaction, "action": "allow",
                                               "email": "nobody@acme.example",
                                               "scope": SCOPES}, timeout=10)
    assert unknown.status_code == 200 and "Couldn&#x27;t find your Google Account" in unknown.text

    granted = [s for s in SCOPES if s != GMAIL_SCOPE]  # the user unticks Gmail
    allowed = requests.post(consent_url, data={"transaction": transaction, "action": "allow",
                                               "email": ACCOUNT, "scope": granted},
                            allow_redirects=False, timeout=10)
    assert allowed.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(allowed.headers["Location"]).query)
    assert query["state"] == ["s-123"] and query["scope"] == [" ".join(granted)]
    flow.fetch_token(authorization_response=allowed.headers["Location"])
    assert GMAIL_SCOPE not in flow.credentials.granted_scopes

    page = authorize(fake, flow, state="s-456")
    transaction = page.text.split('name="transaction" value="')[1].split('"')[0]
    denied = requests.post(consent_url, data={"transaction": transaction, "action": "deny"},
                           allow_redirects=False, timeout=10)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(denied.headers["Location"]).query)
    assert query == {"state": ["s-456"], "error": ["access_denied"]}


def test_downgraded_grant_cannot_call_gmail(fake):
    credentials = sign_in(fake, scopes=["openid", "https://www.googleapis.com/auth/userinfo.email"])

    with pytest.raises(HttpError) as error:
        gmail(fake, credentials).users().getProfile(userId="me").execute()

    assert error.value.resp.status == 403
    assert error_reason(error.value) == "insufficientPermissions"


def test_token_endpoint_rejects_unknown_client_and_wrong_secret(fake):
    unknown = requests.post(fake.url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": "x", "client_id": "nobody",
        "client_secret": "x"}, timeout=10)
    wrong = requests.post(fake.url + "/token", auth=(CLIENT_ID, "wrong"), data={
        "grant_type": "refresh_token", "refresh_token": "x"}, timeout=10)

    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_refresh_token_is_issued_again_only_with_prompt_consent(fake):
    fake.post("/_fake/oauth/approve-as", {"email": ACCOUNT})
    first = make_flow(fake)
    first.fetch_token(authorization_response=authorize(fake, first).headers["Location"])
    again = make_flow(fake)
    url, _ = again.authorization_url(access_type="offline")  # no prompt=consent
    again.fetch_token(authorization_response=requests.get(
        url, allow_redirects=False, timeout=10).headers["Location"])

    assert first.credentials.refresh_token
    assert again.credentials.refresh_token is None


def test_id_token_verifies_against_certs_and_userinfo_matches(fake):
    from google.oauth2 import id_token

    credentials = sign_in(fake)
    request = google.auth.transport.requests.Request()

    claims = id_token.verify_token(credentials.id_token, request, audience=CLIENT_ID,
                                   certs_url=fake.url + "/oauth2/v1/certs")
    session = google.auth.transport.requests.AuthorizedSession(credentials)
    userinfo = session.get(fake.url + "/oauth2/v3/userinfo", timeout=10).json()

    assert claims["iss"] == "https://accounts.google.com"
    assert claims["email"] == ACCOUNT and claims["email_verified"] is True
    assert claims["hd"] == "acme.example"
    assert userinfo == {"sub": claims["sub"], "email": ACCOUNT, "email_verified": True,
                        "hd": "acme.example"}


# ----- Secret Manager ---------------------------------------------------------------------------


def test_secret_manager_over_rest(fake):
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    client = secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options={"api_endpoint": fake.url})
    parent = "projects/demo-project"
    secret = client.create_secret(request={"parent": parent, "secret_id": "refresh-token",
                                           "secret": {"replication": {"automatic": {}}}})
    with pytest.raises(exceptions.Conflict):  # 409 ALREADY_EXISTS over REST
        client.create_secret(request={"parent": parent, "secret_id": "refresh-token",
                                      "secret": {"replication": {"automatic": {}}}})

    import google_crc32c
    first = client.add_secret_version(request={"parent": secret.name, "payload": {
        "data": b"one", "data_crc32c": google_crc32c.value(b"one")}})
    client.add_secret_version(request={"parent": secret.name, "payload": {"data": b"two"}})
    latest = client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.payload.data == b"two" and latest.name.endswith("/versions/2")
    assert latest.payload.data_crc32c == google_crc32c.value(b"two")
    assert [v.name for v in client.list_secret_versions(parent=secret.name)] == [
        f"{secret.name}/versions/2", first.name]

    client.disable_secret_version(name=f"{secret.name}/versions/2")
    with pytest.raises(exceptions.BadRequest, match="DISABLED state"):  # FAILED_PRECONDITION
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    client.enable_secret_version(name=f"{secret.name}/versions/2")
    destroyed = client.destroy_secret_version(name=first.name)
    assert destroyed.state == secretmanager.SecretVersion.State.DESTROYED
    assert client.get_secret_version(name=first.name).state == \
        secretmanager.SecretVersion.State.DESTROYED
    assert [s.name for s in client.list_secrets(parent=parent)] == [secret.name]
    assert fake.get("/_fake/stats")["secrets"] == 1

    client.delete_secret(name=secret.name)
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret.name)


# ----- watch + Pub/Sub --------------------------------------------------------------------------


def test_watch_publishes_coalesced_notifications():
    if not PubSubEmulator.available():
        pytest.skip("gcloud (Pub/Sub emulator) is not installed")
    emulator = PubSubEmulator()
    try:
        emulator.start()
    except RuntimeError as error:
        pytest.skip(f"cannot start the Pub/Sub emulator: {error}")
    try:
        _check_watch_notifications(emulator)
    finally:
        emulator.stop()


def _check_watch_notifications(emulator: PubSubEmulator) -> None:
    from google.cloud import pubsub_v1

    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
    try:
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic, subscription = "projects/demo/topics/gmail", "projects/demo/subscriptions/gmail"
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        with FakeGoogleProcess(env={"PUBSUB_EMULATOR_HOST": emulator.host}) as fake:
            fake.post("/_fake/users", {"email": ACCOUNT})
            fake.post("/_fake/oauth/clients", {"client_id": CLIENT_ID,
                                               "client_secret": CLIENT_SECRET,
                                               "redirect_uris": [REDIRECT_URI]})
            service = gmail(fake, sign_in(fake))
            with pytest.raises(HttpError):
                service.users().watch(userId="me", body={
                    "topicName": "projects/demo/topics/missing"}).execute()
            watch = service.users().watch(userId="me", body={
                "topicName": topic, "labelIds": ["INBOX"]}).execute()
            assert int(watch["expiration"]) > (time.time() + 6 * 86400) * 1000

            fake.deliver(ACCOUNT, rfc822("not watched"), "SPAM")
            for i in range(3):
                final = fake.deliver(ACCOUNT, rfc822(f"watched {i}"))
            received: list[dict] = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                response = subscriber.pull(subscription=subscription, max_messages=10,
                                           timeout=5, return_immediately=False)
                for item in response.received_messages:
                    received.append(json.loads(item.message.data))
                if response.received_messages:
                    subscriber.acknowledge(subscription=subscription,
                                           ack_ids=[r.ack_id for r in response.received_messages])
                if received and received[-1]["historyId"] == int(final["historyId"]):
                    break
            published = fake.get("/_fake/notifications")
            fake.post("/_fake/notifications", {"paused": True})
            fake.deliver(ACCOUNT, rfc822("while paused"))
            assert fake.get("/_fake/notifications") == published
            assert fake.get("/_fake/stats")["notifications_dropped"] == 1
            service.users().stop(userId="me").execute()

        assert received and all(r["emailAddress"] == ACCOUNT for r in received)
        assert received[-1]["historyId"] == int(final["historyId"])  # the last is never dropped
        assert len(received) <= 2  # three deliveries within a second are coalesced
    finally:
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous


# ----- conformance with the discovery document --------------------------------------------------


def _discovery_methods() -> dict[str, dict]:
    methods: dict[str, dict] = {}

    def walk(resources: dict) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                methods[method["id"]] = method
            walk(resource.get("resources", {}))

    walk(discovery_document()["resources"])
    return methods


def test_every_served_gmail_route_is_in_the_discovery_document(fake):
    methods = _discovery_methods()
    gmail_routes = [r for r in fake.get("/_fake/routes") if r["kind"] == "gmail"]
    assert len(gmail_routes) >= 25

    for route in gmail_routes:
        template = route["rule"].lstrip("/").replace("<", "{").replace(">", "}")
        method = methods[route["method_id"]]
        protocols = method.get("mediaUpload", {}).get("protocols", {})
        uploads = {protocol["path"].lstrip("/") for protocol in protocols.values()}
        # A resumable upload goes on with PUTs to its session URI (the upload path).
        expected = ["PUT"] if route["methods"] == ["PUT"] and template in uploads else [
            method["httpMethod"]]
        assert route["methods"] == expected, route
        allowed = {method["path"], method.get("flatPath")} | uploads
        assert template in allowed, route


def _check_schema(value: Any, schema: dict, schemas: dict, where: str) -> None:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        assert isinstance(value, dict), where
        properties = schema.get("properties", {})
        for key, item in value.items():
            assert key in properties, f"{where}.{key} is not in the discovery schema"
            _check_schema(item, properties[key], schemas, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            _check_schema(item, schema["items"], schemas, f"{where}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{where} should be a string (format {schema.get('format')})"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where


def test_responses_carry_only_documented_fields(fake, service):
    """Call every served method for real and check each response against its schema."""
    responses: dict[str, list] = {}
    users = service.users()

    def record(method_id: str, request: Any) -> Any:
        result = request.execute()
        responses.setdefault(method_id, []).append(result)
        return result

    delivered = fake.deliver(ACCOUNT, rfc822(attachment=b"x" * 100, message_id="<tour@x>"))
    start = record("gmail.users.getProfile", users.getProfile(userId="me"))["historyId"]
    label = record("gmail.users.labels.create", users.labels().create(
        userId="me", body={"name": "Tour", "color": {"textColor": "#000000",
                                                     "backgroundColor": "#ffffff"}}))
    record("gmail.users.labels.list", users.labels().list(userId="me"))
    record("gmail.users.labels.get", users.labels().get(userId="me", id=label["id"]))
    record("gmail.users.labels.get", users.labels().get(userId="me", id="INBOX"))
    record("gmail.users.labels.patch", users.labels().patch(
        userId="me", id=label["id"], body={"name": "Tour2"}))
    record("gmail.users.labels.update", users.labels().update(
        userId="me", id=label["id"], body={"name": "Tour3"}))
    inserted = record("gmail.users.messages.insert", users.messages().insert(
        userId="me", body={"raw": b64(rfc822("Re: Printer on fire", in_reply_to="<tour@x>")),
                           "labelIds": ["INBOX"]}))
    record("gmail.users.messages.import", users.messages().import_(
        userId="me", body={"raw": b64(rfc822("imported"))}))
    record("gmail.users.messages.send", users.messages().send(
        userId="me", body={"raw": b64(rfc822("out", sender=ACCOUNT, to="c@example.org"))}))
    record("gmail.users.messages.list", users.messages().list(userId="me", maxResults=1))
    record("gmail.users.messages.list", users.messages().list(userId="me", q="label:none"))
    full = None
    for fmt in ("minimal", "metadata", "full", "raw"):
        result = record("gmail.users.messages.get", users.messages().get(
            userId="me", id=delivered["id"], format=fmt))
        full = result if fmt == "full" else full
    attachment_id = full["payload"]["parts"][1]["body"]["attachmentId"]
    record("gmail.users.messages.attachments.get", users.messages().attachments().get(
        userId="me", messageId=delivered["id"], id=attachment_id))
    record("gmail.users.messages.modify", users.messages().modify(
        userId="me", id=inserted["id"], body={"addLabelIds": [label["id"]]}))
    record("gmail.users.messages.trash", users.messages().trash(userId="me", id=inserted["id"]))
    record("gmail.users.messages.untrash", users.messages().untrash(userId="me",
                                                                    id=inserted["id"]))
    record("gmail.users.messages.batchModify", users.messages().batchModify(
        userId="me", body={"ids": [inserted["id"]], "removeLabelIds": ["INBOX"]}))
    record("gmail.users.threads.list", users.threads().list(userId="me"))
    record("gmail.users.threads.get", users.threads().get(userId="me", id=delivered["threadId"]))
    record("gmail.users.history.list", users.history().list(userId="me", startHistoryId=start))
    record("gmail.users.messages.delete", users.messages().delete(userId="me",
                                                                   id=inserted["id"]))
    record("gmail.users.messages.batchDelete", users.messages().batchDelete(
        userId="me", body={"ids": [delivered["id"]]}))
    record("gmail.users.history.list", users.history().list(userId="me", startHistoryId=start))
    record("gmail.users.labels.delete", users.labels().delete(userId="me", id=label["id"]))
    record("gmail.users.watch", users.watch(userId="me", body={
        "topicName": "projects/demo/topics/gmail"}))
    record("gmail.users.stop", users.stop(userId="me"))
    record("gmail.users.settings.sendAs.list", users.settings().sendAs().list(userId="me"))
    record("gmail.users.settings.sendAs.get", users.settings().sendAs().get(
        userId="me", sendAsEmail=ACCOUNT))

    document = discovery_document()
    methods = _discovery_methods()
    served = {r["method_id"] for r in fake.get("/_fake/routes") if r["kind"] == "gmail"}
    assert set(responses) == served, "the tour must exercise every served method"
    for method_id, results in responses.items():
        response_schema = methods[method_id].get("response")
        for result in results:
            if response_schema is None:
                assert not result, f"{method_id} documents no response body"
            else:
                _check_schema(result, response_schema, document["schemas"], method_id)


# ----- strict Gmail behaviours (POST /_fake/behaviour) ------------------------------------------

STRICT_DEFAULTS = {"simple_request_limit_bytes": 5 * 1024 * 1024, "replace_message_id": False,
                   "thread_requires_subject_match": True, "deleted_thread_status": 400}


def gmail_from_local_discovery(fake: FakeGoogleProcess, credentials: Any, tmp_path: Any) -> Any:
    """googleapiclient built from a copy of its bundled gmail.v1.json whose rootUrl is the fake,
    so media uploads (which go to rootUrl, not api_endpoint) reach it too."""
    from googleapiclient.discovery import build_from_document

    document = discovery_document()
    document["rootUrl"] = fake.url + "/"
    document["baseUrl"] = fake.url + "/" + document["servicePath"]
    local = tmp_path / "gmail.v1.json"
    local.write_text(json.dumps(document))
    return build_from_document(local.read_text(), credentials=credentials)


def big_message(size: int, subject: str = "Report") -> bytes:
    return rfc822(subject, sender=ACCOUNT, to="customer@example.org",
                  attachment=os.urandom(size))


def test_behaviour_defaults_are_strict_and_reset_restores_them(fake):
    assert fake.get("/_fake/behaviour") == STRICT_DEFAULTS
    changed = fake.post("/_fake/behaviour", {"replace_message_id": True,
                                             "deleted_thread_status": 404})
    refused = fake.session.post(fake.url + "/_fake/behaviour", json={"colour": 1}, timeout=10)
    fake.post("/_fake/reset")

    assert changed == {**STRICT_DEFAULTS, "replace_message_id": True,
                       "deleted_thread_status": 404}
    assert refused.status_code == 400 and "colour" in refused.json()["error"]
    assert fake.get("/_fake/behaviour") == STRICT_DEFAULTS


def test_simple_request_over_five_mib_is_413_and_not_sent(fake, service):
    raw = big_message(4 * 1024 * 1024)  # base64 in JSON makes the request about 5.4 MB

    with pytest.raises(HttpError) as error:
        service.users().messages().send(userId="me", body={"raw": b64(raw)}).execute()

    assert error.value.resp.status == 413
    body = json.loads(error.value.content)["error"]
    assert body["code"] == 413 and "5242880" in body["message"] and body["errors"][0]["reason"]
    assert fake.get(f"/_fake/users/{ACCOUNT}/sent") == []


def test_upload_route_sends_multipart_media_and_resumable_through_googleapiclient(
        fake, tmp_path):
    from googleapiclient.http import MediaInMemoryUpload, MediaIoBaseUpload
    import io

    service = gmail_from_local_discovery(fake, sign_in(fake), tmp_path)
    messages = service.users().messages()
    large = big_message(6 * 1024 * 1024, "Large")
    small = rfc822("Small", sender=ACCOUNT, to="customer@example.org")

    multipart = messages.send(userId="me", body={}, media_body=MediaInMemoryUpload(
        large, mimetype="message/rfc822")).execute()
    media = messages.send(userId="me", media_body=MediaInMemoryUpload(
        small, mimetype="message/rfc822")).execute()
    resumable = messages.send(userId="me", body={}, media_body=MediaIoBaseUpload(
        io.BytesIO(large), mimetype="message/rfc822", chunksize=1024 * 1024,
        resumable=True)).execute()

    sent = {m["id"]: base64.urlsafe_b64decode(m["raw"])
            for m in fake.get(f"/_fake/users/{ACCOUNT}/sent")}
    assert sent == {multipart["id"]: large, media["id"]: small, resumable["id"]: large}
    assert fake.get("/_fake/stats")["users"][ACCOUNT]["calls"]["gmail.users.messages.send"] == 3


def test_upload_over_the_discovery_max_size_is_413(fake):
    credentials = sign_in(fake)
    maximum = int(discovery_document()["resources"]["users"]["resources"]["messages"][
        "methods"]["send"]["mediaUpload"]["maxSize"])

    response = requests.post(
        fake.url + "/upload/gmail/v1/users/me/messages/send", params={"uploadType": "resumable"},
        headers={"Authorization": f"Bearer {credentials.token}",
                 "X-Upload-Content-Type": "message/rfc822",
                 "X-Upload-Content-Length": str(maximum + 1)}, json={}, timeout=10)

    assert maximum == 35 * 1024 * 1024
    assert response.status_code == 413
    assert response.json()["error"]["errors"][0]["reason"] == "uploadTooLarge"


def test_upload_refuses_a_media_type_outside_message_star(fake):
    credentials = sign_in(fake)

    response = requests.post(
        fake.url + "/upload/gmail/v1/users/me/messages/send", params={"uploadType": "media"},
        headers={"Authorization": f"Bearer {credentials.token}", "Content-Type": "text/plain"},
        data=rfc822(sender=ACCOUNT), timeout=10)

    assert response.status_code == 400
    assert fake.get(f"/_fake/users/{ACCOUNT}/sent") == []


def test_upload_without_upload_type_is_400(fake):
    credentials = sign_in(fake)

    response = requests.post(
        fake.url + "/upload/gmail/v1/users/me/messages/send",
        headers={"Authorization": f"Bearer {credentials.token}",
                 "Content-Type": "message/rfc822"}, data=rfc822(sender=ACCOUNT), timeout=10)

    assert response.status_code == 400 and "uploadType" in response.json()["error"]["message"]


def test_unknown_query_parameter_is_400_invalid_argument(fake):
    credentials = sign_in(fake)

    response = requests.get(fake.url + "/gmail/v1/users/me/messages",
                            params={"maxResults": 5, "labelId": "INBOX"},
                            headers={"Authorization": f"Bearer {credentials.token}"}, timeout=10)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["errors"][0]["reason"] == \
        "invalidArgument"
    assert 'Unknown name "labelId"' in error["message"]


def test_query_enum_and_integer_values_are_checked(fake):
    credentials = sign_in(fake)
    message_id = fake.deliver(ACCOUNT, rfc822())["id"]
    headers = {"Authorization": f"Bearer {credentials.token}"}

    bad_format = requests.get(fake.url + f"/gmail/v1/users/me/messages/{message_id}",
                              params={"format": "RAW"}, headers=headers, timeout=10)
    bad_integer = requests.get(fake.url + "/gmail/v1/users/me/messages",
                               params={"maxResults": "ten"}, headers=headers, timeout=10)

    assert bad_format.status_code == 400 and bad_integer.status_code == 400


def test_unknown_body_field_and_bad_body_enum_are_400(service):
    labels = service.users().labels()

    with pytest.raises(HttpError) as unknown:
        labels.create(userId="me", body={"name": "Tickets", "colour": "red"}).execute()
    with pytest.raises(HttpError) as nested:
        service.users().messages().send(userId="me", body={
            "raw": b64(rfc822(sender=ACCOUNT)), "payload": {"header": []}}).execute()
    with pytest.raises(HttpError) as enum:
        labels.create(userId="me", body={"name": "Tickets",
                                         "labelListVisibility": "sideways"}).execute()

    for error in (unknown, nested, enum):
        assert error.value.resp.status == 400 and error_reason(error.value) == "invalidArgument"
    assert 'Unknown name "colour"' in json.loads(unknown.value.content)["error"]["message"]
    assert "at 'payload'" in json.loads(nested.value.content)["error"]["message"]
    assert labels.list(userId="me").execute()["labels"][-1]["name"] != "Tickets"


def test_project_quota_is_counted_across_users_and_answers_429(fake, service):
    other = "billing@acme.example"
    fake.post("/_fake/users", {"email": other})
    other_service = gmail(fake, sign_in(fake, other))
    fake.post("/_fake/stats/reset")
    fake.post("/_fake/config", {"quota_per_project_per_minute": 3})

    service.users().getProfile(userId="me").execute()
    other_service.users().getProfile(userId="me").execute()
    service.users().labels().list(userId="me").execute()
    with pytest.raises(HttpError) as error:
        other_service.users().getProfile(userId="me").execute()

    stats = fake.get("/_fake/stats")
    assert error.value.resp.status == 429 and error_reason(error.value) == "rateLimitExceeded"
    assert stats["project"]["quota_units"] == 3 and stats["project"]["rate_limited"] == 1
    assert stats["project"]["quota_per_minute"] == 3
    assert stats["users"][ACCOUNT]["quota_units"] == 2 and stats["users"][other]["quota_units"] == 1
    assert fake.get("/_fake/config")["quota_per_project_per_minute"] == 3


def test_project_quota_defaults_to_google_limit(fake):
    assert fake.get("/_fake/config")["quota_per_project_per_minute"] == 1_200_000
    assert fake.get("/_fake/stats")["project"]["quota_per_minute"] == 1_200_000


def test_send_into_thread_needs_matching_subject_and_references(fake, service):
    original = fake.deliver(ACCOUNT, rfc822("Printer", message_id="<p1@example.org>"))
    messages = service.users().messages()

    def send(subject: str, in_reply_to: str | None = "<p1@example.org>") -> dict:
        raw = rfc822(subject, sender=ACCOUNT, to="customer@example.org", in_reply_to=in_reply_to)
        return messages.send(userId="me", body={"raw": b64(raw),
                                                "threadId": original["threadId"]}).execute()

    matching = send("RE: AW: Printer")
    tagged = send("Re: [#12] Printer")
    unreferenced = send("Re: Printer", in_reply_to=None)

    assert matching["threadId"] == original["threadId"]
    assert tagged["threadId"] not in (original["threadId"], matching["threadId"])
    assert tagged["threadId"] == tagged["id"]
    assert unreferenced["threadId"] == unreferenced["id"]


def test_send_threads_on_thread_id_alone_when_subject_match_is_off(fake, service):
    original = fake.deliver(ACCOUNT, rfc822("Printer", message_id="<p2@example.org>"))
    fake.post("/_fake/behaviour", {"thread_requires_subject_match": False})
    raw = rfc822("Re: [#12] Printer", sender=ACCOUNT, to="customer@example.org")

    sent = service.users().messages().send(userId="me", body={
        "raw": b64(raw), "threadId": original["threadId"]}).execute()

    assert sent["threadId"] == original["threadId"]


def test_send_without_thread_id_starts_a_new_thread(fake, service):
    fake.deliver(ACCOUNT, rfc822("Printer", message_id="<p3@example.org>"))
    raw = rfc822("Re: Printer", sender=ACCOUNT, to="customer@example.org",
                 in_reply_to="<p3@example.org>")

    sent = service.users().messages().send(userId="me", body={"raw": b64(raw)}).execute()

    assert sent["threadId"] == sent["id"]


def test_deleted_thread_is_gone_and_a_send_into_it_is_refused(fake, service):
    original = fake.deliver(ACCOUNT, rfc822("Printer", message_id="<p4@example.org>"))
    reply = fake.deliver(ACCOUNT, rfc822("Re: Printer", in_reply_to="<p4@example.org>"))
    deleted = fake.post(f"/_fake/users/{ACCOUNT}/threads/{original['threadId']}/delete")
    raw = rfc822("Re: Printer", sender=ACCOUNT, to="customer@example.org",
                 in_reply_to="<p4@example.org>")
    body = {"raw": b64(raw), "threadId": original["threadId"]}

    with pytest.raises(HttpError) as default:
        service.users().messages().send(userId="me", body=body).execute()
    fake.post("/_fake/behaviour", {"deleted_thread_status": 404})
    with pytest.raises(HttpError) as configured:
        service.users().messages().send(userId="me", body=body).execute()
    with pytest.raises(HttpError) as gone:
        service.users().threads().get(userId="me", id=original["threadId"]).execute()

    assert deleted == {"threadId": original["threadId"],
                       "deleted": [original["id"], reply["id"]]}
    assert default.value.resp.status == 400 and configured.value.resp.status == 404
    assert gone.value.resp.status == 404
    assert fake.get(f"/_fake/users/{ACCOUNT}/messages") == []
    assert fake.get(f"/_fake/users/{ACCOUNT}/sent") == []


def test_deleting_an_unknown_thread_is_404(fake):
    response = fake.session.post(
        fake.url + f"/_fake/users/{ACCOUNT}/threads/18f3a00000000001/delete", timeout=10)

    assert response.status_code == 404


def _sent_message_id(fake: FakeGoogleProcess) -> str:
    from email import message_from_bytes

    raw = base64.urlsafe_b64decode(fake.get(f"/_fake/users/{ACCOUNT}/sent")[-1]["raw"])
    return message_from_bytes(raw)["Message-ID"]


def test_send_keeps_our_message_id_by_default(fake, service):
    raw = rfc822("Hello", sender=ACCOUNT, to="customer@example.org", message_id="<ours@x.test>")

    service.users().messages().send(userId="me", body={"raw": b64(raw)}).execute()

    assert _sent_message_id(fake) == "<ours@x.test>"


def test_replace_message_id_gives_the_sent_message_gmails_own_id(fake, service):
    fake.post("/_fake/behaviour", {"replace_message_id": True})
    raw = rfc822("Hello", sender=ACCOUNT, to="customer@example.org", message_id="<ours@x.test>")
    messages = service.users().messages()

    sent = messages.send(userId="me", body={"raw": b64(raw)}).execute()

    gmail_id = _sent_message_id(fake)
    assert gmail_id != "<ours@x.test>" and gmail_id.endswith("@mail.gmail.com>")
    assert "messages" not in messages.list(userId="me", q="rfc822msgid:<ours@x.test>").execute()
    found = messages.list(userId="me", q=f"rfc822msgid:{gmail_id}").execute()["messages"]
    assert [m["id"] for m in found] == [sent["id"]]


# ----- notifications, delivery authentication -----------------------------------------------------


def test_notification_pause_is_a_control_route(fake):
    paused = fake.post("/_fake/notifications", {"paused": True})
    refused = fake.session.post(fake.url + "/_fake/notifications", json={"paused": "yes"},
                                timeout=10)
    resumed = fake.post("/_fake/notifications", {"paused": False})

    assert paused == {"paused": True} and resumed == {"paused": False}
    assert refused.status_code == 400


def test_paused_notifications_are_dropped_for_delivered_mail(fake, service):
    service.users().watch(userId="me", body={"topicName": "projects/demo/topics/gmail",
                                             "labelIds": ["INBOX"]}).execute()
    fake.post("/_fake/notifications", {"paused": True})

    fake.deliver(ACCOUNT, rfc822("while paused"))

    assert fake.get("/_fake/stats")["notifications_dropped"] == 1
    fake.post("/_fake/reset")
    assert fake.get("/_fake/stats")["notifications_dropped"] == 0


def _headers(service: Any, message_id: str) -> list[tuple[str, str]]:
    message = service.users().messages().get(userId="me", id=message_id,
                                             format="metadata").execute()
    return [(h["name"], h["value"]) for h in message["payload"]["headers"]]


def test_delivery_prepends_googles_authentication_results_on_top(fake, service):
    forged = b"Authentication-Results: mx.google.com; dmarc=pass header.from=bank.example\r\n"
    raw = forged + rfc822(sender="Customer <customer@example.org>")
    passed = fake.post(f"/_fake/users/{ACCOUNT}/messages", data=raw)
    failed = fake.post(f"/_fake/users/{ACCOUNT}/messages", data=raw,
                       params={"authentication": "fail"})
    untouched = fake.post(f"/_fake/users/{ACCOUNT}/messages", data=rfc822(),
                          params={"authentication": "none"})

    passed_headers = _headers(service, passed["id"])
    assert passed_headers[0][0] == "Authentication-Results"
    value = " ".join(passed_headers[0][1].split())
    assert value.startswith("mx.google.com;")
    for verdict in ("dkim=pass", "spf=pass", "dmarc=pass"):
        assert verdict in value
    assert value.endswith("header.from=example.org")
    assert passed_headers[1] == ("Authentication-Results",
                                 "mx.google.com; dmarc=pass header.from=bank.example")
    failed_value = _headers(service, failed["id"])[0][1]
    assert all(v in failed_value for v in ("dkim=fail", "spf=fail", "dmarc=fail"))
    assert not any(name == "Authentication-Results"
                   for name, _ in _headers(service, untouched["id"]))


def test_delivery_refuses_an_unknown_authentication_verdict(fake):
    response = fake.session.post(fake.url + f"/_fake/users/{ACCOUNT}/messages", data=rfc822(),
                                 params={"authentication": "maybe"}, timeout=10)

    assert response.status_code == 400


# ----- OpenID Connect ----------------------------------------------------------------------------

OPENID_SCOPES = ["openid", "email", "profile"]


def test_openid_sign_in_id_token_verifies_with_google_auth(fake):
    from google.oauth2 import id_token

    credentials = sign_in(fake, scopes=OPENID_SCOPES)
    claims = id_token.verify_token(credentials.id_token, google.auth.transport.requests.Request(),
                                   audience=CLIENT_ID, certs_url=fake.url + "/oauth2/v1/certs")

    assert claims["iss"] == "https://accounts.google.com" and claims["aud"] == CLIENT_ID
    assert claims["email"] == ACCOUNT and claims["email_verified"] is True
    assert claims["hd"] == "acme.example" and claims["sub"].isdigit()
    assert claims["name"] == "ACME Support"


def test_consumer_accounts_have_no_hd_and_hd_can_be_overridden(fake):
    from google.oauth2 import id_token

    fake.post("/_fake/users", {"email": "someone@gmail.com"})
    created = fake.post("/_fake/users", {"email": "owner@acme.example", "hd": "parent.example"})
    request = google.auth.transport.requests.Request()

    def claims_of(email: str) -> dict:
        token = sign_in(fake, email, OPENID_SCOPES).id_token
        return id_token.verify_token(token, request, audience=CLIENT_ID,
                                     certs_url=fake.url + "/oauth2/v1/certs")

    assert "hd" not in claims_of("someone@gmail.com")
    assert created["hd"] == "parent.example"
    assert claims_of("owner@acme.example")["hd"] == "parent.example"


def test_id_token_signature_matches_the_jwks_key(fake):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives import serialization
    from google.auth import jwt

    token = sign_in(fake, scopes=OPENID_SCOPES).id_token
    key = fake.get("/oauth2/v3/certs")["keys"][0]

    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    public = rsa.RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(token, certs={key["kid"]: pem.decode()}, audience=CLIENT_ID)

    assert key["alg"] == "RS256" and claims["email"] == ACCOUNT


def test_openid_configuration_points_at_the_fake(fake):
    document = fake.get("/.well-known/openid-configuration")

    assert document["issuer"] == "https://accounts.google.com"
    assert document["authorization_endpoint"] == fake.url + "/o/oauth2/v2/auth"
    assert document["jwks_uri"] == fake.url + "/oauth2/v3/certs"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert requests.get(document["jwks_uri"], timeout=10).json()["keys"]
    userinfo = requests.get(document["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 401  # exists, wants a token


def test_service_account_oidc_token_verifies_with_google_auth(fake):
    from google.oauth2 import id_token

    account = "scheduler@demo-project.iam.gserviceaccount.com"
    audience = "https://europe-west1-demo.cloudfunctions.net/poll"
    token = fake.post("/_fake/oidc/token", {"service_account": account,
                                            "audience": audience})["token"]
    request = google.auth.transport.requests.Request()

    claims = id_token.verify_token(token, request, audience=audience,
                                   certs_url=fake.url + "/oauth2/v1/certs")
    with pytest.raises(ValueError):
        id_token.verify_token(token, request, audience="https://elsewhere.example/push",
                              certs_url=fake.url + "/oauth2/v1/certs")

    assert claims["iss"] == "https://accounts.google.com"
    assert claims["email"] == account and claims["email_verified"] is True


def test_service_account_token_needs_account_and_audience(fake):
    response = fake.session.post(fake.url + "/_fake/oidc/token",
                                 json={"service_account": "x@y.iam.gserviceaccount.com"},
                                 timeout=10)

    assert response.status_code == 400


def test_current_consent_endpoint_and_refresh_token_revoke(fake):
    fake.post("/_fake/oauth/approve-as", {"email": ACCOUNT})
    config = {"web": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "auth_uri": fake.url + "/o/oauth2/v2/auth",
                      "token_uri": fake.url + "/token", "redirect_uris": [REDIRECT_URI]}}
    flow = Flow.from_client_config(config, scopes=SCOPES, redirect_uri=REDIRECT_URI)
    response = authorize(fake, flow)
    flow.fetch_token(authorization_response=response.headers["Location"])
    credentials = flow.credentials

    revoked = requests.post(fake.url + "/revoke", params={"token": credentials.refresh_token},
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                            timeout=10)
    with pytest.raises(RefreshError) as error:
        credentials.refresh(google.auth.transport.requests.Request())

    assert response.status_code == 302
    assert revoked.status_code == 200 and "invalid_grant" in str(error.value)


# ----- send-as aliases ---------------------------------------------------------------------------


def test_send_as_lists_primary_and_aliases(fake, service):
    added = fake.post(f"/_fake/users/{ACCOUNT}/send-as",
                      {"sendAsEmail": "help@acme.example", "verificationStatus": "pending"})
    send_as = service.users().settings().sendAs()

    listed = send_as.list(userId="me").execute()["sendAs"]
    got = send_as.get(userId="me", sendAsEmail="help@acme.example").execute()
    with pytest.raises(HttpError) as missing:
        send_as.get(userId="me", sendAsEmail="nobody@acme.example").execute()

    assert listed[0] == {"sendAsEmail": ACCOUNT, "displayName": "ACME Support",
                         "replyToAddress": "", "signature": "", "isPrimary": True,
                         "isDefault": True}
    assert listed[1] == got == added
    assert got["verificationStatus"] == "pending" and got["treatAsAlias"] is True
    assert missing.value.resp.status == 404


def test_send_as_control_route_validates_input(fake):
    bad_status = fake.session.post(fake.url + f"/_fake/users/{ACCOUNT}/send-as", json={
        "sendAsEmail": "help@acme.example", "verificationStatus": "verified"}, timeout=10)
    primary = fake.session.post(fake.url + f"/_fake/users/{ACCOUNT}/send-as", json={
        "sendAsEmail": ACCOUNT}, timeout=10)

    assert bad_status.status_code == 400 and primary.status_code == 400


def test_from_is_kept_only_for_the_account_or_an_accepted_alias(fake, service):
    fake.post(f"/_fake/users/{ACCOUNT}/send-as", {"sendAsEmail": "help@acme.example",
                                                  "verificationStatus": "accepted"})
    fake.post(f"/_fake/users/{ACCOUNT}/send-as", {"sendAsEmail": "sales@acme.example",
                                                  "verificationStatus": "pending"})
    from email import message_from_bytes

    def sent_from(sender: str) -> str:
        raw = rfc822("Hello", sender=sender, to="customer@example.org")
        service.users().messages().send(userId="me", body={"raw": b64(raw)}).execute()
        stored = fake.get(f"/_fake/users/{ACCOUNT}/sent")[-1]["raw"]
        return message_from_bytes(base64.urlsafe_b64decode(stored))["From"]

    assert sent_from("Help Desk <help@acme.example>") == "Help Desk <help@acme.example>"
    assert sent_from("sales@acme.example") == f"ACME Support <{ACCOUNT}>"
    assert sent_from("ceo@acme.example") == f"ACME Support <{ACCOUNT}>"


def test_server_behaviour_option_sets_the_defaults_reset_restores():
    option = ["--behaviour", json.dumps({"replace_message_id": True})]
    with FakeGoogleProcess(env={"PUBSUB_EMULATOR_HOST": ""}, extra_args=option) as server:
        server.post("/_fake/behaviour", {"replace_message_id": False})
        server.post("/_fake/reset")

        assert server.get("/_fake/behaviour") == {**STRICT_DEFAULTS, "replace_message_id": True}


def test_a_missing_required_query_parameter_is_400_required():
    # Gmail v1 declares no required query parameter today; the check follows the document.
    from werkzeug.datastructures import MultiDict

    from tests.fakes.discovery import Discovery
    from tests.fakes.errors import GoogleApiError

    document = {"resources": {"things": {"methods": {"find": {
        "id": "demo.things.find", "parameters": {"q": {"location": "query", "required": True,
                                                        "type": "string"}}}}}}}

    with pytest.raises(GoogleApiError) as error:
        Discovery(document).check_query("demo.things.find", MultiDict())
    Discovery(document).check_query("demo.things.find", MultiDict({"q": "x"}))

    assert error.value.code == 400 and error.value.reason == "required"
