"""Pure pieces of the core: signed links, setting validation, label input forms, push payloads."""

import base64
import json
import time

import pytest

from mailbridge.adapters.gmail import QuotaPacer
from mailbridge.cli import main as cli_main
from mailbridge.cli import parse_since
from mailbridge.domain import labels, models, signing
from mailbridge.errors import AuthError, InvalidInput
from mailbridge.http import push

KEY = "unit-test-signing-key"


def test_signed_link_round_trips_and_rejects_tampering_purpose_and_expiry():
    token = signing.sign(KEY, "oauth_start", {"m": "help"}, 60)
    assert signing.verify(KEY, "oauth_start", token)["m"] == "help"
    with pytest.raises(AuthError, match="signature"):
        signing.verify("other-key", "oauth_start", token)
    with pytest.raises(AuthError, match="purpose"):
        signing.verify(KEY, "admin_login", signing.sign(KEY, "oauth_start", {}, 60))
    with pytest.raises(AuthError, match="expired"):
        signing.verify(KEY, "oauth_start", signing.sign(KEY, "oauth_start", {}, 60, now=time.time() - 120))
    with pytest.raises(AuthError, match="malformed"):
        signing.verify(KEY, "oauth_start", "nodot")


@pytest.mark.parametrize("value, expected", [
    ("trash", ("id", "TRASH")), ("Trash", ("id", "TRASH")), ("^x_123", ("id", "Label_123")),
    ("Label_5915939116930758527", ("id", "Label_5915939116930758527")), ("Processed/Done", ("name", "Processed/Done")),
])
def test_label_inputs_normalize(value, expected):
    assert labels.normalize_label_input(value) == expected


def test_label_changes_per_action():
    assert labels.label_changes({"after_processing": "mark_read"}) == ([], ["UNREAD"])
    assert labels.label_changes({"after_processing": "archive"}) == ([], ["INBOX"])
    assert labels.label_changes({"after_processing": "leave"}) == ([], [])
    assert labels.label_changes({"after_processing": "delete", "deletion_label": "Label_1",
                                 "remove_unread_on_delete": True}) == (["Label_1"], ["INBOX", "UNREAD"])


def test_mailbox_settings_are_typed_and_validated():
    mailbox = models.new_mailbox("help", "Help@Acme.example")
    assert mailbox["address"] == "help@acme.example"
    assert models.apply_mailbox_setting(mailbox, "incoming.after_processing", "archive") == ("incoming.after_processing", "archive")
    assert models.apply_mailbox_setting(mailbox, "incoming.accept_auto_replies", "yes")[1] is True
    assert models.apply_mailbox_setting(mailbox, "incoming.ignore_senders", "a@x.com, @y.com")[1] == ["a@x.com", "@y.com"]
    with pytest.raises(InvalidInput, match="must be one of"):
        models.apply_mailbox_setting(mailbox, "incoming.after_processing", "shred")
    with pytest.raises(InvalidInput, match="deletion label first"):
        models.apply_mailbox_setting(mailbox, "incoming.after_processing", "delete")
    with pytest.raises(InvalidInput, match="unknown setting"):
        models.apply_mailbox_setting(mailbox, "incoming.nope", "1")
    with pytest.raises(InvalidInput, match="whole number"):
        models.apply_mailbox_setting(mailbox, "incoming.max_message_bytes", "big")


def test_push_payload_decoding():
    data = base64.b64encode(json.dumps({"emailAddress": "Help@acme.example", "historyId": "42"}).encode()).decode()
    assert push.decode({"message": {"data": data}}) == ("help@acme.example", 42)
    for bad in (None, {}, {"message": {}}, {"message": {"data": "!!!"}},
                {"message": {"data": base64.b64encode(b'{"historyId": 1}').decode()}}):
        with pytest.raises(ValueError):
            push.decode(bad)


def test_parse_since_forms():
    now = time.time()
    assert abs(parse_since("7d") - (now - 7 * 86400)) < 5
    assert parse_since("2026-11-01") > 0
    with pytest.raises(InvalidInput):
        parse_since("last week")


class FakeClock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self):
        self.now, self.slept = 1000.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_quota_pacer_waits_when_window_is_full():
    clock = FakeClock()
    pacer = QuotaPacer(100, safety=1.0, clock=clock, sleep=clock.sleep)
    pacer.spend(60)
    clock.now += 10
    pacer.spend(40)
    assert clock.slept == [] and pacer.total == 100
    pacer.spend(50)  # the window is full: waits until the first spend is a minute old
    assert 49.9 < sum(clock.slept) < 50.2
    assert pacer.total == 90 and pacer.used == 150


def test_cli_bad_argument_is_one_line_and_exit_2(capsys):
    assert cli_main(["mailbox", "frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert cli_main(["tickets", "list", "--status", "weird"]) == 2
