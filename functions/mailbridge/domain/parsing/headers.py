"""Header fields: the header map, subject, date, message ids and the requester's addresses."""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import re
from email.message import Message

from .addresses import addresses
from .charsets import decode_words, unescape
from .limits import MAX_HEADER_NAMES, MAX_REFERENCES, MAX_STORED_HEADER_CHARS, MAX_VALUES_PER_HEADER
from .model import Defects, ParsedMessage, clean_line, unfold

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")


def raw_values(message: Message, name: str) -> list[str]:
    wanted = name.lower()
    values = []
    for header_name, value in message.raw_items():
        if str(header_name).lower() == wanted:
            values.append(unfold(unescape(str(value))))
    return values


def read_headers(message: Message, result: ParsedMessage, defects: Defects) -> None:
    result.headers = header_map(message)
    subjects = raw_values(message, "subject")
    result.subject = decode_words(subjects[0], defects, "Subject") if subjects else ""

    senders = addresses(raw_values(message, "from"), "from", defects, limit=1)
    result.from_ = senders[0] if senders else None
    if result.from_ is None:
        defects.add("missing or unreadable From")
    result.to = addresses(raw_values(message, "to"), "to", defects)
    result.cc = addresses(raw_values(message, "cc"), "cc", defects)
    result.reply_to = addresses(raw_values(message, "reply-to"), "reply-to", defects)

    dates = raw_values(message, "date")
    if dates:
        result.date = _parse_date(dates[0], defects)
    else:
        defects.add("missing Date")

    message_ids = _ids(" ".join(raw_values(message, "message-id")[:1]))
    result.message_id = message_ids[0] if message_ids else ""
    result.in_reply_to = _ids(" ".join(raw_values(message, "in-reply-to")))[:MAX_REFERENCES]
    references = _ids(" ".join(raw_values(message, "references")))
    if len(references) > MAX_REFERENCES:
        defects.add(f"more than {MAX_REFERENCES} References; kept the newest")
        references = references[-MAX_REFERENCES:]
    result.references = references

    auto = result.headers.get("auto-submitted")
    if auto:
        result.auto_submitted = auto[0].split(";")[0].strip().lower() or None


def header_map(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = clean_line(str(name)).lower()[:100]
        if key not in headers:
            if len(headers) >= MAX_HEADER_NAMES:
                continue
            headers[key] = []
        values = headers[key]
        if len(values) >= MAX_VALUES_PER_HEADER:
            continue
        text = unfold(unescape(str(value)))[:MAX_STORED_HEADER_CHARS]
        if "=?" in text:
            text = decode_words(text, None, key)
        values.append(clean_line(text))
    return headers


def _parse_date(value: str, defects: Defects) -> str | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.astimezone(datetime.timezone.utc).isoformat()
    except Exception:  # noqa: BLE001 - any odd date is a defect, not an error
        defects.add("invalid Date header")
        return None


def _ids(value: str) -> list[str]:
    """Canonical `<id>` message ids found in a header value, in order, without repeats."""
    found = [f"<{m}>" for m in _MESSAGE_ID.findall(value)]
    if not found:
        tokens = value.split()
        if len(tokens) == 1 and "@" in tokens[0]:
            found = [f"<{tokens[0].strip('<>')}>"]
    unique: list[str] = []
    seen: set[str] = set()
    for item in found:
        if item not in seen:
            seen.add(item)
            unique.append(item)
    return unique


def generated_message_id(raw: bytes) -> str:
    """The stable Message-ID given to a message that has none: a hash of its bytes."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailbridge.invalid>"
