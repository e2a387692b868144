"""Gmail's search language (the `q` parameter), the subset mail pollers use.

Supported terms, each negatable with a leading ``-``: ``in:inbox|sent|trash|spam|drafts|
anywhere``, ``is:unread|read|starred|important``, ``label:NAME`` (name or id; Gmail's ``-`` for
spaces and ``/`` is accepted), ``category:primary|social|...``, ``after:`` / ``before:``
(epoch seconds or ``YYYY/MM/DD``, dates in UTC), ``newer_than:`` / ``older_than:`` (``Nh``,
``Nd``, ``Nm`` = months, ``Ny``, as Gmail defines them), ``from:``, ``to:``, ``subject:``,
``rfc822msgid:``, ``has:attachment`` and bare words (searched in headers and text).
Terms are ANDed; ``OR`` and braces are not supported.
"""

from __future__ import annotations

import calendar
import re
import shlex
import time
from typing import Callable

from .errors import bad_request
from .mailbox import Mailbox, StoredMessage

Predicate = Callable[[StoredMessage], bool]

_PERIOD_SECONDS = {"h": 3600, "d": 86400, "m": 30 * 86400, "y": 365 * 86400}


def _label_ids_for(mailbox: Mailbox, name: str) -> set[str]:
    # Gmail lets label names be written with '-' for spaces and '/' (nesting separator).
    wanted = name.casefold()
    variants = {wanted, wanted.replace("-", " "), wanted.replace("-", "/")}
    found = {
        label["id"]
        for label in mailbox.labels.values()
        if label["name"].casefold() in variants or label["id"].casefold() == wanted
        or label["name"].casefold().replace(" ", "-").replace("/", "-") == wanted
    }
    return found


def _epoch_seconds(value: str) -> float:
    if value.isdigit():
        return float(value)
    match = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if not match:
        raise bad_request(f"Invalid date in query: {value}")
    year, month, day = (int(group) for group in match.groups())
    return float(calendar.timegm((year, month, day, 0, 0, 0)))


def _period_seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)([hdmy])", value.lower())
    if not match:
        raise bad_request(f"Invalid time period in query: {value}")
    return int(match.group(1)) * _PERIOD_SECONDS[match.group(2)]


def _has_label(label_id: str) -> Predicate:
    return lambda message: label_id in message.label_ids


def _term(mailbox: Mailbox, key: str, value: str) -> Predicate:
    value_folded = value.casefold()
    if key == "in":
        if value_folded == "anywhere":
            return lambda message: True
        mapping = {"inbox": "INBOX", "sent": "SENT", "trash": "TRASH", "spam": "SPAM",
                   "drafts": "DRAFT", "draft": "DRAFT", "chats": "CHAT", "starred": "STARRED",
                   "important": "IMPORTANT"}
        if value_folded in mapping:
            return _has_label(mapping[value_folded])
        return _term(mailbox, "label", value)
    if key == "is":
        if value_folded == "unread":
            return _has_label("UNREAD")
        if value_folded == "read":
            return lambda message: "UNREAD" not in message.label_ids
        if value_folded in ("starred", "important"):
            return _has_label(value_folded.upper())
        raise bad_request(f"Unsupported query term is:{value}")
    if key == "label":
        label_ids = _label_ids_for(mailbox, value)
        # An unknown label matches nothing, as in Gmail (no error).
        return lambda message: bool(label_ids.intersection(message.label_ids))
    if key == "category":
        label_id = "CATEGORY_" + ("PERSONAL" if value_folded == "primary" else value.upper())
        return _has_label(label_id)
    if key == "after":
        bound = _epoch_seconds(value) * 1000
        return lambda message: message.internal_date >= bound
    if key == "before":
        bound = _epoch_seconds(value) * 1000
        return lambda message: message.internal_date < bound
    if key == "newer_than":
        bound = (time.time() - _period_seconds(value)) * 1000
        return lambda message: message.internal_date >= bound
    if key == "older_than":
        bound = (time.time() - _period_seconds(value)) * 1000
        return lambda message: message.internal_date < bound
    if key == "from":
        return lambda message: any(value_folded in a for a in message.parsed.from_addresses) or \
            value_folded in (message.parsed.header("From") or "").casefold()
    if key == "to":
        return lambda message: any(value_folded in a for a in message.parsed.to_addresses)
    if key == "subject":
        return lambda message: value_folded in message.parsed.subject.casefold()
    if key == "rfc822msgid":
        wanted = value.strip("<>")
        return lambda message: (message.parsed.message_id or "").strip("<>") == wanted
    if key == "has":
        if value_folded == "attachment":
            return lambda message: message.parsed.has_attachment
        raise bad_request(f"Unsupported query term has:{value}")
    raise bad_request(f"Unsupported query operator {key}:")


def _word(value: str) -> Predicate:
    folded = value.casefold()

    def matches(message: StoredMessage) -> bool:
        parsed = message.parsed
        haystack = " ".join(
            [parsed.subject, parsed.text, parsed.header("From") or "", parsed.header("To") or ""]
        )
        return folded in haystack.casefold()

    return matches


def compile_query(mailbox: Mailbox, query: str) -> tuple[Predicate, set[str]]:
    """Compile `q` into a predicate; also return the system labels it names explicitly.

    The second value tells the caller whether the query asks for SPAM/TRASH itself (then they
    are not hidden even without includeSpamTrash), mirroring Gmail.
    """
    try:
        tokens = shlex.split(query or "")
    except ValueError:
        raise bad_request("Invalid query")
    predicates: list[Predicate] = []
    explicit: set[str] = set()
    for token in tokens:
        negate = token.startswith("-") and len(token) > 1
        if negate:
            token = token[1:]
        if token.upper() in ("AND",):
            continue
        if ":" in token and re.match(r"^[A-Za-z_0-9]+:", token):
            key, value = token.split(":", 1)
            key = key.lower()
            predicate = _term(mailbox, key, value)
            if key in ("in", "label", "is") and not negate:
                explicit.add(value.upper())
        else:
            predicate = _word(token)
        if negate:
            predicates.append(lambda message, p=predicate: not p(message))
        else:
            predicates.append(predicate)
    return (lambda message: all(p(message) for p in predicates)), explicit
