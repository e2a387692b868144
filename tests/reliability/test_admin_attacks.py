"""Admin attacks beyond tests/e2e/test_admin_http.py: CSRF on every state-changing route, GET
never changes state, session fixation, hostile label names and inbound rows, sanitizer corners,
header injection through attachment filenames."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from mailbridge.http import admin as admin_pages
from mailbridge.services import labels, mailboxes
from mailbridge.services import sync as ingest
from tests.corpus import make_message
from tests.helpers import deliver, export_all, make_services, post_link
from tests.reliability.conftest import LEDGER, connect

HOSTILE = '<img src=x onerror=alert(9)>"\'><script>alert(8)</script>'


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


def login(services):
    session = requests.Session()
    response = post_link(mailboxes.admin_url(services), session)
    assert response.status_code == 303
    return session


def get(session, url):
    response = session.get(url, timeout=30)
    LEDGER.page(url, response)
    return response


def assert_escaped(html):
    assert "<script>alert" not in html
    assert not re.search(r"<[^>]*\bonerror\s*=", html, re.IGNORECASE)


def test_every_state_changing_route_refuses_a_post_without_csrf(services, functions_url):
    name = f"csrf{uuid.uuid4().hex[:6]}"
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    session = login(services)
    before = export_all(services.store.db)
    posts = [path for method, path, _h, private in admin_pages.PAGES if method == "POST" and private]
    assert len(posts) >= 10
    for pattern in posts:
        path = pattern.replace("<name:name>", name).replace("<gmail_id>", "abc").replace("<ticket_id>", "1")
        response = session.post(f"{functions_url}/admin{path}", data={"status": "closed", "name": "x"},
                                allow_redirects=False, timeout=30)
        assert response.status_code == 403, (path, response.status_code)
    after = export_all(services.store.db)
    strip = lambda docs: [d for d in docs if not d["path"].startswith(("admin_sessions", "nonces"))]  # noqa: E731
    assert strip(after) == strip(before)


def test_get_on_a_post_route_changes_nothing(services, functions_url):
    name = f"get{uuid.uuid4().hex[:6]}"
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    session = login(services)
    for path in (f"/mailboxes/{name}/disconnect", f"/mailboxes/{name}/poll", "/logout", "/settings/overrides"):
        response = session.get(f"{functions_url}/admin{path}", allow_redirects=False, timeout=30)
        assert response.status_code in (404, 405), path
    assert session.get(f"{functions_url}/admin/", timeout=30).status_code == 200


def test_a_planted_session_cookie_is_never_adopted(services, functions_url):
    session = requests.Session()
    session.cookies.set("mailbridge_admin", "attacker-chosen-session-id")
    response = post_link(mailboxes.admin_url(services), session)
    assert "attacker-chosen-session-id" not in response.headers.get("Set-Cookie", "")
    planted = requests.Session()
    planted.cookies.set("mailbridge_admin", "attacker-chosen-session-id")
    assert planted.get(f"{functions_url}/admin/", timeout=30).status_code == 401


def test_hostile_label_names_and_inbound_rows_render_escaped(services, fake, functions_url):
    name = f"lab{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    connect(services, fake.url, name, address)
    ingest.poll(services, name, scheduled=False)
    labels.create_label(services, name, "x" + HOSTILE[:60])
    deliver(fake.url, address, make_message(from_=f'"{HOSTILE}" <e@customer.example>', to=address,
                                            subject=HOSTILE, message_id="<hostile@x>"))
    deliver(fake.url, address, b"From: " + HOSTILE.encode() + b"\r\nSubject: " + HOSTILE.encode()
            + b"\r\nAuto-Submitted: auto-replied\r\n\r\nignored")
    ingest.poll(services, name, scheduled=False)
    session = login(services)
    for path in (f"/mailboxes/{name}", f"/mailboxes/{name}/inbound", "/tickets"):
        page = get(session, f"{functions_url}/admin{path}")
        assert page.status_code == 200, path
        assert_escaped(page.text)


def test_sanitizer_drops_active_content_and_filename_cannot_inject_headers(services, fake, functions_url):
    name = f"san{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    connect(services, fake.url, name, address)
    ingest.poll(services, name, scheduled=False)
    html = ('<svg onload=alert(1)></svg><iframe srcdoc="<script>alert(2)</script>"></iframe>'
            '<meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://evil.example/">'
            '<form action="https://evil.example"><input name=p></form><a href="jAvAsCrIpT:alert(3)">x</a>'
            '<img src="https://tracker.example/pixel.gif"><p style="background:url(javascript:alert(4))">ok</p>')
    raw = make_message(subject="Sanitize me", html=html, message_id="<san@x>",
                       attachments=[("PLACEHOLDER.txt", "text/plain", b"x")])
    # RFC 2231 lets a filename carry CR LF: a header injection attempt on the download
    raw = raw.replace(b'filename="PLACEHOLDER.txt"', b"filename*=utf-8''a%0D%0ASet-Cookie%3A%20pwned%3D1%0D%0A.txt")
    deliver(fake.url, address, raw)
    ingest.poll(services, name, scheduled=False)
    message = services.store.ticket_messages(services.store.list_tickets(mailbox=name)[0]["id"])[0]["message"]
    session = login(services)
    response = get(session, f"{functions_url}/admin/messages/{message['id']}/html")
    body = response.text.lower()
    for bad in ("<svg", "onload", "<iframe", "http-equiv", "<base", "<form", "javascript:"):
        assert bad not in body, bad
    # a remote tracking pixel may stay in the markup, but the sandbox's CSP never loads it
    assert "img-src 'self' data:" in response.headers["Content-Security-Policy"]
    download = session.get(f"{functions_url}/admin/messages/{message['id']}/attachments/0", timeout=30)
    assert download.status_code == 200
    assert "pwned" not in download.headers.get("Set-Cookie", "") and "\r" not in download.headers["Content-Disposition"]
