"""How the Gmail adapter sizes its messages.get batches (docs/gmail-differences.md): Gmail lists
ids without sizes, so each batch follows the largest message of the one before."""

import types

from mailbridge.adapters import gmail


def size_after(largest, previous=gmail.FIRST_RAW_BATCH):
    return gmail.Gmail.next_batch_size(types.SimpleNamespace(_largest_raw=largest, _batch_size=previous))


def test_the_first_batch_of_a_poll_is_one_message():
    assert size_after(None) == gmail.FIRST_RAW_BATCH == 1


def test_large_messages_are_fetched_alone():
    assert size_after(25_000_000, previous=1) == 1


def test_ordinary_mail_grows_the_batch_twofold_up_to_the_batch_limit():
    sizes, previous = [], 1
    for _ in range(8):
        previous = size_after(20_000, previous)
        sizes.append(previous)
    assert sizes == [2, 4, 8, 16, 32, 50, 50, 50]
