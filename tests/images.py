"""Real images and a real multipart/related message for the inline-image tests (no imaging
library: a PNG is a few zlib-compressed rows)."""

from __future__ import annotations

from email.message import EmailMessage
from datetime import datetime, timezone
from email.utils import format_datetime, make_msgid
import struct
import zlib


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def related_message(sender: str, to: str, subject: str, remote_url: str | None = None) -> bytes:
    """multipart/alternative (text, multipart/related (html, a screenshot, a signature logo, a
    1x1 beacon)), as mail clients send a pasted screenshot."""
    screenshot, logo, beacon = (make_msgid(domain="customer.example")[1:-1] for _ in range(3))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = make_msgid(domain="customer.example")
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message.set_content("See the screenshot below.")
    remote = f'<p><img src="{remote_url}" width="300" height="80" alt="remote banner"></p>' if remote_url else ""
    message.add_alternative(
        f'<p>See the screenshot:</p><p><img src="cid:{screenshot}" alt="screenshot of the error"></p>'
        f'{remote}<p>Regards<br><img src="cid:{logo}" alt="ACME logo"></p><img src="cid:{beacon}" alt="">',
        subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(png(320, 200), maintype="image", subtype="png", cid=f"<{screenshot}>",
                          filename="screenshot.png", disposition="inline")
    html_part.add_related(png(40, 20, (20, 20, 160)), maintype="image", subtype="png", cid=f"<{logo}>",
                          filename="logo.png", disposition="inline")
    html_part.add_related(png(1, 1), maintype="image", subtype="png", cid=f"<{beacon}>", filename="b.png", disposition="inline")
    return bytes(message)
