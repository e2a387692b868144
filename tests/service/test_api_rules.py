"""The JSON API's use cases (services/api.py) on in-memory ports: pages and cursors, the
updated-after filter, attachment links and content, one send per Idempotency-Key, changes."""

import base64
import json

import pytest

from mailbridge.errors import InvalidInput, NotFound
from mailbridge.services import api, sync
from tests.helpers import make_email, make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


def url(ticket_id, message_id, index):
    return f"https://api.example/tickets/{ticket_id}/messages/{message_id}/attachments/{index}"


@pytest.fixture
def world():
    services, accounts = memory_services(reply_wait_s=0.0)
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    for n in range(1, 6):
        accounts.deliver(ADDRESS, make_mail(f"customer{n}@customer.example", ADDRESS, f"Question {n}"))
    sync.poll(services, "help")
    return services, accounts


def numbers(page):
    return [t["number"] for t in page["tickets"]]


def test_pages_follow_the_cursor_newest_first_to_a_null_cursor(world):
    services, _accounts = world
    first = api.list_page(services, url, limit=2)
    second = api.list_page(services, url, limit=2, cursor=first["next_cursor"])
    third = api.list_page(services, url, limit=2, cursor=second["next_cursor"])
    assert (numbers(first), numbers(second), numbers(third)) == ([5, 4], [3, 2], [1])
    assert third["next_cursor"] is None


def test_a_page_that_ends_exactly_at_the_last_ticket_has_no_cursor(world):
    services, _accounts = world
    assert api.list_page(services, url, limit=5)["next_cursor"] is None


def test_updated_after_keeps_only_tickets_changed_later(world):
    services, _accounts = world
    (latest,) = api.list_page(services, url, limit=1)["tickets"]
    services.store.update_ticket("2", {"updated_at": "2999-01-01T00:00:00.000+00:00"})

    page = api.list_page(services, url, updated_after="2998-12-31T23:00:00+02:00")
    assert numbers(page) == [2] and page["next_cursor"] is None
    assert latest["number"] in numbers(api.list_page(services, url, updated_after="2000-01-01T00:00:00Z"))


def test_a_filtered_scan_stops_at_its_limit_with_a_cursor_to_go_on(world, monkeypatch):
    services, _accounts = world
    monkeypatch.setattr(api, "SCAN_BATCH", 2)
    monkeypatch.setattr(api, "SCAN_LIMIT", 2)
    services.store.update_ticket("1", {"updated_at": "2999-01-01T00:00:00.000+00:00"})

    page = api.list_page(services, url, updated_after="2998-01-01T00:00:00Z")
    pages = [page]
    while pages[-1]["next_cursor"]:
        pages.append(api.list_page(services, url, updated_after="2998-01-01T00:00:00Z",
                                   cursor=pages[-1]["next_cursor"]))
    assert numbers(page) == [] and page["next_cursor"]
    assert [n for p in pages for n in numbers(p)] == [1]


@pytest.mark.parametrize("cursor", ["", "nope", base64.urlsafe_b64encode(b'{"before": "3"}').decode(),
                                    base64.urlsafe_b64encode(b"[1]").decode()])
def test_a_cursor_the_api_did_not_give_is_refused(world, cursor):
    services, _accounts = world
    with pytest.raises(InvalidInput, match="cursor is not one this API gave"):
        api.list_page(services, url, cursor=cursor)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01T10:00:00", "2024-05-01"])
def test_updated_after_must_be_an_rfc3339_instant(world, value):
    services, _accounts = world
    with pytest.raises(InvalidInput, match="updated_after"):
        api.list_page(services, url, updated_after=value)


@pytest.mark.parametrize("text,expected", [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
    ("2024-05-01t12:00:00.123456789+02:00", "2024-05-01T10:00:00.123456+00:00"),
    ("1990-12-31T23:59:60Z", "1990-12-31T23:59:59+00:00"),
    ("0000-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
])
def test_parse_instant_reads_every_rfc3339_form(text, expected):
    assert api.parse_instant(text).isoformat() == expected


@pytest.mark.parametrize("kwargs,message", [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                                            ({"status": "pending"}, "status"), ({"mailbox": "../x"}, "mailbox"),
                                            ({"mailbox": "help\n"}, "mailbox")])
def test_bad_filters_are_refused_with_the_reason(world, kwargs, message):
    services, _accounts = world
    with pytest.raises(InvalidInput, match=message):
        api.list_page(services, url, **kwargs)


@pytest.mark.parametrize("ticket_id", ["99", "__x__", "1/2", "", "-1"])
def test_an_unknown_or_malformed_ticket_id_is_not_found(world, ticket_id):
    services, _accounts = world
    with pytest.raises(NotFound):
        api.ticket(services, ticket_id, url)


def ticket_with_attachment(services, accounts) -> dict:
    """Ticket 6: a mail with invoice.pdf attached."""
    mail = make_email("customer9@customer.example", ADDRESS, "With a file")
    mail.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    accounts.deliver(ADDRESS, bytes(mail))
    sync.poll(services, "help")
    return api.ticket(services, "6", url)


def test_a_ticket_carries_team_type_suggestions_and_only_stored_attachments_get_links(world):
    services, accounts = world
    ticket = ticket_with_attachment(services, accounts)
    (message,) = ticket["messages"]
    (attachment,) = message["attachments"]
    assert (ticket["team"], ticket["type"], ticket["suggested_participants"]) == (None, None, [])
    assert attachment["url"] == url("6", message["id"], 0)
    assert api.attachment(services, "6", message["id"], 0) == ("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice")


def test_an_attachment_is_looked_up_on_its_own_ticket_only(world):
    services, accounts = world
    message_id = ticket_with_attachment(services, accounts)["messages"][0]["id"]

    with pytest.raises(NotFound):
        api.attachment(services, "5", message_id, 0)
    with pytest.raises(NotFound):
        api.attachment(services, "6", message_id, 1)


def reply_and_deliver(services, text, key):
    answer = api.reply(services, "1", text, idempotency_key=key)
    services.queue.deliver(services, kinds=("send",))
    return answer


def test_the_same_idempotency_key_sends_once_and_answers_with_that_send(world):
    services, accounts = world
    first = reply_and_deliver(services, "On it.", "k-1")
    again = reply_and_deliver(services, "On it.", "k-1")

    assert (first["status"], first["final"]) == ("queued", False)
    assert (again["status"], again["final"]) == ("sent", True)
    assert again["idempotency_key"] == first["idempotency_key"] == api.outbound_key("1", "k-1")
    assert len(accounts.account(ADDRESS)["sent"]) == 1


def test_the_same_key_on_another_ticket_is_another_reply(world):
    services, _accounts = world
    assert api.outbound_key("1", "k") != api.outbound_key("2", "k")
    assert "/" not in api.outbound_key("1", "a/b" * 100) and len(api.outbound_key("1", "x" * 999)) < 200


def test_replies_without_a_key_are_each_sent(world):
    services, accounts = world
    reply_and_deliver(services, "One.", None)
    reply_and_deliver(services, "Two.", None)
    assert len(accounts.account(ADDRESS)["sent"]) == 2


def test_change_sets_status_team_and_type_and_clears_with_null(world):
    services, _accounts = world
    changed = api.change(services, "3", {"status": "closed", "team": "billing", "type": "refund"}, url)
    assert (changed["status"], changed["team"], changed["type"]) == ("closed", "billing", "refund")

    cleared = api.change(services, "3", {"team": None, "type": ""}, url)
    assert (cleared["status"], cleared["team"], cleared["type"]) == ("closed", None, None)
    assert numbers(api.list_page(services, url, status="closed")) == [3]


@pytest.mark.parametrize("changes,message", [({}, "nothing to change"), ({"status": "done"}, "status"),
                                             ({"team": "a/b"}, "team")])
def test_a_bad_change_is_refused(world, changes, message):
    services, _accounts = world
    with pytest.raises(InvalidInput, match=message):
        api.change(services, "3", changes, url)


def test_confirming_a_suggested_participant_makes_them_receive_replies(world):
    services, accounts = world
    services.store.update_ticket("1", {"suggested_participants": [
        {"email": "boss@customer.example", "suggested_by": "customer1@customer.example", "suggested_at": "t"}]})
    assert api.ticket(services, "1", url)["suggested_participants"][0]["email"] == "boss@customer.example"

    result = api.confirm_participant(services, "1", "Boss@Customer.example")
    assert "boss@customer.example" in result["participants"] and result["suggested_participants"] == []
    with pytest.raises(InvalidInput, match="not a suggested participant"):
        api.confirm_participant(services, "1", "boss@customer.example")


def test_the_cursor_is_opaque_text_safe_in_a_query_string(world):
    services, _accounts = world
    cursor = api.list_page(services, url, limit=1)["next_cursor"]
    assert cursor.isascii() and all(c.isalnum() or c in "-_" for c in cursor)
    assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) == {"before": 5}
