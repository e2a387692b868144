"""A pasted screenshot stays listed as an inline part, with its content id, in the ticket JSON
(`tickets show --json`), while the ticket page places it in the message (docs/images.md)."""

from __future__ import annotations

import pytest

from mailbridge.domain import tickets as ticket_views
from mailbridge.errors import InvalidInput
from mailbridge.services import sync, tickets
from tests.images import related_message
from tests.memory.services import connected_mailbox, memory_services


def test_tickets_show_json_lists_inline_parts_with_their_content_id():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledge_new": False})
    accounts.deliver("help@acme.example", related_message("ann@customer.example", "help@acme.example", "Error"))
    sync.poll(services, "help")
    (ticket,) = services.store.list_tickets()
    (message,) = ticket_views.contract_view(tickets.show(services, ticket["id"]))["messages"]
    listed = {a["filename"]: a for a in message["attachments"]}
    assert set(listed) == {"screenshot.png", "logo.png", "b.png"}
    assert all(a["content_id"] and a["content_type"] == "image/png" and a["sha256"] for a in listed.values())
    assert f"cid:{listed['screenshot.png']['content_id']}" in message["html"]


def test_remembering_a_senders_images_takes_an_address_and_keeps_each_once():
    services, _accounts = memory_services()
    assert tickets.show_images_from(services, "Ann@Customer.example") == ["ann@customer.example"]
    assert tickets.show_images_from(services, "ann@customer.example") == ["ann@customer.example"]
    with pytest.raises(InvalidInput):
        tickets.show_images_from(services, "not an address")
