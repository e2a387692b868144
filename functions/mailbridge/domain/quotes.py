"""Reply stripping: keep what the sender wrote now, drop quoted history and signatures."""

from __future__ import annotations

import re

# Lines longer than this are never attribution or header lines; skipping them keeps the
# regexes cheap on hostile input.
_MAX_MARKER_LINE = 400
# A "-- " signature delimiter only counts when little follows it.
_MAX_SIGNATURE_LINES = 20

# "On <date>, <name> wrote:" and its translations. Matched against a line joined with up to
# two following lines, because clients wrap long attributions.
_ATTRIBUTION = re.compile(
    r"^\s*(?:-{1,3}\s*)?("  # Yahoo writes "--- On <date>, <name> wrote:"
    r"on\b.{0,300}\bwrote\s*:"  # English (Gmail, Apple Mail, Thunderbird)
    r"|am\b.{0,300}\bschrieb\b.{0,200}:"  # German
    r"|le\b.{0,300}\ba\s+écrit\s*:"  # French
    r"|el\b.{0,300}\bescribió\s*:"  # Spanish
    r"|em\b.{0,300}\bescreveu\s*:"  # Portuguese
    r"|il\b.{0,300}\bha\s+scritto\s*:"  # Italian
    r"|op\b.{0,300}\bschreef\b.{0,200}:"  # Dutch
    r"|den\b.{0,300}\bskrev\b.{0,200}:"  # Swedish, Danish, Norwegian
    r"|w\s+dniu\b.{0,300}\bnapisał.{0,10}:"  # Polish
    r"|.{0,300}\b(пишет|написал|написала|написал\(а\))\s*:"  # Russian
    r"|.{0,300}(写道|寫道)\s*[:：]"  # Chinese
    r"|.{0,300}(のメッセージ|さんは書きました)\s*[:：]"  # Japanese
    r")\s*$",
    re.IGNORECASE,
)

_WRAPPED_START = re.compile(r"^\s*(on|am|le|el|em|il|op|den|w\s+dniu)\b", re.IGNORECASE)

_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*("
    r"original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|originalmeddelande|mensagem original"
    r"|исходное сообщение"
    r")\s*-{2,}\s*$",
    re.IGNORECASE,
)

# Outlook's quoted header block: a "From:" line followed closely by a "Sent:"/"Date:" line.
_HEADER_FROM = re.compile(
    r"^\s*\*?(from|von|de|da|van|fra|från|od|от|差出人|发件人|寄件者)\s*\*?\s*[:：]\s*\*?\s*\S",
    re.IGNORECASE,
)
_HEADER_SENT = re.compile(
    r"^\s*\*?(sent|date|gesendet|datum|envoyé|date d'envoi|enviado|fecha|inviato|data"
    r"|verzonden|skickat|sendt|wysłano|отправлено|送信日時|发送时间|日期|寄件日期)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
# Forwarded content is the point of a forward: nothing after this marker is stripped.
_FORWARDED = re.compile(
    r"^\s*-{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado"
    r"|messaggio inoltrato|doorgestuurd bericht|begin forwarded message)\s*-*\s*:?\s*$"
    r"|^\s*begin forwarded message\s*:\s*$",
    re.IGNORECASE,
)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")

_MOBILE_SIGNATURE = re.compile(
    r"^\s*("
    r"sent from my .{1,40}|sent from mail for windows.{0,20}|sent from outlook.{0,30}"
    r"|get outlook for .{1,30}|sent via .{1,40}"
    r"|von meinem .{1,40} gesendet|envoyé de mon .{1,40}|enviado desde mi .{1,40}"
    r"|enviado do meu .{1,40}|inviato da(l mio)? .{1,40}|verzonden vanaf mijn .{1,40}"
    r"|skickat från min .{1,40}|отправлено с .{1,40}"
    r")\s*$",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """Return the new content of a reply: quoted history and signature removed.

    Never returns an empty string for a message that had content: when everything looks
    quoted, the original text is returned unchanged.
    """
    if not text or not text.strip():
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, resume = _history_span(lines)
    kept = lines[:start] + lines[resume:]
    kept = _drop_trailing_quotes(kept)
    kept = _drop_signature(kept)
    result = "\n".join(kept).strip("\n").rstrip()
    return result if result.strip() else text


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _history_span(lines: list[str]) -> tuple[int, int]:
    """(first line of quoted history, first line after it); (len, len) when there is none.
    History runs to the end, except a bottom-posted reply: attribution, one quote block, then
    the answer below it."""
    for index, line in enumerate(lines):
        if len(line) > _MAX_MARKER_LINE or not line.strip():
            continue
        if _FORWARDED.match(line):
            break
        if _ORIGINAL_MESSAGE.match(line):
            return index, len(lines)
        if _HEADER_FROM.match(line) and _followed_by_sent(lines, index):
            return _include_rule_above(lines, index), len(lines)
        end = _attribution_end(lines, index)
        if end is None:
            continue
        if not _interleaved(lines, end):
            return index, len(lines)
        resume = _bottom_posted(lines, end)
        if resume is not None:
            return index, resume
    return len(lines), len(lines)


def _attribution_end(lines: list[str], index: int) -> int | None:
    """If an attribution starts at index (possibly wrapped over 3 lines), the line after it.
    A wrapped one starts with its keyword ("On", "Am", …) or with a date or address: the
    Russian and CJK forms end with the keyword, and "Hello" above them is the reply."""
    joined = lines[index]
    for used in range(1, 4):
        if _ATTRIBUTION.match(joined):
            if used > 1 and not (_WRAPPED_START.match(lines[index]) or re.search(r"[\d@]", lines[index])):
                return None
            return index + used
        following = index + used
        if following >= len(lines) or not lines[following].strip():
            return None
        if len(lines[following]) > _MAX_MARKER_LINE:
            return None
        joined = joined.rstrip() + " " + lines[following].strip()
    return None


def _followed_by_sent(lines: list[str], index: int) -> bool:
    return any(_HEADER_SENT.match(line) for line in lines[index + 1 : index + 7])


def _include_rule_above(lines: list[str], index: int) -> int:
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    return above if above >= 0 and _UNDERSCORE_RULE.match(lines[above]) else index


def _interleaved(lines: list[str], start: int) -> bool:
    """True when the quote after an attribution is answered inline (keep it all then)."""
    seen_quote = False
    for line in lines[start:]:
        if _is_quoted(line):
            seen_quote = True
        elif line.strip() and seen_quote:
            return True
    return False


def _bottom_posted(lines: list[str], start: int) -> int | None:
    """After an attribution: one block of quoted lines and then only unquoted text (the answer
    written below the quote) gives the answer's first line; anything else None."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index == len(lines) or not _is_quoted(lines[index]):
        return None
    while index < len(lines) and (_is_quoted(lines[index]) or not lines[index].strip()):
        index += 1
    if any(_is_quoted(line) for line in lines[index:]):
        return None
    return index


def _drop_trailing_quotes(lines: list[str]) -> list[str]:
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _is_quoted(lines[end - 1])):
        end -= 1
    return lines[:end]


def _drop_signature(lines: list[str]) -> list[str]:
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    if end > 0 and _MOBILE_SIGNATURE.match(lines[end - 1]):
        end -= 1
    lines = lines[:end]
    for index in range(len(lines) - 1, max(-1, len(lines) - _MAX_SIGNATURE_LINES - 2), -1):
        if lines[index] in ("-- ", "--"):
            return lines[:index]
    return lines
