"""Headers of outgoing mail written as we mean them, and read back before anything is sent.

Header text from mail is used in its final form (clean_header_text): RFC 2047 decoded until
nothing changes and cleaned, the form the parser stores and the checks see. The email package
cannot be trusted to write such text unchanged: it decodes an encoded word it is given (on
CPython without the fix of CVE-2024-6923, 3.11.7 among them, a CR/LF decoded there becomes a
real header), and its folder drops the space between two encoded words ("für März" reads back
"fürMärz" on 3.11.7). So the Subject and the From display name are folded here, and every
message is parsed back (check_rendered) and refused unless it reads as intended
(docs/reliability.md, "Hostile senders").
"""

from __future__ import annotations

import base64
from collections import Counter
from email import errors as email_errors
from email import policy
from email.parser import BytesParser
import re

from mailbridge.domain.parsing import decode_words
from mailbridge.errors import HeaderMismatch
from mailbridge.logs import log_event

# The longest line written here (RFC 5322's "SHOULD"), and the UTF-8 bytes of one encoded word:
# 39 bytes are 52 base64 characters, a word of 64, "Subject: " and a word in 78.
MAX_LINE = 78
ENCODED_WORD_BYTES = 39
# Headers the email package adds to a message we build (set_content, add_attachment).
MIME_HEADERS = frozenset({"mime-version", "content-type", "content-transfer-encoding"})
# A display name written as it is: RFC 5322 atoms separated by single spaces.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def clean_header_text(value) -> str:
    """Header text in its final form (parsing.decode_words: RFC 2047 decoded until nothing
    changes, no control character or line separator), runs of white space made one space.
    Writing it decodes nothing more, so the recipient reads what our checks saw."""
    return " ".join(decode_words(str(value or ""), None, "header").split())


def fold_text(name: str, text: str) -> str:
    """An unstructured header value (the Subject), folded here: printable ASCII without "=?"
    folds at its spaces; anything else becomes UTF-8 base64 encoded words of whole characters,
    which a reader decodes exactly once into `text` (the spaces are inside the words)."""
    words = text.split(" ")
    if not (text.isascii() and text.isprintable() and "=?" not in text and all(len(w) < MAX_LINE - 8 for w in words)):
        return "\r\n ".join(encoded_words(text))
    folded, length = words[0], len(name) + 2 + len(words[0])
    for word in words[1:]:
        if word and length + 1 + len(word) > MAX_LINE:
            folded, length = f"{folded}\r\n {word}", 1 + len(word)
        else:
            folded, length = f"{folded} {word}", length + 1 + len(word)
    return folded


def sender(display_name: str, email: str) -> str:
    """The From value: `email`, `Name <email>` for a name of plain words, else the name in
    encoded words (RFC 2047 allows them in a display name) and the address on its own line."""
    name = clean_header_text(display_name)
    if not name:
        return email
    if _ATOMS.fullmatch(name) and "=?" not in name and len(name) < MAX_LINE - 8:
        return f"{name} <{email}>"
    return "\r\n ".join(encoded_words(name, phrase=True)) + f"\r\n <{email}>"


def encoded_words(text: str, *, phrase: bool = False) -> list[str]:
    """`text` as UTF-8 base64 encoded words of at most ENCODED_WORD_BYTES bytes each, cut
    between characters. In a phrase (a display name) they are cut after a space instead, and a
    longer word stays one encoded word: the email package reads the white space between two
    encoded words of a phrase as a space (RFC 2047 says to drop it), so a cut inside a word
    would read differently here and in other mail clients."""
    pieces = re.findall(r"\S+\s*|\s+", text) if phrase else list(text)
    chunks, current, size = [], "", 0
    for piece in pieces:
        width = len(piece.encode("utf-8"))
        if current and size + width > ENCODED_WORD_BYTES:
            chunks.append(current)
            current, size = "", 0
        current, size = current + piece, size + width
    chunks.append(current)
    return ["=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?=" for chunk in chunks]


def check_rendered(raw: bytes, intended: dict[str, str], from_name: str, from_email: str,
                   to: list[str], cc: list[str]) -> None:
    """Read a rendered message back as a recipient would (stdlib email, policy.default) and raise
    HeaderMismatch unless its header names are the intended ones (plus Date and the MIME
    headers), its To and Cc exactly `to` and `cc` (no display names, no Bcc), its From
    `from_name` (final form) and `from_email`, and every other intended header reads back as
    its value. Only the header block is parsed: cheap whatever the attachments weigh."""
    end = raw.find(b"\r\n\r\n")
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(raw if end < 0 else raw[: end + 4], headersonly=True)
        problem = _header_names(parsed, intended) or _people(parsed, from_name, from_email, to, cc) or next(
            (f"its {name} reads back differently from the intended value" for name, value in intended.items()
             if name.lower() not in ("from", "to", "cc") and _one_line(parsed[name]) != _one_line(value)), None)
    except (ValueError, TypeError, LookupError, IndexError, email_errors.MessageError) as e:
        problem = f"it cannot be read back ({e.__class__.__name__})"
    if problem:
        log_event("ERROR", "outgoing message refused: it does not read back as built", problem=problem[:300])
        raise HeaderMismatch(f"the message was not sent: {problem}")


def _header_names(parsed, intended: dict[str, str]) -> str | None:
    names = Counter(name.lower() for name in parsed.keys())
    expected = Counter(name.lower() for name in intended) + Counter({"date": 1})
    unexpected = sorted(name for name, count in (names - expected).items() if name not in MIME_HEADERS or count > 1)
    missing = sorted((expected - names).keys())
    if unexpected or missing:
        return f"header names differ (unexpected {unexpected[:5]}, missing {missing[:5]})"
    return None


def _people(parsed, from_name: str, from_email: str, to: list[str], cc: list[str]) -> str | None:
    for name, wanted in (("to", to), ("cc", cc)):
        found = _addresses(parsed, name)
        if {a for _, a in found} != {a.lower() for a in wanted} or any(display for display, _ in found):
            return f"its {name.title()} recipients differ from the intended ones"
    if _addresses(parsed, "from") != [(clean_header_text(from_name), from_email.lower())]:
        return "its From differs from the intended one"
    return None


def _addresses(parsed, name: str) -> list[tuple[str, str]]:
    header = parsed[name]
    if header is None:
        return []
    return [(_one_line(a.display_name), a.addr_spec.lower()) for a in header.addresses]


def _one_line(value) -> str:
    return " ".join(str(value or "").split())
