"""The CLI's ways out of an admin's mistakes, against the Firestore emulator, the fake Google and
its Secret Manager: credential sets fixed and removed, mailboxes removed, listings that say when
more exist (--limit N, 0 = all), ticket team/type, instances matched case-insensitively."""

import io
import json

import pytest

from mailbridge.services import sync
from tests.helpers import connect_mailbox, deliver, make_mail, make_services

ADDRESS = "help@acme.example"
NEW_CLIENT_ID = "777-new.apps.googleusercontent.com"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator):
    services = make_services()
    connect_mailbox(services, fake.url, "help", ADDRESS)
    services.store.update_mailbox("help", {"outgoing.acknowledge_new": False})
    return services


def run(args, capsys, monkeypatch, stdin: str = ""):
    from mailbridge import bootstrap as bootstrap_module
    from mailbridge.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    bootstrap_module.reset()
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def json_of(out: str):
    """The command's JSON document (structured log lines are single-line JSON on stdout too)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


def tickets_from(services, fake, count: int) -> None:
    for i in range(count):
        deliver(fake.url, ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"Question {i}"))
    sync.poll(services, "help")


def test_tickets_list_at_its_limit_says_on_stderr_that_more_exist(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 3)
    code, out, err = run(["tickets", "list", "--limit", "2", "--json"], capsys, monkeypatch)
    assert (code, len(json_of(out)), "more exist" in err) == (0, 2, True)


def test_tickets_list_limit_zero_lists_all_and_says_nothing_more(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 3)
    code, out, err = run(["tickets", "list", "--limit", "0", "--json"], capsys, monkeypatch)
    assert (code, len(json_of(out)), "more exist" in err) == (0, 3, False)


def test_tickets_list_counts_one_message_in_the_singular(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 1)
    _code, out, _err = run(["tickets", "list"], capsys, monkeypatch)
    assert "(1 message)" in out


def test_inbound_at_its_limit_says_on_stderr_that_more_exist(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 2)
    code, out, err = run(["inbound", "help", "--limit", "1", "--json"], capsys, monkeypatch)
    assert (code, len(json_of(out)), "more exist" in err) == (0, 1, True)


def test_credentials_set_replaces_the_secret_in_secret_manager(services, capsys, monkeypatch):
    code, out, _err = run(["credentials", "set", "help", "--instance", "Production", "--client-secret-stdin"],
                          capsys, monkeypatch, stdin="a-brand-new-secret\n")
    cred = services.store.get_mailbox("help")["credentials"][0]
    assert (code, services.secrets.get(cred["client_secret_secret"]), "a-brand-new-secret" in out) == (
        0, "a-brand-new-secret", False)


def test_credentials_set_with_a_new_client_id_asks_for_a_new_sign_in(services, capsys, monkeypatch):
    code, out, _err = run(["credentials", "set", "help", "--instance", "production", "--client-id", NEW_CLIENT_ID],
                          capsys, monkeypatch)
    cred = services.store.get_mailbox("help")["credentials"][0]
    assert (code, cred["client_id"], cred["status"], "sign in again" in out) == (0, NEW_CLIENT_ID, "not_connected", True)


def test_credentials_remove_revokes_and_destroys_the_secrets(services, capsys, monkeypatch):
    cred = services.store.get_mailbox("help")["credentials"][0]
    code, out, _err = run(["credentials", "remove", "help", "--instance", "production"], capsys, monkeypatch)
    assert (code, "token revoked" in out) == (0, True)
    assert (services.secrets.get(cred["client_secret_secret"]), services.secrets.get(cred["refresh_token_secret"])) == (
        None, None)


def test_mailbox_remove_needs_yes(services, capsys, monkeypatch):
    code, out, err = run(["mailbox", "remove", "help"], capsys, monkeypatch)
    assert (code, out, len(err.strip().splitlines()), "--yes" in err) == (2, "", 1, True)


def test_mailbox_remove_keeps_the_tickets(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 1)
    code, _out, _err = run(["mailbox", "remove", "help", "--yes"], capsys, monkeypatch)
    assert (code, [m["name"] for m in services.store.list_mailboxes()]) == (0, [])
    assert len(services.store.list_tickets(mailbox="help")) == 1


def test_disconnect_of_a_set_never_connected_says_no_token_was_revoked(services, capsys, monkeypatch):
    services.store.add_mailbox({**services.store.get_mailbox("help"), "name": "spare", "credentials": []})
    run(["credentials", "add", "spare", "--instance", "PRODUCTION", "--client-id", NEW_CLIENT_ID,
         "--client-secret-stdin"], capsys, monkeypatch, stdin="secret-of-spare\n")
    code, out, _err = run(["disconnect", "spare"], capsys, monkeypatch)
    assert (code, "no token to revoke" in out, "revoked and removed" in out) == (0, True, False)


def test_credentials_add_matches_the_instance_case_insensitively(services, capsys, monkeypatch):
    code, _out, _err = run(["credentials", "add", "help", "--instance", "UAT", "--client-id", NEW_CLIENT_ID,
                            "--client-secret-stdin"], capsys, monkeypatch, stdin="uat-secret\n")
    instances = sorted(c["instance"] for c in services.store.get_mailbox("help")["credentials"])
    assert (code, instances) == (0, ["production", "uat"])


def test_mailbox_add_refuses_a_gmail_address(services, capsys, monkeypatch):
    code, _out, err = run(["mailbox", "add", "personal", "--address", "me@gmail.com"], capsys, monkeypatch)
    assert (code, "personal Google account" in err) == (2, True)


def test_tickets_set_team_stores_the_field_overrides_match(services, fake, capsys, monkeypatch):
    tickets_from(services, fake, 1)
    code, out, _err = run(["tickets", "set", "1", "team", "Billing"], capsys, monkeypatch)
    assert (code, services.store.get_ticket("1").get("team"), "team = Billing" in out) == (0, "Billing", True)


def test_an_override_for_a_missing_ticket_is_refused(services, capsys, monkeypatch):
    code, _out, err = run(["overrides", "set", "ticket", "999", "help"], capsys, monkeypatch)
    assert (code, "no ticket '999'" in err) == (2, True)


def test_a_secret_that_does_not_match_its_client_id_is_named_in_last_error(mb_env, fake, firestore, storage_emulator):
    from mailbridge.errors import AuthError
    from mailbridge.services import connect, mailboxes
    from tests.helpers import client_id_for, follow_consent, register_google_side

    services = make_services()
    client_id = client_id_for("typo")
    register_google_side(fake.url, services, "typo@acme.example", client_id)
    mailboxes.add_mailbox(services, "typo", "typo@acme.example")
    mailboxes.add_credentials(services, "typo", "production", client_id, "a-mistyped-secret")
    params = follow_consent(services, fake.url, "typo")
    with pytest.raises(AuthError, match="secret does not match"):
        connect.complete(services, params["state"], params.get("code"), params.get("error"), params.get("scope"))
    assert "secret does not match" in services.store.get_mailbox("typo")["credentials"][0]["last_error"]


def test_labels_list_puts_user_labels_before_system_labels(services, capsys, monkeypatch):
    from mailbridge.services import labels

    labels.create_label(services, "help", "Helpdesk/Done")
    code, out, _err = run(["labels", "list", "help", "--json"], capsys, monkeypatch)
    names = [row["name"] for row in json_of(out)]
    assert (code, names.index("Helpdesk/Done") < names.index("TRASH")) == (0, True)
