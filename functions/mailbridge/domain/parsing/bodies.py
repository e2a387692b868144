"""Bodies: walk the MIME tree into text, HTML and attachments; repair what mailers break."""

from __future__ import annotations

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
from .html import cid_references, html_to_text, sanitize_html
from .limits import MAX_DEPTH, MAX_FILENAME_CHARS, MAX_HTML_TO_TEXT_CHARS, MAX_PARTS, cap_part_headers
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


def read_body(message: Message, result: ParsedMessage, defects: Defects, max_attachment_bytes) -> None:
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
    result.full_text = normalize_text(full_text)
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
    return clean_line(unescape(charset)).lower() if charset else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def _payload_bytes(part: Message, defects: Defects) -> bytes:
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


def _filename(part: Message, defects: Defects) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = _param(part, "filename") or _param(part, "name")
        defects.add("unreadable attachment filename parameter")
    if not name:
        return None
    return safe_filename(name, defects)


def safe_filename(name: str, defects: Defects | None = None) -> str | None:
    """A filename with no directories or control/format characters; None when nothing is left."""
    name = str(name)
    if "=?" in name:
        name = decode_words(name, defects, "filename")
    name = unescape(name).replace("\\", "/").split("/")[-1]
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
