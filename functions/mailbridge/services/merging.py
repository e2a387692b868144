"""Merge and split tickets (CLI `tickets merge|split`, the admin ticket page, the API;
docs/merging.md). Each is one store transaction (`move_messages`) that reads both tickets and the
source's rows and writes the tickets, the moved rows and the change's events together, so a sync
committing to either ticket at the same time makes one side retry: no message lost or counted
twice, and a repeated or concurrent merge or split makes no second change.
"""

from __future__ import annotations

from mailbridge.domain import events, merging, models
from mailbridge.errors import Conflict
from mailbridge.services import events as ticket_events
from mailbridge.services.ports import TicketsPorts


def _ref(path: str) -> dict:
    collection, key = path.split("/", 1)
    return {"collection": collection, "key": key}


def _summary(kind: str, changed: bool, source: dict, target: dict, moved: list[str]) -> dict:
    return {"action": kind, "changed": changed, "ticket": str(source["id"]), "number": source.get("number"),
            "into": str(target["id"]), "into_number": target.get("number"), "moved_messages": moved}


def merge(services: TicketsPorts, source_id: str, into_id: str) -> dict:
    """Merge ticket `source_id` into `into_id`: its messages, participants and attachments move,
    it stays closed with `merged_into`; mail that threads to it joins the survivor from now on.
    Merging again (or concurrently) changes nothing and answers changed: false."""
    store = services.store
    source_id = str(store.get_ticket(source_id)["id"])
    into_id = str(store.get_ticket(into_id)["id"])
    retention = events.retention_days(store.settings())

    def decide(source: dict, survivor: dict | None, rows: list[dict]):
        if not merging.check_merge(source, survivor):
            return _summary("merge", False, source, survivor, []), None, None, [], None
        time = models.now_iso()
        changes, after = merging.merged(source, survivor, rows, time)
        moved = [merging.row_message_key(row) for row in merging.in_order(rows)]
        found = merging.merge_events(source, changes, survivor, after, moved, time)
        document = events.batch(found, survivor.get("mailbox") or "", time, retention)
        return (_summary("merge", True, source, survivor, moved), changes, after, [row["_path"] for row in rows],
                document)

    result = store.move_messages(source_id, into_id, decide)
    if result["changed"]:
        ticket_events.after_commit(services, store.get_ticket(into_id).get("mailbox"))
    return result


def split(services: TicketsPorts, ticket_id: str, message: str) -> dict:
    """A new ticket from `message` (its id in `tickets show --json`, Gmail id or Message-ID) and
    the later messages of its Gmail thread. Splitting the same message again answers the ticket
    it went to, changed: false."""
    store = services.store
    ticket = store.get_ticket(ticket_id)
    number = store.reserve_ticket_numbers(1)[0]
    own = models.own_addresses(store.list_mailboxes())
    retention = events.retention_days(store.settings())

    def decide(original: dict, _absent: dict | None, rows: list[dict]):
        moving = merging.split_rows(original, merging.in_order(rows), message)
        time = models.now_iso()
        changes, new = merging.split(original, moving, number, own, time)
        moved = [merging.row_message_key(row) for row in moving]
        found = merging.split_events(original, changes, new, _ref(moving[0]["_path"]), moved, time)
        document = events.batch(found, original.get("mailbox") or "", time, retention)
        return (_summary("split", True, original, new, moved), changes, new, [row["_path"] for row in moving],
                document)

    try:
        result = store.move_messages(str(ticket["id"]), str(number), decide)
    except Conflict:
        done = _split_already(services, ticket["id"], message)
        if done is None:
            raise
        return done
    ticket_events.after_commit(services, ticket.get("mailbox"))
    return result


def _split_already(services: TicketsPorts, ticket_id: str, message: str) -> dict | None:
    """The answer of a split that another call (or an earlier one) made already."""
    store = services.store
    ticket = store.get_ticket(ticket_id)
    for new_id in ticket.get("split_into") or []:
        rows = store.ticket_messages(new_id)
        if any(merging.names_message(row, message) for row in rows):
            return _summary("split", False, ticket, store.get_ticket(new_id),
                            [merging.row_message_key(row) for row in rows])
    return None


def survivor(services: TicketsPorts, ticket_id: str) -> dict:
    """The ticket that holds a (possibly merged) ticket's mail now."""
    return services.store.get_ticket(merging.survivor_of(ticket_id, services.store.find_ticket))
