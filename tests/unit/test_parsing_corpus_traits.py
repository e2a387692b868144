"""Traits found by the enmime messages of the real-world corpus (docs/parsing.md), one minimal
message each: a header block that starts indented, and a MIME part's header continuation that
lost its indent."""

from mailbridge.domain.parsing import Address, parse_message


def multipart(*part_header_lines: str, part_body: str) -> bytes:
    lines = [
        "From: alice@customer.example", "Subject: Invoice", "Message-ID: <m1@customer.example>",
        'Content-Type: multipart/mixed; boundary="b1"', "",
        "--b1", "Content-Type: text/plain; charset=us-ascii", "", "Please find the invoice attached.",
        "--b1", *part_header_lines, "", part_body, "--b1--", "",
    ]
    return "\r\n".join(lines).encode("ascii")


def test_an_indented_first_header_is_still_read():
    raw = b" From: alice@customer.example\r\nSubject: Printer\r\nMessage-ID: <m1@customer.example>\r\n\r\nHello.\r\n"

    parsed = parse_message(raw)

    assert parsed.from_ == Address("alice@customer.example")
    assert parsed.subject == "Printer"
    assert "white space before the first header removed" in parsed.defects


def test_a_part_header_continuation_without_indent_keeps_the_file_name():
    raw = multipart("Content-Transfer-Encoding: base64", "Content-Type: application/zip; x-unix-mode=0600;",
                    'name="invoice.zip"', 'Content-Disposition: attachment; filename="invoice.zip"',
                    part_body="UEsDBBQACAAIAA==")

    parsed = parse_message(raw)

    assert [attachment.filename for attachment in parsed.attachments] == ["invoice.zip"]
    assert parsed.attachments[0].data == b"PK\x03\x04\x14\x00\x08\x00\x08\x00"
    assert "Content-Disposition" not in parsed.text
    assert "MIME part: header line without a field name joined to the header above" in parsed.defects


def test_a_part_body_without_its_blank_line_stays_the_body():
    raw = multipart("Content-Type: text/plain; charset=us-ascii", part_body="Second note\r\nThanks: Alice")

    parsed = parse_message(raw)

    assert "Second note" in parsed.text
    assert not any(defect.startswith("MIME part:") for defect in parsed.defects)
