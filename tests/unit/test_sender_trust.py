"""Pure rules about hostile senders: who adds participants, which subjects an acknowledgement repeats."""

import pytest

from mailbridge.domain import rules, threads
from mailbridge.errors import InvalidInput

TICKET = {"number": 1, "requester": {"email": "dana@customer.example"}, "participants": ["dana@customer.example"]}


def test_only_an_authenticated_participant_adds_participants():
    assert threads.may_add_participants(TICKET, "Dana@Customer.example", True) is True
    assert threads.may_add_participants(TICKET, "dana@customer.example", False) is False
    assert threads.may_add_participants(TICKET, "mallory@evil.test", True) is False


def test_suggestions_are_kept_once_each():
    first = threads.suggest_participants([], ["a@x.example", "b@x.example"], "m@evil.test", "t1")
    again = threads.suggest_participants(first, ["a@x.example", "c@x.example"], "n@evil.test", "t2")
    assert [(s["email"], s["suggested_by"]) for s in again] == [
        ("a@x.example", "m@evil.test"), ("b@x.example", "m@evil.test"), ("c@x.example", "n@evil.test")]


def test_confirming_moves_a_suggestion_to_the_participants():
    ticket = {**TICKET, "suggested_participants": [{"email": "boss@customer.example"}]}
    assert threads.confirm_participant(ticket, " BOSS@customer.example ") == (
        ["dana@customer.example", "boss@customer.example"], [])


def test_confirming_an_unsuggested_address_is_refused():
    with pytest.raises(InvalidInput, match="not a suggested participant"):
        threads.confirm_participant(TICKET, "spy@evil.test")


@pytest.mark.parametrize("subject", ["Printer jammed", "Re: VPN down since Monday", "Facture n° 42 impayée",
                                     "打印机卡纸了"])
def test_a_plain_subject_is_repeated(subject):
    assert rules.repeatable_subject(subject) == subject


@pytest.mark.parametrize("subject", ["see https://evil.example", "hxxp://x", "visit www.evil", "paypal.com login",
                                     "mail me: a@b.example", "call 0800 123 4567", "x" * 101, "\u202eexe.pdf",
                                     "javascript:/alert(1)"])
def test_bait_is_not_repeated(subject):
    assert rules.repeatable_subject(subject) == rules.NEUTRAL_SUBJECT


def test_line_separators_in_a_repeated_subject_become_spaces():
    assert rules.repeatable_subject("Printer\u2028jammed") == "Printer jammed"
