"""Charsets: body bytes and RFC 2047 encoded-words to text, with fallbacks that never raise."""

from __future__ import annotations

import binascii
import codecs
import re
import unicodedata

from .limits import MAX_HEADER_CHARS
from .model import SURROGATES, Defects, clean_line, unfold


# charset_normalizer only needs a sample to guess.
CHARSET_SAMPLE_BYTES = 65_536

# Below this many bytes charset_normalizer guesses worse than the short-text scorer.
MIN_GUESS_BYTES = 64
WESTERN_CHAOS_MARGIN = 0.05
_CP1252_HOLES = re.compile(b"([\x81\x8d\x8f\x90\x9d]+)")

# Declared names that Python does not know, or that are better read as a superset.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}


def decode_text(data: bytes, declared: str | None, *, guess: bool = True) -> tuple[str, str | None]:
    """Decode body bytes. Returns (text, note) where note says which fallback was needed.

    Order: the declared charset for 7-bit data (ISO-2022-JP is 7-bit), UTF-8 (strict; bytes
    that pass are almost surely UTF-8 whatever the label says), the declared charset, a
    charset_normalizer guess (only for data long enough to guess from), and finally
    windows-1252, read leniently so it never fails.
    """
    declared_name = (declared or "").strip().strip('"').lower() or None
    codec = None
    unknown = False
    if declared_name:
        codec = _codec(declared_name)
        unknown = codec is None
    if not data:
        return "", None
    is_ascii = data.isascii()
    if codec and not is_ascii and declared_name in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        codec = None  # 8-bit bytes under an ASCII label: the label says nothing about them
    if is_ascii and codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    if is_ascii and b"\x1b$" in data and (codec is None or codec.startswith("iso2022_jp")):
        return decode_iso2022jp_vendor(data), "ISO-2022-JP with vendor characters read as CP50220 (JIS to windows-31j)"
    try:
        text = data.decode("utf-8")
        if is_ascii or codec in (None, "utf-8") or unknown:
            note = f"unknown charset {declared_name!r}, read as utf-8" if unknown else None
            if declared_name is None and not is_ascii:
                note = "no charset declared, read as utf-8"
            elif declared_name and not unknown and not is_ascii and codec is None:
                note = f"declared {declared_name} but content is utf-8"
            return text, note
        return text, f"declared {declared_name} but content is utf-8"
    except UnicodeDecodeError:
        pass
    if codec and codec != "utf-8":
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    else:
        # UTF-8 with a stray broken byte (a cut sequence, a mangled quoted-printable soft break):
        # guessing another charset for the whole text would turn every letter into mojibake.
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad and sum(1 for ch in text if ch > "\x7f") >= 11 * bad:
            what = "no charset declared" if declared_name is None else f"charset {declared_name}"
            return text, f"{what}: {bad} invalid UTF-8 sequence(s) replaced"
    what = "no charset declared" if declared_name is None else (
        f"unknown charset {declared_name!r}" if unknown else f"declared {declared_name} is wrong")
    guessed = _guess_charset(data) if guess and len(data) >= MIN_GUESS_BYTES else None
    if guessed:
        try:
            return data.decode(guessed, errors="replace"), f"{what}, guessed {guessed}"
        except (LookupError, ValueError):
            pass
    if guess and len(data) < MIN_GUESS_BYTES:
        # Too short for charset_normalizer: the scorer made for header text reads it better.
        short = guess_short_charset(data)
        if short != "cp1252":
            return data.decode(short, errors="replace"), f"{what}, read as {short}"
    return _decode_cp1252(data), f"{what}, read as windows-1252"


_ISO2022_ESCAPE = re.compile(rb"\x1b(\(B|\(J|\$@|\$B|\(I|\$\(D|\$\(Q|\$\(O)")


def decode_iso2022jp_vendor(data: bytes) -> str:
    """ISO-2022-JP as Japanese mailers write it (Microsoft's CP50220): JIS X 0208 rows with the
    NEC and IBM extensions (①, ㈱, Roman numerals) that the strict codec refuses. Each two-byte
    JIS run is mapped to Shift_JIS and read as windows-31j; one pass, never raises."""
    out: list[str] = []
    mode = b"(B"
    position = 0
    for match in _ISO2022_ESCAPE.finditer(data):
        out.append(_iso2022_run(data[position : match.start()], mode))
        mode, position = match.group(1), match.end()
    out.append(_iso2022_run(data[position:], mode))
    return "".join(out)


def _iso2022_run(run: bytes, mode: bytes) -> str:
    if mode in (b"(B", b"(J"):
        return run.decode("ascii", errors="replace")
    if mode == b"(I":
        return bytes(byte | 0x80 for byte in run).decode("cp932", errors="replace")
    sjis = bytearray()
    for index in range(0, len(run) - 1, 2):
        first, second = run[index], run[index + 1]
        if not (0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E):
            sjis += b"?"
            continue
        if first % 2:
            second += 0x1F if second < 0x60 else 0x20
        else:
            second += 0x7E
        first = ((first + 1) >> 1) + (0x70 if first <= 0x5E else 0xB0)
        sjis += bytes((first, second))
    return sjis.decode("cp932", errors="replace")


def _decode_cp1252(data: bytes) -> str:
    """windows-1252 where defined, Latin-1 for its five holes: never fails, never replaces."""
    return "".join(
        chunk.decode("cp1252") if index % 2 == 0 else chunk.decode("latin-1")
        for index, chunk in enumerate(_CP1252_HOLES.split(data))
    )


def _codec(name: str) -> str | None:
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None


def _guess_charset(data: bytes) -> str | None:
    """charset_normalizer's guess, biased to windows-1252 when that reads about as well.

    On short texts the detector often ranks a Baltic or Central European code page first for
    what is, far more often in mail, windows-1252.
    """
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data[:CHARSET_SAMPLE_BYTES]))
    except Exception:  # noqa: BLE001
        return None
    usable = [
        match for match in matches
        if not (match.encoding.startswith(("utf_16", "utf_32")) and b"\x00" not in data)
    ]
    if not usable:
        return None
    best = usable[0]
    for match in usable:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + WESTERN_CHAOS_MARGIN:
            return "cp1252"
    return best.encoding


def unescape(value: str, charset: str | None = None, notes: Defects | None = None, label: str = "header") -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes. They are read as UTF-8 when they
    are valid UTF-8, else in the charset the message declares, else in the charset that reads
    them most plausibly (guess_short_charset); a note says which."""
    if not SURROGATES.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return SURROGATES.sub("\ufffd", value)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = _codec(charset) if charset else None
    if codec and codec != "utf-8":
        try:
            text = data.decode(codec)
            if notes is not None:
                notes.add(f"{label}: raw 8-bit text read in the declared charset {charset}")
            return text
        except (UnicodeDecodeError, LookupError):
            pass
    codec = guess_short_charset(data)
    if notes is not None:
        notes.add(f"{label}: raw 8-bit text without a usable charset, read as {codec}")
    return data.decode(codec, errors="replace")


# Tried in this order; on a tie the earlier wins, so western text stays windows-1252.
_SHORT_CANDIDATES = ("cp1252", "cp1250", "koi8_r", "cp1251", "iso8859_7", "gb18030", "cp932", "big5", "cp949")


def guess_short_charset(data: bytes) -> str:
    """The charset that reads a few undeclared 8-bit bytes (a subject, a name) most plausibly.

    charset_normalizer needs far more text than a header holds (it reads a KOI8-R subject as
    Shift_JIS). This scores each candidate by its non-ASCII characters: letters of one script
    count for it; symbols, half-width kana, a script change inside a word and a capital after a
    small letter count against it. Linear in the length.
    """
    best, best_score = "cp1252", None
    for codec in _SHORT_CANDIDATES:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text)
        if best_score is None or score > best_score:
            best, best_score = codec, score
    return best


def _plausibility(text: str) -> int:
    scripts: dict[str, int] = {}
    penalty = 0
    previous = " "
    previous_script = ""
    accented_run = 0  # non-ASCII Latin letters in a row: western words have one or two
    for char in text:
        if char < "\x80":
            script = "LATIN" if char.isalpha() else ""
            accented_run = 0
        elif not char.isalpha():
            penalty += 1
            script = ""
            accented_run = 0
        else:
            script = unicodedata.name(char, "").split(" ", 1)[0]
            weight = 1
            if script == "HALFWIDTH":
                penalty += 1
            elif script in ("HIRAGANA", "KATAKANA"):
                weight = 3  # kana only come from a Japanese charset
            elif script in ("CJK", "HANGUL"):
                weight = 2  # one character from two bytes
            if script in _CJK_SCRIPTS:
                script = "CJK"
            scripts[script] = scripts.get(script, 0) + weight
            if previous.islower() and char.isupper():
                penalty += 1
            accented_run = accented_run + 1 if script == "LATIN" else 0
            if accented_run >= 3:
                penalty += 1
        if script and previous_script and script != previous_script:
            penalty += 1
        previous, previous_script = char, script
    return (max(scripts.values()) if scripts else 0) - 2 * penalty


_CJK_SCRIPTS = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "IDEOGRAPHIC"})


# RFC 2047 encoded-words as the email package recognizes them when it writes a header: any
# "=?charset?b|q?text?=" with no "?" inside charset or text, white space allowed, anywhere in
# the value; and, as it reads them, a text that starts with "=XX" and runs to the end of the
# value without a closing "?=". Each part stops at the next "?": matching is linear.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?(?:([^?]*)\?=|(=[0-9A-Fa-f]{2}[^?]*)\Z)")
_QUOTED_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
# Characters that end a line somewhere (NEL, LINE and PARAGRAPH SEPARATOR) and the other C1
# controls; clean_line already handles CR, LF and the C0 controls.
_C1_AND_SEPARATORS = re.compile("[\x80-\x9f\u2028\u2029]")
# An encoded word whose text is another encoded word is decoded again, up to this many rounds.
# Each round is linear and shrinks the value; what is still encoded after the last round is
# hostile, and its "=?" are broken apart so that nothing downstream decodes it either.
MAX_DECODE_ROUNDS = 5


def decode_words(value: str, defects: Defects | None, name: str = "header") -> str:
    """Header text from mail in its final form: RFC 2047 encoded-words decoded until nothing
    changes (an encoded word may hold another one), control characters and line separators
    removed after every round. The result is a fixed point: decoding it again, here or in the
    email package while writing a header, changes nothing (docs/parsing.md). Bad charsets and
    bad encodings fall back, never raise."""
    value = _header_line(unfold(unescape(value))[:MAX_HEADER_CHARS])
    rounds = 0
    while "=?" in value:
        decoded = _header_line(_decode_once(value, defects, name))
        if decoded == value:
            break
        value, rounds = decoded, rounds + 1
        if rounds == MAX_DECODE_ROUNDS and _ENCODED_WORD.search(value):
            value = value.replace("=?", "= ?")
            if defects is not None:
                defects.add(f"{name}: encoded more than {MAX_DECODE_ROUNDS} times; the rest was left encoded")
            break
    if rounds > 1 and defects is not None:
        defects.add(f"{name}: encoded more than once; decoded {rounds} times")
    return value


def _header_line(value: str) -> str:
    return _C1_AND_SEPARATORS.sub(" ", clean_line(value)).strip()


def _decode_once(value: str, defects: Defects | None, name: str) -> str:
    """One round: every encoded word decoded; white space between two of them dropped."""
    pieces: list[str] = []
    position, after_word = 0, False
    for word in _ENCODED_WORD.finditer(value):
        between = value[position : word.start()]
        if not (after_word and (not between or between.isspace())):
            pieces.append(between)
        charset, encoding, closed, unclosed = word.groups()
        text = closed if closed is not None else unclosed
        data = _b_decode(text) if encoding in "bB" else _q_decode(text)
        decoded, fallback = decode_text(data, charset.partition("*")[0] or None, guess=False)
        if fallback and defects is not None:
            defects.add(f"{name}: {fallback}")
        pieces.append(decoded)
        position, after_word = word.end(), True
    pieces.append(value[position:])
    return "".join(pieces)


def _b_decode(text: str) -> bytes:
    data = _NOT_BASE64.sub("", text)
    if len(data) % 4 == 1:
        data = data[:-1]  # a lone last character holds no byte
    try:
        return binascii.a2b_base64(data + "=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def _q_decode(text: str) -> bytes:
    data = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QUOTED_BYTE.sub(lambda byte: bytes((int(byte.group(1), 16),)), data)
