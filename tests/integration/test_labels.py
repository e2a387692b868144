"""Labels (issue 5): list/create, the deletion label in every form an admin has, post-processing,
a label deleted in Gmail, the processed label, and the `labels` function over HTTP.

Against the fake Gmail (system ids, user ids `Label_N`, duplicates → 409, reserved names → 400)
and the Firestore emulator. Mailbox names are unique per test: the functions server used for
the HTTP tests lives for the whole session and caches credentials per mailbox.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from mailbridge.domain import labels as label_rules
from mailbridge.errors import Conflict, InvalidInput, NotFound
from mailbridge.services import labels, mailboxes
from mailbridge.services import sync as ingest
from tests.helpers import connect_mailbox, deliver, make_mail, make_services


@pytest.fixture
def box(mb_env, fake, firestore, storage_emulator):
    suffix = uuid.uuid4().hex[:8]
    name, address = f"lab-{suffix}", f"lab-{suffix}@acme.example"
    services = make_services()
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    ingest.poll(services, name)  # first poll: nothing to ingest
    return services, name, address


def gmail_of(services, name):
    mailbox = services.store.get_mailbox(name)
    return services.gmail_for(mailbox, mailboxes.own_credential(services, mailbox))


def delete_label_in_gmail(services, name, label_id):
    """What an admin does in Gmail's web UI: the official client's labels.delete."""
    gmail = gmail_of(services, name)
    gmail.api.labels.delete(userId="me", id=label_id).execute(http=gmail.http)


def inbox_messages(fake, address):
    """Messages delivered to the account (not the ones it sent)."""
    return [m for m in fake.get(f"/_fake/users/{address}/messages") if "SENT" not in m["labelIds"]]


def refusal(call) -> str:
    with pytest.raises(InvalidInput) as info:
        call()
    return str(info.value)


# ------------------------------------------------------------------------------ list and create


def test_list_shows_system_and_user_labels_with_id_name_type_visibility(box):
    services, name, _ = box
    created = labels.create_label(services, name, "Support/Done")
    listed = labels.list_labels(services, name)
    for label in listed:
        assert {"id", "name", "type", "visibility"} <= set(label), label
        assert label["type"] in ("system", "user")
    by_id = {l["id"]: l for l in listed}
    assert by_id["INBOX"]["type"] == "system" and by_id["INBOX"]["name"] == "INBOX"
    assert by_id["TRASH"]["type"] == "system"
    assert by_id["TRASH"]["visibility"] == "labelHide"
    assert by_id[created["id"]] == {**created, "type": "user"}
    assert created["name"] == "Support/Done" and created["id"].startswith("Label_")
    assert by_id[created["id"]]["visibility"] == "labelShow"
    # system labels first, then user labels
    types = [l["type"] for l in listed]
    assert types == sorted(types, key=lambda t: t != "system")


def test_create_nested_duplicate_and_reserved_names(box):
    services, name, _ = box
    parent = labels.create_label(services, name, "Helpdesk")
    child = labels.create_label(services, name, "Helpdesk/Processed")
    assert child["name"] == "Helpdesk/Processed" and child["id"] != parent["id"]
    with pytest.raises(Conflict, match="already exists"):
        labels.create_label(services, name, "Helpdesk/Processed")
    with pytest.raises(Conflict):
        labels.create_label(services, name, "helpdesk")  # Gmail compares names without case
    for reserved in ("INBOX", "trash", "Category_Social"):
        assert "reserved" in refusal(lambda: labels.create_label(services, name, reserved))
    # names Gmail itself refuses (its folders) come back with Gmail's reason
    assert "refused" in refusal(lambda: labels.create_label(services, name, "All Mail"))
    assert "1-225" in refusal(lambda: labels.create_label(services, name, "   "))
    assert "1-225" in refusal(lambda: labels.create_label(services, name, "x" * 226))
    user_labels = [l for l in labels.list_labels(services, name) if l["type"] == "user"]
    assert sorted(l["name"] for l in user_labels) == ["Helpdesk", "Helpdesk/Processed"]


def test_labels_of_an_unconnected_or_unknown_mailbox_are_refused(box):
    services, name, _ = box
    mailboxes.add_mailbox(services, "lonely", "lonely@acme.example")
    assert "not connected" in refusal(lambda: labels.list_labels(services, "lonely"))
    with pytest.raises(NotFound):
        labels.list_labels(services, "no-such-mailbox")


# ------------------------------------------------------------------------------ the deletion label


def saved(services, name):
    incoming = mailboxes.view(services, services.store.get_mailbox(name))["incoming"]
    return incoming["deletion_label"], incoming["deletion_label_name"]


def test_set_deletion_by_name_id_system_id_and_gmail_ui_id(box):
    services, name, _ = box
    done = labels.create_label(services, name, "Helpdesk/Done")
    other = labels.create_label(services, name, "Archive 2026")

    result = labels.set_deletion_label(services, name, "Helpdesk/Done")
    assert (result["id"], result["name"], result["type"], result["warning"]) == (done["id"], "Helpdesk/Done", "user", None)
    assert saved(services, name) == (done["id"], "Helpdesk/Done")

    assert labels.set_deletion_label(services, name, "archive 2026")["id"] == other["id"]  # any case
    assert labels.set_deletion_label(services, name, done["id"])["name"] == "Helpdesk/Done"
    assert saved(services, name) == (done["id"], "Helpdesk/Done")

    ui_id = "^x_" + other["id"].removeprefix("Label_")
    result = labels.set_deletion_label(services, name, f"  {ui_id} ")
    assert (result["id"], result["name"]) == (other["id"], "Archive 2026")
    assert saved(services, name) == (other["id"], "Archive 2026")

    for spelled in ("trash", "Trash", "TRASH"):
        result = labels.set_deletion_label(services, name, spelled)
        assert (result["id"], result["type"]) == ("TRASH", "system")
        assert "30 days" in result["warning"]
    assert saved(services, name) == ("TRASH", "TRASH")
    assert labels.set_deletion_label(services, name, "spam")["id"] == "SPAM"
    assert labels.set_deletion_label(services, name, "starred")["warning"] is None


@pytest.mark.parametrize("value, reason", [
    ("SENT", "SENT cannot be used"),
    ("sent", "SENT cannot be used"),
    ("DRAFT", "DRAFT cannot be used"),
    ("draft", "DRAFT cannot be used"),
    ("CHAT", "CHAT cannot be used"),
    ("INBOX", "INBOX cannot be the deletion label"),
    ("Label_987654321", "no label with id 'Label_987654321'"),
    ("^x_987654321", "no label with id 'Label_987654321'"),
    ("Does not exist", "no label named 'Does not exist'"),
    ("", "label is empty"),
])
def test_set_deletion_refusals_have_reasons_and_change_nothing(box, value, reason):
    services, name, _ = box
    labels.create_label(services, name, "Keep")
    labels.set_deletion_label(services, name, "Keep")
    before = saved(services, name)
    message = refusal(lambda: labels.set_deletion_label(services, name, value))
    assert reason in message
    assert saved(services, name) == before


def test_after_processing_delete_needs_a_deletion_label_first(box):
    services, name, _ = box
    assert "deletion label first" in refusal(
        lambda: mailboxes.set_mailbox_setting(services, name, "incoming.after_processing", "delete"))
    assert "labels set-deletion" in refusal(
        lambda: mailboxes.set_mailbox_setting(services, name, "incoming.deletion_label", "TRASH"))


# ------------------------------------------------------------------------------ post-processing


@pytest.mark.parametrize("count", [2, 12])  # below 10: messages.modify each; from 10: batchModify
def test_poll_with_delete_leaves_processed_mail_with_the_label_and_without_inbox(box, fake, count):
    services, name, address = box
    label = labels.create_label(services, name, "Helpdesk/Deleted")
    labels.set_deletion_label(services, name, "Helpdesk/Deleted")
    mailboxes.set_mailbox_setting(services, name, "incoming.after_processing", "delete")
    for i in range(count):
        deliver(fake.url, address, make_mail(f"c{i}@customer.example", address, f"Request {i}"))
    result = ingest.poll(services, name)
    assert result["totals"]["created"] == count
    messages = inbox_messages(fake, address)
    assert len(messages) == count
    for message in messages:
        assert label["id"] in message["labelIds"]
        assert "INBOX" not in message["labelIds"]
        assert "UNREAD" not in message["labelIds"]
    calls = fake.get("/_fake/stats")["users"][address]["calls"]
    if count >= 10:
        assert calls.get("gmail.users.messages.batchModify") == 1
    else:
        assert calls.get("gmail.users.messages.modify") == count
    assert mailboxes.view(services, services.store.get_mailbox(name))["last_error"] is None


def test_delete_can_keep_unread(box, fake):
    services, name, address = box
    label = labels.create_label(services, name, "Done")
    labels.set_deletion_label(services, name, label["id"])
    mailboxes.set_mailbox_setting(services, name, "incoming.after_processing", "delete")
    mailboxes.set_mailbox_setting(services, name, "incoming.remove_unread_on_delete", "false")
    deliver(fake.url, address, make_mail("c@customer.example", address, "Keep unread"))
    ingest.poll(services, name)
    [message] = inbox_messages(fake, address)
    assert label["id"] in message["labelIds"] and "UNREAD" in message["labelIds"]
    assert "INBOX" not in message["labelIds"]


def test_trash_as_the_deletion_label_moves_processed_mail_to_trash(box, fake):
    services, name, address = box
    labels.set_deletion_label(services, name, "trash")
    mailboxes.set_mailbox_setting(services, name, "incoming.after_processing", "delete")
    deliver(fake.url, address, make_mail("c@customer.example", address, "Throw away after"))
    assert ingest.poll(services, name)["totals"]["created"] == 1
    [message] = inbox_messages(fake, address)
    assert "TRASH" in message["labelIds"] and "INBOX" not in message["labelIds"]
    assert len(services.store.list_tickets(mailbox=name)) == 1


def test_a_label_deleted_in_gmail_is_reported_and_mail_is_left_in_place(box, fake):
    services, name, address = box
    label = labels.create_label(services, name, "Helpdesk/Gone")
    labels.set_deletion_label(services, name, "Helpdesk/Gone")
    mailboxes.set_mailbox_setting(services, name, "incoming.after_processing", "delete")
    delete_label_in_gmail(services, name, label["id"])

    deliver(fake.url, address, make_mail("c1@customer.example", address, "First after the label went"))
    result = ingest.poll(services, name)
    [summary] = result["mailboxes"]
    assert summary["outcome"] == "ok" and summary["counts"]["created"] == 1
    [message] = inbox_messages(fake, address)
    assert "INBOX" in message["labelIds"]  # left in place, nothing lost
    view = mailboxes.view(services, services.store.get_mailbox(name))
    assert label["id"] in (view["last_error"] or "") and "no longer exists" in view["last_error"]
    assert "labels set-deletion" in view["last_error"]
    assert len(services.store.list_tickets(mailbox=name)) == 1

    # a later poll still works, and choosing a live label clears the error
    deliver(fake.url, address, make_mail("c2@customer.example", address, "Second"))
    assert ingest.poll(services, name)["mailboxes"][0]["outcome"] == "ok"
    assert len(services.store.list_tickets(mailbox=name)) == 2
    labels.set_deletion_label(services, name, "trash")
    assert mailboxes.view(services, services.store.get_mailbox(name))["last_error"] is None
    deliver(fake.url, address, make_mail("c3@customer.example", address, "Third"))
    ingest.poll(services, name)
    third = [m for m in inbox_messages(fake, address) if "TRASH" in m["labelIds"]]
    assert len(third) == 1 and "INBOX" not in third[0]["labelIds"]


@pytest.mark.parametrize("setting, expected", [("mailbridge/processed", "mailbridge/processed"),
                                               ("true", label_rules.DEFAULT_PROCESSED_LABEL),
                                               ("Helpdesk/Seen", "Helpdesk/Seen")])
def test_processed_label_is_created_on_first_use(box, fake, setting, expected):
    services, name, address = box
    assert expected not in [l["name"] for l in labels.list_labels(services, name)]
    mailboxes.set_mailbox_setting(services, name, "incoming.processed_label", setting)
    deliver(fake.url, address, make_mail("c1@customer.example", address, "One"))
    ingest.poll(services, name)
    [created] = [l for l in labels.list_labels(services, name) if l["name"] == expected]
    deliver(fake.url, address, make_mail("c2@customer.example", address, "Two"))
    ingest.poll(services, name)
    messages = inbox_messages(fake, address)
    assert len(messages) == 2
    for message in messages:
        assert created["id"] in message["labelIds"]
        assert "UNREAD" not in message["labelIds"]  # the after_processing action still applies
        assert "INBOX" in message["labelIds"]
    calls = fake.get("/_fake/stats")["users"][address]["calls"]
    assert calls.get("gmail.users.labels.create") == 1


def test_processed_label_that_already_exists_is_reused(box, fake):
    services, name, address = box
    existing = labels.create_label(services, name, "mailbridge/processed")
    mailboxes.set_mailbox_setting(services, name, "incoming.processed_label", "mailbridge/processed")
    deliver(fake.url, address, make_mail("c1@customer.example", address, "One"))
    ingest.poll(services, name)
    [message] = inbox_messages(fake, address)
    assert existing["id"] in message["labelIds"]
    assert fake.get("/_fake/stats")["users"][address]["calls"].get("gmail.users.labels.create") == 1


# ------------------------------------------------------------------------------ the labels function


def test_labels_function_over_http(box, functions_url):
    services, name, _ = box
    url = functions_url + "/labels"

    response = requests.get(url, params={"mailbox": name}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["mailbox"] == name
    assert {"INBOX", "TRASH", "SENT"} <= {l["id"] for l in body["labels"]}
    assert all({"id", "name", "type", "visibility"} <= set(l) for l in body["labels"])

    response = requests.post(url, json={"mailbox": name, "action": "create", "name": "Web/Done"}, timeout=30)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Web/Done" and created["id"].startswith("Label_")

    ui_id = "^x_" + created["id"].removeprefix("Label_")
    response = requests.post(url, json={"mailbox": name, "action": "set-deletion", "label": ui_id}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"] and response.json()["name"] == "Web/Done"
    assert saved(services, name) == (created["id"], "Web/Done")

    response = requests.post(url, json={"mailbox": name, "action": "set-deletion", "label": "trash"}, timeout=30)
    assert response.status_code == 200 and response.json()["id"] == "TRASH"
    assert "30 days" in response.json()["warning"]


@pytest.mark.parametrize("method, params, body, status, reason", [
    ("GET", {}, None, 400, "mailbox is required"),
    ("GET", {"mailbox": "no-such-mailbox"}, None, 404, "no mailbox named 'no-such-mailbox'"),
    ("POST", {}, {"action": "create", "name": "x"}, 400, "mailbox is required"),
    ("POST", {}, {"mailbox": "{box}", "action": "explode"}, 400, "action must be"),
    ("POST", {}, {"mailbox": "{box}", "action": "create", "name": "Inbox"}, 400, "reserved"),
    ("POST", {}, {"mailbox": "{box}", "action": "create", "name": "Dup"}, 409, "already exists"),
    ("POST", {}, {"mailbox": "{box}", "action": "set-deletion", "label": "SENT"}, 400, "SENT cannot be used"),
    ("POST", {}, {"mailbox": "{box}", "action": "set-deletion", "label": "Label_424242"}, 400, "no label with id"),
    ("POST", {}, {"mailbox": "{box}", "action": "set-deletion", "label": "Nope"}, 400, "no label named 'Nope'"),
    ("POST", {}, {"mailbox": "{box}", "action": "set-deletion"}, 400, "label is empty"),
    ("POST", {}, b"not json", 400, "JSON object"),
    ("POST", {}, [1, 2], 400, "JSON object"),
    ("PUT", {}, {"mailbox": "{box}"}, 405, "use GET or POST"),
])
def test_labels_function_answers_bad_requests_with_json_reasons(box, functions_url, method, params, body, status,
                                                                reason):
    services, name, _ = box
    labels.create_label(services, name, "Dup")
    if isinstance(body, dict):
        body = {k: (name if v == "{box}" else v) for k, v in body.items()}
    kwargs = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes) else (
        {"json": body} if body is not None else {})
    response = requests.request(method, functions_url + "/labels", params=params, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert reason in response.json()["error"]


def test_processed_label_differing_only_in_case_is_reused_and_the_poll_goes_on(box, fake):
    services, name, address = box
    existing = labels.create_label(services, name, "MailBridge/Processed")  # Gmail: names unique ignoring case
    mailboxes.set_mailbox_setting(services, name, "incoming.processed_label", "mailbridge/processed")
    deliver(fake.url, address, make_mail("c1@customer.example", address, "One"))
    result = ingest.poll(services, name)
    assert result["totals"]["created"] == 1
    [message] = inbox_messages(fake, address)
    assert existing["id"] in message["labelIds"]
    assert services.store.get_sync(name, services.settings.instance).get("post_processing_error") is None
