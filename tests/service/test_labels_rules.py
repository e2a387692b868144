"""Post-processing labels on in-memory ports: Gmail's case-insensitive label names, and no
non-domain exception ever leaving post-processing."""

from mailbridge.errors import GmailError
from mailbridge.services import sync
from tests.helpers import make_mail
from tests.memory.gmail import MemoryGmail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"


def test_a_409_for_a_label_differing_in_case_reuses_that_label(monkeypatch):
    services, accounts = memory_services()
    connected_mailbox(services, accounts, incoming={"processed_label": "mailbridge/processed"})
    taken = accounts.gmail(ADDRESS).create_label("MailBridge/Processed")

    def refuse(self, name):
        raise GmailError("labels.create failed: 409 duplicate", 409, "duplicate")

    monkeypatch.setattr(MemoryGmail, "create_label", refuse)
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    sync.poll(services, "help")
    [message] = accounts.account(ADDRESS)["messages"].values()
    assert taken["id"] in message["labelIds"]


def test_a_malformed_label_list_is_recorded_and_the_history_id_advances(monkeypatch):
    services, accounts = memory_services()
    connected_mailbox(services, accounts, incoming={"processed_label": "mailbridge/processed"})
    monkeypatch.setattr(MemoryGmail, "labels", lambda self: [{"name": "no id"}, None])
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", ADDRESS, "Printer jammed"))
    before = services.store.get_sync("help", services.settings.instance)["history_id"]
    result = sync.poll(services, "help")
    state = services.store.get_sync("help", services.settings.instance)
    assert result["totals"]["created"] == 1
    assert "post-processing failed" in state["post_processing_error"]
    assert state["history_id"] != before
