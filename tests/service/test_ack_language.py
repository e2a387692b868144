"""Acknowledgements in the customer's language on in-memory ports: the template of the
Content-Language, else of the detected language, else the default; the inbound row records
the choice."""

from __future__ import annotations

import pytest

from mailbridge.services import sync
from tests.helpers import make_email
from tests.memory.services import connected_mailbox, memory_services

ADDRESS = "help@acme.example"
TEMPLATES = {"de": "Danke für Ihre Nachricht. Wir haben Ticket {tag} eröffnet ({subject}).",
             "en": "Thanks, ticket {tag} is open."}
GERMAN = "Guten Tag, mein Drucker funktioniert seit gestern nicht mehr. Können Sie mir bitte helfen?"
FRENCH = "Bonjour, mon imprimante ne fonctionne plus depuis hier. Pouvez-vous m'aider s'il vous plaît ?"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts, outgoing={"acknowledgement_templates": TEMPLATES})
    return services, accounts


def acknowledged(services, accounts, body: str, content_language: str | None = None) -> tuple[str, dict]:
    mail = make_email("kunde@customer.example", ADDRESS, "Drucker", body)
    if content_language:
        mail["Content-Language"] = content_language  # after the body: set_content drops Content-* headers
    gmail_id = accounts.deliver(ADDRESS, bytes(mail))
    sync.poll(services, "help")
    (record,) = [r for r in services.store.collection("outbound").values() if r.get("kind") == "acknowledgement"]
    return record["message"]["text"], services.store.collection("inbound")[f"help~{gmail_id}"]


def test_a_german_mail_gets_the_german_template_and_its_row_says_so(world):
    text, row = acknowledged(*world, GERMAN)
    assert text.startswith("Danke für Ihre Nachricht. Wir haben Ticket [#1] eröffnet (Drucker).")
    assert row["acknowledgement_language"] == {"language": "de", "source": "detected"}


def test_content_language_comes_before_the_text(world):
    text, row = acknowledged(*world, GERMAN, "en-US")
    assert text.startswith("Thanks, ticket [#1] is open.")
    assert row["acknowledgement_language"] == {"language": "en", "source": "content-language"}


def test_a_language_without_a_template_gets_the_default(world):
    text, row = acknowledged(*world, FRENCH)
    assert text.startswith("Thank you for your message. We have opened ticket [#1]")
    assert row["acknowledgement_language"] == {"language": None, "source": "default"}
