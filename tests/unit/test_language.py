"""Acknowledgement templates per language (domain/language.py): validated when set, chosen from
Content-Language, else the detected language of the text, else the default."""

from __future__ import annotations

import pytest

from mailbridge.domain import language, models
from mailbridge.errors import InvalidInput

TEMPLATES = {"de": "Danke! Ticket {tag} ist eröffnet.", "en-GB": "Thanks! Ticket {tag} is open.",
             "pt-BR": "Obrigado! {tag}"}
GERMAN = "Guten Tag, mein Drucker funktioniert seit gestern nicht mehr. Können Sie mir bitte helfen?"


def test_content_language_wins_and_matches_by_primary_language():
    choice = language.choose(TEMPLATES, "de-AT", "This text is English.")
    assert (choice.language, choice.source) == ("de", "content-language")
    assert language.choose(TEMPLATES, "en", GERMAN).language == "en-GB"
    assert language.choose(TEMPLATES, "fr, pt-BR", "").language == "pt-BR"


def test_the_text_decides_when_no_header_names_a_configured_language():
    choice = language.choose(TEMPLATES, "fr", GERMAN)
    assert (choice.template, choice.language, choice.source) == (TEMPLATES["de"], "de", "detected")
    assert language.detect("Hello, my printer stopped working yesterday, can you help me please?") == "en"


def test_nothing_known_or_nothing_configured_is_the_default():
    assert language.choose(TEMPLATES, None, "ok") == language.Choice(None, None, "default")
    assert language.choose({}, "de", GERMAN) == language.Choice(None, None, "default")
    assert language.choose(TEMPLATES, None, "Bonjour, mon imprimante ne marche plus depuis hier.").source == "default"


def test_the_setting_is_a_json_object_of_tags_to_templates_with_the_known_fields():
    mailbox = models.new_mailbox("help", "help@acme.example")
    key, value = models.apply_mailbox_setting(mailbox, "outgoing.acknowledgement_templates",
                                              '{"de": "Ticket {tag}: {subject}", "en": "Ticket {number}"}')
    assert (key, value) == ("outgoing.acknowledgement_templates", {"de": "Ticket {tag}: {subject}",
                                                                   "en": "Ticket {number}"})
    for bad in ('["de"]', '{"german": "x"}', '{"de": "Ticket {ticket}"}', '{"de": ""}', "{not json", '{"de": "{"}'):
        with pytest.raises(InvalidInput):
            models.apply_mailbox_setting(mailbox, "outgoing.acknowledgement_templates", bad)
