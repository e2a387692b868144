"""Ignore rules: loops, own addresses, bounces, auto-replies and admin patterns."""

import pytest

from mailbridge.domain.rules import classify, outgoing_auto_headers, sender_matches, subject_matches
from mailbridge.domain.parsing import parse_message
from tests.corpus import build_corpus, make_message

CORPUS = build_corpus()
OWN = {"support@helpdesk.example"}
MARKER = "helpdesk@mailbridge"


def verdict(name_or_raw, **kwargs):
    raw = CORPUS[name_or_raw] if isinstance(name_or_raw, str) else name_or_raw
    return classify(parse_message(raw), own_addresses=OWN, loop_marker=MARKER, **kwargs)


@pytest.mark.parametrize(
    "name",
    ["plain", "html_only", "reply_in_reply_to", "outlook_suppress_only", "google_group_relay",
     "list_id_only", "auto_submitted_no"],
)
def test_ordinary_mail_is_accepted(name):
    result = verdict(name)

    assert (result.action, result.reason, result.automatic) == ("accept", None, False)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("auto_submitted", "auto-submitted: auto-replied"),
        ("x_autoreply", "auto-reply: x-autoreply"),
        ("x_autorespond", "auto-reply: x-autorespond"),
        ("precedence_bulk", "precedence: bulk"),
        ("precedence_junk", "precedence: junk"),
        ("precedence_list", "precedence: list"),
        ("outlook_oof", "auto-reply: null return-path"),
    ],
)
def test_auto_replies_are_ignored_as_automatic(name, reason):
    result = verdict(name)

    assert (result.action, result.reason, result.automatic) == ("ignore", reason, True)


def test_suppress_header_with_auto_reply_subject_is_automatic():
    raw = make_message(subject="Automatic reply: Printer", x_auto_response_suppress="All")

    result = verdict(raw)

    assert result.action == "ignore"
    assert result.automatic is True
    assert "x-auto-response-suppress" in result.reason


@pytest.mark.parametrize(
    "name, reason",
    [
        ("bounce_report", "delivery-report: multipart/report delivery-status"),
        ("bounce_mailer_daemon", "delivery-report: from mailer-daemon"),
        ("bounce_postmaster", "delivery-report: from postmaster"),
        ("read_receipt", "delivery-report: multipart/report disposition-notification"),
        ("own_address", "own-address: support@helpdesk.example"),
        ("x_loop", "loop: x-loop helpdesk@mailbridge"),
    ],
)
def test_bounces_loops_and_own_mail_are_ignored_and_not_automatic(name, reason):
    result = verdict(name)

    assert (result.action, result.reason, result.automatic) == ("ignore", reason, False)


def test_own_address_with_plus_tag_is_ours():
    result = verdict(make_message(from_="support+alerts@helpdesk.example"))

    assert result.reason == "own-address: support+alerts@helpdesk.example"


def test_x_loop_of_someone_else_is_accepted():
    assert verdict(make_message(x_loop="other@elsewhere")).action == "accept"


def test_admin_sender_rule_ignores_and_is_not_automatic():
    result = verdict("auto_submitted", ignore_senders=["@customer.example"])

    assert (result.action, result.reason, result.automatic) == ("ignore", "ignore-rule: sender @customer.example", False)


def test_admin_subject_rule_ignores():
    result = verdict("plain", ignore_subjects=["*printer*"])

    assert (result.action, result.reason) == ("ignore", "ignore-rule: subject *printer*")


@pytest.mark.parametrize(
    "pattern, address, expected",
    [
        ("alice@customer.example", "ALICE@customer.example", True),
        ("alice@customer.example", "bob@customer.example", False),
        ("@customer.example", "bob@customer.example", True),
        ("@customer.example", "bob@sub.customer.example", False),
        ("customer.example", "bob@customer.example", True),
        ("*.customer.example", "bob@mail.customer.example", True),
        ("*.customer.example", "bob@customer.example", False),
        ("*.customer.example", "bob@evilcustomer.example", False),
        ("noreply*@*", "noreply-billing@shop.example", True),
        ("", "bob@customer.example", False),
    ],
)
def test_sender_patterns(pattern, address, expected):
    assert sender_matches(pattern, address) is expected


@pytest.mark.parametrize(
    "pattern, subject, expected",
    [
        ("*newsletter*", "Our NEWSLETTER for May", True),
        ("newsletter", "Our newsletter", False),
        ("Out of office*", "out of office until Monday", True),
        ("/^\\[jira\\]/", "[JIRA] ABC-1 updated", True),
        ("/^\\[jira\\]/", "Re: [JIRA] ABC-1", False),
        ("/[unclosed/", "[unclosed", False),
    ],
)
def test_subject_patterns(pattern, subject, expected):
    assert subject_matches(pattern, subject) is expected


def test_outgoing_auto_headers():
    assert outgoing_auto_headers("m@x") == {
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
        "X-Loop": "m@x",
    }


def test_our_own_acknowledgement_is_recognised_when_it_comes_back():
    raw = make_message(from_="someone@else.example", **{k.replace("-", "_"): v for k, v in outgoing_auto_headers(MARKER).items()})

    result = verdict(raw)

    assert (result.action, result.automatic) == ("ignore", False)
    assert result.reason.startswith("loop:")


@pytest.mark.parametrize(
    "from_, subject, headers, attachments",
    [
        # Mail servers' own subjects are enough (Exchange, Postfix, Exim, qmail, German Exchange)
        ("Microsoft Outlook <outlook@corp.example>", "Undeliverable: Printer broken", {}, []),
        ("Mail Delivery System <mta@corp.example>", "Undelivered Mail Returned to Sender", {}, []),
        ("ndr@corp.example", "Mail delivery failed: returning message to sender", {}, []),
        ("admin@corp.example", "failure notice", {}, []),
        ("outlook@corp.example", "Unzustellbar: Drucker", {}, []),
        # a customer-like wording needs a mail-system sender, envelope or returned message
        ("E500_SMTP_Mail_Service@corp.example", "Returned Mail - Error During Delivery", {}, []),
        ('"System Administrator" <sysadmin@corp.example>', "Delivery Failure", {}, []),
        ("gateway@corp.example", "Delivery failure notification", {"return_path": "<MAILER-DAEMON@corp.example>"}, []),
        ("gateway@corp.example", "Mail could not be delivered", {},
         [("returned.eml", "message/rfc822", b"From: a@b.example\r\nSubject: x\r\n\r\nhi\r\n")]),
    ],
)
def test_bounces_without_a_delivery_report_are_recognised(from_, subject, headers, attachments):
    result = verdict(make_message(from_=from_, subject=subject, attachments=attachments, **headers))

    assert (result.action, result.automatic) == ("ignore", False)
    assert result.reason.startswith("delivery-report: subject"), result.reason


@pytest.mark.parametrize("subject", ["Delivery failure - order 1234 never arrived", "Fwd: Undeliverable: my invoice",
                                     "Returned mail from my printer?", "Mail not delivered to our branch"])
def test_a_customer_writing_about_delivery_problems_is_accepted(subject):
    assert verdict(make_message(subject=subject)).action == "accept"


def test_qmail_precedence_auto_reply_is_automatic():
    result = verdict(make_message(subject="Auto reply", precedence="auto_reply"))

    assert (result.action, result.reason, result.automatic) == ("ignore", "precedence: auto_reply", True)
