"""Admin pages over HTTP (functions served by the local stack): sessions, CSRF, headers, XSS,
attachment downloads. The browser journey lives in test_admin_browser.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import hashlib
import re
from urllib.parse import urlparse
import uuid

import pytest
import requests

from mailbridge.services import mailboxes
from mailbridge.services import sync as ingest
from tests.corpus import make_message
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, post_link

XSS_SUBJECT = "<script>window.__xss=1</script> Invoice"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_FILENAME = "<img src=x onerror=alert(2)>\"; x=.txt"
XSS_HTML = ("<p>Hello <b>there</b></p><script>alert(3)</script>"
            "<img src=\"x\" onerror=\"alert(4)\"><a href=\"javascript:alert(5)\">link</a>")


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


@pytest.fixture
def admin(functions_url):
    return f"{functions_url}/admin"


def login(services, session: requests.Session | None = None) -> requests.Session:
    session = session or requests.Session()
    response = post_link(mailboxes.admin_url(services), session)
    assert response.status_code == 303, response.text[:300]
    return session


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def xss_ticket(services, fake):
    """A connected mailbox holding one ticket whose every customer-controlled field is hostile."""
    name = unique("xss")
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    ingest.poll(services, name, scheduled=False)  # records the starting history id
    raw = make_message(from_=f'"{XSS_NAME}" <evil@customer.example>', to=address, subject=XSS_SUBJECT,
                       body="plain <script>alert(6)</script> body", html=XSS_HTML,
                       attachments=[(XSS_FILENAME, "text/plain", b"attached bytes\n")])
    deliver(fake.url, address, raw)
    result = ingest.poll(services, name, scheduled=False)
    assert result["totals"]["created"] == 1, result
    ticket = services.store.list_tickets(mailbox=name)[0]
    message = services.store.ticket_messages(ticket["id"])[0]["message"]
    return {"mailbox": name, "ticket": ticket, "message": message}


# -- sessions -------------------------------------------------------------------------------------
def test_without_session_every_page_answers_401_and_reveals_nothing(services, admin):
    name = unique("secretbox")
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    anonymous = requests.Session()
    anonymous.cookies.set("mailbridge_admin", "forged-session-id")
    for path in ("/", "/mailboxes", f"/mailboxes/{name}", f"/mailboxes/{name}/inbound", "/tickets",
                 "/tickets/1", "/settings", f"/messages/{name}~abc/html", f"/messages/{name}~abc/attachments/0",
                 "/no-such-page"):
        response = anonymous.get(admin + path, allow_redirects=False, timeout=30)
        assert response.status_code == 401, path
        assert name not in response.text, path
        assert "admin-url" in response.text
    response = anonymous.post(admin + "/mailboxes", data={"name": unique("x"), "address": "x@acme.example"},
                              allow_redirects=False, timeout=30)
    assert response.status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_redirects_to_the_mailboxes(services, admin):
    response = post_link(mailboxes.admin_url(services))
    assert response.status_code == 303
    assert urlparse(response.headers["Location"]).path.rstrip("/").endswith("/admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served on 127.0.0.1 over http
    assert "Max-Age=43200" in cookie


def test_cookie_is_secure_when_not_on_localhost(services, admin):
    link = mailboxes.admin_url(services)
    response = post_link(link, headers={"Host": "admin.mailbridge.example"})
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-") and "; Secure" in cookie and "HttpOnly" in cookie


def test_login_link_works_once(services, admin):
    link = mailboxes.admin_url(services)
    assert post_link(link).status_code == 303
    again = post_link(link)
    assert again.status_code == 401
    assert "Set-Cookie" not in again.headers
    assert "already used" in again.text


def test_tampered_link_is_refused(services, admin):
    link = mailboxes.admin_url(services)
    response = post_link(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_expired_session_is_refused(services, admin):
    session = login(services)
    assert session.get(admin + "/", timeout=30).status_code == 200
    session_id = next(c.value for c in session.cookies if c.name == "mailbridge_admin")
    key = hashlib.sha256(session_id.encode()).hexdigest()
    services.store.db.collection("admin_sessions").document(key).update(
        {"expires_at": datetime.now(timezone.utc) - timedelta(minutes=1)})
    assert session.get(admin + "/", timeout=30).status_code == 401


def test_sign_out_ends_the_session(services, admin):
    session = login(services)
    page = session.get(admin + "/", timeout=30)
    response = session.post(admin + "/logout", data={"csrf": csrf_of(page.text)}, timeout=30)
    assert response.status_code == 200
    assert session.get(admin + "/", timeout=30).status_code == 401


# -- CSRF and headers -----------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_post_without_the_sessions_csrf_token_is_refused(services, admin, token):
    session = login(services)
    name = unique("csrf")
    data = {"name": name, "address": f"{name}@acme.example"}
    if token is not None:
        data["csrf"] = token
    response = session.post(admin + "/mailboxes", data=data, allow_redirects=False, timeout=30)
    assert response.status_code == 403
    assert name not in [m["name"] for m in services.store.list_mailboxes()]


def test_csrf_token_of_another_session_is_refused(services, admin):
    mine, theirs = login(services), login(services)
    their_token = csrf_of(theirs.get(admin + "/", timeout=30).text)
    name = unique("csrf")
    response = mine.post(admin + "/mailboxes", data={"name": name, "address": f"{name}@acme.example",
                                                     "csrf": their_token}, allow_redirects=False, timeout=30)
    assert response.status_code == 403


def test_pages_carry_security_headers(services, admin):
    session = login(services)
    response = session.get(admin + "/", timeout=30)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_domain_errors_are_readable_4xx_pages(services, admin):
    session = login(services)
    token = csrf_of(session.get(admin + "/", timeout=30).text)
    response = session.post(admin + "/mailboxes", data={"name": "bad name!", "address": "nope", "csrf": token},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 400
    assert "is invalid" in response.text
    name = unique("creds")
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    response = session.post(f"{admin}/mailboxes/{name}/credentials", timeout=30, allow_redirects=False,
                            data={"csrf": token, "instance": "production", "client_id": "1234-abc", "client_secret": "s"})
    assert response.status_code == 400
    assert "whole id" in response.text
    assert session.get(admin + "/tickets/999999", timeout=30).status_code == 404


def test_create_mailbox_redirects_to_its_page(services, admin):
    session = login(services)
    token = csrf_of(session.get(admin + "/", timeout=30).text)
    name = unique("created")
    response = session.post(admin + "/mailboxes", data={"name": name, "address": f"{name}@acme.example",
                                                        "csrf": token}, allow_redirects=False, timeout=30)
    assert response.status_code == 303
    page = session.get(response.headers["Location"] if response.headers["Location"].startswith("http")
                       else admin.split("/admin")[0] + response.headers["Location"], timeout=30)
    assert page.status_code == 200
    assert f"Mailbox {name}" in page.text and "created" in page.text
    assert services.store.get_mailbox(name)["address"] == f"{name}@acme.example"


# -- hostile mail ---------------------------------------------------------------------------------
def test_hostile_subject_sender_and_filename_render_escaped(services, admin, xss_ticket):
    session = login(services)
    page = session.get(f"{admin}/tickets/{xss_ticket['ticket']['id']}", timeout=30)
    assert page.status_code == 200
    body = page.text
    assert "<script>window.__xss" not in body and "<script>alert" not in body
    assert not re.search(r"<[^>]*\bonerror\s*=", body, re.IGNORECASE)  # only the escaped form appears
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt; Invoice" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "&lt;img src=x onerror=alert(2)&gt;&#34;; x=.txt" in body
    assert re.search(r'<iframe class="html" sandbox name="frame-\d+" src="[^"]+/html"', body)
    listing = session.get(f"{admin}/tickets", params={"mailbox": xss_ticket["mailbox"]}, timeout=30).text
    assert "<script>window.__xss" not in listing and "&lt;script&gt;window.__xss" in listing


def test_message_html_is_served_sanitized_in_a_sandbox(services, admin, xss_ticket):
    session = login(services)
    response = session.get(f"{admin}/messages/{xss_ticket['message']['id']}/html", timeout=30)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert response.headers.get("X-Frame-Options") != "DENY"
    lowered = response.text.lower()
    assert "<script" not in lowered and "onerror" not in lowered and "javascript:" not in lowered
    assert "<b>there</b>" in response.text


def test_attachment_downloads_with_a_safe_filename(services, admin, xss_ticket):
    session = login(services)
    response = session.get(f"{admin}/messages/{xss_ticket['message']['id']}/attachments/0", timeout=30)
    assert response.status_code == 200
    assert response.content == b"attached bytes\n"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    ascii_name = re.search(r'filename="([^"]*)"', disposition).group(1)
    assert not set(ascii_name) & set('<>"/\\;:')
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"  # as the API's downloads


@pytest.mark.parametrize("suffix", [
    "/messages/..%2F..%2F..%2Fetc%2Fpasswd/attachments/0",
    "/messages/%2E%2E/attachments/0",
    "/messages/{id}/attachments/..%2F..%2Fetc%2Fpasswd",
    "/messages/{id}/attachments/-1",
    "/messages/{id}/attachments/7",
    "/messages/{id}/attachments/0%2F..%2F..",
    "/messages/{id}%2F..%2F..%2Fsettings/html",
    "/messages/..%5C..%5Cwindows/attachments/0",
])
def test_attachment_route_refuses_path_traversal(services, admin, xss_ticket, suffix):
    session = login(services)
    url = admin + suffix.replace("{id}", xss_ticket["message"]["id"])
    response = session.send(session.prepare_request(requests.Request("GET", url)), allow_redirects=False, timeout=30)
    assert response.status_code in (400, 404)
    assert b"root:" not in response.content and b"attached bytes" not in response.content


def test_quarantined_row_can_be_retried(services, admin, fake):
    name = unique("retry")
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    ingest.poll(services, name, scheduled=False)
    delivered = deliver(fake.url, address, make_mail("bob@customer.example", address, "Hello"))
    for _ in range(services.settings.max_attempts):
        services.store.record_failure(name, delivered["id"], "simulated failure", services.settings.max_attempts)
    session = login(services)
    page = session.get(f"{admin}/mailboxes/{name}/inbound", timeout=30)
    assert "quarantined" in page.text and ">Retry<" in page.text
    response = session.post(f"{admin}/mailboxes/{name}/inbound/{delivered['id']}/retry",
                            data={"csrf": csrf_of(page.text)}, allow_redirects=False, timeout=30)
    assert response.status_code == 303
    row = services.store.get_inbound_rows(name, [delivered["id"]])[delivered["id"]]
    assert row["outcome"] == "failed" and row["attempts"] == 0


def test_spam_left_in_spam_is_listed_and_made_a_ticket_only_with_the_csrf_token(services, admin, fake):
    name = unique("spam")
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    ingest.poll(services, name, scheduled=False)
    filed = deliver(fake.url, address, make_mail("new@prospect.example", address, "Quote for 40 seats"),
                    labels="SPAM,UNREAD")
    ingest.poll(services, name, scheduled=False)
    assert services.store.list_tickets(mailbox=name) == []
    session = login(services)
    page = session.get(f"{admin}/mailboxes/{name}", timeout=30)
    assert "Quote for 40 seats" in page.text and ">Make a ticket<" in page.text
    action = f"{admin}/mailboxes/{name}/spam/{filed['id']}/ticket"
    refused = session.post(action, data={}, allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and services.store.list_tickets(mailbox=name) == []
    made = session.post(action, data={"csrf": csrf_of(page.text)}, allow_redirects=False, timeout=30)
    assert made.status_code == 303
    (ticket,) = services.store.list_tickets(mailbox=name)
    assert ticket["subject"] == "Quote for 40 seats"
    labels = next(m["labelIds"] for m in fake.get(f"/_fake/users/{address}/messages") if m["id"] == filed["id"])
    assert "INBOX" in labels and "SPAM" not in labels


def test_a_quarantined_messages_raw_copy_downloads_with_the_attachment_headers(services, admin):
    name = unique("raw")
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    raw = b"From: x@customer.example\r\nSubject: too big\r\n\r\n<script>alert(1)</script>\r\n"
    sha256 = hashlib.sha256(raw).hexdigest()
    services.blobs.put(sha256, raw, "message/rfc822")
    services.store.put_inbound_row(name, "18c0ffee", {
        "mailbox": name, "gmail_message_id": "18c0ffee", "message_id": None, "outcome": "quarantined",
        "reason": "could not be stored: DocumentTooLarge", "ticket_id": None, "attempts": 1,
        "processed_at": "2026-12-07T10:00:00+00:00", "raw_sha256": sha256})
    services.store.put_inbound_row(name, "18c0ffef", {
        "mailbox": name, "gmail_message_id": "18c0ffef", "message_id": None, "outcome": "quarantined",
        "reason": "failed 5 attempts", "ticket_id": None, "attempts": 5, "processed_at": "2026-12-07T10:00:01+00:00"})
    session = login(services)
    page = session.get(f"{admin}/mailboxes/{name}/inbound", timeout=30).text
    assert page.count("Raw copy (.eml)") == 1 and f"/mailboxes/{name}/inbound/18c0ffee/raw" in page

    response = session.get(f"{admin}/mailboxes/{name}/inbound/18c0ffee/raw", timeout=30)
    assert response.status_code == 200 and response.content == raw
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="18c0ffee.eml"')
    # no raw copy kept, no such row, a path that is not a Gmail id: 404, never a trace
    for gmail_id in ("18c0ffef", "18c0aaaa", "..%2F..%2Fetc"):
        assert session.get(f"{admin}/mailboxes/{name}/inbound/{gmail_id}/raw", timeout=30).status_code == 404
    assert requests.get(f"{admin}/mailboxes/{name}/inbound/18c0ffee/raw", timeout=30).status_code == 401
