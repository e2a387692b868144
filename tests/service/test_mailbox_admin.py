"""Fixing what an admin got wrong, on in-memory ports (tests/memory): credential sets edited and
removed, mailboxes removed, personal accounts refused, instances from the fixed list, listings
that say when more exist, "Poll now" counting what push took in, overrides checked, ticket fields."""

import pytest

from mailbridge.errors import InvalidInput, NotFound
from mailbridge.services import mailboxes, sync, tickets
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
CLIENT_ID = "123-abc.apps.googleusercontent.com"
OTHER_CLIENT_ID = "456-def.apps.googleusercontent.com"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts)
    services.secrets.put("r", "refresh-token-1")
    services.secrets.put("s", "client-secret-1")
    return services, accounts


@pytest.fixture
def fresh():
    services, _accounts = memory_services()
    mailboxes.add_mailbox(services, "desk", "desk@acme.example")
    return services


def test_a_gmail_com_address_is_refused_with_the_reason(fresh):
    with pytest.raises(InvalidInput, match="personal Google account"):
        mailboxes.add_mailbox(fresh, "personal", "someone@gmail.com")


def test_a_googlemail_com_address_is_refused_in_any_case(fresh):
    with pytest.raises(InvalidInput, match="googlemail.com"):
        mailboxes.add_mailbox(fresh, "personal", "Someone@GoogleMail.com")


def test_instances_match_the_fixed_list_case_insensitively(fresh):
    cred = mailboxes.add_credentials(fresh, "desk", "UAT", CLIENT_ID, "secret-value-1")
    assert cred["instance"] == "uat"


def test_an_instance_outside_the_fixed_list_is_refused(fresh):
    with pytest.raises(InvalidInput, match="production, uat, dev"):
        mailboxes.add_credentials(fresh, "desk", "staging", CLIENT_ID, "secret-value-1")


def test_replacing_the_secret_keeps_the_connection_and_stores_only_the_new_value(world):
    services, _ = world
    cred = mailboxes.update_credentials(services, "help", "production", client_secret="client-secret-2")
    assert (cred["status"], services.secrets.get(cred["client_secret_secret"])) == ("connected", "client-secret-2")


def test_changing_the_client_id_revokes_the_token_and_asks_for_a_new_sign_in(world):
    services, _ = world
    cred = mailboxes.update_credentials(services, "help", "Production", client_id=OTHER_CLIENT_ID)
    assert (cred["client_id"], cred["status"], services.google.revoked_tokens, services.secrets.get("r")) == (
        OTHER_CLIENT_ID, "not_connected", ["refresh-token-1"], None)


def test_a_bad_new_client_id_changes_nothing(world):
    services, _ = world
    with pytest.raises(InvalidInput, match="whole id"):
        mailboxes.update_credentials(services, "help", "production", client_id="123-abc")
    assert services.store.get_mailbox("help")["credentials"][0]["client_id"] == "id.apps.googleusercontent.com"


def test_an_update_with_nothing_to_change_is_refused(world):
    with pytest.raises(InvalidInput, match="nothing to change"):
        mailboxes.update_credentials(world[0], "help", "production")


def test_removing_a_set_revokes_its_token_and_destroys_both_secrets(world):
    services, _ = world
    result = mailboxes.remove_credentials(services, "help", "production")
    assert (result["revoked"], services.google.revoked_tokens, services.secrets.values) == (True, ["refresh-token-1"], {})
    assert services.store.get_mailbox("help")["credentials"] == []


def test_removing_a_set_that_does_not_exist_says_so(world):
    with pytest.raises(NotFound, match="no credential set for instance 'dev'"):
        mailboxes.remove_credentials(world[0], "help", "dev")


def test_disconnecting_a_set_never_connected_says_nothing_was_revoked(fresh):
    mailboxes.add_credentials(fresh, "desk", "production", CLIENT_ID, "secret-value-1")
    assert mailboxes.disconnect(fresh, "desk")["revoked"] is False


def test_removing_a_mailbox_keeps_its_tickets_and_inbound_log(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    mailboxes.remove_mailbox(services, "help")
    assert (len(services.store.list_tickets(mailbox="help")), len(services.store.inbound_log("help"))) == (1, 1)


def test_removing_a_mailbox_deletes_it_and_its_secrets(world):
    services, _ = world
    mailboxes.remove_mailbox(services, "help")
    assert services.secrets.values == {}
    with pytest.raises(NotFound):
        services.store.get_mailbox("help")


def test_recent_intake_counts_what_push_already_ingested(world):
    services, accounts = world
    for subject in ("one", "two", "three", "four"):
        accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, subject))
    sync.poll(services, "help")  # as a push notification would: the manual poll then finds nothing new
    assert mailboxes.recent_intake(services, "help")["counts"] == {"created": 4}


def _tickets(services, accounts, count):
    for i in range(count):
        accounts.deliver(ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"subject {i}"))
    sync.poll(services, "help")


def test_a_listing_at_its_limit_says_more_exist(world):
    services, accounts = world
    _tickets(services, accounts, 3)
    rows, more = tickets.list_page(services, limit=2)
    assert (len(rows), more) == (2, True)


def test_limit_zero_lists_every_ticket(world):
    services, accounts = world
    _tickets(services, accounts, 3)
    rows, more = tickets.list_page(services, limit=0)
    assert (len(rows), more) == (3, False)


def test_the_next_page_starts_below_the_cursor(world):
    services, accounts = world
    _tickets(services, accounts, 3)
    first, _ = tickets.list_page(services, limit=2)
    rest, more = tickets.list_page(services, limit=2, before=first[-1]["number"])
    assert ([t["number"] for t in first + rest], more) == ([3, 2, 1], False)


def test_an_override_for_a_ticket_that_does_not_exist_is_refused(world):
    with pytest.raises(NotFound, match="no ticket '999'"):
        mailboxes.check_override_target(world[0], "ticket", "#999", "help")


def test_an_override_to_a_mailbox_without_credentials_is_refused(world):
    services, _ = world
    mailboxes.add_mailbox(services, "desk", "desk@acme.example")
    with pytest.raises(InvalidInput, match="no credential set"):
        mailboxes.check_override_target(services, "team", "billing", "desk")


def test_a_team_set_on_a_ticket_makes_its_team_override_choose_the_mailbox(world):
    services, accounts = world
    _tickets(services, accounts, 1)
    connected_mailbox(services, accounts, name="billing", address="billing@acme.example")
    from mailbridge.services import outgoing
    outgoing.set_override(services, "team", "Billing", "billing")
    tickets.set_field(services, "1", "team", "billing")
    resolution = outgoing.resolve_outgoing(services, services.store.get_ticket("1"))
    words = tickets.describe_resolution(resolution, services.store.get_ticket("1"))
    assert (words["mailbox"], words["because"]) == ("billing", "team 'billing' sends through it")


def test_a_ticket_type_can_be_set_and_cleared(world):
    services, accounts = world
    _tickets(services, accounts, 1)
    tickets.set_field(services, "1", "type", "refund")
    tickets.set_field(services, "1", "type", "")
    assert services.store.get_ticket("1").get("ticket_type") is None
