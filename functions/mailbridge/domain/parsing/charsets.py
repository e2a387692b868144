"""Charsets: body bytes and RFC 2047 encoded-words to text, with fallbacks that never raise."""

from __future__ import annotations

import binascii
import codecs
import re

from . import short_text
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
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "windows-949": "cp949",
    "x-windows-949": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "x-euc-jp": "euc_jp",
    "x-x-big5": "big5",
    "iso-2022-jp": "iso2022_jp_ext",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}


# Labels that say nothing about 8-bit bytes: such bytes are read as if undeclared.
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968"})


def decode_text(data: bytes, declared: str | None, *, guess: bool = True) -> tuple[str, str | None]:
    """Decode body bytes. Returns (text, note) where note says which fallback was needed.

    Order: the declared charset for 7-bit data (ISO-2022-JP is 7-bit), UTF-8 (strict; bytes
    that pass are almost surely UTF-8 whatever the label says), the declared charset, a
    charset_normalizer guess (only for data long enough to guess from), and finally
    windows-1252, read leniently so it never fails.
    """
    label = (declared or "").strip().strip('"').lower() or None
    codec = _codec(label) if label else None
    unknown = label is not None and codec is None
    if not data:
        return "", None
    is_ascii = data.isascii()
    if codec and not is_ascii and label in _ASCII_LABELS:
        codec = None  # 8-bit bytes under an ASCII label: the label says nothing about them
    return (_decode_seven_bit(data, codec, is_ascii)
            or _decode_utf8(data, label, codec, unknown, is_ascii)
            or _decode_declared(data, label, codec)
            or _decode_guessed(data, label, unknown, guess))


def _decode_seven_bit(data: bytes, codec: str | None, is_ascii: bool) -> tuple[str, str | None] | None:
    if not is_ascii:
        return None
    if codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    if b"\x1b$" in data and (codec is None or codec.startswith("iso2022_jp")):
        return decode_iso2022jp_vendor(data), "ISO-2022-JP with vendor characters read as CP50220 (JIS to windows-31j)"
    return None


def _decode_utf8(data: bytes, label: str | None, codec: str | None, unknown: bool,
                 is_ascii: bool) -> tuple[str, str | None] | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not (is_ascii or codec in (None, "utf-8") or unknown):
        return text, f"declared {label} but content is utf-8"
    note = f"unknown charset {label!r}, read as utf-8" if unknown else None
    if label is None and not is_ascii:
        note = "no charset declared, read as utf-8"
    elif label and not unknown and not is_ascii and codec is None:
        note = f"declared {label} but content is utf-8"
    return text, note


def _decode_declared(data: bytes, label: str | None, codec: str | None) -> tuple[str, str | None] | None:
    """The declared charset; without one (or declared UTF-8), UTF-8 with a few broken bytes."""
    if codec and codec != "utf-8":
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            return None
    # UTF-8 with a stray broken byte (a cut sequence, a mangled quoted-printable soft break):
    # guessing another charset for the whole text would turn every letter into mojibake.
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad and sum(1 for ch in text if ch > "\x7f") >= 11 * bad:
        what = "no charset declared" if label is None else f"charset {label}"
        return text, f"{what}: {bad} invalid UTF-8 sequence(s) replaced"
    return None


def _decode_guessed(data: bytes, label: str | None, unknown: bool, guess: bool) -> tuple[str, str]:
    what = "no charset declared" if label is None else (
        f"unknown charset {label!r}" if unknown else f"declared {label} is wrong")
    guessed = _guess_charset(data) if guess and len(data) >= MIN_GUESS_BYTES else None
    if guessed:
        try:
            return data.decode(guessed, errors="replace"), f"{what}, guessed {guessed}"
        except (LookupError, ValueError):
            pass
    if guess and len(data) < MIN_GUESS_BYTES:
        # Too short for charset_normalizer: the scorer made for header text reads it better.
        short, _ = short_text.choose(data)
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


def codec_name(label: str) -> str | None:
    """The Python codec a declared charset label names (aliases applied), or None."""
    return _codec(label.strip().strip('"').lower())


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


# How many bytes of a message's raw 8-bit header values detection reads: enough for a subject
# and names, and a bound on the work a header block full of them can cost (about 4 ms of CPU).
HEADER_SAMPLE_BYTES = 1_024


_ASCII_BYTES = bytes(range(128))


class HeaderCharset(str):
    """The codec chosen for raw 8-bit header bytes (header_charset), with how it was found:
    `declared` is the label the message declares (None if none or an ASCII label), `detected`
    whether detection chose the codec rather than that label."""

    declared: str | None = None
    detected: bool = False


def header_charset(values: list[str], declared: str | None, *, normalizer: bool = True) -> HeaderCharset | None:
    """The charset for raw 8-bit header values (surrogate escapes, as the stdlib leaves them),
    chosen once over all of them (docs/parsing.md, trait C): the declared charset when it reads
    them as valid text in one script, else the candidate that reads them best (short_text,
    with charset_normalizer's guess as one more candidate for a long sample when `normalizer`).
    None when every value is ASCII or valid UTF-8."""
    label = (declared or "").strip().strip('"').lower() or None
    codec = _codec(label) if label and label not in _ASCII_LABELS else None
    sample, cut = _raw_sample(values)
    if not sample:
        return _declared_header_charset(codec, label) if codec else None
    extra = ()
    if normalizer and len(sample) >= MIN_GUESS_BYTES:
        guessed = _guess_charset(sample)
        extra = (guessed,) if guessed else ()
    chosen, detected = short_text.choose(sample, codec, extra, cut)
    if not detected:
        return _declared_header_charset(chosen, label)
    result = HeaderCharset(chosen)
    result.declared, result.detected = (label if codec else None), True
    return result


def _declared_header_charset(codec: str, label: str | None) -> HeaderCharset:
    result = HeaderCharset(codec)
    result.declared = label
    return result


def _raw_sample(values: list[str]) -> tuple[bytes, bool]:
    """The first HEADER_SAMPLE_BYTES of the values that hold 8-bit bytes and are not UTF-8, and
    whether the last of them was cut."""
    chunks: list[bytes] = []
    size = 0
    for value in values:
        room = HEADER_SAMPLE_BYTES - size
        if room <= 0:
            break
        data = value.encode("utf-8", "surrogateescape")
        cut = len(data) > room
        if cut:
            # A long value: its sample starts at the word that holds its first 8-bit byte.
            first = len(data) - len(data.lstrip(_ASCII_BYTES))
            data = data[data.rfind(b" ", 0, first) + 1 :]
            cut = len(data) > room
            data = data[:room]
        if data.isascii() or short_text.read_as(data, "utf-8", cut) is not None:
            continue
        chunks.append(data)
        size += len(data) + 1
        if cut:
            return b"\n".join(chunks), True
    return b"\n".join(chunks), False


def unescape(value: str, charset: str | None = None, notes: Defects | None = None, label: str = "header") -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes. They are read as UTF-8 when they
    are valid UTF-8 (unless a declared East Asian charset reads them better: short_text), else
    in `charset`: a HeaderCharset already chosen for the message, or a declared label, which
    header_charset weighs against the other candidates; a note says which."""
    if not SURROGATES.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return SURROGATES.sub("\ufffd", value)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    declared = isinstance(charset, HeaderCharset) and not charset.detected
    if text is not None and not (declared and short_text.reads_better_than_utf8(data, charset)):
        return text
    chosen = charset if isinstance(charset, HeaderCharset) else None
    chosen = chosen or header_charset([value], charset, normalizer=False) or _WINDOWS_1252
    if notes is not None:
        notes.add(_raw_header_note(label, chosen))
    return data.decode(chosen, errors="replace")


_WINDOWS_1252 = HeaderCharset("cp1252")
_WINDOWS_1252.detected = True


def _raw_header_note(label: str, chosen: HeaderCharset) -> str:
    if not chosen.detected:
        return f"{label}: raw 8-bit text read in the declared charset {chosen.declared}"
    if chosen.declared:
        return f"{label}: raw 8-bit text is not {chosen.declared} as declared; read as {chosen}"
    return f"{label}: raw 8-bit text without a usable charset, read as {chosen}"


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
    """One round: every encoded word decoded; white space between two of them dropped. Adjacent
    words in one charset are decoded together, as the email package does: mailers split a
    character between two words (flufl.bounce's simple_39 cuts a Cyrillic letter in two)."""
    pieces: list[str] = []
    run: list[bytes] = []  # the bytes of adjacent words in one charset, not yet decoded
    run_charset: str | None = None
    position, after_word = 0, False
    for word in _ENCODED_WORD.finditer(value):
        between = value[position : word.start()]
        adjacent = after_word and (not between or between.isspace())
        charset, encoding, closed, unclosed = word.groups()
        charset = charset.partition("*")[0].lower() or None
        if run and not (adjacent and charset == run_charset):
            pieces.append(_decode_word_bytes(b"".join(run), run_charset, defects, name))
            run = []
        if not adjacent:
            pieces.append(between)
        text = closed if closed is not None else unclosed
        run.append(_b_decode(text) if encoding in "bB" else _q_decode(text))
        run_charset, position, after_word = charset, word.end(), True
    if run:
        pieces.append(_decode_word_bytes(b"".join(run), run_charset, defects, name))
    pieces.append(value[position:])
    return "".join(pieces)


def _decode_word_bytes(data: bytes, charset: str | None, defects: Defects | None, name: str) -> str:
    decoded, fallback = decode_text(data, charset, guess=False)
    if fallback and defects is not None:
        defects.add(f"{name}: {fallback}")
    return decoded


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
