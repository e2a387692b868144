"""Header fields: the header map, subject, date, message ids and the requester's addresses."""

from __future__ import annotations

import datetime
import email
import email.utils
import hashlib
import re
from email import errors
from email.message import Message

from .addresses import addresses, has_domain
from .charsets import decode_words, unescape
from .limits import MAX_HEADER_NAMES, MAX_REFERENCES, MAX_STORED_HEADER_CHARS, MAX_VALUES_PER_HEADER
from .model import SURROGATES, Defects, ParsedMessage, clean_line, unfold

# How many parts declared_charset looks at for a charset.
MAX_CHARSET_PARTS = 50

_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")


def raw_values(message: Message, name: str, charset: str | None = None, notes: Defects | None = None) -> list[str]:
    wanted = name.lower()
    values = []
    for header_name, value in message.raw_items():
        if str(header_name).lower() == wanted:
            values.append(unfold(unescape(str(value), charset, notes, name.title())))
    return values


def declared_charset(message: Message) -> str | None:
    """The charset the message declares for its text: the top level's, else its first text
    part's. Raw 8-bit header bytes are in that charset far more often than in any other."""
    stack, seen = [message], 0
    while stack and seen < MAX_CHARSET_PARTS:
        part = stack.pop()
        seen += 1
        try:
            charset = part.get_param("charset")
            if isinstance(charset, tuple):
                charset = email.utils.collapse_rfc2231_value(charset)
            if isinstance(charset, str) and charset.strip() and SURROGATES.search(charset) is None:
                return charset.strip().strip('"').lower()
            payload = part.get_payload() if part.is_multipart() else None
        except Exception:  # noqa: BLE001 - a broken part declares nothing
            continue
        if isinstance(payload, list):
            stack.extend(reversed([child for child in payload if isinstance(child, Message)]))
    return None


# Where a message has no usable From, the requester comes from these, in this order.
_SENDER_FALLBACKS = ("sender", "reply-to", "return-path")


def read_headers(message: Message, result: ParsedMessage, defects: Defects) -> None:
    # Looked up only when some header holds raw 8-bit bytes: it costs a Content-Type parse.
    charset = declared_charset(message) if any(SURROGATES.search(str(value)) for _, value in message.raw_items()) else None
    result.headers = header_map(message, charset)
    subjects = raw_values(message, "subject", charset, defects)
    result.subject = decode_words(subjects[0], defects, "Subject") if subjects else ""

    senders = addresses(raw_values(message, "from", charset, defects), "from", defects, limit=1)
    result.from_ = senders[0] if senders else None
    if result.from_ is None or not has_domain(result.from_.email):
        _sender_fallback(message, result, defects, charset)
    result.to = addresses(raw_values(message, "to", charset), "to", defects)
    result.cc = addresses(raw_values(message, "cc", charset), "cc", defects)
    result.reply_to = addresses(raw_values(message, "reply-to", charset), "reply-to", defects)

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


def _sender_fallback(message: Message, result: ParsedMessage, defects: Defects, charset: str | None) -> None:
    """No From, or one without a domain: the requester is the first of Sender, Reply-To and
    Return-Path that has a full address, with a note saying so."""
    for name in _SENDER_FALLBACKS:
        found = addresses(raw_values(message, name, charset), name, Defects(), limit=1)
        if found and has_domain(found[0].email):
            what = "no From" if result.from_ is None else "From without a domain"
            defects.add(f"{what}; the requester was taken from {name.title()}")
            result.from_ = found[0]
            return
    if result.from_ is None:
        defects.add("missing or unreadable From")


# Structured headers where RFC 2047 allows no encoded words: decoding an smtp.mailfrom in
# Authentication-Results could turn its text into results (domain/authentication.py).
_NOT_ENCODED = frozenset({"authentication-results"})


def header_map(message: Message, charset: str | None = None) -> dict[str, list[str]]:
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
        text = unfold(unescape(str(value), charset))[:MAX_STORED_HEADER_CHARS]
        if "=?" in text and key not in _NOT_ENCODED:
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


# A field name (printable ASCII but the colon), then the colon; RFC 5322 §4.5 (obsolete syntax)
# allows white space before the colon, and a parser must accept it.
_FIELD = re.compile(rb"([!-9;-~]+)([ \t]*):")
# How many lines without a field name in a row are taken as a broken header rather than as the
# start of a body that lacks its blank separator line.
MAX_NAMELESS_RUN = 3


def repair_header_block(raw: bytes) -> tuple[bytes, list[str]]:
    """Make every header of the top-level block readable by the stdlib parser.

    The stdlib ends the header block at the first line that is neither a field nor a
    continuation, and every header after it is lost (no From, no Message-ID). Here, scanning
    the block once: white space before a colon is removed; a short run of lines without a
    field name between two fields is joined to the field above (a continuation that lost its
    indent); such lines above the first field (a banner a forwarding tool put there) are
    dropped. A long run still starts the body, as the stdlib would have it.
    """
    end = _header_end(raw)
    block = raw[:end]
    lines = block.splitlines(keepends=True)
    if all(_plain_header_line(line, index) for index, line in enumerate(lines)):
        return raw, []
    notes: list[str] = []
    fields = [index for index, line in enumerate(lines) if _FIELD.match(line) and line[:1] not in b" \t"]
    last_field = fields[-1] if fields else -1
    out: list[bytes] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not out and line[:1] in (b" ", b"\t") and _FIELD.match(line.lstrip(b" \t")):
            # The first header indented: read as a continuation of nothing, it would be lost.
            line = line.lstrip(b" \t")
            notes.append("white space before the first header removed")
        if line[:1] in (b" ", b"\t") or (index == 0 and line.startswith(b"From ") and not _FIELD.match(line)):
            out.append(line)
            index += 1
            continue
        field = _FIELD.match(line)
        if field:
            if field.group(2):
                line = field.group(1) + b":" + line[field.end() :]
                notes.append("white space before a header colon removed (obsolete syntax)")
            out.append(line)
            index += 1
            continue
        run_end = index
        while run_end < len(lines) and not _FIELD.match(lines[run_end]) and lines[run_end][:1] not in b" \t":
            run_end += 1
        if index > last_field or run_end - index > MAX_NAMELESS_RUN or not _known_field(lines[run_end]):
            out.extend(lines[index:])
            break
        if out:
            out.extend(b" " + nameless.lstrip() for nameless in lines[index:run_end])
            notes.append("header line without a field name joined to the header above")
        else:
            notes.append("lines above the first header that are not headers were dropped")
        index = run_end
    return b"".join(out) + raw[end:], notes


def repair_part_headers(message: Message, max_parts: int) -> list[str]:
    """The same repair for the header block of each MIME part (at most max_parts of them).

    The stdlib ends a part's header block at a line without a field name as well (noting
    MissingHeaderBodySeparatorDefect), and a Content-Disposition after it, with the file's
    name, becomes the first line of the body. Such a part is rebuilt from its headers and body
    and read again when repair_header_block changes it; docs/parsing.md lists the repairs.
    """
    notes: list[str] = []
    for count, part in enumerate(message.walk()):
        if count >= max_parts:
            break
        if part is message or part.is_multipart() or not any(
                isinstance(defect, errors.MissingHeaderBodySeparatorDefect) for defect in part.defects):
            continue
        payload = part.get_payload()
        if not isinstance(payload, str):
            continue
        head = "".join(f"{name}: {value}\n" for name, value in part.raw_items())
        try:
            raw = (head + payload).encode("ascii", "surrogateescape")  # the body begins with the nameless line
        except UnicodeEncodeError:
            continue
        repaired, repairs = repair_header_block(raw)
        if not head or not repairs or repaired == raw:
            continue
        reread = email.message_from_bytes(repaired, policy=message.policy)
        for name in set(part.keys()):
            del part[name]
        for name, value in reread.raw_items():
            part.set_raw(name, value)
        part.set_payload(reread.get_payload())
        part.defects[:] = reread.defects
        notes.extend(f"MIME part: {repair}" for repair in repairs)
    return notes


# A nameless run is a broken header only when a header that mail really has follows it; a
# body that lacks its blank separator line ("Hello\nNote: …") stays the body.
_KNOWN_FIELDS = frozenset({
    b"from", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"mime-version", b"received",
    b"return-path", b"reply-to", b"sender", b"in-reply-to", b"references", b"delivered-to",
    b"precedence", b"auto-submitted", b"importance", b"priority", b"organization", b"user-agent",
    b"authentication-results", b"received-spf", b"thread-topic", b"thread-index", b"keywords",
    b"comments", b"errors-to", b"envelope-to", b"disposition-notification-to",
})
_KNOWN_PREFIXES = (b"x-", b"content-", b"list-", b"arc-", b"resent-", b"dkim-", b"domainkey-")


def _known_field(line: bytes) -> bool:
    field = _FIELD.match(line)
    if field is None:
        return False
    name = field.group(1).lower()
    return name in _KNOWN_FIELDS or name.startswith(_KNOWN_PREFIXES)


def _header_end(raw: bytes) -> int:
    """Offset just after the last header line (before the blank line), or len(raw)."""
    ends = [found + 1 for found in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if found >= 0]
    return min(ends) if ends else len(raw)


def _plain_header_line(line: bytes, index: int) -> bool:
    if line[:1] in (b" ", b"\t"):
        return index > 0
    if index == 0 and line.startswith(b"From ") and not _FIELD.match(line):
        return True
    field = _FIELD.match(line)
    return field is not None and not field.group(2)
