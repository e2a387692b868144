"""The store contract: every case runs on the in-memory store (tests/memory/store) and on the
Firestore adapter over the emulator, so the fake the service tests rely on cannot drift from
Firestore (docs/architecture.md, "Tests by tier"). One section per repository Protocol of
services/ports.py. `-k memory` runs the in-memory half alone, without emulators.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore

from mailbridge.adapters.firestore.store import Store
from mailbridge.domain import events, models
from mailbridge.errors import AuthError, Conflict, DocumentTooLarge, NotFound, StoreUnavailable, WriteConflict
from tests.conftest import TEST_PROJECT
from tests.memory.store import MemoryStore
from tests.memory.store.base import MAX_DOCUMENT_BYTES, MAX_VALUE_BYTES, document_size


@pytest.fixture(params=["memory", "firestore"])
def store(request, monkeypatch):
    if request.param == "memory":
        return MemoryStore()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", request.getfixturevalue("firestore"))  # emptied first
    return Store(firestore.Client(project=TEST_PROJECT))


def ticket(number: int, mailbox: str = "help", status: str = "open", message_ids=(), thread_keys=(),
           **fields) -> dict:
    return {"id": str(number), "number": number, "mailbox": mailbox, "status": status, "subject": f"ticket {number}",
            "message_ids": list(message_ids), "thread_keys": list(thread_keys), "updated_at": "2026-01-01T00:00:00Z",
            **fields}


def inbound_row(gmail_id: str, mailbox: str = "help", ticket_id: str | None = None, processed_at: str = "2026-01-01T00:00:00Z",
                **fields) -> dict:
    return {"mailbox": mailbox, "gmail_message_id": gmail_id, "message_id": f"<{gmail_id}@x.example>",
            "outcome": "created", "reason": "", "ticket_id": ticket_id, "attempts": 1, "processed_at": processed_at,
            **fields}


def create_tickets(store, *tickets: dict) -> None:
    store.commit_inbound_chunk("help", [], [(t["id"], t, None) for t in tickets])


def mailbox_with_credential(store, name: str = "help", instance: str = "production") -> dict:
    mailbox = models.new_mailbox(name, f"{name}@acme.example")
    mailbox["credentials"] = [{"instance": instance, "status": "connected", "client_id": "c"}]
    store.add_mailbox(mailbox)
    return mailbox


# --------------------------------------------------------------------------- settings


def test_settings_are_the_defaults_until_one_is_set_and_setting_one_keeps_the_others(store):
    assert store.settings() == models.DEFAULT_SETTINGS
    key, other = list(models.DEFAULT_SETTINGS)[:2]
    store.set_setting(key, "first")
    store.set_setting(other, "second")
    assert store.settings() == {**models.DEFAULT_SETTINGS, key: "first", other: "second"}


# --------------------------------------------------------------------------- mailboxes


def test_a_mailbox_is_added_once_read_listed_by_name_and_found_by_address(store):
    store.add_mailbox(models.new_mailbox("zeta", "zeta@acme.example"))
    store.add_mailbox(models.new_mailbox("alpha", "alpha@acme.example"))
    with pytest.raises(Conflict):
        store.add_mailbox(models.new_mailbox("alpha", "other@acme.example"))
    assert store.get_mailbox("alpha")["address"] == "alpha@acme.example"
    assert [m["name"] for m in store.list_mailboxes()] == ["alpha", "zeta"]
    assert store.find_mailbox_by_address("ZETA@acme.example")["name"] == "zeta"
    assert store.find_mailbox_by_address("nobody@acme.example") is None
    with pytest.raises(NotFound):
        store.get_mailbox("missing")


def test_update_mailbox_takes_dotted_paths_and_replaces_a_whole_map(store):
    mailbox = mailbox_with_credential(store)
    store.update_mailbox("help", {"outgoing.signature": "-- Help"})
    outgoing = store.get_mailbox("help")["outgoing"]
    assert outgoing == {**mailbox["outgoing"], "signature": "-- Help"}
    store.update_mailbox("help", {"incoming": {"only": "this"}})
    assert store.get_mailbox("help")["incoming"] == {"only": "this"}
    with pytest.raises(NotFound):
        store.update_mailbox("missing", {"type": "google"})


def test_credential_sets_are_added_once_changed_and_removed_per_instance(store):
    mailbox_with_credential(store)
    with pytest.raises(Conflict):
        store.add_credential("help", {"instance": "production"})
    store.add_credential("help", {"instance": "staging", "status": "not_connected"})
    assert store.update_credential("help", "staging", {"status": "connected"}) == {
        "instance": "staging", "status": "connected"}
    assert store.remove_credential("help", "production")["client_id"] == "c"
    assert store.get_mailbox("help")["credentials"] == [{"instance": "staging", "status": "connected"}]
    for change in (lambda: store.update_credential("help", "production", {}),
                   lambda: store.remove_credential("help", "production"),
                   lambda: store.add_credential("missing", {"instance": "production"})):
        with pytest.raises(NotFound):
            change()


def test_deleting_a_mailbox_deletes_its_sync_state_and_no_other_mailboxs(store):
    mailbox_with_credential(store, "help")
    mailbox_with_credential(store, "helpdesk")
    for name in ("help", "helpdesk"):
        store.reset_sync(name, "production", "2026-01-01T00:00:00Z", history_id=7)
    store.reset_sync("help", "staging", "2026-01-01T00:00:00Z")
    store.delete_mailbox("help")
    assert [m["name"] for m in store.list_mailboxes()] == ["helpdesk"]
    assert store.get_sync("help", "production") == {} and store.get_sync("help", "staging") == {}
    assert store.get_sync("helpdesk", "production")["history_id"] == "7"
    with pytest.raises(NotFound):
        store.delete_mailbox("help")


# --------------------------------------------------------------------------- sync state and leases


def test_a_mailbox_is_read_with_its_sync_state_in_one_call(store):
    mailbox_with_credential(store)
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    mailbox, state = store.mailbox_with_sync("help", "production")
    assert mailbox["name"] == "help" and state["history_id"] == "7"
    assert store.mailbox_with_sync("help", "staging")[1] == {}  # no sync state for that instance yet
    with pytest.raises(NotFound):
        store.mailbox_with_sync("nobody", "production")


def test_a_taken_lease_answers_the_sync_state_it_was_taken_on(store):
    mailbox_with_credential(store)
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=7)
    state = store.acquire_lease("help", "production", "run-a", 300)
    stored = store.get_sync("help", "production")
    assert state["history_id"] == "7" and state["lease_owner"] == "run-a"
    assert {k: state[k] for k in ("history_id", "lease_owner", "lease_expires_at", "lease_since")} == {
        k: stored[k] for k in ("history_id", "lease_owner", "lease_expires_at", "lease_since")}
    assert store.acquire_lease("help", "production", "run-b", 300) is None


def test_sync_state_is_reset_whole_and_merged_map_by_map(store):
    assert store.get_sync("help", "production") == {}
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z", history_id=42)
    store.update_sync("help", "production", {"status": {"outcome": "ok", "counts": {"created": 1}}})
    store.update_sync("help", "production", {"status": {"counts": {"failed": 2}}, "last_error": "x"})
    state = store.get_sync("help", "production")
    assert state["history_id"] == "42" and state["last_error"] == "x"
    assert state["status"] == {"outcome": "ok", "counts": {"created": 1, "failed": 2}}  # set(merge=True) merges maps
    store.reset_sync("help", "production", "2026-02-01T00:00:00Z")
    assert store.get_sync("help", "production") == {
        "history_id": None, "connected_at": "2026-02-01T00:00:00Z", "last_success_at": None, "last_error": None,
        "lease_owner": None, "lease_expires_at": 0}


def test_a_live_lease_has_one_holder_who_renews_and_releases_it(store):
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z")
    assert store.acquire_lease("help", "production", "run-a", 300)
    assert not store.acquire_lease("help", "production", "run-b", 300)
    assert store.renew_lease("help", "production", "run-a", 300)
    assert not store.renew_lease("help", "production", "run-b", 300)
    store.release_lease("help", "production", "run-b", {"history_id": "99"})  # not the holder: nothing
    assert store.get_sync("help", "production")["lease_owner"] == "run-a"
    assert store.get_sync("help", "production")["history_id"] is None
    store.release_lease("help", "production", "run-a", {"history_id": "100"})
    state = store.get_sync("help", "production")
    assert (state["lease_owner"], state["lease_expires_at"], state["lease_since"], state["history_id"]) == (
        None, 0, None, "100")
    assert store.acquire_lease("help", "production", "run-b", 300)
    assert "abandoned_runs" not in store.get_sync("help", "production")


def test_an_expired_lease_is_taken_over_and_its_old_holder_writes_nothing(store):
    store.reset_sync("help", "production", "2026-01-01T00:00:00Z")
    assert store.acquire_lease("help", "production", "dead", -1)  # already expired: its holder died
    assert store.acquire_lease("help", "production", "next", 300)
    assert store.get_sync("help", "production")["abandoned_runs"] == 1
    assert not store.renew_lease("help", "production", "dead", 300)
    store.release_lease("help", "production", "dead", {"history_id": "1"})
    state = store.get_sync("help", "production")
    assert (state["lease_owner"], state["history_id"]) == ("next", None)


def test_a_lease_on_a_mailbox_without_sync_state_is_taken_and_released(store):
    assert store.acquire_lease("new", "production", "run", 300)
    store.release_lease("new", "production", "run")
    assert store.get_sync("new", "production")["lease_owner"] is None


# --------------------------------------------------------------------------- links: single use


def test_an_oauth_state_is_consumed_once_and_leaves_only_a_marker(store):
    store.put_oauth_state("s" * 40, {"mailbox": "help", "code_verifier": "v" * 50}, 600)
    assert store.peek_oauth_state("s" * 40)["code_verifier"] == "v" * 50
    data = store.consume_oauth_state("s" * 40)
    assert (data["mailbox"], data["code_verifier"], data["used"]) == ("help", "v" * 50, False)
    assert set(store.peek_oauth_state("s" * 40)) == {"used", "expires_at"}
    with pytest.raises(AuthError, match="already used"):
        store.consume_oauth_state("s" * 40)


@pytest.mark.parametrize("state", ["", "a/b", "x" * 201, "never-stored"])
def test_an_unknown_or_malformed_oauth_state_is_refused(store, state):
    with pytest.raises(AuthError, match="unknown sign-in state"):
        store.consume_oauth_state(state)
    assert store.peek_oauth_state(state) is None


def test_an_expired_oauth_state_is_refused_and_left_for_its_ttl(store):
    store.put_oauth_state("e" * 40, {"mailbox": "help", "code_verifier": "v" * 50}, -10)
    with pytest.raises(AuthError, match="expired"):
        store.consume_oauth_state("e" * 40)
    assert store.peek_oauth_state("e" * 40)["mailbox"] == "help"


def test_a_nonce_is_used_once(store):
    store.use_nonce("n" * 20, 1_800_000_000)
    with pytest.raises(AuthError, match="already used"):
        store.use_nonce("n" * 20, 1_800_000_000)
    store.use_nonce("m" * 20, 1_800_000_000)


# --------------------------------------------------------------------------- tickets


def test_ticket_numbers_are_reserved_in_consecutive_blocks(store):
    assert store.reserve_ticket_numbers(0) == []
    assert store.reserve_ticket_numbers(3) == [1, 2, 3]
    assert store.reserve_ticket_numbers(2) == [4, 5]
    assert store.reserve_ticket_numbers(1) == [6]


def test_tickets_are_read_by_number_and_listed_newest_first_with_filters_and_a_cursor(store):
    create_tickets(store, ticket(1), ticket(2, status="closed"), ticket(3, mailbox="sales"), ticket(10))
    assert store.find_ticket("#10")["number"] == 10 and store.get_ticket("2")["status"] == "closed"
    assert store.find_ticket("404") is None
    with pytest.raises(NotFound):
        store.get_ticket("#404")
    numbers = lambda **kw: [t["number"] for t in store.list_tickets(**kw)]  # noqa: E731
    assert numbers() == [10, 3, 2, 1]
    assert numbers(limit=0) == [10, 3, 2, 1]
    assert numbers(mailbox="help") == [10, 2, 1]
    assert numbers(mailbox="help", status="open") == [10, 1]
    assert numbers(limit=2) == [10, 3]
    assert numbers(before=3, limit=2) == [2, 1]


def test_a_ticket_is_updated_in_place_and_a_missing_one_is_not_created(store):
    create_tickets(store, ticket(1))
    store.update_ticket("1", {"status": "closed"})
    assert store.get_ticket("1") == {**ticket(1), "status": "closed"}
    with pytest.raises(gexc.NotFound):  # Firestore's own: the adapter lets it through
        store.update_ticket("2", {"status": "closed"})
    assert store.find_ticket("2") is None


def test_message_ids_and_threads_find_the_oldest_ticket_by_number_not_document_order(store):
    # issue 28, item 5: document ids sort as strings ("10" < "9"); the oldest by number wins,
    # unless the sender takes part in another holder
    create_tickets(store, ticket(9, message_ids=["<a@x>", "<shared@x>"], thread_keys=["help:t9", "help:both"]),
                   ticket(10, message_ids=["<b@x>", "<shared@x>"], thread_keys=["help:t10", "help:both"],
                          participants=["late@x.example"]))
    assert store.tickets_by_message_ids(["<a@x>", "<b@x>", "<shared@x>", "<none@x>", ""]) == {
        "<a@x>": "9", "<b@x>": "10", "<shared@x>": "9"}
    assert store.tickets_by_message_ids(["<shared@x>"], "LATE@x.example") == {"<shared@x>": "10"}
    assert store.tickets_by_thread_keys(["help:t9", "help:both", "help:none"]) == {"help:t9": "9", "help:both": "9"}
    assert store.find_ticket_by_thread("help:both") == "9"
    assert store.find_ticket_by_thread("help:none") is None
    assert store.tickets_by_message_ids([]) == {} and store.tickets_by_thread_keys([]) == {}


def test_more_than_thirty_message_ids_are_looked_up_in_chunks(store):
    create_tickets(store, ticket(1, message_ids=[f"<m{i}@x>" for i in range(45)]))
    assert store.tickets_by_message_ids([f"<m{i}@x>" for i in range(45)]) == {f"<m{i}@x>": "1" for i in range(45)}


def test_a_chunks_message_ids_map_to_every_ticket_holding_each(store):
    # a sync chunk's one look-up (issue 32): every holder, so the sync picks per sender
    create_tickets(store, ticket(9, message_ids=["<a@x>", "<shared@x>"]), ticket(10, message_ids=["<shared@x>"]),
                   ticket(11, message_ids=[f"<m{i}@x>" for i in range(40)]))
    found = store.tickets_holding_message_ids(["<a@x>", "<shared@x>", "<none@x>", ""] + [f"<m{i}@x>" for i in range(40)])
    assert {key: sorted(t["id"] for t in held) for key, held in found.items()} == {
        "<a@x>": ["9"], "<shared@x>": ["10", "9"], **{f"<m{i}@x>": ["11"] for i in range(40)}}
    assert store.tickets_holding_message_ids([]) == {}


def test_ticket_references_are_added_as_a_set_union(store):
    create_tickets(store, ticket(1, message_ids=["<a@x>"]))
    store.add_ticket_references("1", ["<a@x>", "<b@x>", "<b@x>"], ["help:t1"], "2026-03-01T00:00:00Z")
    store.add_ticket_references("1", ["<c@x>"], [], "2026-03-02T00:00:00Z")
    stored = store.get_ticket("1")
    assert (stored["message_ids"], stored["thread_keys"], stored["updated_at"]) == (
        ["<a@x>", "<b@x>", "<c@x>"], ["help:t1"], "2026-03-02T00:00:00Z")
    with pytest.raises(gexc.NotFound):
        store.add_ticket_references("2", ["<d@x>"], [], "2026-03-02T00:00:00Z")


def test_a_tickets_messages_are_its_inbound_and_outbound_rows_in_time_order(store):
    create_tickets(store, ticket(1))
    store.commit_inbound_chunk("help", [
        ("g2", inbound_row("g2", ticket_id="1", message={"id": "help~g2", "received_at": "2026-01-03"}), None),
        ("g1", inbound_row("g1", ticket_id="1", message={"id": "help~g1", "received_at": "2026-01-01"}), None),
        ("g3", inbound_row("g3", ticket_id="1"), None),  # no stored message: not shown
        ("g4", inbound_row("g4", ticket_id="2", message={"id": "help~g4", "received_at": "2026-01-01"}), None)], [])
    store.create_outbound("k1", {"ticket_id": "1", "message_id": "<k1@x>", "status": "sent",
                                 "message": {"id": "out~k1", "date": "2026-01-02"}})
    assert [r["message"]["id"] for r in store.ticket_messages("1")] == ["help~g1", "out~k1", "help~g2"]


# --------------------------------------------------------------------------- inbound: exactly once


def test_a_chunk_creates_its_rows_and_tickets_once(store):
    chunk = ([("g1", inbound_row("g1", ticket_id="1"), None)], [("1", ticket(1), None)])
    assert store.commit_inbound_chunk("help", *chunk) == 2
    assert store.commit_inbound_chunk("help", [], []) == 0
    with pytest.raises(WriteConflict):
        store.commit_inbound_chunk("help", *chunk)
    with pytest.raises(WriteConflict):  # all or nothing: the new ticket of a refused chunk is not written
        store.commit_inbound_chunk("help", [("g1", inbound_row("g1"), None)], [("2", ticket(2), None)])
    assert store.find_ticket("2") is None
    assert set(store.get_inbound_rows("help", ["g1", "g2"])) == {"g1"}


def test_a_copy_key_is_claimed_once_with_its_chunk(store):
    claim = ("k" * 32, {"ticket_id": "1", "mailbox": "help", "created_at": "2026-01-01T00:00:00Z"})
    assert store.commit_inbound_chunk("help", [("g1", inbound_row("g1", ticket_id="1"), None)],
                                      [("1", ticket(1), None)], None, [claim]) == 3
    assert store.message_copies(["k" * 32, "x" * 32]) == {"k" * 32: "1"}
    with pytest.raises(WriteConflict):  # another mailbox's commit of the same mail: all of it refused
        store.commit_inbound_chunk("sales", [("g9", inbound_row("g9", "sales"), None)], [("2", ticket(2), None)],
                                   None, [(claim[0], {**claim[1], "ticket_id": "2", "mailbox": "sales"})])
    assert store.find_ticket("2") is None and store.message_copies(["k" * 32]) == {"k" * 32: "1"}


def test_a_ticket_is_updated_only_if_unchanged_since_it_was_read(store):
    create_tickets(store, ticket(1))
    read, version = store.ticket_for_update("1")
    store.update_ticket("1", {"status": "closed"})  # another writer came first
    with pytest.raises(WriteConflict):
        store.commit_inbound_chunk("help", [("g1", inbound_row("g1", ticket_id="1"), None)],
                                   [("1", {**read, "message_count": 2}, version)])
    assert store.get_inbound_rows("help", ["g1"]) == {}
    read, version = store.ticket_for_update("1")
    store.commit_inbound_chunk("help", [("g1", inbound_row("g1", ticket_id="1"), None)],
                               [("1", {"message_count": 2}, version)])
    assert store.get_ticket("1") == {**ticket(1), "status": "closed", "message_count": 2}  # an update, not a replace
    assert store.ticket_for_update("404") == (None, None)


def test_a_failed_row_is_finished_only_from_the_version_read_and_loses_its_unfinished_mark(store):
    store.begin_attempt("help", "g1", 3, "parsing")
    version = store.get_inbound_rows("help", ["g1"])["g1"]["_update_time"]
    store.begin_attempt("help", "g1", 3, "parsing again")  # another run counted an attempt meanwhile
    with pytest.raises(WriteConflict):
        store.commit_inbound_chunk("help", [("g1", inbound_row("g1"), version)], [])
    row = store.get_inbound_rows("help", ["g1"])["g1"]
    store.commit_inbound_chunk("help", [("g1", inbound_row("g1", attempts=row["attempts"]), row["_update_time"])], [])
    row = store.get_inbound_rows("help", ["g1"])["g1"]
    assert (row["outcome"], row["attempts"], "unfinished" in row) == ("created", 2, False)


def test_inbound_rows_are_read_for_their_version_fields_only(store):
    store.begin_attempt("help", "g1", 3, "parsing")
    store.commit_inbound_chunk("help", [("g2", inbound_row("g2", message={"id": "help~g2"}), None)], [])
    rows = store.get_inbound_rows("help", ["g1", "g2", "g3"])
    assert set(rows) == {"g1", "g2"}
    assert set(rows["g1"]) == {"gmail_message_id", "outcome", "attempts", "unfinished", "_update_time"}
    assert set(rows["g2"]) == {"gmail_message_id", "outcome", "attempts", "_update_time"}


def test_attempts_are_counted_to_quarantine_and_a_final_row_never_changes(store):
    assert store.begin_attempt("help", "g1", 2, "parsing")["attempts"] == 1
    assert store.begin_attempt("help", "g1", 2, "parsing")["attempts"] == 2
    assert store.begin_attempt("help", "g1", 2, "parsing")["outcome"] == "quarantined"
    assert store.record_failure("help", "g1", "late", 2)["outcome"] == "quarantined"
    assert store.failed_rows("help") == []
    store.retry_quarantined("help", "g1")
    row = store.get_inbound_rows("help", ["g1"])["g1"]
    assert (row["outcome"], row["attempts"], row["unfinished"]) == ("failed", 0, False)
    assert store.failed_rows("help") == ["g1"] and store.failed_rows("other") == []
    with pytest.raises(NotFound):
        store.retry_quarantined("help", "g1")  # failed, not quarantined
    store.commit_inbound_chunk("help", [("g2", inbound_row("g2"), None)], [])
    assert store.record_failure("help", "g2", "late", 2)["outcome"] == "created"


def test_the_inbound_log_is_newest_first_with_a_cursor_and_without_the_message(store):
    store.commit_inbound_chunk("help", [
        (f"g{n}", inbound_row(f"g{n}", processed_at=f"2026-01-0{n}T00:00:00Z", message={"id": f"help~g{n}"}), None)
        for n in range(1, 5)] + [("other", inbound_row("other", mailbox="sales"), None)], [])
    store.put_inbound_row("help", "no-time", {"mailbox": "help", "gmail_message_id": "no-time"})
    ids = lambda rows: [r["gmail_message_id"] for r in rows]  # noqa: E731
    assert ids(store.inbound_log("help")) == ["g4", "g3", "g2", "g1"]  # a row without processed_at is not listed
    assert ids(store.inbound_log("help", limit=2)) == ["g4", "g3"]
    assert ids(store.inbound_log("help", limit=0, before="2026-01-03T00:00:00Z")) == ["g2", "g1"]
    assert ids(store.inbound_since("help", "2026-01-03T00:00:00Z")) == ["g4", "g3"]
    assert "message" not in store.inbound_log("help")[0]
    assert store.inbound_log("help")[0]["outcome"] == "created"


def test_put_inbound_row_merges_into_the_row(store):
    store.begin_attempt("help", "g1", 3, "parsing")
    store.put_inbound_row("help", "g1", {"outcome": "ignored", "reason": "auto-reply"})
    row = store.inbound_log("help")[0]
    assert (row["outcome"], row["reason"], row["attempts"]) == ("ignored", "auto-reply", 1)


# --------------------------------------------------------------------------- ticket events


def event_document(event_id: str, mailbox: str = "help", subject: str = "1", created: str = "2026-01-01T00:00:00Z",
                   count: int = 1) -> tuple[str, dict]:
    stored = [{"id": f"{event_id}-{n}" if n else event_id, "type": "ticket.updated", "subject": subject,
               "sequence": n + 1, "time": created, "data": {"ticket": {"id": subject}}} for n in range(count)]
    return events.batch(stored, mailbox, created, 30)


def test_a_ticket_change_commits_with_its_event_document_or_not_at_all(store):
    create_tickets(store, ticket(1))
    result = store.change_ticket("1", lambda t: ("changed", {"status": "closed", "event_sequence": 1},
                                                 event_document("1~updated~1")))
    assert result == "changed" and store.get_ticket("1")["status"] == "closed"
    assert [d["id"] for d in store.event_documents()] == ["1~updated~1"]
    assert store.change_ticket("1", lambda t: (t["status"], None, None)) == "closed"  # nothing to write
    with pytest.raises(gexc.AlreadyExists):  # an event is written once: a retried change cannot repeat it
        store.change_ticket("1", lambda t: (None, {"status": "open"}, event_document("1~updated~1")))
    assert store.get_ticket("1")["status"] == "closed"  # the event existed: the change was not written either
    with pytest.raises(NotFound):
        store.change_ticket("404", lambda t: (None, {"status": "open"}, None))


def test_a_send_is_recorded_with_its_ticket_and_its_event_in_one_commit(store):
    create_tickets(store, ticket(1, message_ids=["<in@x>"]))
    store.create_outbound("k1", outbound("k1"))
    seen = []

    def decide(record, current):
        seen.append((record["status"], current["id"]))
        return "sent", {"status": "sent", "message.gmail_message_id": "g1"}, {"message_ids": ["<in@x>", "<k1@x>", "<g@x>"]}, \
            event_document("k1~sent")

    assert store.commit_sent("k1", decide) == "sent" and seen == [("queued", "1")]
    assert store.get_outbound("k1")["status"] == "sent" and store.get_outbound("k1")["message"] == {"gmail_message_id": "g1"}
    assert store.get_ticket("1")["message_ids"] == ["<in@x>", "<k1@x>", "<g@x>"]
    assert [d["id"] for d in store.event_documents()] == ["k1~sent"]
    assert store.commit_sent("missing", lambda record, current: ((record, current), None, None, None)) == (None, None)


def test_a_chunk_commits_its_event_document_with_its_rows(store):
    document = event_document("help~g1", subject="1")
    assert store.commit_inbound_chunk("help", [("g1", inbound_row("g1", ticket_id="1"), None)],
                                      [("1", ticket(1), None)], document) == 3
    (stored,) = store.event_documents()
    assert (stored["id"], stored["mailbox"], stored["published"], stored["count"]) == ("help~g1", "help", False, 1)
    assert stored["expires_at"] == datetime(2026, 1, 31, tzinfo=timezone.utc)
    with pytest.raises(WriteConflict):  # the same event again: the whole chunk is refused
        store.commit_inbound_chunk("help", [("g2", inbound_row("g2"), None)], [], event_document("help~g1"))
    assert store.get_inbound_rows("help", ["g2"]) == {}


def test_a_quarantine_and_a_lost_connection_write_their_events_with_them(store):
    store.set_setting("events.retention_days", 7)
    for _ in range(3):
        store.begin_attempt("help", "g1", 2, "parsing")
    mailbox_with_credential(store)
    store.update_credential("help", "production", {"last_error": "slow"})  # still connected: no event
    store.update_credential("help", "production", {"status": "disconnected", "last_error": "invalid_grant"})
    documents = sorted(store.event_documents(), key=lambda d: d["id"])
    assert [d["events"][0]["type"] for d in documents] == ["inbound.quarantined", "mailbox.disconnected"]
    assert [d["events"][0]["id"] for d in documents] == ["help~g1~quarantined~1", "help~production~disconnected~1"]
    assert store.get_mailbox("help")["event_sequence"] == 1
    created = datetime.fromisoformat(documents[0]["created_at"])
    assert documents[0]["expires_at"] - created == timedelta(days=7)


def test_waiting_events_are_read_oldest_first_per_mailbox_and_marked_published(store):
    store.commit_inbound_chunk("help", [], [], event_document("b", created="2026-01-02T00:00:00Z", count=2))
    store.commit_inbound_chunk("help", [], [], event_document("a", created="2026-01-03T00:00:00Z"))
    store.commit_inbound_chunk("sales", [], [], event_document("c", mailbox="sales", created="2026-01-01T00:00:00Z"))
    assert [d["id"] for d in store.pending_events("help")] == ["b", "a"]
    assert store.events_waiting("help") == 3 and store.events_waiting("nobody") == 0
    assert store.mailboxes_with_waiting_events("2026-01-02T12:00:00Z") == ["help", "sales"]
    assert store.mailboxes_with_waiting_events("2026-01-01T12:00:00Z") == ["sales"]
    read = store.pending_events("help")
    assert store.mark_events_published(read[:1], "2026-01-04T00:00:00Z") == 1
    assert [d["id"] for d in store.pending_events("help")] == ["a"] and store.events_waiting("help") == 1
    assert {d["id"]: d["published"] for d in store.event_documents()} == {"a": False, "b": True, "c": False}
    # another publisher marked "b" meanwhile: it is not marked twice, "a" still is
    assert store.mark_events_published(read, "2026-01-04T00:00:01Z") == 1
    assert {d["id"]: d["published_at"] for d in store.event_documents()}["b"] == "2026-01-04T00:00:00Z"
    assert store.mark_events_published([], "2026-01-04T00:00:02Z") == 0


def test_the_event_log_is_read_newest_first_by_subject_and_since(store):
    store.commit_inbound_chunk("help", [], [], event_document("x", subject="1", created="2026-01-01T00:00:00Z"))
    store.commit_inbound_chunk("help", [], [], event_document("y", subject="2", created="2026-01-02T00:00:00Z"))
    store.commit_inbound_chunk("help", [], [], event_document("z", subject="1", created="2026-01-03T00:00:00Z"))
    ids = lambda documents: [d["id"] for d in documents]  # noqa: E731
    assert ids(store.event_documents()) == ["z", "y", "x"]
    assert ids(store.event_documents(limit=2)) == ["z", "y"]
    assert ids(store.event_documents(subject="1")) == ["z", "x"]
    assert ids(store.event_documents(since="2026-01-02T00:00:00Z")) == ["z", "y"]
    assert ids(store.event_documents(subject="1", since="2026-01-02T00:00:00Z", limit=5)) == ["z"]


def test_the_rows_events_name_are_read_for_their_message(store):
    create_tickets(store, ticket(1))
    store.commit_inbound_chunk("help", [("g1", inbound_row("g1", message={"id": "help~g1"}), None)], [])
    store.create_outbound("k1", outbound("k1", message={"id": "out~k1"}, raw=b"MIME"))
    rows = store.event_message_rows([{"collection": "inbound", "key": "help~g1"}, {"collection": "outbound", "key": "k1"},
                                     {"collection": "inbound", "key": "help~gone"}])
    assert set(rows) == {"inbound/help~g1", "outbound/k1"}
    assert rows["outbound/k1"] == {"message": {"id": "out~k1"}, "status": "queued", "mailbox": "help"}


# --------------------------------------------------------------------------- outbound


def outbound(key: str, ticket_id: str = "1", status: str = "queued", **fields) -> dict:
    return {"key": key, "ticket_id": ticket_id, "message_id": f"<{key}@x>", "mailbox": "help",
            "instance": "production", "kind": "reply", "status": status, **fields}


def test_an_outbound_record_is_created_once_with_its_message_id_on_the_ticket(store):
    create_tickets(store, ticket(1, message_ids=["<in@x>"]))
    assert store.create_outbound("k1", outbound("k1"))
    assert not store.create_outbound("k1", outbound("k1", status="sent", message_id="<other@x>"))
    assert store.get_outbound("k1")["status"] == "queued"
    assert store.get_ticket("1")["message_ids"] == ["<in@x>", "<k1@x>"]
    with pytest.raises(gexc.NotFound):  # no such ticket: the batch writes nothing
        store.create_outbound("k2", outbound("k2", ticket_id="2"))
    assert store.get_outbound("k2") is None


def test_change_outbound_decides_on_the_record_as_read(store):
    create_tickets(store, ticket(1))
    store.create_outbound("k1", outbound("k1"))
    seen = []

    def claim(record):
        seen.append(record)
        return ("claimed", {"status": "sending", "attempts": 1}) if record else ("none", None)

    result, record = store.change_outbound("k1", claim)
    assert (result, record["status"], seen[0]["status"]) == ("claimed", "queued", "queued")
    assert store.get_outbound("k1")["status"] == "sending"
    assert store.change_outbound("missing", claim) == ("none", {})
    assert store.get_outbound("missing") is None


def test_update_outbound_takes_dotted_paths_and_refuses_a_missing_record(store):
    create_tickets(store, ticket(1))
    store.create_outbound("k1", outbound("k1", message={"id": "out~k1", "subject": "Re"}))
    store.update_outbound("k1", {"status": "sent", "message.gmail_message_id": "g9"})
    assert store.get_outbound("k1")["message"] == {"id": "out~k1", "subject": "Re", "gmail_message_id": "g9"}
    with pytest.raises(gexc.NotFound):
        store.update_outbound("missing", {"status": "sent"})


def test_unsent_records_and_a_mailboxs_outbox_are_found_by_status(store):
    create_tickets(store, ticket(1))
    for key, status, fields in [("a", "queued", {}), ("b", "sent", {}), ("c", "failed", {"kind": "acknowledgement"}),
                                ("d", "pending", {"instance": "staging"}), ("e", "sending", {"mailbox": "sales"})]:
        store.create_outbound(key, outbound(key, status=status, **fields))
    assert sorted(r["key"] for r in store.unsent_outbound()) == ["a", "c", "d", "e"]
    assert len(store.unsent_outbound(limit=2)) == 2
    assert sorted(r["key"] for r in store.outbox_records("help", "production")) == ["a", "c"]
    assert [r["key"] for r in store.outbox_records("help", "production", kind="acknowledgement")] == ["c"]
    assert [r["key"] for r in store.outbox_records("help", "production", statuses=("sent",))] == ["b"]


def test_the_send_budget_counts_to_its_limit_and_gives_back(store):
    assert store.send_budget_used("help", "2026-12-02") == 0
    assert store.take_send_budget("help", "2026-12-02", 2) == (True, 0)
    assert store.take_send_budget("help", "2026-12-02", 2) == (True, 1)
    assert store.take_send_budget("help", "2026-12-02", 2) == (False, 2)
    store.release_send_budget("help", "2026-12-02")
    assert store.send_budget_used("help", "2026-12-02") == 1
    assert store.send_budget_used("help", "2026-12-03") == 0
    with pytest.raises(gexc.NotFound):  # nothing taken that day: nothing to give back
        store.release_send_budget("help", "2026-12-03")


def test_acknowledgement_slots_count_all_counters_or_none(store):
    counters = [("ann@customer.example", 1), ("@customer.example", 2)]
    assert store.take_acknowledgement_slots(counters, "2026120210") is None
    assert store.take_acknowledgement_slots(counters, "2026120210") == "ann@customer.example"
    assert store.take_acknowledgement_slots([("bob@customer.example", 1), ("@customer.example", 2)], "2026120210") is None
    assert store.take_acknowledgement_slots([("eve@customer.example", 1), ("@customer.example", 2)],
                                            "2026120210") == "@customer.example"
    assert store.take_acknowledgement_slots([("eve@customer.example", 1)], "2026120210") is None  # eve was not counted
    assert store.take_acknowledgement_slot("zed@x.example", "h", 1)
    assert not store.take_acknowledgement_slot("zed@x.example", "h", 1)
    assert store.take_acknowledgement_slot("zed@x.example", "next hour", 1)


def test_send_pacing_is_changed_by_merging_what_decide_returns(store):
    assert store.get_send_pacing("help~production") is None
    seen = []

    def decide(changes):
        def run(current):
            seen.append(current)
            return len(seen), changes
        return run

    assert store.change_send_pacing("help~production", decide({"tokens": 5, "drain": {"owner": "a"}})) == 1
    assert store.change_send_pacing("help~production", decide({"drain": {"until": 9}})) == 2
    assert store.change_send_pacing("help~production", decide(None)) == 3
    assert seen[0] is None and seen[2] == {"tokens": 5, "drain": {"owner": "a", "until": 9}}
    assert store.get_send_pacing("help~production") == seen[2]


# --------------------------------------------------------------------------- overrides


def test_overrides_are_put_listed_looked_up_and_deleted(store):
    store.put_override({"scope": "ticket", "key": "1", "mailbox": "sales"})
    store.put_override({"scope": "team", "key": "red", "mailbox": "help"})
    store.put_override({"scope": "ticket", "key": "1", "mailbox": "help"})  # replaces
    assert sorted((r["scope"], r["key"], r["mailbox"]) for r in store.list_override_rows()) == [
        ("team", "red", "help"), ("ticket", "1", "help")]
    assert store.overrides_for(["ticket~1", "client~none"]) == {("ticket", "1"): "help"}
    assert store.overrides_for([]) == {}
    assert store.delete_override("ticket~1") and not store.delete_override("ticket~1")
    assert [r["key"] for r in store.list_override_rows()] == ["red"]


# --------------------------------------------------------------------------- admin sessions


def test_admin_sessions_are_kept_changed_and_ended(store):
    store.put_admin_session("a" * 64, {"who": "ann@acme.example", "csrf": "c", "flash": "Saved"})
    store.put_admin_session("b" * 64, {"who": "bob@acme.example", "csrf": "d"})
    store.update_admin_session("a" * 64, {"last_used": 5})
    store.clear_admin_flash("a" * 64)
    assert store.get_admin_session("a" * 64) == {"who": "ann@acme.example", "csrf": "c", "last_used": 5}
    store.delete_admin_session("b" * 64)
    store.delete_admin_session("b" * 64)  # deleting twice is harmless
    assert store.get_admin_session("b" * 64) is None
    with pytest.raises(gexc.NotFound):  # an update does not bring an ended session back
        store.update_admin_session("b" * 64, {"last_used": 6})
    assert store.get_admin_session("b" * 64) is None
    store.put_admin_session("c" * 64, {"who": "cy@acme.example"})
    assert store.delete_all_admin_sessions() == 2
    assert store.get_admin_session("a" * 64) is None and store.delete_all_admin_sessions() == 0


def test_a_stored_message_is_found_by_its_id_inbound_or_outbound(store):
    create_tickets(store, ticket(1))
    store.commit_inbound_chunk("help", [("g1", inbound_row("g1", message={"id": "help~g1", "subject": "in"}), None)], [])
    store.create_outbound("k1", outbound("k1", message={"id": "out~k1", "subject": "out"}))
    assert store.find_stored_message("help~g1")["subject"] == "in"
    assert store.find_stored_message("out~k1")["subject"] == "out"
    assert store.find_stored_message("out~missing") is None and store.find_stored_message("help~none") is None


# --------------------------------------------------------------------------- what Firestore stores


def test_values_come_back_as_firestore_keeps_them(store):
    store.put_admin_session("a" * 64, {"tags": ("x", "y"), "at": datetime(2026, 1, 2, 3, 4, 5),
                                       "nested": {"n": [1, {"deep": None}]}, "raw": b"\x00\x01"})
    session = store.get_admin_session("a" * 64)
    assert session == {"tags": ["x", "y"], "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                       "nested": {"n": [1, {"deep": None}]}, "raw": b"\x00\x01"}
    assert session["at"].tzinfo is not None


def test_an_array_directly_inside_an_array_is_refused(store):
    with pytest.raises(gexc.InvalidArgument):
        store.put_override({"scope": "ticket", "key": "1", "mailbox": "help", "bad": [["x"]]})
    assert store.list_override_rows() == []
    with pytest.raises(StoreUnavailable):  # the one write that turns Firestore's refusals into StoreUnavailable
        store.put_inbound_row("help", "g1", {"bad": [[1]]})


def sized_session(extra: int) -> dict:
    """An admin session document `extra` bytes over (or under) Firestore's 1 MiB, no value too long."""
    fields = {f"f{n}": "x" * 100_000 for n in range(10)}
    fields["fill"] = ""
    fields["fill"] = "y" * (MAX_DOCUMENT_BYTES - document_size("admin_sessions", "a" * 64, fields) + extra)
    return fields


def test_a_document_of_exactly_1_mib_is_kept_and_one_byte_more_is_refused(store):
    store.put_admin_session("a" * 64, sized_session(0))
    assert len(store.get_admin_session("a" * 64)["fill"]) > 40_000
    with pytest.raises(DocumentTooLarge):
        store.put_admin_session("a" * 64, sized_session(1))
    assert store.get_admin_session("a" * 64) == sized_session(0)  # unchanged


def test_a_field_value_over_1_mib_minus_89_bytes_is_refused(store):
    store.put_admin_session("s", {"n": "n" * MAX_VALUE_BYTES})
    assert document_size("admin_sessions", "t", {"n": "n" * (MAX_VALUE_BYTES + 1)}) < MAX_DOCUMENT_BYTES
    with pytest.raises(DocumentTooLarge):  # the document would fit: the value does not
        store.put_admin_session("t", {"n": "n" * (MAX_VALUE_BYTES + 1)})
    assert store.get_admin_session("t") is None


def test_a_chunk_with_a_document_over_1_mib_is_refused_whole(store):
    body = {f"part{n}": "b" * 200_000 for n in range(6)}  # 1.2 MB of message
    with pytest.raises(DocumentTooLarge):
        store.commit_inbound_chunk("help", [("g1", inbound_row("g1", message={"id": "help~g1", **body}), None)],
                                   [("1", ticket(1), None)])
    assert store.find_ticket("1") is None and store.get_inbound_rows("help", ["g1"]) == {}
    with pytest.raises(DocumentTooLarge):  # and where Firestore's refusals usually become StoreUnavailable
        store.put_inbound_row("help", "g2", {"message": body})
