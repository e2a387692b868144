"""Outgoing mail: which mailbox answers a ticket (explained), threaded replies, acknowledgements.

Exactly once: every message gets an `outbound/{idempotency key}` record (with its Message-ID and
the exact MIME bytes) BEFORE Gmail is called. A send claims the record with a short lease; a
record that was tried before is first looked up in Gmail (`rfc822msgid:`, then the sent mail's
X-Mailbridge-Outbound marker, which survives Gmail replacing the Message-ID), so a crash between
Gmail's answer and our record update never sends twice. The Message-ID Gmail really sent is
read back and kept beside ours (docs/gmail-differences.md). The record is queued; the outbox's
"send" task (services/outbox.py, docs/outbox.md) sends it. Failures stay on the record (shown on
the ticket and by `outbox list`) and are retried with backoff by the outbox.

The pure rules live in domain/routing.py (which mailbox) and domain/compose.py (the message);
this module talks to the store and Gmail through `services`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
import hashlib
import time
import uuid

from mailbridge.domain import compose as mime
from mailbridge.domain import models, routing, rules
from mailbridge.errors import Conflict, GmailError, InvalidInput, MailbridgeError, NotFound, TokenRevoked
from mailbridge.logs import log_event
from mailbridge.domain.parsing import sanitize_html
from mailbridge.services import mailboxes
from mailbridge.services.ports import OutgoingPorts, TicketRepository

INLINE_RAW_BYTES = 256 * 1024            # larger MIME goes to Cloud Storage, not the record
MAX_STORED_TEXT = 60_000                 # keeps an outbound record well under Firestore's 1 MiB
LEASE_SECONDS = 120                      # > Gmail client timeout (60 s): one sender at a time
MAX_SEND_ATTEMPTS = 5
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
RECOVERY_SKEW_SECONDS = 600              # `after:` margin for clocks when looking for an earlier send
RECOVERY_CANDIDATES = 50                 # sent messages read for the marker after a crash (5 units each)


# ============================================================ overrides
def set_override(services: OutgoingPorts, scope: str, key: str, mailbox: str) -> dict:
    scope, normalized = routing.normalize_override(scope, key)
    services.store.get_mailbox(mailbox)  # must exist (NotFound otherwise)
    row = {"scope": scope, "key": normalized, "display_key": key.strip(), "mailbox": mailbox,
           "updated_at": models.now_iso()}
    services.store.put_override(row)
    return row


def list_overrides(services: OutgoingPorts) -> list[dict]:
    rows = services.store.list_override_rows()
    order = {scope: i for i, scope in enumerate(routing.SCOPES)}
    return sorted(rows, key=lambda r: (order.get(r.get("scope"), 9), r.get("key", "")))


def remove_override(services: OutgoingPorts, scope: str, key: str) -> None:
    if not services.store.delete_override(routing.override_id(scope, key)):
        raise NotFound(f"no {scope} override for {key!r}")


# ============================================================ adapters: resolution
def resolve_outgoing(services: OutgoingPorts, ticket: dict) -> dict:
    """Which mailbox answers this ticket, which rule chose it, and what was skipped on the way."""
    store = services.store
    lookups = routing.override_lookups(ticket)
    overrides = store.overrides_for([f"{scope}~{key}" for _rule, scope, key in lookups])
    names = set(overrides.values()) | {ticket.get("mailbox"), store.settings().get("default_outgoing_mailbox")}
    mailboxes = {}
    for name in filter(None, names):
        try:
            mailboxes[name] = store.get_mailbox(name)
        except NotFound:
            pass
    default = store.settings().get("default_outgoing_mailbox")
    return routing.choose_mailbox(ticket, overrides, mailboxes, default, services.settings.instance)


# ============================================================ adapters: composing a message
def _delivered_messages(store: TicketRepository, ticket_id: str) -> list[dict]:
    rows = []
    for row in store.ticket_messages(ticket_id):
        message = row["message"]
        if message.get("direction") == "out" and row.get("status") != "sent":
            continue  # never delivered: the customer cannot refer to it
        # Customers answer the Message-ID Gmail really sent (it may have replaced ours).
        rows.append(dict(message, _mailbox=row.get("mailbox"),
                         message_id=message.get("sent_message_id") or message.get("message_id")))
    return rows


def _thread_subject(ticket: dict, mailbox_name: str, thread_id: str | None, messages: list[dict]) -> str | None:
    """The subject of the Gmail thread a reply joins: its first message's (what Gmail compares)."""
    if not thread_id:
        return None
    for message in messages:
        if message.get("_mailbox") == mailbox_name and message.get("gmail_thread_id") == thread_id:
            return message.get("subject") or ticket.get("subject")
    return ticket.get("subject")


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
    out: mime.Outgoing
    thread_id: str | None
    raw: bytes
    kind: str = "reply"


def compose(services: OutgoingPorts, ticket: dict, text: str, html: str | None = None, attachments=(),
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
        to, cc = [mime.check_address(only_to, "recipient")], []
        if to[0] in own:
            raise InvalidInput("refusing to send to one of our own mailboxes")
    else:
        to, cc = mime.recipients(ticket, own)
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    messages = _delivered_messages(store, ticket["id"])
    in_reply_to, references = mime.reference_chain(messages) if in_reply_to_latest else (None, [])
    thread_id = _thread_for(ticket, mailbox["name"], messages)
    thread_subject = _thread_subject(ticket, mailbox["name"], thread_id, messages)
    if kind == "acknowledgement" and thread_subject is not None and (
            rules.repeatable_subject(thread_subject) != mime.clean_header_text(thread_subject)):
        # an acknowledgement never repeats a baiting subject (rules.repeatable_subject): it leaves
        # the Gmail thread, whose subject it would have to carry, and keeps its neutral one
        thread_id = thread_subject = None
    subject = mime.thread_reply_subject(thread_subject, ticket.get("subject", ""), ticket.get("number"), fmt)
    out = mime.Outgoing(
        from_email=mime.check_address(outgoing.get("send_as") or mailbox["address"], "From address"),
        from_name=mime.check_header_value("display name", outgoing.get("display_name") or ""),
        to=to, cc=cc, subject=subject,
        text=text, html=html, in_reply_to=in_reply_to, references=references,
        message_id=mime.new_message_id(mailbox["address"]),
        attachments=[(str(f), str(t or ""), bytes(d)) for f, t, d in attachments],
        extra_headers=list(extra_headers))
    raw = mime.build_mime(out)
    return Draft(ticket, resolution, mailbox, out, thread_id, raw, kind)


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
        "from": draft.out.from_email, "to": draft.out.to, "cc": draft.out.cc, "subject": draft.out.subject,
        "headers": draft.out.headers(), "thread_id": draft.thread_id,
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
        "sent_message_id": data.get("sent_message_id"), "gmail_message_id": data.get("gmail_message_id"), "thread_id": data.get("gmail_thread_id"),
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


def _reserve_budget(services: OutgoingPorts, mailbox: dict) -> str:
    budget = _budget_of(mailbox)
    day = _today()
    taken, used = services.store.take_send_budget(mailbox["name"], day, budget)
    if not taken:
        raise _budget_error(mailbox, used, budget)
    return day


def _release_budget(services: OutgoingPorts, mailbox_name: str, day: str) -> None:
    try:
        services.store.release_send_budget(mailbox_name, day)
    except Exception:  # noqa: BLE001 - over-counting a failed send is the safe side
        pass


def _create_record(services: OutgoingPorts, key: str, draft: Draft) -> bool:
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


def _claim(services: OutgoingPorts, key: str) -> tuple[str, dict]:
    """Take the send lease: ('claimed'|'sent'|'busy'|'missing', record before the claim)."""
    return services.store.change_outbound(key, lambda data: claim_decision(data, time.time()))


def _find_sent(gmail, data: dict) -> dict | None:
    """{"id", "threadId", "headers"} of the message this record already sent, or None.

    rfc822msgid: finds it while Gmail keeps our Message-ID (5 units); Gmail may replace it, so
    then the sent mail to its first recipient since the record was created is read for our
    OUTBOUND_HEADER marker (5 units per candidate). See docs/gmail-differences.md."""
    names = ["Message-ID", mime.OUTBOUND_HEADER]
    ours = data["message_id"]
    for page in gmail.list_ids(f"rfc822msgid:{ours.strip().strip('<>')}"):
        for gmail_id in page[:1]:
            found = gmail.message_metadata(gmail_id, names)
            if found:
                return found
        break
    recipient = ((data.get("message") or {}).get("to") or [{}])[0].get("email")
    try:
        since = int(datetime.fromisoformat(data["created_at"]).timestamp()) - RECOVERY_SKEW_SECONDS
    except (KeyError, TypeError, ValueError):
        since = 0
    query = "in:sent" + (f" to:{recipient}" if recipient else "") + (f" after:{since}" if since > 0 else "")
    for page in gmail.list_ids(query):
        for gmail_id in page[:RECOVERY_CANDIDATES]:
            found = gmail.message_metadata(gmail_id, names)
            if found and found["headers"].get(mime.OUTBOUND_HEADER, "").strip() == ours:
                return found
        break
    return None


def _mark_sent(services: OutgoingPorts, key: str, data: dict, gmail_id: str, thread_id: str | None,
               sent_message_id: str | None) -> dict:
    now = models.now_iso()
    changes = {"status": "sent", "gmail_message_id": gmail_id, "gmail_thread_id": thread_id,
               "sent_message_id": sent_message_id,
               "message.gmail_message_id": gmail_id, "message.gmail_thread_id": thread_id,
               "message.sent_message_id": sent_message_id,
               "sent_at": now, "updated_at": now, "lease_until": 0, "last_error": None, "next_attempt_at": 0}
    requested = data.get("gmail_thread_id")
    if requested and thread_id and thread_id != requested:
        # Gmail filed it elsewhere (thread gone, or a subject it would not match): record both.
        changes["requested_thread_id"] = requested
        log_event("WARNING", "gmail put the message in another thread", key=key, requested_thread_id=requested,
                  gmail_thread_id=thread_id)
    services.store.update_outbound(key, changes)  # the record update a crash can lose
    data = {**data, **{k: v for k, v in changes.items() if not k.startswith("message.")}}
    _touch_ticket(services, data)
    return data


def _touch_ticket(services: OutgoingPorts, data: dict) -> None:
    thread_keys = [f"{data['mailbox']}:{data['gmail_thread_id']}"] if data.get("gmail_thread_id") else []
    # Both ids thread the customer's answer: ours, and the one Gmail sent if it replaced ours.
    message_ids = list(dict.fromkeys(filter(None, [data["message_id"], data.get("sent_message_id")])))
    try:
        services.store.add_ticket_references(data["ticket_id"], message_ids, thread_keys, models.now_iso())
    except Exception as e:  # noqa: BLE001 - the message went out; the ticket already has its Message-ID
        log_event("WARNING", "ticket update after send failed", ticket=data.get("ticket_id"),
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")


def _sent_message_id(gmail, gmail_id: str | None) -> str | None:
    """The Message-ID Gmail really sent (it may replace ours): read back, 5 units."""
    if not gmail_id:
        return None
    try:
        found = gmail.message_metadata(gmail_id, ["Message-ID"])
    except (GmailError, TokenRevoked) as e:
        log_event("WARNING", "could not read back the sent Message-ID", gmail_message_id=gmail_id, error=str(e)[:200])
        return None
    return ((found or {}).get("headers") or {}).get("Message-ID", "").strip() or None


def _record_failure(services: OutgoingPorts, key: str, data: dict, error: str, permanent: bool = False) -> dict:
    attempts = int(data.get("attempts", 0)) + 1
    give_up = permanent or attempts >= MAX_SEND_ATTEMPTS
    changes = {"status": "given_up" if give_up else "failed", "last_error": error[:500], "lease_until": 0,
               "next_attempt_at": 0 if give_up else time.time() + mime.backoff_seconds(attempts),
               "updated_at": models.now_iso()}
    services.store.update_outbound(key, changes)
    log_event("WARNING", "outgoing send failed", key=key, ticket=data.get("ticket_id"), mailbox=data.get("mailbox"),
              attempts=attempts, status=changes["status"], error=error[:200])
    return {**data, **changes, "attempts": attempts}


def _load_raw(services: OutgoingPorts, data: dict) -> bytes:
    if data.get("raw") is not None:
        return bytes(data["raw"])
    return services.blobs.get(data["raw_sha256"])


class RateLimited(GmailError):
    """Gmail answered 429 (or a rate-limit 403) to a send: nothing was sent; the record is queued
    again and the outbox waits for the retry time in the message."""

    http_status = 429


def _unclaim_rate_limited(services: OutgoingPorts, key: str, data: dict, error: GmailError) -> None:
    services.store.update_outbound(key, {"status": "queued", "lease_until": 0, "attempts": int(data.get("attempts", 0)),
                                         "last_error": str(error)[:500], "updated_at": models.now_iso()})


def deliver(services: OutgoingPorts, key: str, gmail=None) -> dict:
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
    reason = routing.unusable_reason(mailbox, mailbox["name"], services.settings.instance)
    if reason:
        if state == "busy":
            raise Conflict(f"message {key!r} is being sent by another process")
        return _result(_record_failure(services, key, data, f"cannot send: {reason}"))
    try:
        gmail = gmail or services.gmail_for(mailbox, cred)
        if int(data.get("attempts", 0)) > 0 or state == "busy":
            found = _find_sent(gmail, data)
            if found:
                log_event("INFO", "outgoing message was already sent; recording it", key=key,
                          gmail_message_id=found["id"])
                return _result(_mark_sent(services, key, data, found["id"], found.get("threadId"),
                                          found["headers"].get("Message-ID", "").strip() or None))
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
    sent_message_id = _sent_message_id(gmail, response.get("id"))
    try:
        sent = _mark_sent(services, key, data, response.get("id"), response.get("threadId"), sent_message_id)
    except Exception as e:  # noqa: BLE001 - it WAS sent: say so; the next retry records it from Gmail
        log_event("ERROR", "sent but not recorded; the retry will record it", key=key,
                  gmail_message_id=response.get("id"), error=f"{e.__class__.__name__}: {str(e)[:200]}")
        sent = {**data, "status": "sent", "gmail_message_id": response.get("id"),
                "gmail_thread_id": response.get("threadId"), "sent_message_id": sent_message_id}
    log_event("INFO", "outgoing message sent", key=key, ticket=data.get("ticket_id"), mailbox=mailbox["name"],
              gmail_message_id=response.get("id"), kind=data.get("kind"))
    return _result(sent)


WAKE_FALLBACK_SECONDS = 120.0  # new records: the scheduled tick sends them if their task was lost


def enqueue_send(services: OutgoingPorts, mailbox_name: str, reason: str, new_records: bool = True) -> None:
    """Ask the work queue for a "send" task of this mailbox (services/outbox.py drains all its
    records). After new records, first the tick's safety net: a process killed before its publish
    still gets them sent by a tick after WAKE_FALLBACK_SECONDS."""
    if new_records:
        services.store.update_mailbox(mailbox_name, {"outbox_wake_at": time.time() + WAKE_FALLBACK_SECONDS})
    services.queue.publish("send", mailbox_name, {"reason": reason})


FINAL = ("sent", "given_up", "skipped", "dropped")


def wait_for_send(services: OutgoingPorts, key: str, wait_s: float, poll_s: float = 0.5) -> dict:
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


def _resume(services: OutgoingPorts, key: str, data: dict, wait_s: float = 0.0) -> dict:
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
def send_reply(services: OutgoingPorts, ticket_id: str, text: str, html: str | None = None, attachments=(),
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


def acknowledge(services: OutgoingPorts, mailbox: dict, ticket: dict, parsed, verdict) -> dict:
    """Queue the acknowledgement of a new ticket (RFC 3834 auto-reply) to an authenticated sender,
    at most N per recipient and M per recipient domain per hour, repeating its subject only when
    harmless (rules.acknowledgement_refusal, rules.repeatable_subject; docs/reliability.md); the
    outbox sends it after any queued reply. Nothing is sent here."""

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
    domain_limit = int(outgoing.get("acknowledgement_limit_per_domain_per_hour") or 0)
    domain = "@" + recipient.rpartition("@")[2]
    full = store.take_acknowledgement_slots([(recipient, limit), (domain, domain_limit)], _hour_key())
    if full is not None:
        return skip(f"{full} already got {limit if full == recipient else domain_limit} acknowledgements this hour")
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    subject = rules.repeatable_subject(ticket.get("subject", ""))
    text = mime.acknowledgement_text(outgoing.get("acknowledgement_template") or models.DEFAULT_OUTGOING[
        "acknowledgement_template"], mime.format_tag(ticket["number"], fmt), ticket["number"], subject)
    try:
        draft = compose(services, {**ticket, "subject": subject}, text, extra_headers=mime.auto_headers(marker),
                        only_to=recipient, kind="acknowledgement")
    except InvalidInput as e:
        return skip(f"acknowledgement could not be composed: {e}")
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
