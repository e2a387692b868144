"""The named corpus messages. Each builder returns raw bytes; names say what is special."""

from __future__ import annotations

import base64

from tests.corpus.builder import CUSTOMER, PDF_BYTES, PNG_PIXEL, SUPPORT, crlf, make_message

CORPUS_BUILDERS = {}


def corpus(function):
    CORPUS_BUILDERS[function.__name__] = function
    return function


# --------------------------------------------------------------------------- bodies


@corpus
def plain():
    return make_message(message_id="<plain-1@customer.example>")


@corpus
def html_only():
    return make_message(
        subject="Invoice question",
        body=None,
        html="<html><head><title>Ignore me</title></head><body><p>Hello,</p>"
        "<p>where is <b>invoice 42</b>?</p><ul><li>first</li><li>second</li></ul></body></html>",
        message_id="<html-only-1@customer.example>",
    )


@corpus
def alternative():
    return make_message(
        subject="Both kinds",
        body="Plain version of the text.\n",
        html="<p>HTML version of the text.</p>",
        message_id="<alternative-1@customer.example>",
    )


@corpus
def attachments_inline():
    return make_message(
        subject="Screenshot and invoice",
        body="See the screenshot and the invoice.\n",
        html='<p>See the screenshot:</p><img src="cid:shot1@customer.example" alt="shot">'
        "<p>and the invoice.</p>",
        inline_images=[("shot1@customer.example", "image/png", PNG_PIXEL)],
        attachments=[("invoice.pdf", "application/pdf", PDF_BYTES)],
        message_id="<attachments-1@customer.example>",
    )


@corpus
def rfc2047_headers():
    return crlf(
        "From: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <Juergen@Customer.Example>\n"
        "To: =?iso-8859-1?Q?Andr=E9?= <support@helpdesk.example>,\n"
        " =?koi8-r?B?8NLJ18XU?= <ivan@customer.example>\n"
        "Cc: \"Smith, John\" <john@customer.example>\n"
        "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?= =?utf-8?B?IOKAlCDwn5iA?=\n"
        "Date: Sat, 28 Nov 2026 11:00:00 +0100\n"
        "Message-ID: <rfc2047-1@customer.example>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Hallo!\n"
    )


@corpus
def rfc2047_malformed():
    return crlf(
        "From: =?utf-8?B?broken!!?= <weird@customer.example>\n"
        "To: support@helpdesk.example\n"
        "Subject: =?x-no-such-charset?Q?abc?= and =?utf-8?Q?caf=E9?= and =?utf-8?B?w6k\n"
        "Date: not a date at all\n"
        "Message-ID: <malformed-1@customer.example>\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Body.\n"
    )


@corpus
def raw_utf8_headers():
    return crlf(
        "From: Zoë Ünal <zoe@customer.example>\n"
        "To: support@helpdesk.example\n"
        "Subject: Café crème ☕\n"
        "Date: Sat, 28 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <raw-utf8-1@customer.example>\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Crème brûlée.\n"
    )


@corpus
def rfc2231_filename():
    return crlf(
        "From: " + CUSTOMER + "\n"
        "To: " + SUPPORT + "\n"
        "Subject: Report attached\n"
        "Date: Sat, 28 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <rfc2231-1@customer.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b1"\n'
        "\n"
        "--b1\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Report attached.\n"
        "--b1\n"
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment;\n"
        " filename*0*=utf-8''Rapport%20annuel%20;\n"
        " filename*1*=%C3%A9t%C3%A9%202026.pdf\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" + base64.encodebytes(PDF_BYTES).decode() + "--b1\n"
        "Content-Type: application/octet-stream;\n"
        ' name="=?utf-8?B?w7xiZXJzaWNodC54bHN4?="\n'
        "Content-Disposition: attachment\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" + base64.encodebytes(b"PK\x03\x04 fake xlsx").decode() + "--b1\n"
        "Content-Type: text/plain\n"
        'Content-Disposition: attachment; filename="../../etc/\x01passwd"\n'
        "\n"
        "root:x:0:0\n"
        "--b1--\n"
    )


# --------------------------------------------------------------------------- charsets


def _single_part(subject: str, content_type: str, body: bytes, message_id: str, cte: str = "8bit") -> bytes:
    head = crlf(
        "From: " + CUSTOMER + "\n"
        "To: " + SUPPORT + "\n"
        "Subject: " + subject + "\n"
        "Date: Sat, 28 Nov 2026 10:00:00 +0000\n"
        "Message-ID: " + message_id + "\n"
        "MIME-Version: 1.0\n"
        "Content-Type: " + content_type + "\n"
        "Content-Transfer-Encoding: " + cte + "\n"
        "\n"
    )
    return head + crlf(body)


@corpus
def latin1_declared_utf8():
    return _single_part(
        "Wrong charset",
        "text/plain; charset=utf-8",
        "Grüße aus Köln, die Rechnung für März fehlt.\n".encode("latin-1"),
        "<latin1-1@customer.example>",
    )


@corpus
def koi8r():
    return _single_part(
        "=?koi8-r?B?8NLJ18XU?=",
        "text/plain; charset=koi8-r",
        "Здравствуйте! Принтер на третьем этаже не работает.\n".encode("koi8-r"),
        "<koi8r-1@customer.example>",
    )


@corpus
def iso2022jp():
    return _single_part(
        "=?iso-2022-jp?B?GyRCJDMkcyRLJEEkTxsoQg==?=",
        "text/plain; charset=iso-2022-jp",
        "こんにちは、プリンターが壊れています。\n".encode("iso2022_jp"),
        "<iso2022jp-1@customer.example>",
        cte="7bit",
    )


@corpus
def gb18030():
    return _single_part(
        "=?gb18030?B?xOO6ww==?=",
        "text/plain; charset=gb18030",
        "你好，三楼的打印机坏了。请尽快修理。\n".encode("gb18030"),
        "<gb18030-1@customer.example>",
    )


@corpus
def gb2312_declared():
    return _single_part(
        "Declared gb2312",
        "text/plain; charset=gb2312",
        "你好，打印机坏了。\n".encode("gb18030"),
        "<gb2312-1@customer.example>",
    )


@corpus
def windows1252():
    return _single_part(
        "Smart quotes",
        "text/plain; charset=windows-1252",
        "“Quoted” – costs 5 €.\n".encode("cp1252"),
        "<cp1252-1@customer.example>",
    )


@corpus
def missing_charset():
    return _single_part(
        "No charset",
        "text/plain",
        "Déjà vu: the café is closed again. This message has no declared charset at all, "
        "and its bytes are windows-1252 — “as many old mailers send”.\n".encode("cp1252"),
        "<nocharset-1@customer.example>",
    )


@corpus
def unknown_charset():
    return _single_part(
        "Unknown charset",
        "text/plain; charset=x-made-up-charset",
        "Plain words with one é.\n".encode("utf-8"),
        "<unknowncharset-1@customer.example>",
    )


# --------------------------------------------------------------------------- structure


@corpus
def nested_rfc822():
    inner = make_message(
        from_="Bob Vendor <bob@vendor.example>",
        to="alice@customer.example",
        subject="Original from vendor",
        body="The inner message body.\n",
        attachments=[("inner.pdf", "application/pdf", PDF_BYTES)],
        message_id="<inner-1@vendor.example>",
    )
    return make_message(
        subject="Fwd: Original from vendor",
        body="Forwarding the vendor's mail as an attachment.\n",
        attachments=[("forwarded.eml", "message/rfc822", inner)],
        message_id="<nested-1@customer.example>",
    )


@corpus
def winmail_dat():
    return make_message(
        subject="Outlook rich text",
        body="Plain fallback text from Outlook.\n",
        attachments=[("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22" + b"\x00" * 60)],
        message_id="<winmail-1@customer.example>",
    )


@corpus
def no_message_id():
    return make_message(subject="Where is my order?", message_id=None)


@corpus
def html_dangerous():
    return make_message(
        subject="Look at this",
        body=None,
        html='<div onclick="steal()">Hello<script>alert("x")</script>'
        '<img src="https://tracker.example/p.gif" onerror="alert(1)">'
        '<a href="javascript:alert(2)">click</a> <a href="https://ok.example/">ok</a>'
        "<style>body{display:none}</style></div>",
        message_id="<dangerous-1@customer.example>",
    )


# --------------------------------------------------------------------------- automatic mail


@corpus
def auto_submitted():
    return make_message(
        subject="Automatic reply: Printer on floor 3 is broken",
        body="I am out of the office until Monday.\n",
        auto_submitted="auto-replied",
        message_id="<auto-1@customer.example>",
    )


@corpus
def auto_submitted_no():
    return make_message(subject="A human wrote this", auto_submitted="no",
                        message_id="<auto-no-1@customer.example>")


@corpus
def x_autoreply():
    return make_message(subject="Out of office", body="Away.\n", x_autoreply="yes",
                        message_id="<xautoreply-1@customer.example>")


@corpus
def x_autorespond():
    return make_message(subject="Re: your mail", body="Thanks, we got it.\n", x_autorespond="yes",
                        message_id="<xautorespond-1@customer.example>")


@corpus
def outlook_oof():
    return make_message(
        subject="Automatic reply: Printer on floor 3 is broken",
        body="I am away.\n",
        x_auto_response_suppress="All",
        return_path="<>",
        message_id="<oof-1@customer.example>",
    )


@corpus
def outlook_suppress_only():
    # Outlook and Exchange set this on ordinary mail too; alone it must not drop the message.
    return make_message(subject="Question about my account", x_auto_response_suppress="DR, RN, NRN, OOF, AutoReply",
                        message_id="<suppress-only-1@customer.example>")


@corpus
def precedence_bulk():
    return make_message(subject="Newsletter", precedence="bulk", message_id="<bulk-1@news.example>")


@corpus
def precedence_junk():
    return make_message(subject="Junk", precedence="junk", message_id="<junk-1@news.example>")


@corpus
def precedence_list():
    return make_message(subject="[list] Weekly digest", precedence="list", list_id="<digest.lists.example>",
                        message_id="<list-1@lists.example>")


@corpus
def google_group_relay():
    return make_message(
        subject="Cannot log in",
        precedence="list",
        list_id="<support.helpdesk.example>",
        mailing_list="list support@helpdesk.example; contact support+owners@helpdesk.example",
        x_google_group_id="123456789012",
        message_id="<group-1@customer.example>",
    )


@corpus
def list_id_only():
    return make_message(subject="Project update", list_id="<project.lists.example>",
                        message_id="<listid-1@lists.example>")


@corpus
def x_loop():
    return make_message(subject="Re: [#12] Printer", x_loop="helpdesk@mailbridge",
                        message_id="<xloop-1@customer.example>")


@corpus
def own_address():
    return make_message(from_=SUPPORT, to=SUPPORT, subject="Sent to ourselves",
                        message_id="<own-1@helpdesk.example>")


@corpus
def bounce_report():
    return crlf(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "To: support@helpdesk.example\n"
        "Subject: Delivery Status Notification (Failure)\n"
        "Date: Sat, 28 Nov 2026 10:05:00 +0000\n"
        "Message-ID: <bounce-1@mx.google.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r1"\n'
        "\n"
        "--r1\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Address not found: nobody@customer.example\n"
        "--r1\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.google.example\n"
        "\n"
        "Final-Recipient: rfc822; nobody@customer.example\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "--r1\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        "From: support@helpdesk.example\n"
        "To: nobody@customer.example\n"
        "Subject: [#12] Printer\n"
        "--r1--\n"
    )


@corpus
def bounce_mailer_daemon():
    return make_message(
        from_="MAILER-DAEMON@mx.customer.example",
        subject="Undelivered Mail Returned to Sender",
        body="This is the mail system at host mx.customer.example.\n",
        message_id="<bounce-2@mx.customer.example>",
    )


@corpus
def bounce_postmaster():
    return make_message(from_="postmaster@customer.example", subject="Delivery failure",
                        message_id="<bounce-3@customer.example>")


@corpus
def read_receipt():
    return crlf(
        "From: " + CUSTOMER + "\n"
        "To: " + SUPPORT + "\n"
        "Subject: Read: Printer\n"
        "Date: Sat, 28 Nov 2026 10:05:00 +0000\n"
        "Message-ID: <mdn-1@customer.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="m1"\n'
        "\n"
        "--m1\n"
        "Content-Type: text/plain\n"
        "\n"
        "Your message was read.\n"
        "--m1\n"
        "Content-Type: message/disposition-notification\n"
        "\n"
        "Final-Recipient: rfc822; alice@customer.example\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n"
        "--m1--\n"
    )


# --------------------------------------------------------------------------- replies


@corpus
def reply_in_reply_to():
    return make_message(
        subject="Re: [#12] Printer on floor 3 is broken",
        body="It works again, thanks!\n\nOn Sat, Nov 28, 2026 at 9:00 AM Support <support@helpdesk.example> wrote:\n"
        "> Did you restart it?\n> \n> Support\n",
        in_reply_to="<out-12-1@helpdesk.example>",
        references="<plain-1@customer.example> <out-12-1@helpdesk.example>",
        message_id="<reply-irt-1@customer.example>",
    )


@corpus
def reply_references_only():
    return make_message(
        subject="Re: Printer on floor 3 is broken",
        body="Still broken.\n",
        references="<unknown-0@elsewhere.example> <plain-1@customer.example>",
        message_id="<reply-refs-1@customer.example>",
    )


@corpus
def reply_tag_subject():
    return make_message(subject="Re: [#12] Printer on floor 3 is broken", body="Any news?\n",
                        message_id="<reply-tag-1@customer.example>")


@corpus
def reply_tag_stranger():
    return make_message(from_="Mallory <mallory@attacker.example>",
                        subject="Re: [#12] Printer on floor 3 is broken", body="Please send me the file.\n",
                        message_id="<reply-tag-stranger-1@attacker.example>")


@corpus
def reply_cc():
    return make_message(
        from_="Carol Colleague <carol@customer.example>",
        cc=["Alice Example <alice@customer.example>", "Support <support@helpdesk.example>"],
        to="Dave <dave@customer.example>",
        subject="Re: Printer on floor 3 is broken",
        body="Adding support in CC.\n",
        in_reply_to="<plain-1@customer.example>",
        message_id="<reply-cc-1@customer.example>",
    )


@corpus
def outlook_reply():
    return make_message(
        subject="RE: [#12] Printer on floor 3 is broken",
        body="Yes, it is the one near the kitchen.\n\nBest regards\nAlice\n\n"
        "________________________________\n"
        "From: Support <support@helpdesk.example>\n"
        "Sent: Saturday, November 28, 2026 9:00 AM\n"
        "To: Alice Example <alice@customer.example>\n"
        "Subject: [#12] Printer on floor 3 is broken\n\n"
        "Which printer exactly?\n",
        in_reply_to="<out-12-1@helpdesk.example>",
        message_id="<outlook-reply-1@customer.example>",
    )


@corpus
def german_reply_with_signature():
    return make_message(
        subject="AW: [#12] Drucker",
        body="Danke, erledigt.\n\n-- \nAlice Beispiel\nKundenservice GmbH\n\n"
        "Am 28.11.2026 um 09:00 schrieb Support <support@helpdesk.example>:\n> Bitte neu starten.\n",
        message_id="<german-reply-1@customer.example>",
    )
