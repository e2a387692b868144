"""Images in a message's HTML as the ticket page frames it (docs/images.md): inline parts
(`cid:`) pointed at our own attachment route, tracking-sized images dropped, small signature
images folded away, remote images left to the frame's policy (blocked unless the agent asks).

Pure: the caller gives each inline part's URL and, when it knows them, its pixel size
(`dimensions` reads it from the first bytes of a PNG, GIF, JPEG or WebP).
"""

from __future__ import annotations

import html as html_lib
import re
import struct
import urllib.parse

TRACKING_MAX_SIDE = 2      # 1x1 and 2x2 pixels: a tracking beacon, nothing to look at
SMALL_MAX_SIDE = 64        # signature logos, social icons: folded into a "small image" toggle
MAX_IMAGES = 200           # img tags rewritten per message; later ones are left as they are
SHOWN_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")  # no SVG: a document, not a picture

_IMG = re.compile(r"<img\b[^<>]{0,4000}>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""\s([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*("[^"]*"|'[^']*')""")


def attributes(tag: str) -> dict[str, str]:
    """The quoted attributes of one tag (sanitized HTML quotes every value), names in lower case."""
    return {name.lower(): html_lib.unescape(value[1:-1]) for name, value in _ATTRIBUTE.findall(tag)}


def _pixels(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d{1,5})(?:px)?\s*", value or "")
    return int(match.group(1)) if match else None


def size_of(tag_attributes: dict[str, str], known: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The size the image is shown at: its width/height attributes, else its own size."""
    width, height = _pixels(tag_attributes.get("width")), _pixels(tag_attributes.get("height"))
    if width is not None and height is not None:
        return width, height
    if known:
        return (width if width is not None else known[0]), (height if height is not None else known[1])
    return None


def kind(size: tuple[int, int] | None) -> str:
    """"tracking" (at most 2x2 pixels), "small" (no side over 64 pixels) or "normal"."""
    if size is None:
        return "normal"
    if max(size) <= TRACKING_MAX_SIDE:
        return "tracking"
    return "small" if max(size) <= SMALL_MAX_SIDE else "normal"


def content_id_of(src: str) -> str | None:
    if not src.lower().startswith("cid:"):
        return None
    return urllib.parse.unquote(src[4:]).strip().strip("<>").lower() or None


def is_remote(src: str) -> bool:
    return src.strip().lower().startswith(("http://", "https://", "//"))


def remote_count(html: str) -> int:
    """How many images the message would fetch from elsewhere (what "show images" loads)."""
    return sum(1 for tag in _IMG.findall(html or "")[:MAX_IMAGES] if is_remote(attributes(tag).get("src", "")))


def _tag_with_src(tag: str, url: str) -> str:
    escaped = html_lib.escape(url, quote=True)
    return _ATTRIBUTE.sub(lambda m: f' src="{escaped}"' if m.group(1).lower() == "src" else m.group(0), tag, count=0)


def _folded(tag: str, size: tuple[int, int]) -> str:
    return (f'<details class="small-image"><summary>small image ({size[0]}×{size[1]})</summary>'
            f"{tag}</details>")


def frame_html(html: str, inline: dict[str, dict], show_remote: bool) -> tuple[str, dict]:
    """The message's sanitized HTML with its images placed: `inline` maps a content id (lower
    case) to {"url", "size": (w, h) or None}. Returns (html, counts of "inline", "tracking",
    "small", "remote")."""
    counts = {"inline": 0, "tracking": 0, "small": 0, "remote": 0}
    seen = 0

    def place(match: re.Match) -> str:
        nonlocal seen
        seen += 1
        tag = match.group(0)
        if seen > MAX_IMAGES:
            return tag
        found = attributes(tag)
        src = found.get("src", "")
        content_id = content_id_of(src)
        part = inline.get(content_id) if content_id else None
        if part is None and not is_remote(src):
            return tag
        size = size_of(found, part.get("size") if part else None)
        if kind(size) == "tracking":
            counts["tracking"] += 1
            return ""
        if part is None:
            counts["remote"] += 1
            return tag  # the frame's policy blocks it unless the agent asked to show images
        counts["inline"] += 1
        placed = _tag_with_src(tag, part["url"])
        if kind(size) == "small":
            counts["small"] += 1
            return _folded(placed, size)
        return placed

    return _IMG.sub(place, html or ""), counts


# ------------------------------------------------------------------ pixel size from the bytes
def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP from its first bytes; None otherwise."""
    head = bytes(data[:64 * 1024])
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head[:2] == b"\xff\xd8":
        return _jpeg_dimensions(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_dimensions(head)
    return None


def _jpeg_dimensions(head: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        length = struct.unpack(">H", head[position + 2:position + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[position + 5:position + 9])
            return width, height
        position += 2 + length
    return None


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None
