"""Bodies: walk the MIME tree into text, HTML and attachments; repair what mailers break.

Every part is read (parts.py reads one part): the text of every text part, and every file of
every branch of a multipart/alternative, whichever body is shown; a file repeated in another
branch of the same alternative is kept once (docs/parsing.md, trait D).
"""

from __future__ import annotations

import dataclasses
import re
from email import errors
from email.message import Message

from mailbridge.domain import quotes

from .charsets import codec_name, decode_text, header_charset
from .headers import declared_charset
from .html import cid_references, html_text_without_markup, html_to_text, sanitize_html
from .limits import MAX_DEPTH, MAX_HTML_TO_TEXT_CHARS, MAX_PARTS, MAX_TEXT_OVER_BUDGET, Budget, cap_part_headers
from .model import Attachment, Defects, ParsedMessage, normalize_text
from .parts import (
    attachment, looks_binary, message_part_bytes, param, part_bytes, part_charset, part_disposition, part_filename,
    part_type,
)

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


# Where a part sits: for each multipart/alternative above it, (id of that part, branch index).
Branches = tuple[tuple[int, int], ...]


@dataclasses.dataclass
class _Copies:
    """Where the files with one content hash sit inside multipart/alternative parts."""

    branches: dict[int, set[int]] = dataclasses.field(default_factory=dict)
    content_ids: set[str | None] = dataclasses.field(default_factory=set)

    def elsewhere(self, where: Branches, content_id: str | None) -> bool:
        """True when a copy sits in another branch of an alternative that holds `where`, and
        dropping this one loses no Content-ID the HTML may point at."""
        if content_id is not None and content_id not in self.content_ids:
            return False
        for alternative, index in where:
            holding = self.branches.get(alternative, set())
            if len(holding) > (index in holding):  # a branch other than this one holds a copy
                return True
        return False

    def add(self, where: Branches, content_id: str | None) -> None:
        for alternative, index in where:
            self.branches.setdefault(alternative, set()).add(index)
        self.content_ids.add(content_id)


@dataclasses.dataclass
class _Walk:
    """What reading one message's MIME tree collects, part by part (read_body)."""

    message: Message
    defects: Defects
    max_attachment_bytes: int | None
    budget: Budget
    plain: list[str] = dataclasses.field(default_factory=list)
    html: list[str] = dataclasses.field(default_factory=list)
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    named_text: list[tuple[str, bytes, str | None]] = dataclasses.field(default_factory=list)
    delivery_report: bool = False
    copies: dict[str, _Copies] = dataclasses.field(default_factory=dict)
    # One detection per codec for raw 8-bit file names, however many parts the message has.
    name_charsets: dict[str | None, str] = dataclasses.field(default_factory=dict)
    declared: str | None = None  # the message's charset, read at the first raw file name
    declared_read: bool = False

    def keep(self, part: Message, content_type: str, data: bytes, filename: str | None, where: Branches) -> None:
        kept = attachment(part, content_type, data, len(self.attachments) + 1, self.max_attachment_bytes,
                          self.defects, filename)
        if where:
            copies = self.copies.setdefault(kept.sha256, _Copies())
            if copies.elsewhere(where, kept.content_id):
                return
            copies.add(where, kept.content_id)
        self.attachments.append(kept)

    def filename(self, part: Message) -> str | None:
        return part_filename(part, self.defects, self._raw_name_charset)

    def _raw_name_charset(self, part: Message, name: str) -> str | None:
        """Raw 8-bit bytes of a file name: the part's charset, else the message's, weighed once
        per codec against the other candidates (charsets.header_charset)."""
        label = part_charset(part)
        if label is None:
            if not self.declared_read:
                self.declared, self.declared_read = declared_charset(self.message), True
            label = self.declared
        key = codec_name(label) if label else None
        if key not in self.name_charsets:
            chosen = header_charset([name], label, normalizer=False)
            if chosen is None:
                return label  # valid UTF-8: read as such, nothing to choose
            self.name_charsets[key] = chosen
        return self.name_charsets[key]


def read_body(message: Message, result: ParsedMessage, defects: Defects, max_attachment_bytes,
              budget: Budget | None = None) -> None:
    walk = _Walk(message, defects, max_attachment_bytes, budget or Budget())
    report_type = (param(message, "report-type") or "").lower()
    walk.delivery_report = part_type(message) == "multipart/report" and report_type in ("", "delivery-status")
    _note_mime_defects(message, defects)
    _read_parts(walk)
    if not walk.plain and not walk.html and walk.named_text:
        _show_named_text(walk)
    result.is_delivery_report = walk.delivery_report or "x-failed-recipients" in result.headers
    if walk.html:
        result.html = sanitize_html("\n".join(walk.html), defects)
        _mark_inline(walk.attachments, cid_references(result.html))
    result.attachments = walk.attachments
    _set_text(result, "\n".join(walk.plain), defects, walk.budget)


def _note_mime_defects(part: Message, defects: Defects) -> None:
    for defect in getattr(part, "defects", ()):
        defects.add(f"MIME: {type(defect).__name__}")


def _read_parts(walk: _Walk) -> None:
    """Every part, depth first in the order written, at most MAX_PARTS of them."""
    stack: list[tuple[Message, int, Branches]] = [(walk.message, 0, ())]
    count = 0
    while stack:
        part, depth, where = stack.pop()
        count += 1
        if count > MAX_PARTS:
            walk.defects.add(f"more than {MAX_PARTS} MIME parts; the rest were skipped")
            break
        if part is not walk.message:
            cap_part_headers(part, walk.defects)
            _note_mime_defects(part, walk.defects)
        content_type = part_type(part)
        if content_type == "message/delivery-status":
            walk.delivery_report = True
        if content_type.startswith("message/") and part is not walk.message:
            walk.keep(part, content_type, message_part_bytes(part, content_type), walk.filename(part), where)
        elif part.is_multipart():
            stack.extend(reversed(_children(walk, part, content_type, depth, where)))
        else:
            _read_leaf(walk, part, content_type, where)


def _children(walk: _Walk, part: Message, content_type: str, depth: int,
              where: Branches) -> list[tuple[Message, int, Branches]]:
    if depth >= MAX_DEPTH:
        walk.defects.add(f"MIME nesting deeper than {MAX_DEPTH}; inner parts skipped")
        return []
    children = part.get_payload()
    if not isinstance(children, list):
        return []
    alternative = content_type == "multipart/alternative"
    return [(child, depth + 1, where + ((id(part), index),) if alternative else where)
            for index, child in enumerate(children) if isinstance(child, Message)]


def _read_leaf(walk: _Walk, part: Message, content_type: str, where: Branches) -> None:
    """A part that is not a container: shown text, a file, or both (RFC 2183)."""
    data = part_bytes(part, walk.defects)
    filename = walk.filename(part)
    disposition = part_disposition(part)
    content_type = _leaf_type(content_type, data, walk.defects)
    is_text = content_type in ("text/plain", "text/html")
    shown_file = bool(filename) and disposition in ("inline", None) and is_text
    if shown_file and disposition is None:
        # Named, without a disposition: a file, shown only if the message has no other text.
        walk.named_text.append((content_type, data, part_charset(part)))
        shown_file = False
    if shown_file:
        # RFC 2183: an inline part is displayed; a named one is also kept as the file it names.
        walk.keep(part, content_type, data, filename, where)
    if is_text and disposition != "attachment" and (not filename or shown_file):
        _read_text(walk, part, content_type, data)
        return
    walk.keep(part, content_type, data, filename, where)


def _leaf_type(content_type: str, data: bytes, defects: Defects) -> str:
    if content_type == "application/plain":
        return "text/plain"  # a type some mailers invent for plain text
    if not content_type.startswith("multipart/"):
        return content_type
    # Declared multipart, but no delimiter splits it: a container is never an attachment.
    if looks_binary(data):
        defects.add(f"{content_type} without any part; its binary body was kept as a file")
        return "application/octet-stream"
    defects.add(f"{content_type} without any part; its body was read as text")
    return "text/plain"


def _read_text(walk: _Walk, part: Message, content_type: str, data: bytes) -> None:
    over_budget = walk.budget.exhausted("reading the text parts")
    if over_budget:
        data = data[:MAX_TEXT_OVER_BUDGET]
    text, fallback = decode_text(data, part_charset(part), guess=not over_budget)
    if fallback:
        walk.defects.add(f"{content_type} part: {fallback}")
    (walk.plain if content_type == "text/plain" else walk.html).append(text)


def _show_named_text(walk: _Walk) -> None:
    walk.defects.add("no text part; the text files named without a disposition were shown")
    for content_type, data, charset in walk.named_text:
        text, _fallback = decode_text(data[:MAX_TEXT_OVER_BUDGET], charset, guess=True)
        (walk.plain if content_type == "text/plain" else walk.html).append(text)


def _mark_inline(attachments: list[Attachment], referenced: set[str]) -> None:
    for item in attachments:
        if item.content_id and (item.content_id in referenced or item.content_id.lower() in referenced):
            item.inline = True


def _set_text(result: ParsedMessage, full_text: str, defects: Defects, budget: Budget) -> None:
    """The text shown: the plain parts, or the HTML's text when there are none or they are a
    stub of it; stripped of quotes unless the CPU budget is spent."""
    if result.html and not budget.exhausted("converting HTML to text"):
        full_text = _plain_or_html_text(full_text, result.html, defects)
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


def _plain_or_html_text(plain: str, html: str, defects: Defects) -> str:
    if not plain.strip():
        return html_to_text(html, defects)
    if len(plain.split()) <= STUB_MAX_WORDS:
        html_text = html_to_text(html, defects)
        if _is_stub(plain, len(html_text.split())):
            defects.add("the plain-text part is a stub of the HTML part; the HTML text was shown")
            return html_text
    return plain


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
