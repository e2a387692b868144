"""Helpers that build raw RFC 822 messages in code (used by the corpus and by tests)."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage

DEFAULT_DATE = "Sat, 28 Nov 2026 10:00:00 +0000"
CUSTOMER = "Alice Example <alice@customer.example>"
SUPPORT = "Support <support@helpdesk.example>"
# A 1×1 transparent PNG: a realistic inline image in a few bytes.
PNG_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def make_message(
    from_: str = CUSTOMER,
    to: str | list[str] = SUPPORT,
    subject: str = "Printer on floor 3 is broken",
    body: str | None = "Hello,\n\nthe printer on floor 3 is broken.\n\nAlice\n",
    *,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    inline_images: list[tuple[str, str, bytes]] = (),
    message_id: str | None = "",
    date: str | None = DEFAULT_DATE,
    cc: str | list[str] | None = None,
    **headers: str,
) -> bytes:
    """One message as CRLF bytes.

    attachments: (filename, content type, data), data being raw message bytes for
    message/rfc822; inline_images: (content id without <>,
    content type, data), referenced from `html` as `cid:<content id>`. message_id "" derives a
    stable id from the subject; None leaves the header out. Extra headers come as keyword
    arguments with underscores for dashes (in_reply_to="<a@b>", x_autoreply="yes").
    """
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = from_
    message["To"] = ", ".join(to) if isinstance(to, list) else to
    if cc:
        message["Cc"] = ", ".join(cc) if isinstance(cc, list) else cc
    message["Subject"] = subject
    if date is not None:
        message["Date"] = date
    if message_id == "":
        slug = "".join(ch if ch.isalnum() else "-" for ch in subject.lower())[:40].strip("-") or "message"
        message_id = f"<{slug}.{abs(hash_text(from_ + subject + (body or '')))}@corpus.example>"
    if message_id is not None:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value

    if body is not None:
        message.set_content(body)
    if html is not None:
        if body is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    if inline_images:
        html_part = message.get_body(preferencelist=("html",))
        for content_id, content_type, data in inline_images:
            maintype, subtype = content_type.split("/", 1)
            html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{content_id}>",
                                  disposition="inline")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        if maintype == "message":
            inner = data if isinstance(data, EmailMessage) else message_from_bytes(data, policy=policy.SMTP)
            message.add_attachment(inner, subtype=subtype, filename=filename)
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def hash_text(text: str) -> int:
    """A small stable hash (Python's hash() is salted per process)."""
    value = 2166136261
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def crlf(text: str | bytes) -> bytes:
    """Hand-written messages: write with \\n, get RFC 822 CRLF line ends."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
