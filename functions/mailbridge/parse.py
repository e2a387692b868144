"""MIME → ParsedMessage: the stdlib parser with charset fallbacks, size caps and defects.

parse_message never raises: whatever is wrong with a message is recorded in `defects`, so a
malformed email becomes a ticket with notes instead of an exception that stops the poll.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime
import email
import email.parser
import email.utils
import hashlib
import html as html_lib
import io
import mimetypes
import re
import unicodedata
import urllib.parse
from email import errors, policy
from email.generator import BytesGenerator
from email.header import decode_header
from email.message import Message

from mailbridge import quotes

MAX_PARTS = 1000
MAX_DEPTH = 20
MAX_RECIPIENTS = 1000
MAX_DEFECTS = 50
MAX_REFERENCES = 200
# Header values are cut before the stdlib parses them: its structured-header parser is
# superlinear, and a 1 MB header line must not cost seconds.
MAX_HEADER_CHARS = 16_384
MAX_ADDRESS_HEADER_CHARS = 1_048_576
# Content-Type and friends are parsed several times per part; real ones are well under 1 KB.
MAX_MIME_HEADER_CHARS = 4_096
MAX_ADDRESS_ITEM_CHARS = 2_048
MAX_HEADERS_PER_PART = 1_000
# The `headers` mapping handed to rules and storage.
MAX_HEADER_NAMES = 200
MAX_VALUES_PER_HEADER = 50
MAX_STORED_HEADER_CHARS = 4_096
# HTML → text runs in pure Python; bigger HTML bodies are cut first.
MAX_HTML_TO_TEXT_CHARS = 2_000_000
# charset_normalizer only needs a sample to guess.
CHARSET_SAMPLE_BYTES = 65_536
# Below this many bytes a statistical guess is worse than assuming windows-1252.
MIN_GUESS_BYTES = 64
WESTERN_CHAOS_MARGIN = 0.05
MAX_FILENAME_CHARS = 200

_ADDRESS_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
     "resent-bcc", "resent-sender"}
)
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,998})>")
_CID_REFERENCE = re.compile(r"""\b(src|href|background)=(["'])cid:(.*?)\2""", re.IGNORECASE)
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CP1252_HOLES = re.compile(b"([\x81\x8d\x8f\x90\x9d]+)")
_STRUCTURE = re.compile(
    rb'^--([^\r\n]{1,200})|boundary[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))',
    re.IGNORECASE | re.MULTILINE,
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")

# Declared names that Python does not know, or that are better read as a superset.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "message/disposition-notification": ".txt",
}
_SANITIZE_URL_SCHEMES = None  # filled lazily from nh3 (import kept off the cold path)


@dataclasses.dataclass(frozen=True)
class Address:
    email: str
    name: str = ""


@dataclasses.dataclass
class Attachment:
    filename: str
    content_type: str
    size: int
    content_id: str | None
    sha256: str
    data: bytes = dataclasses.field(repr=False, default=b"")
    inline: bool = False
    omitted: str | None = None


@dataclasses.dataclass
class ParsedMessage:
    subject: str = ""
    from_: Address | None = None
    to: list[Address] = dataclasses.field(default_factory=list)
    cc: list[Address] = dataclasses.field(default_factory=list)
    reply_to: list[Address] = dataclasses.field(default_factory=list)
    date: str | None = None
    message_id: str = ""
    in_reply_to: list[str] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    text: str = ""
    full_text: str = ""
    html: str | None = None
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    headers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    defects: list[str] = dataclasses.field(default_factory=list)
    size: int = 0
    is_delivery_report: bool = False
    auto_submitted: str | None = None

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


class _CappedPolicy(policy.EmailPolicy):
    """policy.default that cuts oversized header values as the parser reads them.

    The cut has to happen here: the parser itself reads Content-Type of every part through
    the policy, and the structured-header parser is superlinear on a megabyte of parameters.
    A fresh instance per parse carries the list of headers it cut.
    """

    cut_headers: list | None = None

    def header_source_parse(self, sourcelines):
        name, value = super().header_source_parse(sourcelines)
        limit = _header_limit(name.lower())
        if len(value) > limit:
            if self.cut_headers is not None and len(self.cut_headers) < MAX_DEFECTS:
                self.cut_headers.append(f"{name} header longer than {limit} characters was cut")
            if name.lower() == "references":
                # The newest ids are at the end, and those are the ones threading needs.
                value = value[-limit:]
                value = value[value.find("<") :] if "<" in value else value
            else:
                value = value[:limit]
        return name, value


def _header_limit(lowered_name: str) -> int:
    if lowered_name in _ADDRESS_HEADERS:
        return MAX_ADDRESS_HEADER_CHARS
    if lowered_name == "references":
        return MAX_HEADER_CHARS * 4
    if lowered_name.startswith("content-"):
        return MAX_MIME_HEADER_CHARS
    return MAX_HEADER_CHARS


def _bound_structure(raw: bytes) -> tuple[bytes, list[str]]:
    """Keep the parser's work bounded before it starts.

    The stdlib parser checks every line against every open boundary, so a message nested
    thousands of levels deep costs quadratic time (and ends in RecursionError). Boundaries
    declared deeper than MAX_DEPTH are renamed (the part becomes an unsplit body) and the
    message is cut after MAX_PARTS part delimiters. Ordinary mail passes through untouched.
    """
    notes: list[str] = []
    if b"oundary" not in raw and b"OUNDARY" not in raw:
        return raw, notes
    stack: list[bytes] = []
    delimiters = 0
    mutable: bytearray | None = None
    for match in _STRUCTURE.finditer(raw):
        line, quoted, bare = match.groups()
        if line is None:
            boundary = (quoted or bare or b"").rstrip()
            if not boundary:
                continue
            if len(stack) >= MAX_DEPTH + 1:
                if mutable is None:
                    mutable = bytearray(raw)
                start = match.start()
                mutable[start : start + 8] = b"nobounds"
                if not notes:
                    notes.append(f"MIME nesting deeper than {MAX_DEPTH}; inner parts kept unsplit")
                continue
            stack.append(boundary)
            continue
        for index in range(len(stack) - 1, -1, -1):
            boundary = stack[index]
            if not line.startswith(boundary):
                continue
            rest = line[len(boundary) :].rstrip()
            if rest not in (b"", b"--"):
                continue
            delimiters += 1
            del stack[index + (0 if rest == b"--" else 1) :]
            break
        if delimiters > MAX_PARTS:
            notes.append(f"more than {MAX_PARTS} MIME parts; the message was cut after part {MAX_PARTS}")
            data = bytes(mutable) if mutable is not None else raw
            return data[: match.start()], notes
    return (bytes(mutable) if mutable is not None else raw), notes


class _Defects(list):
    """A defect list that ignores duplicates and stops growing at MAX_DEFECTS."""

    def add(self, text: str) -> None:
        text = _clean_line(text)[:300]
        if text in self:
            return
        if len(self) < MAX_DEFECTS:
            self.append(text)
        elif len(self) == MAX_DEFECTS:
            self.append("more defects not recorded")


# --------------------------------------------------------------------------- entry point


def parse_message(raw: bytes, *, max_attachment_bytes: int | None = None) -> ParsedMessage:
    """Parse one RFC 822 message. Never raises; problems end up in `defects`."""
    defects = _Defects()
    try:
        raw = _as_bytes(raw)
    except Exception as e:  # noqa: BLE001 - the contract is "never raises"
        defects.add(f"input is not bytes: {type(e).__name__}")
        raw = b""
    result = ParsedMessage(size=len(raw))
    try:
        bounded, notes = _bound_structure(raw)
    except Exception as e:  # noqa: BLE001
        bounded, notes = raw, [f"structure pre-scan failed: {type(e).__name__}"]
    for note in notes:
        defects.add(note)
    capped_policy = _CappedPolicy(cut_headers=[])
    try:
        message = email.message_from_bytes(bounded, policy=capped_policy)
        repaired = _repair_boundary(message, bounded)
        if repaired is not None:
            defects.add("declared MIME boundary not found in the body; the body's own delimiter was used")
            message = email.message_from_bytes(repaired, policy=capped_policy)
        _cap_part_headers(message, defects)
        _read_headers(message, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"headers could not be parsed: {type(e).__name__}")
        message = _parse_headers_only(bounded, result, defects)
    for note in capped_policy.cut_headers or ():
        defects.add(note)
    if message is not None:
        try:
            _read_body(message, result, defects, max_attachment_bytes)
        except Exception as e:  # noqa: BLE001
            defects.add(f"body could not be parsed: {type(e).__name__}")
            _read_body_fallback(bounded, result, defects)
    if not result.message_id:
        result.message_id = generated_message_id(raw)
        defects.add("missing Message-ID")
    result.defects = list(defects)
    return result


_DELIMITER_LINE = re.compile(rb"^--([ -~]{6,69}?)[ \t]*\r?\n(?=[A-Za-z-]+:)", re.MULTILINE)


def _repair_boundary(message: Message, raw: bytes) -> bytes | None:
    """A top-level multipart whose declared boundary never occurs (bulk mailers that randomize
    it twice) would end up as one unreadable part. When the body starts its parts with another
    delimiter line followed by headers, that delimiter is used instead."""
    if not any(isinstance(d, errors.StartBoundaryNotFoundDefect) for d in message.defects):
        return None
    declared = message.get_param("boundary")
    if not isinstance(declared, str) or not declared:
        return None
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = raw.find(b"\n\n")
    if head_end < 0:
        return None
    found = _DELIMITER_LINE.search(raw, head_end)
    declared_bytes = declared.encode("ascii", "replace")
    if found is None or declared_bytes not in raw[:head_end]:
        return None
    actual = found.group(1).rstrip(b"-") if found.group(1).endswith(b"--") else found.group(1)
    if b'"' in actual or b"\\" in actual:
        return None
    return raw[:head_end].replace(declared_bytes, actual, 1) + raw[head_end:]


def generated_message_id(raw: bytes) -> str:
    """The stable Message-ID given to a message that has none: a hash of its bytes."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailbridge.invalid>"


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


def _parse_headers_only(raw: bytes, result: ParsedMessage, defects: _Defects):
    """Second chance after the full parse failed: headers only (no MIME tree)."""
    try:
        message = email.parser.BytesHeaderParser(policy=_CappedPolicy()).parsebytes(raw)
        _cap_part_headers(message, defects)
        _read_headers(message, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"message could not be parsed: {type(e).__name__}")
        return None
    try:
        _read_body_fallback(raw, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"body could not be read: {type(e).__name__}")
    return None


def _read_body_fallback(raw: bytes, result: ParsedMessage, defects: _Defects) -> None:
    """Keep the raw body as text when the MIME structure is beyond repair."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    text, _ = decode_text(body[: MAX_HTML_TO_TEXT_CHARS], None)
    result.full_text = _normalize_text(text)
    result.text = quotes.strip_reply(result.full_text)


# --------------------------------------------------------------------------- headers


def _cap_part_headers(part: Message, defects: _Defects) -> None:
    """Drop header fields beyond MAX_HEADERS_PER_PART (values were cut by _CappedPolicy)."""
    headers = getattr(part, "_headers", None)
    if isinstance(headers, list) and len(headers) > MAX_HEADERS_PER_PART:
        defects.add(f"more than {MAX_HEADERS_PER_PART} header fields; the rest were dropped")
        del headers[MAX_HEADERS_PER_PART:]


def _raw_values(message: Message, name: str) -> list[str]:
    wanted = name.lower()
    values = []
    for header_name, value in message.raw_items():
        if str(header_name).lower() == wanted:
            values.append(_unfold(_unescape(str(value))))
    return values


def _read_headers(message: Message, result: ParsedMessage, defects: _Defects) -> None:
    result.headers = _header_map(message)
    subjects = _raw_values(message, "subject")
    result.subject = decode_words(subjects[0], defects, "Subject") if subjects else ""

    senders = _addresses(message, "from", defects, limit=1)
    result.from_ = senders[0] if senders else None
    if result.from_ is None:
        defects.add("missing or unreadable From")
    result.to = _addresses(message, "to", defects)
    result.cc = _addresses(message, "cc", defects)
    result.reply_to = _addresses(message, "reply-to", defects)

    dates = _raw_values(message, "date")
    if dates:
        result.date = _parse_date(dates[0], defects)
    else:
        defects.add("missing Date")

    message_ids = _ids(" ".join(_raw_values(message, "message-id")[:1]))
    result.message_id = message_ids[0] if message_ids else ""
    result.in_reply_to = _ids(" ".join(_raw_values(message, "in-reply-to")))[:MAX_REFERENCES]
    references = _ids(" ".join(_raw_values(message, "references")))
    if len(references) > MAX_REFERENCES:
        defects.add(f"more than {MAX_REFERENCES} References; kept the newest")
        references = references[-MAX_REFERENCES:]
    result.references = references

    auto = result.headers.get("auto-submitted")
    if auto:
        result.auto_submitted = auto[0].split(";")[0].strip().lower() or None


def _header_map(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = _clean_line(str(name)).lower()[:100]
        if key not in headers:
            if len(headers) >= MAX_HEADER_NAMES:
                continue
            headers[key] = []
        values = headers[key]
        if len(values) >= MAX_VALUES_PER_HEADER:
            continue
        text = _unfold(_unescape(str(value)))[:MAX_STORED_HEADER_CHARS]
        if "=?" in text:
            text = decode_words(text, None, key)
        values.append(_clean_line(text))
    return headers


def decode_words(value: str, defects: _Defects | None, name: str = "header") -> str:
    """Decode RFC 2047 encoded-words; bad charsets and bad encodings fall back, never raise."""
    value = _unfold(_unescape(value))[:MAX_HEADER_CHARS]
    if "=?" not in value:
        return _clean_line(value)
    try:
        chunks = decode_header(value)
        pieces = []
        for chunk, charset in chunks:
            if isinstance(chunk, str):
                pieces.append(chunk)
                continue
            text, fallback = decode_text(chunk, charset, guess=False)
            if fallback and defects is not None:
                defects.add(f"{name}: {fallback}")
            pieces.append(text)
        return _clean_line("".join(pieces))
    except Exception:  # noqa: BLE001 - malformed encoded-words: let the lenient parser try
        pass
    try:
        return _clean_line(str(policy.default.header_factory("x-mailbridge-text", value)))
    except Exception:  # noqa: BLE001
        if defects is not None:
            defects.add(f"{name}: undecodable encoded-words kept as is")
        return _clean_line(value)


def _addresses(message: Message, name: str, defects: _Defects, limit: int = MAX_RECIPIENTS) -> list[Address]:
    found: list[Address] = []
    seen: set[str] = set()
    label = name.title()
    for value in _raw_values(message, name):
        for item in _split_address_list(value):
            for address in _parse_address_item(name, item, defects, label):
                if address.email in seen:
                    continue
                if len(found) >= limit:
                    if limit > 1:
                        defects.add(f"more than {limit} {label} addresses; kept the first {limit}")
                    return found
                seen.add(address.email)
                found.append(address)
    return found


def _split_address_list(value: str):
    """Split an address list at top-level commas (quotes, <>, comments and groups respected).

    Parsing items one by one keeps the cost linear; the stdlib parser is superlinear on a
    header with thousands of addresses.
    """
    start = 0
    quoted = escaped = False
    angle = comment = 0
    in_group = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            continue
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif angle:
            continue
        elif char == ":" and not in_group:
            # "team: a@x, b@y;" — the group's members are listed one by one.
            prefix = value[start:index].strip()
            if prefix and not re.search(r"[@<]", prefix):
                in_group = True
                start = index + 1
        elif char == ";" and in_group:
            item = value[start:index].strip()
            if item:
                yield item
            in_group = False
            start = index + 1
        elif char == ",":
            item = value[start:index].strip()
            if item:
                yield item
            start = index + 1
    item = value[start:].strip().rstrip(";")
    if item:
        yield item


def _parse_address_item(name: str, item: str, defects: _Defects, label: str) -> list[Address]:
    item = item[:MAX_ADDRESS_ITEM_CHARS]
    parsed: list[tuple[str, str]] = []
    try:
        header = policy.default.header_factory(name, item)
        parsed = [(a.display_name or "", a.addr_spec or "") for a in header.addresses]
        if not parsed:
            raise ValueError("no address")
    except Exception:  # noqa: BLE001 - compat32's parser is more forgiving
        try:
            parsed = [(n, a) for n, a in email.utils.getaddresses([item])]
        except Exception:  # noqa: BLE001
            parsed = []
    addresses = []
    for display_name, addr_spec in parsed:
        address = _clean_line(_unescape(addr_spec)).strip().strip("<>").lower()[:320]
        if not address:
            continue
        if "@" not in address and name != "from":
            defects.add(f"{label}: address without domain ignored")
            continue
        display = decode_words(display_name, defects, label) if display_name else ""
        addresses.append(Address(email=address, name=display.strip().strip('"').strip()[:200]))
    if not addresses and item.strip():
        defects.add(f"{label}: unreadable address")
    return addresses


def _parse_date(value: str, defects: _Defects) -> str | None:
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


# --------------------------------------------------------------------------- body


def _read_body(message: Message, result: ParsedMessage, defects: _Defects, max_attachment_bytes) -> None:
    for defect in getattr(message, "defects", ()):
        defects.add(f"MIME: {type(defect).__name__}")
    plain: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    top_type = _content_type(message)
    report_type = (_param(message, "report-type") or "").lower()
    delivery_report = top_type == "multipart/report" and report_type in ("", "delivery-status")
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            defects.add(f"more than {MAX_PARTS} MIME parts; the rest were skipped")
            break
        if part is not message:
            _cap_part_headers(part, defects)
            for defect in getattr(part, "defects", ()):
                defects.add(f"MIME: {type(defect).__name__}")
        content_type = _content_type(part)
        if content_type == "message/delivery-status":
            delivery_report = True
        if content_type.startswith("message/") and part is not message:
            attachments.append(_attachment(part, content_type, _message_part_bytes(part, content_type),
                                           len(attachments) + 1, max_attachment_bytes, defects))
            continue
        if part.is_multipart():
            if depth >= MAX_DEPTH:
                defects.add(f"MIME nesting deeper than {MAX_DEPTH}; inner parts skipped")
                continue
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
            continue
        data = _payload_bytes(part, defects)
        filename = _filename(part, defects)
        disposition = _disposition(part)
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text, fallback = decode_text(data, _charset(part))
            if fallback:
                defects.add(f"{content_type} part: {fallback}")
            (plain if content_type == "text/plain" else html_parts).append(text)
            continue
        attachments.append(_attachment(part, content_type, data, len(attachments) + 1,
                                       max_attachment_bytes, defects, filename=filename))

    if "x-failed-recipients" in result.headers:
        delivery_report = True
    result.is_delivery_report = delivery_report
    if html_parts:
        result.html = sanitize_html("\n".join(html_parts))
        referenced = cid_references(result.html)
        for attachment in attachments:
            if attachment.content_id and (
                attachment.content_id in referenced or attachment.content_id.lower() in referenced
            ):
                attachment.inline = True
    full_text = "\n".join(plain)
    if not full_text.strip() and result.html:
        full_text = html_to_text(result.html, defects)
    result.full_text = _normalize_text(full_text)
    result.text = quotes.strip_reply(result.full_text)
    result.attachments = attachments


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value) if value is not None else None


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = _param(part, "charset")
    return _clean_line(_unescape(charset)).lower() if charset else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def _payload_bytes(part: Message, defects: _Defects) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as e:  # noqa: BLE001
        defects.add(f"undecodable part body: {type(e).__name__}")
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _message_part_bytes(part: Message, content_type: str) -> bytes:
    """The bytes of a message/* part's body: a nested message is kept whole, as one file."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for child in payload:
            if isinstance(child, Message):
                chunks.append(_generate(child))
        separator = b"" if content_type in ("message/rfc822", "message/global") else b"\r\n"
        return separator.join(chunks)
    if isinstance(payload, str):
        return part.get_payload(decode=True) or b""
    return b""


def _generate(message: Message) -> bytes:
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=policy.compat32.clone(linesep="\r\n")).flatten(message)
    return buffer.getvalue()


def _filename(part: Message, defects: _Defects) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = _param(part, "filename") or _param(part, "name")
        defects.add("unreadable attachment filename parameter")
    if not name:
        return None
    return safe_filename(name, defects)


def safe_filename(name: str, defects: _Defects | None = None) -> str | None:
    """A filename with no directories or control/format characters; None when nothing is left."""
    name = str(name)
    if "=?" in name:
        name = decode_words(name, defects, "filename")
    name = _unescape(name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".").strip()
    if not name:
        return None
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def _generated_filename(content_type: str, index: int) -> str:
    if content_type in ("message/rfc822", "message/global"):
        return "message.eml"
    if content_type == "message/delivery-status":
        return "delivery-status.txt"
    if content_type == "text/rfc822-headers":
        return "headers.txt"
    extension = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=True) or ".bin"
    return f"attachment-{index}{extension}"


def _attachment(part, content_type, data, index, max_attachment_bytes, defects, filename=None) -> Attachment:
    if filename is None:
        filename = _filename(part, defects)
    content_id = None
    try:
        raw_id = part.get("content-id")
    except Exception:  # noqa: BLE001
        raw_id = None
    if raw_id:
        content_id = _clean_line(_unescape(str(raw_id))).strip().strip("<>").strip()[:998] or None
    size = len(data)
    omitted = None
    if max_attachment_bytes is not None and size > max_attachment_bytes:
        omitted = f"larger than {max_attachment_bytes} bytes"
    attachment = Attachment(
        filename=filename or _generated_filename(content_type, index),
        content_type=content_type,
        size=size,
        content_id=content_id,
        sha256=hashlib.sha256(data).hexdigest(),
        data=b"" if omitted else data,
        inline=False,
        omitted=omitted,
    )
    if omitted:
        defects.add(f"attachment {attachment.filename} omitted: {omitted}")
    return attachment


# --------------------------------------------------------------------------- text and HTML


def decode_text(data: bytes, declared: str | None, *, guess: bool = True) -> tuple[str, str | None]:
    """Decode body bytes. Returns (text, note) where note says which fallback was needed.

    Order: the declared charset for 7-bit data (ISO-2022-JP is 7-bit), UTF-8 (strict; bytes
    that pass are almost surely UTF-8 whatever the label says), the declared charset, a
    charset_normalizer guess (only for data long enough to guess from), and finally
    windows-1252, read leniently so it never fails.
    """
    declared_name = (declared or "").strip().strip('"').lower() or None
    codec = None
    unknown = False
    if declared_name:
        codec = _codec(declared_name)
        unknown = codec is None
    if not data:
        return "", None
    is_ascii = data.isascii()
    if is_ascii and codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        text = data.decode("utf-8")
        if is_ascii or codec in (None, "utf-8") or unknown:
            note = f"unknown charset {declared_name!r}, read as utf-8" if unknown else None
            if declared_name is None and not is_ascii:
                note = "no charset declared, read as utf-8"
            return text, note
        return text, f"declared {declared_name} but content is utf-8"
    except UnicodeDecodeError:
        pass
    if codec and codec != "utf-8":
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    else:
        # UTF-8 with a stray broken byte (a cut sequence, a mangled quoted-printable soft break):
        # guessing another charset for the whole text would turn every letter into mojibake.
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad and sum(1 for ch in text if ch > "\x7f") >= 11 * bad:
            what = "no charset declared" if declared_name is None else f"charset {declared_name}"
            return text, f"{what}: {bad} invalid UTF-8 sequence(s) replaced"
    what = "no charset declared" if declared_name is None else (
        f"unknown charset {declared_name!r}" if unknown else f"declared {declared_name} is wrong")
    guessed = _guess_charset(data) if guess and len(data) >= MIN_GUESS_BYTES else None
    if guessed:
        try:
            return data.decode(guessed, errors="replace"), f"{what}, guessed {guessed}"
        except (LookupError, ValueError):
            pass
    return _decode_cp1252(data), f"{what}, read as windows-1252"


def _decode_cp1252(data: bytes) -> str:
    """windows-1252 where defined, Latin-1 for its five holes: never fails, never replaces."""
    return "".join(
        chunk.decode("cp1252") if index % 2 == 0 else chunk.decode("latin-1")
        for index, chunk in enumerate(_CP1252_HOLES.split(data))
    )


def _codec(name: str) -> str | None:
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None


def _guess_charset(data: bytes) -> str | None:
    """charset_normalizer's guess, biased to windows-1252 when that reads about as well.

    On short texts the detector often ranks a Baltic or Central European code page first for
    what is, far more often in mail, windows-1252.
    """
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data[:CHARSET_SAMPLE_BYTES]))
    except Exception:  # noqa: BLE001
        return None
    usable = [
        match for match in matches
        if not (match.encoding.startswith(("utf_16", "utf_32")) and b"\x00" not in data)
    ]
    if not usable:
        return None
    best = usable[0]
    for match in usable:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + WESTERN_CHAOS_MARGIN:
            return "cp1252"
    return best.encoding


def sanitize_html(html: str) -> str:
    """HTML safe to show: no scripts, styles, event handlers or javascript: URLs; cid: kept."""
    import nh3

    global _SANITIZE_URL_SCHEMES
    if _SANITIZE_URL_SCHEMES is None:
        _SANITIZE_URL_SCHEMES = set(nh3.ALLOWED_URL_SCHEMES) | {"cid"}
    html = _clean_text(html)
    return nh3.clean(
        html,
        clean_content_tags={"script", "style", "title"},
        url_schemes=_SANITIZE_URL_SCHEMES,
    )


def cid_references(html: str) -> set[str]:
    """Content ids that `cid:` URLs in the HTML point at (URL-decoded, RFC 2392)."""
    found = set()
    for _, _, reference in _CID_REFERENCE.findall(html or ""):
        content_id = urllib.parse.unquote(html_lib.unescape(reference)).strip().strip("<>")
        found.add(content_id)
        found.add(content_id.lower())
    return found


def resolve_cid(html: str, mapping: dict[str, str]) -> str:
    """Rewrite `cid:` URLs to the URLs the caller stored the inline attachments at.

    Content ids without an entry in mapping are left as they are.
    """
    lowered = {str(key).strip("<>").lower(): value for key, value in mapping.items()}

    def replace(match: re.Match) -> str:
        attribute, quote, reference = match.groups()
        content_id = urllib.parse.unquote(html_lib.unescape(reference)).strip().strip("<>")
        url = mapping.get(content_id) or lowered.get(content_id.lower())
        if url is None:
            return match.group(0)
        return f"{attribute}={quote}{html_lib.escape(url, quote=True)}{quote}"

    return _CID_REFERENCE.sub(replace, html or "")


def html_to_text(html: str, defects: _Defects | None = None) -> str:
    if len(html) > MAX_HTML_TO_TEXT_CHARS:
        if defects is not None:
            defects.add(f"HTML longer than {MAX_HTML_TO_TEXT_CHARS} characters was cut for the text")
        html = html[:MAX_HTML_TO_TEXT_CHARS]
    try:
        from inscriptis import get_text

        return get_text(html)
    except Exception as e:  # noqa: BLE001
        if defects is not None:
            defects.add(f"HTML could not be converted to text: {type(e).__name__}")
        return re.sub(r"<[^>]*>", " ", html)


# --------------------------------------------------------------------------- small helpers


def _unescape(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes: read them as UTF-8, else cp1252."""
    if not _SURROGATES.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", value)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _unfold(value: str) -> str:
    return _FOLDING.sub("", value)


def _clean_line(value: str) -> str:
    """One line of text: no control characters, no lone surrogates."""
    value = _SURROGATES.sub("\ufffd", str(value))
    value = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL.sub("", value).strip()


def _clean_text(value: str) -> str:
    return _CONTROL.sub("", _SURROGATES.sub("\ufffd", value).replace("\r\n", "\n").replace("\r", "\n"))


def _normalize_text(value: str) -> str:
    return _clean_text(value).strip()
