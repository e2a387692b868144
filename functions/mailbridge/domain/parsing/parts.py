"""One MIME part read without raising: its type, parameters, charset, disposition, decoded
bytes, file name, and the Attachment it becomes (bodies.py decides what each part is)."""

from __future__ import annotations

import binascii
import email.utils
import hashlib
import io
import mimetypes
import re
import unicodedata
from collections.abc import Callable
from email import policy
from email.generator import BytesGenerator
from email.message import Message

from .charsets import decode_words, unescape
from .limits import MAX_FILENAME_CHARS
from .model import Attachment, Defects, clean_line

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



def part_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value) if value is not None else None


def part_charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = param(part, "charset")
    return clean_line(unescape(charset)).lower() if charset else None


def part_disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def part_bytes(part: Message, defects: Defects) -> bytes:
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


def message_part_bytes(part: Message, content_type: str) -> bytes:
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


def looks_binary(data: bytes) -> bool:
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


# Given a part and its raw file name (surrogate escapes), the charset to read that name in.
RawNameCharset = Callable[[Message, str], str | None]


def part_filename(part: Message, defects: Defects, raw_name_charset: RawNameCharset | None = None) -> str | None:
    """The part's file name, made safe. Raw 8-bit bytes in it are read in the charset
    raw_name_charset gives (bodies.py: the part's charset, else the message's, chosen once per
    message), or else the part's own."""
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = param(part, "filename") or param(part, "name")
        defects.add("unreadable attachment filename parameter")
    if not name:
        return None
    charset = None
    if "\ufffd" in name:
        name = _raw_filename(part) or name
        charset = raw_name_charset(part, name) if raw_name_charset else part_charset(part)
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


def attachment(part: Message, content_type: str, data: bytes, index: int, max_attachment_bytes: int | None,
               defects: Defects, filename: str | None) -> Attachment:
    """The Attachment a part becomes; `index` numbers the generated name of a nameless part."""
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
