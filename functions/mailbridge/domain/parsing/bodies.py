"""Bodies: walk the MIME tree into text, HTML and attachments; repair what mailers break."""

from __future__ import annotations

import binascii
import email.utils
import hashlib
import io
import mimetypes
import re
import unicodedata
from email import errors, policy
from email.generator import BytesGenerator
from email.message import Message

from mailbridge.domain import quotes

from .charsets import decode_text, decode_words, unescape
from .headers import declared_charset
from .html import cid_references, html_text_without_markup, html_to_text, sanitize_html
from .limits import (
    MAX_DEPTH, MAX_FILENAME_CHARS, MAX_HTML_TO_TEXT_CHARS, MAX_PARTS, MAX_TEXT_OVER_BUDGET, Budget, cap_part_headers,
)
from .model import Attachment, Defects, ParsedMessage, clean_line, normalize_text

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


_DELIMITER_LINE = re.compile(rb"^--([ -~]{6,69}?)[ \t]*\r?\n(?=[A-Za-z-]+:)", re.MULTILINE)


def repair_boundary(message: Message, raw: bytes) -> bytes | None:
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


def read_body_fallback(raw: bytes, result: ParsedMessage, defects: Defects) -> None:
    """Keep the raw body as text when the MIME structure is beyond repair."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    text, _ = decode_text(body[: MAX_HTML_TO_TEXT_CHARS], None)
    result.full_text = normalize_text(text)
    result.text = quotes.strip_reply(result.full_text)


def read_body(message: Message, result: ParsedMessage, defects: Defects, max_attachment_bytes,
              budget: Budget | None = None) -> None:
    budget = budget or Budget()
    for defect in getattr(message, "defects", ()):
        defects.add(f"MIME: {type(defect).__name__}")
    plain: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    named_text: list[tuple[str, bytes, str | None]] = []
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
            cap_part_headers(part, defects)
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
        filename = _filename(part, defects, message)
        disposition = _disposition(part)
        if content_type == "application/plain":
            content_type = "text/plain"  # a type some mailers invent for plain text
        if content_type.startswith("multipart/"):
            # Declared multipart, but no delimiter splits it: a container is never an attachment.
            if _looks_binary(data):
                defects.add(f"{content_type} without any part; its binary body was kept as a file")
                content_type = "application/octet-stream"
            else:
                defects.add(f"{content_type} without any part; its body was read as text")
                content_type = "text/plain"
        shown_file = filename and disposition in ("inline", None) and content_type in ("text/plain", "text/html")
        if shown_file and disposition is None:
            # Named, without a disposition: a file, shown only if the message has no other text.
            named_text.append((content_type, data, _charset(part)))
            shown_file = False
        if shown_file:
            # RFC 2183: an inline part is displayed; a named one is also kept as the file it names.
            attachments.append(_attachment(part, content_type, data, len(attachments) + 1,
                                           max_attachment_bytes, defects, filename=filename))
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and (not filename or shown_file):
            over_budget = budget.exhausted("reading the text parts")
            if over_budget:
                data = data[:MAX_TEXT_OVER_BUDGET]
            text, fallback = decode_text(data, _charset(part), guess=not over_budget)
            if fallback:
                defects.add(f"{content_type} part: {fallback}")
            (plain if content_type == "text/plain" else html_parts).append(text)
            continue
        attachments.append(_attachment(part, content_type, data, len(attachments) + 1,
                                       max_attachment_bytes, defects, filename=filename))

    if not plain and not html_parts and named_text:
        defects.add("no text part; the text files named without a disposition were shown")
        for content_type, data, charset in named_text:
            text, _fallback = decode_text(data[:MAX_TEXT_OVER_BUDGET], charset, guess=True)
            (plain if content_type == "text/plain" else html_parts).append(text)
    if "x-failed-recipients" in result.headers:
        delivery_report = True
    result.is_delivery_report = delivery_report
    if html_parts:
        result.html = sanitize_html("\n".join(html_parts), defects)
        referenced = cid_references(result.html)
        for attachment in attachments:
            if attachment.content_id and (
                attachment.content_id in referenced or attachment.content_id.lower() in referenced
            ):
                attachment.inline = True
    result.attachments = attachments
    full_text = "\n".join(plain)
    if result.html and not budget.exhausted("converting HTML to text"):
        if not full_text.strip():
            full_text = html_to_text(result.html, defects)
        elif len(full_text.split()) <= STUB_MAX_WORDS:
            html_text = html_to_text(result.html, defects)
            if _is_stub(full_text, len(html_text.split())):
                defects.add("the plain-text part is a stub of the HTML part; the HTML text was shown")
                full_text = html_text
    elif result.html and not full_text.strip():
        full_text = html_text_without_markup(result.html[:MAX_TEXT_OVER_BUDGET])
    if budget.exhausted("stripping quoted replies"):
        defects.add(f"parsing took more than its CPU budget of {budget.seconds:g} s "
                    f"(at {budget.spent_at}); the text was cut and not stripped of quotes")
        result.full_text = normalize_text(full_text[:MAX_TEXT_OVER_BUDGET])
        result.text = result.full_text
        return
    result.full_text = normalize_text(full_text)
    result.text = quotes.strip_reply(result.full_text)


# A plain part with at most this many words is a stub of the HTML part when it says so ("view
# this message in your browser") or has next to nothing, and the HTML text has STUB_HTML_RATIO
# times as many words (at least STUB_MIN_HTML_WORDS for a plain part of a few words).
STUB_MAX_WORDS = 40
STUB_HTML_RATIO = 4
STUB_MIN_HTML_WORDS = 50
_STUB_PHRASES = re.compile(
    r"view (this|the|it) (message|e-?mail|newsletter|online)|in (a|your) (web )?browser|html[- ](version|e-?mail)"
    r"|does not support html|im browser|dans (votre|un) navigateur|en (tu|su|el) navegador|no navegador",
    re.IGNORECASE,
)


def _is_stub(plain: str, html_words: int) -> bool:
    words = len(plain.split())
    if html_words < STUB_HTML_RATIO * max(1, words):
        return False
    return bool(_STUB_PHRASES.search(plain)) or (words <= 3 and html_words >= STUB_MIN_HTML_WORDS)


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
    return clean_line(unescape(charset)).lower() if charset else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def _payload_bytes(part: Message, defects: Defects) -> bytes:
    encoding = raw_header(part, "content-transfer-encoding").strip().lower()
    if encoding in _UUENCODINGS:
        payload = part.get_payload()
        if isinstance(payload, str) and not _UU_BEGIN.search(payload):
            defects.add("uuencoded part without a begin line was decoded line by line")
            return _uudecode_lines(payload)
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


def _looks_binary(data: bytes) -> bool:
    """NUL bytes, or many control bytes, in the first 4 KB: not text in any charset mail uses."""
    sample = data[:4096]
    controls = sum(1 for byte in sample if byte < 9 or 13 < byte < 32)
    return b"\x00" in sample or controls * 20 > len(sample)


_UUENCODINGS = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} ", re.MULTILINE)


def _uudecode_lines(payload: str) -> bytes:
    chunks = []
    for line in payload.encode("ascii", "replace").splitlines():
        line = line.rstrip(b"\r")
        if not line or line in (b"`", b"end"):
            continue
        try:
            chunks.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Some encoders write lines one byte short (as the stdlib's uu handling allows).
            nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                chunks.append(binascii.a2b_uu(line[:nbytes]))
            except binascii.Error:
                continue
    return b"".join(chunks)


def raw_header(part: Message, name: str) -> str:
    """A header's first value as written (no structured parse, which costs far more)."""
    for header_name, value in part.raw_items():
        if str(header_name).lower() == name:
            return str(value)
    return ""


def _filename(part: Message, defects: Defects, message: Message | None = None) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = _param(part, "filename") or _param(part, "name")
        defects.add("unreadable attachment filename parameter")
    if not name:
        return None
    charset = None
    if "\ufffd" in name:
        # Raw 8-bit bytes: read them in the part's charset, else the message's.
        name = _raw_filename(part) or name
        charset = _charset(part) or (declared_charset(message) if message is not None else None)
    return safe_filename(name, defects, charset)


_RAW_FILENAME = re.compile(r'\b(?:file)?name[ \t]*=[ \t]*(?:"([^"\r\n]{1,1000})"|([^\s;"]{1,1000}))', re.IGNORECASE)


def _raw_filename(part: Message) -> str | None:
    """The filename parameter as the message wrote it (raw 8-bit bytes still surrogate
    escapes, for unescape to read in the declared charset); the stdlib has already turned
    them into U+FFFD."""
    for header_name in ("content-disposition", "content-type"):
        for name, value in part.raw_items():
            if str(name).lower() == header_name:
                found = _RAW_FILENAME.search(str(value))
                if found:
                    return found.group(1) or found.group(2)
    return None


def safe_filename(name: str, defects: Defects | None = None, charset: str | None = None) -> str | None:
    """A filename with no directories or control/format characters; None when nothing is left."""
    name = str(name)
    if "=?" in name:
        name = decode_words(name, defects, "filename")
    name = unescape(name, charset, defects, "filename").replace("\\", "/").split("/")[-1]
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
        content_id = clean_line(unescape(str(raw_id))).strip().strip("<>").strip()[:998] or None
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
