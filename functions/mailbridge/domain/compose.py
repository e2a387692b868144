"""Composing outgoing mail: header and address checks, reply-all recipients, the subject with
the ticket tag, the References chain, the MIME bytes (RFC 5322), acknowledgement text and
automatic-reply headers. Pure: services/outgoing/ decides what to send and records it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from email import errors as email_errors
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
import re
import uuid

from mailbridge.domain import models
from mailbridge.domain import header_writing
from mailbridge.domain.header_writing import clean_header_text
from mailbridge.domain.rules import outgoing_auto_headers
from mailbridge.domain.threads import format_tag as shared
from mailbridge.domain.threads import subject_with_tag
from mailbridge.errors import InvalidInput
from mailbridge.logs import log_event

MAX_RECIPIENTS = 100                     # Gmail's per-message limit
MAX_MESSAGE_BYTES = 25 * 1024 * 1024     # Gmail's sending limit, attachments included
MAX_REFERENCES = 20
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


# Every character that ends a line somewhere: CR, LF, VT, FF, the file/group/record separators,
# NEL, LINE and PARAGRAPH SEPARATOR (what str.splitlines() splits on, and so the email package's
# folding), plus NUL. Values we check (addresses, ids, names) refuse them; header text that
# came in with the mail (a ticket subject) is brought to its final form (clean_header_text).
LINE_SEPARATORS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00"


def check_header_value(name: str, value: str) -> str:
    if value is None:
        return ""
    value = str(value)
    if any(c in LINE_SEPARATORS for c in value):
        raise InvalidInput(f"{name} contains a line break: header injection refused")
    return value


def check_address(email: str, what: str = "address") -> str:
    email = check_header_value(what, (email or "").strip())
    if not models.EMAIL.match(email) or any(c in email for c in "<>,;\"()[]\\"):
        raise InvalidInput(f"{what} {email!r} is not a plain email address")
    return email.lower()


def recipients(ticket: dict, own: set[str]) -> tuple[list[str], list[str]]:
    """Reply-all: To = the requester, Cc = the other participants; never our own addresses."""
    own = {a.lower() for a in own}
    requester = ((ticket.get("requester") or {}).get("email") or "").lower()
    if requester and requester not in own:
        check_address(requester, "requester address")  # a bad requester is refused, not skipped
    people = []
    for email in [requester] + [str(p).lower() for p in ticket.get("participants", [])]:
        if not email or email in own or email in people:
            continue
        try:
            people.append(check_address(email, "participant"))
        except InvalidInput:
            log_event("WARNING", "participant left out of reply-all: not a plain address",
                      ticket=ticket.get("id"), participant=email[:200].replace("\n", " ").replace("\r", " "))
    if not people:
        raise InvalidInput(f"ticket #{ticket.get('number')} has no recipient outside our own mailboxes")
    to, cc = people[:1], people[1:]  # requester first; if it is ours, the next participant
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise InvalidInput(f"{len(to) + len(cc)} recipients: Gmail accepts at most {MAX_RECIPIENTS} per message; "
                           "remove participants from the ticket first")
    return to, cc


def format_tag(number, fmt: str) -> str:
    return shared(number, fmt)


def reply_subject(subject: str, number, fmt: str) -> str:
    """"Re: " + the ticket's subject carrying its tag once (the tag the threading code looks for)."""

    return subject_with_tag(clean_header_text(subject) or "(no subject)", number, fmt, reply=True)


def thread_reply_subject(thread_subject: str | None, subject: str, number, fmt: str) -> str:
    """The subject policy (README.md, "Replies and Gmail threads"): a reply that joins a Gmail
    thread takes that thread's subject ("Re: " in front unless it is there already), because Gmail
    files a sent message into `threadId` only when the subjects match; the ticket tag stays when
    the thread's subject carries it. A reply that starts a thread carries the tag:
    "Re: [#N] subject"."""
    thread_subject = clean_header_text(thread_subject)  # it came in with the mail: no line separators
    if not thread_subject:
        return reply_subject(subject, number, fmt)
    return thread_subject if _RE_PREFIX.match(thread_subject) else f"Re: {thread_subject}"


_RE_PREFIX = re.compile(r"^re\s*:", re.IGNORECASE)
# Every message we send carries its own Message-ID here too: Gmail may replace the Message-ID
# header on send, custom headers survive (docs/gmail-differences.md), so crash recovery finds
# the sent message by this header.
OUTBOUND_HEADER = "X-Mailbridge-Outbound"


def new_message_id(mailbox_address: str) -> str:
    domain = mailbox_address.rsplit("@", 1)[-1].lower() or "localhost"
    return f"<{uuid.uuid4().hex}@mailbridge.{domain}>"


def reference_chain(messages: list[dict]) -> tuple[str | None, list[str]]:
    """In-Reply-To = the last delivered message; References = its references + its id
    (trimmed to the first plus the most recent ones, as RFC 5322 suggests). Only ids we can
    write as they are (writable_id) take part."""
    if not messages:
        return None, []
    last = messages[-1]
    chain = [r for r in (last.get("references") or []) if r]
    if not chain:
        chain = [m.get("message_id") for m in messages[:-1] if m.get("message_id")]
    chain.append(last.get("message_id"))
    chain = [c for c in dict.fromkeys(chain) if writable_id(c)]
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    in_reply_to = last.get("message_id")
    return (in_reply_to if writable_id(in_reply_to) else None), chain


MAX_ID_CHARS = 250


def writable_id(message_id) -> bool:
    """A message id from mail that the email package writes unchanged: printable ASCII, no white
    space and no "=?" (it decodes an encoded word even inside an id while folding: on 3.11.7 a
    CR/LF in it becomes a header), of a length that fits a line."""
    return (isinstance(message_id, str) and 0 < len(message_id) <= MAX_ID_CHARS and message_id.isascii()
            and message_id.isprintable() and " " not in message_id and "=?" not in message_id)


@dataclasses.dataclass
class Outgoing:
    """Everything a message needs before it is rendered to MIME."""
    from_email: str
    from_name: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str | None = None
    in_reply_to: str | None = None
    references: list[str] = dataclasses.field(default_factory=list)
    message_id: str = ""
    attachments: list[tuple[str, str, bytes]] = dataclasses.field(default_factory=list)
    extra_headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def headers(self) -> dict[str, str]:
        """The message's headers but Date, in order: what a dry run shows and build_mime writes."""
        try:
            sender = str(Address(display_name=clean_header_text(self.from_name), addr_spec=self.from_email))
        except (ValueError, IndexError) as e:
            raise InvalidInput(f"From address {self.from_email!r} is invalid") from e
        headers = {"From": sender, "To": ", ".join(self.to)}
        if self.cc:
            headers["Cc"] = ", ".join(self.cc)
        headers["Subject"] = self.subject
        headers["Message-ID"] = self.message_id
        headers[OUTBOUND_HEADER] = self.message_id
        if self.in_reply_to:
            headers["In-Reply-To"] = self.in_reply_to
        if self.references:
            headers["References"] = " ".join(self.references)
        for name, value in self.extra_headers:
            headers[name] = value
        return headers


# SMTP's policy, but the values folded by domain/header_writing.py (set_raw) are written as they
# are, even a line of one long encoded word: refolding them would undo what it did.
WRITING_POLICY = policy.SMTP.clone(refold_source="none")


def build_mime(out: Outgoing, now: datetime | None = None) -> bytes:
    """Render with the stdlib (policy SMTP); refuses line breaks in every header value, and any
    error of the email package is an InvalidInput saying so, never a traceback or a 500."""
    try:
        return _build_mime(out, now)
    except InvalidInput:
        raise
    except (ValueError, TypeError, LookupError, UnicodeError, email_errors.MessageError) as e:
        raise InvalidInput(f"the message could not be built: {e.__class__.__name__}: {str(e)[:200]}") from None


def _build_mime(out: Outgoing, now: datetime | None) -> bytes:
    check_address(out.from_email, "From address")
    check_header_value("display name", out.from_name)
    check_header_value("Subject", out.subject)
    for email in out.to + out.cc:
        check_address(email, "recipient")
    for value in [out.message_id, out.in_reply_to or ""] + list(out.references):
        check_header_value("Message-ID", value)
    for name, value in out.extra_headers:
        check_header_value(name, name)
        check_header_value(name, value)
    if len(out.to) + len(out.cc) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients per message")
    message = EmailMessage(policy=WRITING_POLICY)
    for name, value in out.headers().items():
        if name == "Subject":  # folded by us, written as they are (domain/header_writing.py)
            message.set_raw(name, header_writing.fold_text(name, value))
        elif name == "From":
            message.set_raw(name, header_writing.sender(out.from_name, out.from_email))
        else:
            message[name] = value
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    message.set_content(out.text or "")
    if out.html:
        message.add_alternative(out.html, subtype="html")
    total = 0
    for filename, content_type, data in out.attachments:
        filename = check_header_value("attachment filename", filename).strip() or "attachment"
        content_type = (content_type or "application/octet-stream").strip().lower()
        check_header_value("attachment content type", content_type)
        if not CONTENT_TYPE.match(content_type):
            raise InvalidInput(f"attachment content type {content_type!r} is not type/subtype")
        maintype, subtype = content_type.split("/", 1)
        if maintype == "multipart":
            raise InvalidInput("an attachment cannot be multipart/*")
        total += len(data)
        if total > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"attachments exceed Gmail's {MAX_MESSAGE_BYTES // (1024 * 1024)} MB limit")
        message.add_attachment(bytes(data), maintype=maintype, subtype=subtype, filename=filename)
    raw = message.as_bytes()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidInput(f"the message is {len(raw)} bytes; Gmail sends at most {MAX_MESSAGE_BYTES} bytes")
    check_rendered(raw, out)
    return raw


def check_rendered(raw: bytes, out: Outgoing) -> None:
    """Refuse (HeaderMismatch) a rendered message that does not read back as `out` intends."""
    header_writing.check_rendered(raw, out.headers(), out.from_name, out.from_email, out.to, out.cc)


def acknowledgement_text(template: str, tag: str, number, subject: str) -> str:
    values = {"tag": tag, "number": number, "subject": subject}

    class Missing(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    try:
        return template.format_map(Missing(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return models.DEFAULT_OUTGOING["acknowledgement_template"].format(**values)


def auto_headers(marker: str) -> list[tuple[str, str]]:
    return list(outgoing_auto_headers(marker).items())


def backoff_seconds(attempts: int) -> int:
    return min(3600, 60 * 2 ** max(0, attempts - 1))
