"""The subject policy of replies (README.md, "Replies and Gmail threads")."""

from mailbridge.domain import compose

TAG = "[#{number}]"


def test_a_reply_joining_a_gmail_thread_takes_the_threads_subject():
    assert compose.thread_reply_subject("Printer jammed", "Printer jammed", 7, TAG) == "Re: Printer jammed"


def test_a_thread_subject_that_already_is_a_reply_is_not_prefixed_twice():
    assert compose.thread_reply_subject("RE: [#7] Printer jammed", "Printer jammed", 7, TAG) == "RE: [#7] Printer jammed"


def test_a_reply_starting_a_new_thread_carries_the_ticket_tag():
    assert compose.thread_reply_subject(None, "Printer jammed", 7, TAG) == "Re: [#7] Printer jammed"
