"""Which charset reads a few undeclared 8-bit bytes (a subject, a name, a short body) as text.

charset_normalizer needs far more text than a header holds (it reads a KOI8-R subject as
Shift_JIS, and most short Chinese subjects as something else). Here each candidate's reading is
scored by its non-ASCII characters: letters of one script count for it, and for the East Asian
charsets a character counts by how common it is in that charset's own standard (GB2312 level 1,
JIS X 0208 level 1, Big5's frequent block, the 2,350 Hangul syllables of KS X 1001), so that
bytes written in one of them and read in another turn into rare characters, kana where no kana
belong, or half-width katakana. Symbols, a script change inside a word and odd capitals count
against a reading. A reading without any of those is clean: valid text in one script.
Linear in the length of the text; docs/parsing.md (trait C) gives the order of the choice.
"""

from __future__ import annotations

import unicodedata

# Tried in this order after the declared charset; on a tie the earlier wins, so western text
# stays windows-1252, and Korean (whose common syllables are also valid Chinese) is tried before
# Chinese, which is tried before Japanese without kana and before Big5.
CANDIDATES = ("cp1252", "cp1250", "iso8859_2", "koi8_r", "cp1251", "iso8859_7",
              "cp949", "gb18030", "cp932", "euc_jp", "big5")
# The language a multi-byte charset writes; a single-byte one has none.
_LANGUAGE = {"cp949": "ko", "euc_kr": "ko", "gb18030": "zh", "gbk": "zh", "gb2312": "zh", "big5": "zh-tw",
             "big5hkscs": "zh-tw", "cp950": "zh-tw", "cp932": "ja", "shift_jis": "ja", "euc_jp": "ja"}
# Punctuation western mail writes with windows-1252's 0x80-0x9F (and the numero sign of cp1251);
# not the single low quote, which Shift_JIS read as windows-1252 is full of.
_TYPOGRAPHIC = frozenset("„“”‘’–—…•€«»·№")
# Letters no text writes, though Unicode calls them letters: the florin sign.
_NOT_LETTERS = frozenset("ƒ")
# How much one character weighs: a common ideograph or syllable stands for two bytes, as do two
# letters of a single-byte charset; kana come from a Japanese charset only, so they weigh more.
COMMON, LESS_COMMON, KANA = 2, 1, 3


def score(text: str, codec: str) -> tuple[int, bool]:
    """(score, clean) of `text` as read in `codec`."""
    language = _LANGUAGE.get(codec)
    weights: dict[str, int] = {}
    penalties = 0
    before = previous = " "
    previous_family = word_family = ""  # word_family: the script of the word's non-ASCII letters
    accented_run = 0  # non-ASCII Latin letters in a row: western words have one or two
    ascii_letters = 0  # ASCII letters of the word before its first non-ASCII letter
    for char in text:
        family = ""
        if char < "\x80":
            if char.isalpha() and language is None:
                family = "LATIN"
                penalties += char.isupper() and previous.islower() and previous >= "\x80"
                if word_family:
                    weights[word_family] += 1
                else:
                    ascii_letters += 1
            else:
                ascii_letters, word_family = 0, ""
            accented_run = 0
        elif language is not None:
            family, weight, penalty = _east_asian(char, language)
            penalties += penalty
            if family:
                weights[family] = weights.get(family, 0) + weight
        elif char.isalpha() and char not in _NOT_LETTERS:
            family = unicodedata.name(char, "").split(" ", 1)[0]
            weights[family] = weights.get(family, 0) + 1 + ascii_letters
            ascii_letters, word_family = 0, family
            penalties += _odd_capital(before, previous, char)
            accented_run = accented_run + 1 if family == "LATIN" else 0
            penalties += accented_run >= 3
        else:
            ascii_letters, word_family = 0, ""
            penalties += char not in _TYPOGRAPHIC
        if family and previous_family and family != previous_family:
            penalties += 1
        before, previous, previous_family = previous, char, family
    return (max(weights.values()) if weights else 0) - 2 * penalties, not penalties


def _odd_capital(before: str, previous: str, char: str) -> int:
    """A capital after a small letter (`мА`), or a small letter after two capitals (`ДЕк`)."""
    if char.isupper():
        return int(previous.islower())
    return int(char.islower() and previous.isupper() and before.isupper())


def _east_asian(char: str, language: str) -> tuple[str, int, int]:
    """(family, weight, penalty) of one non-ASCII character read in an East Asian charset."""
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3005 <= code <= 0x3007 or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return _ideograph(char, language)
    if 0x3041 <= code <= 0x30FF and code != 0x30FB:
        return ("JA", KANA, 0) if language == "ja" else ("KANA", 0, 2)
    if 0xAC00 <= code <= 0xD7A3:
        if language != "ko":
            return "HANGUL", 0, 2
        return ("KO", COMMON, 0) if _in_ks_x_1001(char) else ("KO", 0, 1)
    if 0x3131 <= code <= 0x318E:  # Hangul jamo on their own (ㅋㅋ)
        return ("KO", 0, 0) if language == "ko" else ("HANGUL", 0, 2)
    if 0xFF66 <= code <= 0xFF9F or code == 0xFFFD or unicodedata.category(char) in ("Co", "Cn", "Cc", "Cf"):
        return "", 0, 1  # half-width katakana, private use, unassigned, controls
    if 0xFF21 <= code <= 0xFF5A or not char.isalpha():
        return "", 0, 0  # full-width letters, the charset's punctuation and symbols
    return "", 0, 2  # a Greek, Cyrillic or accented Latin letter from an East Asian charset


def _ideograph(char: str, language: str) -> tuple[str, int, int]:
    if language == "ko":
        return "KO", 0, 0  # Hanja: rare in Korean mail, but no sign of a wrong reading
    tier = _tier(char, language)
    family = "JA" if language == "ja" else "HAN"
    return family, tier, int(tier == 0)


def _tier(char: str, language: str) -> int:
    """COMMON for the first level of the language's standard, LESS_COMMON for the second, 0 else."""
    try:
        if language == "zh":
            lead = char.encode("gb2312")[0]
            return COMMON if lead <= 0xD7 else LESS_COMMON
        if language == "ja":
            lead = char.encode("euc_jp")[0]
            return COMMON if 0xB0 <= lead <= 0xCF else LESS_COMMON if 0xD0 <= lead <= 0xF4 else 0
        encoded = char.encode("big5")
        code = encoded[0] << 8 | encoded[1]
        return COMMON if 0xA440 <= code <= 0xC67E else LESS_COMMON if code >= 0xC940 else 0
    except (UnicodeEncodeError, IndexError):
        return 0


def _in_ks_x_1001(char: str) -> bool:
    """One of the 2,350 syllables of KS X 1001 (the others encode as 8-byte jamo sequences)."""
    try:
        return len(char.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False


def read_as(data: bytes, codec: str, cut: bool = False) -> str | None:
    """`data` decoded strictly, or None. When `data` is a sample cut from longer text, a
    multi-byte character cut at its end is dropped rather than failing the reading."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        if not cut or e.end < len(data) or e.start < len(data) - 3:
            return None
        try:
            return data[: e.start].decode(codec)
        except UnicodeDecodeError:
            return None
    except LookupError:
        return None


# How many bytes of a value that is valid UTF-8 are read again in a declared East Asian charset.
UTF8_CHECK_BYTES = 256


def reads_better_than_utf8(data: bytes, codec: str) -> bool:
    """Short East Asian text can be valid UTF-8 by chance (轢院 in Shift_JIS is 瀉@ in UTF-8, 큄
    in EUC-KR is š): a declared East Asian codec wins when its reading is clean and scores at
    least as well as the UTF-8 one, read both as text of that language and as any text
    (`danglüe` in UTF-8 is a word, `dangl眉e` in GB2312 is not)."""
    if codec not in _LANGUAGE:
        return False
    sample = data[:UTF8_CHECK_BYTES]
    cut = len(sample) < len(data)
    declared_text, utf8_text = read_as(sample, codec, cut), read_as(sample, "utf-8", cut)
    if declared_text is None or utf8_text is None:
        return False
    value, clean = score(declared_text, codec)
    return clean and value >= max(score(utf8_text, codec)[0], score(utf8_text, "utf-8")[0])


def choose(sample: bytes, declared: str | None = None, extra: tuple[str, ...] = (), cut: bool = False) -> tuple[str, bool]:
    """(codec, detected) for 8-bit bytes that are not UTF-8 (`cut`: a sample cut from longer text).

    The declared codec when its reading is clean (valid text in one script). Else the best
    scoring of the clean readings and the declared one (which wins a tie); without either, the
    best reading of any candidate; windows-1252 when nothing reads.
    """
    readings: list[tuple[int, str]] = []
    unclean: list[tuple[int, str]] = []
    order = ((declared,) if declared else ()) + CANDIDATES + extra
    for codec in dict.fromkeys(order):
        text = read_as(sample, codec, cut)
        if text is None:
            continue
        value, clean = score(text, codec)
        if codec == declared and clean:
            return codec, False
        (readings if clean or codec == declared else unclean).append((value, codec))
    best = _best(readings or unclean)
    return (best, best != declared) if best else ("cp1252", True)


def _best(readings: list[tuple[int, str]]) -> str | None:
    """The codec of the highest score; the earliest on a tie."""
    best_value, best_codec = None, None
    for value, codec in readings:
        if best_value is None or value > best_value:
            best_value, best_codec = value, codec
    return best_codec
