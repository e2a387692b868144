"""The three traits a held-out corpus of helpdesk mail found (issue 34, docs/parsing.md): a top-level
header block whose continuation lines lost their indent, raw 8-bit East Asian headers, and files
inside the multipart/alternative branch that is not shown. One minimal message per trait, and
properties over generated ones."""

import base64

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mailbridge.domain.parsing import Address, parse_message

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw_subject_message(subject: bytes, content_type: str | None, body: bytes = b"Hello.\r\n") -> bytes:
    head = b"From: a@customer.example\r\nMessage-ID: <m@customer.example>\r\nSubject: " + subject + b"\r\n"
    if content_type:
        head += b"Content-Type: " + content_type.encode("ascii") + b"\r\n"
    return head + b"\r\n" + body


# --- a header block whose continuation lines lost their indent

TRACKING = base64.encodebytes(bytes(range(256)) * 2).decode("ascii").splitlines()  # eleven 76-column lines


def test_a_tracking_header_wrapped_at_column_0_keeps_every_header_after_it():
    raw = ("Received: from relay.example by mx.example; Mon, 7 Dec 2026 10:00:00 +0000\r\n"
           f"X-Relay-Tracking: {TRACKING[0]}\r\n" + "".join(line + "\r\n" for line in TRACKING[1:])
           + "From: Alice <alice@customer.example>\r\nTo: support@helpdesk.example\r\nSubject: Printer on fire\r\n"
           "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@customer.example>\r\n\r\nIt smokes.\r\n").encode("ascii")

    parsed = parse_message(raw)

    assert parsed.subject == "Printer on fire"
    assert parsed.from_ == Address("alice@customer.example", "Alice")
    assert parsed.to == [Address("support@helpdesk.example")]
    assert parsed.date == "2026-12-07T10:00:00+00:00"
    assert parsed.text == "It smokes."
    assert parsed.header("x-relay-tracking") == " ".join(TRACKING)
    assert "header line without a field name joined to the header above" in parsed.defects


def test_a_continuation_whose_name_is_no_field_name_is_joined_to_its_header():
    raw = (b"From: alice@customer.example\r\nThread-Topic: About the\r\n=?utf-8?Q?invoice:_March?=\r\n"
           b"Subject: Invoice\r\nMessage-ID: <m1@customer.example>\r\n\r\nHello.\r\n")

    parsed = parse_message(raw)

    assert parsed.header("thread-topic") == "About the invoice: March"
    assert sorted(parsed.headers) == ["from", "message-id", "subject", "thread-topic"]


def test_lines_after_the_last_real_field_still_start_the_body():
    raw = (b"From: alice@customer.example\r\nSubject: Printer\r\nHello,\r\nthe printer\r\nis broken\r\n"
           b"again, and\r\nNote: the toner is empty.\r\n")

    parsed = parse_message(raw)

    assert parsed.subject == "Printer"
    assert parsed.text.startswith("Hello,")


# Fields a header block has, and continuation lines a relay may have left at column 0.
FIELDS = [("From", "alice@customer.example"), ("To", "support@helpdesk.example"), ("Cc", "bob@customer.example"),
          ("Subject", "Printer"), ("Date", "Mon, 7 Dec 2026 10:00:00 +0000"), ("Message-ID", "<m1@customer.example>"),
          ("MIME-Version", "1.0"), ("X-Mailer", "Mailer 1.0"), ("X-Relay-Tracking", "abc"), ("List-Id", "<list.example>"),
          ("Received", "from relay.example by mx.example"), ("Reply-To", "alice@customer.example"),
          ("Thread-Topic", "Printer"), ("Content-Type", "text/plain; charset=utf-8")]
continuation_lines = st.one_of(
    st.from_regex(r"[A-Za-z0-9+/]{4,76}={0,2}", fullmatch=True),  # base64
    st.from_regex(r"[a-z]{1,10}( [a-z0-9]{1,10}){0,6}", fullmatch=True),  # words
    st.from_regex(r"[<(\[][a-z]{1,8}:[0-9]{1,8}[>)\]]", fullmatch=True),  # a colon after no field name
)


@st.composite
def header_blocks(draw):
    fields = draw(st.lists(st.sampled_from(FIELDS), min_size=2, max_size=len(FIELDS), unique=True))
    runs = {index: draw(st.lists(continuation_lines, min_size=1, max_size=12))
            for index in draw(st.sets(st.integers(0, len(fields) - 2), min_size=1))}
    lines = []
    for index, (name, value) in enumerate(fields):
        lines.append(f"{name}: {value}")
        lines += runs.get(index, [])
    return fields, runs, ("\r\n".join(lines) + "\r\n\r\nThe body.\r\n").encode("ascii")


@SETTINGS
@given(header_blocks())
def test_any_header_block_with_unindented_continuations_keeps_every_later_field(case):
    fields, runs, raw = case

    parsed = parse_message(raw)

    for index, (name, value) in enumerate(fields):
        stored = parsed.headers[name.lower()][0]
        assert stored == " ".join([value, *runs.get(index, [])]), (name, stored)
    assert parsed.text == "The body."


# --- raw 8-bit East Asian headers


def test_raw_gbk_subject_under_a_latin1_label_is_read_as_chinese():
    parsed = parse_message(raw_subject_message("转发：关于下周会议的通知".encode("gbk"), "text/plain; charset=iso-8859-1"))

    assert parsed.subject == "转发：关于下周会议的通知"
    assert "Subject: raw 8-bit text is not iso-8859-1 as declared; read as gb18030" in parsed.defects


def test_raw_shift_jis_subject_without_a_charset_is_read_as_japanese():
    parsed = parse_message(raw_subject_message("ツールのご案内".encode("shift_jis"), None))

    assert parsed.subject == "ツールのご案内"
    assert "Subject: raw 8-bit text without a usable charset, read as cp932" in parsed.defects


def test_raw_shift_jis_subject_under_a_chinese_label_is_read_as_japanese():
    # Read as GBK these bytes are rare ideographs (僣乕儖), not text anyone writes.
    parsed = parse_message(raw_subject_message("ツール".encode("shift_jis"), "text/plain; charset=gb2312"))

    assert parsed.subject == "ツール"


def test_raw_euc_kr_subject_under_an_ascii_label_is_read_as_korean():
    parsed = parse_message(raw_subject_message("[중요] 시스템 점검 안내".encode("euc-kr"), "text/plain; charset=us-ascii"))

    assert parsed.subject == "[중요] 시스템 점검 안내"


def test_raw_big5_subject_under_a_windows_1252_label_is_read_as_chinese():
    parsed = parse_message(raw_subject_message("轉寄：會議通知".encode("big5"), "text/html; charset=windows-1252"))

    assert parsed.subject == "轉寄：會議通知"


def test_raw_display_name_and_subject_are_read_in_one_charset():
    raw = ("From: 张三 <zhang@customer.example>\r\nSubject: 申请退款\r\nMessage-ID: <m@customer.example>\r\n"
           "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nHello.\r\n").encode("gbk")

    parsed = parse_message(raw)

    assert parsed.from_ == Address("zhang@customer.example", "张三")
    assert parsed.subject == "申请退款"


def test_a_western_subject_keeps_its_declared_latin1():
    parsed = parse_message(raw_subject_message("Grüße aus München".encode("latin-1"), "text/plain; charset=iso-8859-1"))

    assert parsed.subject == "Grüße aus München"
    assert "Subject: raw 8-bit text read in the declared charset iso-8859-1" in parsed.defects


def test_short_shift_jis_that_happens_to_be_valid_utf8_is_read_in_the_declared_charset():
    # E7 80 89 40 is also UTF-8 for 瀉@.
    parsed = parse_message(raw_subject_message("轢院".encode("shift_jis"), "text/plain; charset=Shift_JIS"))

    assert parsed.subject == "轢院"


def test_raw_utf8_with_latin_letters_stays_utf8_under_an_east_asian_label():
    # mail-parser's mail_test_12: C3 BC is ü in UTF-8 and 眉 in GB2312.
    raw = ("From: a@customer.example\r\nTo: danglüe@email.example\r\nMessage-ID: <m@customer.example>\r\n"
           'Content-Type: text/plain;charset="GB2312"\r\n\r\nHello.\r\n').encode("utf-8")

    parsed = parse_message(raw)

    assert parsed.to == [Address("danglüe@email.example")]


def characters(codec: str, leads: range, trails: range = range(0xA1, 0xFF)) -> list[str]:
    """The characters a double-byte codec gives for these lead and trail bytes."""
    found = []
    for lead in leads:
        for trail in trails:
            try:
                found.append(bytes((lead, trail)).decode(codec))
            except UnicodeDecodeError:
                continue
    return [char for char in found if len(char) == 1]


KANA = [chr(code) for code in range(0x3041, 0x3094)] + [chr(code) for code in range(0x30A1, 0x30F7)] + ["ー"]
# Latin words stand apart: bytes that make a word with ASCII letters in UTF-8 are read as UTF-8
# whatever the label (docs/parsing.md), and `PDF茅` in GB2312 is `PDFé` in UTF-8.
ASCII_WORDS = [" ", "Re: ", " PDF ", "2024", "-", "(1)"]
# What subjects in each language are written with: GB2312's ideographs, JIS X 0208's kanji and
# kana, KS X 1001's Hangul syllables, each language's punctuation, and ASCII.
LANGUAGES = {
    "gbk": (characters("gb2312", range(0xB0, 0xF8)) + list("，。：！？、（）【】《》“”") + ASCII_WORDS,
            ["gbk", "gb2312", "GB18030", "x-gbk", "cp936"]),
    "shift_jis": (characters("euc_jp", range(0xB0, 0xF5)) + KANA + list("、。「」・！？（）【】") + ASCII_WORDS,
                  ["Shift_JIS", "shift-jis", "windows-31j", "x-sjis", "cp932"]),
    "euc-kr": (characters("euc_kr", range(0xB0, 0xC9)) + list("，．！？（）［］") + ASCII_WORDS,
               ["euc-kr", "ks_c_5601-1987", "cp949", "windows-949"]),
}


@st.composite
def east_asian_subjects(draw):
    charset = draw(st.sampled_from(sorted(LANGUAGES)))
    alphabet, labels = LANGUAGES[charset]
    subject = "".join(draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=30))).strip()
    assume(subject and not subject.isascii())
    return subject, charset, draw(st.sampled_from(labels)), draw(st.booleans())


@SETTINGS
@given(east_asian_subjects())
def test_any_gbk_shift_jis_or_euc_kr_subject_round_trips_from_raw_bytes(case):
    subject, charset, label, multipart = case
    if multipart:  # the charset is declared by the text part only
        content_type = 'multipart/mixed; boundary="b"'
        body = (f"--b\r\nContent-Type: text/plain; charset={label}\r\n\r\n".encode("ascii")
                + subject.encode(charset) + b"\r\n--b--\r\n")
    else:
        content_type, body = f"text/plain; charset={label}", subject.encode(charset) + b"\r\n"

    parsed = parse_message(raw_subject_message(subject.encode(charset), content_type, body))

    assert parsed.subject == subject


@SETTINGS
@given(st.lists(st.sampled_from(LANGUAGES["shift_jis"][0]), max_size=12), st.lists(st.sampled_from(KANA), min_size=2, max_size=2),
       st.sampled_from([None, "text/plain; charset=us-ascii", "text/plain; charset=iso-8859-1", "text/html; charset=windows-1252"]))
def test_a_shift_jis_subject_with_kana_is_found_whatever_western_label_the_text_has(words, kana, content_type):
    subject = "".join(kana[:1] + words + kana[1:]).strip()

    parsed = parse_message(raw_subject_message(subject.encode("shift_jis"), content_type))

    assert parsed.subject == subject


# --- files in the multipart/alternative branch that is not shown

PDF = base64.b64encode(b"%PDF-1.4 report").decode("ascii")


def alternative(plain_branch: str, rich_branch: str) -> bytes:
    lines = ["From: alice@customer.example", "Subject: Report", "Message-ID: <m1@customer.example>",
             'Content-Type: multipart/alternative; boundary="Apple-Mail=_alt"', "",
             "--Apple-Mail=_alt", plain_branch, "--Apple-Mail=_alt", rich_branch, "--Apple-Mail=_alt--", ""]
    return "\r\n".join(lines).encode("ascii")


def mixed(boundary: str, first: str, *files: str) -> str:
    parts = [f'Content-Type: multipart/mixed; boundary="{boundary}"', "", f"--{boundary}", first]
    for file in files:
        parts += [f"--{boundary}", file]
    return "\r\n".join(parts + [f"--{boundary}--", ""])


PLAIN = "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe report is attached."
HTML = "Content-Type: text/html; charset=us-ascii\r\n\r\n<p>The report is <b>attached</b>.</p>"


def pdf_part(disposition: str = "attachment", content_id: str | None = None) -> str:
    lines = [f"Content-Disposition: {disposition}; filename=report.pdf",
             'Content-Type: application/pdf; name="report.pdf"', "Content-Transfer-Encoding: base64"]
    if content_id:
        lines.append(f"Content-ID: <{content_id}>")
    return "\r\n".join(lines + ["", PDF])


def test_a_file_in_the_rich_branch_is_kept_when_the_plain_branch_is_shown():
    # Apple Mail: the plain text, or the HTML with the file between two HTML parts.
    parsed = parse_message(alternative(PLAIN, mixed("Apple-Mail=_mix", HTML, pdf_part("inline"), HTML)))

    assert parsed.text == "The report is attached."
    assert [(attachment.filename, attachment.data) for attachment in parsed.attachments] == [
        ("report.pdf", b"%PDF-1.4 report")]


def test_a_file_in_both_branches_of_an_alternative_is_kept_once():
    parsed = parse_message(alternative(mixed("plain-mix", PLAIN, pdf_part()), mixed("rich-mix", HTML, pdf_part())))

    assert [attachment.filename for attachment in parsed.attachments] == ["report.pdf"]


def test_copies_the_html_points_at_by_different_content_ids_are_all_kept():
    parsed = parse_message(alternative(mixed("plain-mix", PLAIN, pdf_part("inline", "a@x")),
                                       mixed("rich-mix", HTML, pdf_part("inline", "b@x"))))

    assert sorted(attachment.content_id for attachment in parsed.attachments) == ["a@x", "b@x"]


def test_the_same_file_attached_twice_outside_an_alternative_is_kept_twice():
    raw = ("From: alice@customer.example\r\nMessage-ID: <m1@customer.example>\r\n" + mixed("m", PLAIN, pdf_part(), pdf_part())).encode()

    parsed = parse_message(raw)

    assert [attachment.filename for attachment in parsed.attachments] == ["report.pdf", "report.pdf"]
