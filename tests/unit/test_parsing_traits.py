"""The real-world traits of issue 16, one minimal message each: read right, repair noted."""

import base64
import binascii

import pytest

from mailbridge.domain.parsing import Address, parse_message


def message(*header_lines: str, body: str = "Hello there.\n", raw_head: bytes = b"") -> bytes:
    head = raw_head + "".join(line + "\r\n" for line in header_lines).encode("utf-8")
    return head + b"\r\n" + body.replace("\n", "\r\n").encode("utf-8")


STANDARD = ("Subject: Printer", "Message-ID: <m1@customer.example>", "Date: Sat, 28 Nov 2026 10:00:00 +0000")


# --- A. one malformed header line must not end the header block


def test_continuation_without_indent_keeps_the_headers_after_it():
    parsed = parse_message(message("X-Tracker: abc", "def", "From: alice@customer.example", *STANDARD))

    assert parsed.from_ == Address("alice@customer.example")
    assert parsed.subject == "Printer"
    assert parsed.message_id == "<m1@customer.example>"
    assert parsed.header("x-tracker") == "abc def"
    assert "header line without a field name joined to the header above" in parsed.defects


def test_banner_line_above_the_headers_is_dropped():
    parsed = parse_message(message("---- Original email message ----", "From: alice@customer.example", *STANDARD))

    assert parsed.from_ == Address("alice@customer.example")
    assert parsed.subject == "Printer"
    assert parsed.text == "Hello there."
    assert "lines above the first header that are not headers were dropped" in parsed.defects


def test_obsolete_space_before_the_colon_is_accepted():
    parsed = parse_message(message("From  : alice@customer.example", *STANDARD))

    assert parsed.from_ == Address("alice@customer.example")
    assert "white space before a header colon removed (obsolete syntax)" in parsed.defects


def test_body_without_blank_separator_still_starts_the_body():
    raw = b"From: alice@customer.example\r\nSubject: Printer\r\nThis is the body,\r\nwith lines\r\nof text\r\nand more.\r\n"

    parsed = parse_message(raw)

    assert parsed.subject == "Printer"
    assert "This is the body," in parsed.text


# --- B. addresses


def test_comma_inside_an_encoded_display_name_does_not_split_the_address():
    parsed = parse_message(message("From: =?iso-8859-1?Q?B=FCrling,=20Andreas?= <x@example.com>", *STANDARD))

    assert parsed.from_ == Address("x@example.com", "Bürling, Andreas")


def test_trailing_dot_on_the_domain_is_removed_and_noted():
    parsed = parse_message(message('From: "Clement.Si" <claudia@yahoo.com.>', *STANDARD))

    assert parsed.from_ == Address("claudia@yahoo.com", "Clement.Si")
    assert "From: trailing dot removed from the domain of claudia@yahoo.com" in parsed.defects


def test_message_without_from_takes_the_requester_from_sender():
    parsed = parse_message(message("Sender: bob@customer.example", *STANDARD))

    assert parsed.from_ == Address("bob@customer.example")
    assert "no From; the requester was taken from Sender" in parsed.defects


def test_message_without_from_or_sender_takes_the_requester_from_return_path():
    parsed = parse_message(message("Return-Path: <bounce@customer.example>", *STANDARD))

    assert parsed.from_ == Address("bounce@customer.example")
    assert "no From; the requester was taken from Return-Path" in parsed.defects


def test_display_name_with_reserved_characters_is_kept_in_to():
    parsed = parse_message(message("From: a@customer.example", "To: Max Kohl | [example.com] <kohl@example.com>",
                                   *STANDARD))

    assert parsed.to == [Address("kohl@example.com", "Max Kohl | [example.com]")]


def test_space_between_adjacent_encoded_words_is_dropped():
    parsed = parse_message(message("From: =?utf-8?q?J=C3=BCrgen?= =?utf-8?q?_M=C3=BCller?= <j@example.com>",
                                   "Subject: =?utf-8?q?Drucker?= =?utf-8?q?kabel?=", "Message-ID: <m@x>"))

    assert parsed.subject == "Druckerkabel"
    assert parsed.from_ == Address("j@example.com", "Jürgen Müller")


def test_comment_form_gives_the_display_name():
    parsed = parse_message(message("From: alice@customer.example (Alice Example)", *STANDARD))

    assert parsed.from_ == Address("alice@customer.example", "Alice Example")


def test_requester_without_domain_is_noted():
    parsed = parse_message(message("From: alice", *STANDARD))

    assert "From: 'alice' is not an address with a domain" in parsed.defects


def test_requester_without_domain_prefers_a_full_reply_to():
    parsed = parse_message(message("From: alice", "Reply-To: alice@customer.example", *STANDARD))

    assert parsed.from_ == Address("alice@customer.example")
    assert "From without a domain; the requester was taken from Reply-To" in parsed.defects


# --- C. charsets


def raw_header_message(subject: bytes, content_type: bytes | None, body: bytes = b"body\r\n") -> bytes:
    head = b"From: a@customer.example\r\nMessage-ID: <m@x>\r\nSubject: " + subject + b"\r\n"
    if content_type:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + b"\r\n" + body


def test_raw_gb2312_subject_is_read_in_the_declared_charset():
    parsed = parse_message(raw_header_message("关于会议".encode("gb2312"), b"text/plain; charset=gb2312"))

    assert parsed.subject == "关于会议"
    assert "Subject: raw 8-bit text read in the declared charset gb2312" in parsed.defects


def test_raw_shift_jis_subject_is_read_in_the_declared_charset():
    parsed = parse_message(raw_header_message("会議の件".encode("shift_jis"), b"text/plain; charset=Shift_JIS"))

    assert parsed.subject == "会議の件"


def test_raw_subject_in_a_multipart_uses_the_text_parts_charset():
    body = ("--b\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n" + "текст" + "\r\n--b--\r\n").encode("cp1251")
    parsed = parse_message(raw_header_message("Счёт".encode("cp1251"), b'multipart/mixed; boundary="b"', body))

    assert parsed.subject == "Счёт"


def test_raw_koi8_r_subject_without_any_content_type_is_read_as_cyrillic():
    parsed = parse_message(raw_header_message("Привет, как дела".encode("koi8_r"), None))

    assert parsed.subject == "Привет, как дела"
    assert "Subject: raw 8-bit text without a usable charset, read as koi8_r" in parsed.defects


def test_raw_latin1_filename_uses_the_declared_charset():
    raw = (b"From: a@customer.example\r\nMessage-ID: <m@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nsee file\r\n"
           b"--b\r\nContent-Type: application/pdf; charset=iso-8859-1\r\n"
           b"Content-Disposition: attachment; filename=\"R\xe9sum\xe9.pdf\"\r\n\r\n%PDF\r\n--b--\r\n")

    parsed = parse_message(raw)

    assert [a.filename for a in parsed.attachments] == ["Résumé.pdf"]


def test_iso_2022_jp_with_nec_characters_is_read_and_noted():
    body = b"\x1b$B\x2d\x21\x24\x22\x1b(B ok\r\n"  # ① (NEC row 13) then あ
    parsed = parse_message(raw_header_message(b"x", b"text/plain; charset=iso-2022-jp", body))

    assert parsed.text == "①あ ok"
    assert any("ISO-2022-JP with vendor characters" in defect for defect in parsed.defects)


def test_uuencoded_part_without_begin_line_is_decoded():
    encoded = binascii.b2a_uu(b"hello world").decode()
    raw = message("From: a@customer.example", "Message-ID: <m@x>",
                  "Content-Type: text/plain; name=a.txt", "Content-Disposition: attachment; filename=a.txt",
                  "Content-Transfer-Encoding: x-uuencode", body=encoded + "`\n")

    parsed = parse_message(raw)

    assert parsed.attachments[0].data == b"hello world"
    assert "uuencoded part without a begin line was decoded line by line" in parsed.defects


# --- D. structure


def test_unquoted_boundary_with_equals_sign_is_read_whole():
    boundary = "----=_NextPart_000_0093"
    body = (f"--{boundary}\nContent-Type: text/plain\n\nHello plain\n--{boundary}\nContent-Type: text/html\n\n"
            f"<p>Hello html</p>\n--{boundary}--\n")
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>",
                                   f"Content-Type: multipart/alternative; boundary={boundary}", body=body))

    assert parsed.text == "Hello plain"
    assert parsed.attachments == []
    assert "unquoted MIME boundary with reserved characters was read whole" in parsed.defects


def test_nested_multipart_reusing_its_parents_boundary_keeps_the_parts_after_it():
    body = ("--B\nContent-Type: multipart/alternative; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nHello\n"
            "--B\nContent-Type: text/html\n\n<p>Hello</p>\n--B--\n\n--B\nContent-Type: application/zip; name=\"a.zip\"\n\n"
            "PK\n--B--\n")
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>",
                                   'Content-Type: multipart/mixed; boundary="B"', body=body))

    assert parsed.text == "Hello"
    assert [a.filename for a in parsed.attachments] == ["a.zip"]
    assert "a nested multipart reused its parent's boundary; it was given its own" in parsed.defects


def test_truncated_multipart_keeps_its_text():
    body = "--xx\nContent-Type: text/plain\n\nHello truncated\n--xx\nContent-Type: application/pdf\n\n%PDF"
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>",
                                   'Content-Type: multipart/mixed; boundary="xx"', body=body))

    assert parsed.text == "Hello truncated"
    assert all(not a.content_type.startswith("multipart/") for a in parsed.attachments)


def test_declared_multipart_without_parts_is_read_as_text():
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>",
                                   'Content-Type: multipart/mixed; boundary="xx"', body="Just text here\n"))

    assert parsed.text == "Just text here"
    assert parsed.attachments == []
    assert "multipart/mixed without any part; its body was read as text" in parsed.defects


# --- F. quote stripping and the plain/HTML choice


def test_gmx_original_nachricht_separator_goes_with_the_header_block():
    body = "Danke!\n\n----- Original Nachricht ----\nVon: a@b.de\nDatum: 1.1.2026\nBetreff: x\n\nalter Text\n"
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>", body=body))

    assert parsed.text == "Danke!"


def test_stub_plain_part_gives_way_to_the_html_letter():
    html = "<html><body><h1>November news</h1>" + "<p>Our printers now print twice as fast.</p>" * 12 + "</body></html>"
    body = ('--b\nContent-Type: text/plain\n\nView this message in your browser: https://news.example/1\n'
            f'--b\nContent-Type: text/html\n\n{html}\n--b--\n')
    parsed = parse_message(message("From: news@customer.example", "Message-ID: <m@x>",
                                   'Content-Type: multipart/alternative; boundary="b"', body=body))

    assert "Our printers now print twice as fast." in parsed.text
    assert "the plain-text part is a stub of the HTML part; the HTML text was shown" in parsed.defects


def test_short_plain_answer_is_not_a_stub():
    html = "<p>Thanks</p>" + "<p>ACME Corp, 1 Printer Street, Springfield</p>" * 3
    body = f'--b\nContent-Type: text/plain\n\nThanks\n--b\nContent-Type: text/html\n\n{html}\n--b--\n'
    parsed = parse_message(message("From: a@customer.example", "Message-ID: <m@x>",
                                   'Content-Type: multipart/alternative; boundary="b"', body=body))

    assert parsed.text == "Thanks"


def test_declared_multipart_with_a_binary_body_is_kept_as_a_file():
    raw = (b"From: a@customer.example\r\nMessage-ID: <m@x>\r\nContent-Type: multipart/form-data\r\n\r\n"
           b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")

    parsed = parse_message(raw)

    assert [a.content_type for a in parsed.attachments] == ["application/octet-stream"]
    assert "multipart/form-data without any part; its binary body was kept as a file" in parsed.defects


def test_eight_bit_body_under_an_ascii_label_is_read_as_undeclared():
    raw = raw_header_message(b"x", b'text/plain; charset="us-ascii"', "Это сообщение".encode("cp1251") + b"\r\n")

    parsed = parse_message(raw)

    assert parsed.text == "Это сообщение"
    assert "text/plain part: declared us-ascii is wrong, read as cp1251" in parsed.defects


def test_list_archive_address_form_is_read_and_noted():
    parsed = parse_message(message("From: vondruch at redhat.com (=?ISO-8859-2?Q?V=EDt_Ondruch?=)", *STANDARD))

    assert parsed.from_ == Address("vondruch@redhat.com", "Vít Ondruch")
    assert "From: address written as 'user at host' read as vondruch@redhat.com" in parsed.defects


def test_name_only_from_is_no_requester_and_noted():
    parsed = parse_message(message("From: =?koi8-r?B?8sXL0sXB1MnXzs/FIMHHxc7U09TXzw==?=", *STANDARD))

    assert parsed.from_ is None
    assert "missing or unreadable From" in parsed.defects


def test_body_without_blank_separator_is_not_joined_to_the_headers():
    raw = b"From: alice@customer.example\r\nSubject: Printer\r\nHello there,\r\nNote: the toner is empty.\r\n"

    parsed = parse_message(raw)

    assert parsed.subject == "Printer"
    assert "Hello there," in parsed.text


# --- inline text parts that name a file (CPython's msg_04: two inline text/plain parts, both named)


def test_named_inline_text_part_is_shown_and_kept_as_its_file():
    body = ('--B\nContent-Type: text/plain\nContent-Disposition: inline; filename="msg.txt"\n\n'
            "a simple kind of mirror\n--B--\n")
    parsed = parse_message(message("From: a@customer.example", *STANDARD,
                                   'Content-Type: multipart/mixed; boundary="B"', body=body))

    assert "a simple kind of mirror" in parsed.text
    assert [a.filename for a in parsed.attachments] == ["msg.txt"]


def test_named_text_part_without_disposition_is_shown_when_nothing_else_is_text():
    body = '--B\nContent-Type: text/plain; name="msg.txt"\n\na simple kind of mirror\n--B--\n'
    parsed = parse_message(message("From: a@customer.example", *STANDARD,
                                   'Content-Type: multipart/mixed; boundary="B"', body=body))

    assert "a simple kind of mirror" in parsed.text
    assert [a.filename for a in parsed.attachments] == ["msg.txt"]
    assert "no text part; the text files named without a disposition were shown" in parsed.defects


@pytest.mark.parametrize("log_headers", [
    'Content-Type: text/plain\nContent-Disposition: attachment; filename="log.txt"',
    'Content-Type: text/plain; name="log.txt"',
])
def test_named_text_file_next_to_a_body_stays_a_file_only(log_headers):
    body = f"--B\nContent-Type: text/plain\n\nSee the log.\n--B\n{log_headers}\n\nline of the log\n--B--\n"
    parsed = parse_message(message("From: a@customer.example", *STANDARD,
                                   'Content-Type: multipart/mixed; boundary="B"', body=body))

    assert "line of the log" not in parsed.text
    assert [a.filename for a in parsed.attachments] == ["log.txt"]


# --- a character split between two encoded words (flufl.bounce's simple_39)


def test_a_character_split_between_two_encoded_words_is_read_whole():
    data = "Ваше сообщение не доставлено.".encode("utf-8")
    first, second = base64.b64encode(data[:48]).decode(), base64.b64encode(data[48:]).decode()  # inside a letter

    parsed = parse_message(message(f"Subject: =?utf-8?b?{first}?=\r\n\t=?UTF-8?B?{second}?=", *STANDARD[1:]))

    assert parsed.subject == "Ваше сообщение не доставлено."
