"""Outgoing mail: which mailbox answers a ticket (explained), threaded replies, acknowledgements.

Exactly once: every message gets an `outbound/{idempotency key}` record (with its Message-ID and
the exact MIME bytes) BEFORE Gmail is called. The record is queued; the outbox's "send" task
(services/outbox.py, docs/outbox.md) sends it. A send claims the record with a short lease; a
record that was tried before is first looked up in Gmail by its Message-ID (`rfc822msgid:`), so
a crash between Gmail's answer and our record update never sends twice. Failures stay on the
record (shown on the ticket and by `outbox list`) and are retried with backoff by the outbox.

The first half of this module is pure (resolution, recipients, MIME); the rest talks to the
store and Gmail through `services`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
import hashlib
import re
import time
import uuid

from mailbridge.domain import models, rules
from mailbridge.domain.rules import outgoing_auto_headers
from mailbridge.domain.threads import format_tag as shared
from mailbridge.domain.threads import subject_with_tag
from mailbridge.errors import Conflict, GmailError, InvalidInput, MailbridgeError, NotFound, TokenRevoked
from mailbridge.logs import log_event
from mailbridge.parse import sanitize_html
from mailbridge.services import mailboxes

SCOPES = ("ticket", "ticket_type", "team", "client")
MAX_RECIPIENTS = 100                     # Gmail's per-message limit
MAX_MESSAGE_BYTES = 25 * 1024 * 1024     # Gmail's sending limit, attachments included
INLINE_RAW_BYTES = 256 * 1024            # larger MIME goes to Cloud Storage, not the record
MAX_STORED_TEXT = 60_000                 # keeps an outbound record well under Firestore's 1 MiB
MAX_REFERENCES = 20
LEASE_SECONDS = 120                      # > Gmail client timeout (60 s): one sender at a time
MAX_SEND_ATTEMPTS = 5
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


# ============================================================ pure: override keys and resolution
def normalize_override(scope: str, key: str) -> tuple[str, str]:
    """Validate an override scope and key; keys match case-insensitively (ticket ids drop '#')."""
    if scope not in SCOPES:
        raise InvalidInput(f"override scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    key = (key or "").strip()
    if scope == "ticket":
        key = key.lstrip("#")
    if scope == "client":
        key = key.lstrip("@")
    if not key or len(key) > 200:
        raise InvalidInput("override key must be 1-200 characters")
    if "/" in key or any(ord(c) < 32 or ord(c) == 127 for c in key) or key in (".", ".."):
        raise InvalidInput(f"override key {key!r} may not contain '/' or control characters")
    return scope, key.casefold()


def override_id(scope: str, key: str) -> str:
    scope, key = normalize_override(scope, key)
    return f"{scope}~{key}"


def override_lookups(ticket: dict) -> list[tuple[str, str, str]]:
    """(rule, scope, key) in precedence order; the client is the ticket's client field, then the
    requester's email domain."""
    lookups = [("ticket_override", "ticket", str(ticket.get("id") or ticket.get("number") or ""))]
    if ticket.get("ticket_type"):
        lookups.append(("ticket_type_override", "ticket_type", str(ticket["ticket_type"])))
    if ticket.get("team"):
        lookups.append(("team_override", "team", str(ticket["team"])))
    clients = []
    if ticket.get("client"):
        clients.append(str(ticket["client"]))
    email = ((ticket.get("requester") or {}).get("email") or "").lower()
    if "@" in email:
        clients.append(email.rsplit("@", 1)[1])
    for client in clients:
        lookups.append(("client_override", "client", client))
    valid = []
    for rule, scope, key in lookups:
        try:
            valid.append((rule, scope, normalize_override(scope, key)[1]))
        except InvalidInput:
            continue  # a ticket field no admin could have written an override for
    return valid


def unusable_reason(mailbox: dict | None, name: str, instance: str) -> str | None:
    """Why a mailbox cannot send for this instance, or None when it can."""
    if mailbox is None:
        return f"mailbox {name!r} does not exist"
    cred = next((c for c in mailbox.get("credentials", []) if c.get("instance") == instance), None)
    if cred is None:
        return f"mailbox {name!r} has no credential set for instance {instance!r}"
    status = cred.get("status", "not_connected")
    if status != "connected":
        detail = f": {cred['last_error']}" if cred.get("last_error") else ""
        return f"mailbox {name!r} is {status.replace('_', ' ')} for instance {instance!r}{detail}"
    if not models.outgoing_settings(mailbox).get("enabled", True):
        return f"outgoing mail is disabled for mailbox {name!r} (outgoing.enabled=false)"
    return None


def choose_mailbox(ticket: dict, overrides: dict[tuple[str, str], str], mailboxes: dict[str, dict],
                   default: str | None, instance: str) -> dict:
    """Pure resolution: ticket > ticket type > team > client override > arrival mailbox > default.

    `overrides` maps (scope, normalized key) → mailbox name; `mailboxes` maps name → mailbox.
    A configured but unusable mailbox falls through and is listed in `skipped`."""
    candidates: list[tuple[str, str, str]] = []  # (rule, mailbox name, why it is a candidate)
    seen_client = False
    for rule, scope, key in override_lookups(ticket):
        name = overrides.get((scope, key))
        if not name or (rule == "client_override" and seen_client):
            continue
        seen_client = seen_client or rule == "client_override"
        label = {"ticket": "ticket #", "ticket_type": "ticket type ", "team": "team ", "client": "client "}[scope]
        candidates.append((rule, name, f"{label}{key if scope == 'ticket' else repr(key)} is overridden to {name!r}"))
    if ticket.get("mailbox"):
        candidates.append(("arrival_mailbox", ticket["mailbox"], f"the ticket arrived through {ticket['mailbox']!r}"))
    if default:
        candidates.append(("default_outgoing_mailbox", default, f"the global default outgoing mailbox is {default!r}"))
    skipped = []
    for rule, name, why in candidates:
        reason = unusable_reason(mailboxes.get(name), name, instance)
        if reason:
            skipped.append({"rule": rule, "mailbox": name, "reason": reason})
            continue
        explanation = f"{rule}: {why}"
        if skipped:
            explanation += "; skipped " + "; ".join(f"{s['rule']} ({s['reason']})" for s in skipped)
        return {"mailbox": name, "rule": rule, "explanation": explanation, "skipped": skipped}
    number = ticket.get("number") or ticket.get("id")
    if skipped:
        reasons = "; ".join(f"{s['rule']} → {s['reason']}" for s in skipped)
        raise InvalidInput(f"no usable outgoing mailbox for ticket #{number}: {reasons}")
    raise InvalidInput(f"no outgoing mailbox for ticket #{number}: no override matches, it has no arrival "
                       "mailbox and default_outgoing_mailbox is not set "
                       "(`settings set default_outgoing_mailbox NAME`)")


# ============================================================ pure: addresses, subject, MIME
def check_header_value(name: str, value: str) -> str:
    if value is None:
        return ""
    value = str(value)
    if any(c in value for c in ("\r", "\n", "\x00")):
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

    return subject_with_tag((subject or "").strip() or "(no subject)", number, fmt, reply=True)


def new_message_id(mailbox_address: str) -> str:
    domain = mailbox_address.rsplit("@", 1)[-1].lower() or "localhost"
    return f"<{uuid.uuid4().hex}@mailbridge.{domain}>"


def reference_chain(messages: list[dict]) -> tuple[str | None, list[str]]:
    """In-Reply-To = the last delivered message; References = its references + its id
    (trimmed to the first plus the most recent ones, as RFC 5322 suggests)."""
    if not messages:
        return None, []
    last = messages[-1]
    chain = [r for r in (last.get("references") or []) if r]
    if not chain:
        chain = [m.get("message_id") for m in messages[:-1] if m.get("message_id")]
    chain.append(last.get("message_id"))
    chain = [c for c in dict.fromkeys(chain) if c]
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return last.get("message_id"), chain


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
        sender = str(Address(display_name=self.from_name or "", addr_spec=self.from_email))
        headers = {"From": sender, "To": ", ".join(self.to)}
        if self.cc:
            headers["Cc"] = ", ".join(self.cc)
        headers["Subject"] = self.subject
        headers["Message-ID"] = self.message_id
        if self.in_reply_to:
            headers["In-Reply-To"] = self.in_reply_to
        if self.references:
            headers["References"] = " ".join(self.references)
        for name, value in self.extra_headers:
            headers[name] = value
        return headers


def build_mime(out: Outgoing, now: datetime | None = None) -> bytes:
    """Render with the stdlib (policy SMTP); refuses CR/LF in every header value."""
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
    message = EmailMessage(policy=policy.SMTP)
    try:
        message["From"] = Address(display_name=out.from_name or "", addr_spec=out.from_email)
    except (ValueError, IndexError) as e:
        raise InvalidInput(f"From address {out.from_email!r} is invalid") from e
    message["To"] = ", ".join(out.to)
    if out.cc:
        message["Cc"] = ", ".join(out.cc)
    message["Subject"] = out.subject
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    message["Message-ID"] = out.message_id
    if out.in_reply_to:
        message["In-Reply-To"] = out.in_reply_to
    if out.references:
        message["References"] = " ".join(out.references)
    for name, value in out.extra_headers:
        message[name] = value
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
    return raw


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


# ============================================================ overrides
def set_override(services, scope: str, key: str, mailbox: str) -> dict:
    scope, normalized = normalize_override(scope, key)
    services.store.get_mailbox(mailbox)  # must exist (NotFound otherwise)
    row = {"scope": scope, "key": normalized, "display_key": key.strip(), "mailbox": mailbox,
           "updated_at": models.now_iso()}
    services.store.put_override(row)
    return row


def list_overrides(services) -> list[dict]:
    rows = services.store.list_override_rows()
    order = {scope: i for i, scope in enumerate(SCOPES)}
    return sorted(rows, key=lambda r: (order.get(r.get("scope"), 9), r.get("key", "")))


def remove_override(services, scope: str, key: str) -> None:
    if not services.store.delete_override(override_id(scope, key)):
        raise NotFound(f"no {scope} override for {key!r}")


# ============================================================ adapters: resolution
def resolve_outgoing(services, ticket: dict) -> dict:
    """Which mailbox answers this ticket, which rule chose it, and what was skipped on the way."""
    store = services.store
    lookups = override_lookups(ticket)
    overrides = store.overrides_for([f"{scope}~{key}" for _rule, scope, key in lookups])
    names = set(overrides.values()) | {ticket.get("mailbox"), store.settings().get("default_outgoing_mailbox")}
    mailboxes = {}
    for name in filter(None, names):
        try:
            mailboxes[name] = store.get_mailbox(name)
        except NotFound:
            pass
    default = store.settings().get("default_outgoing_mailbox")
    return choose_mailbox(ticket, overrides, mailboxes, default, services.settings.instance)


# ============================================================ adapters: composing a message
def _delivered_messages(store, ticket_id: str) -> list[dict]:
    rows = []
    for row in store.ticket_messages(ticket_id):
        message = row["message"]
        if message.get("direction") == "out" and row.get("status") != "sent":
            continue  # never delivered: the customer cannot refer to it
        rows.append(dict(message, _mailbox=row.get("mailbox")))
    return rows


def _thread_for(ticket: dict, mailbox_name: str, messages: list[dict]) -> str | None:
    """Gmail threadId only when this mailbox's Gmail holds the customer's thread."""
    for message in reversed(messages):
        if message.get("_mailbox") == mailbox_name and message.get("gmail_thread_id"):
            return message["gmail_thread_id"]
    prefix = f"{mailbox_name}:"
    for key in ticket.get("thread_keys", []):
        if key.startswith(prefix):
            return key[len(prefix):]
    return None


@dataclasses.dataclass
class Draft:
    ticket: dict
    resolution: dict
    mailbox: dict
    out: Outgoing
    thread_id: str | None
    raw: bytes
    kind: str = "reply"


def compose(services, ticket: dict, text: str, html: str | None = None, attachments=(),
            extra_headers=(), only_to: str | None = None, kind: str = "reply",
            resolution: dict | None = None, in_reply_to_latest: bool = True) -> Draft:
    store = services.store
    if not isinstance(text, str):
        raise InvalidInput("reply text must be a string")
    if not text.strip() and not (html or "").strip():
        raise InvalidInput("reply text is empty")
    resolution = resolution or resolve_outgoing(services, ticket)
    mailbox = store.get_mailbox(resolution["mailbox"])
    outgoing = models.outgoing_settings(mailbox)
    own = models.own_addresses(store.list_mailboxes())
    if only_to:
        to, cc = [check_address(only_to, "recipient")], []
        if to[0] in own:
            raise InvalidInput("refusing to send to one of our own mailboxes")
    else:
        to, cc = recipients(ticket, own)
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    messages = _delivered_messages(store, ticket["id"])
    in_reply_to, references = reference_chain(messages) if in_reply_to_latest else (None, [])
    out = Outgoing(
        from_email=check_address(outgoing.get("send_as") or mailbox["address"], "From address"),
        from_name=check_header_value("display name", outgoing.get("display_name") or ""),
        to=to, cc=cc, subject=reply_subject(ticket.get("subject", ""), ticket.get("number"), fmt),
        text=text, html=html, in_reply_to=in_reply_to, references=references,
        message_id=new_message_id(mailbox["address"]),
        attachments=[(str(f), str(t or ""), bytes(d)) for f, t, d in attachments],
        extra_headers=list(extra_headers))
    raw = build_mime(out)
    return Draft(ticket, resolution, mailbox, out, _thread_for(ticket, mailbox["name"], messages), raw, kind)


def _message_record(draft: Draft, key: str, now: str) -> dict:
    out = draft.out
    defects = []
    text, html = out.text or "", out.html
    if len(text) > MAX_STORED_TEXT or (html and len(html) > MAX_STORED_TEXT):
        defects.append(f"body truncated to {MAX_STORED_TEXT} characters for storage; the sent message is complete")
        text, html = text[:MAX_STORED_TEXT], html[:MAX_STORED_TEXT] if html else html
    if html:
        html = sanitize_html(html)
    return {
        "id": f"out~{key}", "direction": "out", "gmail_message_id": None, "gmail_thread_id": draft.thread_id,
        "message_id": out.message_id, "in_reply_to": [out.in_reply_to] if out.in_reply_to else [],
        "references": list(out.references),
        "from": {"email": out.from_email, "name": out.from_name},
        "to": [{"email": e, "name": ""} for e in out.to], "cc": [{"email": e, "name": ""} for e in out.cc],
        "reply_to": [], "subject": out.subject, "date": now, "received_at": now,
        "text": text, "full_text": text, "html": html,
        "attachments": [{"filename": f, "content_type": t or "application/octet-stream", "size": len(d),
                         "content_id": None, "sha256": hashlib.sha256(d).hexdigest(), "inline": False,
                         "omitted": None, "storage_key": None} for f, t, d in out.attachments],
        "defects": defects, "size": len(draft.raw), "ticket_id": draft.ticket["id"],
    }


def preview(draft: Draft) -> dict:
    return {
        "ticket": draft.ticket["id"], "mailbox": draft.mailbox["name"], "rule": draft.resolution["rule"],
        "explanation": draft.resolution["explanation"], "skipped": draft.resolution.get("skipped", []),
        "to": draft.out.to, "cc": draft.out.cc, "headers": draft.out.headers(), "thread_id": draft.thread_id,
        "size": len(draft.raw), "message_id": draft.out.message_id, "gmail_message_id": None,
        "status": "dry_run",
    }


# ============================================================ adapters: records, budget, sending
def _check_key(key: str) -> str:
    key = str(key or "").strip()
    if not key or len(key) > 200 or "/" in key or key.startswith("__") or any(ord(c) < 32 for c in key):
        raise InvalidInput("idempotency key must be 1-200 characters without '/' or control characters")
    return key


def _result(data: dict) -> dict:
    result = {
        "ticket": data.get("ticket_id"), "mailbox": data.get("mailbox"), "rule": data.get("rule"),
        "explanation": data.get("explanation"), "message_id": data.get("message_id"),
        "gmail_message_id": data.get("gmail_message_id"), "thread_id": data.get("gmail_thread_id"),
        "status": data.get("status"), "idempotency_key": data.get("key"), "attempts": data.get("attempts", 0),
    }
    if data.get("status") != "sent" and data.get("last_error"):
        result["error"] = data["last_error"]
        if data.get("status") == "failed":
            result["next_attempt_at"] = data.get("next_attempt_at")
    return result


def _today(now: float | None = None) -> str:
    return datetime.fromtimestamp(now or time.time(), timezone.utc).strftime("%Y-%m-%d")


def _budget_of(mailbox: dict) -> int:
    return int(models.outgoing_settings(mailbox).get("daily_send_budget") or 0)


def _budget_error(mailbox: dict, used: int, budget: int) -> InvalidInput:
    return InvalidInput(
        f"mailbox {mailbox['name']!r} reached its daily send budget ({used}/{budget} messages today, UTC); "
        "nothing was sent. Raise outgoing.daily_send_budget or wait until tomorrow")


def _reserve_budget(services, mailbox: dict) -> str:
    budget = _budget_of(mailbox)
    day = _today()
    taken, used = services.store.take_send_budget(mailbox["name"], day, budget)
    if not taken:
        raise _budget_error(mailbox, used, budget)
    return day


def _release_budget(services, mailbox_name: str, day: str) -> None:
    try:
        services.store.release_send_budget(mailbox_name, day)
    except Exception:  # noqa: BLE001 - over-counting a failed send is the safe side
        pass


def _create_record(services, key: str, draft: Draft) -> bool:
    """Write the pending record and put its Message-ID on the ticket, in one batch.
    Returns False when a record with this key already exists."""
    now = models.now_iso()
    raw_field = {"raw": draft.raw, "raw_sha256": None}
    if len(draft.raw) > INLINE_RAW_BYTES:
        digest = hashlib.sha256(draft.raw).hexdigest()
        services.blobs.put(digest, draft.raw, "message/rfc822")
        raw_field = {"raw": None, "raw_sha256": digest}
    record = {
        "key": key, "kind": draft.kind, "status": "queued", "ticket_id": draft.ticket["id"],
        "mailbox": draft.mailbox["name"], "instance": services.settings.instance,
        "rule": draft.resolution["rule"], "explanation": draft.resolution["explanation"],
        "message_id": draft.out.message_id, "gmail_thread_id": draft.thread_id, "gmail_message_id": None,
        "attempts": 0, "last_error": None, "next_attempt_at": 0, "lease_until": 0,
        "created_at": now, "updated_at": now, "sent_at": None,
        "message": _message_record(draft, key, now), **raw_field,
    }
    return services.store.create_outbound(key, record)


def claim_decision(data: dict | None, now: float):
    """Whether a sender may take the send lease of a record: (state, changes to write or None)."""
    if data is None:
        return "missing", None
    if data.get("status") == "sent":
        return "sent", None
    if data.get("status") == "sending" and float(data.get("lease_until") or 0) > now:
        return "busy", None
    return "claimed", {"status": "sending", "attempts": int(data.get("attempts", 0)) + 1,
                       "lease_until": now + LEASE_SECONDS, "updated_at": models.now_iso()}


def _claim(services, key: str) -> tuple[str, dict]:
    """Take the send lease: ('claimed'|'sent'|'busy'|'missing', record before the claim)."""
    return services.store.change_outbound(key, lambda data: claim_decision(data, time.time()))


def _find_sent(gmail, message_id: str) -> str | None:
    """The Gmail id of a message already carrying this Message-ID (5 quota units)."""
    query = f"rfc822msgid:{message_id.strip().strip('<>')}"
    for page in gmail.list_ids(query):
        if page:
            return page[0]
        break
    return None


def _mark_sent(services, key: str, data: dict, gmail_id: str, thread_id: str | None) -> dict:
    now = models.now_iso()
    changes = {"status": "sent", "gmail_message_id": gmail_id, "gmail_thread_id": thread_id,
               "message.gmail_message_id": gmail_id, "message.gmail_thread_id": thread_id,
               "sent_at": now, "updated_at": now, "lease_until": 0, "last_error": None, "next_attempt_at": 0}
    services.store.update_outbound(key, changes)  # the record update a crash can lose
    data = {**data, **{k: v for k, v in changes.items() if not k.startswith("message.")}}
    _touch_ticket(services, data)
    return data


def _touch_ticket(services, data: dict) -> None:
    thread_keys = [f"{data['mailbox']}:{data['gmail_thread_id']}"] if data.get("gmail_thread_id") else []
    try:
        services.store.add_ticket_references(data["ticket_id"], [data["message_id"]], thread_keys, models.now_iso())
    except Exception as e:  # noqa: BLE001 - the message went out; the ticket already has its Message-ID
        log_event("WARNING", "ticket update after send failed", ticket=data.get("ticket_id"),
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")


def _record_failure(services, key: str, data: dict, error: str, permanent: bool = False) -> dict:
    attempts = int(data.get("attempts", 0)) + 1
    give_up = permanent or attempts >= MAX_SEND_ATTEMPTS
    changes = {"status": "given_up" if give_up else "failed", "last_error": error[:500], "lease_until": 0,
               "next_attempt_at": 0 if give_up else time.time() + backoff_seconds(attempts),
               "updated_at": models.now_iso()}
    services.store.update_outbound(key, changes)
    log_event("WARNING", "outgoing send failed", key=key, ticket=data.get("ticket_id"), mailbox=data.get("mailbox"),
              attempts=attempts, status=changes["status"], error=error[:200])
    return {**data, **changes, "attempts": attempts}


def _load_raw(services, data: dict) -> bytes:
    if data.get("raw") is not None:
        return bytes(data["raw"])
    return services.blobs.get(data["raw_sha256"])


class RateLimited(GmailError):
    """Gmail answered 429 (or a rate-limit 403) to a send: nothing was sent; the record is queued
    again and the outbox waits for the retry time in the message."""

    http_status = 429


def _unclaim_rate_limited(services, key: str, data: dict, error: GmailError) -> None:
    services.store.update_outbound(key, {"status": "queued", "lease_until": 0, "attempts": int(data.get("attempts", 0)),
                                         "last_error": str(error)[:500], "updated_at": models.now_iso()})


def deliver(services, key: str, gmail=None) -> dict:
    """Send the record `key` once: claim it, look for an earlier send, call Gmail, record.
    The outbox passes its Gmail client so one drain refreshes one token."""

    store = services.store
    state, data = _claim(services, key)
    if state == "missing":
        raise NotFound(f"no outgoing message with key {key!r}")
    if state == "sent":
        return _result(data)
    mailbox = store.get_mailbox(data["mailbox"])
    cred = mailboxes.own_credential(services, mailbox)
    reason = unusable_reason(mailbox, mailbox["name"], services.settings.instance)
    if reason:
        if state == "busy":
            raise Conflict(f"message {key!r} is being sent by another process")
        return _result(_record_failure(services, key, data, f"cannot send: {reason}"))
    try:
        gmail = gmail or services.gmail_for(mailbox, cred)
        if int(data.get("attempts", 0)) > 0 or state == "busy":
            found = _find_sent(gmail, data["message_id"])
            if found:
                log_event("INFO", "outgoing message was already sent; recording it", key=key, gmail_message_id=found)
                return _result(_mark_sent(services, key, data, found, data.get("gmail_thread_id")))
        if state == "busy":
            raise Conflict(f"message {key!r} is being sent by another process; try again in {LEASE_SECONDS} s")
    except TokenRevoked as e:
        services.google.mark_revoked(mailbox["name"], services.settings.instance, str(e))
        if state == "busy":
            raise
        return _result(_record_failure(services, key, data, str(e)))
    except GmailError as e:
        if state == "busy":
            raise
        return _result(_record_failure(services, key, data, str(e)))
    try:
        day = _reserve_budget(services, mailbox)
    except InvalidInput as e:
        _record_failure(services, key, data, str(e))
        raise
    try:
        response = gmail.send(_load_raw(services, data), data.get("gmail_thread_id"))
    except TokenRevoked as e:
        _release_budget(services, mailbox["name"], day)
        services.google.mark_revoked(mailbox["name"], services.settings.instance, str(e))
        return _result(_record_failure(services, key, data, str(e)))
    except GmailError as e:
        if e.status and 400 <= e.status < 500:
            _release_budget(services, mailbox["name"], day)
        if e.status == 429 or (e.status == 403 and e.reason in RATE_REASONS):
            _unclaim_rate_limited(services, key, data, e)  # refused before sending: not an attempt
            raise RateLimited(str(e), e.status, e.reason) from None
        return _result(_record_failure(services, key, data, str(e), permanent=e.status == 400))
    except Exception as e:  # noqa: BLE001 - network errors: maybe sent; the retry looks it up first
        return _result(_record_failure(services, key, data, f"{e.__class__.__name__}: {str(e)[:200]}"))
    try:
        sent = _mark_sent(services, key, data, response.get("id"), response.get("threadId"))
    except Exception as e:  # noqa: BLE001 - it WAS sent: say so; the next retry records it from Gmail
        log_event("ERROR", "sent but not recorded; the retry will record it", key=key,
                  gmail_message_id=response.get("id"), error=f"{e.__class__.__name__}: {str(e)[:200]}")
        sent = {**data, "status": "sent", "gmail_message_id": response.get("id"),
                "gmail_thread_id": response.get("threadId")}
    log_event("INFO", "outgoing message sent", key=key, ticket=data.get("ticket_id"), mailbox=mailbox["name"],
              gmail_message_id=response.get("id"), kind=data.get("kind"))
    return _result(sent)


WAKE_FALLBACK_SECONDS = 120.0  # new records: the scheduled tick sends them if their task was lost


def enqueue_send(services, mailbox_name: str, reason: str, new_records: bool = True) -> None:
    """Ask the work queue for a "send" task of this mailbox (services/outbox.py drains all its
    records). After new records, first the tick's safety net: a process killed before its publish
    still gets them sent by a tick after WAKE_FALLBACK_SECONDS."""
    if new_records:
        services.store.update_mailbox(mailbox_name, {"outbox_wake_at": time.time() + WAKE_FALLBACK_SECONDS})
    services.queue.publish("send", mailbox_name, {"reason": reason})


FINAL = ("sent", "given_up", "skipped", "dropped")


def wait_for_send(services, key: str, wait_s: float, poll_s: float = 0.5) -> dict:
    """The record once the outbox has sent it, failed it, or said why it waits; or, after `wait_s`,
    as it is (still queued)."""
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        data = services.store.get_outbound(key) or {}
        status = data.get("status")
        if status in FINAL or status == "failed" or (status == "queued" and data.get("last_error")):
            return _result(data)
        if time.monotonic() >= deadline:
            return _result(data)
        time.sleep(poll_s)


def _resume(services, key: str, data: dict, wait_s: float = 0.0) -> dict:
    if data.get("status") in ("sent", "skipped", "dropped"):
        return _result(data)
    if data.get("status") == "sending":
        # a sender holds it (or died holding it): deliver only looks it up in Gmail, never sends;
        # Conflict while it is not found there
        return deliver(services, key)
    if data.get("status") == "given_up":
        # an explicit retry by a person gets one more attempt (earlier ones are still looked up in Gmail)
        services.store.update_outbound(key, {"status": "queued", "next_attempt_at": 0})
    elif data.get("status") == "failed":
        services.store.update_outbound(key, {"next_attempt_at": 0})
    enqueue_send(services, data["mailbox"], "resume", new_records=False)
    return wait_for_send(services, key, wait_s) if wait_s else _result(services.store.get_outbound(key))


# ============================================================ use cases
def send_reply(services, ticket_id: str, text: str, html: str | None = None, attachments=(),
               dry_run: bool = False, idempotency_key: str | None = None, wait: bool = True) -> dict:
    """Reply-all to a ticket through its resolved outgoing mailbox, exactly once per key: the
    record is queued in the outbox; with `wait`, answer once it is sent (or why not), up to
    `settings.reply_wait_s`; without, once it is durable (status queued)."""
    store = services.store
    wait_s = services.settings.reply_wait_s if wait else 0.0
    key = _check_key(idempotency_key) if idempotency_key is not None else None
    if key and not dry_run:
        existing = store.get_outbound(key)
        if existing is not None:
            return _resume(services, key, existing, wait_s)
    ticket = store.get_ticket(ticket_id)
    draft = compose(services, ticket, text, html, attachments)
    if dry_run:
        return preview(draft)
    key = key or f"reply-{uuid.uuid4().hex}"
    if not _create_record(services, key, draft):
        return _resume(services, key, store.get_outbound(key), wait_s)
    log_event("INFO", "reply queued", key=key, ticket=ticket_id, mailbox=draft.mailbox["name"])
    enqueue_send(services, draft.mailbox["name"], "reply")
    return wait_for_send(services, key, wait_s) if wait_s else _result(store.get_outbound(key))


def _hour_key(now: float | None = None) -> str:
    return datetime.fromtimestamp(now or time.time(), timezone.utc).strftime("%Y%m%d%H")


def acknowledge(services, mailbox: dict, ticket: dict, parsed, verdict) -> dict:
    """Queue the acknowledgement of a new ticket (RFC 3834 auto-reply), at most N per recipient per
    hour; the outbox sends it after any queued reply. Nothing is sent here."""

    outgoing = models.outgoing_settings(mailbox)
    recipient = ((ticket.get("requester") or {}).get("email") or "").strip().lower()

    def skip(reason):
        log_event("INFO", "acknowledgement skipped", ticket=ticket.get("id"), mailbox=mailbox["name"], reason=reason)
        return {"status": "skipped", "reason": reason, "ticket": ticket.get("id")}

    if not outgoing.get("acknowledge_new", True):
        return skip("acknowledgements are off for this mailbox (outgoing.acknowledge_new=false)")
    store = services.store
    marker = rules.loop_marker(services.settings.prefix)
    refusal = rules.acknowledgement_refusal(parsed, verdict, recipient)
    if refusal:
        return skip(refusal)
    key = f"ack-{ticket['id']}"
    existing = store.get_outbound(key)
    if existing is not None:
        return _result(existing)
    limit = int(outgoing.get("acknowledgement_limit_per_hour") or 0)
    if not store.take_acknowledgement_slot(recipient, _hour_key(), limit):
        return skip(f"{recipient} already got {limit} acknowledgements this hour")
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    text = acknowledgement_text(outgoing.get("acknowledgement_template") or models.DEFAULT_OUTGOING[
        "acknowledgement_template"], format_tag(ticket["number"], fmt), ticket["number"], ticket.get("subject", ""))
    draft = compose(services, ticket, text, extra_headers=auto_headers(marker), only_to=recipient,
                    kind="acknowledgement")
    budget = _budget_of(draft.mailbox)
    ack_budget = budget * int(outgoing.get("acknowledgement_share_percent") or 0) // 100
    used = store.send_budget_used(draft.mailbox["name"], _today())
    if used >= ack_budget:
        return skip(f"daily send budget: acknowledgements may use {ack_budget} of {budget} messages a day "
                    f"(outgoing.acknowledgement_share_percent); {used} sent today, the rest is kept for replies")
    if not _create_record(services, key, draft):
        return _result(store.get_outbound(key))
    return _result(store.get_outbound(key))  # queued: the caller publishes one send task per sync


__all__ = ["acknowledge", "resolve_outgoing", "send_reply", "set_override", "list_overrides",
           "remove_override"]
