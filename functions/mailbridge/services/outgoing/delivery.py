"""Deliver one outbound record through Gmail, exactly once.

A send claims the record with a short lease; a record that was tried before is first looked up
in Gmail (`rfc822msgid:`, then the sent mail's X-Mailbridge-Outbound marker, which survives Gmail
replacing the Message-ID), so a crash between Gmail's answer and our record update never sends
twice. The Message-ID Gmail really sent is read back and kept beside ours
(docs/gmail-differences.md). Failures stay on the record (shown on the ticket and by `outbox
list`) and are retried with backoff by the outbox (services/outbox/, docs/outbox.md).
"""

from __future__ import annotations

from datetime import datetime
import time

from mailbridge.domain import compose as mime
from mailbridge.domain import events, models, routing
from mailbridge.errors import Conflict, GmailError, InvalidInput, NotFound, TokenRevoked
from mailbridge.logs import log_event
from mailbridge.services import events as ticket_events
from mailbridge.services import mailboxes
from mailbridge.services.outgoing import budget, records
from mailbridge.services.ports import OutgoingPorts

LEASE_SECONDS = 120                      # > Gmail client timeout (60 s): one sender at a time
MAX_SEND_ATTEMPTS = 5
RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
RECOVERY_SKEW_SECONDS = 600              # `after:` margin for clocks when looking for an earlier send
RECOVERY_CANDIDATES = 50                 # sent messages read for the marker after a crash (5 units each)


class RateLimited(GmailError):
    """Gmail answered 429 (or a rate-limit 403) to a send: nothing was sent; the record is queued
    again and the outbox waits for the retry time in the message."""

    http_status = 429


# ============================================================ the claim
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


def claim(services: OutgoingPorts, key: str) -> tuple[str, dict]:
    """Take the send lease: ('claimed'|'sent'|'busy'|'missing', record before the claim)."""
    return services.store.change_outbound(key, lambda data: claim_decision(data, time.time()))


# ============================================================ an earlier send, found in Gmail
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


def _earlier_send(services: OutgoingPorts, gmail, key: str, state: str, data: dict) -> dict | None:
    """A record claimed before may have been sent by a sender that died before recording it: look
    it up in Gmail first and record it (the record, sent), never send it again. Conflict while
    another sender holds the lease and Gmail does not have it yet; None when it is to be sent."""
    if int(data.get("attempts", 0)) > 0 or state == "busy":
        found = _find_sent(gmail, data)
        if found:
            log_event("INFO", "outgoing message was already sent; recording it", key=key,
                      gmail_message_id=found["id"])
            return _mark_sent(services, key, data, found["id"], found.get("threadId"),
                              found["headers"].get("Message-ID", "").strip() or None)
    if state == "busy":
        raise Conflict(f"message {key!r} is being sent by another process; try again in {LEASE_SECONDS} s")
    return None


# ============================================================ recording the outcome
def _mark_sent(services: OutgoingPorts, key: str, data: dict, gmail_id: str, thread_id: str | None,
               sent_message_id: str | None) -> dict:
    """The record sent, the ticket's references and the ticket.reply_sent event, in one commit
    (the commit a crash can lose: the retry finds the message in Gmail and makes it then); then
    the event is published (services/events.py)."""
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
    retention = events.retention_days(services.store.settings())

    def decide(record: dict | None, ticket: dict | None):
        if record is None or record.get("status") == "sent":  # recorded (with its event) by another sender
            return ({**data, **(record or {})}, None), None, None, None
        sent = {**record, **{k: v for k, v in changes.items() if not k.startswith("message.")}}
        sent["message"] = {**record.get("message", {}), "gmail_message_id": gmail_id, "gmail_thread_id": thread_id,
                           "sent_message_id": sent_message_id}
        if ticket is None:
            return (sent, None), changes, None, None
        ticket_changes = _ticket_references(ticket, sent, now)
        event = events.reply_sent({**ticket, **ticket_changes}, sent, now)
        ticket_changes[events.SEQUENCE_FIELD] = event["sequence"]
        return ((sent, ticket.get("mailbox")), changes, ticket_changes,
                events.batch([event], ticket.get("mailbox") or "", now, retention))

    sent, ticket_mailbox = services.store.commit_sent(key, decide)
    ticket_events.after_commit(services, ticket_mailbox)
    return sent


def _ticket_references(ticket: dict, sent: dict, now: str) -> dict:
    """The ticket's changes when a message of it is sent: both Message-IDs thread the customer's
    answer (ours, and the one Gmail sent if it replaced ours), and the Gmail thread."""
    message_ids = list(dict.fromkeys(filter(None, [sent["message_id"], sent.get("sent_message_id")])))
    changes = {"updated_at": now,
               "message_ids": list(dict.fromkeys(list(ticket.get("message_ids") or []) + message_ids))}
    if sent.get("gmail_thread_id"):
        thread_key = f"{sent['mailbox']}:{sent['gmail_thread_id']}"
        changes["thread_keys"] = list(dict.fromkeys(list(ticket.get("thread_keys") or []) + [thread_key]))
    return changes


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


def _unclaim_rate_limited(services: OutgoingPorts, key: str, data: dict, error: GmailError) -> None:
    services.store.update_outbound(key, {"status": "queued", "lease_until": 0, "attempts": int(data.get("attempts", 0)),
                                         "last_error": str(error)[:500], "updated_at": models.now_iso()})


def _record_sent(services: OutgoingPorts, gmail, key: str, data: dict, mailbox: dict, response: dict) -> dict:
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
    return records.result(sent)


# ============================================================ the send
def _give_back(services: OutgoingPorts, mailbox: dict, day: str, allowance) -> None:
    """A message of the budget that was not sent: back to the drainer's block, or released."""
    if allowance:
        allowance.give_back(day)
    else:
        budget.release(services.store, mailbox["name"], day)


def _refused_by_gmail(services: OutgoingPorts, key: str, data: dict, mailbox: dict, day: str,
                      error: GmailError, allowance=None) -> dict:
    """Gmail answered the send with an error: a 4xx was not sent (its budget is given back); a
    rate limit is not an attempt (RateLimited); a 400 is given up at once."""
    if error.status and 400 <= error.status < 500:
        _give_back(services, mailbox, day, allowance)
    if error.status == 429 or (error.status == 403 and error.reason in RATE_REASONS):
        _unclaim_rate_limited(services, key, data, error)  # refused before sending: not an attempt
        raise RateLimited(str(error), error.status, error.reason) from None
    return records.result(_record_failure(services, key, data, str(error), permanent=error.status == 400))


def _send(services: OutgoingPorts, gmail, key: str, data: dict, mailbox: dict, day: str, allowance=None) -> dict:
    """Call Gmail's send once, then record what happened."""
    try:
        response = gmail.send(records.raw_of(services.blobs, data), data.get("gmail_thread_id"))
    except TokenRevoked as e:
        _give_back(services, mailbox, day, allowance)
        services.google.mark_revoked(mailbox["name"], services.settings.instance, str(e))
        return records.result(_record_failure(services, key, data, str(e)))
    except GmailError as e:
        return _refused_by_gmail(services, key, data, mailbox, day, e, allowance)
    except Exception as e:  # noqa: BLE001 - network errors: maybe sent; the retry looks it up first
        return records.result(_record_failure(services, key, data, f"{e.__class__.__name__}: {str(e)[:200]}"))
    return _record_sent(services, gmail, key, data, mailbox, response)


def deliver(services: OutgoingPorts, key: str, gmail=None, allowance: budget.Allowance | None = None) -> dict:
    """Send the record `key` once: claim it, look for an earlier send, take the budget, call
    Gmail, record. The outbox passes its Gmail client so one drain refreshes one token, and its
    block of the daily budget (budget.Allowance)."""
    state, data = claim(services, key)
    if state == "missing":
        raise NotFound(f"no outgoing message with key {key!r}")
    if state == "sent":
        return records.result(data)
    mailbox = services.store.get_mailbox(data["mailbox"])
    reason = routing.unusable_reason(mailbox, mailbox["name"], services.settings.instance)
    if reason:
        if state == "busy":
            raise Conflict(f"message {key!r} is being sent by another process")
        return records.result(_record_failure(services, key, data, f"cannot send: {reason}"))
    try:
        gmail = gmail or services.gmail_for(mailbox, mailboxes.own_credential(services, mailbox))
        earlier = _earlier_send(services, gmail, key, state, data)
    except (TokenRevoked, GmailError) as e:
        if isinstance(e, TokenRevoked):
            services.google.mark_revoked(mailbox["name"], services.settings.instance, str(e))
        if state == "busy":
            raise
        return records.result(_record_failure(services, key, data, str(e)))
    if earlier is not None:
        return records.result(earlier)
    try:
        day = allowance.take(mailbox) if allowance else budget.reserve(services.store, mailbox)
    except InvalidInput as e:
        _record_failure(services, key, data, str(e))
        raise
    return _send(services, gmail, key, data, mailbox, day, allowance)
