"""MIME → ParsedMessage: the stdlib parser with charset fallbacks, size caps and defects.

parse_message never raises: whatever is wrong with a message is recorded in `defects`, so a
malformed email becomes a ticket with notes instead of an exception that stops the poll.
The modules split it by concern: headers, addresses, charsets, bodies, html and limits
(the structural guards); docs/parsing.md describes the repairs and their defect notes.
"""

from __future__ import annotations

import email
import email.parser

from .bodies import read_body, read_body_fallback, repair_boundary
from .charsets import decode_text, decode_words
from .headers import generated_message_id, read_headers, repair_header_block, repair_part_headers
from .html import cid_references, html_to_text, resolve_cid, sanitize_html
from .limits import (
    MAX_DEPTH, MAX_PARTS, MAX_RECIPIENTS, Budget, CappedPolicy, bound_structure, cap_part_headers,
)
from .model import Address, Attachment, Defects, ParsedMessage
from .parts import safe_filename

__all__ = [
    "MAX_DEPTH", "MAX_PARTS", "MAX_RECIPIENTS", "Address", "Attachment", "ParsedMessage", "cid_references",
    "decode_text", "decode_words", "generated_message_id", "html_to_text", "parse_message", "resolve_cid",
    "safe_filename", "sanitize_html",
]


def parse_message(raw: bytes, *, max_attachment_bytes: int | None = None) -> ParsedMessage:
    """Parse one RFC 822 message. Never raises; problems end up in `defects`."""
    defects = Defects()
    budget = Budget()
    try:
        raw = _as_bytes(raw)
    except Exception as e:  # noqa: BLE001 - the contract is "never raises"
        defects.add(f"input is not bytes: {type(e).__name__}")
        raw = b""
    result = ParsedMessage(size=len(raw))
    try:
        repaired_head, notes = repair_header_block(raw)
        bounded, structure_notes = bound_structure(repaired_head)
        notes += structure_notes
    except Exception as e:  # noqa: BLE001
        bounded, notes = raw, [f"structure pre-scan failed: {type(e).__name__}"]
    for note in notes:
        defects.add(note)
    capped_policy = CappedPolicy(cut_headers=[])
    try:
        message = email.message_from_bytes(bounded, policy=capped_policy)
        repaired = repair_boundary(message, bounded)
        if repaired is not None:
            defects.add("declared MIME boundary not found in the body; the body's own delimiter was used")
            message = email.message_from_bytes(repaired, policy=capped_policy)
        try:
            for note in repair_part_headers(message, MAX_PARTS):
                defects.add(note)
        except Exception as e:  # noqa: BLE001 - the parts stay as the stdlib read them
            defects.add(f"MIME part header repair failed: {type(e).__name__}")
        cap_part_headers(message, defects)
        read_headers(message, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"headers could not be parsed: {type(e).__name__}")
        message = _parse_headers_only(bounded, result, defects)
    for note in capped_policy.cut_headers or ():
        defects.add(note)
    if message is not None:
        try:
            read_body(message, result, defects, max_attachment_bytes, budget)
        except Exception as e:  # noqa: BLE001
            defects.add(f"body could not be parsed: {type(e).__name__}")
            read_body_fallback(bounded, result, defects)
    if not result.message_id:
        result.message_id = generated_message_id(raw)
        defects.add("missing Message-ID")
    result.defects = list(defects)
    return result


def _as_bytes(raw) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


def _parse_headers_only(raw: bytes, result: ParsedMessage, defects: Defects):
    """Second chance after the full parse failed: headers only (no MIME tree)."""
    try:
        message = email.parser.BytesHeaderParser(policy=CappedPolicy()).parsebytes(raw)
        cap_part_headers(message, defects)
        read_headers(message, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"message could not be parsed: {type(e).__name__}")
        return None
    try:
        read_body_fallback(raw, result, defects)
    except Exception as e:  # noqa: BLE001
        defects.add(f"body could not be read: {type(e).__name__}")
    return None
