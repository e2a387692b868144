"""Ticket matching: In-Reply-To, References, subject tag (participants only), Gmail thread."""

import pytest

from mailbridge.domain.threads import find_tag_numbers, format_tag, match_ticket, subject_with_tag
from mailbridge.errors import InvalidInput
from mailbridge.domain.parsing import parse_message
from mailbridge.services.sync import StoreLookup
from tests.corpus import build_corpus, make_message
from tests.memory import MemoryStore

CORPUS = build_corpus()
MAILBOX = "support"


def ticket(number, message_ids=(), participants=(), thread_keys=()):
    return {"id": str(number), "number": number, "participants": list(participants),
            "requester": {"email": "", "name": ""}, "message_ids": list(message_ids), "thread_keys": list(thread_keys)}


def store_with_ticket_12():
    store = MemoryStore()
    store._set("tickets", "12", ticket(12, ["<plain-1@customer.example>", "<out-12-1@helpdesk.example>"],
                                       ["alice@customer.example", "support@helpdesk.example"], [f"{MAILBOX}:thread-a"]))
    return store


def lookup_with_ticket_12(overlay=None):
    """The lookup the poll uses (services/sync.StoreLookup) over an in-memory store."""
    return StoreLookup(store_with_ticket_12(), overlay if overlay is not None else {})


def match(name, thread_id=None, lookup=None):
    return match_ticket(parse_message(CORPUS[name]), MAILBOX, thread_id, lookup or lookup_with_ticket_12())


def test_in_reply_to_of_stored_message_updates_ticket():
    result = match("reply_in_reply_to")

    assert (result.ticket_id, result.signal) == ("12", "in_reply_to")


def test_references_only_reply_updates_ticket():
    result = match("reply_references_only")

    assert (result.ticket_id, result.signal) == ("12", "references")


def test_newest_reference_wins():
    lookup = lookup_with_ticket_12(overlay={"99": ticket(99, ["<newer@x>"])})
    message = parse_message(make_message(references="<plain-1@customer.example> <newer@x>"))

    result = match_ticket(message, MAILBOX, None, lookup)

    assert result.ticket_id == "99"


def test_tag_from_participant_updates_ticket():
    result = match("reply_tag_subject")

    assert (result.ticket_id, result.signal) == ("12", "subject_tag")


def test_tag_from_stranger_opens_new_ticket_and_says_why():
    result = match("reply_tag_stranger", thread_id="thread-a")

    assert result.ticket_id is None
    assert result.signal is None
    assert "not a participant" in result.note
    assert "mallory@attacker.example" in result.note


def test_thread_id_updates_ticket_when_nothing_else_matches():
    message = parse_message(make_message(subject="Something else"))

    result = match_ticket(message, MAILBOX, "thread-a", lookup_with_ticket_12())

    assert (result.ticket_id, result.signal) == ("12", "thread_id")


def test_thread_id_of_other_mailbox_does_not_match():
    message = parse_message(make_message(subject="Something else"))

    result = match_ticket(message, "sales", "thread-a", lookup_with_ticket_12())

    assert result.ticket_id is None


def test_unrelated_message_is_a_new_ticket():
    result = match("plain", thread_id="thread-new", lookup=StoreLookup(MemoryStore(), {}))

    assert result.ticket_id is None
    assert result.signal is None


def test_unknown_tag_number_falls_through_to_thread_id():
    message = parse_message(make_message(subject="Re: [#999] Printer"))

    result = match_ticket(message, MAILBOX, "thread-a", lookup_with_ticket_12())

    assert (result.ticket_id, result.signal) == ("12", "thread_id")


def test_cc_reply_by_header_updates_ticket():
    result = match("reply_cc")

    assert (result.ticket_id, result.signal) == ("12", "in_reply_to")


def test_tickets_created_earlier_in_the_batch_are_found_before_the_store():
    overlay = lookup_with_ticket_12(overlay={"new-1": ticket(13, ["<created-in-batch@x>"],
                                                             thread_keys=[f"{MAILBOX}:thread-b"])})

    assert overlay.by_message_ids(["<created-in-batch@x>"]) == "new-1"
    assert overlay.by_message_ids(["<plain-1@customer.example>"]) == "12"
    assert overlay.by_number(12)[0] == "12"
    assert overlay.by_thread(MAILBOX, "thread-a") == "12"
    assert overlay.by_thread(MAILBOX, "thread-b") == "new-1"


def test_format_tag_default():
    assert format_tag(12) == "[#12]"
    assert find_tag_numbers(f"Re: {format_tag(12)} Printer") == [12]


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
