"""Ticket matching: In-Reply-To, References, subject tag (participants only), Gmail thread."""

import pytest

from mailbridge.errors import InvalidInput
from mailbridge.domain.parsing import parse_message
from mailbridge.threads import (
    DEFAULT_TAG_FORMAT,
    DictLookup,
    find_tag_numbers,
    format_tag,
    match_ticket,
    subject_with_tag,
)
from tests.corpus import build_corpus, make_message

CORPUS = build_corpus()
MAILBOX = "support"


def lookup_with_ticket_12():
    lookup = DictLookup()
    lookup.add_ticket("T12", 12, participants={"Alice@Customer.Example", "support@helpdesk.example"})
    lookup.add_message("T12", "<plain-1@customer.example>", mailbox=MAILBOX, thread_id="thread-a")
    lookup.add_message("T12", "<out-12-1@helpdesk.example>", mailbox=MAILBOX, thread_id="thread-a")
    return lookup


def match(name, thread_id=None, lookup=None):
    return match_ticket(parse_message(CORPUS[name]), MAILBOX, thread_id, lookup or lookup_with_ticket_12())


def test_in_reply_to_of_stored_message_updates_ticket():
    result = match("reply_in_reply_to")

    assert (result.ticket_id, result.signal) == ("T12", "in_reply_to")


def test_references_only_reply_updates_ticket():
    result = match("reply_references_only")

    assert (result.ticket_id, result.signal) == ("T12", "references")


def test_newest_reference_wins():
    lookup = lookup_with_ticket_12()
    lookup.add_message("T99", "<newer@x>")
    message = parse_message(make_message(references="<plain-1@customer.example> <newer@x>"))

    result = match_ticket(message, MAILBOX, None, lookup)

    assert result.ticket_id == "T99"


def test_tag_from_participant_updates_ticket():
    result = match("reply_tag_subject")

    assert (result.ticket_id, result.signal) == ("T12", "subject_tag")


def test_tag_from_stranger_opens_new_ticket_and_says_why():
    result = match("reply_tag_stranger", thread_id="thread-a")

    assert result.ticket_id is None
    assert result.signal is None
    assert "not a participant" in result.note
    assert "mallory@attacker.example" in result.note


def test_thread_id_updates_ticket_when_nothing_else_matches():
    message = parse_message(make_message(subject="Something else"))

    result = match_ticket(message, MAILBOX, "thread-a", lookup_with_ticket_12())

    assert (result.ticket_id, result.signal) == ("T12", "thread_id")


def test_thread_id_of_other_mailbox_does_not_match():
    message = parse_message(make_message(subject="Something else"))

    result = match_ticket(message, "sales", "thread-a", lookup_with_ticket_12())

    assert result.ticket_id is None


def test_unrelated_message_is_a_new_ticket():
    result = match("plain", thread_id="thread-new", lookup=DictLookup())

    assert result.ticket_id is None
    assert result.signal is None


def test_unknown_tag_number_falls_through_to_thread_id():
    message = parse_message(make_message(subject="Re: [#999] Printer"))

    result = match_ticket(message, MAILBOX, "thread-a", lookup_with_ticket_12())

    assert (result.ticket_id, result.signal) == ("T12", "thread_id")


def test_cc_reply_by_header_updates_ticket():
    result = match("reply_cc")

    assert (result.ticket_id, result.signal) == ("T12", "in_reply_to")


def test_overlay_lookup_falls_back_to_the_store():
    store = lookup_with_ticket_12()
    overlay = DictLookup(fallback=store)
    overlay.add_message("T13", "<created-in-batch@x>")

    assert overlay.by_message_ids(["<created-in-batch@x>"]) == "T13"
    assert overlay.by_message_ids(["<plain-1@customer.example>"]) == "T12"
    assert overlay.by_number(12)[0] == "T12"
    assert overlay.by_thread(MAILBOX, "thread-a") == "T12"


def test_format_tag_default():
    assert format_tag(12) == "[#12]"
    assert DEFAULT_TAG_FORMAT == "[#{number}]"


def test_find_tag_numbers_default_and_custom_formats():
    assert find_tag_numbers("Re: [#12] Printer [#7] [#12]") == [12, 7]
    assert find_tag_numbers("RE: [ticket #45] x", "[Ticket #{number}]") == [45]
    assert find_tag_numbers("Case#123x and Case#1234", "Case#{number}") == [123, 1234]
    assert find_tag_numbers("no tag here") == []


def test_tag_number_is_not_a_prefix_of_a_longer_number():
    assert find_tag_numbers("order 123456", "#{number}") == []
    assert find_tag_numbers("see #12.", "#{number}") == [12]


def test_subject_with_tag_goes_after_reply_prefixes_once():
    assert subject_with_tag("Re: AW: Printer", 12) == "Re: AW: [#12] Printer"
    assert subject_with_tag("Re: [#12] Printer", 12) == "Re: [#12] Printer"
    assert subject_with_tag("Printer", 12) == "[#12] Printer"


def test_subject_with_tag_as_reply_has_one_re():
    assert subject_with_tag("RE: AW: [#12] Printer", 12, reply=True) == "Re: [#12] Printer"
    assert subject_with_tag("Printer", 12, reply=True) == "Re: [#12] Printer"


def test_tag_format_without_number_is_refused():
    with pytest.raises(InvalidInput):
        format_tag(1, "[#]")
