"""RFC 822 parsing for the fake Gmail: header values, snippets and Gmail's MessagePart tree.

Gmail exposes a stored message in four formats; everything here derives those views from the
raw bytes, so the raw bytes stay the single source of truth.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.errors
import email.header
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

# Parts without a filename are inlined in format=full up to this decoded size; larger ones
# (and every part with a filename, as Gmail does) are served through attachments.get.
INLINE_BODY_LIMIT = 64 * 1024
SNIPPET_LENGTH = 200

# Reply/forward prefixes Gmail ignores when it compares subjects (English, German, Nordic,
# Dutch, French, Italian, Spanish, Portuguese...), with an optional counter such as "Re[2]:".
_SUBJECT_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|wg|sv|vs|vl|antw|doorst|tr|rif|r|enc|res|rv)\s*(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_TAG = re.compile(r"<[^>]*>")
_STYLE_OR_SCRIPT = re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def b64url(data: bytes) -> str:
    """Gmail's byte encoding: URL-safe base64 (with padding, which Python's decoder needs)."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode URL-safe or standard base64, tolerating missing padding like Google does."""
    text = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_header_value(value: str) -> str:
    """Unfold a header and decode RFC 2047 encoded words, as Gmail shows header values."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - compat32 Header with an unknown charset
        text = value.encode() if hasattr(value, "encode") else ""
        text = text if isinstance(text, str) else ""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", text).strip()
    if "=?" not in unfolded:
        return unfolded
    try:
        return str(email.header.make_header(email.header.decode_header(unfolded)))
    except (ValueError, LookupError, UnicodeDecodeError, binascii.Error, email.errors.MessageError):
        return unfolded


def normalize_subject(subject: str) -> str:
    """The subject Gmail compares when threading: reply/forward prefixes stripped, case folded."""
    return " ".join(_SUBJECT_PREFIX.sub("", subject or "").split()).casefold()


def header_block_end(raw: bytes) -> int:
    """Index of the blank line ending the header block (len(raw) when there is none)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def newline_of(raw: bytes) -> bytes:
    """The line ending the message's headers use, so added headers match them."""
    end = header_block_end(raw)
    return b"\r\n" if b"\r\n" in raw[:end + 2] else b"\n"


def without_header(raw: bytes, name: str) -> bytes:
    """The raw message with every occurrence of header `name` (and its folded lines) removed;
    the body and the other headers are left byte for byte."""
    end = header_block_end(raw)
    lines = raw[:end].splitlines(keepends=True)
    wanted = name.lower().encode() + b":"
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.lower().startswith(wanted)
        if not dropping:
            kept.append(line)
    head = b"".join(kept)
    if head and not head.endswith(b"\n"):
        head += newline_of(raw)
    rest = raw[end:]
    rest = rest[2:] if rest.startswith(b"\r\n") else rest[1:] if rest.startswith(b"\n") else rest
    return head + rest


def prepend_header(raw: bytes, name: str, value: str) -> bytes:
    """Add a header on top, as a relay does (value may be folded with the message's newline)."""
    newline = newline_of(raw)
    return f"{name}: {value}".encode().replace(b"\n", newline) + newline + raw


def message_ids_in(value: str | None) -> list[str]:
    """Every ``<id@host>`` token in a Message-ID / In-Reply-To / References value."""
    return _MESSAGE_ID.findall(str(value) if value is not None else "")


def addresses_in(value: str | None) -> list[str]:
    """Lower-cased addresses of an address header (To, From, ...)."""
    return [addr.lower() for _, addr in email.utils.getaddresses([value or ""]) if addr]


def _decode_text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _html_to_text(markup: str) -> str:
    return html.unescape(_TAG.sub(" ", _STYLE_OR_SCRIPT.sub(" ", markup)))


def _escape_snippet(text: str) -> str:
    # Gmail escapes snippets as HTML, using numeric references for apostrophes.
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#39;")
    )


@dataclass
class ParsedMessage:
    """What the fake needs to know about a message to search, thread and render it."""

    headers: list[tuple[str, str]]
    subject: str
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_addresses: list[str]
    to_addresses: list[str]
    text: str
    snippet: str
    has_attachment: bool
    content_type: str = "text/plain"
    date_ms: int | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def message_tree(raw: bytes) -> Message:
    """The stdlib's lenient parse of raw bytes (compat32 keeps header values as sent)."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def parse(raw: bytes) -> ParsedMessage:
    """What search, threading and snippets need. Gmail accepts any bytes, so a message the
    lenient parse cannot read still gets a (mostly empty) summary instead of an error."""
    try:
        return _parse(raw)
    except Exception:  # noqa: BLE001 - hostile input must not make the fake refuse mail
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        headers = []
        for line in head.splitlines():
            name, sep, value = line.partition(":")
            if sep and name and not name[0].isspace():
                headers.append((name.strip(), value.strip()))
        lookup = {k.lower(): v for k, v in reversed(headers)}
        ids = message_ids_in(lookup.get("message-id"))
        return ParsedMessage(
            headers=headers, subject=lookup.get("subject", ""), message_id=ids[0] if ids else None,
            in_reply_to=message_ids_in(lookup.get("in-reply-to")), references=message_ids_in(lookup.get("references")),
            from_addresses=[], to_addresses=[], text="", snippet="", has_attachment=False)


def _parse(raw: bytes) -> ParsedMessage:
    tree = message_tree(raw)
    headers = [(name, decode_header_value(value)) for name, value in tree.items()]

    def first(name: str) -> str | None:
        value = tree.get(name)
        return decode_header_value(value) if value is not None else None

    text_parts: list[str] = []
    html_parts: list[str] = []
    has_attachment = False
    for part in tree.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = (part.get("Content-Disposition") or "").lower()
        if filename or disposition.startswith("attachment"):
            has_attachment = True
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            text_parts.append(_decode_text(part))
        elif content_type == "text/html":
            html_parts.append(_html_to_text(_decode_text(part)))
    text = "\n".join(text_parts) if text_parts else "\n".join(html_parts)
    snippet = _escape_snippet(" ".join(text.split())[:SNIPPET_LENGTH])

    date_ms = None
    date_header = tree.get("Date")
    if date_header:
        try:
            parsed_date = email.utils.parsedate_to_datetime(str(date_header))
            date_ms = int(parsed_date.timestamp() * 1000)
        except (TypeError, ValueError, IndexError, OverflowError):
            date_ms = None

    message_ids = message_ids_in(tree.get("Message-ID"))
    return ParsedMessage(
        headers=headers,
        subject=first("Subject") or "",
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=message_ids_in(tree.get("In-Reply-To")),
        references=message_ids_in(tree.get("References")),
        from_addresses=addresses_in(first("From")),
        to_addresses=addresses_in(
            ", ".join(filter(None, (first("To"), first("Cc"), first("Bcc"))))
        ),
        text=text,
        snippet=snippet,
        has_attachment=has_attachment,
        content_type=tree.get_content_type(),
        date_ms=date_ms,
    )


def _part_headers(part: Message) -> list[dict[str, str]]:
    return [{"name": name, "value": decode_header_value(value)} for name, value in part.items()]


def build_payload(
    tree: Message, message_id: str, part_id: str = ""
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Gmail's MessagePart tree for format=full plus the bodies served by attachments.get.

    Returns (payload, attachments) where attachments maps attachmentId -> decoded bytes.
    """
    attachments: dict[str, bytes] = {}

    def child_id(index: int) -> str:
        return str(index) if part_id == "" else f"{part_id}.{index}"

    try:
        filename = str(tree.get_filename() or "")
    except Exception:  # noqa: BLE001 - hostile RFC 2231 params (CharsetError is no ValueError)
        filename = ""
    part: dict[str, Any] = {
        "partId": part_id,
        "mimeType": tree.get_content_type(),
        "filename": decode_header_value(filename) if filename else "",
        "headers": _part_headers(tree),
    }
    if tree.is_multipart():
        part["body"] = {"size": 0}
        children = []
        for index, child in enumerate(tree.get_payload()):
            # A message/rfc822 part has the enclosed message as its single child.
            child_payload, child_attachments = build_payload(child, message_id, child_id(index))
            children.append(child_payload)
            attachments.update(child_attachments)
        part["parts"] = children
        return part, attachments

    try:
        data = tree.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - undecodable body: Gmail still stores the message
        data = b""
    if data is None:
        data = b""
    body: dict[str, Any] = {"size": len(data)}
    if filename or len(data) > INLINE_BODY_LIMIT:
        attachment_id = attachment_id_for(message_id, part_id)
        body["attachmentId"] = attachment_id
        attachments[attachment_id] = data
    elif data:
        body["data"] = b64url(data)
    part["body"] = body
    return part, attachments


def attachment_id_for(message_id: str, part_id: str) -> str:
    # Deterministic (unlike Gmail's, which change per request) but equally opaque to clients.
    return "ANGjdJ" + b64url(f"{message_id}:{part_id or 'root'}".encode()).rstrip("=")
