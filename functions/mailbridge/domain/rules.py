"""Which incoming mail is ignored, and why: loops, bounces, auto-replies and admin rules.

Choices where mail practice is ambiguous:
- X-Auto-Response-Suppress alone does not mark a message automatic: Outlook and Exchange put
  it on ordinary mail too. It counts together with a null Return-Path or an auto-reply
  subject ("Automatic reply:", "Out of Office", "Abwesend", …).
- Precedence: list does not count when a Google Group relayed the message (X-Google-Group-Id
  or Mailing-list header): a support@ group that forwards customer mail into the helpdesk
  mailbox adds it to every message.
- List-Id alone is not a reason to ignore: Google Groups add it to relayed customer mail.
  Admins ignore newsletters with a sender or subject rule.
- A null Return-Path (<>) alone marks a message automatic (RFC 3834 §3.3, RFC 5321 §4.5.5).
- Admin rules run before the automatic checks, so an admin-ignored auto-reply stays ignored
  even when auto-replies are accepted on existing tickets.

Admin rules:
- sender: "user@example.com" (that address), "@example.com" or "example.com" (that domain),
  "*.example.com" (any subdomain, not example.com itself), or any other glob with * and ?
  matched against the whole address. Case-insensitive.
- subject: "/regex/" is a case-insensitive regular-expression search run on RE2
  (domain/patterns.py: linear time, no backreferences or lookaround; saving a pattern RE2
  refuses fails with the reason); anything else is a case-insensitive glob matched against the
  whole subject (use "*word*" to match anywhere). A stored pattern that does not compile
  matches nothing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re

from mailbridge.domain import patterns, workspace
from mailbridge.domain.authentication import authenticate
from mailbridge.domain.models import EMAIL
from mailbridge.domain.parsing import ParsedMessage, decode_words
from mailbridge.errors import InvalidInput

AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
# Subjects mail servers give their non-delivery reports (Exchange in several languages, Postfix,
# Exim, Sendmail, qmail, Lotus, Gmail). Anchored, so "Fwd: Undeliverable: …" from a customer
# stays a ticket.
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliverable( mail)?\s*:|undelivered mail returned to sender|delivery status notification"
    r"|mail delivery failed|returned mail\s*:|failure notice\b|unzustellbar\s*:|non remis\s*:"
    r"|onbestelbaar\s*:|non recapitabile\s*:|no se puede entregar\s*:|niedostarczalne\s*:"
    r"|nondeliverable mail|delivery notification: delivery has failed|mail system error - returned mail"
    r"|warning: could not send message for past)",
    re.IGNORECASE,
)
# Wordings a customer could also use ("Delivery failure - order 123"): a bounce only when the
# sender looks like a mail system too.
_BOUNCE_SUBJECT_WEAK = re.compile(
    r"^\s*(delivery (failure|failed|delayed|has failed)|mail (could not be|not) delivered"
    r"|(mail )?delivery (warning|problem)|returned mail\b|message not delivered|undeliverable)",
    re.IGNORECASE,
)
_SYSTEM_SENDER = re.compile(
    r"mailer|daemon|postmaster|smtp|^ndr$|system administrator|mail delivery (subsystem|system)|^mail administrator",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|out of (the )?office|autoreply"
    r"|abwesenheitsnotiz|abwesend|automatische antwort|réponse automatique|absence"
    r"|respuesta automática|fuera de la oficina|risposta automatica|fuori sede"
    r"|automatisch antwoord|afwezig|autosvar|automatisk svar|poza biurem|автоответ)\b",
    re.IGNORECASE,
)


@dataclasses.dataclass
class Verdict:
    action: str  # "accept" | "ignore"
    reason: str | None
    automatic: bool

    @property
    def ignored(self) -> bool:
        return self.action == "ignore"


ACCEPT = Verdict("accept", None, False)


def classify(
    msg: ParsedMessage,
    *,
    own_addresses: set[str],
    loop_marker: str,
    ignore_senders: list[str] = (),
    ignore_subjects: list[str] = (),
) -> Verdict:
    """Accept or ignore one message. automatic=True marks auto-replies, which the caller may
    still keep as updates of existing tickets; loops, bounces and admin rules are never
    automatic, so they stay ignored."""
    sender = msg.from_.email.lower() if msg.from_ else ""

    marker = (loop_marker or "").strip().lower()
    if marker and any(value.strip().lower() == marker for value in _values(msg, "x-loop")):
        return Verdict("ignore", f"loop: x-loop {loop_marker}", False)

    own = {address.lower() for address in own_addresses}
    if sender and (sender in own or _without_plus(sender) in own):
        return Verdict("ignore", f"own-address: {sender}", False)

    report = _report_type(msg)
    if msg.is_delivery_report:
        return Verdict("ignore", f"delivery-report: multipart/report {report or 'delivery-status'}", False)
    if report is not None:
        return Verdict("ignore", f"delivery-report: multipart/report {report or '(no report-type)'}", False)
    local_part = sender.split("@", 1)[0]
    if local_part in BOUNCE_LOCAL_PARTS:
        return Verdict("ignore", f"delivery-report: from {local_part}", False)
    bounce = _bounce_by_subject(msg, local_part)
    if bounce:
        return Verdict("ignore", f"delivery-report: {bounce}", False)

    for pattern in ignore_senders:
        if sender and sender_matches(pattern, sender):
            return Verdict("ignore", f"ignore-rule: sender {pattern}", False)
    for pattern in ignore_subjects:
        if subject_matches(pattern, msg.subject):
            return Verdict("ignore", f"ignore-rule: subject {pattern}", False)

    if msg.auto_submitted and msg.auto_submitted != "no":
        return Verdict("ignore", f"auto-submitted: {msg.auto_submitted}", True)
    for header in ("x-autoreply", "x-autorespond"):
        values = _values(msg, header)
        if values and values[0].strip().lower() not in ("no", "false", "0"):
            return Verdict("ignore", f"auto-reply: {header}", True)
    precedence = (_first(msg, "precedence") or "").strip().lower()
    if precedence in AUTO_PRECEDENCE and not (precedence == "list" and _relayed_by_google_group(msg)):
        return Verdict("ignore", f"precedence: {precedence}", True)
    return_path = _first(msg, "return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return Verdict("ignore", "auto-reply: null return-path", True)
    if _first(msg, "x-auto-response-suppress") is not None and _AUTO_REPLY_SUBJECT.match(msg.subject or ""):
        return Verdict("ignore", "auto-reply: x-auto-response-suppress with auto-reply subject", True)
    return ACCEPT


NO_REPLY_PREFIXES = ("noreply", "no-reply", "bounce")


def acknowledgement_refusal(msg: ParsedMessage, verdict: Verdict, recipient: str) -> str | None:
    """Why the sender of a new ticket must not get an automatic acknowledgement (RFC 3834), or
    None. One policy with classify(): whatever it ignores or marks automatic is refused here
    (its verdict); on top, an acknowledgement never goes to list mail (but it does go to the person
    of a Google Group relay Gmail's ARC verdict vouches for), to no-reply or bounce addresses, to a sender
    that asked for no automatic replies, or to a sender Gmail did not authenticate
    (domain/authentication.py): a forged From must not make us mail a third party."""
    if verdict.automatic:
        return f"automatic mail ({verdict.reason or 'auto-submitted'})"
    if verdict.action != "accept":
        return f"message was not accepted ({verdict.reason or ''})"
    if not recipient or not EMAIL.match(recipient):
        return "no valid sender address"
    local = recipient.split("@", 1)[0]
    if local in BOUNCE_LOCAL_PARTS or local.startswith(NO_REPLY_PREFIXES):
        return f"{recipient} is a bounce or no-reply address"
    if _vouched_group_relay(msg, recipient):  # its list headers are the Group's, Gmail's ARC verdict vouches
        return _no_auto_reply_asked(msg)
    if (_first(msg, "precedence") or "").strip().lower() in AUTO_PRECEDENCE:
        return "bulk or list mail"
    if _first(msg, "list-id") is not None or _first(msg, "list-unsubscribe") is not None:
        return "mailing-list mail"
    if _no_auto_reply_asked(msg):
        return _no_auto_reply_asked(msg)
    authentication = authenticate(msg.headers, recipient)
    if not authentication.passed:
        return f"sender not authenticated by Gmail (dmarc={authentication.dmarc}, verdict={authentication.verdict})"
    return None


def _no_auto_reply_asked(msg: ParsedMessage) -> str | None:
    if any(_first(msg, h) is not None for h in ("x-auto-response-suppress", "x-autoreply", "x-autorespond")):
        return "sender asked for no automatic replies"
    return None


def _vouched_group_relay(msg: ParsedMessage, recipient: str) -> bool:
    """The customer's own mail relayed by a Google Group (a support@ group), the recipient being
    the person Gmail's ARC verdict vouches for (domain/workspace.py, docs/gmail-differences.md):
    acknowledged like mail written to the mailbox directly."""
    relay = workspace.group_relay(msg.headers, msg.from_.email if msg.from_ else "", msg.reply_to)
    return relay is not None and relay.verified and relay.person == recipient


# What an acknowledgement must not repeat from a subject: anything a reader could follow or
# call. Links (scheme, www., host.tld), email addresses, phone-like digit runs, and invisible
# or direction-changing characters; a long subject is not repeated either. Chosen wide: the
# cost of a false alarm is a neutral subject (docs/reliability.md, "Hostile senders").
MAX_REPEATED_SUBJECT = 100
NEUTRAL_SUBJECT = "your message"
_BAIT = re.compile(
    r"[a-z][a-z0-9+.-]*:/|www\.|@|[\w-]\.[a-z]{2,}\b|"            # link, address, host.tld
    r"\+?\d[\d\s().\-/]{5,}\d|"                                  # phone-like: 7+ digits with separators
    r"[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]",             # zero-width, bidi overrides
    re.IGNORECASE)


def repeatable_subject(subject: str) -> str:
    """The subject an acknowledgement may repeat (body {subject} and Subject line): the
    sender's own when it holds no bait, else a neutral one. Checked in its final form (RFC 2047
    decoded until nothing changes, cleaned: parsing.decode_words), the one the parser stores
    and compose writes, so an encoded word inside an encoded word hides nothing from it."""
    subject = " ".join(decode_words(subject or "", None, "Subject").split())
    if not subject or len(subject) > MAX_REPEATED_SUBJECT or _BAIT.search(subject):
        return NEUTRAL_SUBJECT
    return subject


LOOP_MARKER_DOMAIN = "mailbridge"


def loop_marker(prefix: str) -> str:
    """The X-Loop value this deployment puts on its automatic mail and recognizes on the way in."""
    return f"{prefix}@{LOOP_MARKER_DOMAIN}"


def outgoing_auto_headers(loop_marker: str) -> dict[str, str]:
    """Headers for mail we send automatically (acknowledgements), so others do not answer it."""
    return {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All", "X-Loop": loop_marker}


def sender_matches(pattern: str, address: str) -> bool:
    pattern = (pattern or "").strip().lower()
    address = (address or "").strip().lower()
    if not pattern or not address:
        return False
    domain = address.rpartition("@")[2]
    wildcard = "*" in pattern or "?" in pattern
    if pattern.startswith("*.") and "@" not in pattern and not any(c in pattern[2:] for c in "*?"):
        return domain.endswith("." + pattern[2:])
    if wildcard:
        return fnmatch.fnmatchcase(address, pattern)
    if pattern.startswith("@"):
        return domain == pattern[1:]
    if "@" not in pattern:
        return domain == pattern
    return address == pattern


def subject_matches(pattern: str, subject: str) -> bool:
    compiled = _compile_subject_pattern(pattern or "")
    return bool(compiled and compiled.search(subject or ""))


@functools.lru_cache(maxsize=1024)
def _compile_subject_pattern(pattern: str):
    pattern = pattern.strip()
    if not pattern:
        return None
    try:
        if patterns.is_regex_rule(pattern):
            return patterns.compile_regex_rule(pattern)
        # translate() anchors only the end; \A anchors the start so search() is a full match.
        return re.compile(r"\A" + fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL)
    except (re.error, InvalidInput):
        return None


def _values(msg: ParsedMessage, name: str) -> list[str]:
    return msg.headers.get(name, [])


def _first(msg: ParsedMessage, name: str) -> str | None:
    values = _values(msg, name)
    return values[0] if values else None


def _report_type(msg: ParsedMessage) -> str | None:
    """report-type of a top-level multipart/report ("" when absent), else None."""
    content_type = (_first(msg, "content-type") or "").lower()
    if not content_type.strip().startswith("multipart/report"):
        return None
    match = re.search(r'report-type\s*=\s*"?([\w.-]+)', content_type)
    return match.group(1) if match else ""


def _bounce_by_subject(msg: ParsedMessage, local_part: str) -> str | None:
    """Non-delivery reports that are not multipart/report: known server subjects, or a
    bounce-like subject from a mail-system sender (or envelope sender)."""
    subject = msg.subject or ""
    if _BOUNCE_SUBJECT.match(subject):
        return f"subject {subject[:60]!r}"
    if not _BOUNCE_SUBJECT_WEAK.match(subject):
        return None
    envelope = (_first(msg, "return-path") or "").strip().strip("<>").split("@", 1)[0].lower()
    name = msg.from_.name if msg.from_ else ""
    unparsed = "" if msg.from_ else (_first(msg, "from") or "")[:200]  # e.g. <Postmaster\@x@y>
    for who in (local_part, name, envelope.split("=")[-1], unparsed):
        if who and _SYSTEM_SENDER.search(who.strip('"')):
            return f"subject {subject[:60]!r} from {who[:40]}"
    if any(a.content_type in ("message/rfc822", "text/rfc822-headers", "message/global") for a in msg.attachments):
        return f"subject {subject[:60]!r} with the returned message attached"
    return None


def _relayed_by_google_group(msg: ParsedMessage) -> bool:
    return "x-google-group-id" in msg.headers or "mailing-list" in msg.headers


def _without_plus(address: str) -> str:
    local, at, domain = address.partition("@")
    return local.split("+", 1)[0] + at + domain
