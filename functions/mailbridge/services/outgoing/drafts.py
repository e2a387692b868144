"""A draft: the message a ticket's answer will be, composed but not yet recorded or sent.

Who it goes to, its subject and References, and the Gmail thread it joins come from the ticket
and its delivered messages; the MIME rules are pure (domain/compose.py), the sending mailbox is
resolved by services/outgoing/overrides.py.
"""

from __future__ import annotations

import dataclasses

from mailbridge.domain import compose as mime
from mailbridge.domain import models, rules, threads, workspace
from mailbridge.errors import InvalidInput
from mailbridge.services.outgoing import overrides
from mailbridge.services.own_addresses import own_addresses
from mailbridge.services.ports import ComposePorts, TicketRepository


def _delivered_messages(store: TicketRepository, ticket_id: str) -> list[dict]:
    rows = []
    for row in store.ticket_messages(ticket_id):
        message = row["message"]
        if message.get("direction") == "out" and row.get("status") != "sent":
            continue  # never delivered: the customer cannot refer to it
        # Customers answer the Message-ID Gmail really sent (it may have replaced ours).
        rows.append(dict(message, _mailbox=row.get("mailbox"), _trusted=trusted(row),
                         message_id=message.get("sent_message_id") or message.get("message_id")))
    return rows


def trusted(row: dict) -> bool:
    """Whether a ticket message may steer a reply (its thread, subject, In-Reply-To, References):
    one we sent, or one Gmail authenticated (the inbound row's `authentication` verdict). A tagged
    or threaded message nobody vouches for joins the ticket but steers nothing
    (docs/reliability.md, "Hostile senders")."""
    message = row.get("message") or {}
    if message.get("direction") == "out":
        return True
    verdict = (row.get("authentication") or message.get("authentication") or {}).get("verdict")
    return verdict == "pass"


def _thread_subject(ticket: dict, mailbox_name: str, thread_id: str | None, messages: list[dict]) -> str | None:
    """The subject of the Gmail thread a reply joins: its first message's (what Gmail compares)."""
    if not thread_id:
        return None
    for message in messages:
        if message.get("_mailbox") == mailbox_name and message.get("gmail_thread_id") == thread_id:
            return message.get("subject") or ticket.get("subject")
    return ticket.get("subject")


def _thread_for(ticket: dict, mailbox_name: str, messages: list[dict], untrusted_threads: set[str]) -> str | None:
    """Gmail threadId only when this mailbox's Gmail holds the customer's thread (never a thread
    only an unauthenticated message brought)."""
    for message in reversed(messages):
        if message.get("_mailbox") == mailbox_name and message.get("gmail_thread_id"):
            return message["gmail_thread_id"]
    prefix = f"{mailbox_name}:"
    for key in ticket.get("thread_keys", []):
        if key.startswith(prefix) and key[len(prefix):] not in untrusted_threads:
            return key[len(prefix):]
    return None


def _untrusted_threads(mailbox_name: str, delivered: list[dict]) -> set[str]:
    """Gmail threads of this mailbox that only untrusted messages of the ticket are in."""
    def threads(trust: bool) -> set[str]:
        return {m["gmail_thread_id"] for m in delivered
                if m["_trusted"] is trust and m.get("_mailbox") == mailbox_name and m.get("gmail_thread_id")}
    return threads(False) - threads(True)


@dataclasses.dataclass
class Draft:
    ticket: dict
    resolution: dict
    mailbox: dict
    out: mime.Outgoing
    thread_id: str | None
    raw: bytes
    kind: str = "reply"


def compose(services: ComposePorts, ticket: dict, text: str, html: str | None = None, attachments=(),
            extra_headers=(), only_to: str | None = None, kind: str = "reply",
            resolution: dict | None = None, in_reply_to_latest: bool = True) -> Draft:
    store = services.store
    if not isinstance(text, str):
        raise InvalidInput("reply text must be a string")
    if not text.strip() and not (html or "").strip():
        raise InvalidInput("reply text is empty")
    resolution = resolution or overrides.resolve_outgoing(services, ticket)
    mailbox = store.get_mailbox(resolution["mailbox"])
    outgoing = models.outgoing_settings(mailbox)
    # an acknowledgement, one per new ticket of a fan-out, takes the minute's cached addresses
    # (reading every mailbox document each time stalled a 1,000-mailbox fan-out; docs/benchmarks.md)
    own = own_addresses(services) if kind == "acknowledgement" else models.own_addresses(store.list_mailboxes())
    if only_to:
        to, cc = [mime.check_address(only_to, "recipient")], []
        if to[0] in own:
            raise InvalidInput("refusing to send to one of our own mailboxes")
    else:
        to, cc = mime.recipients(ticket, own)
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    delivered = _delivered_messages(store, ticket["id"])
    messages = [m for m in delivered if m["_trusted"]]
    in_reply_to, references = mime.reference_chain(messages) if in_reply_to_latest else (None, [])
    thread_id = _thread_for(ticket, mailbox["name"], messages, _untrusted_threads(mailbox["name"], delivered))
    thread_subject = _thread_subject(ticket, mailbox["name"], thread_id, messages)
    if kind == "acknowledgement" and thread_subject is not None and (
            rules.repeatable_subject(thread_subject) != mime.clean_header_text(thread_subject)):
        # an acknowledgement never repeats a baiting subject (rules.repeatable_subject): it leaves
        # the Gmail thread, whose subject it would have to carry, and keeps its neutral one
        thread_id = thread_subject = None
    if ticket.get("merged_from") and thread_subject is not None and (
            ticket.get("number") not in threads.find_tag_numbers(thread_subject, fmt)):
        # after a merge the reply carries the survivor's tag (docs/merging.md): Gmail files a sent
        # message into a thread only with that thread's subject, so it starts its own thread
        thread_id = thread_subject = None
    subject = mime.thread_reply_subject(thread_subject, ticket.get("subject", ""), ticket.get("number"), fmt)
    out = mime.Outgoing(
        from_email=mime.check_address(workspace.reply_from(ticket, mailbox, outgoing.get("send_as"),
                                                           resolution.get("rule", "")), "From address"),
        from_name=mime.check_header_value("display name", outgoing.get("display_name") or ""),
        to=to, cc=cc, subject=subject,
        text=text, html=html, in_reply_to=in_reply_to, references=references,
        message_id=mime.new_message_id(mailbox["address"]),
        attachments=[(str(f), str(t or ""), bytes(d)) for f, t, d in attachments],
        extra_headers=list(extra_headers))
    raw = mime.build_mime(out)
    return Draft(ticket, resolution, mailbox, out, thread_id, raw, kind)


def preview(draft: Draft) -> dict:
    return {
        "ticket": draft.ticket["id"], "mailbox": draft.mailbox["name"], "rule": draft.resolution["rule"],
        "explanation": draft.resolution["explanation"], "skipped": draft.resolution.get("skipped", []),
        "from": draft.out.from_email, "to": draft.out.to, "cc": draft.out.cc, "subject": draft.out.subject,
        "headers": draft.out.headers(), "thread_id": draft.thread_id,
        "size": len(draft.raw), "message_id": draft.out.message_id, "gmail_message_id": None,
        "status": "dry_run",
    }
