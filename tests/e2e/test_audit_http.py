"""The audit log over HTTP (docs/privacy.md, "Audit log"): the admin pages' sign-in, setting
changes (before/after) and ticket status changes, and the API's changes each leave one record,
named by who did it; the audit page lists them; a failed action records nothing."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from mailbridge import bootstrap
from mailbridge.services import audit, mailboxes, sync
from tests.e2e.conftest import API_CALLER
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, post_link


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def ticket_in(services, fake) -> str:
    name = f"audit-{uuid.uuid4().hex[:8]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    deliver(fake.url, address, make_mail("ann@customer.example", address, "Question"))
    sync.poll(services, name)
    return services.store.list_tickets(mailbox=name)[0]["id"]


def actions(services) -> list[str]:
    return [r["action"] for r in audit.records(services, limit=0)]


def test_admin_page_actions_each_leave_one_record_and_the_audit_page_lists_them(services, fake, functions_url):
    ticket_id = ticket_in(services, fake)
    session = requests.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303
    page = session.get(f"{functions_url}/admin/settings", timeout=30)
    csrf = csrf_of(page.text)

    saved = session.post(f"{functions_url}/admin/settings", data={
        "csrf": csrf, "use_incoming_service": "on", "ticket_tag_format": "[Case {number}]"},
        allow_redirects=False, timeout=30)
    closed = session.post(f"{functions_url}/admin/tickets/{ticket_id}/status", data={"csrf": csrf, "status": "closed"},
                          allow_redirects=False, timeout=30)
    refused = session.post(f"{functions_url}/admin/tickets/{ticket_id}/status", data={"csrf": csrf, "status": "gone"},
                           allow_redirects=False, timeout=30)

    assert (saved.status_code, closed.status_code, refused.status_code) == (303, 303, 400)
    records = audit.records(services, limit=0)
    assert sorted(r["action"] for r in records) == ["settings.set", "sign_in", "ticket.status"]
    (setting,) = [r for r in records if r["action"] == "settings.set"]
    assert setting["after"] == {"ticket_tag_format": "[Case {number}]", "use_scheduling_service": False}
    assert setting["before"]["ticket_tag_format"] == "[#{number}]" and setting["source"] == "admin"
    listed = session.get(f"{functions_url}/admin/audit", timeout=30)
    assert listed.status_code == 200 and "ticket.status" in listed.text and "settings.set" in listed.text


def test_an_api_change_records_the_calling_service_account(services, fake, api_server):
    ticket_id = ticket_in(services, fake)
    bootstrap.reset()

    answer = api_server.call("PATCH", f"/tickets/{ticket_id}", json={"status": "closed"})

    assert answer.status_code == 200, answer.text
    (record,) = [r for r in audit.records(services, limit=0) if r["source"] == "api"]
    assert (record["action"], record["actor"], record["target"]) == ("ticket.status", API_CALLER, ticket_id)
    assert record["after"] == {"status": "closed"}
    assert "privacy.erase" not in actions(services)


def test_an_action_asked_to_be_confirmed_is_recorded_once_confirmed(services, fake, functions_url):
    name = f"audit-{uuid.uuid4().hex[:8]}"
    connect_mailbox(services, fake.url, name, f"{name}@acme.example")
    session = requests.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303
    csrf = csrf_of(session.get(f"{functions_url}/admin/mailboxes/{name}", timeout=30).text)

    asked = session.post(f"{functions_url}/admin/mailboxes/{name}/disconnect", data={"csrf": csrf},
                         allow_redirects=False, timeout=30)
    assert asked.status_code == 200 and actions(services) == ["sign_in"]
    done = session.post(f"{functions_url}/admin/mailboxes/{name}/disconnect", data={"csrf": csrf, "confirmed": "yes"},
                        allow_redirects=False, timeout=30)

    assert done.status_code < 400 and sorted(actions(services)) == ["mailbox.disconnect", "sign_in"]
