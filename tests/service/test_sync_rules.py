"""Poll rules on in-memory ports (tests/memory): threading, exactly once, quarantine, loops.
Milliseconds each; the emulator tests (tests/integration) keep checking the real adapters."""

import pytest

from mailbridge.errors import WriteConflict
from mailbridge.services import sync
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts)
    return services, accounts


def outcomes(services):
    return sorted(r["outcome"] for r in services.store.inbound_log("help"))


def test_new_mail_becomes_one_ticket_per_conversation(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    accounts.deliver(ADDRESS, make_mail("bob@customer.example", ADDRESS, "VPN down"))
    result = sync.poll(services, "help")
    assert result["totals"]["created"] == 2
    assert sorted(t["subject"] for t in services.store.list_tickets()) == ["Printer jammed", "VPN down"]


def test_a_reply_with_in_reply_to_updates_the_ticket_of_the_first_message(world):
    services, accounts = world
    first = make_mail("ann@customer.example", ADDRESS, "Printer jammed", message_id="<first@customer.example>")
    accounts.deliver(ADDRESS, first)
    sync.poll(services, "help")
    reply = make_mail("ann@customer.example", ADDRESS, "Re: Printer jammed", "still",
                      In_Reply_To="<first@customer.example>", References="<first@customer.example>")
    accounts.deliver(ADDRESS, reply)
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    assert ticket["message_count"] == 2
    assert outcomes(services) == ["created", "updated"]


def test_the_same_message_polled_twice_gives_one_row_and_one_ticket(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    services.store.update_sync("help", services.settings.instance, {"history_id": "100"})  # history replayed
    second = sync.poll(services, "help")
    assert second["totals"]["created"] == 0
    assert len(services.store.list_tickets()) == 1
    assert outcomes(services) == ["created"]


def test_a_chunk_whose_ticket_changed_meanwhile_is_reread_not_duplicated(world, monkeypatch):
    services, accounts = world
    store = services.store
    original = store.commit_inbound_chunk
    calls = []

    def conflict_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise WriteConflict("tickets/1 changed")
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "commit_inbound_chunk", conflict_once)
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    assert len(calls) == 2
    assert outcomes(services) == ["created"]


def test_commit_refuses_a_row_someone_else_wrote_first(world):
    services, _accounts = world
    store = services.store
    store.put_inbound_row("help", "m1", {"outcome": "created"})
    with pytest.raises(WriteConflict):
        store.commit_inbound_chunk("help", [("m1", {"outcome": "created"}, None)], [])


def test_a_message_that_keeps_failing_is_quarantined_after_max_attempts(world):
    services, accounts = world
    gmail_id = accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Broken"))
    gmail = accounts.gmail(ADDRESS)
    services._overrides["gmail_factory"] = lambda mailbox, credential: gmail
    gmail.fail_fetch.add(gmail_id)
    seen = []
    for _ in range(services.settings.max_attempts):
        services.store.update_sync("help", services.settings.instance, {"history_id": "100"})
        sync.poll(services, "help")
        seen.append(services.store.get_inbound_rows("help", [gmail_id])[gmail_id]["outcome"])
    assert seen == ["failed"] * (services.settings.max_attempts - 1) + ["quarantined"]


def test_own_loop_marker_mail_is_ignored_not_ticketed(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Auto: received", X_Loop="mailbridge@mailbridge"))
    sync.poll(services, "help")
    assert outcomes(services) == ["ignored"]
    assert services.store.list_tickets() == []


def counting(monkeypatch, store, *names):
    """Count the calls the store gets of each of `names` (the calls still go through)."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(store, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return counts


def test_a_new_conversation_costs_no_thread_query_and_a_later_message_of_its_thread_finds_the_ticket(world, monkeypatch):
    services, accounts = world
    counts = counting(monkeypatch, services.store, "tickets_by_thread_keys", "find_ticket_by_thread")
    first = accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    assert counts == {"tickets_by_thread_keys": 0, "find_ticket_by_thread": 0}  # it starts its Gmail thread
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Another thing"), thread_id=first)
    sync.poll(services, "help")
    assert counts["tickets_by_thread_keys"] == 1
    (ticket,) = services.store.list_tickets()
    assert ticket["message_count"] == 2
    assert outcomes(services) == ["created", "updated"]


def test_a_chunk_of_new_conversations_looks_its_message_ids_up_in_one_query(world, monkeypatch):
    """The copy and squatting checks need each new message's Message-ID holder: one look-up for
    the chunk, not one per message (the emulator answers each by scanning every ticket)."""
    services, accounts = world
    counts = counting(monkeypatch, services.store, "tickets_holding_message_ids", "tickets_by_message_ids")
    for i in range(5):
        accounts.deliver(ADDRESS, make_mail(f"c{i}@customer.example", ADDRESS, f"Question {i}"))
    sync.poll(services, "help")
    assert counts == {"tickets_holding_message_ids": 1, "tickets_by_message_ids": 0}
    assert outcomes(services) == ["created"] * 5


def test_a_message_id_another_senders_ticket_holds_is_not_claimed_by_the_chunks_lookup(world):
    """The chunk's one look-up still finds a stored holder: a second sender reusing a held
    Message-ID opens a ticket that does not hold it."""
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "First", message_id="<same@x.example>"))
    sync.poll(services, "help")
    accounts.deliver(ADDRESS, make_mail("eve@other.example", ADDRESS, "Squatter", message_id="<same@x.example>"))
    accounts.deliver(ADDRESS, make_mail("bob@customer.example", ADDRESS, "Unrelated"))
    sync.poll(services, "help")
    holders = [t for t in services.store.list_tickets() if "<same@x.example>" in t.get("message_ids", [])]
    assert [t["requester"]["email"] for t in holders] == ["ann@customer.example"]
    assert len(services.store.list_tickets()) == 3


def test_two_messages_of_one_new_thread_in_one_chunk_make_one_ticket(world):
    services, accounts = world
    first = accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "And the scanner"), thread_id=first)
    sync.poll(services, "help")
    assert len(services.store.list_tickets()) == 1
    assert outcomes(services) == ["created", "updated"]


def test_a_mailbox_without_failures_skips_the_failed_rows_query_and_one_with_failures_retries_them(world, monkeypatch):
    services, accounts = world
    gmail = accounts.gmail(ADDRESS)
    services._overrides["gmail_factory"] = lambda mailbox, credential: gmail
    counts = counting(monkeypatch, services.store, "failed_rows")
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    sync.poll(services, "help")
    assert counts["failed_rows"] == 1  # only the first run, whose state said nothing yet
    broken = accounts.deliver(ADDRESS, make_mail("bob@customer.example", ADDRESS, "VPN down"))
    gmail.fail_fetch.add(broken)
    sync.poll(services, "help")
    assert services.store.get_sync("help", services.settings.instance)["last_failed"] == 1
    gmail.fail_fetch.discard(broken)
    sync.poll(services, "help")  # no new mail: the failed row comes from the query
    assert services.store.get_inbound_rows("help", [broken])[broken]["outcome"] == "created"


def test_failures_of_a_run_that_ended_in_an_error_are_retried_by_the_next(world, monkeypatch):
    services, accounts = world
    gmail = accounts.gmail(ADDRESS)
    services._overrides["gmail_factory"] = lambda mailbox, credential: gmail
    sync.poll(services, "help")  # a clean first run: the state says no failures
    broken = accounts.deliver(ADDRESS, make_mail("bob@customer.example", ADDRESS, "VPN down"))
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    gmail.fail_fetch.add(broken)
    store = services.store

    def crash(*args, **kwargs):
        raise RuntimeError("the store went away")

    with monkeypatch.context() as patch:
        patch.setattr(store, "commit_inbound_chunk", crash)
        result = sync.poll(services, "help")
    assert result["mailboxes"][0]["outcome"] == "error"
    assert store.get_inbound_rows("help", [broken])[broken]["outcome"] == "failed"
    assert store.get_sync("help", services.settings.instance)["last_failed"] is None  # unknown, not 0
    gmail.fail_fetch.discard(broken)
    counts = counting(monkeypatch, store, "failed_rows")
    sync.poll(services, "help")
    assert counts["failed_rows"] == 1
    assert store.get_inbound_rows("help", [broken])[broken]["outcome"] == "created"
