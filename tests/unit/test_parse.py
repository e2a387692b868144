"""parse_message over the built corpus: headers, bodies, charsets, attachments, HTML."""

import hashlib

import pytest

from mailbridge.domain.parsing import Address, parse_message, resolve_cid, safe_filename
from tests.corpus import PDF_BYTES, PNG_PIXEL, build_corpus, crlf, make_message

CORPUS = build_corpus()


def parsed(name, **kwargs):
    return parse_message(CORPUS[name], **kwargs)


def test_plain_message_headers_are_read():
    message = parsed("plain")

    assert message.subject == "Printer on floor 3 is broken"
    assert message.from_ == Address("alice@customer.example", "Alice Example")
    assert message.to == [Address("support@helpdesk.example", "Support")]
    assert message.message_id == "<plain-1@customer.example>"
    assert message.date == "2026-11-28T10:00:00+00:00"
    assert message.size == len(CORPUS["plain"])
    assert message.defects == []


def test_plain_body_is_the_text():
    message = parsed("plain")

    assert message.text == "Hello,\n\nthe printer on floor 3 is broken.\n\nAlice"
    assert message.full_text == message.text
    assert message.html is None


def test_date_is_converted_to_utc():
    message = parsed("rfc2047_headers")

    assert message.date == "2026-11-28T10:00:00+00:00"


def test_html_only_message_gets_text_from_html():
    message = parsed("html_only")

    assert "where is invoice 42?" in message.text
    assert "* first" in message.text
    assert "Ignore me" not in message.text
    assert "<b>invoice 42</b>" in message.html


def test_alternative_prefers_plain_text_and_keeps_html():
    message = parsed("alternative")

    assert message.text == "Plain version of the text."
    assert "HTML version" in message.html


def test_inline_image_is_marked_inline_and_attachment_is_not():
    message = parsed("attachments_inline")

    by_type = {a.content_type: a for a in message.attachments}
    image, pdf = by_type["image/png"], by_type["application/pdf"]
    assert image.inline is True
    assert image.content_id == "shot1@customer.example"
    assert image.data == PNG_PIXEL
    assert pdf.inline is False
    assert pdf.filename == "invoice.pdf"
    assert pdf.size == len(PDF_BYTES)
    assert pdf.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert 'src="cid:shot1@customer.example"' in message.html


def test_resolve_cid_rewrites_known_content_ids_only():
    html = '<img src="cid:shot1@customer.example"><img src="cid:other@x">'

    result = resolve_cid(html, {"shot1@customer.example": "https://files.example/a?b=1&c=2"})

    assert 'src="https://files.example/a?b=1&amp;c=2"' in result
    assert 'src="cid:other@x"' in result


def test_resolve_cid_decodes_url_escaped_content_ids():
    result = resolve_cid('<img src="cid:a%25b@x">', {"a%b@x": "https://f.example/1"})

    assert result == '<img src="https://f.example/1">'


def test_rfc2047_subject_and_names_are_decoded():
    message = parsed("rfc2047_headers")

    assert message.subject == "Grüße aus München — 😀"
    assert message.from_ == Address("juergen@customer.example", "Jürgen Müller")
    assert [a.name for a in message.to] == ["André", "Привет"]
    assert message.cc == [Address("john@customer.example", "Smith, John")]


def test_malformed_encoded_words_do_not_break_the_subject():
    message = parsed("rfc2047_malformed")

    assert message.subject.startswith("abc and café and ")
    assert message.date is None
    assert "invalid Date header" in message.defects


def test_raw_utf8_headers_are_decoded():
    message = parsed("raw_utf8_headers")

    assert message.subject == "Café crème ☕"
    assert message.from_.name == "Zoë Ünal"


def test_rfc2231_and_rfc2047_filenames_are_decoded():
    names = [a.filename for a in parsed("rfc2231_filename").attachments]

    assert names[:2] == ["Rapport annuel été 2026.pdf", "übersicht.xlsx"]


def test_filenames_lose_directories_and_control_characters():
    names = [a.filename for a in parsed("rfc2231_filename").attachments]

    assert names[2] == "passwd"


@pytest.mark.parametrize(
    "raw_name, expected",
    [
        ("C:\\Users\\bob\\report.pdf", "report.pdf"),
        ("../../../etc/passwd", "passwd"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("..", None),
        ("   ", None),
    ],
)
def test_safe_filename(raw_name, expected):
    assert safe_filename(raw_name) == expected


def test_missing_filename_is_generated_from_type():
    raw = make_message(attachments=[("", "application/octet-stream", b"\x00\x01")])

    message = parse_message(raw)

    assert message.attachments[0].filename == "attachment-1.bin"


def test_latin1_body_declared_utf8_is_decoded_with_a_defect():
    message = parsed("latin1_declared_utf8")

    assert message.text == "Grüße aus Köln, die Rechnung für März fehlt."
    assert any("declared utf-8" in d for d in message.defects)


@pytest.mark.parametrize(
    "name, subject, text",
    [
        ("koi8r", "Привет", "Здравствуйте! Принтер на третьем этаже не работает."),
        ("iso2022jp", "こんにちは", "こんにちは、プリンターが壊れています。"),
        ("gb18030", "你好", "你好，三楼的打印机坏了。请尽快修理。"),
    ],
)
def test_declared_national_charsets_are_decoded(name, subject, text):
    message = parsed(name)

    assert message.subject == subject
    assert message.text == text
    assert message.defects == []


def test_gb2312_label_reads_gb18030_bytes():
    assert parsed("gb2312_declared").text == "你好，打印机坏了。"


def test_windows1252_smart_quotes_and_euro():
    assert parsed("windows1252").text == "“Quoted” – costs 5 €."


def test_missing_charset_is_guessed_with_a_defect():
    message = parsed("missing_charset")

    assert message.text.startswith("Déjà vu: the café is closed again.")
    assert "“as many old mailers send”" in message.text
    assert any("no charset declared" in d for d in message.defects)


def test_unknown_charset_falls_back_with_a_defect():
    message = parsed("unknown_charset")

    assert message.text == "Plain words with one é."
    assert any("x-made-up-charset" in d for d in message.defects)


def test_nested_message_is_one_attachment_with_its_bytes():
    message = parsed("nested_rfc822")

    assert len(message.attachments) == 1
    nested = message.attachments[0]
    assert nested.content_type == "message/rfc822"
    assert nested.filename == "forwarded.eml"
    inner = parse_message(nested.data)
    assert inner.subject == "Original from vendor"
    assert inner.message_id == "<inner-1@vendor.example>"
    assert [a.filename for a in inner.attachments] == ["inner.pdf"]
    assert "inner message body" not in message.text


def test_nested_message_without_filename_is_named_message_eml():
    raw = crlf(
        "From: a@b.example\nSubject: fwd\nMessage-ID: <n@x>\n"
        'Content-Type: multipart/mixed; boundary="z"\n\n'
        "--z\nContent-Type: text/plain\n\nsee attached\n"
        "--z\nContent-Type: message/rfc822\n\nFrom: c@d.example\nSubject: inner\n\ninner body\n--z--\n"
    )

    message = parse_message(raw)

    assert [a.filename for a in message.attachments] == ["message.eml"]
    assert b"Subject: inner" in message.attachments[0].data


def test_winmail_dat_is_kept_as_attachment():
    attachment = parsed("winmail_dat").attachments[0]

    assert attachment.filename == "winmail.dat"
    assert attachment.content_type == "application/ms-tnef"


def test_missing_message_id_gets_stable_generated_id():
    first = parsed("no_message_id")
    second = parse_message(CORPUS["no_message_id"])

    assert first.message_id == second.message_id
    assert first.message_id.endswith("@mailbridge.invalid>")
    assert len(first.message_id) == len("<@mailbridge.invalid>") + 32
    assert "missing Message-ID" in first.defects


def test_html_is_sanitized():
    html = parsed("html_dangerous").html

    assert "<script" not in html
    assert "alert" not in html
    assert "onerror" not in html
    assert "onclick" not in html
    assert "javascript:" not in html
    assert "<style" not in html
    assert 'href="https://ok.example/"' in html


def test_reply_headers_are_canonical_ids():
    message = parsed("reply_in_reply_to")

    assert message.in_reply_to == ["<out-12-1@helpdesk.example>"]
    assert message.references == ["<plain-1@customer.example>", "<out-12-1@helpdesk.example>"]


def test_reply_text_drops_quoted_history_but_full_text_keeps_it():
    message = parsed("reply_in_reply_to")

    assert message.text == "It works again, thanks!"
    assert "Did you restart it?" in message.full_text


def test_outlook_reply_drops_header_block():
    message = parsed("outlook_reply")

    assert message.text == "Yes, it is the one near the kitchen.\n\nBest regards\nAlice"


def test_delivery_report_is_flagged():
    assert parsed("bounce_report").is_delivery_report is True
    assert parsed("plain").is_delivery_report is False


def test_auto_submitted_value_is_exposed():
    assert parsed("auto_submitted").auto_submitted == "auto-replied"
    assert parsed("plain").auto_submitted is None


def test_headers_are_lowercased_lists():
    message = parsed("precedence_list")

    assert message.headers["precedence"] == ["list"]
    assert message.headers["list-id"] == ["<digest.lists.example>"]
    assert message.header("List-Id") == "<digest.lists.example>"


def test_large_attachment_is_omitted_but_described():
    data = b"x" * 5000
    raw = make_message(attachments=[("big.bin", "application/octet-stream", data)])

    attachment = parse_message(raw, max_attachment_bytes=1000).attachments[0]

    assert attachment.data == b""
    assert attachment.omitted == "larger than 1000 bytes"
    assert attachment.size == 5000
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()


def test_attachment_within_limit_keeps_its_data():
    raw = make_message(attachments=[("small.bin", "application/octet-stream", b"abc")])

    attachment = parse_message(raw, max_attachment_bytes=1000).attachments[0]

    assert attachment.data == b"abc"
    assert attachment.omitted is None


def test_group_syntax_and_duplicates_in_recipients():
    raw = crlf(
        "From: a@b.example\nTo: team: x@y.example, \"Q, R\" <q@y.example>;, X@Y.example\n"
        "Cc: undisclosed-recipients:;\nSubject: s\nMessage-ID: <g@x>\n\nbody\n"
    )

    message = parse_message(raw)

    assert [a.email for a in message.to] == ["x@y.example", "q@y.example"]
    assert message.to[1].name == "Q, R"
    assert message.cc == []


def test_message_without_headers_or_body_still_parses():
    message = parse_message(b"")

    assert message.subject == ""
    assert message.from_ is None
    assert message.message_id.endswith("@mailbridge.invalid>")
    assert "missing Message-ID" in message.defects
