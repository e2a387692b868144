"""Ticket events (docs/events.md): what each change to a ticket tells the outside world, as
CloudEvents 1.0 in structured JSON mode. Pure: the writers (services and store adapters) build
the events here and store them in the same commit as their change; the publisher renders them.

A commit stores ONE event document (`batch`) holding the events of its changes, one event per
change: an inbound chunk of 50 messages costs one extra document write, not 50, and marking it
published one more. Each stored event names its message (`message_ref`: the inbound row or the
outbound record, written in the same commit) instead of copying it; `cloudevent` puts the message
JSON in when the event is published or listed.

Per-subject `sequence`: the record the change writes anyway (the ticket, the mailbox, the inbound
row) carries `event_sequence`, incremented in the same commit, so no counter document is hot.
Event ids are made from the change itself, never drawn at random, so a retried commit or a
replay carries the same id and a consumer de-duplicates on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailbridge.domain import tickets as ticket_views

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
CREATED = "ticket.created"
MESSAGE_ADDED = "ticket.message_added"
REPLY_SENT = "ticket.reply_sent"
UPDATED = "ticket.updated"
QUARANTINED = "inbound.quarantined"
DISCONNECTED = "mailbox.disconnected"
TYPES = (CREATED, MESSAGE_ADDED, REPLY_SENT, UPDATED, QUARANTINED, DISCONNECTED)
SEQUENCE_FIELD = "event_sequence"
DEFAULT_RETENTION_DAYS = 30
SUGGESTION_FIELDS = ("email", "suggested_by", "suggested_at")
INBOUND_FIELDS = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at")


def source(project: str, instance: str) -> str:
    """The CloudEvents `source` of every event of one deployment's instance."""
    return f"urn:mailbridge:{project}:{instance}"


def next_sequence(record: dict) -> int:
    """Count one more event on the record the change writes anyway; returns its sequence."""
    record[SEQUENCE_FIELD] = int(record.get(SEQUENCE_FIELD) or 0) + 1
    return record[SEQUENCE_FIELD]


def _event(kind: str, event_id: str, subject: str, sequence: int, time: str, data: dict,
           message_ref: dict | None = None) -> dict:
    event = {"id": event_id, "type": kind, "subject": subject, "sequence": sequence, "time": time, "data": data}
    if message_ref:
        event["message_ref"] = message_ref
    return event


# ------------------------------------------------------------------ the ticket's JSON in events
def ticket_data(ticket: dict) -> dict:
    """The ticket as `tickets show --json` prints it, without its messages (an event carries its
    own message), plus what ticket.updated reports: team, type and suggested participants."""
    view = ticket_views.contract_view(ticket_views.ticket_view(ticket, []))
    view.pop("messages")
    view["team"] = ticket.get("team") or None
    view["type"] = ticket.get("ticket_type") or None
    view["suggested_participants"] = [{f: s.get(f) for f in SUGGESTION_FIELDS}
                                      for s in ticket.get("suggested_participants") or []]
    return view


def inbound_ref(mailbox: str, gmail_id: str) -> dict:
    return {"collection": "inbound", "key": f"{mailbox}~{gmail_id}"}


def ref_path(ref: dict) -> str:
    """A message_ref as a document path, "collection/key"."""
    return f"{ref['collection']}/{ref['key']}"


def outbound_ref(key: str) -> dict:
    return {"collection": "outbound", "key": key}


# ------------------------------------------------------------------ one event per change
def joined(ticket: dict) -> tuple[int, dict]:
    """When a message joins a ticket: count one event on it and take its JSON as the message
    leaves it (a ticket new in this chunk gets its id and number at the commit: `numbered`)."""
    return next_sequence(ticket), ticket_data(ticket)


def numbered(ticket_json: dict, ticket: dict) -> dict:
    return {**ticket_json, "id": str(ticket["id"]), "number": ticket["number"]}


def message_joined(ticket_json: dict, sequence: int, mailbox: str, gmail_id: str, created: bool, time: str) -> dict:
    """ticket.created (the ticket's first message) or ticket.message_added (customer mail joined
    it), from what `joined` took. The id is the inbound row's key: a Gmail message joins once."""
    return _event(CREATED if created else MESSAGE_ADDED, f"{mailbox}~{gmail_id}", str(ticket_json["id"]), sequence,
                  time, {"ticket": ticket_json}, inbound_ref(mailbox, gmail_id))


def reply_sent(ticket: dict, record: dict, time: str) -> dict:
    """ticket.reply_sent: an outbound record (an agent's reply or an acknowledgement) left through
    Gmail; `record` is the record as sent, with Gmail's ids. An outbound record is sent once."""
    sequence = next_sequence(ticket)
    outbound = {"key": record.get("key"), "kind": record.get("kind"), "mailbox": record.get("mailbox"),
                "gmail_message_id": record.get("gmail_message_id"), "gmail_thread_id": record.get("gmail_thread_id"),
                "message_id": record.get("message_id"), "sent_message_id": record.get("sent_message_id"),
                "sent_at": record.get("sent_at")}
    return _event(REPLY_SENT, f"{record['key']}~sent", str(ticket["id"]), sequence, time,
                  {"ticket": ticket_data(ticket), "outbound": outbound}, outbound_ref(record["key"]))


UPDATE_FIELDS = {"status": "status", "team": "team", "ticket_type": "type", "participants": "participants",
                 "suggested_participants": "suggested_participants", "merged_into": "merged_into",
                 "merged_from": "merged_from", "split_into": "split_into"}


def changed_fields(before: dict, after: dict) -> dict:
    """{field as events name it: {"from", "to"}} for the fields ticket.updated reports."""
    changes = {}
    for field, name in UPDATE_FIELDS.items():
        old, new = before.get(field), after.get(field)
        if field == "suggested_participants":
            old = [s.get("email") for s in old or []]
            new = [s.get("email") for s in new or []]
        if (old or None) != (new or None):
            changes[name] = {"from": old, "to": new}
    return changes


def ticket_updated(before: dict, after: dict, time: str, extra: dict | None = None) -> dict | None:
    """ticket.updated for an agent's change (status, team, type, participants), or None when it
    changes none of them. `after` is the ticket as the change leaves it; its sequence is counted
    here, so the id (ticket and sequence) names this change and no other."""
    changes = changed_fields(before, after)
    if not changes:
        return None
    sequence = next_sequence(after)
    return _event(UPDATED, f"{after['id']}~updated~{sequence}", str(after["id"]), sequence, time,
                  {"ticket": ticket_data(after), "changes": changes, **(extra or {})})


def ticket_split_off(ticket: dict, first_ref: dict, time: str) -> dict:
    """ticket.created for a ticket split off another (domain/merging.py): it carries its first
    message (`first_ref`, the moved row); its id names the new ticket, never that message, whose
    Gmail id may have opened the original ticket's own ticket.created."""
    sequence = next_sequence(ticket)
    return _event(CREATED, f"{ticket['id']}~split", str(ticket["id"]), sequence, time,
                  {"ticket": ticket_data(ticket), "split_from": ticket.get("split_from")}, first_ref)


def inbound_quarantined(before: dict, after: dict, mailbox: str, gmail_id: str, time: str) -> dict | None:
    """inbound.quarantined when an inbound row becomes quarantined (`after` is the row as
    written; its sequence is counted here); None for any other change. Subject: the message."""
    if after.get("outcome") != "quarantined" or before.get("outcome") == "quarantined":
        return None
    sequence = next_sequence(after)
    data = {"mailbox": mailbox, **{field: after.get(field) for field in INBOUND_FIELDS}}
    return _event(QUARANTINED, f"{mailbox}~{gmail_id}~quarantined~{sequence}", f"inbound/{mailbox}~{gmail_id}",
                  sequence, time, {"inbound": data})


def mailbox_disconnected(mailbox: dict, before: list[dict], after: list[dict], time: str) -> list[dict]:
    """mailbox.disconnected for each credential set that was connected and is no longer (its token
    was refused, an admin disconnected or removed it). `mailbox` is the document as the change
    leaves it; its sequence is counted here. Subject: the mailbox."""
    now_connected = {c["instance"]: c for c in after if c.get("status") == "connected"}
    events = []
    for cred in before:
        if cred.get("status") != "connected" or cred["instance"] in now_connected:
            continue
        current = next((c for c in after if c["instance"] == cred["instance"]), None)
        sequence = next_sequence(mailbox)
        data = {"name": mailbox["name"], "address": mailbox.get("address"), "instance": cred["instance"],
                "status": (current or {}).get("status", "removed"),
                "reason": (current or {}).get("last_error") or ("credential set removed" if current is None
                                                                 else "disconnected by an admin"),
                "connected_email": cred.get("connected_email")}
        events.append(_event(DISCONNECTED, f"{mailbox['name']}~{cred['instance']}~disconnected~{sequence}",
                             f"mailboxes/{mailbox['name']}", sequence, time, {"mailbox": data}))
    return events


# ------------------------------------------------------------------ the stored document
def expires_at(created: str, retention_days: int) -> datetime:
    """When the event log's TTL policy may delete a document (terraform/firestore.tf)."""
    moment = datetime.fromisoformat(created)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment + timedelta(days=max(int(retention_days or DEFAULT_RETENTION_DAYS), 1))


def batch(events: list[dict], mailbox: str, created: str, retention_days: int) -> tuple[str, dict] | None:
    """The one event document of a commit: (document id, fields), None without events. Its id is
    its first event's, so a commit that is retried writes the same document or fails on it.
    `mailbox`: whose events these are (a ticket's arrival mailbox), for `mailbox show`."""
    if not events:
        return None
    return events[0]["id"], {
        "events": events, "mailbox": mailbox, "subjects": sorted({e["subject"] for e in events}),
        "count": len(events), "created_at": created, "published": False, "published_at": None,
        "expires_at": expires_at(created, retention_days),
    }


def fresh_only(document: dict) -> bool:
    """Whether every event of a commit's document is about a ticket that commit created: nothing
    older can wait for those tickets, so the document may be published without looking for
    waiting ones first (services/events.publish_fresh; docs/events.md)."""
    created = {e["subject"] for e in document["events"] if e["type"] == CREATED and e["sequence"] == 1}
    return all(e["subject"] in created for e in document["events"])


def retention_days(settings: dict) -> int:
    return int(settings.get("events.retention_days") or DEFAULT_RETENTION_DAYS)


# ------------------------------------------------------------------ what is published
def message_json(row: dict | None) -> dict | None:
    """A message as `tickets show --json` prints it, from its inbound row or outbound record."""
    if not row or not row.get("message"):
        return None
    return ticket_views.contract_message(ticket_views.message_view(row))


def cloudevent(event: dict, event_source: str, message_row: dict | None = None) -> dict:
    """The CloudEvent (structured JSON mode) of a stored event; `message_row`: the row its
    message_ref names, whose message becomes `data.message`."""
    data = dict(event["data"])
    if "message_ref" in event:
        data["message"] = message_json(message_row)
    return {"specversion": SPECVERSION, "id": event["id"], "source": event_source, "type": event["type"],
            "subject": event["subject"], "time": event["time"], "datacontenttype": CONTENT_TYPE,
            "sequence": event["sequence"], "data": data}


def in_order(events: list[dict]) -> list[dict]:
    """Each subject's events by sequence, subjects in the order their first event came (a publish
    request keeps this order per ordering key)."""
    first = {}
    for index, event in enumerate(events):
        first.setdefault(event["subject"], index)
    return sorted(events, key=lambda e: (first[e["subject"]], e["sequence"]))
