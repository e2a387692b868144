"""The `api` function over HTTP (docs/api.md): tickets listed page by page, shown as the CLI shows
them, answered once per Idempotency-Key through Gmail, changed; callers without the right token
refused with a JSON reason; bad input answered 4xx JSON."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from mailbridge import bootstrap
from mailbridge.cli import main as cli_main
from mailbridge.services import mailboxes, sync
from tests.helpers import connect_mailbox, deliver, make_email, make_mail, make_services

API_EXTRAS = {"team", "type", "suggested_participants"}


@pytest.fixture
def desk(api_server, mb_env, fake):
    """A connected mailbox with three tickets (the newest with a PDF attached), polled in process."""
    suffix = uuid.uuid4().hex[:8]
    name, address = f"api-{suffix}", f"api-{suffix}@acme.example"
    services = make_services()
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    for n in (1, 2):
        deliver(fake.url, address, make_mail(f"customer{n}@customer.example", address, f"Question {n}"))
    mail = make_email("ann@customer.example", address, "Invoice attached")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    deliver(fake.url, address, bytes(mail))
    sync.poll(services, name)
    bootstrap.reset()  # the CLI in this process builds its services from mb_env
    yield services, name, address
    bootstrap.reset()


def ticket_ids(services, name):
    return [t["id"] for t in services.store.list_tickets(mailbox=name)]


def test_tickets_come_page_by_page_until_the_cursor_is_null(api_server, desk):
    services, name, _address = desk
    seen, cursor, pages = [], None, 0
    while True:
        params = {"mailbox": name, "limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = api_server.call("GET", "/tickets", params=params)
        assert answer.status_code == 200, answer.text
        pages += 1
        seen += [t["id"] for t in answer.json()["tickets"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (ticket_ids(services, name), 2)


def test_a_ticket_is_the_cli_json_plus_team_type_suggestions_and_attachment_links(api_server, desk, capsys):
    services, _name, _address = desk
    newest = ticket_ids(services, _name)[0]
    capsys.readouterr()
    assert cli_main(["tickets", "show", newest, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)

    ticket = api_server.call("GET", f"/tickets/{newest}").json()
    links = [a.pop("url") for m in ticket["messages"] for a in m["attachments"]]
    assert {k: v for k, v in ticket.items() if k not in API_EXTRAS} == cli
    assert (ticket["team"], ticket["type"], ticket["suggested_participants"]) == (None, None, [])

    (link,) = links
    assert link.startswith(api_server.url + f"/tickets/{newest}/messages/")
    download = api_server.http.get(link, headers=api_server.auth(), timeout=30)
    assert (download.status_code, download.content) == (200, b"%PDF-1.4 invoice")
    assert "invoice.pdf" in download.headers["Content-Disposition"]


def test_an_attachment_downloads_with_the_admin_pages_security_headers(api_server, desk):
    services, name, _address = desk
    ticket = api_server.call("GET", f"/tickets/{ticket_ids(services, name)[0]}").json()
    (link,) = [a["url"] for m in ticket["messages"] for a in m["attachments"]]
    download = api_server.http.get(link, headers=api_server.auth(), timeout=30)
    headers = download.headers
    assert headers["Content-Type"] == "application/octet-stream" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"].startswith('attachment; filename="invoice.pdf"')
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert (headers["Cache-Control"], headers["Referrer-Policy"], headers["X-Frame-Options"]) == (
        "no-store", "no-referrer", "DENY")


def test_a_reply_retried_with_its_idempotency_key_is_sent_once(api_server, desk, fake):
    services, name, address = desk
    ticket = ticket_ids(services, name)[-1]
    request = {"text": "We are on it.", "attachments": [
        {"filename": "steps.txt", "content_type": "text/plain", "data": "MS4gUmVzdGFydAo="}]}
    key = {"Idempotency-Key": f"helpdesk-{uuid.uuid4()}"}

    first = api_server.call("POST", f"/tickets/{ticket}/reply", json=request, headers=key)
    again = api_server.call("POST", f"/tickets/{ticket}/reply", json=request, headers=key)

    assert (first.status_code, first.json()["status"]) == (200, "sent"), first.text
    assert again.json() == first.json()
    (sent,) = fake.get(f"/_fake/users/{address}/sent")
    assert sent["id"] == first.json()["gmail_message_id"]


def test_a_reply_without_a_key_is_a_new_send_each_time(api_server, desk, fake):
    services, name, address = desk
    ticket = ticket_ids(services, name)[-1]
    for text in ("One.", "Two."):
        assert api_server.call("POST", f"/tickets/{ticket}/reply", json={"text": text}).status_code == 200
    assert len(fake.get(f"/_fake/users/{address}/sent")) == 2


def test_status_team_and_type_change_and_filter_the_list(api_server, desk):
    services, name, _address = desk
    ticket = ticket_ids(services, name)[1]
    changed = api_server.call("PATCH", f"/tickets/{ticket}", json={"status": "closed", "team": "billing",
                                                                   "type": "refund"})
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("status", "team", "type")} == {"status": "closed", "team": "billing",
                                                                          "type": "refund"}
    closed = api_server.call("GET", "/tickets", params={"mailbox": name, "status": "closed"}).json()
    assert [t["id"] for t in closed["tickets"]] == [ticket]
    assert services.store.get_ticket(ticket)["team"] == "billing"


def test_updated_after_lists_only_what_changed_since(api_server, desk):
    services, name, _address = desk
    ticket = ticket_ids(services, name)[-1]
    # the mark is the latest change of any ticket: each ticket of a poll has its own commit time
    mark = max(api_server.call("GET", f"/tickets/{t}").json()["updated_at"] for t in ticket_ids(services, name))
    assert api_server.call("GET", "/tickets", params={"mailbox": name, "updated_after": mark}).json()["tickets"] == []

    api_server.call("PATCH", f"/tickets/{ticket}", json={"team": "support"})
    later = api_server.call("GET", "/tickets", params={"mailbox": name, "updated_after": mark}).json()
    assert [t["id"] for t in later["tickets"]] == [ticket]


def test_a_suggested_participant_is_confirmed(api_server, desk):
    services, name, _address = desk
    ticket = ticket_ids(services, name)[0]
    services.store.update_ticket(ticket, {"suggested_participants": [
        {"email": "boss@customer.example", "suggested_by": "ann@customer.example", "suggested_at": "2024-05-01"}]})

    answer = api_server.call("POST", f"/tickets/{ticket}/participants/boss@customer.example/confirm")
    assert answer.status_code == 200, answer.text
    assert "boss@customer.example" in answer.json()["participants"]
    assert answer.json()["suggested_participants"] == []


@pytest.mark.parametrize("token,status,kind", [
    (None, 401, "unauthenticated"),
    ("not-a-jwt", 401, "unauthenticated"),
    ("intruder", 403, "auth_error"),
    ("other-audience", 401, "unauthenticated"),
])
def test_callers_without_an_allowed_token_are_refused_with_json(api_server, token, status, kind):
    tokens = {"intruder": lambda: api_server.token(account="intruder@other.iam.gserviceaccount.com"),
              "other-audience": lambda: api_server.token(audience=api_server.base + "/poll")}
    answer = api_server.call("GET", "/tickets", token=tokens[token]() if token in tokens else token)
    assert (answer.status_code, answer.json()["error"]) == (status, kind)
    assert answer.json()["message"]


@pytest.mark.parametrize("method,path,body,status,kind", [
    ("GET", "/no/such/route", None, 404, "not_found"),
    ("DELETE", "/tickets/1", None, 405, "method_not_allowed"),
    ("POST", "/tickets/1/reply", b"{not json", 400, "invalid_input"),
    ("POST", "/tickets/1/reply", b"[1, 2]", 400, "invalid_input"),
    ("PATCH", "/tickets/1", b'{"colour": "red"}', 400, "invalid_input"),
    ("GET", "/tickets?limit=lots", None, 400, "invalid_input"),
    ("GET", "/tickets?cursor=forged", None, 400, "invalid_input"),
    ("GET", "/tickets/..%2F..%2Fsecrets", None, 404, "not_found"),
])
def test_bad_requests_are_4xx_json_never_500(api_server, mb_env, method, path, body, status, kind):
    answer = api_server.call(method, path, data=body, headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["error"]) == (status, kind), answer.text


def test_the_local_stack_serves_the_api_function(api_server):
    assert "api" in api_server.http.get(api_server.base + "/_health", timeout=10).json()["functions"]


def test_on_the_local_stack_the_check_is_off_and_the_api_answers_without_a_token(functions_url, mb_env):
    answer = requests.get(functions_url + "/api/tickets", params={"limit": 1}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"tickets", "next_cursor"}
