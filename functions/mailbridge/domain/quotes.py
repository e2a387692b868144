"""Reply stripping: keep what the sender wrote now, drop quoted history and signatures.

The separators and attribution lines of the common clients (Outlook, Gmail, Apple Mail,
Thunderbird, GMX/web.de, Yahoo, QQ, 163) in English, German, French, Spanish, Italian, Dutch,
Portuguese, Polish, Russian, Japanese and Chinese are recognised (docs/parsing.md lists them).
Every line is classified with string operations and bounded patterns, and every question about
the lines after it is answered from tables built in one backward pass, so the work is linear
in the length of the text whatever it holds.
"""

from __future__ import annotations

import functools
import re

# Lines longer than this are never attribution or header lines.
_MAX_MARKER_LINE = 400
# A "-- " signature delimiter only counts when little follows it.
_MAX_SIGNATURE_LINES = 20
# An attribution may be wrapped over this many lines.
_MAX_ATTRIBUTION_LINES = 3
# How far apart the "From:" and "Sent:" lines of a quoted header block may be.
_HEADER_WINDOW = 6
# Lines examined in detail for a marker. Real replies reach their quote long before; a text
# made of thousands of colon lines stops being examined here, so it costs a bounded amount
# per line (its quotes are then kept).
MAX_EXAMINED_LINES = 3000

# Attributions that start with a keyword ("On <date>, <name> wrote:"), as (start, verbs).
_PREFIXED = (
    ("on ", ("wrote", "writes")),  # English: Gmail, Apple Mail, Thunderbird, Yahoo
    ("am ", ("schrieb", "geschrieben")),  # German: Gmail, Thunderbird, Apple Mail, Yahoo
    ("le ", ("a écrit", "écrit")),  # French
    ("el ", ("escribió",)),  # Spanish
    ("em ", ("escreveu",)),  # Portuguese
    ("il ", ("ha scritto", "scritto")),  # Italian
    ("op ", ("schreef",)),  # Dutch
    ("den ", ("skrev",)),  # Swedish, Danish, Norwegian
    ("w dniu ", ("napisał", "pisze")),  # Polish (Thunderbird)
    ("dnia ", ("napisał", "pisze")),  # Polish
    ("在 ", ("写道", "寫道")),  # Chinese (163, QQ)
    ("在", ("写道", "寫道")),
)
# Attributions recognised by how they end; they also need a date or an address in them.
_SUFFIXES = (
    "wrote", "schrieb", "geschrieben", "a écrit", "escribió", "escreveu", "ha scritto", "schreef",
    "napisał", "napisała", "napisał(a)", "pisze", "пишет", "написал", "написала", "написал(а)",
    "写道", "寫道", "のメッセージ", "さんは書きました", "は書きました",
)
_HAS_DATE_OR_ADDRESS = re.compile(r"[\d@]")
_TIME = re.compile(r"\d:\d\d")

# "-----Original Message-----" and its translations; the dashes around are optional.
_ORIGINAL_MESSAGE_PHRASES = frozenset({
    "original message", "original-nachricht", "original nachricht", "ursprüngliche nachricht",
    "message d'origine", "message original", "mensaje original", "messaggio originale",
    "oorspronkelijk bericht", "origineel bericht", "originalmeddelande", "mensagem original",
    "wiadomość oryginalna", "oryginalna wiadomość", "исходное сообщение", "原始邮件", "原始郵件",
    "元のメッセージ", "reply message", "original email message",
})
_FORWARDED_PHRASES = frozenset({
    "forwarded message", "weitergeleitete nachricht", "message transféré", "mensaje reenviado",
    "messaggio inoltrato", "doorgestuurd bericht", "mensagem encaminhada", "wiadomość przekazana",
    "пересылаемое сообщение", "转发邮件", "転送メッセージ", "begin forwarded message",
})

# Outlook's (and GMX's, Yahoo's, QQ's) quoted header block: a "From:" line and a "Sent:"/"Date:"
# line close together, in either order.
_FROM_NAMES = frozenset({"from", "von", "de", "da", "van", "fra", "från", "od", "от", "差出人", "发件人", "寄件者", "發件人"})
_SENT_NAMES = frozenset({
    "sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "enviada", "enviado em",
    "fecha", "inviato", "data", "verzonden", "skickat", "sendt", "wysłano", "отправлено", "дата",
    "送信日時", "日付", "发送时间", "时间", "日期", "寄件日期", "發送時間",
})
_FIELD_NAME = re.compile(r"\*?([^\W\d_][\w' ]{0,20}?)\*?\s{0,3}[:：]\s{0,3}\*?\s{0,3}\S")

_MOBILE_SIGNATURE = re.compile(
    r"\s*("
    r"sent from my .{1,40}|sent from mail for windows.{0,20}|sent from outlook.{0,30}"
    r"|get outlook for .{1,30}|sent via .{1,40}"
    r"|von meinem .{1,40} gesendet|envoyé de mon .{1,40}|enviado desde mi .{1,40}"
    r"|enviado do meu .{1,40}|inviato da(l mio)? .{1,40}|verzonden vanaf mijn .{1,40}"
    r"|skickat från min .{1,40}|отправлено с .{1,40}|发自我的.{1,20}|iphoneから送信"
    r")\s*",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """Return the new content of a reply: quoted history and signature removed.

    Never returns an empty string, or only a separator, for a message that had content: when
    everything looks quoted, the original text is returned unchanged.
    """
    if not text or not text.strip():
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, resume = _Lines(lines).history_span()
    kept = lines[:start] + lines[resume:]
    kept = _drop_trailing_quotes(kept)
    kept = _drop_signature(kept)
    result = "\n".join(kept).strip("\n").rstrip()
    return result if _has_content(kept) else text


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _marker(line: str) -> str:
    """A separator line's words: dashes, underscores and spaces around removed, lowercase."""
    return line.strip().strip("-_=* \u00a0").strip().lower()


def _is_separator(line: str, phrases: frozenset) -> bool:
    stripped = line.strip()
    if len(stripped) > 80:
        return False
    return _marker(stripped).rstrip(":").strip() in phrases


def _is_rule(line: str) -> bool:
    """A line of only dashes or underscores (at least 5), as clients draw above a quote."""
    stripped = line.strip()
    return len(stripped) >= 5 and not stripped.strip("-_")


def _field(line: str) -> str | None:
    """The name of a "Name: value" line, lowercase, or None."""
    if ":" not in line and "：" not in line:
        return None
    stripped = line.strip()
    if not stripped or len(stripped) > _MAX_MARKER_LINE:
        return None
    found = _FIELD_NAME.match(stripped)
    return found.group(1).strip().lower() if found else None


def is_attribution(joined: str, first_line: str) -> bool:
    """Whether `joined` (one line, or a wrapped one joined) is an attribution line."""
    text = joined.strip().lstrip("-").strip().lower()
    if not text.endswith((":", "：")):
        return False
    body = text[:-1].rstrip()
    for start, verbs in _PREFIXED:
        if text.startswith(start) and any(verb in body for verb in verbs):
            return True
    if body.endswith(_SUFFIXES):
        return bool(_HAS_DATE_OR_ADDRESS.search(text)) and _starts_like_attribution(first_line)
    # Gmail in Russian, Japanese and others: "<date> <time> <name> <address>:" without a verb.
    return body.endswith(">") and "@" in body and bool(_TIME.search(body))


def _starts_like_attribution(first_line: str) -> bool:
    """A suffix attribution wrapped over lines must start with a date or an address, so the
    reply above it ("Hello") is not taken as its first line."""
    return bool(_HAS_DATE_OR_ADDRESS.search(first_line))


class _Lines:
    """The lines of a text with the forward-looking facts computed in one backward pass, the
    first time an attribution needs them."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.quoted = [line.lstrip().startswith(">") for line in lines]
        self.blank = [not line.strip() for line in lines]
        # Only a line with a colon, a dash or an underscore, or one of the two lines above a
        # line with a colon (a wrapped attribution), can start a marker: the rest are skipped.
        colon = [":" in line or "：" in line for line in lines] + [False, False]
        self.candidate = [
            colon[index] or colon[index + 1] or colon[index + 2] or "-" in line or "_" in line
            for index, line in enumerate(lines)
        ]

    @functools.cached_property
    def tables(self) -> tuple[list[int], list[int], list[int], int, int]:
        """For each line i: the first quoted line at or after i, the first non-blank one, the
        end of the block of quoted and blank lines starting at i; then the last non-blank
        unquoted line and the last quoted line."""
        count = len(self.lines)
        next_quote = [count] * (count + 1)
        next_nonblank = [count] * (count + 1)
        block_end = [count] * (count + 1)
        last_answer = last_quote = -1
        for index in range(count - 1, -1, -1):
            quoted, blank = self.quoted[index], self.blank[index]
            next_quote[index] = index if quoted else next_quote[index + 1]
            next_nonblank[index] = next_nonblank[index + 1] if blank else index
            block_end[index] = block_end[index + 1] if (quoted or blank) else index
            if last_answer < 0 and not quoted and not blank:
                last_answer = index
            if last_quote < 0 and quoted:
                last_quote = index
        return next_quote, next_nonblank, block_end, last_answer, last_quote

    def history_span(self) -> tuple[int, int]:
        """(first line of quoted history, first line after it); (len, len) when there is none.
        History runs to the end, except a bottom-posted reply: attribution, one quote block,
        then the answer below it."""
        lines = self.lines
        count = len(lines)
        examined = 0
        for index, line in enumerate(lines):
            if not self.candidate[index] or self.blank[index] or len(line) > _MAX_MARKER_LINE:
                continue
            examined += 1
            if examined > MAX_EXAMINED_LINES:
                break
            if _is_separator(line, _FORWARDED_PHRASES):
                break
            if _is_separator(line, _ORIGINAL_MESSAGE_PHRASES):
                return index, count
            header_start = self._header_block_start(index)
            if header_start is not None:
                return header_start, count
            end = self._attribution_end(index)
            if end is None:
                continue
            if not self._interleaved(end):
                return index, count
            resume = self._bottom_posted(end)
            if resume is not None:
                return index, resume
        return count, count

    def _header_block_start(self, index: int) -> int | None:
        """Where a quoted header block starting at index begins (a separator or rule line
        just above it included), or None when index starts none."""
        name = _field(self.lines[index])
        if name in _FROM_NAMES:
            partners = _SENT_NAMES
        elif name in _SENT_NAMES:
            partners = _FROM_NAMES
        else:
            return None
        window = self.lines[index + 1 : index + 1 + _HEADER_WINDOW]
        if not any(_field(line) in partners for line in window):
            return None
        above = index - 1
        while above >= 0 and self.blank[above]:
            above -= 1
        if above >= 0 and (_is_rule(self.lines[above]) or _is_dashed_marker(self.lines[above])):
            return above
        return index

    def _attribution_end(self, index: int) -> int | None:
        """If an attribution starts at index (possibly wrapped), the line after it. Only a
        line ending in a colon can end one, so only then are lines joined and checked."""
        lines = self.lines
        first = lines[index]
        for used in range(1, _MAX_ATTRIBUTION_LINES + 1):
            last = index + used - 1
            if lines[last].rstrip().endswith((":", "：")):
                joined = " ".join(line.strip() for line in lines[index : last + 1])
                if is_attribution(joined, first) and (used == 1 or _wrapped_start(first)):
                    return index + used
            following = index + used
            if following >= len(lines) or self.blank[following] or len(lines[following]) > _MAX_MARKER_LINE:
                return None
        return None

    def _interleaved(self, start: int) -> bool:
        """True when the quote after an attribution is answered inline (keep it all then)."""
        next_quote, _, _, last_answer, _ = self.tables
        return next_quote[start] < len(self.lines) and last_answer > next_quote[start]

    def _bottom_posted(self, start: int) -> int | None:
        """After an attribution: one block of quoted lines and then only unquoted text (the
        answer written below the quote) gives the answer's first line; anything else None."""
        _, next_nonblank, block_end, _, last_quote = self.tables
        index = next_nonblank[start]
        if index == len(self.lines) or not self.quoted[index]:
            return None
        index = block_end[index]
        return None if last_quote >= index else index


def _wrapped_start(first_line: str) -> bool:
    lowered = first_line.strip().lstrip("-").strip().lower()
    return lowered.startswith(tuple(start for start, _ in _PREFIXED)) or bool(_HAS_DATE_OR_ADDRESS.search(first_line))


def _is_dashed_marker(line: str) -> bool:
    """A short line with dashes on both sides and words between ("----- Original Nachricht ----",
    a client's own separator): it belongs to the quoted header block below it."""
    stripped = line.strip()
    return 0 < len(stripped) <= 80 and stripped.startswith("--") and stripped.endswith("--") and bool(_marker(stripped))


def _has_content(lines: list[str]) -> bool:
    """Whether any line has words and is more than a separator."""
    for line in lines:
        stripped = line.strip()
        if not stripped or _is_rule(stripped) or _is_dashed_marker(stripped):
            continue
        if _is_separator(stripped, _ORIGINAL_MESSAGE_PHRASES) or _is_separator(stripped, _FORWARDED_PHRASES):
            continue
        if any(char.isalnum() for char in stripped):
            return True
    return False


def _drop_trailing_quotes(lines: list[str]) -> list[str]:
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _is_quoted(lines[end - 1])):
        end -= 1
    return lines[:end]


def _drop_signature(lines: list[str]) -> list[str]:
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    if end > 0 and len(lines[end - 1]) <= _MAX_MARKER_LINE and _MOBILE_SIGNATURE.fullmatch(lines[end - 1]):
        end -= 1
    lines = lines[:end]
    for index in range(len(lines) - 1, max(-1, len(lines) - _MAX_SIGNATURE_LINES - 2), -1):
        if lines[index] in ("-- ", "--"):
            return lines[:index]
    return lines
