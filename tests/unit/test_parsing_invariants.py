"""Invariants of the whole parser over generated mail (issue 16, item 2)."""

from email.header import Header

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain.parsing import parse_message
from mailbridge.domain.parsing.addresses import has_domain

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd")), min_size=1, max_size=12)
sentences = st.lists(words, min_size=1, max_size=12).map(" ".join)
local_parts = st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True)
domains = st.from_regex(r"[a-z]{1,10}\.(com|de|example|co\.jp)", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


def encoded(text: str) -> str:
    return Header(text, "utf-8").encode()


from_values = st.one_of(
    emails,
    st.builds(lambda name, address: f"{encoded(name)} <{address}>", sentences, emails),
    st.builds(lambda name, address: f'"{name}" <{address}>', sentences.filter(lambda s: '"' not in s), emails),
    st.builds(lambda name, address: f"{address} ({name})", sentences.filter(lambda s: "(" not in s and ")" not in s), emails),
    st.builds(lambda address: f"<{address}.>", emails),
    local_parts,  # no domain
    st.just(""),
)
# Lines a broken mailer leaves among the headers: no name, no indent.
nameless_lines = st.from_regex(r"[a-z][a-z ]{0,20}", fullmatch=True)


@st.composite
def messages(draw):
    headers = [f"X-Field-{index}: value {index}" for index in range(draw(st.integers(1, 6)))]
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(1, len(headers) - 1)) if len(headers) > 1 else None
        if position is not None:
            headers.insert(position, draw(nameless_lines))
    sender = draw(from_values)
    if sender:
        headers.insert(draw(st.integers(0, len(headers))), f"From: {sender}")
    if draw(st.booleans()):
        headers.append(f"Sender: {draw(emails)}")
    headers.append(f"Subject: {encoded(draw(sentences))}")
    body_text = draw(sentences)
    layout = draw(st.sampled_from(["plain", "html", "alternative", "broken-multipart", "unquoted-boundary"]))
    if layout == "plain":
        headers.append("Content-Type: text/plain; charset=utf-8")
        body = body_text
    elif layout == "html":
        headers.append("Content-Type: text/html; charset=utf-8")
        body = f"<html><body><p>{body_text}</p></body></html>"
    elif layout == "alternative":
        headers.append('Content-Type: multipart/alternative; boundary="b1"')
        body = (f"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body_text}\r\n"
                f"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body_text}</p>\r\n--b1--\r\n")
    elif layout == "broken-multipart":
        headers.append('Content-Type: multipart/mixed; boundary="never-used"')
        body = body_text
    else:
        headers.append("Content-Type: multipart/mixed; boundary=----=_Part_1")
        body = f"------=_Part_1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body_text}\r\n------=_Part_1--\r\n"
    raw = ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode("utf-8")
    return raw, headers, body_text


@SETTINGS
@given(messages())
def test_requester_has_a_domain_or_the_defects_say_why(case):
    raw, _, _ = case

    parsed = parse_message(raw)

    if parsed.from_ is None or not has_domain(parsed.from_.email):
        assert any("From" in defect for defect in parsed.defects), parsed.defects


@SETTINGS
@given(messages())
def test_text_is_never_empty_when_the_message_had_text(case):
    raw, _, body_text = case

    parsed = parse_message(raw)

    assert any(char.isalnum() for char in parsed.text), (parsed.text, parsed.defects)
    assert body_text.split()[0] in parsed.text


@SETTINGS
@given(messages())
def test_no_container_part_is_ever_an_attachment(case):
    raw, _, _ = case

    parsed = parse_message(raw)

    assert all(not attachment.content_type.startswith("multipart/") for attachment in parsed.attachments)


@SETTINGS
@given(messages())
def test_every_header_is_read_even_after_a_broken_line(case):
    raw, headers, _ = case

    parsed = parse_message(raw)

    names = [line.split(":", 1)[0].lower() for line in headers if ":" in line]
    assert set(names) <= set(parsed.headers), (names, sorted(parsed.headers))


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_an_exception(raw):
    parsed = parse_message(raw)

    assert parsed.message_id


# Quoted-history blocks as clients write them, to put between a reply and the old text.
HISTORY_BLOCKS = (
    ["On Mon, 1 Jan 2026 at 10:00, Bob <bob@example.com> wrote:"],
    ["-----Original Message-----", "From: Bob <bob@example.com>", "Sent: Monday, 1 January 2026 10:00"],
    ["----- Original Nachricht ----", "Von: Bob <bob@example.com>", "Datum: 01.01.2026 10:00"],
    ["Gesendet: Montag, 1. Januar 2026 um 10:00 Uhr", "Von: Bob <bob@example.com>"],
    ["________________________________", "From: Bob <bob@example.com>", "Sent: Monday"],
    ["------------------ 原始邮件 ------------------", "发件人: Bob <bob@example.com>", "发送时间: 2026年1月1日"],
    ["张三 <a@b.c> 于2026年1月1日 10:00写道："],
)
SEPARATORS = {"-----Original Message-----", "----- Original Nachricht ----", "________________________________",
              "------------------ 原始邮件 ------------------"}


@st.composite
def replies(draw):
    reply = draw(st.lists(sentences, max_size=3))
    block = draw(st.sampled_from(HISTORY_BLOCKS))
    quoted = draw(st.booleans())
    old = [("> " if quoted else "") + line for line in draw(st.lists(sentences, min_size=1, max_size=3))]
    return "\n".join(reply + [""] + block + [""] + old), bool(reply)


@SETTINGS
@given(replies())
def test_stripping_keeps_the_reply_or_returns_the_text_never_only_a_separator(case):
    from mailbridge.domain.quotes import strip_reply

    text, has_reply = case

    result = strip_reply(text)

    kept = {line.strip() for line in result.splitlines() if line.strip()}
    assert any(any(char.isalnum() for char in line) for line in kept), (text, result)
    assert not kept <= SEPARATORS, (text, result)
    if not has_reply:
        assert result == text
