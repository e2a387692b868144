"""strip_reply: quoted history and signatures go, new content stays."""

import pytest

from mailbridge.domain.quotes import strip_reply


def test_gmail_attribution_and_quote_are_removed():
    text = "Thanks!\n\nOn Sat, Nov 28, 2026 at 9:00 AM Support <s@x.example> wrote:\n> old\n> older\n"

    assert strip_reply(text) == "Thanks!"


def test_wrapped_attribution_is_removed():
    text = "Thanks!\n\nOn Sat, Nov 28, 2026 at 9:00 AM Support Team <\nsupport@helpdesk.example> wrote:\n\n> old\n"

    assert strip_reply(text) == "Thanks!"


@pytest.mark.parametrize(
    "attribution",
    [
        "Am 28.11.2026 um 09:00 schrieb Support <s@x.example>:",
        "Le sam. 28 nov. 2026 à 09:00, Support <s@x.example> a écrit :",
        "El sáb, 28 nov 2026 a las 9:00, Support (<s@x.example>) escribió:",
        "Op za 28 nov. 2026 om 09:00 schreef Support <s@x.example>:",
        "Il giorno sab 28 nov 2026 alle ore 09:00 Support <s@x.example> ha scritto:",
        "Em sáb., 28 de nov. de 2026 às 09:00, Support <s@x.example> escreveu:",
        "28 нояб. 2026 г., в 09:00, Support <s@x.example> написал(а):",
        "Support <s@x.example> 于2026年11月28日周六 09:00写道：",
    ],
)
def test_attributions_in_other_languages_are_removed(attribution):
    text = f"New content.\n\n{attribution}\n> old\n"

    assert strip_reply(text) == "New content."


def test_original_message_separator_cuts_history():
    text = "Answer here.\n\n-----Original Message-----\nFrom: a\nSent: b\n\nold text\n"

    assert strip_reply(text) == "Answer here."


def test_outlook_header_block_cuts_history():
    text = (
        "Answer here.\n\n________________________________\nFrom: Support <s@x.example>\n"
        "Sent: Saturday, November 28, 2026 9:00 AM\nTo: Alice\nSubject: Printer\n\nold text\n"
    )

    assert strip_reply(text) == "Answer here."


def test_german_outlook_header_block_cuts_history():
    text = "Antwort.\n\nVon: Support <s@x.example>\nGesendet: Samstag, 28. November 2026 09:00\nAn: Alice\n\nalt\n"

    assert strip_reply(text) == "Antwort."


def test_from_line_without_sent_line_is_kept():
    text = "From: the team, with love.\nSee you soon."

    assert strip_reply(text) == text


def test_trailing_quote_without_attribution_is_removed():
    assert strip_reply("Yes.\n\n> Can you come?\n> Bob\n") == "Yes."


def test_interleaved_answers_are_kept():
    text = "On Mon, Bob wrote:\n> Question one?\nAnswer one.\n> Question two?\nAnswer two.\n"

    result = strip_reply(text)

    assert "Answer one." in result
    assert "Answer two." in result


def test_signature_delimiter_cuts_signature():
    assert strip_reply("Done.\n\n-- \nAlice\nACME Corp\n") == "Done."


def test_mobile_signature_is_removed():
    assert strip_reply("Done.\n\nSent from my iPhone\n") == "Done."
    assert strip_reply("Erledigt.\n\nVon meinem iPhone gesendet") == "Erledigt."


def test_everything_quoted_returns_the_original():
    text = "> only quoted\n> lines\n"

    assert strip_reply(text) == text


def test_only_attribution_and_quote_returns_the_original():
    text = "On Mon, Bob wrote:\n> hi\n"

    assert strip_reply(text) == text


def test_empty_text_stays_empty():
    assert strip_reply("") == ""


def test_forwarded_message_is_not_stripped():
    text = "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@x.example>\nDate: Sat\n\nThe content\n"

    assert "The content" in strip_reply(text)


def test_bottom_posted_answer_below_the_quote_is_kept_and_the_quote_goes():
    # Thunderbird's layout when the user answers below the quote
    text = "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\n> there\n\nHello, it works now.\n"

    assert strip_reply(text) == "Hello, it works now."


def test_text_above_and_below_a_single_quote_block_is_kept():
    text = "Thanks!\nOn Mon, Bob wrote:\n> Can you check?\n\nChecked: all fine.\n"

    assert strip_reply(text) == "Thanks!\nChecked: all fine."


def test_russian_attribution_wrapped_after_the_reply_keeps_the_reply():
    # Android's Russian attribution ends with its keyword: "Hello" above it is not part of it
    text = ('Hello\n02.04.2012 14:20 пользователь "bob@example.com" <\n'
            'bob@example.com> написал:\n\n> Hi\n>')

    assert strip_reply(text) == "Hello"



def test_yahoo_dashed_attribution_above_a_header_block_is_removed():
    text = ("Sounds great.\n\nJoe\n\n--- On Wed, 4/4/12, ann@example.com <ann@example.com> wrote:\n\n\n"
            "From: ann@example.com <ann@example.com>\nSubject: Booking\nTo: joe@example.com\n"
            "Date: Wednesday, April 4, 2012, 10:23 PM\n\nNew booking inquiry\n")

    assert strip_reply(text) == "Sounds great.\n\nJoe"


# Attribution lines as the clients write them (issue 16, item 4).
CLIENT_ATTRIBUTIONS = {
    "gmail-en": "On Sat, Nov 28, 2026 at 9:00 AM Support <s@x.example> wrote:",
    "gmail-de": "Am Sa., 28. Nov. 2026 um 09:00 Uhr schrieb Support <s@x.example>:",
    "gmail-fr": "Le sam. 28 nov. 2026 à 09:00, Support <s@x.example> a écrit :",
    "gmail-es": "El sáb., 28 nov. 2026 a las 9:00, Support (<s@x.example>) escribió:",
    "gmail-it": "Il giorno sab 28 nov 2026 alle ore 09:00 Support <s@x.example> ha scritto:",
    "gmail-nl": "Op za 28 nov. 2026 om 09:00 schreef Support <s@x.example>:",
    "gmail-pt": "Em sáb., 28 de nov. de 2026 às 09:00, Support <s@x.example> escreveu:",
    "gmail-pl": "sob., 28 lis 2026 o 09:00 Support <s@x.example> napisał(a):",
    "gmail-ru": "сб, 28 нояб. 2026 г. в 09:00, Support <s@x.example>:",
    "gmail-ja": "2026年11月28日(土) 9:00 Support <s@x.example>:",
    "gmail-zh": "Support <s@x.example> 于2026年11月28日周六 09:00写道：",
    "apple-en": "On 28 Nov 2026, at 09:00, Support <s@x.example> wrote:",
    "apple-de": "Am 28.11.2026 um 09:00 schrieb Support <s@x.example>:",
    "thunderbird-en": "On 28.11.26 09:00, Support wrote:",
    "thunderbird-fr": "Le 28/11/2026 à 09:00, Support a écrit :",
    "thunderbird-pl": "W dniu 28.11.2026 o 09:00, Support pisze:",
    "thunderbird-ru": "28.11.2026 09:00, Support пишет:",
    "yahoo-en": "On Saturday, November 28, 2026, 09:00:00 AM GMT+1, Support <s@x.example> wrote:",
    "yahoo-de": "Am Samstag, 28. November 2026, 09:00:00 MEZ hat Support <s@x.example> Folgendes geschrieben:",
    "163-zh": "在 2026-11-28 09:00:00，\"Support\" <s@x.example> 写道：",
    "outlook-ja": "2026/11/28 9:00、Support <s@x.example> のメッセージ:",
}


@pytest.mark.parametrize("client", sorted(CLIENT_ATTRIBUTIONS))
def test_client_attribution_and_its_quote_are_removed(client):
    text = f"New content.\n\n{CLIENT_ATTRIBUTIONS[client]}\n> old\n> older\n"

    assert strip_reply(text) == "New content."


# Quoted header blocks and separators: (separator line or "", From name, Sent name).
CLIENT_HEADER_BLOCKS = {
    "outlook-en": ("________________________________", "From", "Sent"),
    "outlook-de": ("", "Von", "Gesendet"),
    "outlook-fr": ("", "De ", "Envoyé "),
    "outlook-es": ("", "De", "Enviado"),
    "outlook-it": ("", "Da", "Inviato"),
    "outlook-nl": ("", "Van", "Verzonden"),
    "outlook-pt": ("", "De", "Enviado em"),
    "outlook-pl": ("", "Od", "Wysłano"),
    "outlook-ru": ("", "От", "Отправлено"),
    "outlook-ja": ("", "差出人", "送信日時"),
    "outlook-zh": ("", "发件人", "发送时间"),
    "outlook-classic": ("-----Original Message-----", "From", "Sent"),
    "gmx-de": ("----- Original Nachricht ----", "Von", "Datum"),
    "web.de-de": ("-----Ursprüngliche Nachricht-----", "Von", "Gesendet"),
    "yahoo-en": ("----- Original Message -----", "From", "Date"),
    "qq-zh": ("------------------ 原始邮件 ------------------", "发件人", "发送时间"),
    "163-zh": ("-----原始邮件-----", "发件人", "时间"),
    "thunderbird-fr": ("-------- Message d'origine --------", "De ", "Date "),
    "thunderbird-es": ("-------- Mensaje original --------", "De", "Fecha"),
    "thunderbird-it": ("-------- Messaggio originale --------", "Da", "Data"),
    "outlook-pt-br": ("-----Mensagem original-----", "De", "Enviada"),
    "thunderbird-nl": ("-------- Oorspronkelijk bericht --------", "Van", "Datum"),
    "outlook-pl-separator": ("-----Wiadomość oryginalna-----", "Od", "Wysłano"),
    "outlook-ru-separator": ("-----Исходное сообщение-----", "От", "Отправлено"),
    "outlook-ja-separator": ("-----元のメッセージ-----", "差出人", "送信日時"),
}


@pytest.mark.parametrize("client", sorted(CLIENT_HEADER_BLOCKS))
def test_client_header_block_and_its_separator_are_removed(client):
    separator, from_name, sent_name = CLIENT_HEADER_BLOCKS[client]
    text = (f"New content.\n\n{separator}\n{from_name}: Support <s@x.example>\n"
            f"{sent_name}: 28.11.2026 09:00\nSubject: Printer\n\nold text\n")

    assert strip_reply(text) == "New content."


def test_gmx_sent_line_above_the_from_line_starts_the_header_block():
    text = "Danke.\n\nGesendet: Samstag, 28. November 2026 um 09:00 Uhr\nVon: \"Support\" <s@x.example>\nAn: a@b.de\n\nalt\n"

    assert strip_reply(text) == "Danke."


def test_separator_with_only_the_quote_below_returns_the_original():
    text = "----- Original Nachricht ----\nVon: a@b.de\nDatum: 1.1.2026\n\nold text\n"

    assert strip_reply(text) == text


def test_sentence_ending_in_wrote_without_date_or_address_is_kept():
    text = "Here is what my colleague wrote:\nthe printer needs toner."

    assert strip_reply(text) == text


def test_many_attribution_lines_cost_linear_work(monkeypatch):
    # Each line is classified with a bounded amount of work: 4x the lines, 4x the checks.
    from mailbridge.domain import quotes

    calls = []
    original = quotes.is_attribution

    def counting(joined, first_line):
        calls.append(1)
        return original(joined, first_line)

    monkeypatch.setattr(quotes, "is_attribution", counting)
    strip_reply("Hi\n" + "> q\nOn Mon, a@b.c wrote:\nanswer\n" * 500)
    small = len(calls)
    calls.clear()
    strip_reply("Hi\n" + "> q\nOn Mon, a@b.c wrote:\nanswer\n" * 2000)

    assert small > 0
    assert len(calls) <= 4.5 * small
