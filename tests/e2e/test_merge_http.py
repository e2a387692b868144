"""Merge and split through every edge (docs/merging.md): the CLI's exact commands, the API's
POST /tickets/{id}/merge|split, and the admin ticket page's forms with their CSRF token."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from mailbridge import bootstrap
from mailbridge.cli import main as cli_main
from mailbridge.services import mailboxes, sync
from tests.helpers import connect_mailbox, deliver, make_mail, make_services, post_link


@pytest.fixture
def desk(mb_env, fake, firestore, storage_emulator):
    """A connected mailbox with two tickets of one customer, the second with a reply in its thread."""
    suffix = uuid.uuid4().hex[:8]
    name, address = f"merge-{suffix}", f"merge-{suffix}@acme.example"
    services = make_services()
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    first = deliver(fake.url, address, make_mail("ann@customer.example", address, "Printer broken",
                                                 message_id=f"<p1-{suffix}@customer.example>"))
    second = deliver(fake.url, address, make_mail("ann@customer.example", address, "Printer again",
                                                  message_id=f"<p2-{suffix}@customer.example>"))
    sync.poll(services, name)
    deliver(fake.url, address, make_mail("bob@customer.example", address, "Re: Printer again",
                                         In_Reply_To=f"<p2-{suffix}@customer.example>"))
    sync.poll(services, name)
    rows = {r["gmail_message_id"]: r["ticket_id"] for r in services.store.inbound_log(name, limit=0)}
    bootstrap.reset()  # the CLI in this process builds its services from mb_env
    yield services, name, rows[first["id"]], rows[second["id"]], suffix
    bootstrap.reset()


def cli_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert cli_main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_merge_then_split_back(desk, capsys):
    services, _name, first, second, suffix = desk
    merged = cli_json(capsys, "tickets", "merge", second, first, "--json")
    assert (merged["changed"], merged["into"], len(merged["moved_messages"])) == (True, first, 2)
    source = cli_json(capsys, "tickets", "show", second, "--json")
    assert (source["status"], source["merged_into"], source["messages"]) == ("closed", first, [])
    survivor = cli_json(capsys, "tickets", "show", first, "--json")
    assert len(survivor["messages"]) == 3
    split = cli_json(capsys, "tickets", "split", first, f"<p2-{suffix}@customer.example>", "--json")
    assert split["changed"] and len(split["moved_messages"]) == 2
    assert cli_json(capsys, "tickets", "show", split["into"], "--json")["split_from"] == first
    capsys.readouterr()
    assert cli_main(["tickets", "merge", second, second]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_api_merge_and_split(api_server, desk):
    _services, _name, first, second, _suffix = desk
    answer = api_server.call("POST", f"/tickets/{second}/merge", json={"into": first})
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] is True
    again = api_server.call("POST", f"/tickets/{second}/merge", json={"into": int(first)})
    assert (again.status_code, again.json()["changed"]) == (200, False)
    crossed = api_server.call("POST", f"/tickets/{first}/merge", json={"into": second})
    assert (crossed.status_code, crossed.json()["error"]) == (409, "conflict")
    ticket = api_server.call("GET", f"/tickets/{first}").json()
    split = api_server.call("POST", f"/tickets/{first}/split", json={"message_id": ticket["messages"][-1]["id"]})
    assert split.status_code == 200, split.text
    assert api_server.call("POST", f"/tickets/{first}/split", json={"message": "x"}).status_code == 400
    assert api_server.call("POST", f"/tickets/{first}/merge", json={"into": True}).status_code == 400


def test_admin_page_merges_with_its_csrf_token_only(desk, functions_url):
    services, _name, first, second, _suffix = desk
    session = requests.Session()
    assert post_link(mailboxes.admin_url(services), session).status_code == 303
    page = session.get(f"{functions_url}/admin/tickets/{second}", timeout=30)
    assert 'action="' in page.text and "/merge" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    refused = session.post(f"{functions_url}/admin/tickets/{second}/merge", data={"into": first, "form": "merge"},
                           allow_redirects=False, timeout=30)
    assert refused.status_code in (400, 403)
    done = session.post(f"{functions_url}/admin/tickets/{second}/merge",
                        data={"into": first, "csrf": csrf, "form": "merge"}, allow_redirects=False, timeout=30)
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/tickets/{first}")
    source_page = session.get(f"{functions_url}/admin/tickets/{second}", timeout=30).text
    assert 'id="merged-into"' in source_page and f"/tickets/{first}" in source_page
