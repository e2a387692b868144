"""A person's data (docs/privacy.md): an access request answered by `export`, an erasure request
by `erase`; and a mailbox's purge. What names a person is found by a scan of the tickets, the
inbound log, the outbound records and the event log (services/repositories.PrivacyRepository)."""

from __future__ import annotations

import hashlib

from mailbridge.domain import copies, models, privacy
from mailbridge.errors import GmailError, NotFound, TokenRevoked
from mailbridge.logs import log_event
from mailbridge.services import audit, retention, stored_bodies
from mailbridge.services.ports import PrivacyPorts

GMAIL_OUT_OF_REACH = ("mail still in the Gmail mailboxes is out of mailbridge's reach: delete it there, or run "
                      "again with --gmail-trash to move this person's messages to Trash (Gmail empties it after 30 days)")


def person(services: PrivacyPorts, address: str) -> tuple[str, str]:
    """(the address, lower case, its keyed hash): InvalidInput if it is not an address."""
    address = privacy.normalize(address)
    return address, privacy.person_hash(privacy.hash_key(services.settings.signing_key), address)


def export(services: PrivacyPorts, address: str, *, actor: str, source: str) -> dict:
    """Every ticket, message, row, record and event document that names the address, and the
    blobs (attachments, stored bodies, raw copies) of its messages: {"files": {sha256: meta}}."""
    address, hashed = person(services, address)
    documents = services.store.documents_naming(address)
    found: dict[str, list] = {collection: [] for collection in privacy.SCANNED_COLLECTIONS}
    files: dict[str, dict] = {}
    for d in documents:
        data = d["data"]
        if d["collection"] in ("inbound", "outbound") and data.get("message"):
            data = dict(data, message=stored_bodies.load(services, data["message"]))
            for attachment in data["message"].get("attachments") or []:
                if attachment.get("storage_key"):
                    files[attachment["sha256"]] = {"filename": attachment.get("filename"),
                                                   "content_type": attachment.get("content_type")}
            if data.get("raw_sha256"):
                files[data["raw_sha256"]] = {"filename": "message.eml", "content_type": "message/rfc822"}
        found[d["collection"]].append({"id": d["id"], **data})
    found.update(workspace_state(services, address, documents))
    counts = {collection: len(rows) for collection, rows in found.items()}
    audit.record(services, "privacy.export", hashed, actor=actor, source=source, details=counts)
    return {"person": hashed, "address": address, "exported_at": models.now_iso(), "counts": counts,
            **found, "files": files}


def workspace_state(services: PrivacyPorts, address: str, documents: list[dict]) -> dict:
    """What the Workspace delivery code keeps of the person outside the scanned collections: the
    entries of the mailboxes' Spam lists that name them (`spam_lists`) and the copy claims of their
    messages (`message_copies`: copy key → ticket id, domain/copies.py)."""
    keys = privacy.copy_keys_of([d["data"] for d in documents if d["collection"] == "inbound"], address)
    claims = services.store.message_copies(sorted(keys)) if keys else {}
    return {"spam_lists": privacy.spam_entries_naming(services.store.spam_lists_naming(address), address),
            "message_copies": [{"id": key, "ticket_id": ticket_id} for key, ticket_id in sorted(claims.items())]}


def blob(services: PrivacyPorts, sha256: str) -> bytes | None:
    """An exported file's bytes (None if no longer stored)."""
    try:
        return services.blobs.get(sha256)
    except Exception:  # noqa: BLE001 - a missing blob is reported, not fatal to the export
        return None


class Erasure:
    """The plan of one erasure over the documents that name the person."""

    def __init__(self, address: str, hashed: str, documents: list[dict], raw_copies: list[dict] = ()):
        """`raw_copies`: quarantined rows whose raw message in Cloud Storage names the person."""
        self.address, self.hashed, self.now = address, hashed, models.now_iso()
        self.documents = documents + [d for d in raw_copies if d not in documents]
        rows = [d["data"] for d in documents if d["collection"] in ("inbound", "outbound")]
        self.needles = [address, *privacy.display_names(rows, address)]
        self.theirs = [d for d in self.documents if d["collection"] == "inbound" and (
            privacy.sender_of(d["data"]) == address or d in raw_copies)]
        self.removed_tickets: set[str] = set()
        self.puts: list[dict] = []
        self.deletes: list[dict] = []
        self.blobs: set[str] = set()

    def gmail_messages(self) -> list[tuple[str, str]]:
        """(mailbox, Gmail id) of each message the person sent."""
        return [(d["data"].get("mailbox"), d["data"].get("gmail_message_id")) for d in self.theirs
                if d["data"].get("gmail_message_id")]

    def ticket_ids(self) -> set[str]:
        """The tickets the plan changes: those the person wrote to or that name them."""
        return {str(d["data"]["ticket_id"]) for d in self.theirs if d["data"].get("ticket_id")} | {
            str(d["data"].get("id")) for d in self.documents if d["collection"] == "tickets"}

    def plan(self, tickets: dict[str, list[dict]]) -> None:
        """`tickets`: each of ticket_ids() → its documents (PrivacyRepository.ticket_documents)."""
        their_ids = {d["id"] for d in self.theirs}
        for d in self.theirs:
            self.blobs |= privacy.blob_refs(d["data"])
            self.puts.append({**d, "data": privacy.tombstone_row(d["data"], self.hashed, self.now)})
        for ticket_id, documents in tickets.items():
            self._plan_ticket(ticket_id, documents, their_ids)
        handled = {(d["collection"], d["id"]) for d in self.puts + self.deletes}
        for d in self.documents:
            if (d["collection"], d["id"]) not in handled:
                self._redact(d)

    def _plan_ticket(self, ticket_id: str, documents: list[dict], their_ids: set[str]) -> None:
        """A ticket whose every incoming message was theirs goes whole; another keeps the others'
        messages and loses the person from its participants."""
        ticket = next((d for d in documents if d["collection"] == "tickets"), None)
        others = [d for d in documents if d["collection"] == "inbound" and d["id"] not in their_ids
                  and d["data"].get("message")]
        if ticket is None:
            return
        if others:
            kept = [d for d in documents if d["collection"] == "inbound" and d["id"] not in their_ids]
            data = privacy.redact_ticket(ticket["data"], self.address, self.needles)
            data["message_count"] = len(kept) + len([d for d in documents if d["collection"] == "outbound"])
            self.puts.append({**ticket, "data": data})
            return
        self.removed_tickets.add(ticket_id)
        for d in documents:
            self.blobs |= privacy.blob_refs(d["data"])
        puts, deletes = retention.without_tickets([d for d in documents if d["id"] not in their_ids
                                                   or d["collection"] != "inbound"], {ticket_id})
        self.deletes.extend(deletes)
        self.puts.extend({**d, "data": privacy.redact(d["data"], self.needles)} for d in puts)

    def _redact(self, d: dict) -> None:
        data = d["data"]
        if d["collection"] == "ack_limits":
            self.deletes.append(d)  # a counter of acknowledgements to them: it only limits mail to them
            return
        if d["collection"] == "outbound" and data.get("status") != "sent":
            self.blobs |= privacy.blob_refs(data)
            self.deletes.append(d)  # never sent to an erased person
            return
        if d["collection"] == "outbound" and data.get("raw_sha256"):
            self.blobs.add(data["raw_sha256"])
            data = dict(data, raw_sha256=None)
        if d["collection"] == "tickets":
            data = privacy.redact_ticket(data, self.address, self.needles)
        self.puts.append({**d, "data": privacy.redact(data, self.needles)})


def erase(services: PrivacyPorts, address: str, *, actor: str, source: str, gmail_trash: bool = False) -> dict:
    """Remove the person's messages and attachments, redact their address and name everywhere
    else, keep a tombstone row per removed message so Gmail's copy is not ingested again, and
    record the erasure under the person's keyed hash. With `gmail_trash`, their messages are moved
    to Trash in each mailbox (messages.trash, 5 units each)."""
    address, hashed = person(services, address)
    plan = Erasure(address, hashed, services.store.documents_naming(address), raw_copies_naming(services, address))
    plan.plan({ticket_id: services.store.ticket_documents(ticket_id) for ticket_id in plan.ticket_ids()})
    deletes = list({(d["collection"], d["id"]): d for d in plan.deletes}.values())
    deleted = {(d["collection"], d["id"]) for d in deletes}
    puts = {(d["collection"], d["id"]): d for d in plan.puts if (d["collection"], d["id"]) not in deleted}
    plan.blobs |= redact_stored_parts(services, list(puts.values()), plan.needles)
    deletes += forget_copies(services, plan, list(puts.values()))
    services.store.write_documents(list(puts.values()), deletes)
    spam_removed = sum(services.store.forget_spam(s["mailbox"], s["instance"], [e["gmail_message_id"] for e in s["entries"]])
                       for s in privacy.spam_entries_naming(services.store.spam_lists_naming(address), address))
    blobs = retention.delete_blobs(services, plan.blobs)
    trashed = trash_in_gmail(services, plan.gmail_messages()) if gmail_trash else None
    result = {"person": hashed, "messages_removed": len(plan.theirs), "tickets_removed": len(plan.removed_tickets),
              "documents_redacted": len(puts) - len(plan.theirs), "documents_deleted": len(deletes),
              "blobs_deleted": blobs, "spam_entries_removed": spam_removed, "gmail_trashed": trashed,
              "gmail_note": None if gmail_trash else GMAIL_OUT_OF_REACH}
    services.store.put_erasure(hashed, {"erased_at": plan.now, **{k: v for k, v in result.items() if k != "gmail_note"}})
    audit.record(services, "privacy.erase", hashed, actor=actor, source=source,
                 details={k: v for k, v in result.items() if k not in ("person", "gmail_note")})
    return result


def forget_copies(services: PrivacyPorts, plan: Erasure, puts: list[dict]) -> list[dict]:
    """The person's copy keys leave the tickets kept (in `puts`); their claims are to be deleted."""
    keys = privacy.copy_keys_of([d["data"] for d in plan.documents if d["collection"] == "inbound"], plan.address)
    if not keys:
        return []
    for d in puts:
        if d["collection"] == "tickets" and keys & set(d["data"].get(copies.FIELD) or []):
            d["data"] = dict(d["data"], **{copies.FIELD: [k for k in d["data"][copies.FIELD] if k not in keys]})
    return [{"collection": "message_copies", "id": key, "data": {}} for key in services.store.message_copies(sorted(keys))]


def raw_copies_naming(services: PrivacyPorts, address: str) -> list[dict]:
    """Quarantined rows whose raw copy in Cloud Storage holds the address (their rows do not)."""
    found = []
    for d in services.store.raw_copies():
        data = blob(services, d["data"]["raw_sha256"])
        if data is not None and address.encode() in data.lower():
            found.append(d)
    return found


def redact_stored_parts(services: PrivacyPorts, puts: list[dict], needles: list[str]) -> set[str]:
    """Body parts kept in Cloud Storage (services/stored_bodies.py) of the rows kept: a part that
    names the person is stored again redacted and the row points to it; returns the old blobs."""
    replaced = set()
    for d in puts:
        message = d["data"].get("message") or {}
        for field, sha256 in list((message.get("stored_parts") or {}).items()):
            data = blob(services, sha256)
            text = data.decode("utf-8", "surrogatepass") if data is not None else ""
            if not any(n.lower() in text.lower() for n in needles):
                continue
            redacted = privacy.redact(text, needles).encode("utf-8", "surrogatepass")
            new_sha = hashlib.sha256(redacted).hexdigest()
            services.blobs.put(new_sha, redacted, "text/plain; charset=utf-8")
            message["stored_parts"][field] = new_sha
            replaced.add(sha256)
    return replaced


def trash_in_gmail(services: PrivacyPorts, messages: list[tuple[str, str]]) -> dict:
    """Move each (mailbox, Gmail id) to Trash with this instance's credential; a mailbox that
    cannot be reached is counted, never fatal (the erasure in mailbridge stands)."""
    counts = {"trashed": 0, "gone": 0, "failed": 0}
    by_mailbox: dict[str, list[str]] = {}
    for mailbox, gmail_id in messages:
        by_mailbox.setdefault(mailbox, []).append(gmail_id)
    for name, ids in by_mailbox.items():
        try:
            mailbox = services.store.get_mailbox(name)
            gmail = services.gmail_for(mailbox, models.require_credential(mailbox, services.settings.instance))
            for gmail_id in ids:
                counts["trashed" if gmail.trash(gmail_id) else "gone"] += 1
        except (NotFound, GmailError, TokenRevoked) as e:
            log_event("WARNING", "erasure: Gmail messages not trashed", mailbox=name, error=e.__class__.__name__)
            counts["failed"] += len(ids)
    return counts


def purge_mailbox(services: PrivacyPorts, name: str) -> dict:
    """Delete everything a (removed) mailbox left: its tickets, inbound log, outbound records,
    event documents and the blobs only they used."""
    documents = services.store.mailbox_documents(name)
    ticket_ids = {str(d["data"].get("id")) for d in documents if d["collection"] == "tickets"}
    for ticket_id in ticket_ids:  # a ticket's rows and records in other mailboxes go with it
        documents += [d for d in services.store.ticket_documents(ticket_id) if d not in documents]
    puts, deletes = retention.without_tickets(documents, ticket_ids)
    deletes += [d for d in documents if d["collection"] == "events" and d not in deletes
                and d["data"].get("mailbox") == name]
    puts = [d for d in puts if d not in deletes]
    services.store.write_documents(puts, deletes)
    shas = set().union(*(privacy.blob_refs(d["data"]) for d in documents)) if documents else set()
    counts: dict[str, int] = {}
    for d in deletes:
        counts[d["collection"]] = counts.get(d["collection"], 0) + 1
    return {"mailbox": name, "deleted": counts, "blobs_deleted": retention.delete_blobs(services, shas)}
