"""Structural limits and guards: what keeps the stdlib parser's work bounded on hostile mail.

Every cap here is recorded as a defect when it bites, so a message that hits one still becomes
a ticket (docs/parsing.md).
"""

from __future__ import annotations

import re
import time
from email import policy
from email.message import Message

from .model import MAX_DEFECTS, Defects

MAX_PARTS = 1000
MAX_DEPTH = 20
MAX_RECIPIENTS = 1000
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
MAX_FILENAME_CHARS = 200


ADDRESS_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
     "resent-bcc", "resent-sender"}
)


_STRUCTURE = re.compile(
    rb'^--([^\r\n]{1,200})|boundary[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))',
    re.IGNORECASE | re.MULTILINE,
)
# RFC 2045 tspecials other than the quote (which the bare form above cannot hold).
_TSPECIALS = re.compile(rb'[()<>@,:\\/\[\]?=]')


class CappedPolicy(policy.EmailPolicy):
    """policy.default that cuts oversized header values as the parser reads them.

    The cut has to happen here: the parser itself reads Content-Type of every part through
    the policy, and the structured-header parser is superlinear on a megabyte of parameters.
    A fresh instance per parse carries the list of headers it cut.
    """

    cut_headers: list | None = None

    def header_source_parse(self, sourcelines):
        name, value = super().header_source_parse(sourcelines)
        limit = header_limit(name.lower())
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


def header_limit(lowered_name: str) -> int:
    if lowered_name in ADDRESS_HEADERS:
        return MAX_ADDRESS_HEADER_CHARS
    if lowered_name == "references":
        return MAX_HEADER_CHARS * 4
    if lowered_name.startswith("content-"):
        return MAX_MIME_HEADER_CHARS
    return MAX_HEADER_CHARS


def bound_structure(raw: bytes) -> tuple[bytes, list[str]]:
    """Keep the parser's work bounded before it starts, and make boundaries readable.

    The stdlib parser checks every line against every open boundary, so a message nested
    thousands of levels deep costs quadratic time (and ends in RecursionError). Boundaries
    declared deeper than MAX_DEPTH are renamed (the part becomes an unsplit body) and the
    message is cut after MAX_PARTS part delimiters. An unquoted boundary holding a character
    RFC 2045 reserves (Outlook's `boundary=----=_NextPart_…`) is quoted, because the stdlib
    reads it only up to the `=`. Ordinary mail passes through untouched.
    """
    notes: list[str] = []
    if b"oundary" not in raw and b"OUNDARY" not in raw:
        return raw, notes
    stack: list[tuple[bytes, bytes | None]] = []  # (boundary, the new name it was given or None)
    delimiters = 0
    edits: list[tuple[int, int, bytes]] = []
    for match in _STRUCTURE.finditer(raw):
        line, quoted, bare = match.groups()
        if line is None:
            boundary = (quoted or bare or b"").rstrip()
            if not boundary:
                continue
            if len(stack) >= MAX_DEPTH + 1:
                edits.append((match.start(), match.start() + 8, b"nobounds"))
                if not notes:
                    notes.append(f"MIME nesting deeper than {MAX_DEPTH}; inner parts kept unsplit")
                continue
            alias = None
            if any(open_boundary == boundary for open_boundary, _ in stack):
                # A part inside a multipart declares its parent's boundary (RFC 2046 forbids
                # it): the stdlib then ends the parent at the child's first delimiter. The
                # child's delimiters, up to its closing one, get a name of their own.
                alias = boundary + b"_mb" + str(len(stack)).encode()
                notes.append("a nested multipart reused its parent's boundary; it was given its own")
            name = alias or boundary
            if bare is not None and (alias or _TSPECIALS.search(bare)):
                edits.append((match.start(3), match.end(3), b'"' + name + b'"'))
                if _TSPECIALS.search(bare):
                    notes.append("unquoted MIME boundary with reserved characters was read whole")
            elif alias:
                edits.append((match.start(2), match.start(2) + len(boundary), alias))
            stack.append((boundary, alias))
            continue
        for index in range(len(stack) - 1, -1, -1):
            boundary, alias = stack[index]
            if not line.startswith(boundary):
                continue
            rest = line[len(boundary) :].rstrip()
            if rest not in (b"", b"--"):
                continue
            delimiters += 1
            if alias:
                edits.append((match.start(1), match.start(1) + len(boundary), alias))
            del stack[index + (0 if rest == b"--" else 1) :]
            break
        if delimiters > MAX_PARTS:
            notes.append(f"more than {MAX_PARTS} MIME parts; the message was cut after part {MAX_PARTS}")
            return _apply(raw[: match.start()], edits), notes
    return _apply(raw, edits), notes


def _apply(raw: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """raw with the (start, end, replacement) edits, given in order, applied in one pass."""
    if not edits:
        return raw
    pieces, position = [], 0
    for start, end, replacement in edits:
        pieces += [raw[position:start], replacement]
        position = end
    pieces.append(raw[position:])
    return b"".join(pieces)


def cap_part_headers(part: Message, defects: Defects) -> None:
    """Drop header fields beyond MAX_HEADERS_PER_PART (values were cut by CappedPolicy)."""
    headers = getattr(part, "_headers", None)
    if isinstance(headers, list) and len(headers) > MAX_HEADERS_PER_PART:
        defects.add(f"more than {MAX_HEADERS_PER_PART} header fields; the rest were dropped")
        del headers[MAX_HEADERS_PER_PART:]


# CPU seconds one message may cost the parser (docs/parsing.md). Past it the remaining
# expensive steps (HTML to text, quote stripping) are skipped and the text is cut, so one
# hostile message can never use up a poll's time.
CPU_BUDGET_SECONDS = 3.0
MAX_TEXT_OVER_BUDGET = 100_000


class Budget:
    """The CPU time one parse may use, read from this thread's CPU clock at checkpoints."""

    def __init__(self, seconds: float | None = None, clock=time.thread_time):
        self.seconds = CPU_BUDGET_SECONDS if seconds is None else seconds
        self.clock = clock
        self.deadline = clock() + self.seconds
        self.spent_at: str | None = None

    def exhausted(self, step: str) -> bool:
        """True once the budget is spent; the first step that found it so is kept."""
        if self.spent_at is None and self.clock() > self.deadline:
            self.spent_at = step
        return self.spent_at is not None
